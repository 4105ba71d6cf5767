"""The network emulator qdisc (``net/sched/sch_netem.c``) on the virtual clock.

Per packet, in the kernel's order: duplicate (``duplicate >= get_crandom(dup_cor)``, not
for a packet that is itself a duplicate), lose (random with correlation, or the 4-state
/ Gilbert-Elliott models; with ``ecn`` a lost ECN-capable packet is marked CE instead),
corrupt one bit, refuse when ``qlen >= limit``, send the duplicate to the root qdisc, then
either reorder (every ``gap``-th packet, with probability ``reorder``, goes to the head of
the queue and leaves at once, counted as a requeue) or delay by
``tabledist(latency, jitter, delay_cor, dist)``, plus ``rate`` serialisation time after
the last queued packet.  Delayed packets wait in the time-sorted "tfifo" and leave when
the virtual clock reaches their ``time_to_send``.

Probabilities are the kernel's u32 fractions (``~0`` = 100%); :func:`netem_percent`
converts a ``tc`` percentage the way iproute2 does (``rint(p / 100 * UINT32_MAX)``).

Randomness: the kernel draws every probability and delay from a ``prandom_u32_state``
Tausworthe generator seeded by ``TCA_NETEM_PRNG_SEED`` (``tc ... netem seed N``) or by
``get_random_u64``.  tcemu runs the same generator: with ``seed`` given it draws the
kernel's exact sequence; without it the seed comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.qdisc.base import (
    NET_XMIT_BYPASS_FLAG,
    NET_XMIT_MASK,
    NET_XMIT_SUCCESS,
    TC_H_ROOT,
    Qdisc,
    QdiscError,
    qdisc_pkt_len,
)
from tcemu.qdisc.fifo import bstats_update, qdisc_drop
from tcemu.qdisc.ratespec import NSEC_PER_SEC

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = [
    "NETEM_DIST_MAX",
    "NETEM_DIST_SCALE",
    "Crndstate",
    "NetemQdisc",
    "RndState",
    "get_crandom",
    "netem_percent",
    "tabledist",
]

NETEM_DIST_SCALE = 8192             # include/uapi/linux/pkt_sched.h
NETEM_DIST_MAX = 16384
_U32 = 0xFFFF_FFFF
_INT_MAX = 0x7FFF_FFFF
_ETH_P_IP, _ETH_P_IPV6 = 0x0800, 0x86DD
# Loss model states (sch_netem.c enum)
_TX_IN_GAP, _TX_IN_BURST, _LOST_IN_GAP, _LOST_IN_BURST = 1, 2, 3, 4
_GOOD, _BAD = 1, 2


def netem_percent(percent: float) -> int:
    """iproute2 ``set_percent``: a percentage as the kernel's u32 fraction."""
    return round(percent / 100.0 * _U32) & _U32


class RndState:
    """``struct rnd_state`` and ``prandom_u32_state`` (``lib/random32.c``, the 113-bit
    Tausworthe generator), seeded by ``prandom_seed_state``."""

    def __init__(self, seed: int) -> None:
        i = ((seed >> 32) ^ (seed << 10) ^ seed) & _U32
        self.s1 = i + 2 if i < 2 else i
        self.s2 = i + 8 if i < 8 else i
        self.s3 = i + 16 if i < 16 else i
        self.s4 = i + 128 if i < 128 else i

    def u32(self) -> int:
        def taus(s: int, a: int, b: int, c: int, d: int) -> int:
            return (((s & c) << d) & _U32) ^ ((((s << a) & _U32) ^ s) >> b)
        self.s1 = taus(self.s1, 6, 13, 4294967294, 18)
        self.s2 = taus(self.s2, 2, 27, 4294967288, 2)
        self.s3 = taus(self.s3, 13, 21, 4294967280, 7)
        self.s4 = taus(self.s4, 3, 12, 4294967168, 13)
        return self.s1 ^ self.s2 ^ self.s3 ^ self.s4


@dataclass
class Crndstate:
    """``struct crndstate``: correlation ``rho`` (u32 fraction) and the last value."""

    rho: int = 0
    last: int = 0


def get_crandom(state: Crndstate, prng: RndState) -> int:
    """``get_crandom``: the next value, pulled towards the last one by ``rho``."""
    if state.rho == 0:
        return prng.u32()
    value = prng.u32()
    rho = state.rho + 1
    answer = ((value * ((1 << 32) - rho) + state.last * rho) >> 32) & _U32
    state.last = answer
    return answer


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def tabledist(mu: int, sigma: int, state: Crndstate, prng: RndState,
              dist: Sequence[int] | None) -> int:
    """``tabledist``: uniform in [mu - sigma, mu + sigma) without a table, else the
    table's shape scaled by sigma (C's truncating division)."""
    if sigma == 0:
        return mu
    rnd = get_crandom(state, prng)
    if dist is None:
        return (rnd % ((2 * sigma) & _U32)) + mu - sigma
    t = dist[rnd % len(dist)]
    x = (sigma % NETEM_DIST_SCALE) * t
    x += NETEM_DIST_SCALE // 2 if x >= 0 else -(NETEM_DIST_SCALE // 2)
    return _c_div(x, NETEM_DIST_SCALE) + (sigma // NETEM_DIST_SCALE) * t + mu


@dataclass
class _Pending:
    skb: SkBuff
    time_to_send: int


class NetemQdisc(Qdisc):
    """``netem``.  Times in ns, rate in bytes/s, probabilities as u32 fractions."""

    kind = "netem"

    def __init__(self, *, handle: int = 0x1_0000, parent: int = TC_H_ROOT,
                 rng: random.Random, limit: int = 1000, latency: int = 0, jitter: int = 0,
                 delay_corr: int = 0, loss: int = 0, loss_corr: int = 0, duplicate: int = 0,
                 dup_corr: int = 0, reorder: int | None = None, reorder_corr: int = 0,
                 gap: int = 0, corrupt: int = 0, corrupt_corr: int = 0, rate: int = 0,
                 packet_overhead: int = 0, cell_size: int = 0, cell_overhead: int = 0,
                 ecn: bool = False, seed: int | None = None,
                 delay_dist: Sequence[int] | None = None,
                 loss_gi: Sequence[int] | None = None,
                 loss_ge: Sequence[int] | None = None) -> None:
        super().__init__(handle=handle, parent=parent)
        if latency < 0 or jitter < 0:
            raise QdiscError("negative latency or jitter", kind=self.kind)
        if delay_dist is not None and not 0 < len(delay_dist) <= NETEM_DIST_MAX:
            raise QdiscError(f"a distribution table has 1..{NETEM_DIST_MAX} entries",
                             kind=self.kind)
        self.rng = rng
        self.limit = limit
        self.latency = latency
        self.jitter = min(jitter, _INT_MAX)     # "capping jitter to the range of tabledist"
        self.loss = loss
        self.duplicate = duplicate
        self.gap = gap
        self.counter = 0
        # netem_change: a gap alone means "reorder 100%"; TCA_NETEM_REORDER overrides it
        self.reorder = reorder if reorder is not None else (_U32 if gap else 0)
        self.corrupt = corrupt
        self.rate = rate
        self.packet_overhead = packet_overhead
        self.cell_size = cell_size
        self.cell_overhead = cell_overhead
        self.ecn = ecn
        self.delay_dist = tuple(delay_dist) if delay_dist is not None else None
        # KERNEL-DIFF: init_crandom seeds each correlation's "last" value with
        # get_random_u32 (not the netem PRNG); tcemu draws it from the seeded rng.
        self.delay_cor = Crndstate(delay_corr, rng.getrandbits(32) if delay_corr else 0)
        self.loss_cor = Crndstate(loss_corr, rng.getrandbits(32) if loss_corr else 0)
        self.dup_cor = Crndstate(dup_corr, rng.getrandbits(32) if dup_corr else 0)
        self.reorder_cor = Crndstate(reorder_corr, rng.getrandbits(32) if reorder_corr else 0)
        self.corrupt_cor = Crndstate(corrupt_corr, rng.getrandbits(32) if corrupt_corr else 0)
        self.seed = rng.getrandbits(64) if seed is None else seed & 0xFFFF_FFFF_FFFF_FFFF
        self.prng = RndState(self.seed)
        self.loss_model = "random"
        self.clg_state = 0
        self.clg: tuple[int, ...] = ()
        if loss_gi is not None:
            self.loss_model, self.clg_state = "gi", _TX_IN_GAP
            self.clg = tuple(loss_gi) + (0,) * (5 - len(loss_gi))   # p13, p31, p32, p14, p23
        elif loss_ge is not None:
            self.loss_model, self.clg_state = "ge", _GOOD
            self.clg = tuple(loss_ge) + (0,) * (4 - len(loss_ge))   # p, r, h, k1
        self.root_qdisc: Qdisc | None = None
        """Where duplicates are re-enqueued (``qdisc_root_bh``); None means this qdisc.
        The owner sets it when netem is not the device's root qdisc."""
        self.head: deque[_Pending] = deque()    # sch->q: reordered packets, served first
        self.tfifo: list[_Pending] = []         # time-sorted; ties in arrival order
        self._peeked: deque[SkBuff] = deque()

    # -- random decisions ----------------------------------------------------------------
    def _loss_event(self) -> bool:
        if self.loss_model == "gi":
            return self._loss_4state()
        if self.loss_model == "ge":
            return self._loss_gilb_ell()
        return bool(self.loss) and self.loss >= get_crandom(self.loss_cor, self.prng)

    def _loss_4state(self) -> bool:
        """``loss_4state``: the GI model's Markov chain (a1=p13 a2=p31 a3=p32 a4=p14 a5=p23)."""
        a1, a2, a3, a4, a5 = self.clg
        rnd = self.prng.u32()
        state = self.clg_state
        if state == _TX_IN_GAP:
            if rnd < a4:
                self.clg_state = _LOST_IN_GAP
                return True
            if rnd < a1 + a4:
                self.clg_state = _LOST_IN_BURST
                return True
        elif state == _TX_IN_BURST:
            if rnd < a5:
                self.clg_state = _LOST_IN_BURST
                return True
        elif state == _LOST_IN_BURST:
            if rnd < a3:
                self.clg_state = _TX_IN_BURST
            elif rnd < a2 + a3:
                self.clg_state = _TX_IN_GAP
            else:
                return True
        elif state == _LOST_IN_GAP:
            self.clg_state = _TX_IN_GAP
        return False

    def _loss_gilb_ell(self) -> bool:
        """``loss_gilb_ell`` (a1=p a2=r a3=h a4=k1)."""
        a1, a2, a3, a4 = self.clg
        if self.clg_state == _GOOD:
            if self.prng.u32() < a1:
                self.clg_state = _BAD
            return self.prng.u32() < a4
        if self.prng.u32() < a2:
            self.clg_state = _GOOD
        return self.prng.u32() > a3

    def packet_time_ns(self, length: int) -> int:
        """``packet_time_ns``: serialisation time at ``rate`` with overheads and cells."""
        length += self.packet_overhead
        if self.cell_size:
            cells = length // self.cell_size
            if length > cells * self.cell_size:
                cells += 1
            length = cells * (self.cell_size + self.cell_overhead)
        return length * NSEC_PER_SEC // self.rate

    # -- datapath -----------------------------------------------------------------------
    def enqueue_inner(self, skb: SkBuff, now: int) -> int:
        count = 1
        is_dup = getattr(skb, "tc_depth", 0) != 0
        if self.duplicate and not is_dup and \
                self.duplicate >= get_crandom(self.dup_cor, self.prng):
            count += 1
        if self._loss_event():
            if self.ecn and _inet_ecn_set_ce(skb):
                self.stats.drops += 1           # counted as a drop, but marked and sent
            else:
                count -= 1
        if count == 0:
            self.stats.drops += 1
            return NET_XMIT_SUCCESS | NET_XMIT_BYPASS_FLAG
        dup = skb.clone() if count > 1 else None
        if self.corrupt and self.corrupt >= get_crandom(self.corrupt_cor, self.prng) \
                and skb.data:
            # KERNEL-DIFF: the kernel picks the byte and bit with get_random_u32_below;
            # tcemu uses the seeded rng.  GSO segmentation and checksum-help first are
            # not modelled.
            skb.data[self.rng.randrange(len(skb.data))] ^= 1 << self.rng.randrange(8)
        if self.stats.qlen >= self.limit:
            return qdisc_drop(self.stats)
        if dup is not None:
            setattr(dup, "tc_depth", getattr(dup, "tc_depth", 0) + 1)  # noqa: B010
            root = self.root_qdisc or self
            root.enqueue(dup, now)
        self.stats.backlog += qdisc_pkt_len(skb)
        if self.gap == 0 or self.counter < self.gap - 1 or \
                self.reorder < get_crandom(self.reorder_cor, self.prng):
            self._delay(skb, now)
        else:
            self.counter = 0
            self.head.appendleft(_Pending(skb, now))
            self.stats.requeues += 1
        self.stats.qlen += 1
        return NET_XMIT_SUCCESS

    def _delay(self, skb: SkBuff, now: int) -> None:
        delay = tabledist(self.latency, self.jitter, self.delay_cor, self.prng,
                          self.delay_dist)
        if self.rate:
            last = [self.head[-1].time_to_send] if self.head else []
            if self.tfifo:
                last.append(self.tfifo[-1].time_to_send)
            if last:
                # the last queued packet is the reference point: its remaining delay
                # is already "spent"
                delay = max(delay - (max(last) - now), 0)
                now = max(last)
            delay += self.packet_time_ns(qdisc_pkt_len(skb))
        self.counter += 1
        bisect.insort_right(self.tfifo, _Pending(skb, now + delay),
                            key=lambda p: p.time_to_send)

    def enqueue(self, skb: SkBuff, now: int) -> int:
        return self.enqueue_inner(skb, now) & NET_XMIT_MASK

    def dequeue(self, now: int) -> SkBuff | None:
        if self._peeked:
            skb = self._peeked.popleft()
        elif self.head:
            skb = self.head.popleft().skb
            self._deliver(skb)
        elif self.tfifo and self.tfifo[0].time_to_send <= now:
            skb = self.tfifo.pop(0).skb
            self._deliver(skb)
        else:
            return None
        return skb

    def _deliver(self, skb: SkBuff) -> None:
        self.stats.qlen -= 1
        self.stats.backlog -= qdisc_pkt_len(skb)
        bstats_update(self.stats, skb)

    def peek(self, now: int) -> SkBuff | None:
        if not self._peeked:
            skb = self.dequeue(now)
            if skb is None:
                return None
            self._peeked.append(skb)
        return self._peeked[0]

    def next_event(self, now: int) -> int | None:
        """Now for a reordered packet, else the earliest ``time_to_send``."""
        if self._peeked or self.head:
            return now
        if self.tfifo:
            return max(now, self.tfifo[0].time_to_send)
        return None

    def graft(self, classid: int, child: Qdisc) -> Qdisc | None:
        raise QdiscError("a child qdisc under netem is not supported", kind=self.kind,
                         errno=95)

    def children(self) -> list[Qdisc]:
        return []

    def reset(self) -> None:
        self.head.clear()
        self.tfifo.clear()
        self._peeked.clear()
        self.stats.qlen = 0
        self.stats.backlog = 0


def _inet_ecn_set_ce(skb: SkBuff) -> bool:
    """``INET_ECN_set_ce`` on the IPv4/IPv6 header at ``skb.network_header``.

    # KERNEL-DIFF: the kernel looks through VLAN tags (skb_protocol(skb, true)); tcemu
    # uses ``skb.protocol`` as is.
    """
    nh = skb.network_header
    if skb.protocol == _ETH_P_IP and len(skb.data) >= nh + 20:
        ecn = (skb.data[nh + 1] + 1) & 3
        if not ecn & 2:
            return not ecn
        # IP_ECN_set_ce's arithmetic on the little-endian load of the BE16 field
        check = int.from_bytes(skb.data[nh + 10:nh + 12], "little")
        check += 0xFBFF + (ecn << 8)            # htons(0xFFFB) + htons(ecn)
        check = (check + (check >= 0xFFFF)) & 0xFFFF
        skb.data[nh + 10:nh + 12] = check.to_bytes(2, "little")
        skb.data[nh + 1] |= 3
        return True
    if skb.protocol == _ETH_P_IPV6 and len(skb.data) >= nh + 40:
        word = int.from_bytes(skb.data[nh:nh + 4], "big")
        if not (word >> 20) & 3:
            return False
        skb.data[nh:nh + 4] = (word | 3 << 20).to_bytes(4, "big")
        return True
    return False
