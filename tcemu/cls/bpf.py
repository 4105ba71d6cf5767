"""``cls_bpf`` (``net/sched/cls_bpf.c`` ``cls_bpf_classify``; kernel-semantics.md 2.2).

Before each program ``tc_classid`` is set to the filter's classid (low 16 bits); at
ingress the program runs with ``mac_len`` pushed.  Direct-action: ``res.classid =
TC_H_MAJ(classid) | tc_classid`` and only OK, SHOT, STOLEN, TRAP, REDIRECT and UNSPEC pass,
everything else is UNSPEC (try the next filter).  Classic: R0 is a class id (0: no match,
next filter; -1: the filter's classid), then the filter's actions run and a negative
result means "next filter"; no actions is OK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import Action, TcExec, tcf_action_exec
from tcemu.cls.chain import Filter, TcfProto
from tcemu.qdisc.base import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_ACT_UNSPEC,
    TcfResult,
    tc_h_maj,
)

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.skb import SkBuff

__all__ = ["DA_DECIDES", "BpfFilter", "classify"]

_DA_PASS = frozenset((TC_ACT_OK, TC_ACT_SHOT, TC_ACT_STOLEN, TC_ACT_TRAP, TC_ACT_REDIRECT,
                      TC_ACT_UNSPEC))
DA_DECIDES = _DA_PASS - {TC_ACT_UNSPEC}     # the verdicts that end classification


@dataclass(eq=False)
class BpfFilter(Filter):
    program: Program
    handle: int = 1
    da: bool = True
    classid: int = 0
    actions: list[Action] = field(default_factory=list)
    name: str = ""
    owner_label: str = field(default="", init=False, repr=False)   # owner(), made once

    kind: ClassVar[str] = "bpf"

    def describe(self) -> str:
        mode = " direct-action" if self.da else ""
        return f"bpf {self.name or self.program.name} handle {self.handle:#x}{mode}"


def owner(tp: TcfProto, f: BpfFilter) -> str:
    """``filter prio N bpf NAME handle 0x1 direct-action``: who ran (trace, captures).
    Made once per filter: a filter belongs to one tcf_proto, and ``tc filter change``
    replaces it rather than changing it."""
    if not f.owner_label:
        f.owner_label = f"filter prio {tp.prio} {f.describe()}"
    return f.owner_label


def exec_opcode(verdict: int) -> int:
    """``cls_bpf_exec_opcode``."""
    return verdict if verdict in _DA_PASS else TC_ACT_UNSPEC


def classify(ex: TcExec, tp: TcfProto, skb: SkBuff, res: TcfResult) -> int:
    ret = TC_ACT_UNSPEC
    at_ingress = skb.tc_at_ingress
    for f in tp.filters:
        assert isinstance(f, BpfFilter)
        skb.tc_classid = f.classid & 0xFFFF
        label = f.owner_label or owner(tp, f)
        if at_ingress:
            skb.push(skb.mac_len)
            r0 = ex.run_program(f.program, skb, label)
            skb.pull(skb.mac_len)
        else:
            r0 = ex.run_program(f.program, skb, label)
        if f.da:
            res.classid = tc_h_maj(f.classid) | skb.tc_classid
            if r0 in DA_DECIDES:         # exec_opcode(r0) != TC_ACT_UNSPEC
                return r0
            ret = TC_ACT_UNSPEC
            continue
        if r0 == 0:
            continue
        res.classid = r0 & 0xFFFF_FFFF if r0 != -1 else f.classid
        ret = tcf_action_exec(ex, f.actions, skb, res)
        if ret < 0:
            continue
        return ret
    return ret
