"""One topology description run on the real kernel (tcemu.kernel.netns.KernelNet) and on
tcemu (tcemu.net.Net), with the frames every device's tap saw compared byte for byte.

A :class:`Topo` lists namespaces, veth pairs, VXLAN devices, addresses and neighbours,
clsact qdiscs, bpf filters (programs of one object, loaded once on each side so that
they share its maps), map preloads and injected frames.  :func:`run_both` returns the
captures of both sides as ``{(netns, dev): [(direction, bytes), ...]}``.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tcemu.bpf.collection import load_object
from tcemu.errors import KernelError
from tcemu.kernel.netns import KernelNet
from tcemu.net import Net

Seen = dict[tuple[str, str], list[tuple[str, bytes]]]
DATAPATH_OBJ = Path(__file__).resolve().parent / "bpf" / "datapath.bpf.o"


@dataclass
class Topo:
    netns: list[str]
    veths: list[tuple[str, str, str, str, bytes, bytes]]   # dev0, ns0, dev1, ns1, mac0, mac1
    obj: Path = DATAPATH_OBJ
    clsact: list[tuple[str, str]] = field(default_factory=list)
    ingress_qdisc: list[tuple[str, str]] = field(default_factory=list)
    # ns, dev, direction, program name
    filters: list[tuple[str, str, Literal["ingress", "egress"], str]] = field(
        default_factory=list)
    # ns, dev, direction, section: loaded from the object by tc (each its own maps)
    tc_obj: list[tuple[str, str, Literal["ingress", "egress"], str]] = field(
        default_factory=list)
    cfg: dict[int, int] = field(default_factory=dict)
    addrs: list[tuple[str, str, str]] = field(default_factory=list)
    neighs: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    routes: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    forwarding: list[str] = field(default_factory=list)     # netns with ip_forward=1
    mtus: list[tuple[str, str, int]] = field(default_factory=list)
    # name, ns, mac, UDP source port
    vxlans: list[tuple[str, str, bytes, int]] = field(default_factory=list)
    # name, ns, mac, UDP source port, VNI, remote, local (fixed-VNI mode)
    fixed_vxlans: list[tuple[str, str, bytes, int, int, str, str]] = field(
        default_factory=list)
    inject: list[tuple[str, str, bytes]] = field(default_factory=list)
    # (ns, "tc ..." command line): run by the real tc and by tcemu.netcmd
    commands: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0                     # how many captured frames to wait for (kernel)
    cfg_map: str = "cfg"
    dump: str | None = None             # a map to compare after the run (Topo.maps)
    maps: dict[bytes, bytes] = field(default_factory=dict)


def _u32(value: int) -> bytes:
    return (value & 0xFFFF_FFFF).to_bytes(4, "little")


def run_kernel(t: Topo) -> Seen:
    with KernelNet() as kn:
        for ns in t.netns:
            kn.netns(ns)
        for dev0, ns0, dev1, ns1, mac0, mac1 in t.veths:
            kn.veth(dev0, ns0, dev1, ns1, mac0=mac0, mac1=mac1)
            kn.up(ns0, dev0, arp=False)
            kn.up(ns1, dev1, arp=False)
        for ns, dev, mtu in t.mtus:
            kn.up(ns, dev, arp=False, mtu=mtu)
        for ns, dev, cidr in t.addrs:
            kn.addr(ns, dev, cidr)
        for ns, dev, ip, mac in t.neighs:
            kn.neigh(ns, dev, ip, mac)
        for ns, dst, via, rdev in t.routes:
            kn.route(ns, dst, via=via, dev=rdev)
        for ns in t.forwarding:
            subprocess.run(["ip", "netns", "exec", kn.netns_name(ns), "sysctl", "-qw",
                            "net.ipv4.ip_forward=1"], check=True)
        for name, ns, mac, sport in t.vxlans:
            kn.vxlan(name, ns, external=True, dstport=4789, mac=mac,
                     srcport=(sport, sport + 1))
            kn.up(ns, name, arp=False)
        for name, ns, mac, sport, vni, remote, local in t.fixed_vxlans:
            kn.vxlan(name, ns, external=False, vni=vni, remote=remote, local=local,
                     dstport=4789, mac=mac, srcport=(sport, sport + 1))
            kn.up(ns, name, arp=False)
        loaded = kn.load_object(t.obj)
        for ns, dev in t.clsact:
            kn.clsact(ns, dev)
        for ns, dev in t.ingress_qdisc:
            kn.qdisc(ns, dev, "ingress")
        prog_id = None
        for i, (ns, dev, direction, prog) in enumerate(t.filters):
            f = kn.bpf_filter(ns, dev, direction, prog_fd=loaded.progs[prog].fd, prio=i + 1)
            prog_id = f.prog_id
        for ns, dev, direction, sec in t.tc_obj:
            kn.bpf_filter(ns, dev, direction, obj=t.obj, sec=sec)
        for ns, line in t.commands:
            subprocess.run(["ip", "netns", "exec", kn.netns_name(ns), *line.split()],
                           check=True, capture_output=True)
        if t.cfg and prog_id is not None:
            for key, value in t.cfg.items():
                kn.map_update(_u32(key), _u32(value), prog_id=prog_id, name=t.cfg_map)
        kn.start_capture()
        for ns, dev, frame in t.inject:
            try:
                kn.inject(ns, dev, frame)
            except KernelError as exc:   # a drop at tc egress: ENOBUFS (section 2.5)
                if exc.errno != errno.ENOBUFS:
                    raise
        kn.settle(min_frames=t.frames)
        caps = kn.captures()
        if t.dump is not None and prog_id is not None:
            t.maps = kn.map_dump(prog_id=prog_id, name=t.dump)
    return {key: [(c.direction, c.data) for c in frames] for key, frames in caps.items()
            if frames}


def run_tcemu(t: Topo, tier: str = "interp",
              tweak: Callable[[Net], None] | None = None) -> Seen:
    net = Net(tier="jit" if tier == "jit" else "interp")
    for ns in t.netns:
        net.netns(ns)
        net.link_set(f"{ns}/lo", up=True)     # as the harness does
    for dev0, ns0, dev1, ns1, mac0, mac1 in t.veths:
        net.link_add(dev0, "veth", netns=ns0, peer=dev1, peer_netns=ns1, address=mac0,
                     peer_address=mac1)
        net.link_set(f"{ns0}/{dev0}", up=True)
        net.link_set(f"{ns1}/{dev1}", up=True)
    for ns, dev, mtu in t.mtus:
        net.link_set(f"{ns}/{dev}", mtu=mtu)
    for ns, dev, cidr in t.addrs:
        net.addr_add(f"{ns}/{dev}", cidr)
    for ns, dev, ip, mac in t.neighs:
        net.neigh_add(f"{ns}/{dev}", ip, mac)
    for ns, dst, via, rdev in t.routes:
        net.route_add(dst, via=via, dev=rdev, netns=ns)
    for ns in t.forwarding:
        net.sysctl_forwarding(ns)
    for name, ns, mac, sport in t.vxlans:
        net.link_add(name, "vxlan", netns=ns, external=True, dstport=4789, address=mac,
                     srcport=(sport, sport + 1))
        net.link_set(f"{ns}/{name}", up=True)
    for name, ns, mac, sport, vni, remote, local in t.fixed_vxlans:
        net.link_add(name, "vxlan", netns=ns, vni=vni, remote=remote, local=local,
                     dstport=4789, address=mac, srcport=(sport, sport + 1))
        net.link_set(f"{ns}/{name}", up=True)
    coll = load_object(t.obj, net.env)
    for ns, dev in t.clsact:
        net.qdisc_add(f"{ns}/{dev}", "clsact")
    for ns, dev in t.ingress_qdisc:
        net.qdisc_add(f"{ns}/{dev}", "ingress")
    for i, (ns, dev, direction, prog) in enumerate(t.filters):
        net.filter_add(f"{ns}/{dev}", direction, prog=coll.programs[prog], prio=i + 1)
    for ns, dev, direction, sec in t.tc_obj:
        net.filter_add(f"{ns}/{dev}", direction, obj=t.obj, sec=sec, prio=1)
    if t.commands:
        from tcemu.netcmd import ObjectCache, run_command

        cache = ObjectCache()
        for ns, line in t.commands:
            tool, _, rest = line.partition(" ")
            run_command(net, rest, cache, tool=tool, netns=ns)
    for key, value in t.cfg.items():
        coll.maps[t.cfg_map].update(_u32(key), _u32(value))
    if tweak is not None:
        tweak(net)
    for ns, dev, frame in t.inject:
        net.send(f"{ns}/{dev}", frame)
    net.run()
    if t.dump is not None:
        t.maps = dict(coll.maps[t.dump].items())
    out: Seen = {}
    for ns_name, space in net.namespaces.items():
        for name in space.devices:
            if name == "lo":   # the harness captures the devices it created
                continue
            frames = net.capture(f"{ns_name}/{name}")
            if frames:
                out[(ns_name, name)] = [(c.direction, c.data) for c in frames]
    return out


STAMP_FIELDS = ("len", "wire_len", "pkt_type", "mark", "priority", "ifindex",
                "ingress_ifindex", "tc_index", "vlan_present", "vlan_tci", "protocol", "cb0",
                "queue_mapping", "hash")


def describe(frame: bytes) -> str:
    """A frame with the stamps of datapath.c decoded (for failure messages)."""
    import struct

    out = [frame[:42].hex()]
    for off in (42, 98):
        if len(frame) >= off + 56:
            vals = struct.unpack_from("<14I", frame, off)
            out.append(" ".join(f"{n}={v:#x}" for n, v in zip(STAMP_FIELDS, vals, strict=True)))
    return "\n    ".join(out)


def diff(ours: Seen, kernel: Seen) -> str:
    """Readable differences (empty when equal)."""
    lines = []
    for key in sorted(set(ours) | set(kernel)):
        a, b = ours.get(key, []), kernel.get(key, [])
        if a == b:
            continue
        lines.append(f"{key}: tcemu {len(a)} frame(s), kernel {len(b)}")
        for side, frames in (("tcemu", a), ("kernel", b)):
            for direction, data in frames:
                lines.append(f"  {side} {direction}: {describe(data)}")
    return "\n".join(lines)
