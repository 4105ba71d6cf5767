"""The keyword API of an emulated network: what ``ip`` and ``tc`` commands map onto.

``Net(seed=0)`` starts with the namespace ``default`` holding ``lo`` (up).  Devices are
named ``name`` (in ``default`` or the ``netns=`` given) or ``netns/name``.  Frames go in
with :meth:`Net.send` (the device's host transmits) and :meth:`Net.receive` (it arrives
from the wire); :meth:`Net.capture` is tcpdump on a device; :meth:`Net.run` and
:meth:`Net.advance` drain the event loop on the virtual clock.  The tc methods (qdiscs,
classes, filters, tcx) are in :class:`tcemu.net.tc.TcNet`.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from tcemu.errors import NetError
from tcemu.net.names import Frame, NetMaps, frame_bytes, parse_mac, parse_protocol
from tcemu.net.stack import Captured
from tcemu.net.tc import TcNet
from tcemu.netdev import IFF_NO_QUEUE, NETDEV_KINDS, Eth, NetDev, Veth, Vlan, Vxlan
from tcemu.netdev.device import ARPHRD_ETHER
from tcemu.route import IP6_RT_PRIO_USER, Route, parse_ip

if TYPE_CHECKING:
    from tcemu.netcmd import ObjectCache

__all__ = ["Net", "NetMaps"]


class Net(TcNet):
    """An emulated network."""

    # -- devices -------------------------------------------------------------------
    def netns(self, name: str) -> str:
        """Create the namespace if needed (``ip netns add``); returns its name."""
        if name not in self.namespaces:
            self.netns_add(name)
        return name

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
        dev = cls(name, address=parse_mac(address) if address else self.random_mac())
        dev.priv_flags |= IFF_NO_QUEUE if cls.default_no_queue else 0
        if isinstance(dev, Veth | Eth):
            other = self._make_peer(dev, peer or "", peer_netns or netns, peer_address)
            if isinstance(dev, Veth) and isinstance(other, Veth):
                dev.peer, other.peer = other, dev
            if isinstance(dev, Eth) and isinstance(other, Eth):
                dev.peer, other.peer = other, dev
        elif isinstance(dev, Vlan):
            self._setup_vlan(dev, ns.name, link, vlan_id, parse_protocol(protocol))
        elif isinstance(dev, Vxlan):
            self._setup_vxlan(dev, netns, vni, remote, local, dstport, external, ttl, tos,
                              udpcsum, link)
            dev.srcport, dev.df = srcport, df
            self._vxlan_vni_unique(dev)
        if mtu is not None:
            dev.mtu = mtu
        ns.attach(dev)
        if isinstance(dev, Vlan) and dev.lower is not None:
            dev.lower.vlans[(dev.protocol, dev.vlan_id)] = dev
        if not dev.no_queue:
            self._default_qdisc(dev)
        return dev

    def _vxlan_devices(self, netns: str) -> list[Vxlan]:
        return [d for space in self.namespaces.values() for d in space.devices.values()
                if isinstance(d, Vxlan) and d.underlay == netns]

    def _vxlan_vni_unique(self, dev: Vxlan) -> None:
        """``vxlan_dev_configure``: one device per VNI, port and receive mode in a netns."""
        for other in self._vxlan_devices(dev.underlay):
            if (other.vni, other.dstport, other.external) == (dev.vni, dev.dstport,
                                                              dev.external):
                raise NetError("Error: A VXLAN device with the specified VNI already exists.",
                               errno=17)

    def _vxlan_sock_add(self, dev: Vxlan) -> None:
        """``vxlan_open``: the UDP socket of the port is shared only by devices of the
        same receive mode (``vxlan_find_sock``); another one cannot bind the port."""
        for other in self._vxlan_devices(dev.underlay):
            if other is not dev and other.up and other.dstport == dev.dstport \
                    and other.external != dev.external:
                raise NetError("RTNETLINK answers: Address already in use", errno=98)

    def _make_peer(self, dev: NetDev, peer: str, netns: str,
                   address: str | bytes | None) -> NetDev | None:
        if not peer:
            if isinstance(dev, Veth):
                raise NetError("veth needs a peer name (peer=...)")
            return None
        ns = self.ns(netns)
        other = type(dev)(peer, address=parse_mac(address) if address else self.random_mac())
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

    def link_set(self, name: str, *, up: bool | None = None, netns: str | None = None,
                 mtu: int | None = None, address: str | bytes | None = None,
                 at: str | None = None, rename: str | None = None) -> NetDev:
        """``ip link set``: ``netns=`` moves the device (``at=`` says where it is now),
        ``rename=`` is ``name NEW``."""
        dev = self.dev(name, at)
        if rename is not None and rename != dev.name:
            space = self.ns_of(dev)
            if rename in space.devices:
                raise NetError("RTNETLINK answers: File exists", errno=17)
            del space.devices[dev.name]
            dev.name = rename
            space.devices[rename] = dev
        if up and not dev.up and isinstance(dev, Vxlan):
            self._vxlan_sock_add(dev)
        if up is not None:
            dev.up = up
        if mtu is not None:
            dev.mtu = mtu
        if address is not None:
            dev.address = parse_mac(address)
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
                  metric: int | None = None, realm: int = 0,
                  type: str = "unicast") -> None:
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
        if metric is None:      # the kernel's default: 0 for IPv4, IP6_RT_PRIO_USER for IPv6
            metric = IP6_RT_PRIO_USER if network.version == 6 else 0
        try:
            ns.fib.add_route(Route(network, ifindex, gw, parse_ip(src) if src else None,
                                   table, type, metric, realm))
        except ValueError as exc:
            raise NetError(f"RTNETLINK answers: {exc}", errno=17) from exc

    def neigh_add(self, dev: str, ip: str, lladdr: str | bytes, *,
                  netns: str | None = None) -> None:
        d = self.dev(dev, netns)
        self.ns_of(d).fib.add_neigh(d.ifindex, ip, parse_mac(lladdr))

    def addr_del(self, dev: str, cidr: str, *, netns: str | None = None) -> None:
        d = self.dev(dev, netns)
        try:
            self.ns_of(d).fib.del_address(d.ifindex, cidr)
        except ValueError as exc:
            raise NetError(f"RTNETLINK answers: Cannot assign requested address ({exc})",
                           errno=99) from exc

    def route_del(self, dst: str, *, netns: str = "default", table: int = 254) -> None:
        network = ipaddress.ip_network("0.0.0.0/0" if dst == "default" else dst)
        try:
            self.ns(netns).fib.del_route(network, table)
        except ValueError as exc:
            raise NetError("RTNETLINK answers: No such process", errno=3) from exc

    def neigh_del(self, dev: str, ip: str, *, netns: str | None = None) -> None:
        d = self.dev(dev, netns)
        try:
            self.ns_of(d).fib.del_neigh(d.ifindex, ip)
        except ValueError as exc:
            raise NetError("RTNETLINK answers: No such file or directory", errno=2) from exc

    def netns_del(self, name: str) -> None:
        """``ip netns del``: its devices go (a veth takes its peer along)."""
        ns = self.ns(name)
        if name == "default":
            raise NetError("Cannot remove namespace file \"default\": Device or resource busy",
                           errno=16)
        for dev_name in list(ns.devices):
            if dev_name in ns.devices and dev_name != "lo":
                self.link_del(dev_name, netns=name)
        del self.namespaces[name]

    def sysctl_forwarding(self, netns: str, enabled: bool = True) -> None:
        """``net.ipv4.ip_forward`` (and IPv6 forwarding) of a namespace."""
        self.ns(netns).fib.ip_forward = enabled

    # -- traffic ---------------------------------------------------------------------
    def send(self, dev: str, frame: Frame, *, netns: str | None = None, mark: int = 0,
             priority: int = 0, classid: int | None = None, run: bool = True) -> int:
        """The device's host transmits ``frame`` (AF_PACKET-like); returns the packet
        number.  ``classid`` gives the skb a full socket with that net_cls classid.
        ``last_xmit`` keeps what ``dev_queue_xmit`` returned (NET_XMIT_DROP where
        AF_PACKET's send would fail with ENOBUFS, e.g. a drop at tc egress)."""
        d = self.dev(dev, netns)
        if not d.up:
            raise NetError(f"send on {d.qualified}: Network is down", errno=100)
        data = frame_bytes(frame)
        if len(data) > d.mtu + d.hard_header_len and not _vlan_len_allowed(d, data):
            # packet_snd: len > mtu + hard_header_len is EMSGSIZE unless the frame is
            # 802.1Q-tagged on an Ethernet device (packet_extra_vlan_len_allowed)
            raise NetError(f"send on {d.qualified}: Message too long ({len(data)} bytes, "
                           f"mtu {d.mtu})", errno=90)
        skb = self.new_skb(data, d)
        if priority:             # (rarely set fields: 0 is their class default)
            skb.priority = priority
        if mark:
            skb.mark = mark
        if classid is not None:
            skb.has_sk, skb.sk_classid = True, classid
        if self.trace.enabled:
            self.trace.emit(self.clock.now_ns(), skb.pkt_id, "send", d.netns, d.name,
                            f"{skb.len} bytes")
        self.last_xmit = self.dev_queue_xmit(d, skb)
        if run:
            self.loop.run_until(self.clock.now_ns())
        return skb.pkt_id

    def clear(self) -> None:
        """Forget captures, the trace, what hosts received and what left on unlinked
        wires (long runs)."""
        self.captures.clear()
        self.trace.clear()
        for space in self.namespaces.values():
            for d in space.devices.values():
                d.delivered.clear()
        self.delivered_to.clear()
        self.forget_wires()

    def receive(self, dev: str, frame: Frame, *, netns: str | None = None,
                run: bool = True) -> int:
        """``frame`` arrives on the device from its wire."""
        d = self.dev(dev, netns)
        skb = self.new_skb(frame_bytes(frame), d)
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

    # -- command lines -------------------------------------------------------------
    def ip(self, line: str, *, netns: str | None = None) -> object:
        """Carry out an ``ip`` command line (``"link add veth0 type veth peer name v1"``,
        with or without the leading ``ip``; ``-n NS`` works as in iproute2)."""
        from tcemu.netcmd import run_command

        return run_command(self, line, self._objects(), tool="ip", netns=netns)

    def tc(self, line: str, *, netns: str | None = None) -> object:
        """Carry out a ``tc`` command line (``"filter add dev veth0 ingress bpf da obj
        prog.o sec tc"``); object paths are relative to the current directory."""
        from tcemu.netcmd import run_command

        return run_command(self, line, self._objects(), tool="tc", netns=netns)

    def _objects(self) -> ObjectCache:
        from tcemu.netcmd import ObjectCache

        cache = getattr(self, "_object_cache", None)
        if cache is None:
            cache = self._object_cache = ObjectCache()
        return cache

    def run(self) -> int:
        """Run the event loop until nothing is pending; returns the events run."""
        return self.loop.run_until(None)

    def advance(self, ns: int) -> int:
        """Move the clock forward by ``ns``, running what falls due on the way."""
        return self.loop.run_until(self.clock.now_ns() + ns)


def _vlan_len_allowed(dev: NetDev, data: bytes) -> bool:
    """``packet_extra_vlan_len_allowed``: 4 more bytes for an 802.1Q-tagged frame."""
    return (dev.type == ARPHRD_ETHER and data[12:14] == b"\x81\x00"
            and len(data) <= dev.mtu + dev.hard_header_len + 4)
