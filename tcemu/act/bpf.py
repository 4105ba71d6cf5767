"""``act_bpf`` (``net/sched/act_bpf.c`` ``tcf_bpf_act``; kernel-semantics.md section 2.3).

Runs a SCHED_ACT program (with ``mac_len`` pushed at ingress) and maps its R0: PIPE,
RECLASSIFY, OK, REDIRECT and SHOT pass through; UNSPEC (-1) becomes the action's
configured control (iproute2's default: ``pipe``); anything else, including STOLEN,
QUEUED and TRAP, becomes UNSPEC.  ``tc_classid`` written by the program is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import Action, TcExec
from tcemu.qdisc.base import (
    TC_ACT_OK,
    TC_ACT_PIPE,
    TC_ACT_RECLASSIFY,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    TC_ACT_UNSPEC,
    TcfResult,
)

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.skb import SkBuff

__all__ = ["ActBpf"]

_PASS = (TC_ACT_PIPE, TC_ACT_RECLASSIFY, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT)


@dataclass
class ActBpf(Action):
    program: Program | None = None
    name: str = ""

    kind: ClassVar[str] = "bpf"

    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        assert self.program is not None
        ingress = skb.tc_at_ingress
        if ingress:
            skb.push(skb.mac_len)
        r0 = ex.run_program(self.program, skb, f"action bpf {self.name}")
        if ingress:
            skb.pull(skb.mac_len)
        if r0 in _PASS:
            return r0
        if r0 == TC_ACT_UNSPEC:
            return self.action
        return TC_ACT_UNSPEC

    def describe(self) -> str:
        return f"bpf {self.name}"
