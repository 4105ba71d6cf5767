"""The token bucket filter (``net/sched/sch_tbf.c``) on the virtual clock.

Tokens are nanoseconds.  The bucket holds at most ``buffer`` ns (the time ``burst``
bytes take at ``rate``); a packet of ``len`` bytes costs ``psched_l2t_ns(rate, len)``.
With a peak rate a second bucket of ``mtu`` ns (the time ``mtu`` bytes take at
``peakrate``) must also stay non-negative.  ``tbf_dequeue`` refills both buckets with
the time since the last departure, sends the head packet when both stay >= 0, and
otherwise counts an overlimit and arms the watchdog at ``now + max(-toks, -ptoks)``,
which is what :meth:`TbfQdisc.next_event` reports.  Packets longer than ``max_size``
(burst, or mtu when smaller) are dropped at enqueue.  The queue is a child qdisc, by
default a bfifo of ``limit`` bytes.

Options follow what ``tc qdisc add ... tbf`` sends (iproute2 ``tc/q_tbf.c``): ``burst``
travels as TCA_TBF_BURST and ``mtu`` as TCA_TBF_PBURST, so the kernel derives the bucket
sizes from them; ``latency`` becomes ``limit = rate * latency + burst`` (and the
smaller ``peakrate * latency + mtu`` with a peak rate).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from tcemu.qdisc.base import (
    NET_XMIT_MASK,
    NET_XMIT_SUCCESS,
    TC_H_ROOT,
    Qdisc,
    QdiscDev,
    QdiscError,
    net_xmit_drop_count,
    qdisc_pkt_len,
    tc_h_min,
)
from tcemu.qdisc.fifo import BfifoQdisc, bstats_update, qdisc_drop
from tcemu.qdisc.ratespec import (
    TC_LINKLAYER_ETHERNET,
    TIME_UNITS_PER_SEC,
    PschedRatecfg,
)

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["TbfQdisc", "tbf_limit_from_latency"]

_U32 = 0xFFFF_FFFF


def tbf_limit_from_latency(rate: int, burst: int, latency_ns: int, *,
                           peakrate: int = 0, mtu: int = 0) -> int:
    """The byte limit ``tc`` computes from ``latency`` (``q_tbf.c``, in microseconds)."""
    usec = latency_ns // 1000
    lim = rate * float(usec) / TIME_UNITS_PER_SEC + burst
    if peakrate:
        lim2 = peakrate * float(usec) / TIME_UNITS_PER_SEC + mtu
        lim = min(lim, lim2)
    return int(lim) & _U32


class TbfQdisc(Qdisc):
    """``tbf``: rate/burst (and optional peakrate/mtu) shaping of a child qdisc."""

    kind = "tbf"

    def __init__(self, *, handle: int = 0x1_0000, parent: int = TC_H_ROOT, rate: int,
                 burst: int, limit: int | None = None, latency: int | None = None,
                 peakrate: int = 0, mtu: int = 0, overhead: int = 0, mpu: int = 0,
                 linklayer: int = TC_LINKLAYER_ETHERNET, now: int = 0,
                 dev: QdiscDev | None = None) -> None:
        super().__init__(handle=handle, parent=parent)
        if rate <= 0:
            raise QdiscError('the "rate" parameter is mandatory', kind=self.kind)
        if burst <= 0:
            raise QdiscError('the "burst" parameter is mandatory', kind=self.kind)
        if peakrate and mtu <= 0:
            raise QdiscError('"mtu" is required, if "peakrate" is requested', kind=self.kind)
        if limit is None:
            if latency is None:
                raise QdiscError('either "limit" or "latency" are required', kind=self.kind)
            limit = tbf_limit_from_latency(rate, burst, latency, peakrate=peakrate, mtu=mtu)
        self.rate = PschedRatecfg.precompute(rate, overhead=overhead, mpu=mpu,
                                             linklayer=linklayer)
        self.max_size = burst
        self.buffer = self.rate.l2t_ns(burst)
        self.peak: PschedRatecfg | None = None
        self.mtu = 0
        if peakrate:
            self.peak = PschedRatecfg.precompute(peakrate, overhead=overhead, mpu=mpu,
                                                 linklayer=linklayer)
            if self.peak.rate_bytes_ps <= self.rate.rate_bytes_ps:
                raise QdiscError(f"peakrate {peakrate} is lower than or equals to rate {rate}",
                                 kind=self.kind)
            self.max_size = min(self.max_size, mtu)
            self.mtu = self.peak.l2t_ns(mtu)
        self.limit = limit
        # tbf_change: a limit of 0 keeps the noop child, which drops everything
        self.qdisc: Qdisc | None = (
            BfifoQdisc(handle=0, parent=handle | 1, limit=limit, dev=dev) if limit else None)
        self.tokens = self.buffer
        self.ptokens = self.mtu
        self.t_c = now
        self._peeked: deque[SkBuff] = deque()

    # -- classes ------------------------------------------------------------------------
    def graft(self, classid: int, child: Qdisc) -> Qdisc | None:
        """Replace the inner qdisc (class ``major:1``); returns the old one."""
        if tc_h_min(classid) != 1:
            raise QdiscError(f"no class {classid >> 16:x}:{classid & 0xFFFF:x}",
                             kind=self.kind, errno=2)
        old, self.qdisc = self.qdisc, child
        child.parent = self.handle | 1
        if old is not None:
            old.reset()
        self._sync()
        return old

    def children(self) -> list[Qdisc]:
        return [self.qdisc] if self.qdisc is not None else []

    # -- datapath -----------------------------------------------------------------------
    def enqueue_inner(self, skb: SkBuff, now: int) -> int:
        if qdisc_pkt_len(skb) > self.max_size or self.qdisc is None:
            # KERNEL-DIFF: the kernel segments an oversized GSO skb (tbf_segment) before
            # giving up; tcemu has no GSO segmentation and drops it.
            return qdisc_drop(self.stats)
        ret = self.qdisc.enqueue_inner(skb, now)
        if ret != NET_XMIT_SUCCESS and net_xmit_drop_count(ret):
            self.stats.drops += 1
        self._sync()
        return ret

    def enqueue(self, skb: SkBuff, now: int) -> int:
        return self.enqueue_inner(skb, now) & NET_XMIT_MASK

    def _budget(self, length: int, now: int) -> tuple[int, int]:
        """The bucket levels after sending ``length`` bytes at ``now`` (toks, ptoks)."""
        toks = min(now - self.t_c, self.buffer)
        ptoks = 0
        if self.peak is not None:
            ptoks = min(toks + self.ptokens, self.mtu) - self.peak.l2t_ns(length)
        toks = min(toks + self.tokens, self.buffer) - self.rate.l2t_ns(length)
        return toks, ptoks

    def dequeue(self, now: int) -> SkBuff | None:
        if self._peeked:
            peeked = self._peeked.popleft()
            self._sync()
            return peeked
        child = self.qdisc
        head = child.peek(now) if child is not None else None
        if child is None or head is None:
            return None
        toks, ptoks = self._budget(qdisc_pkt_len(head), now)
        if toks >= 0 and ptoks >= 0:
            skb = child.dequeue(now)
            if skb is None:
                return None
            self.t_c = now
            self.tokens = toks
            self.ptokens = ptoks
            bstats_update(self.stats, skb)
            self._sync()
            return skb
        self.stats.overlimits += 1
        return None

    def peek(self, now: int) -> SkBuff | None:
        """``qdisc_peek_dequeued``: take the packet now (charging the buckets) and keep it
        for the next ``dequeue``."""
        if not self._peeked:
            skb = self.dequeue(now)
            if skb is None:
                return None
            self._peeked.append(skb)
            self._sync()
        return self._peeked[0]

    def next_event(self, now: int) -> int | None:
        """``qdisc_watchdog_schedule_ns(now + max(-toks, -ptoks))`` for the head packet."""
        if self._peeked:
            return now
        head = self.qdisc.peek(now) if self.qdisc is not None else None
        if head is None:
            return self.qdisc.next_event(now) if self.qdisc is not None else None
        toks, ptoks = self._budget(qdisc_pkt_len(head), now)
        return now + max(-toks, -ptoks, 0)

    def reset(self) -> None:
        if self.qdisc is not None:
            self.qdisc.reset()
        self._peeked.clear()
        self.tokens = self.buffer
        self.ptokens = self.mtu
        self._sync()

    def _sync(self) -> None:
        inner = self.qdisc.stats if self.qdisc is not None else None
        self.stats.qlen = (inner.qlen if inner else 0) + len(self._peeked)
        self.stats.backlog = (inner.backlog if inner else 0) + sum(
            qdisc_pkt_len(skb) for skb in self._peeked)
