"""Typed ``ip``/``tc`` commands: one frozen dataclass per command, action and option set.

What the netlink request of ``ip``/``tc`` carries, in kernel units (``include/uapi/linux/
rtnetlink.h``, ``pkt_sched.h``, ``pkt_cls.h``, ``tc_act/*.h``): handles and class ids
are u32 (``major << 16 | minor``), rates bytes per second, sizes bytes, times
nanoseconds, protocols host-order EtherType ints, probabilities u32 fractions of
``0xffffffff`` (as netem's attributes hold them), action verdicts ``TC_ACT_*`` ints.
Object paths stay strings: parsing touches no file and no network.

Every command has ``ns``: the network namespace it runs in (``ip -n NS``, ``tc -n NS``,
``ip netns exec NS ...``), None for the initial one.  Fields are keyword-only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACT_CONTROL_NAMES",
    "TC_ACT_GOTO_CHAIN",
    "TC_ACT_JUMP",
    "TC_ACT_OK",
    "TC_ACT_PIPE",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_SHOT",
    "TC_ACT_STOLEN",
    "TC_ACT_TRAP",
    "TC_ACT_UNSPEC",
    "TC_H_CLSACT",
    "TC_H_INGRESS",
    "TC_H_MIN_EGRESS",
    "TC_H_MIN_INGRESS",
    "TC_H_ROOT",
    "Action",
    "AddrAdd",
    "AddrDel",
    "BfifoQdisc",
    "BpfAction",
    "BpfFilter",
    "BpfProg",
    "BytecodeFileProg",
    "BytecodeProg",
    "ClassAdd",
    "ClassDel",
    "Classifier",
    "ClsactQdisc",
    "Command",
    "DummyInfo",
    "FilterAdd",
    "FilterDel",
    "GactAction",
    "HtbClass",
    "HtbQdisc",
    "IngressQdisc",
    "IpShow",
    "LinkAdd",
    "LinkDel",
    "LinkInfo",
    "LinkSet",
    "MatchallFilter",
    "MirredAction",
    "NeighAdd",
    "NeighDel",
    "NetemQdisc",
    "NetnsAdd",
    "NetnsDel",
    "ObjProg",
    "PfifoFastQdisc",
    "PfifoHeadDropQdisc",
    "PfifoQdisc",
    "PinnedProg",
    "PrioQdisc",
    "QdiscAdd",
    "QdiscDel",
    "QdiscOptions",
    "RouteAdd",
    "RouteDel",
    "SkbeditAction",
    "TbfQdisc",
    "TcShow",
    "TunnelKeyAction",
    "VethInfo",
    "VethPeer",
    "VlanAction",
    "VlanInfo",
    "VxlanInfo",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# include/uapi/linux/pkt_cls.h
TC_ACT_UNSPEC = -1
TC_ACT_OK = 0
TC_ACT_RECLASSIFY = 1
TC_ACT_SHOT = 2
TC_ACT_PIPE = 3
TC_ACT_STOLEN = 4
TC_ACT_TRAP = 8
TC_ACT_JUMP = 0x1000_0000
TC_ACT_GOTO_CHAIN = 0x2000_0000
TC_ACT_EXT_VAL_MASK = 0x0FFF_FFFF
ACT_CONTROL_NAMES = {TC_ACT_UNSPEC: "continue", TC_ACT_OK: "pass", TC_ACT_SHOT: "drop",
                     TC_ACT_RECLASSIFY: "reclassify", TC_ACT_PIPE: "pipe",
                     TC_ACT_STOLEN: "stolen", TC_ACT_TRAP: "trap"}

# include/uapi/linux/pkt_sched.h
TC_H_ROOT = 0xFFFF_FFFF
TC_H_INGRESS = 0xFFFF_FFF1
TC_H_CLSACT = TC_H_INGRESS
TC_H_MIN_INGRESS = 0xFFF2
TC_H_MIN_EGRESS = 0xFFF3

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
NUD_PERMANENT = 0x80

Mode = Literal["add", "replace", "change"]


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of every command: ``ns`` is the namespace it runs in (None: the initial one)."""

    ns: str | None = None


# =================================================================================
# ip link
# =================================================================================

@dataclass(frozen=True, kw_only=True)
class VethPeer:
    """``peer [name] NAME [address MAC] [mtu N] [netns NS]`` (``link_veth.c``)."""

    name: str | None = None
    address: str | None = None
    mtu: int | None = None
    netns: str | None = None


@dataclass(frozen=True, kw_only=True)
class VethInfo:
    kind: Literal["veth"] = "veth"
    peer: VethPeer | None = None


@dataclass(frozen=True, kw_only=True)
class VlanInfo:
    """``type vlan id N [protocol 802.1Q|802.1ad]``; needs ``link DEV``."""

    kind: Literal["vlan"] = "vlan"
    id: int
    protocol: int = ETH_P_8021Q


@dataclass(frozen=True, kw_only=True)
class VxlanInfo:
    """``type vxlan ...`` (``iplink_vxlan.c``).  ``vni`` None means ``external``.

    ``dstport`` None is "not given" (the kernel default, 8472); ``learning`` and
    ``udpcsum`` None are "not given" (kernel defaults: learning on, csum off for IPv4).
    """

    kind: Literal["vxlan"] = "vxlan"
    vni: int | None = None
    external: bool = False
    remote: IpAddress | None = None
    local: IpAddress | None = None
    dstport: int | None = None
    dev: str | None = None
    ttl: int | None = None
    tos: int | None = None
    learning: bool | None = None
    udpcsum: bool | None = None


@dataclass(frozen=True, kw_only=True)
class DummyInfo:
    kind: Literal["dummy"] = "dummy"


LinkInfo = VethInfo | VlanInfo | VxlanInfo | DummyInfo


@dataclass(frozen=True, kw_only=True)
class LinkAdd(Command):
    """``ip link add [link DEV] NAME [address MAC] [mtu N] [netns NS] [up] type KIND ...``."""

    name: str
    info: LinkInfo
    link: str | None = None
    address: str | None = None
    mtu: int | None = None
    netns: str | None = None
    up: bool | None = None


@dataclass(frozen=True, kw_only=True)
class LinkSet(Command):
    """``ip link set [dev] NAME [up|down] [mtu N] [address MAC] [netns NS] [name NEW]``."""

    dev: str
    up: bool | None = None
    mtu: int | None = None
    address: str | None = None
    netns: str | None = None
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class LinkDel(Command):
    dev: str


@dataclass(frozen=True, kw_only=True)
class AddrAdd(Command):
    """``ip addr add A[/P] dev D``: the address with its prefix (``/32``, ``/128`` if none)."""

    address: IpInterface
    dev: str


@dataclass(frozen=True, kw_only=True)
class AddrDel(Command):
    address: IpInterface
    dev: str


@dataclass(frozen=True, kw_only=True)
class RouteAdd(Command):
    """``ip route add PREFIX|default [via GW] [dev D] [src A] [realm N]``.

    ``realm`` is the u32 RTA_FLOW value: ``from << 16 | to`` (``realm N`` is ``to``).
    """

    dst: IpNetwork
    via: IpAddress | None = None
    dev: str | None = None
    src: IpAddress | None = None
    realm: int | None = None


@dataclass(frozen=True, kw_only=True)
class RouteDel(Command):
    dst: IpNetwork
    via: IpAddress | None = None
    dev: str | None = None


@dataclass(frozen=True, kw_only=True)
class NeighAdd(Command):
    """``ip neigh add A lladdr MAC dev D [nud STATE]``; ``nud`` is the kernel's NUD_* bits."""

    address: IpAddress
    dev: str
    lladdr: str | None = None
    nud: int = NUD_PERMANENT


@dataclass(frozen=True, kw_only=True)
class NeighDel(Command):
    address: IpAddress
    dev: str


@dataclass(frozen=True, kw_only=True)
class NetnsAdd(Command):
    name: str


@dataclass(frozen=True, kw_only=True)
class NetnsDel(Command):
    name: str


@dataclass(frozen=True, kw_only=True)
class IpShow(Command):
    """``ip link|addr|route|neigh|netns [show] [dev D]`` (and ``ip OBJ`` alone)."""

    object: Literal["link", "address", "route", "neigh", "netns"]
    dev: str | None = None


# =================================================================================
# tc qdiscs and classes
# =================================================================================

@dataclass(frozen=True, kw_only=True)
class ClsactQdisc:
    kind: Literal["clsact"] = "clsact"


@dataclass(frozen=True, kw_only=True)
class IngressQdisc:
    kind: Literal["ingress"] = "ingress"


@dataclass(frozen=True, kw_only=True)
class PfifoQdisc:
    """``pfifo [limit N]``: None keeps the device's tx_queue_len."""

    kind: Literal["pfifo"] = "pfifo"
    limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class BfifoQdisc:
    """``bfifo [limit BYTES]``: None keeps tx_queue_len * the device's MTU."""

    kind: Literal["bfifo"] = "bfifo"
    limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class PfifoHeadDropQdisc:
    """``pfifo_head_drop [limit N]``: None keeps the device's tx_queue_len."""

    kind: Literal["pfifo_head_drop"] = "pfifo_head_drop"
    limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class PfifoFastQdisc:
    kind: Literal["pfifo_fast"] = "pfifo_fast"


PRIO_DEFAULT_PRIOMAP = (1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)


@dataclass(frozen=True, kw_only=True)
class PrioQdisc:
    kind: Literal["prio"] = "prio"
    bands: int = 3
    priomap: tuple[int, ...] = PRIO_DEFAULT_PRIOMAP


@dataclass(frozen=True, kw_only=True)
class HtbQdisc:
    """``htb [default N] [r2q N]``; ``default`` is a class minor, written in hex."""

    kind: Literal["htb"] = "htb"
    default: int = 0
    r2q: int = 10


@dataclass(frozen=True, kw_only=True)
class TbfQdisc:
    """``tbf rate R burst B (latency L | limit L) [peakrate R] [mtu B]``.

    Exactly one of ``latency`` (ns; tc keeps whole microseconds) and ``limit`` (bytes).
    """

    kind: Literal["tbf"] = "tbf"
    rate: int
    burst: int
    latency: int | None = None
    limit: int | None = None
    peakrate: int | None = None
    mtu: int | None = None

    @property
    def limit_bytes(self) -> int:
        """The queue limit tc sends (``q_tbf.c``): ``limit``, or from ``latency``
        ``rate * latency + burst``, capped by ``peakrate * latency + mtu``."""
        if self.limit is not None:
            return self.limit
        usec = (self.latency or 0) // 1000
        lim = self.rate * float(usec) / 1e6 + self.burst
        if self.peakrate:
            lim = min(lim, self.peakrate * float(usec) / 1e6 + (self.mtu or 0))
        return int(lim)


@dataclass(frozen=True, kw_only=True)
class NetemQdisc:
    """``netem``: probabilities/correlations as u32 fractions, ``rate`` in B/s.

    ``delay`` and ``jitter`` are nanoseconds as the kernel holds them: tc sends whole
    psched ticks of 64 ns (``get_ticks``), so ``delay 1us`` is 960 ns
    (``netem_change``: ``PSCHED_TICKS2NS``).
    """

    kind: Literal["netem"] = "netem"
    limit: int = 1000
    delay: int = 0
    jitter: int = 0
    delay_corr: int = 0
    loss: int = 0
    loss_corr: int = 0
    duplicate: int = 0
    duplicate_corr: int = 0
    reorder: int = 0
    reorder_corr: int = 0
    gap: int = 0
    rate: int | None = None


QdiscOptions = (ClsactQdisc | IngressQdisc | PfifoQdisc | BfifoQdisc | PfifoHeadDropQdisc
                | PfifoFastQdisc | PrioQdisc | HtbQdisc | TbfQdisc | NetemQdisc)


@dataclass(frozen=True, kw_only=True)
class QdiscAdd(Command):
    """``tc qdisc add|replace|change dev D PARENT [handle H] KIND [options]``.

    ``parent`` is TC_H_ROOT, TC_H_INGRESS (``ingress``/``clsact``) or a class id;
    ``handle`` is ``major << 16`` or None (the kernel picks; ffff: for ingress/clsact).
    """

    dev: str
    parent: int
    qdisc: QdiscOptions
    handle: int | None = None
    mode: Mode = "add"


@dataclass(frozen=True, kw_only=True)
class QdiscDel(Command):
    dev: str
    parent: int | None = None
    handle: int | None = None
    kind: str | None = None


@dataclass(frozen=True, kw_only=True)
class HtbClass:
    """``htb rate R [ceil R] [burst B] [cburst B] [prio N] [quantum N]``.

    None means "not given": tc then computes burst/cburst from the rate and the
    kernel computes quantum from r2q.
    """

    kind: Literal["htb"] = "htb"
    rate: int
    ceil: int | None = None
    burst: int | None = None
    cburst: int | None = None
    prio: int = 0
    quantum: int | None = None


@dataclass(frozen=True, kw_only=True)
class ClassAdd(Command):
    dev: str
    parent: int
    classid: int
    options: HtbClass
    mode: Mode = "add"


@dataclass(frozen=True, kw_only=True)
class ClassDel(Command):
    dev: str
    classid: int
    parent: int | None = None


# =================================================================================
# tc filters and actions
# =================================================================================

@dataclass(frozen=True, kw_only=True)
class ObjProg:
    """``obj FILE [sec SECTION]``: the default section is ``classifier``/``action``."""

    kind: Literal["obj"] = "obj"
    path: str
    section: str
    verbose: bool = False


@dataclass(frozen=True, kw_only=True)
class PinnedProg:
    """``pinned PATH`` (also spelled ``object-pinned`` and ``fd``, as in iproute2)."""

    kind: Literal["pinned"] = "pinned"
    path: str


@dataclass(frozen=True, kw_only=True)
class BytecodeProg:
    """``bytecode 'N,c t f k,...'``: classic BPF as (code, jt, jf, k) tuples."""

    kind: Literal["bytecode"] = "bytecode"
    insns: tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True, kw_only=True)
class BytecodeFileProg:
    kind: Literal["bytecode-file"] = "bytecode-file"
    path: str


BpfProg = ObjProg | PinnedProg | BytecodeProg | BytecodeFileProg


@dataclass(frozen=True, kw_only=True)
class GactAction:
    """``gact``, or a bare verdict: ``ok|pass|drop|shot|pipe|continue|reclassify|trap``,
    ``goto chain N`` (``TC_ACT_GOTO_CHAIN | N``), ``jump N`` (``TC_ACT_JUMP | N``)."""

    kind: Literal["gact"] = "gact"
    control: int


@dataclass(frozen=True, kw_only=True)
class BpfAction:
    kind: Literal["bpf"] = "bpf"
    prog: BpfProg
    control: int = TC_ACT_PIPE


@dataclass(frozen=True, kw_only=True)
class MirredAction:
    """``mirred egress|ingress redirect|mirror dev D``; default verdict: STOLEN for a
    redirect, PIPE for a mirror."""

    kind: Literal["mirred"] = "mirred"
    direction: Literal["egress", "ingress"]
    op: Literal["redirect", "mirror"]
    dev: str
    control: int


@dataclass(frozen=True, kw_only=True)
class VlanAction:
    kind: Literal["vlan"] = "vlan"
    op: Literal["pop", "push", "modify"]
    id: int | None = None
    protocol: int | None = None
    priority: int | None = None
    control: int = TC_ACT_PIPE


@dataclass(frozen=True, kw_only=True)
class TunnelKeyAction:
    """``tunnel_key set ...`` or ``unset``; ``csum`` defaults on, as tc sends NO_CSUM=0."""

    kind: Literal["tunnel_key"] = "tunnel_key"
    op: Literal["set", "unset"]
    key_id: int | None = None
    src: IpAddress | None = None
    dst: IpAddress | None = None
    dst_port: int | None = None
    tos: int | None = None
    ttl: int | None = None
    csum: bool = True
    control: int = TC_ACT_PIPE


@dataclass(frozen=True, kw_only=True)
class SkbeditAction:
    """``skbedit``: ``mark``/``mask`` u32, ``priority`` a class id, ``ptype`` PACKET_*."""

    kind: Literal["skbedit"] = "skbedit"
    mark: int | None = None
    mask: int | None = None
    priority: int | None = None
    queue_mapping: int | None = None
    ptype: int | None = None
    control: int = TC_ACT_PIPE


Action = GactAction | BpfAction | MirredAction | VlanAction | TunnelKeyAction | SkbeditAction


@dataclass(frozen=True, kw_only=True)
class BpfFilter:
    kind: Literal["bpf"] = "bpf"
    prog: BpfProg
    direct_action: bool = False
    classid: int | None = None
    skip_sw: bool = False
    skip_hw: bool = False
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MatchallFilter:
    kind: Literal["matchall"] = "matchall"
    classid: int | None = None
    skip_sw: bool = False
    skip_hw: bool = False
    actions: tuple[Action, ...] = ()


Classifier = BpfFilter | MatchallFilter


@dataclass(frozen=True, kw_only=True)
class FilterAdd(Command):
    """``tc filter add|replace|change dev D PARENT [protocol P] [pref N] [handle H]
    [chain N] KIND ...``.

    ``parent``: ``ingress`` is ``ffff:fff2``, ``egress`` ``ffff:fff3``, ``root``
    TC_H_ROOT.  ``protocol`` defaults to ETH_P_ALL; ``prio`` 0 lets the kernel choose;
    ``chain`` None is chain 0 without the attribute.
    """

    dev: str
    parent: int
    filter: Classifier
    protocol: int = ETH_P_ALL
    prio: int = 0
    handle: int | None = None
    chain: int | None = None
    mode: Mode = "add"


@dataclass(frozen=True, kw_only=True)
class FilterDel(Command):
    """``tc filter del``: unset fields are wildcards (protocol None matches any)."""

    dev: str
    parent: int | None = None
    protocol: int | None = None
    prio: int | None = None
    handle: int | None = None
    chain: int | None = None
    kind: str | None = None


@dataclass(frozen=True, kw_only=True)
class TcShow(Command):
    """``tc qdisc|class|filter show [dev D] [PARENT]``."""

    object: Literal["qdisc", "class", "filter"]
    dev: str | None = None
    parent: int | None = None
    stats: bool = False


