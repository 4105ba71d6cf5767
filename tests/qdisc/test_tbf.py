"""tbf (sch_tbf.c) on the virtual clock: departure times worked out from the token
arithmetic, limits, max_size, peak rate, and the options tc sends."""

from __future__ import annotations

import pytest

from tcemu.qdisc import create_qdisc
from tcemu.qdisc.base import NET_XMIT_DROP, NET_XMIT_SUCCESS, QdiscError
from tcemu.qdisc.fifo import PfifoQdisc
from tcemu.qdisc.tbf import TbfQdisc, tbf_limit_from_latency

from .helpers import drain, skb

MS = 1_000_000
T0 = 5_000_000_000        # a clock that does not start at 0


def tbf(**kw: int) -> TbfQdisc:
    q = create_qdisc("tbf", 0x1_0000, params=kw, now=T0)
    assert isinstance(q, TbfQdisc)
    return q


def test_ten_packets_at_8mbit_burst_1000_leave_one_ms_apart() -> None:
    q = tbf(rate=1_000_000, burst=1000, limit=100_000)        # tc: rate 8mbit burst 1000
    for _ in range(10):
        assert q.enqueue(skb(1000), T0) == NET_XMIT_SUCCESS
    times = [t - T0 for t, _ in drain(q, T0)]
    assert times == [i * MS for i in range(10)]
    # every packet but the first found the bucket empty once
    assert (q.stats.packets, q.stats.bytes, q.stats.overlimits) == (10, 10_000, 9)
    assert (q.stats.qlen, q.stats.backlog, q.stats.drops) == (0, 0, 0)


def test_burst_lets_packets_through_back_to_back() -> None:
    q = tbf(rate=1_000_000, burst=3000, limit=100_000)
    for _ in range(5):
        q.enqueue(skb(1000), T0)
    assert [t - T0 for t, _ in drain(q, T0)] == [0, 0, 0, MS, 2 * MS]


def test_idle_time_refills_up_to_the_burst_only() -> None:
    q = tbf(rate=1_000_000, burst=2000, limit=100_000)
    q.enqueue(skb(1000), T0)
    drain(q, T0)
    later = T0 + 50 * MS                          # far longer than 2 ms of tokens
    for _ in range(4):
        q.enqueue(skb(1000), later)
    assert [t - later for t, _ in drain(q, later)] == [0, 0, MS, 2 * MS]


def test_partial_sizes_use_psched_l2t() -> None:
    q = tbf(rate=125_000, burst=1500, limit=100_000)    # 1mbit: 8 us per byte
    q.enqueue(skb(1500), T0)
    q.enqueue(skb(100), T0)
    q.enqueue(skb(1500), T0)
    assert [t - T0 for t, _ in drain(q, T0)] == [0, 800_000, 800_000 + 12 * MS]


def test_limit_is_bytes_in_the_inner_bfifo() -> None:
    q = tbf(rate=1_000_000, burst=1000, limit=2500)
    codes = [q.enqueue(skb(1000), T0) for _ in range(4)]
    assert codes == [NET_XMIT_SUCCESS, NET_XMIT_SUCCESS, NET_XMIT_DROP, NET_XMIT_DROP]
    assert (q.stats.drops, q.stats.qlen, q.stats.backlog) == (2, 2, 2000)


def test_packet_larger_than_burst_is_dropped() -> None:
    q = tbf(rate=1_000_000, burst=1000, limit=100_000)
    assert q.enqueue(skb(1001), T0) == NET_XMIT_DROP
    assert q.stats.drops == 1


def test_latency_becomes_a_byte_limit() -> None:
    # tc: limit = rate * latency + burst = 1e6 B/s * 50 ms + 1000
    assert tbf_limit_from_latency(1_000_000, 1000, 50 * MS) == 51_000
    assert tbf(rate=1_000_000, burst=1000, latency=50 * MS).limit == 51_000
    # with a peak rate the smaller of the two
    assert tbf_limit_from_latency(1_000_000, 10_000, 10 * MS, peakrate=2_000_000,
                                  mtu=1500) == 20_000 - 10_000 + 11_500 - 1500


def test_peakrate_spaces_packets_within_the_burst() -> None:
    # 4 KB burst at 1 MB/s, but never faster than 2 MB/s (1000 B every 0.5 ms)
    q = tbf(rate=1_000_000, burst=4000, limit=100_000, peakrate=2_000_000, mtu=1000)
    for _ in range(10):
        q.enqueue(skb(1000), T0)
    times = [t - T0 for t, _ in drain(q, T0)]
    # the peak bucket (one mtu = 0.5 ms) paces packets 0.5 ms apart; the rate bucket
    # loses 0.5 ms per packet from 4 ms - 1 ms, so packet 6 leaves it at 0 and from
    # packet 7 on the rate paces at 1 ms (packet 7 waits until its toks reach 0 at 4 ms)
    assert times[:7] == [i * 500_000 for i in range(7)]
    assert times[7:] == [4 * MS, 5 * MS, 6 * MS]


def test_next_event_is_the_watchdog_time() -> None:
    q = tbf(rate=1_000_000, burst=1000, limit=100_000)
    q.enqueue(skb(1000), T0)
    q.enqueue(skb(1000), T0)
    assert q.dequeue(T0) is not None
    assert q.dequeue(T0) is None
    assert q.next_event(T0) == T0 + MS
    assert q.next_event(T0 + 300_000) == T0 + MS
    assert q.dequeue(T0 + MS) is not None
    assert q.next_event(T0 + MS) is None


def test_child_qdisc_can_be_replaced() -> None:
    q = tbf(rate=1_000_000, burst=1000, limit=100_000)
    q.graft(0x1_0001, PfifoQdisc(limit=1))
    assert [q.enqueue(skb(500), T0) for _ in range(2)] == [NET_XMIT_SUCCESS, NET_XMIT_DROP]


@pytest.mark.parametrize(("params", "message"), [
    ({"burst": 1000, "limit": 1}, '"rate" parameter is mandatory'),
    ({"rate": 1000, "limit": 1}, '"burst" parameter is mandatory'),
    ({"rate": 1000, "burst": 1000}, 'either "limit" or "latency"'),
    ({"rate": 1000, "burst": 1000, "limit": 1, "peakrate": 2000}, '"mtu" is required'),
    ({"rate": 1000, "burst": 1000, "limit": 1, "peakrate": 1000, "mtu": 1000},
     "peakrate 1000 is lower than or equals to rate 1000"),
])
def test_bad_options(params: dict[str, int], message: str) -> None:
    with pytest.raises(QdiscError, match=message):
        create_qdisc("tbf", 0x1_0000, params=params)
