"""psched rate arithmetic (sch_generic.c psched_ratecfg_precompute, psched_l2t_ns) and
tc's tick conversions (iproute2 tc_core.c), with values worked out by hand."""

from __future__ import annotations

import pytest

from tcemu.qdisc.ratespec import (
    TC_LINKLAYER_ATM,
    PschedRatecfg,
    psched_ticks2ns,
    tc_calc_xmitsize,
    tc_calc_xmittime,
)


def test_8mbit_is_exactly_one_microsecond_per_byte() -> None:
    r = PschedRatecfg.precompute(1_000_000)          # 8mbit = 10^6 bytes/s
    # mult = 10^9 * 2^22 / 10^6 = 4194304000 (bit 31 set), shift 22
    assert (r.mult, r.shift) == (4_194_304_000, 22)
    assert r.l2t_ns(1000) == 1_000_000
    assert r.l2t_ns(1) == 1000


@pytest.mark.parametrize(("rate", "length", "ns"), [
    (125_000, 1500, 12_000_000),          # 1mbit: 1500 B take 12 ms
    (12_500_000, 1514, 121_120),          # 100mbit
    (3, 1, 333_333_333),                  # 3 B/s, truncated by the fixed point
])
def test_l2t(rate: int, length: int, ns: int) -> None:
    assert PschedRatecfg.precompute(rate).l2t_ns(length) == ns


def test_overhead_mpu_and_atm_cells() -> None:
    r = PschedRatecfg.precompute(1_000_000, overhead=24, mpu=64)
    assert r.l2t_ns(1000) == 1_024_000           # overhead is added
    assert r.l2t_ns(10) == 64_000                # 34 bytes rounded up to mpu 64
    atm = PschedRatecfg.precompute(1_000_000, linklayer=TC_LINKLAYER_ATM)
    assert atm.l2t_ns(100) == 3 * 53 * 1000      # 100 B = 3 cells of 48, 53 B each


def test_ns_t2l_inverts_l2t() -> None:
    r = PschedRatecfg.precompute(1_000_000, overhead=20)
    assert r.ns_t2l(1_000_000) == 980
    assert r.ns_t2l(10_000) == 0


def test_tc_ticks() -> None:
    # /proc/net/psched: 15.625 ticks per microsecond, a tick is 64 ns
    assert tc_calc_xmittime(1_000_000, 1000) == 15_625
    assert psched_ticks2ns(15_625) == 1_000_000
    # 1600 B at 1mbit = 12800 us -> 200000 ticks -> 12.8 ms
    assert psched_ticks2ns(tc_calc_xmittime(125_000, 1600)) == 12_800_000
    # time is truncated to whole microseconds first: 1 B at 3 B/s = 333333 us
    assert tc_calc_xmittime(3, 1) == int(333_333 * 15.625)
    assert tc_calc_xmitsize(1_000_000, 15_625) == 1000
