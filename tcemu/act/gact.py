"""Generic actions (``net/sched/act_gact.c``): the control verdict itself.

``tc ... action ok|pass|drop|shot|pipe|continue|reclassify|stolen|trap|jump N|goto chain N``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import TC_ACT_GOTO_CHAIN, TC_ACT_JUMP, Action, TcExec
from tcemu.qdisc.base import (
    TC_ACT_OK,
    TC_ACT_PIPE,
    TC_ACT_RECLASSIFY,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_ACT_UNSPEC,
    TcfResult,
)
from tcemu.trace import verdict_name

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["CONTROLS", "Gact", "parse_control"]

CONTROLS = {"ok": TC_ACT_OK, "pass": TC_ACT_OK, "drop": TC_ACT_SHOT, "shot": TC_ACT_SHOT,
            "pipe": TC_ACT_PIPE, "continue": TC_ACT_UNSPEC, "reclassify": TC_ACT_RECLASSIFY,
            "stolen": TC_ACT_STOLEN, "trap": TC_ACT_TRAP}


def parse_control(word: str) -> int:
    """A control word (``drop``, ``jump 2``, ``goto chain 3``) as a verdict."""
    parts = word.split()
    if len(parts) == 1 and parts[0] in CONTROLS:
        return CONTROLS[parts[0]]
    if len(parts) == 2 and parts[0] == "jump" and parts[1].isdigit():
        return TC_ACT_JUMP | int(parts[1])
    if len(parts) == 3 and parts[:2] == ["goto", "chain"] and parts[2].isdigit():
        return TC_ACT_GOTO_CHAIN | int(parts[2])
    raise ValueError(f"bad action control {word!r}")


@dataclass
class Gact(Action):
    kind: ClassVar[str] = "gact"

    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        return self.action

    def describe(self) -> str:
        return f"gact {verdict_name(self.action)}"
