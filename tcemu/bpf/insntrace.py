"""Instruction-level tracing: every executed instruction with the registers it changed,
the memory it touched and the helpers it called, in the kernel's disassembly syntax.

This is a teaching and debugging aid (``--trace-insns``), so it favours clarity over
speed: :class:`TracingInterpreter` steps one op at a time over the interpreter's unfused
closures (the same semantics as the ``interp`` tier) and compares the registers before
and after each step.  Memory accesses are derived from the op and the registers before it
ran; the value shown is what was loaded or what memory holds after the store.

A line reads like the verifier log, then what happened::

    3: (61) r2 = *(u32 *)(r1 +76)        ; R2=0x1a2b0000  load ctx+76 (4 B) = 0x1a2b0000
    9: (85) call bpf_map_lookup_elem#1   ; R0=0x1000000000  bpf_map_lookup_elem(0xb00..., ...)

Addresses are named by region: ``fp-8`` for the stack of the current frame, ``ctx+76``,
``pkt+14``, or ``<region name>+off`` (map values carry the map's name).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcemu.bpf import memory as mem
from tcemu.bpf.disasm import format_insn, helper_name
from tcemu.bpf.ops import Atomic, Call, CtxLoad, CtxStore, LdImm64, Load, Op, Store

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Vm

__all__ = ["InsnEvent", "InsnTracer", "MemAccess", "describe_address"]


@dataclass(frozen=True)
class MemAccess:
    access: str          # "load" or "store"
    where: str           # e.g. fp-8, ctx+76, pkt+14
    size: int
    value: int


@dataclass(frozen=True)
class InsnEvent:
    """One executed instruction."""

    program: str
    pc: int
    text: str                        # kernel syntax, e.g. "(b7) r0 = 0"
    depth: int                       # bpf-to-bpf call frame (0 = main)
    regs: dict[int, int]             # registers whose value changed, after the step
    shown: dict[int, str] = field(default_factory=dict)   # pointers named by region
    mem: tuple[MemAccess, ...] = ()
    call: str | None = None          # "map_lookup_elem(0x.., 0x..) = 0x.."

    def format(self) -> str:
        head = f"{'  ' * self.depth}{self.pc}: {self.text}"
        notes = [" ".join(f"R{r}={self.shown.get(r, f'0x{v:x}')}"
                          for r, v in sorted(self.regs.items()))]
        notes += [f"{m.access} {m.where} ({m.size} B) = 0x{m.value:x}" for m in self.mem]
        if self.call:
            notes.append(self.call)
        tail = "  ".join(n for n in notes if n)
        return f"{head:<44} ; {tail}" if tail else head

    def to_json(self) -> str:
        return json.dumps({"program": self.program, "pc": self.pc, "insn": self.text,
                           "depth": self.depth, "regs": {f"r{r}": v for r, v in
                                                         sorted(self.regs.items())},
                           "mem": [vars(m) for m in self.mem], "call": self.call})


@dataclass
class InsnTracer:
    """Collects :class:`InsnEvent`s (at most ``limit``; later ones are counted only)."""

    limit: int = 100_000
    events: list[InsnEvent] = field(default_factory=list)
    dropped: int = 0
    sink: Callable[[InsnEvent], None] | None = None

    def record(self, event: InsnEvent) -> None:
        if self.sink is not None:
            self.sink(event)
        if len(self.events) < self.limit:
            self.events.append(event)
        else:
            self.dropped += 1

    def lines(self) -> list[str]:
        out = [event.format() for event in self.events]
        if self.dropped:
            out.append(f"... {self.dropped} more instructions not kept (limit {self.limit})")
        return out


def describe_address(memory: mem.Memory, address: int, frame: int = 0) -> str:
    """A readable name for a VM address (``fp-8``, ``ctx+76``, ``pkt+14``...)."""
    rid, off = address >> 32, address & mem.OFF_MASK
    if mem.STACK_RID0 <= rid < mem.STACK_RID0 + mem.MAX_CALL_FRAMES:
        here = rid - mem.STACK_RID0
        prefix = "fp" if here == frame else f"fp[frame {here}]"
        return f"{prefix}{off - mem.STACK_SIZE:+d}".replace("+-", "-")
    if rid == mem.CTX_RID:
        return f"ctx+{off}"
    if rid == mem.MEM_RID:
        return f"pkt+{off}"
    name = memory.region_name(address) or f"region {rid}"
    return f"{name}+{off}"


def _access(op: Op, regs: Sequence[int]) -> tuple[str, int, int] | None:
    """(kind, address, size) of the memory ``op`` touches, from the registers before it."""
    if isinstance(op, Load):
        return "load", (regs[op.src] + op.off) & 0xFFFF_FFFF_FFFF_FFFF, op.size
    if isinstance(op, Store | Atomic):
        return "store", (regs[op.dst] + op.off) & 0xFFFF_FFFF_FFFF_FFFF, op.size
    return None


def make_event(vm: Vm, program: Program, op: Op, before: Sequence[int], after: Sequence[int],
               depth: int) -> InsnEvent:
    """Describe ``op``, which turned registers ``before`` into ``after``."""
    insns = program.insns
    nxt = insns[op.pc + 1] if isinstance(op, LdImm64) and op.pc + 1 < len(insns) else None
    text = format_insn(op.insn, nxt)
    changed = {r: after[r] for r in range(11) if after[r] != before[r]}
    accesses: list[MemAccess] = []
    if isinstance(op, CtxLoad):
        accesses.append(MemAccess("load", f"ctx+{op.offset}", op.size, after[op.dst]))
    elif isinstance(op, CtxStore):
        value = op.imm if op.src is None else before[op.src]
        accesses.append(MemAccess("store", f"ctx+{op.offset}", op.size, value))
    else:
        access = _access(op, before)
        if access is not None:
            kind, address, size = access
            where = describe_address(vm.memory, address, depth)
            if kind == "load" and isinstance(op, Load):
                value = after[op.dst]
            else:
                try:
                    value = int.from_bytes(vm.memory.read(address, size), "little")
                except (IndexError, TypeError):
                    value = 0
            accesses.append(MemAccess(kind, where, size, value))
    call = None
    if isinstance(op, Call) and op.kind == 0:
        args = ", ".join(f"0x{before[r]:x}" for r in range(1, 6))
        call = f"{helper_name(op.imm)}({args}) = 0x{after[0]:x}"
    shown = {r: name for r, v in changed.items()
             if (name := _pointer_name(vm.memory, v, len(vm.state.frames))) is not None}
    return InsnEvent(program.name, op.pc, text, depth, changed, shown, tuple(accesses), call)


def _pointer_name(memory: mem.Memory, value: int, frame: int) -> str | None:
    """``fp-8``/``pkt+14``/... when ``value`` points into (or just past) a mapped region."""
    rid = value >> 32
    if rid == 0 or rid >= len(memory.regions) or rid in (mem.MAPS_RID, mem.CODE_RID):
        return None
    size = len(memory.regions[rid])
    if rid == mem.CTX_RID:
        size = max(size, 192)
    if not size or (value & mem.OFF_MASK) > size:
        return None
    return describe_address(memory, value, frame)


def tracing_interpreter(vm: Vm, program: Program, ops: Sequence[Op | None]) -> object:
    """An interpreter that reports each executed op to ``vm.tracer``."""
    from tcemu.bpf.interp import Interpreter
    from tcemu.bpf.vm import _FAULT_TYPES, ProgramExit, TailCall, _Exit, fault_for
    from tcemu.errors import BudgetExceeded

    class TracingInterpreter(Interpreter):
        def _run(self, regs: list[int], start: int) -> int:
            vm, tracer = self.vm, self.vm.tracer
            assert tracer is not None
            counter, budget, code, frames = vm.counter, vm.budget, self.code, vm.state.frames
            done, pc = counter[0], start
            while True:
                if done >= budget:
                    counter[0] = budget
                    raise BudgetExceeded(f"instruction budget of {budget} exhausted", pc=pc)
                op, before, depth = self.ops[pc], list(regs), len(frames)
                done += 1
                try:
                    nxt = code[pc](regs)
                except (_Exit, ProgramExit, TailCall):
                    counter[0] = done
                    if op is not None:
                        tracer.record(make_event(vm, self.program, op, before, regs, depth))
                    if not isinstance(sys.exc_info()[1], _Exit):
                        raise
                    return regs[0]
                except _FAULT_TYPES as exc:
                    counter[0] = done
                    assert op is not None
                    raise fault_for(op, regs, vm.memory, exc) from exc
                if op is not None:
                    tracer.record(make_event(vm, self.program, op, before, regs, depth))
                pc = nxt

    return TracingInterpreter(vm, program, ops)
