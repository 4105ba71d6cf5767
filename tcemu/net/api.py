"""The keyword API of an emulated network: what ``ip`` and ``tc`` commands map onto.

``Net(seed=0)`` starts with the namespace ``default`` holding ``lo`` (up).  Devices are
named ``name`` (in ``default`` or the ``netns=`` given) or ``netns/name``.  Frames go in
with :meth:`Net.send` (the device's host transmits) and :meth:`Net.receive` (it arrives
from the wire); :meth:`Net.capture` is tcpdump on a device; :meth:`Net.run` and
:meth:`Net.advance` drain the event loop on the virtual clock.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tcemu.act.base import Action
from tcemu.cls.bpf import BpfFilter
from tcemu.cls.chain import ETH_P_ALL, Block, Filter, TcfProto
from tcemu.cls.matchall import MatchallFilter
from tcemu.errors import NetError
from tcemu.net.stack import Captured, Stack
from tcemu.netdev import IFF_NO_QUEUE, NETDEV_KINDS, Eth, NetDev, Veth, Vlan, Vxlan
from tcemu.qdisc.base import Qdisc
from tcemu.qdisc.clsact import Clsact
from tcemu.route import Route, parse_ip

if TYPE_CHECKING:
    from tcemu.bpf.collection import Collection
    from tcemu.bpf.maps import MapBase
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Tier
    from tcemu.clock import VirtualClock

__all__ = ["Net", "NetMaps"]

ETH_P_NAMES = {"all": ETH_P_ALL, "ip": 0x0800, "ipv6": 0x86DD, "arp": 0x0806,
               "802.1q": 0x8100, "802.1ad": 0x88A8}
Frame = bytes | bytearray | memoryview | object


def _frame_bytes(frame: Frame) -> bytes:
    if isinstance(frame, bytes | bytearray | memoryview):
        return bytes(frame)
    to_bytes = getattr(frame, "__bytes__", None)
    if to_bytes is None:
        raise NetError(f"cannot send {type(frame).__name__}: not bytes or a packet")
    data: bytes = to_bytes()
    return data


def _mac(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    parts = value.split(":")
    if len(parts) != 6:
        raise NetError(f'"{value}" is invalid lladdr.')
    return bytes(int(p, 16) for p in parts)


def _protocol(value: str | int) -> int:
    if isinstance(value, int):
        return value
    if value.lower() in ETH_P_NAMES:
        return ETH_P_NAMES[value.lower()]
    return int(value, 0)


def parse_handle(value: str | int) -> int:
    """``tc`` handle syntax ``maj:min`` (hex) as a 32-bit handle."""
    if isinstance(value, int):
        return value
    if value == "root":
        return 0xFFFF_FFFF
    major, _, minor = value.partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


class NetMaps(Mapping[str, "MapBase"]):
    """Maps of every object loaded through filters, by name; ``object:name`` when two
    objects define the same name (a bare name is then ambiguous and says so)."""

    def __init__(self) -> None:
        self._by_object: dict[str, dict[str, MapBase]] = {}

    def add(self, object_name: str, maps: Mapping[str, MapBase]) -> str:
        key, n = object_name, 1
        while key in self._by_object:
            n += 1
            key = f"{object_name}#{n}"
        self._by_object[key] = dict(maps)
        return key

    def _all(self) -> dict[str, list[tuple[str, MapBase]]]:
        out: dict[str, list[tuple[str, MapBase]]] = {}
        for obj, maps in self._by_object.items():
            for name, m in maps.items():
                out.setdefault(name, []).append((obj, m))
        return out

    def __getitem__(self, key: str) -> MapBase:
        obj, sep, name = key.rpartition(":")
        if sep and obj in self._by_object:
            return self._by_object[obj][name]
        found = self._all().get(key, [])
        if not found:
            raise KeyError(key)
        if len({id(m) for _, m in found}) > 1:
            names = ", ".join(f"{o}:{key}" for o, _ in found)
            raise NetError(f"map {key!r} is defined by several loaded objects; use one of "
                           f"{names}")
        return found[0][1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class Net(Stack):
    """An emulated network."""

    def __init__(self, seed: int = 0, *, tier: Tier = "interp",
                 clock: VirtualClock | None = None) -> None:
        super().__init__(seed, tier=tier, clock=clock)
        self.maps = NetMaps()
        self.collections: dict[str, Collection] = {}

    # -- devices -------------------------------------------------------------------
    def netns(self, name: str) -> str:
        """Create the namespace if needed (``ip netns add``); returns its name."""
        if name not in self.namespaces:
            self.netns_add(name)
        return name

    def dev(self, name: str, netns: str | None = None) -> NetDev:
        ns_name, sep, dev_name = name.rpartition("/")
        if sep and netns is None:
            netns = ns_name
            name = dev_name
        return self.ns(netns or "default").get(name)

    def __getitem__(self, name: str) -> NetDev:
        return self.dev(name)

    def link_add(self, name: str, kind: str, *, netns: str = "default", peer: str | None = None,
                 peer_netns: str | None = None, link: str | None = None,
                 vlan_id: int | None = None, protocol: str | int = "802.1q",
                 vni: int | None = None, remote: str | None = None, local: str | None = None,
                 dstport: int | None = None, external: bool = False, ttl: int = 0,
                 tos: int = 0, df: str = "unset", udpcsum: bool = True,
                 srcport: tuple[int, int] | None = None,
                 mtu: int | None = None,
                 address: str | bytes | None = None,
                 peer_address: str | bytes | None = None) -> NetDev:
        """``ip link add NAME type KIND ...``; veth/eth: ``peer`` names the other end."""
        cls = NETDEV_KINDS.get(kind)
        if cls is None or kind == "loopback":
            raise NetError(f'Error: Unknown device type "{kind}".')
        ns = self.ns(netns)
        if name in ns.devices:
            raise NetError("RTNETLINK answers: File exists", errno=17)
        dev = cls(name, address=_mac(address) if address else self.random_mac())
        dev.priv_flags |= IFF_NO_QUEUE if cls.default_no_queue else 0
        if isinstance(dev, Veth | Eth):
            other = self._make_peer(dev, peer or "", peer_netns or netns, peer_address)
            if isinstance(dev, Veth) and isinstance(other, Veth):
                dev.peer, other.peer = other, dev
            if isinstance(dev, Eth) and isinstance(other, Eth):
                dev.peer, other.peer = other, dev
        elif isinstance(dev, Vlan):
            self._setup_vlan(dev, ns.name, link, vlan_id, _protocol(protocol))
        elif isinstance(dev, Vxlan):
            self._setup_vxlan(dev, netns, vni, remote, local, dstport, external, ttl, tos,
                              udpcsum, link)
            dev.srcport, dev.df = srcport, df
        if mtu is not None:
            dev.mtu = mtu
        ns.attach(dev)
        if isinstance(dev, Vlan) and dev.lower is not None:
            dev.lower.vlans[(dev.protocol, dev.vlan_id)] = dev
        if not dev.no_queue:
            self._default_qdisc(dev)
        return dev

    def _make_peer(self, dev: NetDev, peer: str, netns: str,
                   address: str | bytes | None) -> NetDev | None:
        if not peer:
            if isinstance(dev, Veth):
                raise NetError("veth needs a peer name (peer=...)")
            return None
        ns = self.ns(netns)
        other = type(dev)(peer, address=_mac(address) if address else self.random_mac())
        other.priv_flags = dev.priv_flags | (IFF_NO_QUEUE if type(dev).default_no_queue else 0)
        ns.attach(other)   # the kernel registers the peer first: it gets the lower ifindex
        if not other.no_queue:
            self._default_qdisc(other)
        return other

    def _setup_vlan(self, dev: Vlan, netns: str, link: str | None, vlan_id: int | None,
                    protocol: int) -> None:
        if link is None or vlan_id is None:
            raise NetError("vlan needs link=<lower device> and vlan_id=<id>")
        if not 0 <= vlan_id < 4095:
            raise NetError(f'Error: argument "{vlan_id}" is wrong: id is invalid')
        lower = self.dev(link, netns)
        if (protocol, vlan_id) in lower.vlans:
            raise NetError("RTNETLINK answers: File exists", errno=17)
        dev.lower, dev.vlan_id, dev.protocol = lower, vlan_id, protocol
        dev.address, dev.mtu = lower.address, lower.mtu

    def _setup_vxlan(self, dev: Vxlan, netns: str, vni: int | None, remote: str | None,
                     local: str | None, dstport: int | None, external: bool, ttl: int,
                     tos: int, udpcsum: bool, link: str | None) -> None:
        if vni is None and not external:
            raise NetError("vxlan: missing virtual network identifier (id or external)")
        dev.vni, dev.external = vni or 0, external
        try:
            dev.remote = ipaddress.IPv4Address(remote).packed if remote else None
            dev.local = ipaddress.IPv4Address(local).packed if local else bytes(4)
        except ValueError as exc:
            # KERNEL-DIFF: only an IPv4 underlay is modelled.
            raise NetError(f"vxlan: remote/local must be IPv4 addresses ({exc})") from exc
        dev.dstport = dstport if dstport else dev.dstport
        dev.ttl, dev.tos, dev.udpcsum, dev.underlay = ttl, tos, udpcsum, netns
        if link is not None:
            dev.mtu = self.dev(link, netns).mtu - 50

    def _default_qdisc(self, dev: NetDev) -> None:
        from tcemu.qdisc import create_qdisc

        dev.qdisc = create_qdisc("pfifo_fast", 0, rng=self._qdisc_rng())

    def _qdisc_rng(self) -> random.Random:
        return random.Random(self.seed ^ 0x716463)

    def link_set(self, name: str, *, up: bool | None = None, netns: str | None = None,
                 mtu: int | None = None, address: str | bytes | None = None,
                 at: str | None = None) -> NetDev:
        """``ip link set``: ``netns=`` moves the device (``at=`` says where it is now)."""
        dev = self.dev(name, at)
        if up is not None:
            dev.up = up
        if mtu is not None:
            dev.mtu = mtu
        if address is not None:
            dev.address = _mac(address)
        if netns is not None and netns != dev.netns:
            src, dst = self.ns_of(dev), self.ns(netns)
            if dev.name in dst.devices:
                raise NetError("RTNETLINK answers: File exists", errno=17)
            src.detach(dev)
            dst.attach(dev, wanted=dev.ifindex)
            dev.up = False  # dev_change_net_namespace closes the device
        self.ns_of(dev).changed()
        return dev

    def link_del(self, name: str, netns: str | None = None) -> None:
        dev = self.dev(name, netns)
        for other in [dev, *(d for d in dev.links() if isinstance(dev, Veth))]:
            self.ns_of(other).detach(other)
        if isinstance(dev, Vlan) and dev.lower is not None:
            dev.lower.vlans.pop((dev.protocol, dev.vlan_id), None)
        for upper in list(dev.vlans.values()):
            self.ns_of(upper).detach(upper)

    # -- addresses, routes, neighbours ---------------------------------------------------
    def addr_add(self, dev: str, cidr: str, *, netns: str | None = None) -> None:
        d = self.dev(dev, netns)
        try:
            self.ns_of(d).fib.add_address(d.ifindex, cidr)
        except ValueError as exc:
            raise NetError(f"RTNETLINK answers: {exc}", errno=17) from exc

    def route_add(self, dst: str, *, dev: str | None = None, via: str | None = None,
                  src: str | None = None, netns: str = "default", table: int = 254,
                  metric: int = 0, realm: int = 0, type: str = "unicast") -> None:
        ns = self.ns(netns)
        network = ipaddress.ip_network("0.0.0.0/0" if dst == "default" else dst, strict=True)
        gw = parse_ip(via) if via else None
        ifindex = ns.get(dev).ifindex if dev else None
        if ifindex is None and gw is not None and type == "unicast":
            route = ns.fib.lookup(gw)
            if route is None or route.ifindex is None:
                raise NetError("Error: Nexthop has invalid gateway.")
            ifindex = route.ifindex
        if ifindex is None and type == "unicast":
            raise NetError("Error: Device for nexthop is not up.")
        try:
            ns.fib.add_route(Route(network, ifindex, gw, parse_ip(src) if src else None,
                                   table, type, metric, realm))
        except ValueError as exc:
            raise NetError(f"RTNETLINK answers: {exc}", errno=17) from exc

    def neigh_add(self, dev: str, ip: str, lladdr: str | bytes, *,
                  netns: str | None = None) -> None:
        d = self.dev(dev, netns)
        self.ns_of(d).fib.add_neigh(d.ifindex, ip, _mac(lladdr))

    def sysctl_forwarding(self, netns: str, enabled: bool = True) -> None:
        """``net.ipv4.ip_forward`` (and IPv6 forwarding) of a namespace."""
        self.ns(netns).fib.ip_forward = enabled

    # -- qdiscs and filters ----------------------------------------------------------
    def qdisc_add(self, dev: str, kind: str, *, parent: str = "root",
                  handle: str | int | None = None, netns: str | None = None,
                  **params: object) -> object:
        """``tc qdisc add dev DEV [parent P] [handle H] KIND [params]``."""
        d = self.dev(dev, netns)
        if kind in ("clsact", "ingress"):
            if d.clsact is not None:
                raise NetError("Error: Exclusivity flag on, cannot modify.", errno=17)
            d.clsact = Clsact(kind, Block(self, f"{d.qualified} ingress"),
                              Block(self, f"{d.qualified} egress") if kind == "clsact"
                              else None)
            return d.clsact
        from tcemu.qdisc import create_qdisc, link_tree

        h = parse_handle(handle) if handle is not None else 0
        p = parse_handle(parent)
        new = create_qdisc(kind, h, p, params, self._netem_rng(), now=self.clock.now_ns())
        if p == 0xFFFF_FFFF:
            d.qdisc = new
        else:
            parent_q = self._find_qdisc(d, p)
            graft = getattr(parent_q, "graft", None)
            if graft is None:
                raise NetError(f"Error: {parent_q.kind} is not classful.")
            graft(p, new)
        if d.qdisc is not None:
            link_tree(d.qdisc)
        return new

    def _netem_rng(self) -> random.Random:
        self._netem_count = getattr(self, "_netem_count", 0) + 1
        return random.Random((self.seed << 8) ^ self._netem_count)

    def _find_qdisc(self, dev: NetDev, classid: int) -> Qdisc:
        todo = [dev.qdisc] if dev.qdisc is not None else []
        while todo:
            q = todo.pop()
            if q.handle & 0xFFFF_0000 == classid & 0xFFFF_0000:
                return q
            children = getattr(q, "children", None)
            if children is not None:
                todo.extend(children())
        raise NetError("Error: Failed to find qdisc with specified handle.", errno=2)

    def _block(self, d: NetDev, parent: str) -> tuple[Block, str]:
        if parent in ("ingress", "ffff:fff2", "ffff:"):
            direction = "ingress"
        elif parent in ("egress", "ffff:fff3"):
            direction = "egress"
        else:
            qdisc = self._find_qdisc(d, parse_handle(parent))
            block = getattr(qdisc, "_tcemu_block", None)
            if not isinstance(block, Block):
                block = Block(self, f"{d.qualified} {parent}")
                qdisc._tcemu_block = block  # type: ignore[attr-defined]
                qdisc.classify = block
            return block, parent
        clsact = d.clsact
        block = clsact.block(direction) if isinstance(clsact, Clsact) else None
        if isinstance(clsact, Clsact) and clsact.kind == "ingress":
            block = clsact.ingress   # sch_ingress: one block for every minor
        if block is None:
            raise NetError("Error: Parent Qdisc doesn't exists.", errno=22)
        return block, direction

    def filter_add(self, dev: str, parent: str, kind: str = "bpf", *,
                   prio: int | None = None, protocol: str | int = "all",
                   handle: int | None = None, chain: int = 0, obj: str | Path | None = None,
                   sec: str | None = None, prog: Program | None = None, da: bool = True,
                   classid: str | int | None = None, actions: Sequence[Action] = (),
                   name: str | None = None, netns: str | None = None) -> Filter:
        """``tc filter add dev DEV PARENT [prio P] [protocol X] [handle H] [chain C] KIND``."""
        d = self.dev(dev, netns)
        block, _ = self._block(d, parent)
        c = block.chain(chain)
        assert c is not None
        proto = _protocol(protocol)
        prio = prio if prio else c.auto_prio()
        tp = c.find(prio)
        if tp is not None and (tp.kind != kind or tp.protocol != proto):
            raise NetError("Error: Filter kind and protocol must match existing filters "
                           "at this priority.", errno=22)
        cid = parse_handle(classid) if classid is not None else 0
        if kind == "bpf":
            program, label = self._program(prog, obj, sec, name)
            taken = {f.handle for f in tp.filters} if tp is not None else set()
            h = handle or next(i for i in range(1, 1 << 31) if i not in taken)
            if h in taken:
                raise NetError("RTNETLINK answers: File exists", errno=17)
            new: Filter = BpfFilter(program, h, da, cid, list(actions), label)
        elif kind == "matchall":
            if tp is not None and tp.filters:
                raise NetError("RTNETLINK answers: File exists", errno=17)
            new = MatchallFilter(handle or 1, cid, list(actions))
        else:
            raise NetError(f'Error: Unknown filter "{kind}", usage: ...', errno=2)
        if tp is None:
            tp = TcfProto(prio, proto, kind, chain)
            c.insert(tp)
        tp.filters.insert(0, new)
        return new

    def _program(self, prog: Program | None, obj: str | Path | None, sec: str | None,
                 name: str | None) -> tuple[Program, str]:
        if prog is not None:
            return prog, name or prog.name
        if obj is None:
            raise NetError("bpf filter needs obj=<object file> or prog=<Program>")
        from tcemu.bpf.collection import load_object

        path = Path(obj)
        coll = load_object(path, self.env, object_id=path.name)
        key = self.maps.add(path.name, coll.maps)
        self.collections[key] = coll
        wanted = sec or "classifier"
        found = [p for p in coll.programs.values() if p.section == wanted]
        if not found and sec is None and len(coll.programs) == 1:
            found = list(coll.programs.values())
        if not found:
            sections = ", ".join(sorted({p.section for p in coll.programs.values()}))
            raise NetError(f"Program section '{wanted}' not found in ELF file {path.name} "
                           f"(sections: {sections})", errno=2)
        return found[0], name or f"{path.name}:[{found[0].section}]"

    def qdisc_del(self, dev: str, kind: str | None = None, *, parent: str = "root",
                  netns: str | None = None) -> None:
        """``tc qdisc del dev DEV root|clsact|ingress``: the default qdisc comes back."""
        d = self.dev(dev, netns)
        if kind in ("clsact", "ingress") or parent in ("ingress", "clsact", "ffff:"):
            if d.clsact is None:
                raise NetError("Error: Cannot delete qdisc with handle of zero.", errno=2)
            d.clsact = None
            return
        if d.qdisc is None or getattr(d.qdisc, "bypass", False):
            raise NetError("Error: Cannot delete qdisc with handle of zero.", errno=2)
        d.qdisc = None
        if not d.no_queue:
            self._default_qdisc(d)

    def filter_del(self, dev: str, parent: str, *, prio: int | None = None,
                   handle: int | None = None, chain: int = 0,
                   netns: str | None = None) -> None:
        """``tc filter del dev DEV PARENT [prio P [handle H]] [chain C]``."""
        d = self.dev(dev, netns)
        block, _ = self._block(d, parent)
        c = block.chain(chain, create=False)
        if c is None:
            raise NetError("Error: Cannot find specified filter chain.", errno=22)
        if prio is None:
            c.protos.clear()
            return
        tp = c.find(prio)
        if tp is None:
            raise NetError("Error: Filter with specified priority/protocol not found.",
                           errno=2)
        if handle is None:
            c.protos.remove(tp)
            return
        kept = [f for f in tp.filters if f.handle != handle]
        if len(kept) == len(tp.filters):
            raise NetError("Error: Specified filter handle not found.", errno=2)
        tp.filters[:] = kept
        if not kept:
            c.protos.remove(tp)

    def filters(self, dev: str, parent: str, *,
                netns: str | None = None) -> list[tuple[int, TcfProto, Filter]]:
        """``tc filter show``: (chain, tcf_proto, filter) in classification order."""
        block, _ = self._block(self.dev(dev, netns), parent)
        return block.filters()

    def tcx_attach(self, dev: str, direction: str, prog: Program, *,
                   netns: str | None = None) -> None:
        """``BPF_TCX_INGRESS``/``EGRESS`` attach (appended: runs after earlier ones)."""
        if direction not in ("ingress", "egress"):
            raise NetError(f"tcx direction must be ingress or egress, not {direction!r}")
        self.dev(dev, netns).tcx[direction].append(prog)

    # -- traffic ---------------------------------------------------------------------
    def send(self, dev: str, frame: Frame, *, netns: str | None = None, mark: int = 0,
             priority: int = 0, classid: int | None = None, run: bool = True) -> int:
        """The device's host transmits ``frame`` (AF_PACKET-like); returns the packet
        number.  ``classid`` gives the skb a full socket with that net_cls classid."""
        d = self.dev(dev, netns)
        if not d.up:
            raise NetError(f"send on {d.qualified}: Network is down", errno=100)
        skb = self.new_skb(_frame_bytes(frame), d)
        skb.mark, skb.priority = mark, priority
        if classid is not None:
            skb.has_sk, skb.sk_classid = True, classid
        self.trace.emit(self.clock.now_ns(), skb.pkt_id, "send", d.netns, d.name,
                        f"{skb.len} bytes")
        self.dev_queue_xmit(d, skb)
        if run:
            self.loop.run_until(self.clock.now_ns())
        return skb.pkt_id

    def receive(self, dev: str, frame: Frame, *, netns: str | None = None,
                run: bool = True) -> int:
        """``frame`` arrives on the device from its wire."""
        d = self.dev(dev, netns)
        skb = self.new_skb(_frame_bytes(frame), d)
        self.trace.emit(self.clock.now_ns(), skb.pkt_id, "wire", d.netns, d.name,
                        f"{skb.len} bytes")
        self.netif_rx(d, skb)
        if run:
            self.loop.run_until(self.clock.now_ns())
        return skb.pkt_id

    def capture(self, dev: str, *, netns: str | None = None) -> list[Captured]:
        return list(self.captures.get(id(self.dev(dev, netns)), []))

    def delivered(self, dev: str, *, netns: str | None = None) -> list[bytes]:
        """Frames the device's host accepted (L2 header included)."""
        d = self.dev(dev, netns)
        out = []
        for skb in d.delivered:
            l2 = skb.head[len(skb.head) - skb.mac_len:] if skb.mac_len else b""
            out.append(bytes(l2) + bytes(skb.data))
        return out

    def run(self) -> int:
        """Run the event loop until nothing is pending; returns the events run."""
        return self.loop.run_until(None)

    def advance(self, ns: int) -> int:
        """Move the clock forward by ``ns``, running what falls due on the way."""
        return self.loop.run_until(self.clock.now_ns() + ns)
