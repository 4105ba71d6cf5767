"""Typed commands → canonical ``ip``/``tc`` command text (the inverse of the parsers).

``parse(render(cmd)) == cmd`` for every command the parsers can produce; the text is
what iproute2 6.1 accepts, so a kernel backend can run it unchanged (``shlex.split``
and exec).  The output is canonical, not minimal: device names always follow ``dev``
or ``name``, sections are always given, rates are written in bytes per second
(``Bps``), sizes in bytes, times in microseconds, probabilities as exact percentages.
A value tc syntax cannot express (a ``gact`` verdict of ``stolen``) raises ValueError.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from tcemu.cmd import model as m
from tcemu.cmd.values import (
    PSCHED_TICK_NS,
    U32_MAX,
    format_classid,
    format_proto,
    get_percent_u32,
    ticks_to_usec,
)

__all__ = ["render"]

_NUD_NAMES = {0x80: "permanent", 0x02: "reachable", 0x40: "noarp", 0x00: "none",
              0x04: "stale", 0x01: "incomplete", 0x08: "delay", 0x10: "probe",
              0x20: "failed"}
_PTYPES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost"}


def _q(word: str) -> str:
    return shlex.quote(word)


def render(cmd: m.Command) -> str:
    """The canonical command line for ``cmd``, starting with ``ip`` or ``tc``."""
    for cls, (tool, fn) in _RENDERERS.items():
        if isinstance(cmd, cls):
            words = fn(cmd)
            prefix = [tool] + (["-n", _q(cmd.ns)] if cmd.ns is not None else [])
            return " ".join(prefix + words)
    raise ValueError(f"render: no renderer for {type(cmd).__name__}")


# ---------------------------------------------------------------------------------
# ip
# ---------------------------------------------------------------------------------

def _link_common(address: str | None, mtu: int | None, netns: str | None) -> list[str]:
    out = []
    if address is not None:
        out += ["address", address]
    if mtu is not None:
        out += ["mtu", str(mtu)]
    if netns is not None:
        out += ["netns", _q(netns)]
    return out


def _link_add(c: m.LinkAdd) -> list[str]:
    out = ["link", "add"]
    if c.link is not None:
        out += ["link", _q(c.link)]
    out += ["name", _q(c.name)]
    out += _link_common(c.address, c.mtu, c.netns)
    if c.up is not None:
        out.append("up" if c.up else "down")
    out += ["type", c.info.kind]
    info = c.info
    if isinstance(info, m.VethInfo) and info.peer is not None:
        out.append("peer")
        if info.peer.name is not None:
            out += ["name", _q(info.peer.name)]
        out += _link_common(info.peer.address, info.peer.mtu, info.peer.netns)
    elif isinstance(info, m.VlanInfo):
        out += ["id", str(info.id), "protocol", format_proto(info.protocol)]
    elif isinstance(info, m.VxlanInfo):
        out += ["external"] if info.external else []
        out += ["id", str(info.vni)] if info.vni is not None else []
        for key in ("remote", "local"):
            value = getattr(info, key)
            if value is not None:
                out += [key, str(value)]
        if info.dstport is not None:
            out += ["dstport", str(info.dstport)]
        if info.dev is not None:
            out += ["dev", _q(info.dev)]
        if info.ttl is not None:
            out += ["ttl", str(info.ttl)]
        if info.tos is not None:
            out += ["tos", f"{info.tos:x}"]
        if info.learning is not None:
            out.append("learning" if info.learning else "nolearning")
        if info.udpcsum is not None:
            out.append("udpcsum" if info.udpcsum else "noudpcsum")
    return out


def _link_set(c: m.LinkSet) -> list[str]:
    out = ["link", "set", "dev", _q(c.dev)]
    if c.up is not None:
        out.append("up" if c.up else "down")
    out += _link_common(c.address, c.mtu, c.netns)
    if c.name is not None:
        out += ["name", _q(c.name)]
    return out


def _route_dst(dst: m.IpNetwork) -> str:
    if dst.prefixlen == 0 and dst.version == 4:
        return "default"
    return str(dst)


def _route(c: m.RouteAdd | m.RouteDel) -> list[str]:
    out = ["route", "add" if isinstance(c, m.RouteAdd) else "del", _route_dst(c.dst)]
    if c.via is not None:
        out += ["via", str(c.via)]
    if c.dev is not None:
        out += ["dev", _q(c.dev)]
    if isinstance(c, m.RouteAdd):
        if c.src is not None:
            out += ["src", str(c.src)]
        if c.realm is not None:
            src, dst = c.realm >> 16, c.realm & 0xFFFF
            out += ["realm", f"{src}/{dst}" if src else str(dst)]
    return out


def _neigh(c: m.NeighAdd | m.NeighDel) -> list[str]:
    out = ["neigh", "add" if isinstance(c, m.NeighAdd) else "del", str(c.address)]
    if isinstance(c, m.NeighAdd):
        if c.lladdr is not None:
            out += ["lladdr", c.lladdr]
        out += ["nud", _NUD_NAMES.get(c.nud, str(c.nud))]
    return [*out, "dev", _q(c.dev)]


def _ip_show(c: m.IpShow) -> list[str]:
    out = [c.object, "show"]
    if c.dev is not None:
        out += ["dev", _q(c.dev)]
    return out


# ---------------------------------------------------------------------------------
# tc
# ---------------------------------------------------------------------------------

def _rate(bps: int) -> str:
    return f"{bps}Bps"


def _percent(value: int) -> str:
    """The shortest percentage tc reads back (``rint(p / 100 * UINT32_MAX)``) as ``value``."""
    exact = value * 100 / U32_MAX
    for digits in range(16):
        text = f"{exact:.{digits}f}"
        if get_percent_u32(text + "%") == value:
            return text + "%"
    return f"{exact!r}%"


def _usec(ns: int) -> str:
    return f"{ns // 1000}us"


def _ticks(ns: int) -> str:
    """A netem time: the microseconds tc turns back into these 64 ns ticks."""
    return f"{ticks_to_usec(ns // PSCHED_TICK_NS)}us"


def _handle(h: int) -> str:
    return f"{h >> 16:x}:"


def _parent(parent: int) -> list[str]:
    return ["root"] if parent == m.TC_H_ROOT else ["parent", format_classid(parent)]


def _qdisc_opts(q: m.QdiscOptions) -> list[str]:
    out: list[str] = [q.kind]
    if isinstance(q, m.PfifoQdisc | m.BfifoQdisc | m.PfifoHeadDropQdisc) \
            and q.limit is not None:
        out += ["limit", str(q.limit)]
    elif isinstance(q, m.PrioQdisc):
        out += ["bands", str(q.bands), "priomap", *map(str, q.priomap)]
    elif isinstance(q, m.HtbQdisc):
        out += ["default", f"{q.default:x}", "r2q", str(q.r2q)]
    elif isinstance(q, m.TbfQdisc):
        out += ["rate", _rate(q.rate), "burst", f"{q.burst}b"]
        if q.latency is not None:
            out += ["latency", _usec(q.latency)]
        if q.limit is not None:
            out += ["limit", f"{q.limit}b"]
        if q.peakrate is not None:
            out += ["peakrate", _rate(q.peakrate)]
        if q.mtu is not None:
            out += ["mtu", f"{q.mtu}b"]
    elif isinstance(q, m.NetemQdisc):
        out += ["limit", str(q.limit)]
        if q.delay or q.jitter or q.delay_corr:
            out += ["delay", _ticks(q.delay)]
            if q.jitter or q.delay_corr:
                out.append(_ticks(q.jitter))
                if q.delay_corr:
                    out.append(_percent(q.delay_corr))
        for key in ("loss", "duplicate", "reorder"):
            value, corr = getattr(q, key), getattr(q, f"{key}_corr")
            if value or corr:
                out += [key] + (["random"] if key == "loss" else [])
                out.append(_percent(value))
                if corr:
                    out.append(_percent(corr))
        if q.gap:
            out += ["gap", str(q.gap)]
        if q.rate is not None:
            out += ["rate", _rate(q.rate)]
    return out


def _qdisc_add(c: m.QdiscAdd) -> list[str]:
    out = ["qdisc", c.mode, "dev", _q(c.dev)]
    if isinstance(c.qdisc, m.ClsactQdisc | m.IngressQdisc):
        # The keyword is the only spelling: it sets parent ffff:fff1 and handle ffff:.
        if c.parent != m.TC_H_INGRESS or c.handle != 0xFFFF0000:
            raise ValueError(f"render: a {c.qdisc.kind} qdisc sits at ffff:fff1 as ffff:")
        return [*out, c.qdisc.kind]
    out += _parent(c.parent)
    if c.handle is not None:
        out += ["handle", _handle(c.handle)]
    return out + _qdisc_opts(c.qdisc)


def _qdisc_del(c: m.QdiscDel) -> list[str]:
    out = ["qdisc", "del", "dev", _q(c.dev)]
    if c.kind in ("clsact", "ingress") and c.parent == m.TC_H_INGRESS:
        return [*out, c.kind]
    if c.parent is not None:
        out += _parent(c.parent)
    if c.handle is not None:
        out += ["handle", _handle(c.handle)]
    if c.kind is not None:
        out.append(c.kind)
    return out


def _class_add(c: m.ClassAdd) -> list[str]:
    o = c.options
    out = ["class", c.mode, "dev", _q(c.dev), *_parent(c.parent), "classid",
           format_classid(c.classid), "htb", "rate", _rate(o.rate)]
    if o.ceil is not None:
        out += ["ceil", _rate(o.ceil)]
    if o.burst is not None:
        out += ["burst", f"{o.burst}b"]
    if o.cburst is not None:
        out += ["cburst", f"{o.cburst}b"]
    out += ["prio", str(o.prio)]
    if o.quantum is not None:
        out += ["quantum", str(o.quantum)]
    return out


def _class_del(c: m.ClassDel) -> list[str]:
    out = ["class", "del", "dev", _q(c.dev)]
    if c.parent is not None:
        out += _parent(c.parent)
    return [*out, "classid", format_classid(c.classid)]


def _filter_parent(parent: int) -> list[str]:
    if parent == 0xFFFF_FFF2:
        return ["ingress"]
    if parent == 0xFFFF_FFF3:
        return ["egress"]
    return _parent(parent)


def _control(control: int) -> str:
    if control & ~m.TC_ACT_EXT_VAL_MASK == m.TC_ACT_GOTO_CHAIN and control >= 0:
        return f"goto chain {control & m.TC_ACT_EXT_VAL_MASK}"
    if control & ~m.TC_ACT_EXT_VAL_MASK == m.TC_ACT_JUMP and control >= 0:
        return f"jump {control & m.TC_ACT_EXT_VAL_MASK}"
    if control == m.TC_ACT_STOLEN:
        raise ValueError("render: tc has no verdict keyword for TC_ACT_STOLEN")
    return m.ACT_CONTROL_NAMES[control]


def _prog(p: m.BpfProg) -> list[str]:
    if isinstance(p, m.ObjProg):
        return ["obj", _q(p.path), "sec", _q(p.section)] + (["verbose"] if p.verbose else [])
    if isinstance(p, m.PinnedProg):
        return ["pinned", _q(p.path)]
    if isinstance(p, m.BytecodeProg):
        text = ",".join([str(len(p.insns))] + [" ".join(map(str, i)) for i in p.insns])
        return ["bytecode", _q(text)]
    return ["bytecode-file", _q(p.path)]


def _action(act: m.Action) -> list[str]:
    out: list[str] = ["action"]
    if isinstance(act, m.GactAction):
        return [*out, _control(act.control)]
    if isinstance(act, m.BpfAction):
        out += ["bpf", *_prog(act.prog)]
        default = m.TC_ACT_PIPE
    elif isinstance(act, m.MirredAction):
        out += ["mirred", act.direction, act.op, "dev", _q(act.dev)]
        if act.op == "redirect":
            if act.control != m.TC_ACT_STOLEN:
                raise ValueError("render: a mirred redirect's verdict is always stolen")
            return out
        default = m.TC_ACT_PIPE
    elif isinstance(act, m.VlanAction):
        out += ["vlan", act.op]
        if act.protocol is not None:
            out += ["protocol", format_proto(act.protocol)]
        if act.id is not None:
            out += ["id", str(act.id)]
        if act.priority is not None:
            out += ["priority", str(act.priority)]
        default = m.TC_ACT_PIPE
    elif isinstance(act, m.TunnelKeyAction):
        out += ["tunnel_key", act.op]
        for key, value in (("src_ip", act.src), ("dst_ip", act.dst), ("id", act.key_id),
                           ("dst_port", act.dst_port), ("tos", act.tos), ("ttl", act.ttl)):
            if value is not None:
                out += [key, str(value)]
        if not act.csum:
            out.append("nocsum")
        default = m.TC_ACT_PIPE
    else:
        out.append("skbedit")
        if act.queue_mapping is not None:
            out += ["queue_mapping", str(act.queue_mapping)]
        if act.priority is not None:
            out += ["priority", format_classid(act.priority)]
        if act.mark is not None:
            out += ["mark", str(act.mark) + (f"/{act.mask:#x}" if act.mask is not None else "")]
        if act.ptype is not None:
            out += ["ptype", _PTYPES[act.ptype]]
        default = m.TC_ACT_PIPE
    if act.control != default:
        out += _control(act.control).split()
    return out


def _filter_add(c: m.FilterAdd) -> list[str]:
    out = ["filter", c.mode, "dev", _q(c.dev), *_filter_parent(c.parent),
           "protocol", format_proto(c.protocol)]
    if c.prio:
        out += ["pref", str(c.prio)]
    if c.handle is not None:
        out += ["handle", f"{c.handle:#x}"]
    if c.chain is not None:
        out += ["chain", str(c.chain)]
    f = c.filter
    out.append(f.kind)
    if isinstance(f, m.BpfFilter):
        out += _prog(f.prog)
        if f.direct_action:
            out.append("da")
    elif (f.skip_sw or f.skip_hw) and f.classid is None and not f.actions:
        # matchall reads past a skip flag (NEXT_ARG): it cannot be the last word.
        raise ValueError("render: tc cannot write a matchall skip flag with nothing after it")
    if f.skip_sw:
        out.append("skip_sw")
    if f.skip_hw:
        out.append("skip_hw")
    if f.classid is not None:
        out += ["classid", format_classid(f.classid)]
    for act in f.actions:
        out += _action(act)
    return out


def _filter_del(c: m.FilterDel) -> list[str]:
    out = ["filter", "del", "dev", _q(c.dev)]
    if c.parent is not None:
        out += _filter_parent(c.parent)
    if c.protocol is not None:
        out += ["protocol", format_proto(c.protocol)]
    if c.prio is not None:
        out += ["pref", str(c.prio)]
    if c.handle is not None:
        out += ["handle", f"{c.handle:#x}"]
    if c.chain is not None:
        out += ["chain", str(c.chain)]
    if c.kind is not None:
        out.append(c.kind)
    return out


def _tc_show(c: m.TcShow) -> list[str]:
    out = (["-s"] if c.stats else []) + [c.object, "show"]
    if c.dev is not None:
        out += ["dev", _q(c.dev)]
    if c.parent is not None:
        if c.object == "filter" and c.parent in (0xFFFF_FFF2, 0xFFFF_FFF3):
            out += _filter_parent(c.parent)
        elif c.object != "filter" and c.parent == m.TC_H_INGRESS:
            out.append("ingress")
        else:
            out += _parent(c.parent)
    return out


def _addr(c: m.AddrAdd | m.AddrDel) -> list[str]:
    verb = "add" if isinstance(c, m.AddrAdd) else "del"
    return ["address", verb, str(c.address), "dev", _q(c.dev)]


_RENDERERS: dict[type, tuple[str, Callable[[Any], list[str]]]] = {
    m.LinkAdd: ("ip", _link_add),
    m.LinkSet: ("ip", _link_set),
    m.LinkDel: ("ip", lambda c: ["link", "del", "dev", _q(c.dev)]),
    m.AddrAdd: ("ip", _addr),
    m.AddrDel: ("ip", _addr),
    m.RouteAdd: ("ip", _route),
    m.RouteDel: ("ip", _route),
    m.NeighAdd: ("ip", _neigh),
    m.NeighDel: ("ip", _neigh),
    m.NetnsAdd: ("ip", lambda c: ["netns", "add", _q(c.name)]),
    m.NetnsDel: ("ip", lambda c: ["netns", "del", _q(c.name)]),
    m.IpShow: ("ip", _ip_show),
    m.QdiscAdd: ("tc", _qdisc_add),
    m.QdiscDel: ("tc", _qdisc_del),
    m.ClassAdd: ("tc", _class_add),
    m.ClassDel: ("tc", _class_del),
    m.FilterAdd: ("tc", _filter_add),
    m.FilterDel: ("tc", _filter_del),
    m.TcShow: ("tc", _tc_show),
}
