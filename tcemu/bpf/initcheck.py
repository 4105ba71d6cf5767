"""Reads of uninitialised registers: the first rule of the kernel verifier, ahead of it.

The kernel rejects a program that may read a register no path has written
(``check_reg_arg``: ``R%d !read_ok``).  This module runs that check as a forward
"must be written" data-flow analysis over slots, so that a raw run of such a program fails
loudly instead of reading a zero.  Which registers hold values at entry depends on how a
program is started (r1 = ctx for a kernel hook; r1 = memory and r2 = its length for a raw
run), so the caller passes them.  Helper and bpf-to-bpf calls define r0 and clobber r1-r5,
LD_ABS/LD_IND too, as ``check_helper_call``/``check_ld_abs`` do.  A subprogram starts with
r1-r5 and r10 written (the kernel tracks the caller's exact argument state; we do not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    successors,
)
from tcemu.errors import ValidationError

__all__ = ["check_initialised"]

_CALLER_SAVED = frozenset(range(1, 6))
_FP = 10


def _reads(op: Op) -> Iterable[int]:
    if isinstance(op, Alu):
        if op.op not in (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32):
            yield op.dst
        if op.src is not None:
            yield op.src
    elif isinstance(op, Endian):
        yield op.dst
    elif isinstance(op, Load):
        yield op.src
    elif isinstance(op, Store):
        yield op.dst
        if op.src is not None:
            yield op.src
    elif isinstance(op, Atomic):
        yield from (op.dst, op.src)
        if op.op == isa.CMPXCHG:
            yield 0
    elif isinstance(op, LdPacket):
        yield 6
        if op.src is not None:
            yield op.src
    elif isinstance(op, Jump) and op.cond is not None:
        yield op.dst
        if op.src is not None:
            yield op.src
    elif isinstance(op, CallX):
        yield op.reg
    elif isinstance(op, Exit):
        yield 0


def _transfer(op: Op, live: frozenset[int]) -> frozenset[int]:
    if isinstance(op, Call | CallX | LdPacket):
        return (live - _CALLER_SAVED) | {0}
    if isinstance(op, Alu | Endian | Load | LdImm64):
        return live | {op.dst}
    if isinstance(op, Atomic):
        if op.op == isa.CMPXCHG:
            return live | {0}
        return live | {op.src} if op.fetch or op.op == isa.XCHG else live
    return live


def check_initialised(ops: Sequence[Op | None], subprogs: Sequence[int],
                      entry: Iterable[int]) -> None:
    """Raise :class:`ValidationError` ``R<n> !read_ok`` at the first possible bad read."""
    state: dict[int, frozenset[int]] = {0: frozenset(entry) | {_FP}}
    for start in subprogs[1:]:
        state[start] = _CALLER_SAVED | {_FP}
    work = sorted(state)
    while work:
        pc = work.pop()
        op = ops[pc]
        assert op is not None
        live = state[pc]
        for reg in _reads(op):
            if reg not in live:
                raise ValidationError(f"R{reg} !read_ok", index=pc, insn=op.insn)
        out = _transfer(op, live)
        for succ in successors(op):
            if succ >= len(ops):
                continue
            old = state.get(succ)
            new = out if old is None else old & out
            if new != old:
                state[succ] = new
                work.append(succ)
