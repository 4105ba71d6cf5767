"""prio (sch_prio.c prio_classify/prio_enqueue/prio_dequeue)."""

from __future__ import annotations

import pytest

from tcemu.qdisc import create_qdisc
from tcemu.qdisc.base import (
    NET_XMIT_BYPASS_FLAG,
    NET_XMIT_DROP,
    NET_XMIT_STOLEN_FLAG,
    NET_XMIT_SUCCESS,
    TC_ACT_OK,
    TC_ACT_QUEUED,
    TC_ACT_RECLASSIFY,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_ACT_UNSPEC,
    QdiscError,
    TcfResult,
)
from tcemu.qdisc.fifo import PfifoQdisc
from tcemu.qdisc.prio import PrioQdisc
from tcemu.qdisc.tbf import TbfQdisc

from .helpers import by_tag, drain, skb, tag_of, verdict

H = 0x1_0000          # handle 1:


def band(q: PrioQdisc, s: object) -> int | None:
    got, _ = q.classify_band(s)  # type: ignore[arg-type]
    return got


def test_priority_shortcut_picks_minor_minus_one() -> None:
    q = PrioQdisc(handle=H)
    q.classify = verdict(TC_ACT_OK, H | 1)       # must not run: the shortcut wins
    assert band(q, skb(priority=H | 3)) == 2
    assert band(q, skb(priority=H | 1)) == 0
    # minor 0 or a band past the last one: priomap[0] (band 1)
    assert band(q, skb(priority=H)) == 1
    assert band(q, skb(priority=H | 9)) == 1


def test_priomap_without_filters() -> None:
    q = PrioQdisc(handle=H)
    assert [band(q, skb(priority=p)) for p in range(16)] == [
        1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert band(q, skb(priority=0x5_0006)) == 1    # another qdisc's class id counts as 0


def test_filter_classid_picks_the_band() -> None:
    q = PrioQdisc(handle=H, bands=4, priomap=[3] * 16)
    q.classify = by_tag({1: TcfResult(TC_ACT_OK, H | 2), 2: TcfResult(TC_ACT_RECLASSIFY, 3),
                         3: TcfResult(TC_ACT_OK, H | 7)})
    assert band(q, skb(tag=1)) == 1
    assert band(q, skb(tag=2)) == 2             # only the minor number matters
    assert band(q, skb(tag=3)) == 3             # out of range: priomap[0]
    assert band(q, skb(tag=4)) == 3             # UNSPEC: priomap


@pytest.mark.parametrize("act", [TC_ACT_STOLEN, TC_ACT_QUEUED, TC_ACT_TRAP])
def test_stolen_consumes_without_a_drop(act: int) -> None:
    q = PrioQdisc(handle=H)
    q.classify = verdict(act)
    assert q.enqueue_inner(skb(), 0) == NET_XMIT_SUCCESS | NET_XMIT_STOLEN_FLAG
    assert q.enqueue(skb(), 0) == NET_XMIT_SUCCESS
    assert (q.stats.qlen, q.stats.drops) == (0, 0)


def test_shot_drops_and_counts() -> None:
    q = PrioQdisc(handle=H)
    q.classify = verdict(TC_ACT_SHOT)
    assert q.enqueue_inner(skb(), 0) == NET_XMIT_SUCCESS | NET_XMIT_BYPASS_FLAG
    assert q.enqueue(skb(), 0) == NET_XMIT_SUCCESS    # the device sees success (masked)
    assert (q.stats.qlen, q.stats.drops) == (0, 2)


def test_strict_priority_dequeue_and_stats() -> None:
    q = PrioQdisc(handle=H)
    q.classify = verdict(TC_ACT_UNSPEC)
    for tag, prio in [(1, 0), (2, 2), (3, 6), (4, 0), (5, 7)]:
        assert q.enqueue(skb(100, tag=tag, priority=prio), 0) == NET_XMIT_SUCCESS
    assert (q.stats.qlen, q.stats.backlog) == (5, 500)
    assert [tag_of(s) for _, s in drain(q, 0)] == [3, 5, 1, 4, 2]
    assert (q.stats.packets, q.stats.bytes, q.stats.qlen) == (5, 500, 0)


def test_band_limit_drop_counts_on_prio_too() -> None:
    q = PrioQdisc(handle=H)
    q.graft(H | 2, PfifoQdisc(limit=1))
    assert q.enqueue(skb(priority=H | 2), 0) == NET_XMIT_SUCCESS
    assert q.enqueue(skb(priority=H | 2), 0) == NET_XMIT_DROP
    assert (q.stats.drops, q.queues[1].stats.drops, q.stats.qlen) == (1, 1, 1)


def test_options_are_checked_like_the_kernel() -> None:
    with pytest.raises(QdiscError, match="bands"):
        PrioQdisc(bands=1)
    with pytest.raises(QdiscError, match="priomap"):
        create_qdisc("prio", H, params={"bands": 2})    # default map names band 2
    q = create_qdisc("prio", H, params={"bands": 2, "priomap": [1, 0] * 8})
    assert isinstance(q, PrioQdisc)
    assert q.prio2band[:2] == (1, 0)


def test_a_shaped_band_lets_lower_bands_through() -> None:
    q = PrioQdisc(handle=H)
    q.graft(H | 1, TbfQdisc(handle=0x2_0000, rate=1_000_000, burst=1000, limit=10**5))
    for _ in range(3):
        q.enqueue(skb(1000, tag=1, priority=H | 1), 0)
        q.enqueue(skb(1000, tag=2, priority=H | 2), 0)
    out = [(t, tag_of(s)) for t, s in drain(q, 0)]
    assert out == [(0, 1), (0, 2), (0, 2), (0, 2), (1_000_000, 1), (2_000_000, 1)]
