"""Receive plans (``tcemu.net.fastpath``) against the general receive path.

Every packet is replayed twice through the same configuration: once with the device's
plan, once with plans turned off (``IngressPlan.arrive`` declining every frame).  Compared, packet
for packet: every hook any device ran (its verdict and *every* sk_buff field right after
it, with the bytes), the replay outcome (verdict, filters, frames out and delivered), and
all maps; at the end the device counters and the clock.  The configurations cover what a
plan runs inline: one or several direct-action filters, classids, per-filter protocols,
every verdict, programs that rewrite, resize, tag, redirect, clone and tail-call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tcemu.bpf.program import Program
from tcemu.errors import VmFault
from tcemu.net import Net
from tcemu.net.fastpath import IngressPlan, ingress_plan
from tcemu.netcmd import ObjectCache, verified
from tcemu.netdev import NetDev
from tcemu.pcap import PacketRecord, read_packets
from tcemu.replay import PacketOutcome, replay
from tcemu.skb import SKBUFF_ATTRS, SkBuff, skb_maker

from .topo import IP_A, IP_B, MAC_A, MAC_B, prog, ret, udp_frame, veth_net

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = ROOT / "tests" / "testdata" / "objects"
PCAPS = ROOT / "pcaps"
DEV = "b/veth1"


def _obj(net: Net, obj: str, name: str) -> Program:
    coll = ObjectCache(base_dir=OBJECTS).collection(net, obj)
    return verified(coll.programs[name])


def _add(net: Net, program: Program, prio: int, **kw: Any) -> None:
    net.filter_add(DEV, "ingress", "bpf", prio=prio, prog=program, da=True, **kw)


def _net() -> Net:
    net = veth_net()
    net.qdisc_add(DEV, "clsact")
    return net


Config = Callable[[Net], None]


def _classid_two_filters(n: Net) -> None:
    _add(n, _obj(n, "skb_ctx.bpf.o", "skb_ctx"), 1, protocol="ip", classid="1:1f5")
    _add(n, _obj(n, "flow_counter.bpf.o", "flow_counter"), 2, classid="2:7")


def _pipe_then_ok(n: Net) -> None:
    _add(n, ret(3), 1, classid="1:1")
    _add(n, ret(0), 2, classid="3:9")


CONFIGS: dict[str, Config] = {
    "flow_counter": lambda n: _add(n, _obj(n, "flow_counter.bpf.o", "flow_counter"), 1),
    # skb_ctx writes mark, priority, cb[], tc_index, tc_classid, queue_mapping, tstamp;
    # with a classid on the filter, and a second filter after it for other protocols
    "classid and two filters": _classid_two_filters,
    # PIPE is no direct-action verdict (UNSPEC: on to the next filter); then OK
    "not deciding, then ok": _pipe_then_ok,
    "other protocol only": lambda n: _add(n, ret(2), 1, protocol="ipv6"),
    "shot": lambda n: _add(n, ret(2), 1),
    "stolen": lambda n: _add(n, ret(4), 1),
    "trap": lambda n: _add(n, ret(8), 1),
    "redirect without target": lambda n: _add(n, ret(7), 1),
    # bpf_redirect(ifindex 1 = lo of b, ingress) and to veth1's own egress (ifindex 2)
    "redirect to lo ingress": lambda n: _add(n, prog(
        "r1 = 1", "r2 = 1", "call bpf_redirect", "exit", name="to_lo"), 1),
    "redirect to own egress": lambda n: _add(n, prog(
        "r1 = 2", "r2 = 0", "call bpf_redirect", "exit", name="to_egress"), 1),
    "redirect from the packet": lambda n: _add(
        n, _obj(n, "redirect.bpf.o", "redirect_egress"), 1),
    "clone to lo": lambda n: _add(n, _obj(n, "redirect.bpf.o", "clone_to_lo"), 1),
    "rewrite": lambda n: _add(n, _obj(n, "pkt_rewrite.bpf.o", "pkt_rewrite"), 1),
    "nat": lambda n: _add(n, _obj(n, "nat_rewrite.bpf.o", "nat_rewrite"), 1),
    "vlan push and pop": lambda n: _add(n, _obj(n, "skb_resize.bpf.o", "vlan_push_pop"), 1),
    "adjust room": lambda n: _add(n, _obj(n, "skb_resize.bpf.o", "adjust_room"), 1),
    "tail calls": lambda n: _add(n, _obj(n, "tail_libbpf.bpf.o", "dispatcher"), 1),
}


def _ip_variant(first: int, cut: int | None) -> bytes:
    """A UDP frame to veth1 whose IPv4 version/IHL byte is ``first``, cut to ``cut``."""
    frame = bytearray(udp_frame(payload=b"x" * 30))
    frame[14] = first
    return bytes(frame[:cut])


def _records() -> list[PacketRecord]:
    records = [r for name in ("mixed_flows.pcapng", "vlan.pcap", "vxlan.pcapng", "arp.pcap",
                              "dns.pcapng") for r in read_packets(PCAPS / name)]
    iface, ts = records[-1].interface, records[-1].timestamp_ns
    crafted = [
        udp_frame(),                                        # to veth1's address: answered
        udp_frame(dst=b"\xff" * 6),                         # broadcast
        udp_frame(dst=bytes.fromhex("01005e000001")),       # multicast
        udp_frame(dst=bytes.fromhex("02aabbccddee")),       # another host
        udp_frame(saddr=IP_B, daddr=IP_A, src=MAC_B, dst=MAC_A),
        bytes(10),                                          # runt
        # IPv4 headers the transport probe must refuse or size: IHL 4, IHL 15 past the
        # end, version 6 under 0x0800, 19 bytes of header; options (IHL 6); then IPv6
        # and an 802.3 length field
        *(_ip_variant(first, cut) for first, cut in
          ((0x44, None), (0x4F, None), (0x65, None), (0x45, 14 + 19), (0x46, None))),
        MAC_B + MAC_A + b"\x86\xdd" + bytes.fromhex("60000000000811ff") + bytes(40),
        MAC_B + MAC_A + b"\x00\x26" + b"\xaa\xaa\x03" + bytes(35),
    ]
    return records + [PacketRecord(ts + 1000 * (i + 1), f, len(f), iface)
                      for i, f in enumerate(crafted)]


def _fields(skb: SkBuff) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in SKBUFF_ATTRS:
        value = getattr(skb, name)
        if isinstance(value, NetDev):
            value = f"{value.netns}/{value.name}"
        elif isinstance(value, bytes | bytearray):
            value = bytes(value)
        elif name == "tunnel":
            value = repr(value)
        out[name] = value
    return out


def _maps(net: Net) -> object:
    return {f"{key}:{name}": sorted(m.items())
            for key, coll in net.collections.items() for name, m in coll.maps.items()}


def _play(config: Config, records: list[PacketRecord], *, plans: bool,
          monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], object, int]:
    net = _net()
    config(net)
    log: list[object] = []
    taken = [0]

    def hook(dev: NetDev, skb: SkBuff, direction: str, verdict: int) -> None:
        log.append((f"{dev.netns}/{dev.name}", direction, verdict, _fields(skb)))

    def on_packet(outcome: PacketOutcome) -> None:
        log.append((outcome, _maps(net)))

    arrive = IngressPlan.arrive

    def counted(self: IngressPlan, frame: bytes) -> SkBuff | None:
        skb = arrive(self, frame) if plans else None
        taken[0] += skb is not None
        return skb

    net.hook_observers.append(hook)
    with monkeypatch.context() as m:
        m.setattr(IngressPlan, "arrive", counted)
        replay(net, records, DEV, on_packet=on_packet)
    counters = {f"{ns.name}/{d.name}": vars(d.stats).copy()
                for ns in net.namespaces.values() for d in ns.devices.values()}
    return log, (counters, net.clock.now_ns(), _maps(net)), taken[0]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_plan_is_the_general_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records()
    general = _play(CONFIGS[name], records, plans=False, monkeypatch=monkeypatch)
    planned = _play(CONFIGS[name], records, plans=True, monkeypatch=monkeypatch)
    assert general[2] == 0
    # the VLAN-tagged frames and the runt take the general path; the rest the plan
    tagged = sum(1 for r in records if len(r.data) >= 14 and r.data[12:14] in
                 (b"\x81\x00", b"\x88\xa8"))
    assert planned[2] == len(records) - tagged - 1
    for i, (a, b) in enumerate(zip(general[0], planned[0], strict=True)):
        assert a == b, f"{name}: entry {i} differs"
    assert planned[1] == general[1]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_quiet_replay_counts_as_the_general_path(name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Without outcomes or other observers, replay counts the plan's hook itself: the
    totals (verdicts, filter hits, output frames), maps and counters are the same."""
    records = _records()
    results = []
    for plans in (False, True):
        net = _net()
        CONFIGS[name](net)
        with monkeypatch.context() as m:
            if not plans:
                m.setattr(IngressPlan, "arrive", lambda *args: None)
            stats = replay(net, records, DEV)
        counters = {f"{ns.name}/{d.name}": vars(d.stats).copy()
                    for ns in net.namespaces.values() for d in ns.devices.values()}
        results.append((stats, counters, net.clock.now_ns(), _maps(net)))
    assert results[1] == results[0]
    assert results[0][0].packets == len(records)


def test_a_plan_follows_configuration_changes() -> None:
    net = _net()
    dev = net.dev(DEV)
    first = ingress_plan(net, dev)
    assert first.exact
    assert first.filters == ()
    _add(net, ret(0), 1)
    second = ingress_plan(net, dev)
    assert second is not first
    assert len(second.filters) == 1
    assert ingress_plan(net, dev) is second                       # unchanged: kept
    net.filter_add(DEV, "ingress", "matchall", prio=2)            # not cls_bpf: general
    assert not ingress_plan(net, dev).exact
    net.filter_del(DEV, "ingress", prio=2)
    assert ingress_plan(net, dev).exact
    net.filter_add(DEV, "ingress", "bpf", prio=3, prog=ret(0), da=False)   # classic mode
    assert not ingress_plan(net, dev).exact
    net.filter_del(DEV, "ingress", prio=3)
    net.tcx_attach(DEV, "ingress", ret(-1))                       # tcx first: general
    assert not ingress_plan(net, dev).exact
    net.qdisc_del(DEV, "clsact")
    assert not ingress_plan(net, dev).exact


def test_a_plan_declines_what_the_general_path_must_do() -> None:
    net = _net()
    _add(net, ret(0), 1)
    net.trace.enabled = False
    plan = ingress_plan(net, net.dev(DEV))
    frame = udp_frame()
    assert plan.receive(frame)
    assert not plan.receive(frame[:13])                          # runt
    tagged = frame[:12] + b"\x81\x00\x00\x05" + frame[12:]
    assert not plan.receive(tagged)                              # VLAN untag
    net.loop.schedule(net.clock.now_ns(), lambda: None)          # something due first
    assert not plan.receive(frame)
    net.run()
    net.trace.enabled = True
    assert not plan.receive(frame)
    net.trace.enabled = False
    net.link_set(DEV, up=False)
    assert not plan.receive(frame)


def test_skb_maker_is_the_constructor_with_fields_set() -> None:
    """skb_maker's function equals ``SkBuff(data)`` with the named fields set, every
    attribute compared (it is generated from the dataclass's fields)."""
    make = skb_maker("pkt_id", "vlan_tci", "tc_index", "transport_header")
    made = make(bytearray(b"abc"), 7, 3, 0x15, 34)
    built = SkBuff(bytearray(b"abc"))
    built.pkt_id, built.vlan_tci, built.tc_index, built.transport_header = 7, 3, 0x15, 34
    assert _fields(made) == _fields(built)
    # cb: the shared zeros until an skb writes it, then its own
    made.writable_cb()[3] = 9
    assert made.cb == bytes(3) + b"\x09" + bytes(16)
    assert built.cb == bytes(20)
    assert make(bytearray(), 1, 0, 0, None).cb == bytes(20)
    clone = made.clone()
    clone.writable_cb()[0] = 1
    assert made.cb[0] == 0
    for name in ("mark", "priority", "cb"):               # a rarely set field has no slot
        with pytest.raises(ValueError, match=name):
            skb_maker(name)
    with pytest.raises(ValueError, match="data"):
        skb_maker("data")


@pytest.mark.parametrize("tier", ["interp", "jit"])
def test_a_fault_in_a_planned_run_is_the_vm_fault(tier: str) -> None:
    """A program that faults on long packets (an unverified load from address 8) raises
    the VM's typed fault, naming the instruction, from the plan's inline run: the
    translated tier's host exception (IndexError/struct.error) is mapped by the run,
    never seen by the caller.  Short packets before and after it run normally."""
    net = _net()
    net.tier = tier  # type: ignore[assignment]
    net.filter_add(DEV, "ingress", "bpf", prio=1, da=True, prog=prog(
        "r1 = *(u32 *)(r6 +0)", "if r1 < 0x64 goto pc+2", "r2 = 8", "r0 = *(u32 *)(r2 +0)",
        "r0 = 0", "exit", name="faults"))
    plan = ingress_plan(net, net.dev(DEV))
    net.trace.enabled = False
    for payload in (b"short", b"long" * 30, b"short", b"long" * 30, b"short"):
        skb = plan.arrive(udp_frame(payload=payload))
        assert skb is not None
        if len(payload) < 50:
            assert plan.hook(skb) == 0      # (the first run binds the inline run)
            continue
        with pytest.raises(VmFault) as info:
            plan.hook(skb)
        assert info.value.pc == 4
        assert not net.env.in_datapath
