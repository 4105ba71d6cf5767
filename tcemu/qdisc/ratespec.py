"""Rates and lengths as time, the way the kernel and ``tc`` compute them.

Kernel side (``net/sched/sch_generic.c`` ``psched_ratecfg_precompute``,
``include/net/sch_generic.h`` ``psched_l2t_ns``, ``net/sched/sch_tbf.c``
``psched_ns_t2l``): a rate becomes a fixed-point ``mult``/``shift`` pair, and the time a
packet of ``len`` bytes takes is ``(len * mult) >> shift`` nanoseconds after adding the
overhead, applying the minimum packet unit and, for ATM, rounding up to 53-byte cells.

User side (iproute2 ``tc/tc_core.c``): ``tc`` turns a burst in bytes into "ticks" with
``tc_calc_xmittime`` through the ``/proc/net/psched`` clock (``t2us=1000``, ``us2t=64``,
``clock_res=1000000``, so 15.625 ticks per microsecond); the kernel turns ticks back into
nanoseconds with ``PSCHED_TICKS2NS`` (``<< 6``).  HTB class buffers travel that way, so
their rounding is the one ``tc`` produces.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NSEC_PER_SEC",
    "PSCHED_SHIFT",
    "TC_LINKLAYER_ATM",
    "TC_LINKLAYER_ETHERNET",
    "TC_LINKLAYER_UNAWARE",
    "TIME_UNITS_PER_SEC",
    "PschedRatecfg",
    "psched_ns2ticks",
    "psched_ticks2ns",
    "tc_calc_xmitsize",
    "tc_calc_xmittime",
]

NSEC_PER_SEC = 1_000_000_000
PSCHED_SHIFT = 6                    # include/net/pkt_sched.h
TIME_UNITS_PER_SEC = 1_000_000      # iproute2 tc_core.h: tc's times are microseconds
# include/uapi/linux/pkt_sched.h enum tc_link_layer
TC_LINKLAYER_UNAWARE = 0
TC_LINKLAYER_ETHERNET = 1
TC_LINKLAYER_ATM = 2
_TC_LINKLAYER_MASK = 0x0F
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
# /proc/net/psched on any kernel since 2.6.31: NSEC_PER_USEC, PSCHED_TICKS2NS(1), 1000000
_TICK_IN_USEC = 1000 / 64


def psched_ticks2ns(ticks: int) -> int:
    return ticks << PSCHED_SHIFT


def psched_ns2ticks(ns: int) -> int:
    return ns >> PSCHED_SHIFT


def tc_calc_xmittime(rate: int, size: int) -> int:
    """iproute2 ``tc_calc_xmittime``: ticks to send ``size`` bytes at ``rate`` B/s.

    The time is truncated to whole microseconds (``unsigned int``) before it becomes
    ticks, and the ticks are truncated again, as ``tc`` does.
    """
    usec = int(TIME_UNITS_PER_SEC * (float(size) / float(rate))) & _U32
    return int(usec * _TICK_IN_USEC) & _U32


def tc_calc_xmitsize(rate: int, ticks: int) -> int:
    """iproute2 ``tc_calc_xmitsize``: bytes sent at ``rate`` B/s in ``ticks``."""
    usec = int(ticks / _TICK_IN_USEC) & _U32
    return int(float(rate) * usec / TIME_UNITS_PER_SEC) & _U32


def _mult_shift(rate: int) -> tuple[int, int]:
    """``psched_ratecfg_precompute__``: the largest ``mult`` below 2^32 with bit 31 set."""
    if rate <= 0:
        return 1, 0
    factor = NSEC_PER_SEC
    shift = 0
    while True:
        mult = (factor // rate) & _U32
        if mult & (1 << 31) or factor & (1 << 63):
            return mult, shift
        factor = (factor << 1) & _U64
        shift += 1


@dataclass(frozen=True)
class PschedRatecfg:
    """``struct psched_ratecfg``: one precomputed rate (bytes per second)."""

    rate_bytes_ps: int
    mult: int
    shift: int
    overhead: int = 0
    mpu: int = 0
    linklayer: int = TC_LINKLAYER_ETHERNET

    @classmethod
    def precompute(cls, rate: int, *, overhead: int = 0, mpu: int = 0,
                   linklayer: int = TC_LINKLAYER_ETHERNET) -> PschedRatecfg:
        """``psched_ratecfg_precompute`` (``rate`` is ``max(conf->rate, rate64)``)."""
        mult, shift = _mult_shift(rate)
        return cls(rate, mult, shift, overhead, mpu, linklayer & _TC_LINKLAYER_MASK)

    def l2t_ns(self, length: int) -> int:
        """``psched_l2t_ns``: nanoseconds to send ``length`` bytes."""
        length = (length + self.overhead) & _U32
        length = max(length, self.mpu)
        if self.linklayer == TC_LINKLAYER_ATM:
            length = -(-length // 48) * 53
        return ((length * self.mult) & _U64) >> self.shift

    def ns_t2l(self, ns: int) -> int:
        """``psched_ns_t2l`` (sch_tbf.c): bytes that fit in ``ns`` nanoseconds."""
        length = ((ns * self.rate_bytes_ps) & _U64) // NSEC_PER_SEC
        if self.linklayer == TC_LINKLAYER_ATM:
            length = length // 53 * 48
        return length - self.overhead if length > self.overhead else 0
