"""The interpreter tier: each op compiled once into a small closure ``f(R) -> next pc``.

Closure-threaded interpretation: the closure's body is the shared template from
:mod:`tcemu.bpf.semantics`, so this tier and the translated one (:mod:`tcemu.bpf.jit`)
run the same semantics.  A closure factory is compiled per op *shape*: register numbers,
immediates, offsets and the next slot are parameters, so a few hundred factories serve
every program.  Straight-line runs of ops inside loops are compiled once more as one
closure each, constants baked in (a "superinstruction"), which saves the dispatch per
instruction where programs spend time.  :class:`~tcemu.bpf.vm.Vm` makes one per program
(``tier="interp"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
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
    Cond,
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
from tcemu.bpf.semantics import atomic_body
from tcemu.errors import (
    BudgetExceeded,
    CallDepthExceeded,
    ExecutionError,
)

if TYPE_CHECKING:
    from tcemu.bpf.program import Program

from tcemu.bpf.vm import (
    _FAULT_TYPES,
    ProgramExit,
    TailCall,
    Vm,
    _Exit,
    _Runner,
    fault_for,
)

__all__ = ["Interpreter"]

_ENV: dict[str, object] = {**sem.ENV, **{f"U{n}": f for n, f in mem.UNPACK.items()},
                           **{f"P{n}": f for n, f in mem.PACK.items()},
                           **{f"S{n}": f for n, f in mem.UNPACK_SIGNED.items()}}
_NAMES = {"D": "D", "S": "S", "V": "V", "O": "O"}
_BLOCK_FILE = "<tcemu-interp block>"
_BLOCK_FIRST_LINE = 3            # a factory's source: "def make", "def f(R)", the body
_MAX_BLOCK = 64
_FUSABLE = (Alu, Endian, Load, Store, Atomic, LdImm64)
_RUN = (*_FUSABLE, Jump)
_Closure = Callable[[list[int]], int]
_Shape = tuple[object, ...]


@lru_cache(maxsize=2048)
def _factory(shape: _Shape) -> Callable[..., _Closure]:
    """Compile ``def make(...): def f(R): <body>; return f`` once per shape: an op shape
    (``make(G, D, S, V, O, T, N)``) or ``("block", body)`` (``make(G, X)``)."""
    params, filename = "G, D, S, V, O, T, N", "<tcemu-interp>"
    if shape[0] == "block":
        body, params, filename = str(shape[1]), "G, X", _BLOCK_FILE
    elif shape[0] == "jump":
        body = f"return T if {_statement_text(shape).format_map(_NAMES)} else N"
    elif shape[0] in ("goto", "invalid"):
        body = "return T" if shape[0] == "goto" else "raise AssertionError('2nd half of lddw')"
    else:
        body = _statement_text(shape).format_map(_NAMES) + "\nreturn N"
    lines = "\n".join("        " + line for line in body.split("\n"))
    src = f"def make({params}):\n    def f(R):\n{lines}\n    return f\n"
    namespace: dict[str, object] = dict(_ENV)
    exec(compile(src, filename, "exec"), namespace)
    make = namespace["make"]
    assert callable(make)
    return make


def _shape(op: Op, ldimm: int) -> tuple[_Shape, tuple[int, int, int, int]]:
    """What the text of ``op``'s closure depends on, and its (D, S, V, O) parameters: the
    registers, the immediate in the form the text uses, the offset."""
    if isinstance(op, Alu):
        imm = sem.alu_operand(op.is64, op.imm)
        return ("alu", op.op, op.is64, op.src is None), (op.dst, op.src or 0, imm, 0)
    if isinstance(op, Jump):
        if op.cond is None:
            return ("goto",), (0, 0, 0, 0)
        imm = sem.operand_views(op.is64, op.cond.signed)[1](op.imm)
        return ("jump", op.cond, op.is64, op.src is None), (op.dst, op.src or 0, imm, 0)
    if isinstance(op, Load):
        return ("load", op.size, op.signed, op.off == 0), (op.dst, op.src, 0, op.off)
    if isinstance(op, Store):
        imm = op.imm & ((1 << (8 * op.size)) - 1)
        return ("store", op.size, op.src is None, op.off == 0), (op.dst, op.src or 0, imm,
                                                                 op.off)
    if isinstance(op, Endian):
        return ("endian", op.kind, op.bits), (op.dst, 0, 0, 0)
    if isinstance(op, Atomic):
        return ("atomic", op), (0, 0, 0, 0)
    assert isinstance(op, LdImm64)
    return ("ldimm",), (op.dst, 0, ldimm, 0)


def _statement_text(shape: _Shape) -> str:
    """The statements of a shape over ``R``, with ``{D}`` ``{S}`` ``{V}`` ``{O}`` holes (a
    jump: its condition)."""
    kind, x, y, z = (*shape, None, None, None)[:4]
    if kind == "alu":
        assert isinstance(x, AluOp)
        assert isinstance(y, bool)
        w = "{V}" if z else "R[{S}]"
        b = w if y or z else f"({w} & M32)"
        expr = sem.alu_template(x, y).format(a="R[{D}]", a32="(R[{D}] & M32)", b=b, w=w)
        return f"R[{{D}}] = {expr}"
    if kind == "jump":
        assert isinstance(x, Cond)
        assert isinstance(y, bool)
        view = sem.operand_views(y, x.signed)[0]
        a = view.format(r="R[{D}]", r32="(R[{D}] & M32)")
        b = "{V}" if z else view.format(r="R[{S}]", r32="(R[{S}] & M32)")
        return sem.COND[x].format(a=a, b=b)
    if kind in ("load", "store"):
        head = "R[{S}]" if kind == "load" else "R[{D}]"
        head = f"a = {head}" if z else f"a = ({head} + {{O}}) & M64"
        if kind == "store":
            value = "{V}" if y else f"R[{{S}}] & {(1 << (8 * int(str(x)))) - 1:#x}"
            if x == 1:
                return f"{head}\nG[a >> 32][a & 0xFFFFFFFF] = {value}"
            return f"{head}\nP{x}(G[a >> 32], a & 0xFFFFFFFF, {value})"
        if y:
            return f"{head}\nR[{{D}}] = S{x}(G[a >> 32], a & 0xFFFFFFFF)[0] & M64"
        if x == 1:
            return f"{head}\nR[{{D}}] = G[a >> 32][a & 0xFFFFFFFF]"
        return f"{head}\nR[{{D}}] = U{x}(G[a >> 32], a & 0xFFFFFFFF)[0]"
    if kind == "ctxload":
        return "R[{D}] = G({O}, {V})"
    if kind == "ctxstore":
        return f"G({{O}}, T, {'{V}' if x else 'R[{S}]'})"
    if kind == "endian":
        return "R[{D}] = " + sem.endian_expr(str(x), int(str(y))).format(a="R[{D}]")
    if kind == "atomic":
        assert isinstance(x, Atomic)
        body = atomic_body(x, lambda n: f"R[{n}]")
        return body.replace("U(", f"U{x.size}(").replace("P(", f"P{x.size}(")
    return "R[{D}] = {V}"


class _CallbackFrames(list[tuple[int, ...]]):
    """The call stack of a callback: bpf-to-bpf calls from callbacks are not emulated."""

    def append(self, frame: tuple[int, ...]) -> None:
        raise ExecutionError("bpf-to-bpf calls inside a bpf_loop/for_each_map_elem callback "
                             "are not supported by tcemu yet", pc=frame[0] - 1)


class Interpreter(_Runner):
    """Closure-threaded interpreter over the decoded ops of one program."""

    def __init__(self, vm: Vm, program: Program, ops: Sequence[Op | None]) -> None:
        self.vm = vm
        self.program = program
        self.ops = ops
        self.extra = [0]          # instructions run by block closures beyond one each
        self.code: list[_Closure] = [self._compile(op) for op in self.ops]
        self.fused: list[_Closure] = list(self.code)
        self.blocks: dict[int, list[int]] = {}   # block start -> slot of each line
        self.kmax = 1
        self._fuse()

    def _shape(self, op: Op) -> tuple[_Shape, tuple[int, int, int, int]]:
        ldimm = self.vm.resolve_ldimm64(self.program, op) if isinstance(op, LdImm64) else 0
        return _shape(op, ldimm)

    def _compile(self, op: Op | None) -> _Closure:
        vm, regions = self.vm, self.vm.memory.regions
        if op is None:
            return _factory(("invalid",))(regions, 0, 0, 0, 0, 0, 0)
        nxt = op.pc + (2 if isinstance(op, LdImm64) else 1)
        if isinstance(op, _RUN):
            shape, (d, s, v, o) = self._shape(op)
            target = op.target if isinstance(op, Jump) else 0
            return _factory(shape)(regions, d, s, v, o, target, nxt)
        if isinstance(op, LdPacket):
            return self._ld_packet(op, nxt)
        if isinstance(op, Call):
            return self._call(op, nxt)
        if isinstance(op, CallX):
            return self._callx(op, nxt)
        if isinstance(op, CtxLoad):      # G is the model's accessor here
            return _factory(("ctxload",))(vm.ctx_load, op.dst, 0, op.size, op.offset, 0, nxt)
        if isinstance(op, CtxStore):
            return _factory(("ctxstore", op.src is None))(vm.ctx_store, 0, op.src or 0,
                                                          op.imm, op.offset, op.size, nxt)
        assert isinstance(op, Exit)
        return self._exit

    def _fuse(self) -> None:
        """One closure per straight-line run of ops in a loop (a jump may end the run)."""
        ops, n = self.ops, len(self.ops)
        depth = [0] * (n + 1)     # > 0: inside the slots of some backward jump
        leaders = set(self.program.subprogs)
        for op in ops:
            if isinstance(op, Jump):
                leaders.update((op.target, op.pc + 1))
                if op.target <= op.pc:
                    depth[op.target] += 1
                    depth[op.pc + 1] -= 1
        for q in range(1, n):
            depth[q] += depth[q - 1]
        pc = 0
        while pc < n:
            run: list[Op] = []
            q = pc
            while q < n and len(run) < _MAX_BLOCK and depth[q]:
                op = ops[q]
                if op is None or (q != pc and q in leaders) or not isinstance(op, _RUN):
                    break
                run.append(op)
                q += 2 if isinstance(op, LdImm64) else 1
                if isinstance(op, Jump):
                    break
            if len(run) > 1:
                self._block(pc, run, q)
            pc = max(q, pc + 1)

    def _block(self, start: int, run: list[Op], nxt: int) -> None:
        lines: list[str] = []
        pcs: list[int] = []
        tail = run[-1]
        for op in run[:-1] if isinstance(tail, Jump) else run:
            shape, (d, s, v, o) = self._shape(op)
            for line in _statement_text(shape).format(D=d, S=s, V=v, O=o).split("\n"):
                lines.append(line)
                pcs.append(op.pc)
        lines.append(f"X[0] += {len(run) - 1}")
        if not isinstance(tail, Jump):
            lines.append(f"return {nxt}")
        elif tail.cond is None:
            lines.append(f"return {tail.target}")
        else:
            shape, (d, s, v, _) = _shape(tail, 0)
            cond = _statement_text(shape).format(D=d, S=s, V=v)
            lines.append(f"return {tail.target} if {cond} else {nxt}")
        pcs += [tail.pc, tail.pc]
        self.fused[start] = _factory(("block", "\n".join(lines)))(self.vm.memory.regions,
                                                                  self.extra)
        self.blocks[start] = pcs
        self.kmax = max(self.kmax, len(run))

    def _exit(self, regs: list[int]) -> int:
        frames = self.vm.state.frames
        if not frames:
            raise _Exit
        nxt, *saved = frames.pop()
        regs[6:11] = saved
        return nxt

    def _ld_packet(self, op: LdPacket, nxt: int) -> _Closure:
        load, size, imm, src = self.vm.memory.load_packet, op.size, op.imm, op.src

        def f(regs: list[int]) -> int:
            offset = imm if src is None else sem.s32(regs[src] + imm)
            value = load(offset, size)
            if value is None:
                regs[0] = 0
                return self._exit(regs)
            regs[0] = value
            return nxt
        return f

    def _enter(self, regs: list[int], target: int, nxt: int, pc: int) -> int:
        state = self.vm.state
        depth = len(state.frames) + 1
        if depth >= mem.MAX_CALL_FRAMES:
            raise CallDepthExceeded(f"the call stack of {depth + 1} frames is too deep", pc=pc)
        state.frames.append((nxt, *regs[6:11]))
        state.deepest = max(state.deepest, depth)
        regs[10] = mem.stack_top(depth)
        return target

    def _call(self, op: Call, nxt: int) -> _Closure:
        self.vm.check_call(op)
        if op.kind == isa.PSEUDO_CALL:
            target, pc = op.target, op.pc
            return lambda regs: self._enter(regs, target, nxt, pc)
        fn, vm = self.vm.helpers[op.imm], self.vm

        def f(regs: list[int]) -> int:
            regs[0] = fn(vm, regs[1], regs[2], regs[3], regs[4], regs[5]) & sem.M64
            return nxt
        return f

    def _callx(self, op: CallX, nxt: int) -> _Closure:
        vm, reg, pc = self.vm, op.reg, op.pc

        def f(regs: list[int]) -> int:
            value = regs[reg]
            if value >> 32 == mem.CODE_RID:
                return self._enter(regs, self.program.subprog_entry(value & 0xFFFFFFFF, pc),
                                   nxt, pc)
            fn = vm.helper(value, pc)
            regs[0] = fn(vm, regs[1], regs[2], regs[3], regs[4], regs[5]) & sem.M64
            return nxt
        return f

    def _op_at(self, pc: int, fused: bool, exc: BaseException) -> Op:
        """The op that raised: the dispatched one, or the one inside a block closure."""
        pcs = self.blocks.get(pc) if fused else None
        tb = exc.__traceback__
        while pcs is not None and tb is not None:
            if tb.tb_frame.f_code.co_filename == _BLOCK_FILE:
                pc = pcs[tb.tb_lineno - _BLOCK_FIRST_LINE]
            tb = tb.tb_next
        op = self.ops[pc]
        assert op is not None
        return op

    def entry(self, r1: int, r2: int, r3: int, r4: int, r5: int, depth: int = 0) -> int:
        """``call`` (the interpreter keeps its own frames: ``depth`` is for the signature;
        its faults are typed already)."""
        return self._run([0, r1, r2, r3, r4, r5, 0, 0, 0, 0, mem.stack_top(0)], 0)

    call = entry

    def call_at(self, slot: int, args: Sequence[int], stack_top: int) -> int:
        """Run the subprogram at ``slot`` as a callback (``bpf_loop``, ``for_each_map_elem``)
        on its own stack; its instructions are not added to the run's count."""
        state, counter = self.vm.state, self.vm.counter
        saved = state.frames, counter[0]
        state.frames, counter[0] = _CallbackFrames(), 0
        try:
            regs = [0, *args, *[0] * (5 - len(args)), 0, 0, 0, 0, stack_top]
            return self._run(regs, slot)
        finally:
            state.frames, counter[0] = saved

    def _run(self, regs: list[int], start: int) -> int:
        counter, budget, extra, kmax = self.vm.counter, self.vm.budget, self.extra, self.kmax
        saved, extra[0] = extra[0], 0
        done, pc, steps, code = counter[0], start, 0, self.code
        try:
            while True:
                try:
                    while True:
                        # Never more instructions than the budget allows: a chunk of
                        # dispatches of block closures (kmax insns at most) fits; near the
                        # end, one op at a time.
                        left = budget - done - extra[0]
                        if left <= 0:
                            counter[0] = budget
                            raise BudgetExceeded(f"instruction budget of {budget} exhausted",
                                                 pc=pc)
                        code, chunk = ((self.fused, left // kmax) if left > 2 * kmax
                                       else (self.code, left))
                        for steps in range(chunk):  # noqa: B007 - counted below
                            pc = code[pc](regs)
                        done += chunk
                except _Exit:
                    counter[0] = done + steps + 1 + extra[0]
                    return regs[0]
                except _FAULT_TYPES as exc:
                    counter[0] = done + steps + 1 + extra[0]
                    op = self._op_at(pc, code is self.fused, exc)
                    raise fault_for(op, regs, self.vm.memory, exc) from exc
                except TailCall as call:
                    counter[0] = done + steps + 1 + extra[0]
                    frames = self.vm.state.frames
                    if not frames or isinstance(frames, _CallbackFrames):
                        raise
                    # A tail call in a subprogram replaces that subprogram: the target's r0
                    # goes back to the subprogram's caller (the x86-64 JIT's frame handling).
                    extra[0] = 0
                    regs[0] = self.vm.run_tail_target(call, "interp")
                    done, steps = counter[0], 0
                    pc = self._exit(regs)
                except ProgramExit:
                    counter[0] = done + steps + 1 + extra[0]
                    raise
        finally:
            extra[0] = saved
