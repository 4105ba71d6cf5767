"""Classic qdiscs on the virtual clock, keyed by their ``tc`` kind.

:data:`QDISC_KINDS` maps a kind to its class; :func:`create_qdisc` builds one from the
options ``tc qdisc add ... KIND [options]`` takes, in normalised units (rates in bytes
per second, times in nanoseconds, sizes in bytes, netem probabilities as the kernel's u32
fractions like ``tcemu.cmd`` gives them, or as float percentages), applying what
iproute2 fills in before the kernel sees the request.
The contract with devices and filter chains is :mod:`tcemu.qdisc.base`; how a device
drives a qdisc (enqueue, dequeue until None, then wait for ``next_event``) is described in
``docs/qdisc.md``.

==================  ===============================  =================================
kind                class                            kernel file
==================  ===============================  =================================
pfifo, bfifo,       PfifoQdisc, BfifoQdisc,          net/sched/sch_fifo.c
pfifo_head_drop     PfifoHeadDropQdisc
pfifo_fast          PfifoFastQdisc                   net/sched/sch_generic.c
noqueue             NoQueueQdisc                     net/sched/sch_generic.c
prio                PrioQdisc                        net/sched/sch_prio.c
tbf                 TbfQdisc                         net/sched/sch_tbf.c
htb                 HtbQdisc (classes: HtbClass)     net/sched/sch_htb.c
netem               NetemQdisc                       net/sched/sch_netem.c
==================  ===============================  =================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from tcemu.qdisc.base import TC_H_ROOT, Qdisc, QdiscDev, QdiscError, QdiscStats
from tcemu.qdisc.fifo import (
    BfifoQdisc,
    NoQueueQdisc,
    PfifoFastQdisc,
    PfifoHeadDropQdisc,
    PfifoQdisc,
)
from tcemu.qdisc.htb import HtbClass, HtbQdisc
from tcemu.qdisc.netem import NetemQdisc, netem_percent
from tcemu.qdisc.prio import PrioQdisc
from tcemu.qdisc.ratespec import TC_LINKLAYER_ATM, TC_LINKLAYER_ETHERNET
from tcemu.qdisc.tbf import TbfQdisc

__all__ = [
    "QDISC_KINDS",
    "BfifoQdisc",
    "HtbClass",
    "HtbQdisc",
    "NetemQdisc",
    "NoQueueQdisc",
    "PfifoFastQdisc",
    "PfifoHeadDropQdisc",
    "PfifoQdisc",
    "PrioQdisc",
    "Qdisc",
    "QdiscDev",
    "QdiscError",
    "TbfQdisc",
    "create_qdisc",
    "format_class_stats",
    "format_stats",
    "link_tree",
]

QDISC_KINDS: dict[str, type[Qdisc]] = {
    "pfifo": PfifoQdisc,
    "bfifo": BfifoQdisc,
    "pfifo_head_drop": PfifoHeadDropQdisc,
    "pfifo_fast": PfifoFastQdisc,
    "noqueue": NoQueueQdisc,
    "prio": PrioQdisc,
    "tbf": TbfQdisc,
    "htb": HtbQdisc,
    "netem": NetemQdisc,
}


class _Params:
    """Typed reads of one kind's options; anything left over is an error."""

    def __init__(self, kind: str, params: Mapping[str, object]) -> None:
        self.kind = kind
        self.left = dict(params)

    def _get(self, name: str) -> object:
        return self.left.pop(name, None)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise QdiscError(f'"{name}" must be an integer, not {value!r}', kind=self.kind)
        return value

    def req(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise QdiscError(f'the "{name}" parameter is mandatory', kind=self.kind)
        return value

    def probability(self, name: str) -> int:
        """A netem probability: an int is already the kernel's u32 fraction (what
        ``tcemu.cmd`` produces from ``10%``), a float is a percentage (``10.0``)."""
        value = self._get(name)
        if value is None:
            return 0
        if isinstance(value, float):
            if not 0.0 <= value <= 100.0:
                raise QdiscError(f'"{name}" {value}% is not a percentage', kind=self.kind)
            return netem_percent(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF_FFFF:
            raise QdiscError(f'"{name}" must be a u32 fraction or a float percentage, '
                             f'not {value!r}', kind=self.kind)
        return value

    def flag(self, name: str) -> bool:
        return bool(self._get(name))

    def ints(self, name: str) -> list[int] | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, Sequence) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise QdiscError(f'"{name}" must be a list of integers', kind=self.kind)
        return [int(v) for v in value]

    def linklayer(self) -> int:
        value = self._get("linklayer")
        if value in (None, "ethernet", TC_LINKLAYER_ETHERNET):
            return TC_LINKLAYER_ETHERNET
        if value in ("atm", "adsl", TC_LINKLAYER_ATM):
            return TC_LINKLAYER_ATM
        raise QdiscError(f'unknown linklayer {value!r}', kind=self.kind)

    def done(self) -> None:
        if self.left:
            raise QdiscError(f"unknown option(s) {', '.join(sorted(self.left))}", kind=self.kind)


def _fifo(cls: type[PfifoQdisc] | type[BfifoQdisc] | type[PfifoHeadDropQdisc]
          ) -> Callable[[int, int, _Params, random.Random, QdiscDev, int], Qdisc]:
    def build(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
              now: int) -> Qdisc:
        return cls(handle=handle, parent=parent, limit=p.integer("limit"), dev=dev)
    return build


def _pfifo_fast(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
                now: int) -> Qdisc:
    return PfifoFastQdisc(handle=handle, parent=parent, dev=dev)


def _noqueue(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
             now: int) -> Qdisc:
    return NoQueueQdisc(handle=handle, parent=parent)


def _prio(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
          now: int) -> Qdisc:
    bands = p.integer("bands", 3) or 3
    priomap = p.ints("priomap")
    if priomap is None:
        return PrioQdisc(handle=handle, parent=parent, bands=bands, dev=dev)
    # q_prio.c starts from the default map and overwrites the entries given
    if len(priomap) > 16:
        raise QdiscError('Illegal "priomap" element', kind="prio")
    default = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    full = priomap + default[len(priomap):]
    return PrioQdisc(handle=handle, parent=parent, bands=bands, priomap=full, dev=dev)


def _tbf(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
         now: int) -> Qdisc:
    return TbfQdisc(handle=handle, parent=parent, rate=p.req("rate"), burst=p.req("burst"),
                    limit=p.integer("limit"), latency=p.integer("latency"),
                    peakrate=p.integer("peakrate", 0) or 0, mtu=p.integer("mtu", 0) or 0,
                    overhead=p.integer("overhead", 0) or 0, mpu=p.integer("mpu", 0) or 0,
                    linklayer=p.linklayer(), now=now, dev=dev)


def _htb(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
         now: int) -> Qdisc:
    return HtbQdisc(handle=handle, parent=parent, default=p.integer("default", 0) or 0,
                    r2q=p.integer("r2q", 10) or 10, direct_qlen=p.integer("direct_qlen"), dev=dev)


def _netem(handle: int, parent: int, p: _Params, rng: random.Random, dev: QdiscDev,
           now: int) -> Qdisc:
    latency = p.integer("delay", 0) or 0
    reorder = p.probability("reorder")
    gap = p.integer("gap", 0) or 0
    if reorder:                         # iproute2 q_netem.c
        if not latency:
            raise QdiscError("reordering not possible without specifying some delay",
                             kind="netem")
        gap = gap or 1
    elif gap:
        raise QdiscError("gap specified without reorder probability", kind="netem")
    dist = p.ints("distribution")
    jitter = p.integer("jitter", 0) or 0
    if dist is not None and not (latency and jitter):
        raise QdiscError("distribution specified but no latency and jitter values",
                         kind="netem")
    return NetemQdisc(
        handle=handle, parent=parent, rng=rng, limit=p.integer("limit", 1000) or 0,
        latency=latency, jitter=jitter, delay_corr=p.probability("delay_corr"),
        loss=p.probability("loss"), loss_corr=p.probability("loss_corr"),
        duplicate=p.probability("duplicate"), dup_corr=p.probability("duplicate_corr"),
        reorder=reorder if reorder else None, reorder_corr=p.probability("reorder_corr"), gap=gap,
        corrupt=p.probability("corrupt"), corrupt_corr=p.probability("corrupt_corr"),
        rate=p.integer("rate", 0) or 0, packet_overhead=p.integer("packet_overhead", 0) or 0,
        cell_size=p.integer("cell_size", 0) or 0, cell_overhead=p.integer("cell_overhead", 0) or 0,
        ecn=p.flag("ecn"), seed=p.integer("seed"), delay_dist=dist)


_BUILDERS: dict[str, Callable[[int, int, _Params, random.Random, QdiscDev, int], Qdisc]] = {
    "pfifo": _fifo(PfifoQdisc),
    "bfifo": _fifo(BfifoQdisc),
    "pfifo_head_drop": _fifo(PfifoHeadDropQdisc),
    "pfifo_fast": _pfifo_fast,
    "noqueue": _noqueue,
    "prio": _prio,
    "tbf": _tbf,
    "htb": _htb,
    "netem": _netem,
}


def create_qdisc(kind: str, handle: int, parent: int = TC_H_ROOT,
                 params: Mapping[str, object] | None = None,
                 rng: random.Random | None = None, *, dev: QdiscDev | None = None,
                 now: int = 0) -> Qdisc:
    """Build a ``kind`` qdisc as ``tc qdisc add dev D parent P handle H KIND params``.

    ``params`` uses the ``tc`` option names (``limit``, ``bands``, ``priomap``, ``rate``,
    ``burst``, ``latency``, ``peakrate``, ``mtu``, ``default``, ``r2q``, ``direct_qlen``,
    ``delay``, ``jitter``, ``delay_corr``, ``loss``, ``loss_corr``, ``duplicate``,
    ``duplicate_corr``, ``reorder``, ``reorder_corr``, ``gap``, ``corrupt``,
    ``corrupt_corr``, ``seed``, ``distribution``, ...).  netem probabilities are u32
    fractions when ints (``0xFFFFFFFF`` = 100%) and percentages when floats (``10.0``).
    ``rng`` feeds netem (required for it); ``dev`` supplies default limits (pass the
    device's ``tx_queue_len`` and ``mtu``); ``now`` starts the token buckets.
    """
    build = _BUILDERS.get(kind)
    if build is None:
        raise QdiscError(f'unknown qdisc "{kind}"', kind=kind, errno=2)
    if kind == "netem" and rng is None:
        raise QdiscError("netem needs a seeded random.Random", kind=kind)
    p = _Params(kind, params or {})
    qdisc = build(handle, parent, p, rng or random.Random(0), dev or QdiscDev(), now)
    p.done()
    return qdisc


def _children(qdisc: Qdisc) -> list[Qdisc]:
    if isinstance(qdisc, (PrioQdisc, TbfQdisc, HtbQdisc, NetemQdisc)):
        return qdisc.children()
    return []


def link_tree(root: Qdisc) -> None:
    """Tell every netem below ``root`` where duplicates re-enter (``qdisc_root_bh``);
    call it after building or grafting a tree."""
    stack = [root]
    while stack:
        qdisc = stack.pop()
        if isinstance(qdisc, NetemQdisc):
            qdisc.root_qdisc = None if qdisc is root else root
        stack.extend(_children(qdisc))


def format_stats(stats: QdiscStats) -> str:
    """The two statistics lines ``tc -s qdisc show`` prints for a qdisc."""
    return (f" Sent {stats.bytes} bytes {stats.packets} pkt (dropped {stats.drops}, "
            f"overlimits {stats.overlimits} requeues {stats.requeues}) \n"
            f" backlog {stats.backlog}b {stats.qlen}p requeues {stats.requeues}")


def format_class_stats(cl: HtbClass) -> str:
    """The statistics lines ``tc -s class show`` prints for an htb class (the leaf's
    queue gives qlen/backlog, as ``htb_dump_class_stats`` reads them)."""
    qlen = cl.leaf.stats.qlen if cl.leaf is not None else 0
    backlog = cl.leaf.stats.backlog if cl.leaf is not None else 0
    s = cl.stats
    return (f" Sent {s.bytes} bytes {s.packets} pkt (dropped {s.drops}, "
            f"overlimits {s.overlimits} requeues 0) \n"
            f" backlog {backlog}b {qlen}p requeues 0\n"
            f" lended: {cl.lends} borrowed: {cl.borrows} giants: {cl.giants}\n"
            f" tokens: {cl.xstats_tokens} ctokens: {cl.xstats_ctokens}")
