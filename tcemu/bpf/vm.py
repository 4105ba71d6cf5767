"""The execution environment and the interpreter tier.

A :class:`Vm` owns one :class:`~tcemu.bpf.memory.Memory`, a helper table keyed by uapi
helper id, an instruction budget and the hooks later layers fill (LD_IMM64 resolution for
maps, tail calls).  ``Vm.run(program, tier=...)`` runs a program on either tier:

* ``interp``: this module.  Each op is compiled once into a small closure ``f(R) -> next
  pc`` (closure-threaded interpretation) whose body is the shared template from
  :mod:`tcemu.bpf.semantics`;
* ``jit``: :mod:`tcemu.bpf.jit` translates the program to Python source.

Both tiers report memory errors as :class:`~tcemu.errors.VmFault` built by
:func:`fault_for` from the faulting op and the register file, so the two agree exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Literal, Protocol

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.env import Env
from tcemu.bpf.ops import (
    Alu,
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
from tcemu.bpf.uapi import HELPER_NAMES
from tcemu.errors import (
    BudgetExceeded,
    CallDepthExceeded,
    ExecutionError,
    HelperError,
    LoadError,
    UnsupportedError,
    VmFault,
)

if TYPE_CHECKING:
    from tcemu.bpf.program import Program

__all__ = ["DEFAULT_BUDGET", "ContextModel", "ExecResult", "HelperFn", "ProgramExit", "TailCall",
           "Tier", "Vm", "fault_for"]

Tier = Literal["interp", "jit"]
HelperFn = Callable[["Vm", int, int, int, int, int], int]
"""A helper: ``(vm, r1, r2, r3, r4, r5) -> r0``.  Failure is a negative errno, never raise."""

DEFAULT_BUDGET = 1 << 24
_MAP_PSEUDOS = frozenset({isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_VALUE, isa.PSEUDO_MAP_IDX,
                          isa.PSEUDO_MAP_IDX_VALUE})
RAW_ENTRY = frozenset({1, 2})   # a raw run starts with r1 = memory, r2 = its length
CTX_ENTRY = frozenset({1})      # a kernel hook starts with r1 = ctx
MAX_TAIL_CALL_CNT = 33
_FAULT_TYPES = (IndexError, struct.error, TypeError)


class ProgramExit(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a helper to end the whole program with ``value`` in r0."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class TailCall(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by the tail-call helper: replace the running program by ``program``."""

    def __init__(self, program: Program, ctx: int) -> None:
        super().__init__(program)
        self.program = program
        self.ctx = ctx


class _Exit(Exception):  # noqa: N818 - internal control flow of the interpreter
    pass


@dataclass
class ExecResult:
    r0: int
    insns: int                      # instructions executed (both tiers count the same)
    memory: bytes = b""             # the raw memory region after the run
    tail_calls: int = 0


@dataclass
class RunState:
    """Per-run state helpers may inspect (the current program, ctx pointer, counters)."""

    program: Program | None = None
    ctx: int = 0
    tail_calls: int = 0
    frames: list[tuple[int, ...]] = field(default_factory=list)
    deepest: int = 0
    redirect: tuple[str, int, int] | None = None   # bpf_redirect*(): (kind, ifindex, flags)


def fault_for(op: Op, regs: Sequence[int], memory: mem.Memory, exc: BaseException) -> VmFault:
    """Describe a failed access of ``op`` given the registers at the time of the fault."""
    if isinstance(op, Load):
        address, size, access = (regs[op.src] + op.off) & sem.M64, op.size, "read"
    elif isinstance(op, Store | Atomic):
        address, size, access = (regs[op.dst] + op.off) & sem.M64, op.size, "write"
    else:
        address, size, access = 0, 0, "access"
    rid = address >> 32
    region = memory.region_name(address)
    if rid == 0 and address < 0x10000:
        reason = "null or scalar pointer dereference"
    elif region is None or region == "unmapped" or rid == 0:
        reason, region = "address is not mapped", None
    elif not memory.regions[rid]:
        reason = f"{region} is not accessible"
    elif isinstance(exc, TypeError):
        reason = f"{region} is read-only"
    else:
        reason = f"out of bounds of {region} (size {len(memory.regions[rid])})"
    return VmFault(reason, pc=op.pc, insn=op.insn, addr=address, size=size, access=access,
                   region=region)


class Vm:
    """An execution environment: memory, helpers, budget.  Not thread-safe."""

    def __init__(self, env: Env | None = None, *, helpers: Mapping[int, HelperFn] | None = None,
                 budget: int = DEFAULT_BUDGET) -> None:
        self.env = env if env is not None else Env()
        self.memory = self.env.memory
        self.helpers: dict[int, HelperFn] = dict(helpers or {})
        self.budget = budget
        self.state = RunState()
        self.counter = [0]
        self._depth = 0
        self.ctx: ContextModel | None = None
        self._compiled: dict[tuple[int, str, object], _Runner] = {}

    # -- binding ---------------------------------------------------------------------
    def resolve_ldimm64(self, program: Program, op: LdImm64) -> int:
        """The value an LD_IMM64 loads: a constant, a code address, or (through the program's
        ``map_resolver``, set when an object is loaded) a map handle or map value address."""
        if op.pseudo == 0:
            return op.value
        if program.map_resolver is not None and op.pseudo in _MAP_PSEUDOS:
            return program.map_resolver(op)
        if op.pseudo == isa.PSEUDO_FUNC:
            return mem.addr(mem.CODE_RID, op.pc + op.imm + 1)
        if op.pseudo == isa.PSEUDO_BTF_ID:
            raise UnsupportedError("ld_imm64 of a BTF id (ksym) is not supported",
                                   index=op.pc, insn=op.insn)
        raise LoadError(f"load program: insn {op.pc}: references map {op.imm} "
                        "(BPF_PSEUDO_MAP_*) but no maps are attached to this environment")

    def check_call(self, op: Call) -> None:
        if op.kind == isa.PSEUDO_KFUNC_CALL:
            raise UnsupportedError(f"kfunc call (btf id {op.imm}) is not supported",
                                   index=op.pc, insn=op.insn)
        if op.kind == 0 and op.imm not in self.helpers:
            name = HELPER_NAMES.get(op.imm, "unknown")
            raise HelperError(f"helper {name}#{op.imm} is not available in this environment",
                              helper_id=op.imm, index=op.pc)

    def helper(self, helper_id: int, pc: int) -> HelperFn:
        fn = self.helpers.get(helper_id)
        if fn is None:
            name = HELPER_NAMES.get(helper_id, "unknown")
            raise ExecutionError(f"callx to helper {name}#{helper_id}, which is not available",
                                 pc=pc)
        return fn

    def ctx_load(self, offset: int, size: int) -> int:
        assert self.ctx is not None
        return self.ctx.load(offset, size)

    def ctx_store(self, offset: int, size: int, value: int) -> None:
        assert self.ctx is not None
        self.ctx.store(offset, size, value)

    # -- running ---------------------------------------------------------------------
    def runner(self, program: Program, tier: Tier) -> _Runner:
        model = self.ctx
        key = (id(program), tier, None if model is None else model.key)
        runner = self._compiled.get(key)
        if runner is None or runner.program is not program:
            ops = program.ops if model is None else program.ctx_ops(model)
            if tier == "interp":
                runner = Interpreter(self, program, ops)
            elif tier == "jit":
                from tcemu.bpf.jit import Translated
                runner = Translated(self, program, ops)
            else:
                raise ValueError(f"unknown tier {tier!r} (expected 'interp' or 'jit')")
            self._compiled[key] = runner
        return runner

    def run(self, program: Program, *, memory: bytes | bytearray = b"", tier: Tier = "interp",
            ctx: int | None = None) -> ExecResult:
        """Run with r1 = the raw ``memory`` (also the packet for LD_ABS), r2 = its length."""
        program.check_initialised(RAW_ENTRY if ctx is None else CTX_ENTRY)
        region = bytearray(memory)
        base = self.memory.map_region(mem.MEM_RID, region, "packet")
        self.memory.packet = mem.PacketView(mem.MEM_RID)
        r1 = base if ctx is None else ctx
        saved, self.ctx = self.ctx, None
        try:
            result = self.execute(program, tier, r1, len(region))
        finally:
            self.ctx = saved
        result.memory = bytes(region)
        return result

    def run_with_context(self, program: Program, model: ContextModel, packet: bytearray,
                         view: mem.PacketView, tier: Tier = "interp") -> ExecResult:
        """Run with r1 = a context pointer whose accesses ``model`` implements.

        ``packet`` (the bytes from ``skb->data``) becomes the packet region that
        ``data``/``data_end`` point into and LD_ABS reads.
        """
        program.check_initialised(CTX_ENTRY)
        saved = self.ctx, self.memory.regions[mem.MEM_RID], self.memory.packet
        self.ctx = model
        self.memory.map_region(mem.MEM_RID, packet, "packet")
        self.memory.packet = view
        try:
            return self.execute(program, tier, mem.addr(mem.CTX_RID))
        finally:
            self.ctx = saved[0]
            self.memory.regions[mem.MEM_RID], self.memory.packet = saved[1], saved[2]

    def execute(self, program: Program, tier: Tier, r1: int, r2: int = 0) -> ExecResult:
        """Run ``program`` from its entry with r1, r2; follow tail calls; count insns.

        A run may start while another is in progress (a helper that transmits a packet runs
        the programs on its way); the outer run's per-run state is saved and restored.
        """
        if self._depth:
            return self._nested(program, tier, r1, r2)
        self._depth += 1
        try:
            return self._execute(program, tier, r1, r2)
        finally:
            self._depth -= 1
            self.memory.quiesce()

    def _nested(self, program: Program, tier: Tier, r1: int, r2: int) -> ExecResult:
        regions = self.memory.regions
        saved = (regions[mem.STACK_RID0:mem.MAPS_RID], self.memory.packet, self.state,
                 self.counter[0])
        self.state = RunState(deepest=mem.MAX_CALL_FRAMES - 1)
        self._depth += 1
        try:
            return self._execute(program, tier, r1, r2)
        finally:
            self._depth -= 1
            regions[mem.STACK_RID0:mem.MAPS_RID] = saved[0]
            self.memory.packet, self.state, self.counter[0] = saved[1], saved[2], saved[3]

    def _execute(self, program: Program, tier: Tier, r1: int, r2: int) -> ExecResult:
        state = self.state
        for frame in range(state.deepest + 1):
            self.memory.reset_stack(frame)
        state.program, state.ctx, state.tail_calls = program, r1, 0
        state.frames.clear()
        state.deepest = 0
        self.counter[0] = 0
        args = (r1, r2, 0, 0, 0)
        while True:
            try:
                r0 = self.runner(program, tier).call(*args)
                break
            except ProgramExit as stop:
                r0 = stop.value & sem.M64
                break
            except TailCall as call:
                program = call.program
                state.program, state.tail_calls = program, state.tail_calls + 1
                state.frames.clear()
                args = (call.ctx, 0, 0, 0, 0)
        return ExecResult(r0, self.counter[0], tail_calls=state.tail_calls)


class ContextModel(Protocol):
    """What a context pointer means for one program type (e.g. ``struct __sk_buff``)."""

    @property
    def key(self) -> object:
        """Identifies the access rules (programs are rewritten once per key)."""

    def check(self, offset: int, size: int, write: bool) -> bool:
        """Whether the kernel accepts this context access for the program type."""

    def load(self, offset: int, size: int) -> int: ...

    def store(self, offset: int, size: int, value: int) -> None: ...


class _Runner:
    program: Program

    def call(self, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------
# The interpreter: one closure per op, built from the shared templates.

@cache
def _factory(body: str, params: str) -> Callable[..., Callable[[list[int]], int]]:
    """Compile ``def make(<params>): def f(R): <body>; return f`` once per body shape."""
    lines = "\n".join("        " + line for line in body.split("\n"))
    src = f"def make({params}):\n    def f(R):\n{lines}\n    return f\n"
    namespace: dict[str, object] = dict(sem.ENV)
    exec(compile(src, f"<tcemu-interp {body[:40]!r}>", "exec"), namespace)
    make = namespace["make"]
    assert callable(make)
    return make


def _alu_closure(op: Alu, nxt: int) -> Callable[[list[int]], int]:
    src = None if op.src is None else f"R[{op.src}]"
    expr = sem.alu_expr(op.op, op.is64, f"R[{op.dst}]", src, op.imm)
    return _factory(f"R[{op.dst}] = {expr}\nreturn N", "N")(nxt)


def _jump_closure(op: Jump, nxt: int) -> Callable[[list[int]], int]:
    if op.cond is None:
        return _factory("return T", "T")(op.target)
    view, imm_view = sem.operand_views(op.is64, op.cond.signed)
    a = view.format(r=f"R[{op.dst}]")
    b = "B" if op.src is None else view.format(r=f"R[{op.src}]")
    cond = sem.COND[op.cond].format(a=a, b=b)
    make = _factory(f"return T if {cond} else N", "B, T, N")
    return make(imm_view(op.imm), op.target, nxt)


def _load_closure(op: Load, regions: list[bytearray | bytes], nxt: int,
                  ) -> Callable[[list[int]], int]:
    a = f"(R[{op.src}] + {op.off}) & M64"
    if op.signed:
        body = f"a = {a}\nR[{op.dst}] = U(G[a >> 32], a & 0xFFFFFFFF)[0] & M64\nreturn N"
        return _factory(body, "G, U, N")(regions, mem.UNPACK_SIGNED[op.size], nxt)
    if op.size == 1:
        body = f"a = {a}\nR[{op.dst}] = G[a >> 32][a & 0xFFFFFFFF]\nreturn N"
        return _factory(body, "G, N")(regions, nxt)
    body = f"a = {a}\nR[{op.dst}] = U(G[a >> 32], a & 0xFFFFFFFF)[0]\nreturn N"
    return _factory(body, "G, U, N")(regions, mem.UNPACK[op.size], nxt)


def _store_closure(op: Store, regions: list[bytearray | bytes], nxt: int,
                   ) -> Callable[[list[int]], int]:
    mask = (1 << (8 * op.size)) - 1
    value = "V" if op.src is None else f"R[{op.src}] & {mask:#x}"
    const = op.imm & mask
    a = f"(R[{op.dst}] + {op.off}) & M64"
    if op.size == 1:
        body = f"a = {a}\nG[a >> 32][a & 0xFFFFFFFF] = {value}\nreturn N"
        return _factory(body, "G, V, N")(regions, const, nxt)
    body = f"a = {a}\nP(G[a >> 32], a & 0xFFFFFFFF, {value})\nreturn N"
    return _factory(body, "G, P, V, N")(regions, mem.PACK[op.size], const, nxt)


def atomic_body(op: Atomic, reg: Callable[[int], str]) -> str:
    """Python statements for an atomic op; shared by both tiers (``reg(n)`` names rN)."""
    mask = "M32" if op.size == 4 else "M64"
    src = reg(op.src)
    lines = [f"a = ({reg(op.dst)} + {op.off}) & M64", "g = G[a >> 32]", "o = a & 0xFFFFFFFF",
             "old = U(g, o)[0]"]
    if op.op == isa.CMPXCHG:
        lines += [f"if old == {reg(0)} & {mask}:", f"    P(g, o, {src} & {mask})",
                  f"{reg(0)} = old"]
        return "\n".join(lines)
    new = {isa.ADD: f"(old + {src}) & {mask}", isa.OR: f"old | ({src} & {mask})",
           isa.AND: f"old & {src}", isa.XOR: f"old ^ ({src} & {mask})",
           isa.XCHG: f"{src} & {mask}"}[op.op]
    lines.append(f"P(g, o, {new})")
    if op.fetch:
        lines.append(f"{src} = old")
    return "\n".join(lines)


def _atomic_closure(op: Atomic, regions: list[bytearray | bytes], nxt: int,
                    ) -> Callable[[list[int]], int]:
    body = atomic_body(op, lambda n: f"R[{n}]") + "\nreturn N"
    return _factory(body, "G, U, P, N")(regions, mem.UNPACK[op.size], mem.PACK[op.size], nxt)


class Interpreter(_Runner):
    """Closure-threaded interpreter over the decoded ops of one program."""

    def __init__(self, vm: Vm, program: Program, ops: Sequence[Op | None]) -> None:
        self.vm = vm
        self.program = program
        self.ops = ops
        self.code: list[Callable[[list[int]], int]] = [self._compile(op) for op in self.ops]

    def _compile(self, op: Op | None) -> Callable[[list[int]], int]:
        vm, regions = self.vm, self.vm.memory.regions
        if op is None:
            return _factory("raise AssertionError('executed the 2nd half of ld_imm64')", "")()
        nxt = op.pc + 1
        if isinstance(op, Alu):
            return _alu_closure(op, nxt)
        if isinstance(op, Endian):
            expr = sem.endian_expr(op.kind, op.bits).format(a=f"R[{op.dst}]")
            return _factory(f"R[{op.dst}] = {expr}\nreturn N", "N")(nxt)
        if isinstance(op, Jump):
            return _jump_closure(op, nxt)
        if isinstance(op, Load):
            return _load_closure(op, regions, nxt)
        if isinstance(op, Store):
            return _store_closure(op, regions, nxt)
        if isinstance(op, Atomic):
            return _atomic_closure(op, regions, nxt)
        if isinstance(op, LdImm64):
            value = vm.resolve_ldimm64(self.program, op)
            return _factory(f"R[{op.dst}] = V\nreturn N", "V, N")(value, op.pc + 2)
        if isinstance(op, LdPacket):
            return self._ld_packet(op, nxt)
        if isinstance(op, Call):
            return self._call(op, nxt)
        if isinstance(op, CallX):
            return self._callx(op, nxt)
        if isinstance(op, CtxLoad):
            load, off, size, dst = vm.ctx_load, op.offset, op.size, op.dst

            def ctx_load(regs: list[int]) -> int:
                regs[dst] = load(off, size)
                return nxt
            return ctx_load
        if isinstance(op, CtxStore):
            store, off, size, src, imm = vm.ctx_store, op.offset, op.size, op.src, op.imm

            def ctx_store(regs: list[int]) -> int:
                store(off, size, imm if src is None else regs[src])
                return nxt
            return ctx_store
        assert isinstance(op, Exit)
        return self._exit

    def _exit(self, regs: list[int]) -> int:
        frames = self.vm.state.frames
        if not frames:
            raise _Exit
        nxt, *saved = frames.pop()
        regs[6:11] = saved
        return nxt

    def _ld_packet(self, op: LdPacket, nxt: int) -> Callable[[list[int]], int]:
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

    def _call(self, op: Call, nxt: int) -> Callable[[list[int]], int]:
        self.vm.check_call(op)
        if op.kind == isa.PSEUDO_CALL:
            target, pc = op.target, op.pc
            return lambda regs: self._enter(regs, target, nxt, pc)
        fn, vm = self.vm.helpers[op.imm], self.vm

        def f(regs: list[int]) -> int:
            regs[0] = fn(vm, regs[1], regs[2], regs[3], regs[4], regs[5]) & sem.M64
            return nxt
        return f

    def _callx(self, op: CallX, nxt: int) -> Callable[[list[int]], int]:
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

    def call(self, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        regs = [0, r1, r2, r3, r4, r5, 0, 0, 0, 0, mem.stack_top(0)]
        code, pc, counter = self.code, 0, self.vm.counter
        steps = 0
        try:
            for steps in range(self.vm.budget - counter[0]):  # noqa: B007 - counted below
                pc = code[pc](regs)
        except _Exit:
            counter[0] += steps + 1
            return regs[0]
        except _FAULT_TYPES as exc:
            counter[0] += steps + 1
            op = self.ops[pc]
            assert op is not None
            raise fault_for(op, regs, self.vm.memory, exc) from exc
        except (ProgramExit, TailCall):
            counter[0] += steps + 1
            raise
        counter[0] = self.vm.budget
        raise BudgetExceeded(f"instruction budget of {self.vm.budget} exhausted", pc=pc)
