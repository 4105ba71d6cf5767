"""The action API and the action-list interpreter (``net/sched/act_api.c``).

An :class:`Action` (``struct tc_action``) is one instance of an action kind with its
control verdict (``tcfa_action``: the ``ok``/``pipe``/``drop``... word after the action
on the tc command line).  :func:`tcf_action_exec` runs a list of actions as
``tcf_action_exec()`` does: PIPE goes on to the next action, any other result stops the
list and is returned; REPEAT re-runs the same action (at most 32 times, then OK); JUMP n
restarts the list skipping its first n actions (0 or more than the list: OK; after 32
jumps: OK); GOTO_CHAIN is returned for the classifier to follow.  An empty list is OK.

Actions reach the datapath (running programs, sending packets) through :class:`TcExec`,
implemented by ``tcemu.net.Stack``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from tcemu.qdisc.base import TC_ACT_OK, TC_ACT_PIPE, TC_ACT_REPEAT, TcfResult

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.skb import SkBuff

__all__ = ["TCA_ACT_MAX_PRIO", "TC_ACT_CONSUMED", "TC_ACT_GOTO_CHAIN", "TC_ACT_JUMP",
           "Action", "TcExec", "act_ext_cmp", "tcf_action_exec"]

TC_ACT_JUMP = 1 << 28
TC_ACT_GOTO_CHAIN = 2 << 28
TC_ACT_EXT_OPCODE_MAX = 0xF000_0000
TC_ACT_EXT_VAL_MASK = 0x0FFF_FFFF
TC_ACT_CONSUMED = 9                  # TC_ACT_VALUE_MAX + 1, kernel-internal
TCA_ACT_MAX_PRIO = 32
MAX_REPEAT = 32


def act_ext_cmp(verdict: int, opcode: int) -> bool:
    """``TC_ACT_EXT_CMP``: does the verdict carry this extended opcode (JUMP, GOTO_CHAIN)?"""
    return (verdict & 0xFFFF_FFFF & TC_ACT_EXT_OPCODE_MAX) == opcode


class TcExec(Protocol):
    """What classifiers and actions need from the datapath."""

    def run_program(self, program: Program, skb: SkBuff, owner: str) -> int:
        """Run a SCHED_CLS/SCHED_ACT program on ``skb`` (data where the program expects
        it); returns R0's low 32 bits as a signed int."""

    def mirred(self, skb: SkBuff, target: str, *, ingress: bool, redirect: bool,
               at_ingress: bool) -> int:
        """``tcf_mirred_forward`` of ``skb`` to the device named ``target`` in the skb's
        netns: 0 on success, else a negative errno or NET_XMIT_DROP."""

    def has_device(self, skb: SkBuff, target: str) -> bool:
        """Does the device exist and is it up (in the skb's netns)?"""

    def note(self, skb: SkBuff, stage: str, detail: str, verdict: int | None = None) -> None:
        """Record a trace event for ``skb``."""


@dataclass
class Action(ABC):
    """One action instance; ``action`` is its control verdict (``tcfa_action``)."""

    action: int = TC_ACT_PIPE
    index: int = 0

    kind: ClassVar[str] = "action"

    @abstractmethod
    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        """Run the action; the verdict (``TC_ACT_*``)."""

    def describe(self) -> str:
        return self.kind


def tcf_action_exec(ex: TcExec, actions: Sequence[Action], skb: SkBuff,
                    res: TcfResult) -> int:
    """``tcf_action_exec``: run an action list, return its verdict."""
    if not actions:
        return TC_ACT_OK
    jump_ttl, skip, ret = TCA_ACT_MAX_PRIO, 0, TC_ACT_OK
    while True:
        restarted = False
        for action in actions:
            if skip > 0:
                skip -= 1
                continue
            for _ in range(MAX_REPEAT):
                ret = action.act(ex, skb, res)
                ex.note(skb, "action", action.describe(), ret)
                if ret != TC_ACT_REPEAT:
                    break
            else:
                return TC_ACT_OK
            if act_ext_cmp(ret, TC_ACT_JUMP):
                skip = ret & TC_ACT_EXT_VAL_MASK
                if not skip or skip > len(actions):
                    return TC_ACT_OK
                jump_ttl -= 1
                if jump_ttl <= 0:
                    return TC_ACT_OK
                restarted = True
                break
            if ret != TC_ACT_PIPE:
                return ret
        if not restarted:
            return ret

