"""The contract between devices, qdiscs and filter chains (``include/net/sch_generic.h``).

A device's transmit path hands each skb to its root :class:`Qdisc` (``enqueue``), and
its transmit loop takes skbs out again (``dequeue``) whenever the qdisc says one is due.
Classful qdiscs choose a class by running their filter chain through the injected
:data:`Classify` callable (``tcf_classify``); the chain itself lives in ``tcemu/cls``,
so this module knows nothing of BPF.

Time is the virtual clock in nanoseconds, passed in as ``now``; a qdisc never reads a
wall clock and never draws randomness except from the seeded ``random.Random`` it was
given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcemu.errors import TcemuError

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = [
    "NET_XMIT_BYPASS_FLAG",
    "NET_XMIT_CN",
    "NET_XMIT_DROP",
    "NET_XMIT_MASK",
    "NET_XMIT_STOLEN_FLAG",
    "NET_XMIT_SUCCESS",
    "TC_ACT_OK",
    "TC_ACT_PIPE",
    "TC_ACT_QUEUED",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_REDIRECT",
    "TC_ACT_REPEAT",
    "TC_ACT_SHOT",
    "TC_ACT_STOLEN",
    "TC_ACT_TRAP",
    "TC_ACT_UNSPEC",
    "TC_H_CLSACT",
    "TC_H_INGRESS",
    "TC_H_MIN_EGRESS",
    "TC_H_MIN_INGRESS",
    "TC_H_ROOT",
    "TC_H_UNSPEC",
    "Classify",
    "Qdisc",
    "QdiscDev",
    "QdiscError",
    "QdiscStats",
    "TcfResult",
    "net_xmit_drop_count",
    "qdisc_pkt_len",
    "tc_h_maj",
    "tc_h_min",
]

# include/uapi/linux/pkt_cls.h
TC_ACT_UNSPEC = -1
TC_ACT_OK = 0
TC_ACT_RECLASSIFY = 1
TC_ACT_SHOT = 2
TC_ACT_PIPE = 3
TC_ACT_STOLEN = 4
TC_ACT_QUEUED = 5
TC_ACT_REPEAT = 6
TC_ACT_REDIRECT = 7
TC_ACT_TRAP = 8

# include/uapi/linux/pkt_sched.h
TC_H_UNSPEC = 0
TC_H_ROOT = 0xFFFF_FFFF
TC_H_INGRESS = 0xFFFF_FFF1
TC_H_CLSACT = TC_H_INGRESS
TC_H_MIN_INGRESS = 0xFFF2
TC_H_MIN_EGRESS = 0xFFF3

# include/linux/netdevice.h
NET_XMIT_SUCCESS = 0
NET_XMIT_DROP = 1
NET_XMIT_CN = 2
# include/linux/netdevice.h: the qdisc-internal bits above NET_XMIT_MASK.  A classful
# qdisc returns them to its parent (``qdisc_enqueue``); the device masks them off.
NET_XMIT_MASK = 0x0F
NET_XMIT_STOLEN_FLAG = 0x0001_0000     # __NET_XMIT_STOLEN: consumed, not a drop
NET_XMIT_BYPASS_FLAG = 0x0002_0000     # __NET_XMIT_BYPASS: dropped before any queue


def net_xmit_drop_count(ret: int) -> int:
    """``net_xmit_drop_count``: 0 when a child consumed the skb (STOLEN), else 1."""
    return 0 if ret & NET_XMIT_STOLEN_FLAG else 1


def tc_h_maj(handle: int) -> int:
    return handle & 0xFFFF_0000


def tc_h_min(handle: int) -> int:
    return handle & 0xFFFF


def qdisc_pkt_len(skb: SkBuff) -> int:
    """``qdisc_pkt_len``: ``qdisc_skb_cb(skb)->pkt_len`` (``skb.wire_len``), which
    ``__dev_queue_xmit`` sets to ``skb->len``; an skb that never went through it
    (``wire_len`` 0) counts its length."""
    return skb.wire_len or len(skb.data)


@dataclass(frozen=True)
class QdiscDev:
    """What a qdisc reads from its device (``qdisc_dev(sch)``): default limits come from
    ``tx_queue_len`` and ``psched_mtu`` (``mtu + hard_header_len``)."""

    tx_queue_len: int = 1000
    mtu: int = 1500
    hard_header_len: int = 14

    @property
    def psched_mtu(self) -> int:
        return self.mtu + self.hard_header_len


class QdiscError(TcemuError):
    """A qdisc or class could not be created or changed (the kernel's ``-EINVAL`` and
    friends, with the extack text where the kernel has one)."""

    def __init__(self, message: str, *, kind: str, errno: int = 22) -> None:
        self.kind = kind
        self.errno = errno
        super().__init__(f"configure qdisc {kind}: {message}")


@dataclass(slots=True)
class TcfResult:
    """``struct tcf_result``: what classification chose (class id; verdict beside it)."""

    verdict: int = TC_ACT_UNSPEC
    classid: int = 0


Classify = Callable[["SkBuff"], TcfResult]
"""Runs a qdisc's filter chain on an skb (``tcf_classify``).  A chain with no filter, or
where every filter said UNSPEC, returns ``TcfResult(TC_ACT_UNSPEC, 0)``."""


def _no_filters(skb: SkBuff) -> TcfResult:
    return TcfResult()


@dataclass
class QdiscStats:
    """``tc -s qdisc`` counters (``struct gnet_stats_basic``/``gnet_stats_queue``)."""

    packets: int = 0
    bytes: int = 0
    drops: int = 0
    overlimits: int = 0
    requeues: int = 0
    qlen: int = 0
    backlog: int = 0


@dataclass(eq=False)
class Qdisc(ABC):
    """One qdisc instance.  ``handle`` is ``major:0``; ``parent`` is TC_H_ROOT or a class.

    ``classify`` is replaced by the owner with the qdisc's filter chain.  Subclasses keep
    ``stats`` current: ``packets``/``bytes`` count what was dequeued (sent), ``drops`` what
    was refused or lost, ``qlen``/``backlog`` what is queued now.
    """

    handle: int = 0
    parent: int = TC_H_ROOT
    classify: Classify = field(default=_no_filters, repr=False)
    stats: QdiscStats = field(default_factory=QdiscStats)

    kind = "qdisc"

    @abstractmethod
    def enqueue(self, skb: SkBuff, now: int) -> int:
        """Queue ``skb``; NET_XMIT_SUCCESS, NET_XMIT_DROP or NET_XMIT_CN.  A packet a
        filter consumed (STOLEN/QUEUED/TRAP) returns NET_XMIT_SUCCESS without queueing."""

    @abstractmethod
    def dequeue(self, now: int) -> SkBuff | None:
        """The next skb allowed to leave at ``now``, or None."""

    def next_event(self, now: int) -> int | None:
        """When a queued skb that cannot leave at ``now`` will be able to (rate limits,
        netem delay), or None when nothing waits.  The device's transmit loop advances
        the clock to it."""
        return None

    def reset(self) -> None:  # noqa: B027 (a qdisc without a queue has nothing to drop)
        """Drop everything queued (``qdisc_reset``)."""

    def enqueue_inner(self, skb: SkBuff, now: int) -> int:
        """``qdisc_enqueue`` as a parent qdisc calls it: the full return code, with
        NET_XMIT_STOLEN_FLAG/NET_XMIT_BYPASS_FLAG, which ``enqueue`` masks off."""
        return self.enqueue(skb, now)

    def peek(self, now: int) -> SkBuff | None:
        """The skb ``dequeue`` would return next, left queued (``ops->peek``)."""
        raise QdiscError("peek is not supported by this qdisc", kind=self.kind, errno=95)
