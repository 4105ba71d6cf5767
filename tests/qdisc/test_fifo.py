"""pfifo, bfifo, pfifo_head_drop (sch_fifo.c), pfifo_fast and noqueue (sch_generic.c)."""

from __future__ import annotations

import pytest

from tcemu.qdisc import create_qdisc
from tcemu.qdisc.base import NET_XMIT_CN, NET_XMIT_DROP, NET_XMIT_SUCCESS, QdiscDev, QdiscError
from tcemu.qdisc.fifo import (
    PRIO2BAND,
    BfifoQdisc,
    NoQueueQdisc,
    PfifoFastQdisc,
    PfifoHeadDropQdisc,
    PfifoQdisc,
)

from .helpers import drain, skb, tag_of


def test_pfifo_drops_past_the_packet_limit() -> None:
    q = PfifoQdisc(limit=3)
    codes = [q.enqueue(skb(100, tag=i), 0) for i in range(5)]
    assert codes == [NET_XMIT_SUCCESS] * 3 + [NET_XMIT_DROP] * 2
    assert (q.stats.qlen, q.stats.backlog, q.stats.drops) == (3, 300, 2)
    assert [tag_of(s) for _, s in drain(q, 0)] == [0, 1, 2]
    assert (q.stats.packets, q.stats.bytes, q.stats.qlen, q.stats.backlog) == (3, 300, 0, 0)


def test_bfifo_counts_bytes() -> None:
    q = BfifoQdisc(limit=2500)
    assert [q.enqueue(skb(1000), 0) for _ in range(3)] == [0, 0, NET_XMIT_DROP]
    assert q.enqueue(skb(500), 0) == NET_XMIT_SUCCESS      # 2000 + 500 <= 2500
    assert q.stats.backlog == 2500


def test_default_limits_come_from_the_device() -> None:
    dev = QdiscDev(tx_queue_len=7, mtu=1500)
    assert PfifoQdisc(dev=dev).limit == 7
    assert BfifoQdisc(dev=dev).limit == 7 * 1514
    assert create_qdisc("pfifo", 0x10000, params={"limit": 5}).limit == 5  # type: ignore[attr-defined]


def test_pfifo_head_drop_keeps_the_newest() -> None:
    q = PfifoHeadDropQdisc(limit=2)
    codes = [q.enqueue(skb(100, tag=i), 0) for i in range(4)]
    assert codes == [NET_XMIT_SUCCESS, NET_XMIT_SUCCESS, NET_XMIT_CN, NET_XMIT_CN]
    assert [tag_of(s) for _, s in drain(q, 0)] == [2, 3]
    assert q.stats.drops == 2


@pytest.mark.parametrize("priority", range(16))
def test_pfifo_fast_band_of_each_tc_prio(priority: int) -> None:
    # TC_PRIO_INTERACTIVE (6) and CONTROL (7) go to band 0, BESTEFFORT (0) to band 1,
    # BULK (2) to band 2; the map repeats for priority values above 15.
    assert PfifoFastQdisc.band_of(skb(priority=priority)) == PRIO2BAND[priority]
    assert PfifoFastQdisc.band_of(skb(priority=priority | 0x10)) == PRIO2BAND[priority]
    assert PRIO2BAND[6] == PRIO2BAND[7] == 0
    assert PRIO2BAND[0] == 1
    assert PRIO2BAND[2] == 2


def test_pfifo_fast_serves_band_0_first() -> None:
    q = PfifoFastQdisc()
    q.enqueue(skb(tag=1, priority=2), 0)      # band 2
    q.enqueue(skb(tag=2, priority=0), 0)      # band 1
    q.enqueue(skb(tag=3, priority=6), 0)      # band 0
    q.enqueue(skb(tag=4, priority=0), 0)      # band 1
    assert [tag_of(s) for _, s in drain(q, 0)] == [3, 2, 4, 1]


def test_pfifo_fast_ring_per_band_and_batched_release() -> None:
    q = PfifoFastQdisc(dev=QdiscDev(tx_queue_len=40))
    codes = [q.enqueue(skb(tag=i), 0) for i in range(41)]
    assert codes[:40] == [NET_XMIT_SUCCESS] * 40
    assert codes[40] == NET_XMIT_DROP             # each band is a ring of tx_queue_len
    assert q.enqueue(skb(priority=6), 0) == NET_XMIT_SUCCESS   # another band has room
    q.dequeue(0)                                  # band 0
    q.dequeue(0)                                  # band 1, slot 0 consumed ...
    # ... but ptr_ring releases consumed slots only in batches of 16 (40 // 2 >= 16)
    assert q.enqueue(skb(), 0) == NET_XMIT_DROP
    for _ in range(15):
        q.dequeue(0)
    assert [q.enqueue(skb(), 0) for _ in range(17)] == [NET_XMIT_SUCCESS] * 16 + [NET_XMIT_DROP]


def test_pfifo_fast_small_ring_releases_every_slot() -> None:
    q = PfifoFastQdisc(dev=QdiscDev(tx_queue_len=4))   # batch 16 > 4 / 2 -> batch 1
    assert [q.enqueue(skb(), 0) for _ in range(5)] == [0, 0, 0, 0, NET_XMIT_DROP]
    q.dequeue(0)
    assert q.enqueue(skb(), 0) == NET_XMIT_SUCCESS


def test_pfifo_fast_needs_a_queue_length() -> None:
    with pytest.raises(QdiscError, match="zero length rings"):
        PfifoFastQdisc(dev=QdiscDev(tx_queue_len=0))


def test_noqueue_passes_through_without_stats() -> None:
    q = NoQueueQdisc()
    assert q.bypass
    assert q.enqueue(skb(tag=9), 0) == NET_XMIT_SUCCESS
    assert [tag_of(s) for _, s in drain(q, 0)] == [9]
    assert q.stats.packets == 0


def test_unknown_kind_and_option() -> None:
    with pytest.raises(QdiscError, match='unknown qdisc "fooq"'):
        create_qdisc("fooq", 0x10000)
    with pytest.raises(QdiscError, match="unknown option"):
        create_qdisc("pfifo", 0x10000, params={"bands": 3})
