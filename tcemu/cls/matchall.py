"""``cls_matchall`` (``net/sched/cls_matchall.c``): every packet matches; the result is
the filter's classid and its actions' verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import Action, TcExec, tcf_action_exec
from tcemu.cls.chain import Filter, TcfProto
from tcemu.qdisc.base import TC_ACT_UNSPEC, TcfResult

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["MatchallFilter", "classify"]


@dataclass(eq=False)
class MatchallFilter(Filter):
    handle: int = 1
    classid: int = 0
    actions: list[Action] = field(default_factory=list)

    kind: ClassVar[str] = "matchall"

    def describe(self) -> str:
        return f"matchall handle {self.handle:#x}"


def classify(ex: TcExec, tp: TcfProto, skb: SkBuff, res: TcfResult) -> int:
    if not tp.filters:
        return TC_ACT_UNSPEC
    f = tp.filters[0]
    assert isinstance(f, MatchallFilter)
    res.classid = f.classid
    return tcf_action_exec(ex, f.actions, skb, res)
