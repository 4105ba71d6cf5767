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

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = [
    "NET_XMIT_CN",
    "NET_XMIT_DROP",
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
    "QdiscStats",
    "TcfResult",
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


def tc_h_maj(handle: int) -> int:
    return handle & 0xFFFF_0000


def tc_h_min(handle: int) -> int:
    return handle & 0xFFFF


@dataclass
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


@dataclass
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

    def reset(self) -> None:
        """Drop everything queued (``qdisc_reset``)."""
