"""The ``prio`` qdisc (``net/sched/sch_prio.c``): strict-priority bands.

``prio_classify``: an ``skb->priority`` whose major number is this qdisc's handle picks
band ``minor - 1`` directly; otherwise the filter chain runs.  STOLEN/QUEUED/TRAP consume
the skb (not a drop), SHOT drops it (counted), no filter or a negative verdict maps
``skb->priority`` through the priomap (a priority with a major number counts as 0), and a
verdict >= 0 picks band ``TC_H_MIN(res.classid) - 1``.  A band out of range falls back to
``priomap[0]``.  Each band is a child qdisc, by default a pfifo of ``tx_queue_len``
packets; ``dequeue`` serves band 0 first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tcemu.qdisc.base import (
    NET_XMIT_BYPASS_FLAG,
    NET_XMIT_MASK,
    NET_XMIT_STOLEN_FLAG,
    NET_XMIT_SUCCESS,
    TC_ACT_QUEUED,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_H_ROOT,
    Qdisc,
    QdiscDev,
    QdiscError,
    net_xmit_drop_count,
    tc_h_maj,
    tc_h_min,
)
from tcemu.qdisc.fifo import PRIO2BAND, TC_PRIO_MAX, PfifoQdisc, bstats_update

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["TCQ_MIN_PRIO_BANDS", "TCQ_PRIO_BANDS", "PrioQdisc"]

TCQ_PRIO_BANDS = 16                 # include/uapi/linux/pkt_sched.h
TCQ_MIN_PRIO_BANDS = 2
_U32 = 0xFFFF_FFFF


class PrioQdisc(Qdisc):
    """``prio``: ``bands`` child qdiscs, ``priomap`` maps TC_PRIO_* to a band."""

    kind = "prio"

    def __init__(self, *, handle: int = 0x1_0000, parent: int = TC_H_ROOT, bands: int = 3,
                 priomap: Sequence[int] = PRIO2BAND, dev: QdiscDev | None = None) -> None:
        super().__init__(handle=handle, parent=parent)
        if not TCQ_MIN_PRIO_BANDS <= bands <= TCQ_PRIO_BANDS:
            raise QdiscError(f"bands {bands} is outside {TCQ_MIN_PRIO_BANDS}..{TCQ_PRIO_BANDS}",
                             kind=self.kind)
        if len(priomap) != TC_PRIO_MAX + 1:
            raise QdiscError(f"priomap has {len(priomap)} entries, not 16", kind=self.kind)
        if any(not 0 <= band < bands for band in priomap):
            raise QdiscError(f"priomap {list(priomap)} names a band >= {bands}", kind=self.kind)
        self.bands = bands
        self.prio2band = tuple(priomap)
        self.queues: list[Qdisc] = [
            PfifoQdisc(handle=0, parent=handle | (band + 1), dev=dev) for band in range(bands)]

    # -- classes ------------------------------------------------------------------------
    def graft(self, classid: int, child: Qdisc) -> Qdisc:
        """Put ``child`` under class ``major:band+1`` (``prio_graft``); returns the old one."""
        band = tc_h_min(classid) - 1
        if tc_h_maj(classid) not in (0, self.handle) or not 0 <= band < self.bands:
            raise QdiscError(f"no class {classid >> 16:x}:{classid & 0xFFFF:x}", kind=self.kind,
                             errno=2)
        old, self.queues[band] = self.queues[band], child
        child.parent = self.handle | (band + 1)
        old.reset()
        self._sync()
        return old

    def children(self) -> list[Qdisc]:
        return list(self.queues)

    # -- datapath -----------------------------------------------------------------------
    def classify_band(self, skb: SkBuff) -> tuple[int | None, int]:
        """``prio_classify``: (band or None, the code to return when None)."""
        band = skb.priority
        if tc_h_maj(skb.priority) != self.handle:
            res = self.classify(skb)
            if res.verdict in (TC_ACT_STOLEN, TC_ACT_QUEUED, TC_ACT_TRAP):
                return None, NET_XMIT_SUCCESS | NET_XMIT_STOLEN_FLAG
            if res.verdict == TC_ACT_SHOT:
                return None, NET_XMIT_SUCCESS | NET_XMIT_BYPASS_FLAG
            if res.verdict < 0:
                if tc_h_maj(band):
                    band = 0
                return self.prio2band[band & TC_PRIO_MAX], NET_XMIT_SUCCESS
            band = res.classid
        index = (tc_h_min(band) - 1) & _U32
        if index >= self.bands:
            return self.prio2band[0], NET_XMIT_SUCCESS
        return index, NET_XMIT_SUCCESS

    def enqueue_inner(self, skb: SkBuff, now: int) -> int:
        band, ret = self.classify_band(skb)
        if band is None:
            if ret & NET_XMIT_BYPASS_FLAG:
                self.stats.drops += 1
            return ret
        ret = self.queues[band].enqueue_inner(skb, now)
        if ret != NET_XMIT_SUCCESS and net_xmit_drop_count(ret):
            self.stats.drops += 1
        self._sync()
        return ret

    def enqueue(self, skb: SkBuff, now: int) -> int:
        return self.enqueue_inner(skb, now) & NET_XMIT_MASK

    def dequeue(self, now: int) -> SkBuff | None:
        for child in self.queues:
            skb = child.dequeue(now)
            if skb is not None:
                bstats_update(self.stats, skb)
                self._sync()
                return skb
        return None

    def peek(self, now: int) -> SkBuff | None:
        for child in self.queues:
            skb = child.peek(now)
            if skb is not None:
                return skb
        return None

    def next_event(self, now: int) -> int | None:
        events = [t for t in (child.next_event(now) for child in self.queues) if t is not None]
        return min(events) if events else None

    def reset(self) -> None:
        for child in self.queues:
            child.reset()
        self._sync()

    def _sync(self) -> None:
        """Parent qlen/backlog follow the children (``qdisc_tree_reduce_backlog``)."""
        self.stats.qlen = sum(child.stats.qlen for child in self.queues)
        self.stats.backlog = sum(child.stats.backlog for child in self.queues)
