"""Addresses, routes and neighbours of one network namespace (IPv4 and IPv6).

A small model of ``net/ipv4/fib_*.c``/``net/ipv6/route.c`` and ``net/core/neighbour.c``:
``ip addr add`` adds the address plus its connected route (table main, scope link) and a
``local`` route (table local); ``ip route add`` adds unicast routes (``dev``, ``via``,
``src``, ``metric``, ``realm``, ``table``) and the ``blackhole``/``unreachable``/
``prohibit`` types; ``ip neigh add`` adds permanent neighbour entries.  A lookup checks the
local table, then the requested (default main) table, by longest prefix and lowest metric.

KERNEL-DIFF: no policy routing rules, no multipath, no ARP/ND resolution (a missing
neighbour is an error the caller reports), no route caching or PMTU state.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = ["IP6_RT_PRIO_ADDRCONF", "IP6_RT_PRIO_USER", "RT_TABLE_LOCAL", "RT_TABLE_MAIN",
           "Address", "Fib", "IpAddr", "IpNet", "Route", "parse_ip"]

RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
# include/net/ip6_route.h: metrics the kernel gives IPv6 routes that carry none.
IP6_RT_PRIO_USER, IP6_RT_PRIO_ADDRCONF = 1024, 256
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
ROUTE_TYPES = ("unicast", "local", "blackhole", "unreachable", "prohibit")


def parse_ip(value: str | bytes | IpAddr) -> IpAddr:
    """An address from text, packed bytes (4 or 16) or an address object."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    return ipaddress.ip_address(value)


@dataclass(frozen=True)
class Address:
    """``ip addr``: an address with its prefix on a device."""

    ifindex: int
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface

    @property
    def ip(self) -> IpAddr:
        return self.interface.ip


@dataclass(frozen=True)
class Route:
    """One FIB entry."""

    dst: IpNet
    ifindex: int | None = None
    via: IpAddr | None = None
    src: IpAddr | None = None
    table: int = RT_TABLE_MAIN
    type: str = "unicast"
    metric: int = 0
    realm: int = 0                  # the route's tclassid (``realm``)
    scope: str = "universe"


@dataclass
class Fib:
    """The routing and neighbour state of one namespace."""

    addresses: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    neighbours: dict[tuple[int, IpAddr], bytes] = field(default_factory=dict)
    ip_forward: bool = False        # net.ipv4.ip_forward / net.ipv6.conf.all.forwarding

    def add_address(self, ifindex: int, cidr: str) -> Address:
        iface = ipaddress.ip_interface(cidr)
        addr = Address(ifindex, iface)
        if addr in self.addresses:
            raise ValueError(f"address {cidr} already assigned")
        self.addresses.append(addr)
        host = ipaddress.ip_network(f"{iface.ip}/{iface.max_prefixlen}")
        self.routes.append(Route(host, ifindex, src=iface.ip, table=RT_TABLE_LOCAL,
                                 type="local", scope="host"))
        if iface.network.prefixlen < iface.max_prefixlen:
            # IPv6 prefix routes get IP6_RT_PRIO_ADDRCONF (256); IPv4 ones metric 0.
            metric = IP6_RT_PRIO_ADDRCONF if iface.version == 6 else 0
            self.routes.append(Route(iface.network, ifindex, src=iface.ip, scope="link",
                                     metric=metric))
        return addr

    def del_address(self, ifindex: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        addr = Address(ifindex, iface)
        if addr not in self.addresses:
            raise ValueError(f"address {cidr} not assigned")
        self.addresses.remove(addr)
        self.routes = [r for r in self.routes if not (r.ifindex == ifindex and r.src == iface.ip
                                                      and r.scope in ("host", "link"))]

    def del_route(self, dst: IpNet, table: int = RT_TABLE_MAIN) -> None:
        for route in self.routes:
            if route.dst == dst and route.table == table:
                self.routes.remove(route)
                return
        raise ValueError("No such process")

    def del_neigh(self, ifindex: int, ip: str | bytes | IpAddr) -> None:
        if self.neighbours.pop((ifindex, parse_ip(ip)), None) is None:
            raise ValueError("No such file or directory")

    def add_route(self, route: Route) -> None:
        if route.type not in ROUTE_TYPES:
            raise ValueError(f"unknown route type {route.type!r}")
        for old in self.routes:
            if (old.dst, old.table, old.metric) == (route.dst, route.table, route.metric):
                raise ValueError(f"route {route.dst} already exists")
        self.routes.append(route)

    def add_neigh(self, ifindex: int, ip: str | bytes | IpAddr, mac: bytes) -> None:
        self.neighbours[(ifindex, parse_ip(ip))] = bytes(mac)

    def neigh(self, ifindex: int, ip: IpAddr) -> bytes | None:
        return self.neighbours.get((ifindex, ip))

    def remove_dev(self, ifindex: int) -> None:
        """Forget everything tied to a device that left the namespace."""
        self.addresses = [a for a in self.addresses if a.ifindex != ifindex]
        self.routes = [r for r in self.routes if r.ifindex != ifindex]
        self.neighbours = {k: v for k, v in self.neighbours.items() if k[0] != ifindex}

    def is_local(self, ip: IpAddr) -> bool:
        return self.is_local_packed(ip.packed)

    def is_local_packed(self, raw: bytes) -> bool:
        """:meth:`is_local` of an address given as its network-order bytes (4 or 16; an
        IPv4 and an IPv6 address never compare equal): what the receive path asks of
        every datagram, without making an address object."""
        return any(a.interface.packed == raw for a in self.addresses)

    def lookup(self, dst: IpAddr, table: int | None = None,
               oif: int | None = None, *, with_local: bool = True) -> Route | None:
        """Longest-prefix match: the local table (unless ``with_local`` is False, as for
        a direct one-table lookup), then ``table`` (main by default)."""
        main = table if table is not None else RT_TABLE_MAIN
        tables = (RT_TABLE_LOCAL, main) if with_local else (main,)
        for tbl in tables:
            best: Route | None = None
            for route in self.routes:
                if route.table != tbl or route.dst.version != dst.version:
                    continue
                if dst not in route.dst or (oif and route.ifindex not in (None, oif)):
                    continue
                if best is None or (route.dst.prefixlen, -route.metric) > \
                        (best.dst.prefixlen, -best.metric):
                    best = route
            if best is not None:
                return best
        return None

    def prefsrc(self, route: Route, dst: IpAddr) -> IpAddr | None:
        """``fib_result_prefsrc``: the route's ``src``, else an address of the output
        device in the destination's (or gateway's) subnet, else the device's first."""
        if route.src is not None:
            return route.src
        target = route.via or dst
        mine = [a for a in self.addresses
                if a.ifindex == route.ifindex and a.ip.version == dst.version]
        for addr in mine:
            if target in addr.interface.network:
                return addr.ip
        return mine[0].ip if mine else None
