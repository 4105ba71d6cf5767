"""Control-flow checks before abstract interpretation, and register liveness.

Mirrors kernel/bpf/verifier.c ``check_subprogs`` and ``check_cfg`` (a depth-first walk
from insn 0 and every subprogram entry reached by a call: ``jump out of range``,
``back-edge from insn X to Y`` for unprivileged loads, ``unreachable insn N``), the prune
points ``visit_insn`` marks, and ``compute_live_registers`` (live registers before each
instruction, used when comparing states).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tcemu.bpf import isa
from tcemu.bpf.ops import (
    Alu,
    AluOp,
    Atomic,
    Call,
    CallX,
    Endian,
    Exit,
    Jump,
    LdImm64,
    LdPacket,
    Load,
    Op,
    Store,
)

__all__ = ["CfgError", "CfgInfo", "check_cfg", "precision"]


class CfgError(Exception):
    def __init__(self, message: str, idx: int) -> None:
        super().__init__(message)
        self.message = message
        self.idx = idx


@dataclass
class CfgInfo:
    subprogs: list[int]                        # entry slots, sorted
    subprog_of: list[int]                      # slot -> subprogram number
    prune: set[int] = field(default_factory=set)
    live: list[int] = field(default_factory=list)   # slot -> bitmask of live regs before it
    # slot -> registers whose scalar value may still decide something (see _precision)
    precise: list[int] = field(default_factory=list)
    callback_subprogs: set[int] = field(default_factory=set)


def _next(op: Op) -> int:
    return op.pc + (2 if isinstance(op, LdImm64) else 1)


def _succ(op: Op) -> list[int]:
    if isinstance(op, Exit):
        return []
    if isinstance(op, Jump):
        return [op.target] if op.cond is None else [_next(op), op.target]
    return [_next(op)]


def check_cfg(ops: Sequence[Op | None], subprogs: Sequence[int], privileged: bool,
              helper_nargs: dict[int, int]) -> CfgInfo:
    n = len(ops)
    starts = sorted(subprogs)
    sub_of = [0] * n
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        for pc in range(s, end):
            sub_of[pc] = i
    info = CfgInfo(starts, sub_of)
    # Depth-first walk: 0 unvisited, 1 on the stack (discovered), 2 explored.
    state = [0] * n
    roots = [0]
    for op in ops:
        if isinstance(op, LdImm64) and op.pseudo == isa.PSEUDO_FUNC:
            info.callback_subprogs.add(op.pc + op.imm + 1)
    for root in roots:
        if state[root]:
            continue
        _dfs(ops, root, state, info, privileged, roots)
    for pc, op in enumerate(ops):
        if op is not None and not state[pc]:
            raise CfgError(f"unreachable insn {pc}", pc)
    info.live = _liveness(ops, helper_nargs)
    info.precise = precision(ops, sub_of, frozenset())
    return info


def _dfs(ops: Sequence[Op | None], root: int, state: list[int], info: CfgInfo,
         privileged: bool, roots: list[int]) -> None:
    n = len(ops)
    stack: list[tuple[int, list[int]]] = []

    def enter(pc: int) -> None:
        op = ops[pc]
        assert op is not None
        state[pc] = 1
        succ = _succ(op)
        if isinstance(op, Jump):
            # visit_insn: a conditional jump is a prune point, and push_insn marks the
            # target of every BRANCH edge (conditional or not) as one.
            info.prune.add(op.target)
            if op.cond is not None:
                info.prune.add(pc)
        if isinstance(op, Call | CallX):
            info.prune.add(_next(op))
            if isinstance(op, Call) and op.kind == isa.PSEUDO_CALL:
                info.prune.add(pc)
                roots.append(op.target)
        if isinstance(op, LdImm64) and op.pseudo == isa.PSEUDO_FUNC:
            roots.append(pc + op.imm + 1)
        stack.append((pc, succ))

    enter(root)
    while stack:
        pc, succ = stack[-1]
        if not succ:
            state[pc] = 2
            stack.pop()
            continue
        nxt = succ.pop(0)
        if nxt < 0 or nxt >= n:
            raise CfgError(f"jump out of range from insn {pc} to {nxt}", pc)
        if state[nxt] == 0:
            enter(nxt)
        elif state[nxt] == 1 and not privileged:
            raise CfgError(f"back-edge from insn {pc} to {nxt}", pc)


_ALL_ARGS = 0b111110   # r1..r5


def _uses_defs(op: Op, helper_nargs: dict[int, int]) -> tuple[int, int]:
    bit = 1 << 0
    if isinstance(op, Alu):
        movs = (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32)
        use = 0 if op.op in movs else 1 << op.dst
        if op.src is not None:
            use |= 1 << op.src
        return use, 1 << op.dst
    if isinstance(op, Endian):
        return 1 << op.dst, 1 << op.dst
    if isinstance(op, Load):
        return 1 << op.src, 1 << op.dst
    if isinstance(op, Store):
        return (1 << op.dst) | (0 if op.src is None else 1 << op.src), 0
    if isinstance(op, Atomic):
        use = (1 << op.dst) | (1 << op.src)
        defs = 0
        if op.op == isa.CMPXCHG:
            use |= bit
            defs = bit
        elif op.fetch or op.op == isa.XCHG:
            defs = 1 << op.src
        return use, defs
    if isinstance(op, LdImm64):
        return 0, 1 << op.dst
    if isinstance(op, LdPacket):
        return (1 << 6) | (0 if op.src is None else 1 << op.src), 0b111111
    if isinstance(op, Jump):
        if op.cond is None:
            return 0, 0
        return (1 << op.dst) | (0 if op.src is None else 1 << op.src), 0
    if isinstance(op, Call):
        if op.kind == 0:
            nargs = helper_nargs.get(op.imm, 5)
            return ((1 << (nargs + 1)) - 2), 0b111111
        return _ALL_ARGS, 0b111111
    if isinstance(op, CallX):
        return _ALL_ARGS | (1 << op.reg), 0b111111
    if isinstance(op, Exit):
        return bit, 0
    return 0, 0


def _liveness(ops: Sequence[Op | None], helper_nargs: dict[int, int]) -> list[int]:
    n = len(ops)
    live = [0] * n
    ud = [(0, 0) if op is None else _uses_defs(op, helper_nargs) for op in ops]
    succs = [[] if op is None else [s for s in _succ(op) if 0 <= s < n] for op in ops]
    changed = True
    while changed:
        changed = False
        for pc in range(n - 1, -1, -1):
            if ops[pc] is None:
                continue
            out = 0
            for s in succs[pc]:
                out |= live[s]
            use, defs = ud[pc]
            new = use | (out & ~defs)
            if new != live[pc]:
                live[pc] = new
                changed = True
    return [v | (1 << 10) for v in live]


def precision(ops: Sequence[Op | None], sub_of: Sequence[int], demand: frozenset[int],
              ) -> list[int]:
    """Registers (before each insn) whose scalar value may still matter for safety.

    The kernel marks a scalar precise, walking back along the path, when its value is
    used for a decision: a branch it decides, pointer arithmetic, a helper's size or
    flags, a return value with a range.  An imprecise scalar does not make two states
    different when pruning.  tcemu computes an over-approximation of the same set: a
    register is needed before an insn if its value can flow (through moves and ALU) into
    the operands of an insn of ``demand`` (the conditional jumps some path decided from
    scalar ranges and the pointer arithmetic with a scalar register, found while
    exploring: :func:`tcemu.bpf.verifier.verify` starts over when a new one turns up),
    into a helper or subprogram argument, into LD_IND, or into r0 at a subprogram's exit
    (its caller's use is not known here).  Stack slots are always compared in full, so a
    value stored to the stack needs nothing here.  Linked scalars (with an id) are
    always compared in full as well (``prune.py``).
    """
    n = len(ops)
    need = [0] * n
    succs = [[] if op is None else [s for s in _succ(op) if 0 <= s < n] for op in ops]
    changed = True
    while changed:
        changed = False
        for pc in range(n - 1, -1, -1):
            op = ops[pc]
            if op is None:
                continue
            out = 0
            for s in succs[pc]:
                out |= need[s]
            new = _need_before(op, out, pc in demand)
            if isinstance(op, Exit) and sub_of[pc] == 0:
                new = 0   # the main program's r0 has no range for tc or socket filters
            if new != need[pc]:
                need[pc] = new
                changed = True
    return need


_ARGS = 0b111110


def _need_before(op: Op, out: int, demanding: bool) -> int:
    if isinstance(op, Alu):
        dst = 1 << op.dst
        src = 0 if op.src is None else 1 << op.src
        movs = (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32)
        if op.op in movs:
            return (out & ~dst) | (src if out & dst else 0)
        if demanding:
            return out | dst | src
        return out | src if out & dst else out
    if isinstance(op, Endian):
        return out
    if isinstance(op, Load):
        return out & ~(1 << op.dst)
    if isinstance(op, Atomic):
        kill = 1 if op.op == isa.CMPXCHG else (1 << op.src if op.fetch or op.op == isa.XCHG
                                               else 0)
        return out & ~kill
    if isinstance(op, LdImm64):
        return out & ~(1 << op.dst)
    if isinstance(op, LdPacket):
        return (out & ~0b111111) | (0 if op.src is None else 1 << op.src)
    if isinstance(op, Jump):
        if op.cond is None:
            return out
        if not demanding:
            return out
        return out | (1 << op.dst) | (0 if op.src is None else 1 << op.src)
    if isinstance(op, Call | CallX):
        return (out & ~0b111111) | _ARGS
    if isinstance(op, Exit):
        return 1
    return out


def scc_ids(ops: Sequence[Op | None]) -> list[int]:
    """``compute_scc``: slot -> id of its loop (strongly connected component), 0 if none.

    Tarjan's algorithm over the intra-function successors (fall-through before the jump
    target; calls continue at the next insn), roots in slot order; components of more
    than one insn, or one insn jumping to itself, are numbered from 1 in the order they
    complete, as the kernel numbers them in the level-2 ``Live regs`` table."""
    n = len(ops)
    succs = [[] if op is None else [s for s in _succ(op) if 0 <= s < n] for op in ops]
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    ids = [0] * n
    counter = 0
    next_id = 1
    for root in range(n):
        if ops[root] is None or index[root] >= 0:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, i = work[-1]
            if i < len(succs[v]):
                work[-1] = (v, i + 1)
                w = succs[v][i]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] != index[v]:
                continue
            members: list[int] = []
            while True:
                w = stack.pop()
                on_stack[w] = False
                members.append(w)
                if w == v:
                    break
            if len(members) > 1 or v in succs[v]:
                for w in members:
                    ids[w] = next_id
                next_id += 1
    return ids


def live_regs_table(ops: Sequence[Op | None], live: Sequence[int],
                    text: Sequence[str]) -> list[str]:
    """The level-2 ``Live regs before insn:`` lines (``text``: the insn as printed)."""
    scc = scc_ids(ops)
    out = ["Live regs before insn:"]
    for pc, op in enumerate(ops):
        if op is None:
            continue
        regs = "".join(str(r) if live[pc] >> r & 1 else "." for r in range(10))
        mark = str(scc[pc]) if scc[pc] else ""
        out.append(f"{mark:>3} {pc:>3}: {regs} {text[pc]}")
    return out
