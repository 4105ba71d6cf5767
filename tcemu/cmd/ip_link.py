"""``ip link`` command lines (iproute2 ``ip/iplink.c`` ``iplink_parse``/``iplink_modify``,
``ip/link_veth.c``, ``ip/iplink_vlan.c``, ``ip/iplink_vxlan.c``; 6.1) and the address
helpers the other ``ip`` objects share.

Kernel refusals that ``ip`` reports (a VLAN without an id, a name longer than
IFNAMSIZ-1) carry the kernel's extack text (``net/8021q/vlan_netlink.c``,
``net/core/rtnetlink.c``).
"""

from __future__ import annotations

import ipaddress

from tcemu.cmd import model as m
from tcemu.cmd.args import Args, duparg, duparg2, invarg, matches
from tcemu.cmd.values import get_addr, get_integer, get_prefix, get_uint, ll_addr, ll_proto

__all__ = ["addr_or_die", "eth_addr", "family_name", "link", "prefix_or_die", "show_dev"]

IFNAMSIZ = 16

# Kernel link kinds tcemu does not model (anything else is unknown to the kernel too).
_KNOWN_KINDS = frozenset({
    "bridge", "bond", "team", "macvlan", "macvtap", "ipvlan", "ipvtap", "geneve", "gre",
    "gretap", "ip6gre", "ip6gretap", "ipip", "sit", "ip6tnl", "vti", "vti6", "vrf", "ifb",
    "netkit", "tun", "tap", "nlmon", "wireguard", "bareudp", "gtp", "xfrm", "hsr", "macsec",
    "vcan", "vxcan", "can", "ipoib", "erspan", "ip6erspan", "amt", "batadv", "netdevsim",
    "rmnet", "virt_wifi", "wwan",
})


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


def eth_addr(a: Args, addr: str | None, message: str) -> None:
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


def link(a: Args, ns: str | None, family: int) -> m.Command:
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
        return m.IpShow(ns=ns, object="link", dev=show_dev(a))
    raise a.error(f'Command "{cmd}" is unknown, try "ip link help".', at=a.pos - 1)


_SHOW_FILTERS = ("up", "type", "master", "vrf", "group", "scope", "label", "to", "primary",
                 "secondary", "dynamic", "permanent", "tentative", "deprecated", "dadfailed",
                 "temporary", "nomaster", "proxy", "nud", "router", "unused")


def show_dev(a: Args) -> str | None:
    """``ip OBJ show [dev] NAME``: the one device asked for, or None for all."""
    dev = None
    while a:
        w = a.take()
        if w in _SHOW_FILTERS:
            raise a.unsupported(f'tcemu filters "show" by device only, not by "{w}"')
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
    eth_addr(a, opts.address, _BAD_LINK_ADDR)
    if isinstance(info, m.VethInfo) and info.peer is not None:
        eth_addr(a, info.peer.address, _BAD_LINK_ADDR)
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


# ip/iplink_vxlan.c vxlan_parse_opt(): every keyword, in order; abbreviations match the
# first one (so "d" is "dev", "t" is "ttl", "no" is "nolearning").
_VXLAN_KEYWORDS = (
    "id", "vni", "group", "remote", "local", "dev", "ttl", "hoplimit", "tos", "dsfield",
    "label", "flowlabel", "ageing", "maxaddress", "port", "srcport", "dstport",
    "nolearning", "learning", "noproxy", "proxy", "norsc", "rsc", "nol2miss", "l2miss",
    "nol3miss", "l3miss", "udpcsum", "noudpcsum", "udp6zerocsumtx", "noudp6zerocsumtx",
    "udp6zerocsumrx", "noudp6zerocsumrx", "remcsumtx", "noremcsumtx", "remcsumrx",
    "noremcsumrx", "external", "noexternal", "gbp", "gpe", "df", "localbypass",
    "nolocalbypass", "vnifilter", "help",
)
# Options that share one netlink attribute, under the name check_duparg() reports.
_VXLAN_ATTR = {"id": "id", "vni": "id", "ttl": "ttl", "hoplimit": "ttl", "tos": "tos",
               "dsfield": "tos", "learning": "learning", "nolearning": "learning",
               "udpcsum": "udpcsum", "noudpcsum": "udpcsum"}
_VXLAN_FLAGS = frozenset({"learning", "nolearning", "udpcsum", "noudpcsum", "external"})
_VXLAN_MODELLED = frozenset({"id", "vni", "remote", "local", "dev", "ttl", "hoplimit",
                             "tos", "dsfield", "dstport", "nolearning", "learning",
                             "udpcsum", "noudpcsum", "external", "help"})


def _vxlan(a: Args) -> m.VxlanInfo:
    if not a:
        raise a.error("Error: Required attributes not provided to perform the operation.")
    f: dict[str, object] = {}
    seen: set[str] = set()
    while a:
        w = a.cur
        key = next((k for k in _VXLAN_KEYWORDS if matches(w, k)), None)
        if key is None:
            raise a.error(f'vxlan: unknown command "{w}"?')
        if key not in _VXLAN_MODELLED:
            raise a.unsupported(f'tcemu does not model vxlan option "{key}"')
        # check_duparg(): a valued option names its attribute, a flag the word typed.
        attr = _VXLAN_ATTR.get(key, key)
        if attr in seen:
            if key in _VXLAN_FLAGS:
                raise a.error(duparg2(w, w))
            raise a.error(duparg2(attr, a.peek() or ""))
        seen.add(attr)
        if key in ("id", "vni"):
            value = a.next_arg()
            vni = get_uint(value, 0)
            if vni is None or vni >= 1 << 24:
                raise a.error(invarg("invalid id", value))
            f["vni"] = vni
        elif key in ("remote", "local"):
            value = a.next_arg()
            other = f.get("local" if key == "remote" else "remote")
            family = other.version if isinstance(other, ipaddress.IPv4Address
                                                 | ipaddress.IPv6Address) else 0
            addr = addr_or_die(a, value, family)
            if addr.is_multicast:
                raise a.error(invarg(f"invalid {key} address", value))
            f[key] = addr
        elif key == "dev":
            f["dev"] = a.next_arg()
        elif key in ("ttl", "hoplimit"):
            value = a.next_arg()
            if value == "inherit":
                raise a.unsupported('tcemu does not model "ttl inherit"')
            ttl = get_uint(value, 0)
            if ttl is None:
                raise a.error(invarg("invalid TTL", value))
            if ttl > 255:
                raise a.error(invarg("TTL must be <= 255", value))
            f["ttl"] = ttl
        elif key in ("tos", "dsfield"):
            value = a.next_arg()
            # iplink_vxlan.c sends "inherit" as 1, the value the driver reads as inherit
            tos = 1 if value == "inherit" else get_uint(value, 16, 0xFF)
            if tos is None:
                raise a.error(invarg("bad TOS value", value))
            f["tos"] = tos
        elif key == "dstport":
            value = a.next_arg()
            port = get_uint(value, 0, 0xFFFF)
            if port is None:
                raise a.error(invarg("dst port", value))
            f["dstport"] = port
        elif key in ("learning", "nolearning"):
            f["learning"] = key == "learning"
        elif key in ("udpcsum", "noudpcsum"):
            f["udpcsum"] = key == "udpcsum"
        elif key == "external":
            f["external"] = True
        else:
            raise a.error("Usage: ... vxlan id VNI")
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
    eth_addr(a, opts.address, _BAD_LINK_ADDR)
    return m.LinkSet(ns=ns, dev=opts.dev, up=opts.up, mtu=opts.mtu, address=opts.address,
                     netns=opts.netns, name=opts.name)


def family_name(family: int) -> str:
    return {0: "any valid", 4: "inet", 6: "inet6"}[family]


def addr_or_die(a: Args, text: str, family: int) -> ipaddress.IPv4Address | \
        ipaddress.IPv6Address:
    addr = get_addr(text, family)
    if addr is None:
        raise a.error(f'Error: {family_name(family)} address is expected rather than '
                      f'"{text}".')
    return addr


def prefix_or_die(a: Args, text: str, family: int) -> m.IpNetwork | tuple[m.IpAddress, int]:
    prefix = get_prefix(text, family)
    if prefix is None:
        raise a.error(f'Error: {family_name(family)} prefix is expected rather than '
                      f'"{text}".')
    return prefix
