"""The execution environment: running a program on either tier.

A :class:`Vm` owns one :class:`~tcemu.bpf.memory.Memory`, a helper table keyed by uapi
helper id, an instruction budget and the hooks later layers fill (LD_IMM64 resolution for
maps, tail calls).  ``Vm.run(program, tier=...)`` runs a program on either tier:

* ``interp``: :mod:`tcemu.bpf.interp`.  Each op is compiled once into a small closure
  ``f(R) -> next pc`` (closure-threaded interpretation) whose body is the shared template
  from :mod:`tcemu.bpf.semantics`;
* ``jit``: :mod:`tcemu.bpf.jit` translates the program to Python source.

Both tiers report memory errors as :class:`~tcemu.errors.VmFault` built by
:func:`fault_for` from the faulting op and the register file, so the two agree exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, cast

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.env import Env
from tcemu.bpf.ops import (
    Atomic,
    Call,
    LdImm64,
    Load,
    Op,
    Store,
)
from tcemu.bpf.uapi import HELPER_NAMES
from tcemu.errors import (
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


# The interpreter tier lives in tcemu/bpf/interp.py, which builds on this module.
from tcemu.bpf.interp import Interpreter  # noqa: E402
