"""Filter blocks, chains and ``tcf_proto`` lists, and classification (``net/sched/cls_api.c``).

A :class:`Block` holds numbered :class:`Chain` s; a chain holds one :class:`TcfProto` per
prio (ascending), each with the protocol it matches and the filters of one kind, newest
first (``list_add_rcu`` at the head).  :meth:`Block.classify` is ``tcf_classify``: skip a
tcf_proto whose protocol is neither ``skb_protocol(skb, false)`` (the hw-accel tag's
protocol when a tag is present) nor ETH_P_ALL; the first result >= 0 ends classification;
RECLASSIFY restarts at the first tcf_proto of the chain classification started in,
GOTO_CHAIN continues at the target chain's first, and the 17th restart is a drop.
A :class:`Block` is the ``Classify`` callable qdiscs are given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import TC_ACT_EXT_OPCODE_MAX, TC_ACT_GOTO_CHAIN, TC_ACT_JUMP, TcExec
from tcemu.qdisc.base import TC_ACT_RECLASSIFY, TC_ACT_SHOT, TC_ACT_UNSPEC, TcfResult

if TYPE_CHECKING:
    from tcemu.cls import ClsKind
    from tcemu.skb import SkBuff

__all__ = ["ETH_P_ALL", "MAX_RECLASSIFY_LOOP", "Block", "Chain", "Filter", "TcfProto"]

ETH_P_ALL = 0x0003
MAX_RECLASSIFY_LOOP = 16
AUTO_PRIO_FIRST = 0xC000
_JUMP = TC_ACT_JUMP  # re-exported for users composing verdicts


_KINDS: list[dict[str, ClsKind]] = []


def _cls_kinds() -> dict[str, ClsKind]:
    """``tcemu.cls.CLS_KINDS`` (looked up on first use: that package imports this module)."""
    from tcemu.cls import CLS_KINDS

    _KINDS.append(CLS_KINDS)
    return CLS_KINDS


class Filter(ABC):
    """One filter of a tcf_proto (a cls_bpf program, a matchall rule)."""

    kind: ClassVar[str] = "filter"
    handle: int

    @abstractmethod
    def describe(self) -> str: ...


@dataclass
class TcfProto:
    """``struct tcf_proto``: the filters of one kind at one prio of a chain."""

    prio: int
    protocol: int
    kind: str
    chain: int = 0
    filters: list[Filter] = field(default_factory=list)
    # the classifier's classify function (cls_bpf's, matchall's), bound on first use
    run: Callable[[TcExec, TcfProto, SkBuff, TcfResult], int] | None = \
        field(default=None, repr=False, compare=False)

    def classify(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        run = self.run
        if run is None:
            kinds = _KINDS[0] if _KINDS else _cls_kinds()
            run = self.run = kinds[self.kind].classify
        return run(ex, self, skb, res)


@dataclass
class Chain:
    index: int
    protos: list[TcfProto] = field(default_factory=list)

    def find(self, prio: int) -> TcfProto | None:
        return next((tp for tp in self.protos if tp.prio == prio), None)

    def auto_prio(self) -> int:
        """``tcf_auto_prio``: one below the first prio >= 0x8000, else 0xC000."""
        high = [tp.prio for tp in self.protos if tp.prio >= 0x8000]
        return min(high) - 1 if high else AUTO_PRIO_FIRST

    def insert(self, tp: TcfProto) -> None:
        self.protos.append(tp)
        self.protos.sort(key=lambda p: p.prio)


class Block:
    """``struct tcf_block``: the chains of one qdisc or clsact direction."""

    def __init__(self, ex: TcExec, name: str = "") -> None:
        self.ex = ex
        self.name = name
        self.chains: dict[int, Chain] = {}

    def chain(self, index: int, create: bool = True) -> Chain | None:
        if index not in self.chains and create:
            self.chains[index] = Chain(index)
        return self.chains.get(index)

    def filters(self) -> list[tuple[int, TcfProto, Filter]]:
        """(chain, tcf_proto, filter) in classification order."""
        return [(c.index, tp, f) for c in sorted(self.chains.values(), key=lambda c: c.index)
                for tp in c.protos for f in tp.filters]

    @property
    def empty(self) -> bool:
        return not any(c.protos for c in self.chains.values())

    def __call__(self, skb: SkBuff) -> TcfResult:
        res = TcfResult()
        res.verdict = self.classify(skb, res)
        return res

    def classify(self, skb: SkBuff, res: TcfResult, chain: int = 0) -> int:
        """``tcf_classify`` from the first tcf_proto of ``chain``."""
        start = self.chains.get(chain)
        if start is None:
            return TC_ACT_UNSPEC
        ex = self.ex
        protos = first = start.protos
        limit = 0
        while True:
            for tp in protos:
                if tp.protocol != ETH_P_ALL:    # skb_protocol(skb, false), per tcf_proto
                    wanted = skb.vlan_proto if skb.vlan_proto or skb.vlan_tci else skb.protocol
                    if tp.protocol != wanted:
                        continue
                run = tp.run
                err = run(ex, tp, skb, res) if run is not None else tp.classify(ex, skb, res)
                if err == TC_ACT_RECLASSIFY:
                    protos = first
                    break
                if err >= 0:
                    if err & TC_ACT_EXT_OPCODE_MAX != TC_ACT_GOTO_CHAIN:
                        return err
                    target = self.chains.get(err & 0x0FFF_FFFF)
                    protos = target.protos if target is not None else []
                    break
            else:
                return TC_ACT_UNSPEC
            if limit >= MAX_RECLASSIFY_LOOP:
                ex.note(skb, "drop", "reclassify loop")
                return TC_ACT_SHOT
            limit += 1
