"""HTB's class state and scheduler core (``net/sched/sch_htb.c``), split from
:mod:`tcemu.qdisc.htb` to keep modules small.

The kernel keeps classes in rb-trees keyed by classid (rows and feeds) and by event time
(the per-level wait queues), with "current node" pointers that the round robin advances.
:class:`_IdTree` is a sorted list with the same successor/lower-bound operations, and a
pointer is the class object itself; the functions below are the kernel's
``htb_activate_prios``, ``htb_deactivate_prios``, ``htb_class_mode``,
``htb_change_class_mode``, ``htb_charge_class``, ``htb_do_events``, ``htb_lookup_leaf`` and
``htb_dequeue_tree`` step for step.  ``htb_hysteresis`` is 0 (the module default).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcemu.qdisc.base import Classify, Qdisc, QdiscStats, qdisc_pkt_len
from tcemu.qdisc.ratespec import NSEC_PER_SEC, PschedRatecfg, psched_ns2ticks

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = [
    "HTB_CANT_SEND",
    "HTB_CAN_SEND",
    "HTB_MAY_BORROW",
    "TC_HTB_MAXDEPTH",
    "TC_HTB_NUMPRIO",
    "HtbClass",
    "HtbScheduler",
]

TC_HTB_NUMPRIO = 8
TC_HTB_MAXDEPTH = 8
HTB_CANT_SEND, HTB_MAY_BORROW, HTB_CAN_SEND = 0, 1, 2
_NO_RATE = PschedRatecfg.precompute(0)


def _bits(mask: int) -> list[int]:
    """The set bits of ``mask`` from the lowest (the kernel's ``ffz(~m)`` loops)."""
    return [prio for prio in range(TC_HTB_NUMPRIO) if mask >> prio & 1]


class _IdTree:
    """An rb-tree of classes keyed by classid: only order matters to HTB."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.nodes: list[HtbClass] = []

    def __bool__(self) -> bool:
        return bool(self.nodes)

    def add(self, cl: HtbClass) -> None:
        i = bisect.bisect_left(self.keys, cl.classid)
        self.keys.insert(i, cl.classid)
        self.nodes.insert(i, cl)

    def remove(self, cl: HtbClass) -> None:
        i = bisect.bisect_left(self.keys, cl.classid)
        if i < len(self.nodes) and self.nodes[i] is cl:
            del self.keys[i], self.nodes[i]

    def first(self) -> HtbClass | None:
        return self.nodes[0] if self.nodes else None

    def next(self, cl: HtbClass) -> HtbClass | None:
        """``rb_next``."""
        i = bisect.bisect_right(self.keys, cl.classid)
        return self.nodes[i] if i < len(self.nodes) else None

    def find_next_upper(self, classid: int) -> HtbClass | None:
        """``htb_id_find_next_upper``: the class with the smallest id >= ``classid``."""
        i = bisect.bisect_left(self.keys, classid)
        return self.nodes[i] if i < len(self.nodes) else None


@dataclass
class _HtbPrio:
    """``struct htb_prio``: a row (per level) or a feed (per inner class) and its DRR
    pointer; ``last_ptr_id`` remembers where a removed pointed-to class stood."""

    tree: _IdTree = field(default_factory=_IdTree)
    ptr: HtbClass | None = None
    last_ptr_id: int = 0

    def advance(self) -> None:
        """``htb_next_rb_node(&ptr)``."""
        if self.ptr is not None:
            self.ptr = self.tree.next(self.ptr)


@dataclass(eq=False)
class HtbClass:
    """``struct htb_class``.  Buckets and times are nanoseconds."""

    classid: int
    parent: HtbClass | None = field(default=None, repr=False)
    leaf: Qdisc | None = None
    tokens: int = 0
    ctokens: int = 0
    mbuffer: int = 60 * NSEC_PER_SEC
    t_c: int = 0
    rate: PschedRatecfg = field(default=_NO_RATE, repr=False)
    ceil: PschedRatecfg = field(default=_NO_RATE, repr=False)
    buffer: int = 0
    cbuffer: int = 0
    quantum: int = 0
    prio: int = 0
    level: int = 0
    children: int = 0
    cmode: int = HTB_CAN_SEND
    prio_activity: int = 0
    pq_key: int = 0
    in_wait: bool = False
    deficit: list[int] = field(default_factory=lambda: [0] * TC_HTB_MAXDEPTH, repr=False)
    inner: list[_HtbPrio] = field(
        default_factory=lambda: [_HtbPrio() for _ in range(TC_HTB_NUMPRIO)], repr=False)
    classify: Classify | None = field(default=None, repr=False)
    """The filter chain attached to this class (``tc filter add ... parent X:Y``)."""
    stats: QdiscStats = field(default_factory=QdiscStats)
    lends: int = 0
    borrows: int = 0
    giants: int = 0

    def reset_inner(self) -> None:
        self.inner = [_HtbPrio() for _ in range(TC_HTB_NUMPRIO)]

    @property
    def xstats_tokens(self) -> int:
        """``tc -s class`` "tokens": the bucket in psched ticks, clamped to s32."""
        return max(min(psched_ns2ticks(self.tokens), 0x7FFF_FFFF), -0x8000_0000)

    @property
    def xstats_ctokens(self) -> int:
        return max(min(psched_ns2ticks(self.ctokens), 0x7FFF_FFFF), -0x8000_0000)


class HtbScheduler:
    """The rows, wait queues and round robin of one HTB qdisc."""

    def __init__(self) -> None:
        self.overlimits = 0
        self.reset()

    def reset(self) -> None:
        """``htb_reset``: empty rows and queues (the overlimit count stays)."""
        self.rows = [[_HtbPrio() for _ in range(TC_HTB_NUMPRIO)] for _ in range(TC_HTB_MAXDEPTH)]
        self.row_mask = [0] * TC_HTB_MAXDEPTH
        self.wait: list[list[tuple[int, int, HtbClass]]] = [[] for _ in range(TC_HTB_MAXDEPTH)]
        self.near_ev_cache = [0] * TC_HTB_MAXDEPTH
        self.now = 0
        self._seq = 0

    # -- rows and feeds -----------------------------------------------------------------
    def _add_class_to_row(self, cl: HtbClass, mask: int) -> None:
        self.row_mask[cl.level] |= mask
        for prio in _bits(mask):
            self.rows[cl.level][prio].tree.add(cl)

    def _remove_class_from_row(self, cl: HtbClass, mask: int) -> None:
        emptied = 0
        for prio in _bits(mask):
            hprio = self.rows[cl.level][prio]
            if hprio.ptr is cl:
                hprio.advance()
            hprio.tree.remove(cl)
            if not hprio.tree:
                emptied |= 1 << prio
        self.row_mask[cl.level] &= ~emptied

    def _activate_prios(self, cl: HtbClass) -> None:
        p, mask = cl.parent, cl.prio_activity
        while cl.cmode == HTB_MAY_BORROW and p is not None and mask:
            for prio in _bits(mask):
                if p.inner[prio].tree:
                    mask &= ~(1 << prio)        # the parent is already active at prio
                p.inner[prio].tree.add(cl)
            p.prio_activity |= mask
            cl, p = p, p.parent
        if cl.cmode == HTB_CAN_SEND and mask:
            self._add_class_to_row(cl, mask)

    def _deactivate_prios(self, cl: HtbClass) -> None:
        p, mask = cl.parent, cl.prio_activity
        while cl.cmode == HTB_MAY_BORROW and p is not None and mask:
            emptied = 0
            for prio in _bits(mask):
                feed = p.inner[prio]
                if feed.ptr is cl:              # forget the pointer, remember the classid
                    feed.last_ptr_id = cl.classid
                    feed.ptr = None
                feed.tree.remove(cl)
                if not feed.tree:
                    emptied |= 1 << prio
            mask = emptied
            p.prio_activity &= ~mask
            cl, p = p, p.parent
        if cl.cmode == HTB_CAN_SEND and mask:
            self._remove_class_from_row(cl, mask)

    def activate(self, cl: HtbClass) -> None:
        """``htb_activate``: a leaf with packets joins the feeds/rows of its prio."""
        if not cl.prio_activity:
            cl.prio_activity = 1 << cl.prio
            self._activate_prios(cl)

    def deactivate(self, cl: HtbClass) -> None:
        if cl.prio_activity:
            self._deactivate_prios(cl)
            cl.prio_activity = 0

    # -- modes and the event queue ------------------------------------------------------
    def wait_add(self, cl: HtbClass, delay: int) -> None:
        """``htb_add_to_wait_tree``: equal keys go after the ones already queued."""
        cl.pq_key = self.now + delay
        if cl.pq_key == self.now:
            cl.pq_key += 1
        self.near_ev_cache[cl.level] = min(self.near_ev_cache[cl.level], cl.pq_key)
        self._seq += 1
        bisect.insort_right(self.wait[cl.level], (cl.pq_key, self._seq, cl),
                            key=lambda e: (e[0], e[1]))
        cl.in_wait = True

    def wait_remove(self, cl: HtbClass) -> None:
        if not cl.in_wait:
            return
        queue = self.wait[cl.level]
        for i, entry in enumerate(queue):
            if entry[2] is cl:
                del queue[i]
                break
        cl.in_wait = False

    @staticmethod
    def class_mode(cl: HtbClass, diff: int) -> tuple[int, int]:
        """``htb_class_mode``: (mode, time until it can change)."""
        toks = cl.ctokens + diff
        if toks < 0:
            return HTB_CANT_SEND, -toks
        toks = cl.tokens + diff
        if toks >= 0:
            return HTB_CAN_SEND, diff
        return HTB_MAY_BORROW, -toks

    def change_class_mode(self, cl: HtbClass, diff: int) -> int:
        new_mode, diff = self.class_mode(cl, diff)
        if new_mode == cl.cmode:
            return diff
        if new_mode == HTB_CANT_SEND:
            cl.stats.overlimits += 1
            self.overlimits += 1
        if cl.prio_activity:
            if cl.cmode != HTB_CANT_SEND:
                self._deactivate_prios(cl)
            cl.cmode = new_mode
            if new_mode != HTB_CANT_SEND:
                self._activate_prios(cl)
        else:
            cl.cmode = new_mode
        return diff

    def charge_class(self, cl: HtbClass | None, level: int, skb: SkBuff) -> None:
        """``htb_charge_class``: rate tokens from ``level`` up, ceil tokens everywhere."""
        length = qdisc_pkt_len(skb)
        while cl is not None:
            diff = min(self.now - cl.t_c, cl.mbuffer)
            if cl.level >= level:
                if cl.level == level:
                    cl.lends += 1
                toks = min(diff + cl.tokens, cl.buffer) - cl.rate.l2t_ns(length)
                cl.tokens = 1 - cl.mbuffer if toks <= -cl.mbuffer else toks
            else:
                cl.borrows += 1
                cl.tokens += diff
            ctoks = min(diff + cl.ctokens, cl.cbuffer) - cl.ceil.l2t_ns(length)
            cl.ctokens = 1 - cl.mbuffer if ctoks <= -cl.mbuffer else ctoks
            cl.t_c = self.now
            old_mode = cl.cmode
            delay = self.change_class_mode(cl, 0)
            if old_mode != cl.cmode:
                if old_mode != HTB_CAN_SEND:
                    self.wait_remove(cl)
                if cl.cmode != HTB_CAN_SEND:
                    self.wait_add(cl, delay)
            if cl.level:
                cl.stats.bytes += length
                cl.stats.packets += 1
            cl = cl.parent

    def do_events(self, level: int) -> int:
        """``htb_do_events``: apply due mode changes; the next event time or 0."""
        queue = self.wait[level]
        while queue:
            key, _, cl = queue[0]
            if key > self.now:
                return key
            del queue[0]
            cl.in_wait = False
            diff = min(self.now - cl.t_c, cl.mbuffer)
            delay = self.change_class_mode(cl, diff)
            if cl.cmode != HTB_CAN_SEND:
                self.wait_add(cl, delay)
        return 0

    def pending_events(self) -> list[int]:
        return [queue[0][0] for queue in self.wait if queue]

    def has_ready_row(self) -> bool:
        return any(self.row_mask)

    # -- round robin ----------------------------------------------------------------------
    def lookup_leaf(self, hprio: _HtbPrio, prio: int) -> HtbClass | None:
        """``htb_lookup_leaf``: follow the DRR pointers down to a leaf."""
        if not hprio.tree:
            return None
        stack = [hprio]
        for _ in range(65535):
            sp = stack[-1]
            if sp.ptr is None and sp.last_ptr_id:
                sp.ptr = sp.tree.find_next_upper(sp.last_ptr_id)
            sp.last_ptr_id = 0
            if sp.ptr is None:                  # at the right end: rewind and go up
                sp.ptr = sp.tree.first()
                if len(stack) > 1:
                    stack.pop()
                    up = stack[-1]
                    if up.ptr is None:
                        return None
                    up.advance()
            else:
                cl = sp.ptr
                if not cl.level:
                    return cl
                stack.append(cl.inner[prio])
        return None

    def _advance_after(self, cl: HtbClass, prio: int, level: int) -> None:
        if level and cl.parent is not None:
            cl.parent.inner[prio].advance()
        else:
            self.rows[0][prio].advance()

    def dequeue_tree(self, prio: int, level: int, now: int) -> SkBuff | None:
        """``htb_dequeue_tree``: one packet from the row (level, prio), DRR by quantum."""
        hprio = self.rows[level][prio]
        start = cl = self.lookup_leaf(hprio, prio)
        skb = None
        while True:
            if cl is None:
                return None
            leaf = cl.leaf
            assert leaf is not None
            if not leaf.stats.qlen:             # drained behind our back: skip it
                self.deactivate(cl)
                if not self.row_mask[level] >> prio & 1:
                    return None
                nxt = self.lookup_leaf(hprio, prio)
                if cl is start:
                    start = nxt
                cl = nxt
                continue
            skb = leaf.dequeue(now)
            if skb is not None:
                break
            self._advance_after(cl, prio, level)  # a non-work-conserving leaf
            cl = self.lookup_leaf(hprio, prio)
            if cl is start:
                return None
        assert cl is not None
        assert cl.leaf is not None
        cl.stats.bytes += qdisc_pkt_len(skb)
        cl.stats.packets += 1
        cl.deficit[level] -= qdisc_pkt_len(skb)
        if cl.deficit[level] < 0:
            cl.deficit[level] += cl.quantum
            self._advance_after(cl, prio, level)
        if not cl.leaf.stats.qlen:
            self.deactivate(cl)
        self.charge_class(cl, level, skb)
        return skb

    def dequeue(self, now: int) -> SkBuff | None:
        """The class part of ``htb_dequeue`` (the direct queue is the qdisc's)."""
        self.now = now
        for level in range(TC_HTB_MAXDEPTH):
            event = self.near_ev_cache[level]
            if now >= event:
                event = self.do_events(level)
                self.near_ev_cache[level] = event or now + NSEC_PER_SEC
            for prio in _bits(self.row_mask[level]):
                skb = self.dequeue_tree(prio, level, now)
                if skb is not None:
                    return skb
        return None
