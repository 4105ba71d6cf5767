"""htb (sch_htb.c): classification paths, token timing on the virtual clock, borrowing,
priorities and the deficit round robin."""

from __future__ import annotations

from collections import Counter

import pytest

from tcemu.qdisc import create_qdisc, format_class_stats, format_stats
from tcemu.qdisc.base import (
    NET_XMIT_DROP,
    NET_XMIT_STOLEN_FLAG,
    NET_XMIT_SUCCESS,
    TC_ACT_OK,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    QdiscDev,
    QdiscError,
    TcfResult,
)
from tcemu.qdisc.fifo import PfifoQdisc
from tcemu.qdisc.htb import HtbQdisc
from tcemu.qdisc.tbf import TbfQdisc
from tcemu.skb import SkBuff

from .helpers import by_tag, drain, skb, tag_of, verdict

MS = 1_000_000
T0 = 2_000_000_000
H = 0x1_0000


def htb(default: int = 0, **kw: int) -> HtbQdisc:
    q = create_qdisc("htb", H, params={"default": default, **kw}, now=T0)
    assert isinstance(q, HtbQdisc)
    return q


def where(q: HtbQdisc, s: SkBuff) -> object:
    """Which queue the skb went to: 'direct', a class id, or the return code."""
    before = {cid: cl.leaf.stats.qlen for cid, cl in q.classes.items() if cl.leaf}
    direct = len(q.direct_queue)
    ret = q.enqueue_inner(s, T0)
    if len(q.direct_queue) > direct:
        return "direct"
    for cid, cl in q.classes.items():
        if cl.leaf is not None and cl.leaf.stats.qlen > before.get(cid, 0):
            return cid
    return ret


def tree() -> HtbQdisc:
    """1:1 (inner) with leaves 1:10 and 1:20; default 20."""
    q = htb(default=0x20)
    q.change_class(H | 1, rate=1_000_000, now=T0)
    q.change_class(H | 0x10, parent=H | 1, rate=500_000, ceil=1_000_000, now=T0)
    q.change_class(H | 0x20, parent=H | 1, rate=500_000, ceil=1_000_000, now=T0)
    return q


def test_priority_shortcuts() -> None:
    q = tree()
    q.classify = verdict(TC_ACT_OK, H | 0x10)
    assert where(q, skb(priority=H)) == "direct"            # X:0 is the direct flow
    assert where(q, skb(priority=H | 0x20)) == H | 0x20     # a leaf class id
    # an inner class id starts that class's own chain (none here): the default class
    assert where(q, skb(priority=H | 1)) == H | 0x20


def test_filter_results() -> None:
    q = tree()
    q.classify = by_tag({
        1: TcfResult(TC_ACT_OK, H | 0x10),
        2: TcfResult(TC_ACT_OK, H),               # the handle: direct queue
        3: TcfResult(TC_ACT_OK, H | 0x99),        # no such class: default
        4: TcfResult(TC_ACT_OK, H | 1),           # inner class: its chain runs next
    })
    q.classes[H | 1].classify = verdict(TC_ACT_OK, H | 0x10)
    assert where(q, skb(tag=1)) == H | 0x10
    assert where(q, skb(tag=2)) == "direct"
    assert where(q, skb(tag=3)) == H | 0x20
    assert where(q, skb(tag=4)) == H | 0x10
    assert where(q, skb(tag=5)) == H | 0x20        # UNSPEC: default


def test_stolen_and_shot() -> None:
    q = tree()
    q.classify = verdict(TC_ACT_STOLEN)
    assert q.enqueue_inner(skb(), T0) == NET_XMIT_SUCCESS | NET_XMIT_STOLEN_FLAG
    assert (q.stats.qlen, q.stats.drops) == (0, 0)
    q.classify = verdict(TC_ACT_SHOT)
    assert q.enqueue(skb(), T0) == NET_XMIT_SUCCESS
    assert (q.stats.qlen, q.stats.drops) == (0, 1)


def test_missing_or_inner_default_means_direct() -> None:
    q = tree()
    q.defcls = 0x77
    assert where(q, skb()) == "direct"
    q.defcls = 1                                        # 1:1 is an inner class
    assert where(q, skb()) == "direct"


def test_direct_queue_limit_and_priority() -> None:
    q = htb(default=0, direct_qlen=2)
    q.change_class(H | 0x10, rate=1_000_000, now=T0)
    q.enqueue(skb(tag=1, priority=H | 0x10), T0)
    assert [q.enqueue(skb(tag=t), T0) for t in (2, 3, 4)] == [0, 0, NET_XMIT_DROP]
    assert (q.direct_pkts, q.stats.drops, q.stats.qlen) == (2, 1, 3)
    assert [tag_of(s) for _, s in drain(q, T0)] == [2, 3, 1]   # direct first


def test_direct_qlen_defaults_to_tx_queue_len() -> None:
    q = create_qdisc("htb", H, dev=QdiscDev(tx_queue_len=17))
    assert isinstance(q, HtbQdisc)
    assert q.direct_qlen == 17


def test_one_class_sends_while_it_has_tokens() -> None:
    """rate 8mbit burst 1000: the bucket holds 1 ms; a class sends while its tokens are
    >= 0, so the second packet goes out at once and puts it 1 ms in debt."""
    q = htb(default=0x10)
    q.change_class(H | 0x10, rate=1_000_000, burst=1000, cburst=1000, now=T0)
    for _ in range(10):
        q.enqueue(skb(1000), T0)
    times = [t - T0 for t, _ in drain(q, T0)]
    assert times == [0, 0] + [i * MS for i in range(1, 9)]
    cl = q.classes[H | 0x10]
    assert (cl.stats.packets, cl.stats.bytes) == (10, 10_000)
    assert q.stats.overlimits == cl.stats.overlimits == 9
    assert (q.stats.packets, q.stats.qlen, q.stats.backlog) == (10, 0, 0)


def test_default_burst_is_rate_over_hz_plus_mtu() -> None:
    q = htb()
    cl = q.change_class(H | 0x10, rate=125_000)          # 1mbit, tc burst 1600 B
    assert cl.buffer == 12_800_000                        # 1600 B at 1mbit
    assert cl.quantum == 12_500                           # rate / r2q 10
    assert q.change_class(H | 0x20, rate=1000).quantum == 1000          # at least 1000
    assert q.change_class(H | 0x30, rate=10**9).quantum == 200_000      # at most 200000
    assert q.change_class(H | 0x40, rate=1000, quantum=1514).quantum == 1514


def _fill(q: HtbQdisc, n: int, classes: list[int]) -> None:
    for _ in range(n):
        for c in classes:
            q.enqueue(skb(1000, priority=H | c, tag=c), T0)


def test_two_classes_share_the_parent_ceil() -> None:
    """Each child is guaranteed 100 KB/s and may borrow up to 1 MB/s from 1:1, whose
    rate and ceil are 1 MB/s: together they get the parent's rate, not their own 200."""
    q = htb()
    q.change_class(H | 1, rate=1_000_000, now=T0)
    for c in (0x10, 0x20):
        q.change_class(H | c, parent=H | 1, rate=100_000, ceil=1_000_000, now=T0)
    _fill(q, 100, [0x10, 0x20])
    out = drain(q, T0)
    assert len(out) == 200
    span = out[-1][0] - T0
    # 200 KB at 1 MB/s take 200 ms, less what the buckets held at the start
    assert 190 * MS <= span <= 200 * MS
    first = Counter(tag_of(s) for _, s in out[:100])
    assert abs(first[0x10] - first[0x20]) <= 10         # quantum 10000: 10 packets a turn
    parent = q.classes[H | 1]
    assert parent.stats.packets == 200
    assert sum(q.classes[H | c].borrows for c in (0x10, 0x20)) > 100


def test_without_a_parent_to_borrow_from_each_keeps_its_rate() -> None:
    q = htb()
    for c in (0x10, 0x20):
        q.change_class(H | c, rate=100_000, now=T0)          # ceil = rate
    _fill(q, 20, [0x10, 0x20])
    times = [t - T0 for t, s in drain(q, T0) if tag_of(s) == 0x10]
    # 1600 B of burst: two packets at once (the second into debt), then one per 10 ms
    # from when the debt of 400 B is paid off (4 ms)
    assert times == [0, 0] + [4 * MS + i * 10 * MS for i in range(18)]


def test_excess_is_shared_by_quantum() -> None:
    q = htb()
    q.change_class(H | 1, rate=1_000_000, now=T0)
    q.change_class(H | 0x10, parent=H | 1, rate=300_000, ceil=1_000_000, now=T0)
    q.change_class(H | 0x20, parent=H | 1, rate=100_000, ceil=1_000_000, now=T0)
    _fill(q, 300, [0x10, 0x20])
    out = drain(q, T0, until=T0 + 400 * MS)
    share = Counter(tag_of(s) for _, s in out[20:320])
    # guaranteed 3:1, excess split by quantum 30000:10000 = 3:1
    assert 0.70 <= share[0x10] / 300 <= 0.80


def test_lower_prio_value_gets_the_excess() -> None:
    q = htb()
    q.change_class(H | 1, rate=1_000_000, now=T0)
    q.change_class(H | 0x10, parent=H | 1, rate=100_000, ceil=1_000_000, prio=0, now=T0)
    q.change_class(H | 0x20, parent=H | 1, rate=100_000, ceil=1_000_000, prio=1, now=T0)
    _fill(q, 200, [0x10, 0x20])
    out = drain(q, T0, until=T0 + 150 * MS)
    share = Counter(tag_of(s) for _, s in out[10:])
    # 1:20 gets only its own 100 KB/s (about one packet in ten)
    assert share[0x20] / (share[0x10] + share[0x20]) <= 0.15


def test_ceil_caps_a_lone_class() -> None:
    q = htb()
    q.change_class(H | 1, rate=1_000_000, now=T0)
    q.change_class(H | 0x10, parent=H | 1, rate=100_000, ceil=200_000, now=T0)
    _fill(q, 40, [0x10])
    span = drain(q, T0)[-1][0] - T0
    # 40 KB at 200 KB/s: 200 ms less the two initial buckets
    assert 180 * MS <= span <= 200 * MS


def test_deficit_round_robin_within_a_row() -> None:
    q = htb()
    big = {"rate": 1_000_000, "burst": 1_000_000, "cburst": 1_000_000, "now": T0}
    q.change_class(H | 0xA, quantum=3000, **big)
    q.change_class(H | 0xB, quantum=1000, **big)
    _fill(q, 20, [0xA, 0xB])
    order = [tag_of(s) for _, s in drain(q, T0)][:14]
    # deficits start at 0: A sends, goes to -1000, gets +3000 and yields; B likewise
    # with +1000; from then on A sends three per round, B one
    assert order == [0xA, 0xB, 0xA, 0xA, 0xA, 0xB, 0xA, 0xA, 0xA, 0xB, 0xA, 0xA, 0xA, 0xB]


def test_graft_and_leaf_limit() -> None:
    q = htb(default=0x10)
    q.change_class(H | 0x10, rate=1_000_000, now=T0)
    q.graft(H | 0x10, PfifoQdisc(limit=1))
    assert [q.enqueue(skb(), T0) for _ in range(2)] == [NET_XMIT_SUCCESS, NET_XMIT_DROP]
    assert (q.stats.drops, q.classes[H | 0x10].stats.drops) == (1, 1)


def test_class_errors_and_tree_depth() -> None:
    q = htb()
    with pytest.raises(QdiscError, match="bad class id"):
        q.change_class(0x2_0010, rate=1000)
    q.change_class(H | 1, rate=1000)
    with pytest.raises(QdiscError, match="bad class id"):
        q.change_class(0, rate=1000)
    parent = H | 1
    for minor in range(2, 9):
        q.change_class(H | minor, parent=parent, rate=1000)
        parent = H | minor
    assert q.classes[H | 1].level == 7
    with pytest.raises(QdiscError, match="tree is too deep"):
        q.change_class(H | 9, parent=parent, rate=1000)


def test_leaf_becomes_inner_and_back() -> None:
    q = htb(default=0x10)
    q.change_class(H | 0x10, rate=1_000_000, now=T0)
    q.enqueue(skb(), T0)
    q.change_class(H | 0x11, parent=H | 0x10, rate=1_000_000, now=T0)
    assert q.classes[H | 0x10].level == 7
    assert q.stats.qlen == 0                               # the old leaf was purged
    q.delete_class(H | 0x11)
    assert q.classes[H | 0x10].level == 0
    assert q.enqueue(skb(), T0) == NET_XMIT_SUCCESS
    assert len(drain(q, T0)) == 1


def test_a_shaped_leaf_does_not_block_the_others() -> None:
    """A tbf under a class is not work-conserving: htb skips it (qdisc_warn_nonwc) and
    wakes up again when the tbf can send."""
    q = htb(default=0x10)
    q.change_class(H | 0x10, rate=10_000_000, now=T0)
    q.change_class(H | 0x20, rate=10_000_000, now=T0)
    q.graft(H | 0x10, TbfQdisc(handle=0x2_0000, rate=1_000_000, burst=1000, limit=10**5,
                               now=T0))
    for _ in range(5):
        q.enqueue(skb(1000, tag=1), T0)
        q.enqueue(skb(1000, tag=2, priority=H | 0x20), T0)
    out = [(t - T0, tag_of(s)) for t, s in drain(q, T0)]
    assert [t for t, tag in out if tag == 1] == [i * MS for i in range(5)]
    assert [tag for t, tag in out if t < MS] == [1, 2, 2, 2, 2, 2]


def test_stats_text_like_tc() -> None:
    q = htb(default=0x10)
    cl = q.change_class(H | 0x10, rate=125_000, now=T0)         # 1mbit, burst 1600
    q.enqueue(skb(1000), T0)
    drain(q, T0)
    assert format_stats(q.stats) == (
        " Sent 1000 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) \n"
        " backlog 0b 0p requeues 0")
    # 1600 B of tokens = 200000 ticks, 1000 B spent = 125000 ticks
    assert format_class_stats(cl).splitlines()[2:] == [
        " lended: 1 borrowed: 0 giants: 0", " tokens: 75000 ctokens: 75000"]


def test_attach_chain_to_the_qdisc_or_a_class() -> None:
    q = tree()
    root_chain = verdict(TC_ACT_OK, H | 1)
    inner_chain = verdict(TC_ACT_OK, H | 0x10)
    q.attach_chain(H, root_chain)
    q.attach_chain(H | 1, inner_chain)
    assert q.classify is root_chain
    assert q.classes[H | 1].classify is inner_chain
    assert where(q, skb()) == H | 0x10
    with pytest.raises(QdiscError, match="no class 1:77"):
        q.attach_chain(H | 0x77, inner_chain)
