"""``act_skbedit`` (``net/sched/act_skbedit.c``): set mark, priority, queue_mapping,
pkt_type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import Action, TcExec
from tcemu.qdisc.base import TcfResult

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["Skbedit"]


@dataclass
class Skbedit(Action):
    mark: int | None = None
    mask: int = 0xFFFF_FFFF
    priority: int | None = None
    queue_mapping: int | None = None
    ptype: int | None = None

    kind: ClassVar[str] = "skbedit"

    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        if self.priority is not None:
            skb.priority = self.priority
        if self.ptype is not None:
            skb.pkt_type = self.ptype
        if self.mark is not None:
            skb.mark = (skb.mark & ~self.mask) | (self.mark & self.mask)
        if self.queue_mapping is not None:
            skb.queue_mapping = self.queue_mapping
        return self.action
