"""The translated tier: a program becomes Python source, compiled once.

Each subprogram becomes one Python function whose locals ``r0``..``r10`` are the registers.
Its basic blocks sit in a ``while True`` loop, found by a binary tree of ``if b < K``
tests over block start slots; a block whose conditional jump targets itself (a tight loop)
becomes an inner ``while`` loop with no dispatch.  Every expression comes from the shared
templates of :mod:`tcemu.bpf.semantics`, and memory accesses use the same region list and
``struct`` accessors as the interpreter, so both tiers compute the same results and fault
on the same accesses.

The instruction count is kept per block (``n += len``), exact at exits, helper calls and
faults; the budget is checked at every dispatch and loop iteration.  A fault is mapped back
to its slot by the line number of the generated source, and the registers at the fault are
read from the generated frame, so :func:`tcemu.bpf.vm.fault_for` reports it exactly as the
interpreter does.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.ops import (
    Alu,
    AluOp,
    Atomic,
    Call,
    CallX,
    CtxLoad,
    CtxStore,
    Endian,
    Exit,
    Jump,
    LdImm64,
    LdPacket,
    Load,
    Op,
    Store,
)
from tcemu.bpf.vm import _FAULT_TYPES, _Runner, atomic_body, fault_for
from tcemu.errors import BudgetExceeded, CallDepthExceeded

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Vm

__all__ = ["Translated", "translate_source"]

_LEAF = 4
_SERIAL = count()
_CONSTS = (("M64", "0xFFFFFFFFFFFFFFFF"), ("M32", "0xFFFFFFFF"))


def _literal_masks(expr: str) -> str:
    for name, value in _CONSTS:
        expr = re.sub(rf"\b{name}\b", value, expr)
    return expr


def _r(n: int) -> str:
    return f"r{n}"


@dataclass
class _Block:
    start: int
    ops: list[Op]
    succ: int | None = None       # fall-through successor (None after exit / goto)


@dataclass
class _Emitter:
    """Accumulates source lines and which slot each line belongs to."""

    lines: list[str] = field(default_factory=list)
    line_pc: dict[int, int] = field(default_factory=dict)
    helpers: set[int] = field(default_factory=set)

    def emit(self, indent: int, text: str, pc: int | None = None) -> None:
        for part in text.split("\n"):
            self.lines.append("    " * indent + part)
            if pc is not None:
                self.line_pc[len(self.lines)] = pc


_MAX_CHAIN = 8


def _ring_chain(body: list[Op], i: int) -> list[Alu]:
    """The longest run from ``body[i]`` of ALU ops on one register that can share a mask."""
    first = body[i]
    if not isinstance(first, Alu) or (first.op not in sem.RING and first.op is not AluOp.MOV):
        return []
    chain = [first]
    for op in body[i + 1:i + _MAX_CHAIN]:
        if not (isinstance(op, Alu) and op.op in sem.RING and op.is64 == first.is64
                and op.dst == first.dst and op.src != first.dst):
            break
        chain.append(op)
    return chain


def _blocks(ops: list[Op | None], start: int, end: int) -> list[_Block]:
    leaders = {start}
    for op in ops[start:end]:
        if op is None:
            continue
        if isinstance(op, Jump):
            leaders.add(op.target)
            leaders.add(op.pc + 1)
        elif isinstance(op, Exit):
            leaders.add(op.pc + 1)
    bounds = sorted(x for x in leaders if start <= x < end)
    blocks: list[_Block] = []
    for i, first in enumerate(bounds):
        last = bounds[i + 1] if i + 1 < len(bounds) else end
        body = [op for op in ops[first:last] if op is not None]
        tail = body[-1]
        falls = not isinstance(tail, Exit) and not (isinstance(tail, Jump) and tail.cond is None)
        blocks.append(_Block(first, body, last if falls and last < end else None))
    return blocks


class _Translator:
    def __init__(self, vm: Vm, program: Program, ops: Sequence[Op | None]) -> None:
        self.vm = vm
        self.program = program
        self.ops = ops
        self.out = _Emitter()
        self.consts: dict[str, object] = {}

    # -- instructions ------------------------------------------------------------------
    def insn(self, op: Op, ind: int, remaining: int) -> None:
        emit = self.out.emit
        if isinstance(op, Alu):
            src = None if op.src is None else _r(op.src)
            expr = sem.alu_expr(op.op, op.is64, _r(op.dst), src, op.imm)
            emit(ind, f"{_r(op.dst)} = {_literal_masks(expr)}", op.pc)
        elif isinstance(op, Endian):
            emit(ind, f"{_r(op.dst)} = " + sem.endian_expr(op.kind, op.bits).format(a=_r(op.dst)),
                 op.pc)
        elif isinstance(op, Load):
            self._load(op, ind)
        elif isinstance(op, Store):
            self._store(op, ind)
        elif isinstance(op, Atomic):
            body = atomic_body(op, _r).replace("U(", f"U{op.size}(").replace("P(", f"P{op.size}(")
            emit(ind, _literal_masks(body), op.pc)
        elif isinstance(op, LdImm64):
            emit(ind, f"{_r(op.dst)} = {self.vm.resolve_ldimm64(self.program, op)}", op.pc)
        elif isinstance(op, LdPacket):
            off = str(op.imm) if op.src is None else f"s32({_r(op.src)} + {op.imm})"
            emit(ind, f"r0 = LDPKT({off}, {op.size})\nif r0 is None:\n"
                      f"    C[0] = n - {remaining}\n    return 0", op.pc)
        elif isinstance(op, Call):
            self._call(op, ind, remaining)
        elif isinstance(op, CtxLoad):
            emit(ind, f"{_r(op.dst)} = CTXLD({op.offset}, {op.size})", op.pc)
        elif isinstance(op, CtxStore):
            value = str(op.imm) if op.src is None else _r(op.src)
            emit(ind, f"CTXST({op.offset}, {op.size}, {value})", op.pc)
        elif isinstance(op, CallX):
            emit(ind, f"C[0] = n - {remaining}\n"
                      f"r0 = CALLX({_r(op.reg)}, {op.pc}, depth, r1, r2, r3, r4, r5)\n"
                      f"n = C[0] + {remaining}", op.pc)

    def _addr(self, reg: int, off: int, ind: int, pc: int) -> str:
        """Name the address register+off: the register itself, or a temporary ``a``."""
        if off == 0:
            return _r(reg)
        self.out.emit(ind, f"a = ({_r(reg)} + {off}) & 0xFFFFFFFFFFFFFFFF", pc)
        return "a"

    def _load(self, op: Load, ind: int) -> None:
        emit = self.out.emit
        a = self._addr(op.src, op.off, ind, op.pc)
        if op.signed:
            emit(ind, f"{_r(op.dst)} = S{op.size}(G[{a} >> 32], {a} & 0xFFFFFFFF)[0]"
                      " & 0xFFFFFFFFFFFFFFFF", op.pc)
        elif op.size == 1:
            emit(ind, f"{_r(op.dst)} = G[{a} >> 32][{a} & 0xFFFFFFFF]", op.pc)
        else:
            emit(ind, f"{_r(op.dst)} = U{op.size}(G[{a} >> 32], {a} & 0xFFFFFFFF)[0]", op.pc)

    def _store(self, op: Store, ind: int) -> None:
        mask = (1 << (8 * op.size)) - 1
        value = str(op.imm & mask) if op.src is None else f"{_r(op.src)} & {mask:#x}"
        emit = self.out.emit
        a = self._addr(op.dst, op.off, ind, op.pc)
        if op.size == 1:
            emit(ind, f"G[{a} >> 32][{a} & 0xFFFFFFFF] = {value}", op.pc)
        else:
            emit(ind, f"P{op.size}(G[{a} >> 32], {a} & 0xFFFFFFFF, {value})", op.pc)

    def _call(self, op: Call, ind: int, remaining: int) -> None:
        self.vm.check_call(op)
        emit = self.out.emit
        if op.kind == isa.PSEUDO_CALL:
            emit(ind, f"if depth >= {mem.MAX_CALL_FRAMES - 1}:\n"
                      f"    raise DEPTH(depth, {op.pc})\n"
                      f"C[0] = n - {remaining}\n"
                      f"r0 = sub_{op.target}(r1, r2, r3, r4, r5, depth + 1)\n"
                      f"n = C[0] + {remaining}", op.pc)
            return
        self.out.helpers.add(op.imm)
        emit(ind, f"C[0] = n - {remaining}\n"
                  f"r0 = H{op.imm}(VM, r1, r2, r3, r4, r5) & 0xFFFFFFFFFFFFFFFF", op.pc)

    # -- control flow ------------------------------------------------------------------
    def _cond(self, op: Jump, negate: bool = False) -> str:
        assert op.cond is not None
        cond = sem.NEGATED.get(op.cond, op.cond) if negate else op.cond
        view, imm_view = sem.operand_views(op.is64, cond.signed)
        a = view.format(r=_r(op.dst))
        b = str(imm_view(op.imm)) if op.src is None else view.format(r=_r(op.src))
        text = _literal_masks(sem.COND[cond].format(a=a, b=b))
        return f"not ({text})" if negate and cond is op.cond else text

    def _body(self, body: list[Op], ind: int, size: int) -> None:
        """Emit straight-line ops; runs of ring ops on one register share one mask."""
        done, i = 0, 0
        while i < len(body):
            chain = _ring_chain(body, i)
            if len(chain) > 1:
                self._fused(chain, ind)
                done += len(chain)
                i += len(chain)
                continue
            op = body[i]
            done += 1
            self.insn(op, ind, size - done)
            i += 1

    def _fused(self, chain: list[Alu], ind: int) -> None:
        first = chain[0]
        src = None if first.src is None else _r(first.src)
        if first.op in sem.RING:
            expr = sem.ring_expr(first.op, first.is64, _r(first.dst), src, first.imm)
        else:  # a MOV starts the chain
            expr = sem.alu_expr(first.op, first.is64, _r(first.dst), src, first.imm)
        for op in chain[1:]:
            src = None if op.src is None else _r(op.src)
            expr = sem.ring_expr(op.op, op.is64, expr, src, op.imm)
        mask = "M64" if first.is64 else "M32"
        self.out.emit(ind, f"{_r(first.dst)} = {_literal_masks(f'{expr} & {mask}')}",
                      chain[-1].pc)

    def block(self, blk: _Block, ind: int, next_in_leaf: int | None) -> None:
        emit = self.out.emit
        tail = blk.ops[-1]
        body = blk.ops[:-1] if isinstance(tail, Jump | Exit) else blk.ops
        size = len(blk.ops)  # instructions, as the kernel counts them (LD_IMM64 is one)
        self_loop = isinstance(tail, Jump) and tail.target == blk.start
        # A loop without calls counts its iterations with a for loop (cheaper than n += k);
        # calls need an exact count before they run, so they keep the running counter.
        counted = self_loop and not any(isinstance(op, Call | CallX | LdPacket) for op in body)
        if counted:
            emit(ind, f"for _i in range((BUDGET - n) // {size}):")
            ind += 1
        elif self_loop:
            emit(ind, "while True:")
            ind += 1
        if not counted:
            emit(ind, f"n += {size}")
        if self_loop and not counted:
            emit(ind, f"if n > BUDGET:\n    raise OVER({blk.start})")
        self._body(body, ind, size)
        if isinstance(tail, Exit):
            emit(ind, "C[0] = n\nreturn r0", tail.pc)
            return
        if isinstance(tail, Jump) and self_loop:
            if tail.cond is not None:
                emit(ind, f"if {self._cond(tail, negate=True)}:\n    break", tail.pc)
            else:
                emit(ind, "pass", tail.pc)  # "goto self": only the budget ends it
            if counted:
                emit(ind - 1, f"else:\n    raise OVER({blk.start})\nn += {size} * (_i + 1)")
            if tail.cond is None:
                return  # "goto self": only the budget ends it
            ind -= 1
        elif isinstance(tail, Jump):
            if tail.cond is None:
                emit(ind, f"b = {tail.target}\ncontinue", tail.pc)
                return
            emit(ind, f"if {self._cond(tail)}:\n    b = {tail.target}\n    continue", tail.pc)
        assert blk.succ is not None
        emit(ind, f"b = {blk.succ}" + ("" if blk.succ == next_in_leaf else "\ncontinue"))

    def tree(self, blocks: list[_Block], ind: int) -> None:
        if len(blocks) <= _LEAF:
            for i, blk in enumerate(blocks):
                nxt = blocks[i + 1].start if i + 1 < len(blocks) else None
                self.out.emit(ind, f"if b == {blk.start}:")
                self.block(blk, ind + 1, nxt)
            return
        mid = len(blocks) // 2
        self.out.emit(ind, f"if b < {blocks[mid].start}:")
        self.tree(blocks[:mid], ind + 1)
        self.out.emit(ind, "else:")
        self.tree(blocks[mid:], ind + 1)

    def subprog(self, start: int, end: int) -> None:
        blocks = _blocks(list(self.ops), start, end)
        emit = self.out.emit
        emit(0, f"def sub_{start}(r1, r2, r3, r4, r5, depth):")
        emit(1, "r0 = r6 = r7 = r8 = r9 = 0\nr10 = TOP[depth]\nn = C[0]")
        emit(1, f"b = {start}\nwhile True:\n    if n > BUDGET:\n        raise OVER(b)")
        self.tree(blocks, 2)

    def source(self) -> str:
        starts = [*self.program.subprogs, len(self.program.insns)]
        for i, start in enumerate(starts[:-1]):
            self.subprog(start, starts[i + 1])
        return "\n".join(self.out.lines) + "\n"


def translate_source(vm: Vm, program: Program, ops: Sequence[Op | None] | None = None) -> str:
    """The Python source the translated tier runs for ``program`` (for reading and tests)."""
    return _Translator(vm, program, program.ops if ops is None else ops).source()


class Translated(_Runner):
    """A program compiled to Python functions, bound to one :class:`~tcemu.bpf.vm.Vm`."""

    def __init__(self, vm: Vm, program: Program, ops: Sequence[Op | None]) -> None:
        self.vm = vm
        self.program = program
        self.ops = ops
        tr = _Translator(vm, program, ops)
        self.source = tr.source()
        self.line_pc = tr.out.line_pc
        self.filename = f"<tcemu-jit {program.name or 'prog'} #{next(_SERIAL)}>"
        self.namespace = self._namespace(tr.out.helpers)
        exec(compile(self.source, self.filename, "exec"), self.namespace)
        self.subs: dict[int, Callable[..., int]] = {
            start: self.namespace[f"sub_{start}"]  # type: ignore[misc]
            for start in program.subprogs}
        self.entry = self.subs[0]

    def _namespace(self, helpers: set[int]) -> dict[str, object]:
        vm = self.vm
        ns: dict[str, object] = dict(sem.ENV)
        ns.update(G=vm.memory.regions, C=vm.counter, VM=vm, BUDGET=vm.budget,
                  TOP=[mem.stack_top(d) for d in range(mem.MAX_CALL_FRAMES)],
                  LDPKT=vm.memory.load_packet, OVER=self._over, DEPTH=self._depth,
                  CALLX=self._callx, CTXLD=vm.ctx_load, CTXST=vm.ctx_store)
        for size in (1, 2, 4, 8):
            ns[f"U{size}"] = mem.UNPACK[size]
            ns[f"P{size}"] = mem.PACK[size]
        for size in (1, 2, 4):
            ns[f"S{size}"] = mem.UNPACK_SIGNED[size]
        for helper_id in helpers:
            ns[f"H{helper_id}"] = vm.helpers[helper_id]
        return ns

    def _over(self, pc: int) -> BudgetExceeded:
        return BudgetExceeded(f"instruction budget of {self.vm.budget} exhausted", pc=pc)

    def _depth(self, depth: int, pc: int) -> CallDepthExceeded:
        state = self.vm.state
        state.deepest = max(state.deepest, depth + 1)
        return CallDepthExceeded(f"the call stack of {depth + 2} frames is too deep", pc=pc)

    def _callx(self, value: int, pc: int, depth: int, *args: int) -> int:
        if value >> 32 == mem.CODE_RID:
            slot = self.program.subprog_entry(value & 0xFFFFFFFF, pc)
            if depth >= mem.MAX_CALL_FRAMES - 1:
                raise self._depth(depth, pc)
            self.vm.state.deepest = max(self.vm.state.deepest, depth + 1)
            return self.subs[slot](*args, depth + 1)
        return self.vm.helper(value, pc)(self.vm, *args) & sem.M64

    def call(self, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        try:
            return self.entry(r1, r2, r3, r4, r5, 0)
        except _FAULT_TYPES as exc:
            raise self._fault(exc) from exc

    def _fault(self, exc: BaseException) -> BaseException:
        frame: types.FrameType | None = None
        lineno = 0
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.filename:
                frame, lineno = tb.tb_frame, tb.tb_lineno
            tb = tb.tb_next
        pc = self.line_pc.get(lineno)
        if frame is None or pc is None:
            return exc  # not from generated code: a host bug, re-raise as is
        regs = [int(frame.f_locals.get(f"r{i}", 0)) for i in range(11)]
        op = self.ops[pc]
        assert op is not None
        return fault_for(op, regs, self.vm.memory, exc)
