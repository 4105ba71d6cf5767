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
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Protocol, cast

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.env import Env
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
    from tcemu.bpf.insntrace import InsnTracer
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
_CTX_ADDR = mem.addr(mem.CTX_RID)


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


_MEM_RID, _STACK_RID0, _STACK_SIZE = mem.MEM_RID, mem.STACK_RID0, mem.STACK_SIZE


@dataclass(slots=True)
class ExecResult:
    r0: int
    insns: int                      # instructions executed (both tiers count the same)
    memory: bytes = b""             # the raw memory region after the run
    tail_calls: int = 0
    tail_chain: tuple[Program, ...] = ()   # with tail calls: every program run, in order


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
        self._regions = self.memory.regions       # (the list is never replaced)
        self.helpers: dict[int, HelperFn] = dict(helpers or {})
        self.budget = budget
        self.state = RunState()
        self.counter = [0]
        self._depth = 0
        self.ctx: ContextModel | None = None
        self.tracer: InsnTracer | None = None   # set: every run steps and reports each op
        self._compiled: dict[tuple[int, str, object], _Runner] = {}
        self._last_runner: tuple[object, object, str, _Runner | None] = (None, None, "", None)
        self.last_chain: tuple[Program, ...] = ()    # the last run's tail calls (_execute)
        self.nested_figures = (0, 0)              # (insns, tail calls) of _nested's run

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
        traced = self.tracer is not None
        key = (id(program), "trace" if traced else tier, None if model is None else model.key)
        runner = self._compiled.get(key)
        if runner is None or runner.program is not program:
            ops = program.ops if model is None else program.ctx_ops(model)
            if traced:
                from tcemu.bpf.insntrace import tracing_interpreter
                runner = cast(_Runner, tracing_interpreter(self, program, ops))
            elif tier == "interp":
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
                         view: mem.PacketHeaders, tier: Tier = "interp") -> ExecResult:
        """Run with r1 = a context pointer whose accesses ``model`` implements.

        ``packet`` (the bytes from ``skb->data``) becomes the packet region that
        ``data``/``data_end`` point into and LD_ABS reads.
        """
        nested = self._depth > 0
        r0 = self.run_datapath(program, model, packet, view, tier)
        return self._result(r0, nested)

    def _result(self, r0: int, nested: bool) -> ExecResult:
        insns, tail_calls = self.nested_figures if nested else \
            (self.counter[0], self.state.tail_calls)
        return ExecResult(r0, insns, b"", tail_calls, self.last_chain)

    def run_datapath(self, program: Program, model: ContextModel, packet: bytearray,
                     view: mem.PacketHeaders, tier: Tier = "interp") -> int:
        """:meth:`run_with_context` for a datapath that runs a program per packet: r0
        alone (the instruction count is ``counter[0]`` and the tail-call chain
        ``last_chain`` until the next run), without building an :class:`ExecResult`.
        :meth:`datapath_run` makes the same run cheaper packet after packet."""
        if CTX_ENTRY not in program._init_checked:
            program.check_initialised(CTX_ENTRY)
        memory = self.memory
        regions = memory.regions
        saved_ctx, saved_packet, saved_view = self.ctx, regions[mem.MEM_RID], memory.packet
        self.ctx = model
        regions[mem.MEM_RID] = packet          # map_region(MEM_RID, packet, "packet")
        memory.names[mem.MEM_RID] = "packet"
        memory.packet = view
        try:
            if self._depth:                    # execute(), one frame less for a datapath
                return self._nested(program, tier, _CTX_ADDR, 0)
            self._depth = 1
            try:
                return self._execute(program, tier, _CTX_ADDR, 0)
            finally:
                self._depth = 0
                if memory._pending:
                    memory.quiesce()
        finally:
            self.ctx = saved_ctx
            regions[mem.MEM_RID], memory.packet = saved_packet, saved_view

    def datapath_run(self, program: Program, model: ContextModel, view: mem.PacketHeaders,
                     tier: Tier) -> Callable[[bytearray], int]:
        """``run_datapath(program, model, packet, view, tier)`` as a function of the
        packet alone, for a datapath that runs ``program`` on ``model`` packet after
        packet: a top-level run is :meth:`_execute` inline, with the runner and the VM's
        parts at hand (the runner is the one the first run found); anything else (a
        nested run, a tracer, the first run) is :meth:`run_datapath`'s.

        A top-level run leaves the context model, the packet region and the packet view
        as it set them (``run_datapath`` puts back what was there): at the top level
        nothing is there to put back, whatever runs next sets its own, and a run nested
        in another VM's (``bpf_clone_redirect``) is wrapped in ``Stack.save_vm_state``,
        which keeps the outer run's regions and view.  Two stores fewer per packet."""
        memory, regions, counter = self.memory, self._regions, self.counter
        call: Callable[[int, int, int, int, int, int], int] | None = None
        fault: Callable[[BaseException], BaseException] | None = None   # set with call

        def run(packet: bytearray) -> int:
            nonlocal call, fault
            if call is None or self._depth or self.tracer is not None:
                r0 = self.run_datapath(program, model, packet, view, tier)
                last = self._last_runner
                if last[0] is program and last[1] is model and last[2] == tier and \
                        last[3] is not None and self.tracer is None:
                    call, fault = last[3].entry, last[3].fault
                return r0
            self.ctx = model
            regions[_MEM_RID] = packet
            memory.packet = view
            state = self.state
            self._depth = 1
            try:
                regions[_STACK_RID0] = bytearray(_STACK_SIZE)
                if state.deepest:
                    self._fresh_frames(state)
                state.program, state.ctx, state.tail_calls = program, _CTX_ADDR, 0
                if state.frames:
                    state.frames.clear()
                counter[0] = 0
                self.last_chain = ()
                try:
                    return call(_CTX_ADDR, 0, 0, 0, 0, 0)
                except _FAULT_TYPES as exc:
                    assert fault is not None
                    raise fault(exc) from exc
                except ProgramExit as stop:
                    return stop.value & sem.M64
                except TailCall as tail:
                    return self._tail_chain(program, tier, tail)
            finally:
                self._depth = 0
                if memory._pending:
                    memory.quiesce()

        return run

    def execute(self, program: Program, tier: Tier, r1: int, r2: int = 0) -> ExecResult:
        """Run ``program`` from its entry with r1, r2; follow tail calls; count insns.

        A run may start while another is in progress (a helper that transmits a packet runs
        the programs on its way); the outer run's per-run state is saved and restored.
        """
        if self._depth:
            return self._result(self._nested(program, tier, r1, r2), True)
        self._depth = 1
        try:
            r0 = self._execute(program, tier, r1, r2)
        finally:
            self._depth = 0
            self.memory.quiesce()
        return self._result(r0, False)

    def _nested(self, program: Program, tier: Tier, r1: int, r2: int) -> int:
        regions = self.memory.regions
        saved = (regions[mem.STACK_RID0:mem.MAPS_RID], self.memory.packet, self.state,
                 self.counter[0])
        self.state = RunState(deepest=mem.MAX_CALL_FRAMES - 1)
        self._depth += 1
        try:
            r0 = self._execute(program, tier, r1, r2)
            # the nested run's figures, kept past the restore below for its caller
            self.nested_figures = (self.counter[0], self.state.tail_calls)
            return r0
        finally:
            self._depth -= 1
            regions[mem.STACK_RID0:mem.MAPS_RID] = saved[0]
            self.memory.packet, self.state, self.counter[0] = saved[1], saved[2], saved[3]

    def _execute(self, program: Program, tier: Tier, r1: int, r2: int) -> int:
        """The run itself: r0 (64-bit); ``counter[0]`` holds the instruction count and
        ``last_chain`` the programs tail calls reached (empty without tail calls)."""
        state = self.state
        regions = self.memory.regions
        # fresh stacks for the frames the previous run used (the others are still zero)
        regions[mem.STACK_RID0] = bytearray(mem.STACK_SIZE)
        if state.deepest:
            self._fresh_frames(state)
        state.program, state.ctx, state.tail_calls = program, r1, 0
        if state.frames:
            state.frames.clear()
        self.counter[0] = 0
        runner = self._runner_for(program, tier)
        try:
            r0 = runner.call(r1, r2, 0, 0, 0)
        except ProgramExit as stop:
            r0 = stop.value & sem.M64
        except TailCall as call:
            return self._tail_chain(program, tier, call)
        self.last_chain = ()
        return r0

    def _fresh_frames(self, state: RunState) -> None:
        """Fresh stacks for the frames past the first that the previous run used (the
        first is renewed by every run; the others are still zero)."""
        regions = self.memory.regions
        for rid in range(_STACK_RID0 + 1, _STACK_RID0 + state.deepest + 1):
            regions[rid] = bytearray(_STACK_SIZE)
        state.deepest = 0

    def _runner_for(self, program: Program, tier: Tier) -> _Runner:
        """The runner of the previous run when program, context model and tier are the
        same objects (a datapath runs one program on one model, packet after packet)."""
        last = self._last_runner
        if last[0] is program and last[1] is self.ctx and last[2] == tier and \
                last[3] is not None and self.tracer is None:
            return last[3]
        runner = self.runner(program, tier)
        if self.tracer is None:
            self._last_runner = (program, self.ctx, tier, runner)
        return runner

    def _tail_chain(self, program: Program, tier: Tier, call: TailCall) -> int:
        """The rest of a run whose ``program`` made the tail call ``call``: r0 of the
        last program of the chain (``last_chain``: every program run, in order)."""
        state = self.state
        chain: tuple[Program, ...] = (program,)
        while True:
            chain += (call.program,)
            program = call.program
            state.tail_calls += 1            # tail calls made in subprograms count too
            state.program = program
            state.frames.clear()
            try:
                r0 = self._runner_for(program, tier).call(call.ctx, 0, 0, 0, 0)
                break
            except ProgramExit as stop:
                r0 = stop.value & sem.M64
                break
            except TailCall as again:
                call = again
        self.last_chain = chain
        return r0

    def run_tail_target(self, call: TailCall, tier: Tier) -> int:
        """Run the target of a tail call made inside a subprogram, to its end; its r0.

        In the kernel (x86-64 JIT) such a tail call pops the subprogram's frame and jumps
        into the target, whose exit then returns to the subprogram's caller.  The target
        runs on fresh stack frames (the caller's are set aside and restored), shares the
        run's tail-call count, and may tail-call further.
        """
        state, regions = self.state, self.memory.regions
        first, last = mem.STACK_RID0, mem.STACK_RID0 + mem.MAX_CALL_FRAMES
        saved = (regions[first:last], state.program, state.frames, state.deepest)
        regions[first:last] = [bytearray(mem.STACK_SIZE) for _ in range(first, last)]
        state.frames, state.deepest = [], 0
        try:
            program, ctx = call.program, call.ctx
            while True:
                state.tail_calls += 1
                state.program = program
                state.frames.clear()
                try:
                    return self.runner(program, tier).call(ctx, 0, 0, 0, 0) & sem.M64
                except TailCall as again:
                    program, ctx = again.program, again.ctx
        finally:
            regions[first:last] = saved[0]
            state.program, state.frames, state.deepest = saved[1], saved[2], saved[3]


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
    # ``call`` with a call depth, and without the translation of host exceptions
    # (``_FAULT_TYPES``) into faults that ``call`` makes: the caller maps them with
    # :meth:`fault` (a datapath that runs a program per packet saves a frame)
    entry: Callable[[int, int, int, int, int, int], int]

    def call(self, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        raise NotImplementedError

    def fault(self, exc: BaseException) -> BaseException:
        """The fault a host exception raised by :meth:`entry` stands for."""
        return exc


# ---------------------------------------------------------------------------------------
# The interpreter: one closure per op, built from the shared templates.  A closure factory
# is compiled per op *shape*: register numbers, immediates, offsets and the next slot are
# parameters, so a few hundred factories serve every program.  Straight-line runs of ops
# inside loops are compiled once more as one closure each, constants baked in (a
# "superinstruction"), which saves the dispatch per instruction where programs spend time.

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
        self.entry = lambda r1, r2, r3, r4, r5, depth: self.call(r1, r2, r3, r4, r5)

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

    def call(self, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return self._run([0, r1, r2, r3, r4, r5, 0, 0, 0, 0, mem.stack_top(0)], 0)

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
