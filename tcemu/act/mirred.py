"""``act_mirred`` (``net/sched/act_mirred.c``): redirect or mirror to a device.

``egress``/``ingress`` picks the target's transmit or receive path; ``redirect`` hands
the packet over (default control ``stolen``; at tc ingress the skb itself moves, and the
hook treats it as consumed), ``mirror`` sends a clone (default ``pipe``).  A missing or
down target makes a redirect drop (SHOT); more than 4 nested mirred hops drop as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import TC_ACT_CONSUMED, Action, TcExec
from tcemu.qdisc.base import (
    TC_ACT_PIPE,
    TC_ACT_QUEUED,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TcfResult,
)

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["MIRRED_NEST_LIMIT", "Mirred"]

MIRRED_NEST_LIMIT = 4
_REINSERT = (TC_ACT_SHOT, TC_ACT_STOLEN, TC_ACT_QUEUED, TC_ACT_TRAP)


@dataclass
class Mirred(Action):
    dev: str = ""
    ingress: bool = False       # target direction (egress by default)
    redirect: bool = True       # redirect or mirror
    nest: ClassVar[list[int]] = [0]

    kind: ClassVar[str] = "mirred"

    @classmethod
    def make(cls, dev: str, *, ingress: bool = False, redirect: bool = True,
             action: int | None = None) -> Mirred:
        default = TC_ACT_STOLEN if redirect else TC_ACT_PIPE
        return cls(action=default if action is None else action, dev=dev, ingress=ingress,
                   redirect=redirect)

    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        retval = self.action
        if Mirred.nest[0] >= MIRRED_NEST_LIMIT:
            ex.note(skb, "drop", f"mirred nesting limit to {self.dev}")
            return TC_ACT_SHOT
        if not ex.has_device(skb, self.dev):
            ex.note(skb, "drop", f"mirred target {self.dev} missing or down")
            return TC_ACT_SHOT if self.redirect else retval
        at_ingress = skb.tc_at_ingress
        dont_clone = at_ingress and self.redirect and retval in _REINSERT
        to_send = skb if dont_clone else skb.clone()
        if dont_clone:
            retval = TC_ACT_CONSUMED
        Mirred.nest[0] += 1
        try:
            ex.mirred(to_send, self.dev, ingress=self.ingress, redirect=self.redirect,
                      at_ingress=at_ingress)
        finally:
            Mirred.nest[0] -= 1
        return retval

    def describe(self) -> str:
        direction = "ingress" if self.ingress else "egress"
        return f"mirred {direction} {'redirect' if self.redirect else 'mirror'} to {self.dev}"
