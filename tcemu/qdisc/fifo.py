"""FIFO qdiscs: pfifo, bfifo, pfifo_head_drop (``net/sched/sch_fifo.c``), the default
root pfifo_fast (``net/sched/sch_generic.c``) and the noqueue marker.

pfifo counts packets against ``limit``, bfifo counts bytes (``qdisc_pkt_len``) against
it; without a limit both take the device's ``tx_queue_len`` (times ``psched_mtu`` for
bfifo).  pfifo_fast keeps three bands chosen by ``prio2band[skb->priority & 15]``, each a
``ptr_ring`` of ``tx_queue_len`` slots, emulated with its batched slot release so that
the number of packets a band accepts after partial draining is the kernel's.

The statistics helpers here (:func:`bstats_update`, :func:`qdisc_drop`) are the ones
every qdisc module uses, as ``include/net/sch_generic.h`` holds them for the kernel.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from tcemu.qdisc.base import (
    NET_XMIT_CN,
    NET_XMIT_DROP,
    NET_XMIT_SUCCESS,
    TC_H_ROOT,
    Qdisc,
    QdiscDev,
    QdiscError,
    QdiscStats,
    qdisc_pkt_len,
)

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = [
    "PRIO2BAND",
    "TC_PRIO_MAX",
    "BfifoQdisc",
    "NoQueueQdisc",
    "PfifoFastQdisc",
    "PfifoHeadDropQdisc",
    "PfifoQdisc",
    "bstats_update",
    "qdisc_drop",
]

TC_PRIO_MAX = 15                    # include/uapi/linux/pkt_sched.h
# sch_generic.c prio2band: TC_PRIO_* (skb->priority & 15) -> band, 0 is served first
PRIO2BAND = (1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
PFIFO_FAST_BANDS = 3
# include/linux/ptr_ring.h ptr_ring_set_size: SMP_CACHE_BYTES * 2 / sizeof(void *) on x86-64
_PTR_RING_BATCH = 64 * 2 // 8


def bstats_update(stats: QdiscStats, skb: SkBuff) -> None:
    """``bstats_update``: bytes by ``qdisc_pkt_len``, GSO skbs count their segments."""
    stats.bytes += qdisc_pkt_len(skb)
    stats.packets += skb.gso_segs if skb.gso_size and skb.gso_segs else 1


def qdisc_drop(stats: QdiscStats) -> int:
    """``qdisc_drop``: count the drop, tell the caller NET_XMIT_DROP."""
    stats.drops += 1
    return NET_XMIT_DROP


class _Fifo(Qdisc):
    """The shared tail-enqueue/head-dequeue queue of pfifo, bfifo and pfifo_head_drop."""

    kind = "pfifo"

    def __init__(self, *, handle: int = 0, parent: int = TC_H_ROOT, limit: int | None = None,
                 dev: QdiscDev | None = None) -> None:
        super().__init__(handle=handle, parent=parent)
        self.limit = self.default_limit(dev or QdiscDev()) if limit is None else limit
        if self.limit < 0:
            raise QdiscError(f"limit {self.limit} is negative", kind=self.kind)
        self.queue: deque[SkBuff] = deque()

    @staticmethod
    def default_limit(dev: QdiscDev) -> int:
        return dev.tx_queue_len

    def fits(self, skb: SkBuff) -> bool:
        return self.stats.qlen < self.limit

    def enqueue(self, skb: SkBuff, now: int) -> int:
        if self.fits(skb):
            self.enqueue_tail(skb)
            return NET_XMIT_SUCCESS
        return qdisc_drop(self.stats)

    def enqueue_tail(self, skb: SkBuff) -> None:
        self.queue.append(skb)
        self.stats.qlen += 1
        self.stats.backlog += qdisc_pkt_len(skb)

    def drop_head(self) -> None:
        skb = self.queue.popleft()
        self.stats.qlen -= 1
        self.stats.backlog -= qdisc_pkt_len(skb)
        self.stats.drops += 1

    def dequeue(self, now: int) -> SkBuff | None:
        if not self.queue:
            return None
        skb = self.queue.popleft()
        self.stats.qlen -= 1
        self.stats.backlog -= qdisc_pkt_len(skb)
        bstats_update(self.stats, skb)
        return skb

    def peek(self, now: int) -> SkBuff | None:
        return self.queue[0] if self.queue else None

    def next_event(self, now: int) -> int | None:
        return now if self.queue else None

    def reset(self) -> None:
        self.queue.clear()
        self.stats.qlen = 0
        self.stats.backlog = 0


class PfifoQdisc(_Fifo):
    """``pfifo``: at most ``limit`` packets (``pfifo_enqueue``)."""

    kind = "pfifo"


class BfifoQdisc(_Fifo):
    """``bfifo``: at most ``limit`` bytes of backlog (``bfifo_enqueue``)."""

    kind = "bfifo"

    @staticmethod
    def default_limit(dev: QdiscDev) -> int:
        return dev.tx_queue_len * dev.psched_mtu

    def fits(self, skb: SkBuff) -> bool:
        return self.stats.backlog + qdisc_pkt_len(skb) <= self.limit


class PfifoHeadDropQdisc(_Fifo):
    """``pfifo_head_drop``: when full, drop the oldest packet and queue the new one
    (``pfifo_tail_enqueue``), answering NET_XMIT_CN."""

    kind = "pfifo_head_drop"

    def enqueue(self, skb: SkBuff, now: int) -> int:
        if self.limit == 0:
            return qdisc_drop(self.stats)
        if self.stats.qlen < self.limit:
            self.enqueue_tail(skb)
            return NET_XMIT_SUCCESS
        self.drop_head()
        self.enqueue_tail(skb)
        return NET_XMIT_CN


class _PtrRing:
    """``struct ptr_ring`` as ``skb_array`` uses it: a slot is free for the producer only
    once the consumer has released it, which it does in batches (``__ptr_ring_discard_one``)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.slots: list[SkBuff | None] = [None] * size
        self.producer = 0
        self.consumer_head = 0
        self.consumer_tail = 0
        self.batch = _PTR_RING_BATCH
        if self.batch > size // 2 or not self.batch:
            self.batch = 1

    def produce(self, skb: SkBuff) -> bool:
        if not self.size or self.slots[self.producer] is not None:
            return False
        self.slots[self.producer] = skb
        self.producer = (self.producer + 1) % self.size
        return True

    def peek(self) -> SkBuff | None:
        return self.slots[self.consumer_head] if self.size else None

    def consume(self) -> SkBuff | None:
        skb = self.peek()
        if skb is not None:
            self._discard_one()
        return skb

    def _discard_one(self) -> None:
        head = self.consumer_head
        consumer_head = head + 1
        if consumer_head - self.consumer_tail >= self.batch or consumer_head >= self.size:
            for i in range(self.consumer_tail, head + 1):
                self.slots[i] = None
            self.consumer_tail = consumer_head
        if consumer_head >= self.size:
            consumer_head = 0
            self.consumer_tail = 0
        self.consumer_head = consumer_head


class PfifoFastQdisc(Qdisc):
    """``pfifo_fast``: three priority bands of ``tx_queue_len`` ring slots each."""

    kind = "pfifo_fast"

    def __init__(self, *, handle: int = 0, parent: int = TC_H_ROOT,
                 dev: QdiscDev | None = None) -> None:
        super().__init__(handle=handle, parent=parent)
        qlen = (dev or QdiscDev()).tx_queue_len
        if not qlen:            # pfifo_fast_init: "guard against zero length rings"
            raise QdiscError("tx_queue_len 0 gives zero length rings", kind=self.kind)
        self.bands = [_PtrRing(qlen) for _ in range(PFIFO_FAST_BANDS)]

    @staticmethod
    def band_of(skb: SkBuff) -> int:
        return PRIO2BAND[skb.priority & TC_PRIO_MAX]

    def enqueue(self, skb: SkBuff, now: int) -> int:
        if not self.bands[self.band_of(skb)].produce(skb):
            return qdisc_drop(self.stats)
        self.stats.qlen += 1
        self.stats.backlog += qdisc_pkt_len(skb)
        return NET_XMIT_SUCCESS

    def dequeue(self, now: int) -> SkBuff | None:
        if not self.stats.qlen:         # (qdisc_run's last dequeue: no band to look at)
            return None
        for ring in self.bands:
            skb = ring.consume()
            if skb is not None:
                self.stats.qlen -= 1
                self.stats.backlog -= qdisc_pkt_len(skb)
                bstats_update(self.stats, skb)
                return skb
        return None

    def peek(self, now: int) -> SkBuff | None:
        for ring in self.bands:
            skb = ring.peek()
            if skb is not None:
                return skb
        return None

    def next_event(self, now: int) -> int | None:
        return now if self.stats.qlen else None

    def reset(self) -> None:
        for ring in self.bands:
            while ring.consume() is not None:
                pass
        self.stats.qlen = 0
        self.stats.backlog = 0


class NoQueueQdisc(Qdisc):
    """``noqueue``: no queue at all (``noqueue_qdisc_ops`` has no ``enqueue``), the
    default of IFF_NO_QUEUE devices (veth, vxlan, lo).  ``__dev_queue_xmit`` then calls
    the driver directly; a device checks :attr:`bypass` and skips the qdisc.  Called
    anyway, it hands each skb straight back and counts nothing, as ``tc -s`` shows
    nothing for noqueue."""

    kind = "noqueue"
    bypass = True

    def __init__(self, *, handle: int = 0, parent: int = TC_H_ROOT) -> None:
        super().__init__(handle=handle, parent=parent)
        self.queue: deque[SkBuff] = deque()

    def enqueue(self, skb: SkBuff, now: int) -> int:
        self.queue.append(skb)
        return NET_XMIT_SUCCESS

    def dequeue(self, now: int) -> SkBuff | None:
        return self.queue.popleft() if self.queue else None

    def peek(self, now: int) -> SkBuff | None:
        return self.queue[0] if self.queue else None

    def next_event(self, now: int) -> int | None:
        return now if self.queue else None

    def reset(self) -> None:
        self.queue.clear()
