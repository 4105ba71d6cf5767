"""Classifiers (``net/sched/cls_*.c``) and filter chains (``cls_api.c``).

:data:`CLS_KINDS` maps a tc filter kind to its module, which provides the filter class and
``classify(ex, tp, skb, res)`` (the kind's ``tcf_proto_ops.classify``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.cls import bpf, matchall
from tcemu.cls.bpf import BpfFilter
from tcemu.cls.chain import ETH_P_ALL, MAX_RECLASSIFY_LOOP, Block, Chain, Filter, TcfProto
from tcemu.cls.matchall import MatchallFilter

if TYPE_CHECKING:
    from tcemu.act.base import TcExec
    from tcemu.qdisc.base import TcfResult
    from tcemu.skb import SkBuff

__all__ = [
    "CLS_KINDS",
    "ETH_P_ALL",
    "MAX_RECLASSIFY_LOOP",
    "Block",
    "BpfFilter",
    "Chain",
    "ClsKind",
    "Filter",
    "MatchallFilter",
    "TcfProto",
]



@dataclass(frozen=True)
class ClsKind:
    """``struct tcf_proto_ops``: the filter class and its ``classify``."""

    filter: type[Filter]
    classify: Callable[[TcExec, TcfProto, SkBuff, TcfResult], int]


CLS_KINDS: dict[str, ClsKind] = {
    "bpf": ClsKind(BpfFilter, bpf.classify),
    "matchall": ClsKind(MatchallFilter, matchall.classify),
}
