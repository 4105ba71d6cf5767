"""Value ranges of registers: what the translator may assume to drop masks.

A fact is an interval ``(lo, hi)`` with ``0 <= lo <= hi <= 2**64 - 1`` that contains every
value the register can hold at that point, on every path and for every input.  Facts come
from what instructions produce (a 32-bit result is below 2**32, a ``u8`` load below 256, a
constant is itself) and from branch conditions on the edges they guard; they are joined
where paths meet, and a block that a backward edge enters starts from no fact at all,
except a block that loops onto itself (see :func:`loop_invariant`).

The one use of a fact is :func:`raw_range`: a template's final ``& M64``/``& M32`` is the
identity when the unmasked value is provably in ``[0, 2**k)``, and only then is it dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcemu.bpf import isa
from tcemu.bpf.ops import (
    Alu,
    AluOp,
    Atomic,
    Call,
    CallX,
    Cond,
    CtxLoad,
    Endian,
    Jump,
    LdImm64,
    LdPacket,
    Load,
    Op,
)
from tcemu.bpf.semantics import M32, M64, alu_operand

__all__ = ["TOP", "Range", "State", "alu_ranges", "join", "refine", "transfer"]

Range = tuple[int, int]
State = list[Range]
TOP: Range = (0, M64)
TOP32: Range = (0, M32)


def _width(hi: int) -> Range:
    return (0, (1 << hi.bit_length()) - 1)


def top_state() -> State:
    return [TOP] * 11


def join(a: State, b: State) -> State:
    return [x if x == y else (min(x[0], y[0]), max(x[1], y[1])) for x, y in zip(a, b, strict=True)]


def view32(r: Range) -> Range:
    """The range of the low 32 bits of a value in ``r``."""
    return r if r[1] <= M32 else TOP32


def _ring_raw(op: AluOp, a: Range, b: Range, shift: int | None, bits: int) -> Range | None:
    """Range of the unmasked RING expression (may be negative or >= 2**bits)."""
    if op is AluOp.ADD:
        return (a[0] + b[0], a[1] + b[1])
    if op is AluOp.SUB:
        return (a[0] - b[1], a[1] - b[0])
    if op is AluOp.MUL:
        return (a[0] * b[0], a[1] * b[1])
    if op is AluOp.AND:
        return (0, min(a[1], b[1]))
    if op in (AluOp.OR, AluOp.XOR):
        return (0, _width(max(a[1], b[1]))[1])
    if op is AluOp.LSH:
        if shift is not None:
            return (a[0] << shift, a[1] << shift)
        return (0, a[1] << min(b[1], bits - 1))
    return None


def alu_ranges(op: Alu, a: Range, src: Range | None) -> tuple[Range | None, Range]:
    """(range of the unmasked raw expression for RING ops, range of the result).

    ``a`` is the destination's range, ``src`` the source register's (``None``: the
    immediate).  For a RING op the raw expression is ``{a} <op> {w}`` with full-width
    operands, so the mask may be dropped iff the raw range lies inside ``[0, 2**bits)``.
    """
    bits = 64 if op.is64 else 32
    mask = M64 if op.is64 else M32
    if src is None:
        c = alu_operand(op.is64, op.imm)
        w: Range = (c, c)
        b: Range = w
        shift: int | None = c & (bits - 1)
    else:
        w = src
        b = src if op.is64 else view32(src)
        shift = None
    kind = op.op
    if src is None and (kind is AluOp.ADD or kind is AluOp.SUB):
        # written as adding the signed immediate: r1 += -8 is r1 - 8, not r1 + 2**64 - 8
        d = c - (1 << bits) if c >> (bits - 1) else c
        delta = d if kind is AluOp.ADD else -d
        raw: Range | None = (a[0] + delta, a[1] + delta)
    else:
        raw = _ring_raw(kind, a, w, shift, bits)
    if raw is not None:
        if raw[0] >= 0 and raw[1] <= mask:
            return raw, raw
        if kind in (AluOp.OR, AluOp.XOR, AluOp.AND):
            return raw, (0, min(raw[1], mask))
        return raw, (0, mask)
    a_w = a if op.is64 else view32(a)
    if kind is AluOp.MOV:
        return None, b
    if kind is AluOp.DIV:
        return None, ((a_w[0] // b[1], a_w[1] // b[0]) if b[0] else (0, a_w[1]))
    if kind is AluOp.MOD:
        return None, ((0, min(a_w[1], b[1] - 1)) if b[0] else (0, a_w[1]))
    if kind is AluOp.RSH:
        if shift is not None:
            return None, (a_w[0] >> shift, a_w[1] >> shift)
        return None, (0, a_w[1])
    if kind is AluOp.ARSH and a_w[1] < (1 << (bits - 1)):
        if shift is not None:
            return None, (a_w[0] >> shift, a_w[1] >> shift)
        return None, (0, a_w[1])
    if kind in (AluOp.MOVSX8, AluOp.MOVSX16) or (kind is AluOp.MOVSX32 and op.is64):
        width = {AluOp.MOVSX8: 8, AluOp.MOVSX16: 16, AluOp.MOVSX32: 32}[kind]
        if w[1] < (1 << (width - 1)):
            return None, w
    if kind is AluOp.MOVSX32 and not op.is64:
        return None, b
    if kind is AluOp.NEG and a == (0, 0):
        return None, (0, 0)
    return None, (0, mask)


def _endian(op: Endian, a: Range) -> Range:
    if op.kind == "le":
        return a if op.bits == 64 or a[1] < (1 << op.bits) else (0, (1 << op.bits) - 1)
    return (0, (1 << op.bits) - 1)


def transfer(state: State, op: Op) -> None:
    """Update ``state`` in place for the effect of ``op`` (not of branches: :func:`refine`).

    LD_IMM64 gives no fact here: its value is resolved against the Vm by the caller.
    """
    if isinstance(op, Alu):
        src = None if op.src is None else state[op.src]
        state[op.dst] = alu_ranges(op, state[op.dst], src)[1]
    elif isinstance(op, Load):
        state[op.dst] = TOP if op.signed or op.size == 8 else (0, (1 << (8 * op.size)) - 1)
    elif isinstance(op, Endian):
        state[op.dst] = _endian(op, state[op.dst])
    elif isinstance(op, LdImm64 | CtxLoad):
        state[op.dst] = TOP
    elif isinstance(op, Atomic):
        if op.op == isa.CMPXCHG:
            state[0] = TOP if op.size == 8 else TOP32
        elif op.fetch:
            state[op.src] = TOP if op.size == 8 else TOP32
    elif isinstance(op, Call | CallX):
        for reg in range(6):
            state[reg] = TOP
    elif isinstance(op, LdPacket):
        state[0] = (0, (1 << (8 * op.size)) - 1)


def refine(state: State, op: Jump, taken: bool) -> State:
    """The state on one edge of a conditional jump against an immediate."""
    if op.cond is None or op.src is not None:
        return state
    cur = state[op.dst]
    if op.is64:
        k = op.imm & M64
    elif cur[1] <= M32:
        k = op.imm & M32
    else:
        return state
    cond = op.cond
    lo, hi = cur
    if (cond is Cond.JEQ and taken) or (cond is Cond.JNE and not taken):
        lo, hi = max(lo, k), min(hi, k)
    elif cond is Cond.JEQ or cond is Cond.JNE:
        lo, hi = lo + (lo == k), hi - (hi == k)
    elif cond is Cond.JGT:
        lo, hi = (max(lo, k + 1), hi) if taken else (lo, min(hi, k))
    elif cond is Cond.JGE:
        lo, hi = (max(lo, k), hi) if taken else (lo, min(hi, k - 1))
    elif cond is Cond.JLT:
        lo, hi = (lo, min(hi, k - 1)) if taken else (max(lo, k), hi)
    elif cond is Cond.JLE:
        lo, hi = (lo, min(hi, k)) if taken else (max(lo, k + 1), hi)
    else:
        return state
    if lo > hi or (lo, hi) == cur:
        return state  # an edge never taken: any fact holds on it
    out = list(state)
    out[op.dst] = (lo, hi)
    return out


def _within(inner: Range, outer: Range) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def loop_invariant(entry: State, body: Sequence[Op], tail: Jump, written: int) -> State:
    """Facts that hold at the head of a block looping onto itself, on every iteration.

    ``entry`` holds on entering from elsewhere, ``written`` is the set of registers the
    body may change.  The result ``h`` contains ``entry`` and is inductive: running the
    body from ``h`` and taking the back edge lands in ``h`` again (checked, not assumed;
    registers for which the check fails lose their fact until it holds).
    """
    def back(head: State) -> State:
        state = list(head)
        for op in body:
            transfer(state, op)
        return refine(state, tail, True)

    head = [TOP if written >> reg & 1 else fact for reg, fact in enumerate(entry)]
    head = join(entry, back(head))
    for _ in range(12):
        after = back(head)
        bad = [reg for reg in range(11) if not _within(after[reg], head[reg])]
        if not bad:
            return head
        for reg in bad:
            head[reg] = TOP
    return [TOP if written >> reg & 1 else fact for reg, fact in enumerate(entry)]
