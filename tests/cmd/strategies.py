"""Hypothesis strategies for command objects the parsers can produce (their invariants
included: a vxlan has a VNI or ``external``, a tbf has latency or limit, a redirect's
verdict is STOLEN...)."""

from __future__ import annotations

import ipaddress
import string
from typing import Literal, TypeVar

from hypothesis import strategies as st

from tcemu.cmd import model as m

U32 = 0xFFFF_FFFF
U16 = 0xFFFF

names = st.text(string.ascii_letters + string.digits + "._-@", min_size=1, max_size=15) \
    .filter(lambda s: s not in (".", ".."))
paths = st.text(string.ascii_letters + string.digits + "/._- ", min_size=1, max_size=30)
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
ipv4 = st.integers(0, U32).map(ipaddress.IPv4Address)
ipv6 = st.integers(0, (1 << 128) - 1).map(ipaddress.IPv6Address)
addrs = st.one_of(ipv4, ipv6)
u32 = st.integers(0, U32)
usec_ns = st.integers(0, U32).map(lambda us: us * 1000)
rates = st.integers(1, 1 << 40)


T = TypeVar("T")
MODES: tuple[m.Mode, ...] = ("add", "replace", "change")
VLAN_OPS: tuple[Literal["pop", "push", "modify"], ...] = ("pop", "push", "modify")
MIRRED_OPS: tuple[Literal["redirect", "mirror"], ...] = ("redirect", "mirror")
DIRECTIONS: tuple[Literal["egress", "ingress"], ...] = ("egress", "ingress")


def _opt(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


veth_peers = st.builds(m.VethPeer, name=_opt(names), address=_opt(macs),
                       mtu=_opt(st.integers(0, 65535)), netns=_opt(names))
veth = st.builds(m.VethInfo, peer=_opt(veth_peers))
vlan = st.builds(m.VlanInfo, id=st.integers(0, 4094),
                 protocol=st.sampled_from([0x8100, 0x88A8]))
v4_unicast = ipv4.filter(lambda a: not a.is_multicast)
v6_unicast = ipv6.filter(lambda a: not a.is_multicast)
# remote and local are one family (ip reads the second with the first one's family)
vxlan_ends = st.one_of(
    st.tuples(_opt(v4_unicast), _opt(v4_unicast)), st.tuples(_opt(v6_unicast), _opt(v6_unicast)))
vxlan = st.builds(
    lambda ends, **kw: m.VxlanInfo(remote=ends[0], local=ends[1], **kw),
    vxlan_ends, vni=st.integers(0, (1 << 24) - 1),
    dstport=_opt(st.integers(0, U16)), dev=_opt(names), ttl=_opt(st.integers(0, 255)),
    tos=_opt(st.integers(0, 255)), learning=_opt(st.booleans()),
    udpcsum=_opt(st.booleans()),
) | st.builds(m.VxlanInfo, vni=st.none(), external=st.just(True),
              dstport=_opt(st.integers(0, U16)))


@st.composite
def link_adds(draw: st.DrawFn) -> m.LinkAdd:
    info = draw(st.one_of(veth, vlan, vxlan, st.just(m.DummyInfo())))
    link = draw(names) if isinstance(info, m.VlanInfo) else draw(_opt(names))
    return m.LinkAdd(ns=draw(_opt(names)), name=draw(names), info=info, link=link,
                     address=draw(_opt(macs)), mtu=draw(_opt(st.integers(0, 65535))),
                     netns=draw(_opt(names)), up=draw(_opt(st.booleans())))


@st.composite
def prio_qdiscs(draw: st.DrawFn) -> m.PrioQdisc:
    bands = draw(st.integers(2, 16))
    priomap = draw(st.lists(st.integers(0, bands - 1), min_size=16, max_size=16))
    return m.PrioQdisc(bands=bands, priomap=tuple(priomap))


@st.composite
def tbf_qdiscs(draw: st.DrawFn) -> m.TbfQdisc:
    peak = draw(st.booleans())
    by_latency = draw(st.booleans())
    return m.TbfQdisc(rate=draw(rates), burst=draw(st.integers(1, U32)),
                      latency=draw(st.integers(1, U32)) * 1000 if by_latency else None,
                      limit=None if by_latency else draw(st.integers(1, U32)),
                      peakrate=draw(rates) if peak else None,
                      mtu=draw(st.integers(1, U32)) if peak else draw(_opt(st.integers(1, U32))))


MAX_TICK_USEC = 274_877_906  # the largest usec tc's get_ticks takes (2**32 ticks)
tick_ns = st.integers(0, MAX_TICK_USEC).map(lambda us: int(us * 15.625) * 64)


@st.composite
def netem_qdiscs(draw: st.DrawFn) -> m.NetemQdisc:
    reorder = draw(st.booleans())
    delay = draw(tick_ns.filter(bool)) if reorder else draw(tick_ns)
    return m.NetemQdisc(
        limit=draw(u32), delay=delay, jitter=draw(tick_ns), delay_corr=draw(u32),
        loss=draw(u32), loss_corr=draw(u32), duplicate=draw(u32), duplicate_corr=draw(u32),
        reorder=draw(st.integers(1, U32)) if reorder else 0,
        reorder_corr=draw(u32) if reorder else 0,
        gap=draw(st.integers(1, U32)) if reorder else 0, rate=draw(_opt(st.integers(0, 1 << 40))))


qdisc_options: st.SearchStrategy[m.QdiscOptions] = st.one_of(
    st.builds(m.PfifoQdisc, limit=_opt(u32)), st.just(m.PfifoFastQdisc()), prio_qdiscs(),
    st.builds(m.HtbQdisc, default=u32, r2q=u32), tbf_qdiscs(), netem_qdiscs())
classids = st.integers(0, U32)
handles = st.integers(0, U16).map(lambda major: major << 16)


@st.composite
def qdisc_adds(draw: st.DrawFn) -> m.QdiscAdd:
    mode = draw(st.sampled_from(MODES))
    if draw(st.booleans()):
        kinds: list[m.QdiscOptions] = [m.ClsactQdisc(), m.IngressQdisc()]
        kind = draw(st.sampled_from(kinds))
        return m.QdiscAdd(ns=draw(_opt(names)), dev=draw(names), parent=m.TC_H_INGRESS,
                          handle=0xFFFF0000,
                          qdisc=kind, mode=mode)
    parent = draw(classids.filter(lambda c: c not in (0, m.TC_H_INGRESS)))
    return m.QdiscAdd(ns=draw(_opt(names)), dev=draw(names), parent=parent,
                      handle=draw(_opt(handles)), qdisc=draw(qdisc_options), mode=mode)


insns = st.tuples(st.integers(0, U16), st.integers(0, 255), st.integers(0, 255), u32)
progs = st.one_of(
    st.builds(m.ObjProg, path=paths, section=paths, verbose=st.booleans()),
    st.builds(m.PinnedProg, path=paths),
    st.builds(m.BytecodeProg, insns=st.lists(insns, min_size=1, max_size=6).map(tuple)),
    st.builds(m.BytecodeFileProg, path=paths),
)
controls = st.one_of(
    st.sampled_from([m.TC_ACT_OK, m.TC_ACT_UNSPEC, m.TC_ACT_SHOT, m.TC_ACT_RECLASSIFY,
                     m.TC_ACT_PIPE, m.TC_ACT_TRAP]),
    st.integers(0, m.TC_ACT_EXT_VAL_MASK).map(lambda n: m.TC_ACT_GOTO_CHAIN | n),
    st.integers(0, m.TC_ACT_EXT_VAL_MASK).map(lambda n: m.TC_ACT_JUMP | n),
)


@st.composite
def vlan_actions(draw: st.DrawFn) -> m.VlanAction:
    op = draw(st.sampled_from(VLAN_OPS))
    if op == "pop":
        return m.VlanAction(op="pop", control=draw(controls))
    return m.VlanAction(op=op, id=draw(st.integers(0, 4094)),
                        protocol=draw(_opt(st.sampled_from([0x8100, 0x88A8]))),
                        priority=draw(_opt(st.integers(0, 7))), control=draw(controls))


@st.composite
def tunnel_key_actions(draw: st.DrawFn) -> m.TunnelKeyAction:
    if draw(st.booleans()):
        return m.TunnelKeyAction(op="unset", csum=draw(st.booleans()), control=draw(controls))
    return m.TunnelKeyAction(
        op="set", src=draw(addrs), dst=draw(addrs), key_id=draw(_opt(u32)),
        dst_port=draw(_opt(st.integers(0, U16))), tos=draw(_opt(st.integers(0, 255))),
        ttl=draw(_opt(st.integers(0, 255))), csum=draw(st.booleans()), control=draw(controls))


@st.composite
def skbedit_actions(draw: st.DrawFn) -> m.SkbeditAction:
    mark = draw(_opt(u32))
    act = m.SkbeditAction(
        mark=mark, mask=draw(_opt(u32)) if mark is not None else None,
        priority=draw(_opt(classids)), queue_mapping=draw(_opt(st.integers(0, U16))),
        ptype=draw(_opt(st.integers(0, 3))), control=draw(controls))
    if (act.mark, act.priority, act.queue_mapping, act.ptype) == (None,) * 4:
        return m.SkbeditAction(mark=0, control=act.control)
    return act


@st.composite
def mirred_actions(draw: st.DrawFn) -> m.MirredAction:
    op = draw(st.sampled_from(MIRRED_OPS))
    return m.MirredAction(direction=draw(st.sampled_from(DIRECTIONS)), op=op,
                          dev=draw(names),
                          control=m.TC_ACT_STOLEN if op == "redirect" else draw(controls))


actions = st.one_of(
    st.builds(m.GactAction, control=controls),
    st.builds(m.BpfAction, prog=progs, control=controls),
    mirred_actions(), vlan_actions(), tunnel_key_actions(), skbedit_actions())
action_lists = st.lists(actions, max_size=4).map(tuple)
classifiers = st.one_of(
    st.builds(m.BpfFilter, prog=progs, direct_action=st.booleans(), classid=_opt(classids),
              skip_sw=st.booleans(), skip_hw=st.booleans(), actions=action_lists),
    st.builds(m.MatchallFilter, classid=_opt(classids), actions=action_lists,
              skip_sw=st.booleans()).map(
        lambda f: f if f.classid is not None or f.actions
        else m.MatchallFilter(classid=f.classid, actions=f.actions)),
    st.builds(m.MatchallFilter, classid=classids, actions=action_lists,
              skip_hw=st.just(True)),
)
filter_adds = st.builds(
    m.FilterAdd, ns=_opt(names), dev=names,
    parent=st.one_of(st.sampled_from([0xFFFF_FFF2, 0xFFFF_FFF3, U32]), classids),
    filter=classifiers, protocol=st.integers(0, U16), prio=st.integers(0, U16),
    handle=_opt(u32), chain=_opt(u32), mode=st.sampled_from(MODES),
)
