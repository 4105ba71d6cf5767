"""Find the instructions that access the program context, as the kernel rewrites them.

The kernel never lets a program touch ``struct __sk_buff`` memory: after verification,
``convert_ctx_accesses()`` rewrites every load or store through a context pointer into an
access of the real ``sk_buff`` member.  That requires knowing, for every load and store,
whether its base register holds the context pointer and at which constant offset.  This
module computes exactly that with a small forward data-flow analysis (context pointer +
constant offset, frame pointer + constant offset for spills, anything else), so the tiers
can replace those instructions by context operations.  It is the part of the verifier's
pointer tracking that execution needs; the full verifier comes later and is stricter.

Programs the kernel accepts always resolve; an access the kernel would reject as
``invalid bpf_context access off=X size=Y`` raises :class:`ValidationError` here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tcemu.bpf import isa
from tcemu.bpf.ops import (
    Alu,
    AluOp,
    Atomic,
    Call,
    CallX,
    LdImm64,
    LdPacket,
    Load,
    Op,
    Store,
    successors,
)
from tcemu.errors import ValidationError

__all__ = ["CtxAccess", "find_ctx_accesses"]

# An abstract value: ("ctx", off), ("fp", off) or None (anything else).
Value = tuple[str, int] | None
_FP = 10


@dataclass(frozen=True)
class CtxAccess:
    """A load (``write=False``) or store at ``offset`` of the context, ``size`` bytes."""

    pc: int
    offset: int
    size: int
    write: bool


@dataclass(frozen=True)
class _State:
    regs: tuple[Value, ...]
    slots: frozenset[tuple[int, tuple[str, int]]]   # (fp offset, spilled ctx/fp value)

    def merge(self, other: _State) -> _State:
        regs = tuple(a if a == b else None for a, b in zip(self.regs, other.regs, strict=True))
        return _State(regs, self.slots & other.slots)


def _entry(args: Sequence[Value]) -> _State:
    regs: list[Value] = [None] * 11
    regs[1:1 + len(args)] = args
    regs[_FP] = ("fp", 0)
    return _State(tuple(regs), frozenset())


class _Analysis:
    def __init__(self, ops: Sequence[Op | None], subprogs: Sequence[int],
                 check: Callable[[int, int, bool], bool]) -> None:
        self.ops = ops
        self.subprogs = set(subprogs)
        self.check = check
        self.states: dict[int, _State] = {}
        self.work: list[int] = []
        self.accesses: dict[int, CtxAccess] = {}

    def flow(self, pc: int, state: _State) -> None:
        if pc >= len(self.ops):
            return
        old = self.states.get(pc)
        new = state if old is None else old.merge(state)
        if new != old:
            self.states[pc] = new
            self.work.append(pc)

    def record(self, op: Op, base: Value, off: int, size: int, write: bool) -> None:
        if base is None or base[0] != "ctx":
            return
        offset = base[1] + off
        if not self.check(offset, size, write):
            raise ValidationError(f"invalid bpf_context access off={offset} size={size}",
                                  index=op.pc, insn=op.insn)
        self.accesses[op.pc] = CtxAccess(op.pc, offset, size, write)

    def step(self, op: Op, st: _State) -> _State:
        regs = list(st.regs)
        slots = dict(st.slots)
        if isinstance(op, Alu):
            regs[op.dst] = self._alu(op, regs)
        elif isinstance(op, Load):
            base = regs[op.src]
            self.record(op, base, op.off, op.size, False)
            value = None
            if base is not None and base[0] == "fp" and op.size == 8:
                value = slots.get(base[1] + op.off)
            regs[op.dst] = value
        elif isinstance(op, Store | Atomic):
            base = regs[op.dst]
            if isinstance(op, Atomic) and base is not None and base[0] == "ctx":
                raise ValidationError(f"BPF_ATOMIC stores into R{op.dst} ctx is not allowed",
                                      index=op.pc, insn=op.insn)
            self.record(op, base, op.off, op.size, True)
            if base is not None and base[0] == "fp":
                start = base[1] + op.off
                for slot in [s for s in slots if s < start + op.size and start < s + 8]:
                    del slots[slot]
                spilled = regs[op.src] if isinstance(op, Store) and op.src is not None else None
                if isinstance(op, Store) and op.size == 8 and spilled is not None:
                    slots[start] = spilled
            if isinstance(op, Atomic):
                regs[0 if op.op == isa.CMPXCHG else op.src] = None
        elif isinstance(op, LdImm64):
            regs[op.dst] = None
        elif isinstance(op, Call | CallX | LdPacket):
            if isinstance(op, Call) and op.kind == isa.PSEUDO_CALL:
                args = [v if v is not None and v[0] == "ctx" else None for v in regs[1:6]]
                self.flow(op.target, _entry(args))
            regs[0:6] = [None] * 6
        return _State(tuple(regs), frozenset(slots.items()))

    @staticmethod
    def _alu(op: Alu, regs: list[Value]) -> Value:
        if not op.is64:
            return None
        if op.op is AluOp.MOV and op.src is not None:
            return regs[op.src]
        cur = regs[op.dst]
        if cur is not None and op.src is None and op.op in (AluOp.ADD, AluOp.SUB):
            return (cur[0], cur[1] + (op.imm if op.op is AluOp.ADD else -op.imm))
        return None

    def run(self, entry_args: Sequence[Value]) -> dict[int, CtxAccess]:
        self.flow(0, _entry(entry_args))
        while self.work:
            pc = self.work.pop()
            op = self.ops[pc]
            assert op is not None
            out = self.step(op, self.states[pc])
            for succ in successors(op):
                self.flow(succ, out)
        return self.accesses


def find_ctx_accesses(ops: Sequence[Op | None], subprogs: Sequence[int],
                      check: Callable[[int, int, bool], bool]) -> dict[int, CtxAccess]:
    """The context accesses of a program entered with r1 = the context pointer.

    ``check(offset, size, write)`` says whether the program type allows an access.
    """
    return _Analysis(ops, subprogs, check).run([("ctx", 0)])
