"""``ip`` command lines → typed commands (iproute2 ``ip/ip.c``, ``ip/ipaddress.c``,
``ip/iproute.c``, ``ip/ipneigh.c``, ``ip/ipnetns.c``; iproute2 6.1).  ``ip link`` is in
:mod:`tcemu.cmd.ip_link`.

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
    duparg2,
    invarg,
    matches,
    split_words,
)
from tcemu.cmd.ip_link import (
    addr_or_die,
    eth_addr,
    family_name,
    link,
    prefix_or_die,
    show_dev,
)
from tcemu.cmd.values import get_uint, ll_addr

__all__ = ["parse_ip", "parse_ip_words"]

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
            ("-color", False), ("-netns", True), ("-Numeric", False), ("-json", False),
            ("-pretty", False), ("-brief", False), ("-echo", False))

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
        if any(matches(opt, o) for o in ("-batch", "-Version", "-rcvbuf")) \
                or opt in ("-a", "-all"):
            raise a.unsupported(f'tcemu does not model "ip {a.cur}"')
        hit = next((o for o in _OPTIONS if matches(opt, o[0])), None)
        if hit is None:
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
# ip address / route / neigh / netns
# ---------------------------------------------------------------------------------

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
                prefix = prefix_or_die(a, w, family)
                if not isinstance(prefix, tuple):
                    raise a.error(f'Error: {family_name(family)} prefix is expected '
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
        return m.IpShow(ns=ns, object="address", dev=show_dev(a))
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
        return m.IpShow(ns=ns, object="route", dev=_routeshow_dev(a))
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
            src = addr_or_die(a, a.next_arg(), family)
        elif w == "via":
            if via is not None:
                raise a.error(invarg("use nexthop syntax to specify multiple via", w))
            via = addr_or_die(a, a.next_arg(), family)
            if family == 0:
                family = via.version
        elif w in ("dev", "oif"):
            dev = a.next_arg()
        elif matches(w, "realms"):
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
            prefix = prefix_or_die(a, w, family)
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


def _routeshow_dev(a: Args) -> str | None:
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
        return m.IpShow(ns=ns, object="neigh", dev=show_dev(a))
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
            dst = addr_or_die(a, w, family)
        a.advance()
    if dev is None or dst is None:
        raise a.error("Device and destination are required arguments.")
    eth_addr(a, lladdr, "Error: Invalid link address.")
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
    "link": link,
    "address": _address,
    "route": _route,
    "neighbor": _neigh,
    "neighbour": _neigh,
    "netns": _netns,
}
