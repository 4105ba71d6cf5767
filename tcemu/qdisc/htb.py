"""The hierarchical token bucket (``net/sched/sch_htb.c``) on the virtual clock.

Each class has two buckets in nanoseconds: ``tokens`` (refilled at ``rate``, capped at
``buffer``) and ``ctokens`` (``ceil``, ``cbuffer``), both bounded below by ``mbuffer``
(60 s).  A class's mode is CAN_SEND (tokens >= 0), MAY_BORROW (tokens < 0 but
ctokens >= 0) or CANT_SEND (ctokens < 0); a class that is not CAN_SEND waits in its
level's event queue until the time its buckets allow a change.

Scheduling is the kernel's: active leaves are linked into per-level, per-priority "rows"
(a leaf that may borrow hangs in its parent's "feed" instead, and so on up to the first
ancestor that can send); ``htb_dequeue`` visits levels from 0 (leaves sending on their
own rate) upwards and priorities from 0, and inside one row serves classes round robin
in classid order with a deficit of ``quantum`` bytes (``htb_lookup_leaf``,
``htb_dequeue_tree``).  Sending charges the rate bucket of every class from the level it
was served at upwards and the ceil bucket of the leaf and all its ancestors
(``htb_charge_class``).  The kernel's rb-trees become sorted lists; their "current node"
pointers keep the kernel's meaning, so the round-robin order is the kernel's.

Classification (``htb_classify``): ``skb->priority`` equal to the qdisc handle selects
the direct queue, equal to a leaf class id selects that leaf (an inner class starts its
own filter chain); then filter chains run (STOLEN/QUEUED/TRAP consume, SHOT drops, a
class id equal to the handle selects the direct queue, an inner class continues with its
chain); otherwise the ``default`` class, or the direct queue when the default is missing
or not a leaf.  The direct queue (``direct_qlen`` packets, default ``tx_queue_len``) is
sent first and never shaped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.qdisc.base import (
    NET_XMIT_BYPASS_FLAG,
    NET_XMIT_MASK,
    NET_XMIT_STOLEN_FLAG,
    NET_XMIT_SUCCESS,
    TC_ACT_QUEUED,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_H_ROOT,
    Classify,
    Qdisc,
    QdiscDev,
    QdiscError,
    net_xmit_drop_count,
    qdisc_pkt_len,
    tc_h_maj,
    tc_h_min,
)
from tcemu.qdisc.fifo import PfifoQdisc, bstats_update, qdisc_drop
from tcemu.qdisc.htb_sched import (
    HTB_CAN_SEND,
    TC_HTB_MAXDEPTH,
    TC_HTB_NUMPRIO,
    HtbClass,
    HtbScheduler,
)
from tcemu.qdisc.ratespec import (
    NSEC_PER_SEC,
    TC_LINKLAYER_ETHERNET,
    PschedRatecfg,
    psched_ticks2ns,
    tc_calc_xmittime,
)

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["HTB_DEFAULT_MTU", "HtbClass", "HtbQdisc"]

HTB_DEFAULT_MTU = 1600              # iproute2 q_htb.c: "eth packet len"
_PSCHED_HZ = NSEC_PER_SEC           # get_hz(): /proc/net/psched's 4th field (hrtimers)
_MBUFFER = 60 * NSEC_PER_SEC


@dataclass
class _Direct:
    """Where ``htb_classify`` sends the direct flow (the kernel's HTB_DIRECT)."""


_DIRECT = _Direct()


class HtbQdisc(Qdisc):
    """``htb``: a class tree with rate/ceil shaping, borrowing and DRR by quantum."""

    kind = "htb"

    def __init__(self, *, handle: int = 0x1_0000, parent: int = TC_H_ROOT, default: int = 0,
                 r2q: int = 10, direct_qlen: int | None = None,
                 dev: QdiscDev | None = None) -> None:
        super().__init__(handle=handle, parent=parent)
        self.dev = dev or QdiscDev()
        self.defcls = default
        self.rate2quantum = max(r2q, 1)
        self.direct_qlen = self.dev.tx_queue_len if direct_qlen is None else direct_qlen
        self.direct_queue: deque[SkBuff] = deque()
        self.direct_pkts = 0
        self.classes: dict[int, HtbClass] = {}
        self.sched = HtbScheduler()
        self._peeked: deque[SkBuff] = deque()
        self._failed_at: int | None = None

    # -- classes ------------------------------------------------------------------------
    def find(self, classid: int) -> HtbClass | None:
        return self.classes.get(classid)

    def change_class(self, classid: int, *, parent: int = TC_H_ROOT, rate: int,
                     ceil: int | None = None, burst: int | None = None,
                     cburst: int | None = None, quantum: int = 0, prio: int = 0,
                     overhead: int = 0, mpu: int = 0, linklayer: int = TC_LINKLAYER_ETHERNET,
                     mtu: int = HTB_DEFAULT_MTU, now: int = 0) -> HtbClass:
        """``tc class add|change ... htb rate R [ceil C] [burst B] [cburst CB] [quantum Q]
        [prio P]`` (``htb_change_class``, with iproute2's defaults: ceil = rate,
        burst = rate / HZ + mtu).  Rates in bytes/s, sizes in bytes."""
        ceil = rate if ceil is None else ceil
        if rate <= 0 or ceil <= 0:
            raise QdiscError('"rate" and "ceil" must be positive', kind=self.kind)
        burst = rate // _PSCHED_HZ + mtu if burst is None else burst
        cburst = ceil // _PSCHED_HZ + mtu if cburst is None else cburst
        buffer = psched_ticks2ns(tc_calc_xmittime(rate, burst))
        cbuffer = psched_ticks2ns(tc_calc_xmittime(ceil, cburst))
        cl = self.classes.get(classid)
        if cl is None:
            cl = self._new_class(classid, parent, buffer, cbuffer, now)
        cl.rate = PschedRatecfg.precompute(rate, overhead=overhead, mpu=mpu, linklayer=linklayer)
        cl.ceil = PschedRatecfg.precompute(ceil, overhead=overhead, mpu=mpu, linklayer=linklayer)
        if not cl.level:
            cl.quantum = min(cl.rate.rate_bytes_ps // self.rate2quantum, 0x7FFF_FFFF)
            if not quantum:
                cl.quantum = min(max(cl.quantum, 1000), 200_000)
            else:
                cl.quantum = quantum
            cl.prio = min(prio, TC_HTB_NUMPRIO - 1)
        cl.buffer = buffer
        cl.cbuffer = cbuffer
        return cl

    def _new_class(self, classid: int, parentid: int, buffer: int, cbuffer: int,
                   now: int) -> HtbClass:
        if not classid or tc_h_maj(classid ^ self.handle) or classid in self.classes:
            raise QdiscError(f"bad class id {classid >> 16:x}:{classid & 0xFFFF:x}",
                             kind=self.kind)
        parent = None if parentid == TC_H_ROOT else self.classes.get(parentid)
        if parent is not None and parent.parent is not None and parent.parent.level < 2:
            raise QdiscError("tree is too deep", kind=self.kind)
        if parent is not None and not parent.level:
            self._leaf_to_inner(parent)
        leaf = PfifoQdisc(handle=0, parent=classid, dev=self.dev)
        cl = HtbClass(classid=classid, parent=parent, leaf=leaf, tokens=buffer,
                      ctokens=cbuffer, mbuffer=_MBUFFER, t_c=now)
        self.classes[classid] = cl
        if parent is not None:
            parent.children += 1
        return cl

    def _leaf_to_inner(self, parent: HtbClass) -> None:
        """A leaf that gets a child: its queue is purged, it leaves the event queue and
        takes the level below its own parent's (``htb_change_class``)."""
        if parent.leaf is not None:
            parent.leaf.reset()
        self.sched.deactivate(parent)
        if parent.cmode != HTB_CAN_SEND:
            self.sched.wait_remove(parent)
            parent.cmode = HTB_CAN_SEND
        parent.level = (parent.parent.level if parent.parent else TC_HTB_MAXDEPTH) - 1
        parent.leaf = None
        parent.reset_inner()
        self._sync()

    def graft(self, classid: int, child: Qdisc) -> Qdisc:
        """Replace the qdisc of leaf class ``classid`` (``htb_graft``); returns the old one."""
        cl = self.classes.get(classid)
        if cl is None:
            raise QdiscError(f"no class {classid >> 16:x}:{classid & 0xFFFF:x}",
                             kind=self.kind, errno=2)
        if cl.level or cl.leaf is None:
            raise QdiscError("an inner class has no qdisc", kind=self.kind)
        old, cl.leaf = cl.leaf, child
        child.parent = classid
        old.reset()
        self.sched.deactivate(cl)            # htb_qlen_notify: the class is empty now
        if child.stats.qlen:
            self.sched.activate(cl)
        self._sync()
        return old

    def delete_class(self, classid: int, *, now: int = 0) -> None:
        """``tc class del`` (``htb_delete``): only a class without children; a parent
        left childless becomes a leaf again with a fresh pfifo (``htb_parent_to_leaf``)."""
        cl = self.classes.get(classid)
        if cl is None:
            raise QdiscError("no such class", kind=self.kind, errno=2)
        if cl.children:
            raise QdiscError("HTB class in use", kind=self.kind, errno=16)
        if cl.leaf is not None:
            cl.leaf.reset()
        del self.classes[classid]
        parent = cl.parent
        if parent is not None:
            parent.children -= 1
        self.sched.deactivate(cl)
        if cl.cmode != HTB_CAN_SEND:
            self.sched.wait_remove(cl)
        if parent is not None and not parent.children:
            if parent.cmode != HTB_CAN_SEND:
                self.sched.wait_remove(parent)      # from its inner level's queue
            parent.level = 0
            parent.reset_inner()
            parent.leaf = PfifoQdisc(handle=0, parent=parent.classid, dev=self.dev)
            parent.tokens, parent.ctokens = parent.buffer, parent.cbuffer
            parent.t_c = now
            parent.cmode = HTB_CAN_SEND
        self._sync()

    def children(self) -> list[Qdisc]:
        return [cl.leaf for cl in self.classes.values() if cl.leaf is not None]

    def attach_chain(self, parent: int, chain: Classify) -> None:
        """Where ``tc filter add ... parent X:Y`` puts its chain (``htb_tcf_block``):
        minor 0 is the qdisc's own chain, any other minor that class's chain."""
        if not tc_h_min(parent):
            self.classify = chain
            return
        cl = self.classes.get(parent)
        if cl is None:
            raise QdiscError(f"no class {parent >> 16:x}:{parent & 0xFFFF:x}",
                             kind=self.kind, errno=2)
        cl.classify = chain

    # -- classification -----------------------------------------------------------------
    def htb_classify(self, skb: SkBuff) -> tuple[HtbClass | _Direct | None, int]:
        """(leaf, direct marker, or None with the code to return)."""
        if skb.priority == self.handle:
            return _DIRECT, NET_XMIT_SUCCESS
        cl = self.classes.get(skb.priority)
        chain: Classify | None
        if cl is not None:
            if not cl.level:
                return cl, NET_XMIT_SUCCESS
            chain = cl.classify
        else:
            chain = self.classify
        hops = 0
        while chain is not None:
            res = chain(skb)
            if res.verdict < 0:
                break
            if res.verdict in (TC_ACT_QUEUED, TC_ACT_STOLEN, TC_ACT_TRAP):
                return None, NET_XMIT_SUCCESS | NET_XMIT_STOLEN_FLAG
            if res.verdict == TC_ACT_SHOT:
                return None, NET_XMIT_SUCCESS | NET_XMIT_BYPASS_FLAG
            if res.classid == self.handle:
                return _DIRECT, NET_XMIT_SUCCESS
            cl = self.classes.get(res.classid)
            if cl is None:
                break                                   # filter selected an invalid classid
            if not cl.level:
                return cl, NET_XMIT_SUCCESS
            hops += 1
            if hops > TC_HTB_MAXDEPTH:                  # "htb: classify loop detected"
                return None, NET_XMIT_SUCCESS | NET_XMIT_BYPASS_FLAG
            chain = cl.classify
        default = self.classes.get(tc_h_maj(self.handle) | (self.defcls & 0xFFFF))
        if default is None or default.level:
            return _DIRECT, NET_XMIT_SUCCESS
        return default, NET_XMIT_SUCCESS

    # -- datapath -----------------------------------------------------------------------
    def enqueue_inner(self, skb: SkBuff, now: int) -> int:
        cl, ret = self.htb_classify(skb)
        if isinstance(cl, _Direct):
            if len(self.direct_queue) >= self.direct_qlen:
                return qdisc_drop(self.stats)
            self.direct_queue.append(skb)
            self.direct_pkts += 1
        elif cl is None:
            if ret & NET_XMIT_BYPASS_FLAG:
                self.stats.drops += 1
            return ret
        else:
            assert cl.leaf is not None
            ret = cl.leaf.enqueue_inner(skb, now)
            if ret != NET_XMIT_SUCCESS:
                if net_xmit_drop_count(ret):
                    self.stats.drops += 1
                    cl.stats.drops += 1
                return ret
            self.sched.activate(cl)
        self._sync()
        return NET_XMIT_SUCCESS

    def enqueue(self, skb: SkBuff, now: int) -> int:
        return self.enqueue_inner(skb, now) & NET_XMIT_MASK

    def dequeue(self, now: int) -> SkBuff | None:
        skb = self._peeked.popleft() if self._peeked else None
        if skb is None and self.direct_queue:
            skb = self.direct_queue.popleft()
            bstats_update(self.stats, skb)
        if skb is None and self.stats.qlen:
            skb = self.sched.dequeue(now)
            if skb is None:
                self._failed_at = now
            else:
                bstats_update(self.stats, skb)
        self._sync()
        return skb

    def peek(self, now: int) -> SkBuff | None:
        """``qdisc_peek_dequeued``: dequeue now, keep the skb for the next ``dequeue``."""
        if not self._peeked:
            skb = self.dequeue(now)
            if skb is None:
                return None
            self._peeked.append(skb)
            self._sync()
        return self._peeked[0]

    def next_event(self, now: int) -> int | None:
        """The earliest class mode change in the event queues, or ``now`` when a class
        can send.

        # KERNEL-DIFF: the kernel arms its watchdog from a per-level cache of the next
        # event, falling back to 1 s / 5 s re-polls; a re-poll that finds nothing to send
        # changes no state, so tcemu reports only the real next change and never wakes
        # an idle device for nothing.
        """
        if self._peeked or self.direct_queue:
            return now
        if not self.stats.qlen:
            return None
        if self.sched.has_ready_row() and self._failed_at != now:
            return now
        events = self.sched.pending_events()
        for cl in self.classes.values():
            if cl.leaf is not None and cl.leaf.stats.qlen:
                t = cl.leaf.next_event(now)
                if t is not None and t > now:
                    events.append(t)
        return min(events) if events else None

    def reset(self) -> None:
        for cl in self.classes.values():
            if cl.leaf is not None:
                cl.leaf.reset()
            if cl.level:
                cl.reset_inner()
            cl.prio_activity = 0
            cl.cmode = HTB_CAN_SEND
            cl.in_wait = False
        self.direct_queue.clear()
        self._peeked.clear()
        self.sched.reset()
        self._sync()

    def _sync(self) -> None:
        self.stats.overlimits = self.sched.overlimits
        leaves = [cl.leaf.stats for cl in self.classes.values() if cl.leaf is not None]
        self.stats.qlen = (len(self.direct_queue) + len(self._peeked)
                           + sum(s.qlen for s in leaves))
        self.stats.backlog = (sum(qdisc_pkt_len(skb) for skb in self.direct_queue)
                              + sum(qdisc_pkt_len(skb) for skb in self._peeked)
                              + sum(s.backlog for s in leaves))

