"""``ip`` command lines → typed commands (iproute2 ``ip/ip.c``, ``ip/iplink.c``,
``ip/link_veth.c``, ``ip/iplink_vlan.c``, ``ip/iplink_vxlan.c``, ``ip/ipaddress.c``,
``ip/iproute.c``, ``ip/ipneigh.c``, ``ip/ipnetns.c``; iproute2 6.1).

Keywords are checked in iproute2's order with its ``matches()`` abbreviation rule, so
``ip l a``, ``ip r`` and even iproute2's surprises (``t`` is ``txqueuelen``, not
``type``) read the same.  Errors carry iproute2's text; mistakes only the kernel
notices (an unknown link type, a VLAN without an id) carry the kernel's extack text, as
``ip`` prints it.  Devices and namespaces are names: whether they exist is the
network's business, not the parser's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from tcemu.cmd import model as m
from tcemu.cmd.args import (
    Args,
    duparg,
    duparg2,
    invarg,
    matches,
    split_words,
)
from tcemu.cmd.values import (
    get_addr,
    get_integer,
    get_prefix,
    get_uint,
    ll_addr,
    ll_proto,
)

__all__ = ["parse_ip", "parse_ip_words"]

IFNAMSIZ = 16

# ip/ip.c cmds[], in order: the first keyword an abbreviation matches wins.
_OBJECTS = ("address", "addrlabel", "maddress", "route", "rule", "neighbor", "neighbour",
            "ntable", "ntbl", "link", "l2tp", "fou", "ila", "macsec", "tunnel", "tunl",
            "tuntap", "tap", "token", "tcpmetrics", "tcp_metrics", "monitor", "xfrm",
            "mroute", "mrule", "netns", "netconf", "vrf", "sr", "nexthop", "mptcp", "ioam",
            "stats", "help")

# ip/ip.c main(): (option, takes a value).  Display options do not change a command.
_OPTIONS = (("-loops", True), ("-family", True), ("-4", False), ("-6", False),
            ("-0", False), ("-human", False), ("-iec", False), ("-stats", False),
            ("-details", False), ("-resolve", False), ("-oneline", False),
            ("-timestamp", False), ("-tshort", False), ("-force", False),
            ("-color", False), ("-netns", True), ("-Numeric", False), ("-all", False),
            ("-json", False), ("-pretty", False), ("-brief", False), ("-echo", False))

# Kernel link kinds tcemu does not model (anything else is unknown to the kernel too).
_KNOWN_KINDS = frozenset({
    "bridge", "bond", "team", "macvlan", "macvtap", "ipvlan", "ipvtap", "geneve", "gre",
    "gretap", "ip6gre", "ip6gretap", "ipip", "sit", "ip6tnl", "vti", "vti6", "vrf", "ifb",
    "netkit", "tun", "tap", "nlmon", "wireguard", "bareudp", "gtp", "xfrm", "hsr", "macsec",
    "vcan", "vxcan", "can", "ipoib", "erspan", "ip6erspan", "amt", "batadv", "netdevsim",
    "rmnet", "virt_wifi", "wwan",
})

_NUD = (("permanent", 0x80, True), ("reachable", 0x02, True), ("noarp", 0x40, False),
        ("none", 0x00, False), ("stale", 0x04, False), ("incomplete", 0x01, False),
        ("delay", 0x08, False), ("probe", 0x10, False), ("failed", 0x20, True))


def parse_ip(line: str | Sequence[str], *, ns: str | None = None) -> m.Command:
    """Parse one ``ip`` command line (with or without the leading ``ip``).

    ``ip netns exec NS tc ...`` returns the tc command, with ``ns`` set.
    """
    words = split_words(line)
    if words[:1] == ["ip"]:
        words = words[1:]
    return parse_ip_words(words, ns=ns)


def parse_ip_words(words: Sequence[str], *, ns: str | None = None) -> m.Command:
    a = Args(words, tool="ip")
    family = 0
    while a and a.cur.startswith("-") and a.cur != "-":
        opt = a.cur
        if opt.startswith("--"):
            opt = opt[1:]
        if opt == "-n":
            opt = "-netns"
        hit = next((o for o in _OPTIONS if matches(opt, o[0])), None)
        if hit is None or opt in ("-b", "-batch", "-V", "-Version", "-rcvbuf"):
            if opt in ("-h", "-help"):
                raise a.error('Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }')
            raise a.error(f'Option "{a.cur}" is unknown, try "ip -help".')
        name, takes_value = hit
        if takes_value:
            if a.peek() is None:
                if name == "-netns":
                    raise a.error('Cannot open network namespace "(null)": '
                                  "No such file or directory")
                raise a.error('Command line is not complete. Try option "help"')
            value = a.next_arg()
            if name == "-netns":
                ns = value
            elif name == "-family":
                family = {"inet": 4, "inet6": 6}.get(value, -1)
                if family < 0:
                    raise a.unsupported(f'tcemu does not model address family "{value}"')
            elif name == "-loops":
                pass
        elif name in ("-4", "-6"):
            family = int(name[1])
        a.advance()
    if not a:
        raise a.error("Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }")
    word = a.take()
    obj = next((o for o in _OBJECTS if matches(word, o)), None)
    if obj is None:
        raise a.error(f'Object "{word}" is unknown, try "ip help".', at=a.pos - 1)
    handler = _HANDLERS.get(obj)
    if handler is None:
        raise a.unsupported(f'tcemu does not model "ip {obj}"')
    return handler(a, ns, family)


# ---------------------------------------------------------------------------------
# ip link
# ---------------------------------------------------------------------------------

class _LinkOpts:
    """What ``iplink_parse()`` collects before ``type``."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.dev: str | None = None
        self.link: str | None = None
        self.address: str | None = None
        self.mtu: int | None = None
        self.netns: str | None = None
        self.up: bool | None = None
        self.kind: str | None = None


_LINK_UNSUPPORTED_EXACT = ("index", "brd", "qlen", "xdpgeneric", "xdpdrv", "xdpoffload",
                           "xdp", "multicast", "allmulticast", "promisc", "trailers",
                           "arp", "carrier", "vf", "vrf", "group", "mode", "state",
                           "link-netns", "protodown", "protodown_reason", "gso_max_size",
                           "gso_max_segs", "gro_max_size", "gso_ipv4_max_size",
                           "gro_ipv4_max_size", "parentdev")


def _iplink_parse(a: Args, opts: _LinkOpts) -> None:
    """``iplink_parse()``: stops after ``type KIND`` (the rest is the kind's options)."""
    while a:
        w = a.cur
        if w == "up":
            opts.up = True
        elif w == "down":
            opts.up = False
        elif w == "name":
            value = a.next_arg()
            if opts.name is not None:
                raise a.error(duparg("name", value))
            opts.name = value
        elif matches(w, "link"):
            opts.link = a.next_arg()
        elif matches(w, "address"):
            mac, bad = ll_addr(a.next_arg())
            if mac is None:
                raise a.error(f'"{bad}" is invalid lladdr.')
            opts.address = mac
        elif matches(w, "broadcast") or matches(w, "txqueuelen") or matches(w, "txqlen"):
            what = "txqueuelen" if w[:1] == "t" else "broadcast"
            value = a.next_arg()
            if what == "txqueuelen" and get_integer(value) is None:
                raise a.error(invarg('Invalid "txqueuelen" value', value))
            raise a.unsupported(f'tcemu does not model "{what}" in "ip link"')
        elif w == "mtu":
            value = a.next_arg()
            if opts.mtu is not None:
                raise a.error(duparg("mtu", value))
            mtu = get_integer(value)
            if mtu is None:
                raise a.error(invarg('Invalid "mtu" value', value))
            opts.mtu = mtu
        elif w == "netns":
            value = a.next_arg()
            if opts.netns is not None:
                raise a.error(duparg("netns", value))
            # KERNEL-DIFF: ip falls back to a pid when no namespace has this name; here
            # it is always a name (the network resolves it).
            opts.netns = value
        elif w in _LINK_UNSUPPORTED_EXACT or any(
                matches(w, k) for k in ("master", "nomaster", "dynamic", "alias",
                                        "numtxqueues", "numrxqueues", "addrgenmode",
                                        "link-netnsid")):
            raise a.unsupported(f'tcemu does not model "{w}" in "ip link"')
        elif matches(w, "type"):
            opts.kind = a.next_arg()
            a.advance()
            return
        else:
            if matches(w, "help"):
                raise a.error("Usage: ip link add [link DEV] [ name ] NAME ... type TYPE")
            if w == "dev":
                w = a.next_arg()
            if opts.dev is not None:
                raise a.error(duparg2("dev", w))
            opts.dev = w
        a.advance()


def _check_ifname(a: Args, name: str) -> None:
    if not name:
        raise a.error(invarg('"" is not a valid device identifier', "name"))
    if len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name) \
            or name in (".", ".."):
        # The kernel's dev_valid_name() refusal, as ip reports it.
        raise a.error("Error: Attribute failed policy validation.")


def _eth_addr(a: Args, addr: str | None, message: str) -> None:
    """Every device tcemu models is Ethernet: the kernel wants 6 address bytes."""
    if addr is not None and addr.count(":") != 5:
        raise a.error(message)


_BAD_LINK_ADDR = "RTNETLINK answers: Invalid argument"


def _create_name(a: Args, opts: _LinkOpts) -> str:
    if opts.name is not None and opts.dev is not None and opts.name != opts.dev:
        raise a.error('both "name" and "dev" cannot be used when creating devices.')
    name = opts.name if opts.name is not None else opts.dev
    if name is None:
        raise a.error('Not enough information: "dev" argument is required.')
    _check_ifname(a, name)
    return name


def _link(a: Args, ns: str | None, family: int) -> m.Command:
    if not a:
        return m.IpShow(ns=ns, object="link")
    cmd = a.take()
    if matches(cmd, "add"):
        return _link_add(a, ns)
    if matches(cmd, "set") or matches(cmd, "change"):
        return _link_set(a, ns)
    if matches(cmd, "replace"):
        raise a.unsupported('tcemu does not model "ip link replace"')
    if matches(cmd, "delete"):
        opts = _LinkOpts()
        _iplink_parse(a, opts)
        if opts.dev is None:
            raise a.error('Not enough information: "dev" argument is required.')
        if opts.kind is not None or opts.mtu is not None or opts.up is not None:
            raise a.unsupported('tcemu deletes links by name only')
        return m.LinkDel(ns=ns, dev=opts.dev)
    if matches(cmd, "show") or matches(cmd, "lst") or matches(cmd, "list"):
        return m.IpShow(ns=ns, object="link", dev=_show_dev(a))
    raise a.error(f'Command "{cmd}" is unknown, try "ip link help".', at=a.pos - 1)


def _show_dev(a: Args) -> str | None:
    dev = None
    while a:
        w = a.take()
        if w == "dev":
            w = a.cur
            a.advance()
        if dev is not None:
            raise a.unsupported("tcemu shows one device or all of them")
        dev = w
    return dev


def _link_add(a: Args, ns: str | None) -> m.LinkAdd:
    opts = _LinkOpts()
    _iplink_parse(a, opts)
    if opts.name is not None and opts.dev is not None and opts.name != opts.dev:
        raise a.error('both "name" and "dev" cannot be used when creating devices.')
    if opts.kind is None:
        raise a.error('Not enough information: "type" argument is required')
    if opts.name is None and opts.dev is None:
        raise a.unsupported("tcemu needs a name for a new link (the kernel would pick one)")
    name = _create_name(a, opts)
    kind = opts.kind
    info: m.LinkInfo
    if kind == "veth":
        info = _veth(a) if a else m.VethInfo()
    elif kind == "vlan":
        info = _vlan(a, opts.link)
    elif kind == "vxlan":
        info = _vxlan(a)
    elif kind == "dummy":
        if a:
            # KERNEL-DIFF: ip 6.1 silently drops words after "type dummy"; tcemu refuses.
            raise a.error(f'Garbage instead of arguments "{a.cur} ...". '
                          'Try "ip link help".')
        info = m.DummyInfo()
    elif kind in _KNOWN_KINDS:
        raise a.unsupported(f'tcemu does not model links of type "{kind}"')
    elif a:
        raise a.error(f'Garbage instead of arguments "{a.cur} ...". Try "ip link help".')
    else:
        raise a.error("Error: Unknown device type.")
    _eth_addr(a, opts.address, _BAD_LINK_ADDR)
    if isinstance(info, m.VethInfo) and info.peer is not None:
        _eth_addr(a, info.peer.address, _BAD_LINK_ADDR)
    return m.LinkAdd(ns=ns, name=name, info=info, link=opts.link, address=opts.address,
                     mtu=opts.mtu, netns=opts.netns, up=opts.up)


def _veth(a: Args) -> m.VethInfo:
    if a.cur != "peer":
        raise a.error("Usage: ip link <options> type veth [peer <options>]")
    a.advance()
    opts = _LinkOpts()
    _iplink_parse(a, opts)
    if opts.kind is not None:
        raise a.unsupported('tcemu does not model "type" inside "peer"')
    if opts.name is not None and opts.dev is not None:
        raise a.error('both "name" and "dev" cannot be used when creating devices.')
    name = opts.name if opts.name is not None else opts.dev
    if name is not None:
        _check_ifname(a, name)
    if opts.link is not None or opts.up is not None:
        raise a.unsupported('tcemu models a veth peer\'s name, address, mtu and netns')
    return m.VethInfo(peer=m.VethPeer(name=name, address=opts.address, mtu=opts.mtu,
                                      netns=opts.netns))


def _vlan(a: Args, link: str | None) -> m.VlanInfo:
    vid: int | None = None
    proto: int | None = None
    while a:
        w = a.cur
        if matches(w, "protocol"):
            value = a.next_arg()
            proto = ll_proto(value)
            if proto is None:
                raise a.error(invarg("protocol is invalid", value))
        elif matches(w, "id"):
            value = a.next_arg()
            vid = get_uint(value, 0, 0xFFFF)
            if vid is None:
                raise a.error(invarg("id is invalid", value))
        elif w in ("reorder_hdr", "gvrp", "mvrp", "loose_binding", "bridge_binding",
                   "ingress-qos-map", "egress-qos-map"):
            raise a.unsupported(f'tcemu does not model vlan option "{w}"')
        elif matches(w, "help"):
            raise a.error("Usage: ... vlan id VLANID")
        else:
            raise a.error(f'vlan: unknown command "{w}"?')
        a.advance()
    # net/8021q/vlan_netlink.c: vlan_validate() and vlan_newlink() refusals.
    if proto is not None and proto not in (0x8100, 0x88A8):
        raise a.error("Error: 8021q: VLAN protocol not supported.")
    if vid is None:
        raise a.error("Error: 8021q: VLAN id not specified.")
    if vid >= 0xFFF:
        raise a.error("Error: 8021q: Invalid VLAN id.")
    if link is None:
        raise a.error("Error: 8021q: link not specified.")
    return m.VlanInfo(id=vid, protocol=proto if proto is not None else m.ETH_P_8021Q)


_VXLAN_UNSUPPORTED = ("group", "label", "flowlabel", "ageing", "maxaddress", "port",
                      "srcport", "noproxy", "proxy", "norsc", "rsc", "nol2miss", "l2miss",
                      "nol3miss", "l3miss", "udp6zerocsumtx", "noudp6zerocsumtx",
                      "udp6zerocsumrx", "noudp6zerocsumrx", "remcsumtx", "noremcsumtx",
                      "remcsumrx", "noremcsumrx", "gbp", "gpe", "noexternal", "df",
                      "localbypass", "nolocalbypass", "vnifilter")


def _vxlan(a: Args) -> m.VxlanInfo:
    if not a:
        raise a.error("Error: Required attributes not provided to perform the operation.")
    f: dict[str, object] = {}
    while a:
        w = a.cur
        if w in ("id", "vni"):
            value = a.next_arg()
            vni = get_uint(value, 0)
            if vni is None or vni >= 1 << 24:
                raise a.error(invarg("invalid id", value))
            f["vni"] = vni
        elif w == "remote":
            value = a.next_arg()
            addr = _addr_or_die(a, value, 0)
            if addr.is_multicast or addr.is_unspecified:
                raise a.error(invarg("invalid remote address", value))
            f["remote"] = addr
        elif w == "local":
            value = a.next_arg()
            addr = _addr_or_die(a, value, 0)
            if addr.is_multicast:
                raise a.error(invarg("invalid local address", value))
            f["local"] = addr
        elif w == "dev":
            f["dev"] = a.next_arg()
        elif w in ("ttl", "hoplimit"):
            value = a.next_arg()
            if value == "inherit":
                raise a.unsupported('tcemu does not model "ttl inherit"')
            ttl = get_uint(value, 0)
            if ttl is None:
                raise a.error(invarg("invalid TTL", value))
            if ttl > 255:
                raise a.error(invarg("TTL must be <= 255", value))
            f["ttl"] = ttl
        elif w in ("tos", "dsfield"):
            value = a.next_arg()
            if value == "inherit":
                raise a.unsupported('tcemu does not model "tos inherit"')
            tos = get_uint(value, 16, 0xFF)
            if tos is None:
                raise a.error(invarg("bad TOS value", value))
            f["tos"] = tos
        elif w == "dstport":
            value = a.next_arg()
            port = get_uint(value, 0, 0xFFFF)
            if port is None:
                raise a.error(invarg("dst port", value))
            f["dstport"] = port
        elif w in ("learning", "nolearning"):
            f["learning"] = w == "learning"
        elif w in ("udpcsum", "noudpcsum"):
            f["udpcsum"] = w == "udpcsum"
        elif w == "external":
            f["external"] = True
        elif w in _VXLAN_UNSUPPORTED:
            raise a.unsupported(f'tcemu does not model vxlan option "{w}"')
        elif matches(w, "help"):
            raise a.error("Usage: ... vxlan id VNI")
        else:
            raise a.error(f'vxlan: unknown command "{w}"?')
        a.advance()
    if f.get("external") and "vni" in f:
        raise a.error("vxlan: both 'external' and vni cannot be specified")
    if not f.get("external") and "vni" not in f:
        raise a.error("vxlan: missing virtual network identifier")
    return m.VxlanInfo(**f)  # type: ignore[arg-type]


def _link_set(a: Args, ns: str | None) -> m.LinkSet:
    opts = _LinkOpts()
    _iplink_parse(a, opts)
    if opts.dev is None:
        raise a.error('Not enough information: "dev" argument is required.')
    if opts.kind is not None or opts.link is not None:
        raise a.unsupported('tcemu does not model "type" or "link" in "ip link set"')
    if opts.name is not None:
        _check_ifname(a, opts.name)
    _eth_addr(a, opts.address, _BAD_LINK_ADDR)
    return m.LinkSet(ns=ns, dev=opts.dev, up=opts.up, mtu=opts.mtu, address=opts.address,
                     netns=opts.netns, name=opts.name)


# ---------------------------------------------------------------------------------
# ip address / route / neigh / netns
# ---------------------------------------------------------------------------------

def _family_name(family: int) -> str:
    return {0: "any valid", 4: "inet", 6: "inet6"}[family]


def _addr_or_die(a: Args, text: str, family: int) -> ipaddress.IPv4Address | \
        ipaddress.IPv6Address:
    addr = get_addr(text, family)
    if addr is None:
        raise a.error(f'Error: {_family_name(family)} address is expected rather than '
                      f'"{text}".')
    return addr


def _prefix_or_die(a: Args, text: str, family: int) -> m.IpNetwork | tuple[m.IpAddress, int]:
    prefix = get_prefix(text, family)
    if prefix is None:
        raise a.error(f'Error: {_family_name(family)} prefix is expected rather than '
                      f'"{text}".')
    return prefix


def _address(a: Args, ns: str | None, family: int) -> m.Command:
    if not a:
        return m.IpShow(ns=ns, object="address")
    cmd = a.take()
    if matches(cmd, "add") or matches(cmd, "delete"):
        adding = matches(cmd, "add")
        local: m.IpInterface | None = None
        dev: str | None = None
        while a:
            w = a.cur
            if w == "dev":
                dev = a.next_arg()
            elif w in ("peer", "remote", "broadcast", "brd", "anycast", "label", "scope",
                       "valid_lft", "preferred_lft", "metric", "proto", "home",
                       "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "optimistic") \
                    or matches(w, "broadcast") or matches(w, "scope"):
                raise a.unsupported(f'tcemu does not model "{w}" in "ip address"')
            else:
                if w == "local":
                    w = a.next_arg()
                if local is not None:
                    raise a.error(duparg2("local", w))
                prefix = _prefix_or_die(a, w, family)
                if not isinstance(prefix, tuple):
                    raise a.error(f'Error: {_family_name(family)} prefix is expected '
                                  f'rather than "{w}".')
                addr, plen = prefix
                local = ipaddress.ip_interface((addr, plen))
                if family == 0:
                    family = addr.version
            a.advance()
        if dev is None:
            raise a.error('Not enough information: "dev" argument is required.')
        if local is None:
            raise a.error("RTNETLINK answers: Operation not supported")
        cls = m.AddrAdd if adding else m.AddrDel
        return cls(ns=ns, address=local, dev=dev)
    if matches(cmd, "show") or matches(cmd, "lst") or matches(cmd, "list"):
        return m.IpShow(ns=ns, object="address", dev=_show_dev(a))
    if cmd in ("change", "chg", "replace", "flush", "get", "save", "showdump", "restore") \
            or matches(cmd, "change") or matches(cmd, "replace") or matches(cmd, "flush"):
        raise a.unsupported(f'tcemu does not model "ip address {cmd}"')
    raise a.error(f'Command "{cmd}" is unknown, try "ip address help".', at=a.pos - 1)


def _realm(text: str) -> int | None:
    """``get_rt_realms_or_raw``: ``FROM/TO`` (each a realm ≤ 0xffff) or the raw u32
    RTA_FLOW value (so ``realm 5`` is ``to 5``).  The only realm name is ``cosmos`` (0)."""
    def one(part: str, limit: int) -> int | None:
        if part == "cosmos":
            return 0
        return get_uint(part, 0, limit)
    if "/" in text:
        src, _, dst = text.partition("/")
        a, b = one(src, 0xFFFF), one(dst, 0xFFFF)
        if a is None or b is None:
            return None
        return (a << 16) | b
    return one(text, 0xFFFF_FFFF)


def _route(a: Args, ns: str | None, family: int) -> m.Command:
    if not a:
        return m.IpShow(ns=ns, object="route")
    cmd = a.take()
    adding = matches(cmd, "add")
    if matches(cmd, "show") or matches(cmd, "list") or matches(cmd, "lst"):
        return m.IpShow(ns=ns, object="route", dev=_route_show_dev(a))
    if not adding and not matches(cmd, "delete"):
        if any(matches(cmd, c) for c in ("change", "replace", "prepend", "append", "test",
                                         "flush", "get", "save", "restore", "showdump")):
            raise a.unsupported(f'tcemu does not model "ip route {cmd}"')
        raise a.error(f'Command "{cmd}" is unknown, try "ip route help".', at=a.pos - 1)
    dst: m.IpNetwork | None = None
    via = src = None
    dev: str | None = None
    realm: int | None = None
    while a:
        w = a.cur
        if w == "src":
            src = _addr_or_die(a, a.next_arg(), family)
        elif w == "via":
            if via is not None:
                raise a.error(invarg("use nexthop syntax to specify multiple via", w))
            via = _addr_or_die(a, a.next_arg(), family)
            if family == 0:
                family = via.version
        elif w in ("dev", "oif"):
            dev = a.next_arg()
        elif w in ("realm", "realms"):
            value = a.next_arg()
            realm = _realm(value)
            if realm is None:
                raise a.error(invarg('"realm" value is invalid', value))
        elif w in ("as", "from", "tos", "dsfield", "expires", "metric", "priority",
                   "preference", "mtu", "hoplimit", "advmss", "reordering", "rtt", "rttvar",
                   "window", "cwnd", "initcwnd", "initrwnd", "features", "quickack",
                   "congctl", "ssthresh", "rto_min", "onlink", "nexthop", "nhid", "table",
                   "vrf", "scope", "protocol", "encap", "ttl-propagate", "pref",
                   "fastopen_no_cookie", "table"):
            raise a.unsupported(f'tcemu does not model "{w}" in "ip route"')
        else:
            if w == "to":
                w = a.next_arg()
            if w in ("unicast", "local", "broadcast", "multicast", "throw", "unreachable",
                     "prohibit", "blackhole", "nat", "anycast"):
                if w != "unicast":
                    raise a.unsupported(f'tcemu does not model "{w}" routes')
                w = a.next_arg()
            if dst is not None:
                raise a.error(duparg2("to", w))
            prefix = _prefix_or_die(a, w, family)
            if isinstance(prefix, tuple):
                addr, plen = prefix
                try:
                    dst = ipaddress.ip_network((addr, plen))
                except ValueError:
                    # fib_table_insert(): host bits set under the prefix.
                    raise a.error("Error: Invalid prefix for given prefix length.") \
                        from None
            else:
                dst = prefix
            if family == 0 and w != "default":
                family = dst.version
        a.advance()
    if dst is None:
        raise a.error("Usage: ip route { list | flush } SELECTOR")
    if dst.prefixlen == 0 and dst.version == 4 and family == 6:
        dst = ipaddress.ip_network("::/0")
    if adding and dev is None and via is None:
        raise a.error("RTNETLINK answers: No such device")
    if adding:
        return m.RouteAdd(ns=ns, dst=dst, via=via, dev=dev, src=src, realm=realm)
    return m.RouteDel(ns=ns, dst=dst, via=via, dev=dev)


def _route_show_dev(a: Args) -> str | None:
    dev = None
    while a:
        w = a.take()
        if w not in ("dev", "oif"):
            raise a.unsupported("tcemu filters \"ip route show\" by device only")
        dev = a.cur
        a.advance()
    return dev


def _nud(text: str) -> int | None:
    for name, value, abbrev in _NUD:
        if (matches(text, name) if abbrev else text == name):
            return value
    state = get_uint(text, 0)
    if state is None or state >= 0x100 or state & (state - 1):
        return None
    return state


def _neigh(a: Args, ns: str | None, family: int) -> m.Command:
    if not a:
        return m.IpShow(ns=ns, object="neigh")
    cmd = a.take()
    if matches(cmd, "show") or matches(cmd, "list") or matches(cmd, "lst"):
        return m.IpShow(ns=ns, object="neigh", dev=_show_dev(a))
    adding = matches(cmd, "add")
    if not adding and not matches(cmd, "delete"):
        if any(matches(cmd, c) for c in ("change", "replace", "flush", "get")):
            raise a.unsupported(f'tcemu does not model "ip neigh {cmd}"')
        raise a.error(f'Command "{cmd}" is unknown, try "ip neigh help".', at=a.pos - 1)
    dst = None
    lladdr: str | None = None
    dev: str | None = None
    nud = m.NUD_PERMANENT
    while a:
        w = a.cur
        if matches(w, "lladdr"):
            value, bad = ll_addr(a.next_arg())
            if value is None:
                raise a.error(f'"{bad}" is invalid lladdr.')
            lladdr = value
        elif w == "nud":
            value = a.next_arg()
            state = _nud(value)
            if state is None:
                raise a.error(invarg("nud state is bad", value))
            nud = state
        elif w == "dev":
            dev = a.next_arg()
        elif w in ("proxy", "router", "extern_learn", "use", "managed", "protocol"):
            raise a.unsupported(f'tcemu does not model "{w}" in "ip neigh"')
        else:
            if w == "to":
                w = a.next_arg()
            if matches(w, "help"):
                w = a.next_arg()
            if dst is not None:
                raise a.error(duparg2("to", w))
            dst = _addr_or_die(a, w, family)
        a.advance()
    if dev is None or dst is None:
        raise a.error("Device and destination are required arguments.")
    _eth_addr(a, lladdr, "Error: Invalid link address.")
    if adding:
        return m.NeighAdd(ns=ns, address=dst, dev=dev, lladdr=lladdr, nud=nud)
    return m.NeighDel(ns=ns, address=dst, dev=dev)


def _netns(a: Args, ns: str | None, family: int) -> m.Command:
    if not a:
        return m.IpShow(ns=ns, object="netns")
    cmd = a.take()
    if matches(cmd, "list") or matches(cmd, "show"):
        return m.IpShow(ns=ns, object="netns")
    if matches(cmd, "add") or matches(cmd, "delete") or matches(cmd, "exec"):
        if not a:
            raise a.error("No netns name specified")
        name = a.take()
        if not name or "/" in name or name in (".", ".."):
            raise a.error(f'Invalid netns name "{name}"')
        if matches(cmd, "exec"):
            return _netns_exec(a, name, family)
        if a:
            # KERNEL-DIFF: ip 6.1 ignores words after the name; tcemu refuses them.
            raise a.error(f'Garbage instead of arguments "{a.cur} ...". Try "ip netns help".')
        return (m.NetnsAdd if matches(cmd, "add") else m.NetnsDel)(ns=ns, name=name)
    if any(matches(cmd, c) for c in ("attach", "set", "identify", "pids", "monitor",
                                     "list-id")):
        raise a.unsupported(f'tcemu does not model "ip netns {cmd}"')
    raise a.error(f'Command "{cmd}" is unknown, try "ip netns help".', at=a.pos - 1)


def _netns_exec(a: Args, name: str, family: int) -> m.Command:
    if not a:
        raise a.error("No command specified")
    prog = a.take()
    rest = a.rest()
    if prog == "ip":
        return parse_ip_words(rest, ns=name)
    if prog == "tc":
        from tcemu.cmd.tc import parse_tc_words
        return parse_tc_words(rest, ns=name)
    raise a.unsupported(f'tcemu runs only "ip" and "tc" inside "ip netns exec", not "{prog}"')


_HANDLERS: dict[str, Callable[[Args, str | None, int], m.Command]] = {
    "link": _link,
    "address": _address,
    "route": _route,
    "neighbor": _neigh,
    "neighbour": _neigh,
    "netns": _netns,
}
