"""Compiling, binding and running translated programs; faults back to instructions.

A program's subprograms (and the drivers of segmented ones, see :mod:`.translate`) are
compiled when the runner is built; each segment of a segmented subprogram is generated and
compiled the first time it is entered (its entry in ``SEG`` starts as a stub that does that
and replaces itself), and kept with the program's code in the process-wide cache.
"""

from __future__ import annotations

import re
import struct
import types
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from itertools import count
from typing import TYPE_CHECKING

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.jit.direct import MapLike, bindings, method_name
from tcemu.bpf.jit.out import LineInfo
from tcemu.bpf.jit.translate import ZEROS, Translator, packet_pointers
from tcemu.bpf.ops import Atomic, Call, CtxLoad, CtxStore, LdImm64, Load, Op, Store
from tcemu.bpf.vm import _FAULT_TYPES, TailCall, _Runner, fault_for
from tcemu.errors import BudgetExceeded, CallDepthExceeded

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Vm

__all__ = ["CODE_CACHE", "Translated", "translate_source"]

_SERIAL = count()
_BIG = {size: struct.Struct(fmt).unpack_from for size, fmt in sem.BE_LOAD.items()}


@dataclass(frozen=True, slots=True)
class _Code:
    """One compiled piece: the program's main part or one segment."""

    source: str
    code: types.CodeType
    filename: str
    line_info: dict[int, LineInfo]


@dataclass(slots=True)
class _Compiled:
    """What translating a program produces, independent of the Vm it runs in: the main
    part (subprograms, drivers), and the segments compiled so far (head pc -> code), with
    the translator that generates the others (dropped once there are none)."""

    main: _Code
    heads: tuple[int, ...]
    translator: Translator | None
    segments: dict[int, _Code] = field(default_factory=dict)

    def segment(self, pc: int) -> _Code:
        seg = self.segments.get(pc)
        if seg is None:
            assert self.translator is not None
            out = self.translator.segment(pc)
            source = "\n".join(out.lines) + "\n"
            filename = f"{self.main.filename[:-1]} seg {pc}>"
            seg = _Code(source, compile(source, filename, "exec"), filename, out.info)
            self.segments[pc] = seg
            if len(self.segments) == len(self.heads):
                self.translator = None
        return seg


class CodeCache:
    """Compiled programs, process-wide, least recently used first out.

    The generated source depends only on the instructions (their bytes), on how context
    accesses were rewritten, and on the values LD_IMM64 resolves to (map addresses differ
    per environment), so that triple is the key; a hit is bound to a new Vm with ``exec``.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[object, _Compiled] = OrderedDict()

    def get(self, key: object) -> _Compiled | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: object, entry: _Compiled) -> None:
        self._entries[key] = entry
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


CODE_CACHE = CodeCache()


def translate_source(vm: Vm, program: Program, ops: Sequence[Op | None] | None = None) -> str:
    """The Python source the translated tier runs for ``program`` (for reading and tests)."""
    ops = program.ops if ops is None else ops
    ids = {op.imm for op in ops if isinstance(op, Call) and op.kind == 0}
    values = [vm.resolve_ldimm64(program, op) for op in ops if isinstance(op, LdImm64)]
    direct, maps = bindings(vm.helpers, ids, vm.env, values)
    return Translator(vm, program, ops, pointers=packet_pointers(vm.ctx), direct=direct,
                      maps=_sizes(maps)).source()


_SIZED = re.compile(r"\b(K|ZS)(\d+)\(")
_GROUPED = re.compile(r"\b(FU|FP)_(\w+)\(")


@cache
def _sized(kind: str, size: int) -> Callable[..., object]:
    """``K<size>(buf, off)``: ``(size bytes at off,)``; ``ZS<size>(buf, off)``: zero them."""
    if kind == "K":
        return struct.Struct(f"{size}s").unpack_from
    return struct.Struct(f"{size}x").pack_into


@cache
def _grouped(kind: str, fmt: str) -> Callable[..., object]:
    """``FU_<fmt>``/``FP_<fmt>``: a group of writes' struct, read and written (.group)."""
    layout = struct.Struct("<" + fmt)
    return layout.unpack_from if kind == "FU" else layout.pack_into


def _bind_sized(namespace: dict[str, object], source: str) -> None:
    """Bind the ``K<size>``/``ZS<size>`` and ``FU_<fmt>``/``FP_<fmt>`` names ``source``
    calls."""
    for kind, size in set(_SIZED.findall(source)):
        namespace[f"{kind}{size}"] = _sized(kind, int(size))
    for kind, fmt in set(_GROUPED.findall(source)):
        namespace[f"{kind}_{fmt}"] = _grouped(kind, fmt)


def _sizes(maps: dict[int, MapLike]) -> dict[int, tuple[int, int]]:
    return {handle: (m.key_size, m.value_size) for handle, m in maps.items()}


class Translated(_Runner):
    """A program compiled to Python functions, bound to one :class:`~tcemu.bpf.vm.Vm`."""

    def __init__(self, vm: Vm, program: Program, ops: Sequence[Op | None]) -> None:
        self.vm = vm
        self.program = program
        self.ops = ops
        # Every check translation makes, in slot order, also on a cache hit.
        resolved: dict[int, int] = {}
        ctx: list[Op] = []
        helpers: set[int] = set()
        for op in ops:
            if isinstance(op, LdImm64):
                resolved[op.pc] = vm.resolve_ldimm64(program, op)
            elif isinstance(op, Call):
                vm.check_call(op)
                if op.kind != isa.PSEUDO_CALL:
                    helpers.add(op.imm)
            elif isinstance(op, CtxLoad | CtxStore):
                ctx.append(op)
        pointers = packet_pointers(vm.ctx) if ctx else ()
        direct, maps = bindings(vm.helpers, helpers, vm.env, resolved.values())
        sizes = _sizes(maps)
        key = (program.to_bytes(), tuple(ctx), tuple(resolved.values()), pointers,
               tuple(sorted(direct)), tuple(sorted(sizes.items())))
        compiled = CODE_CACHE.get(key)
        if compiled is None:
            tr = Translator(vm, program, ops, resolved, pointers, direct, sizes)
            heads = tr.prepare()
            source = "\n".join(tr.out.lines) + "\n"
            filename = f"<tcemu-jit {program.name or 'prog'} #{next(_SERIAL)}>"
            main = _Code(source, compile(source, filename, "exec"), filename, tr.out.info)
            compiled = _Compiled(main, tuple(heads), tr if heads else None)
            CODE_CACHE.put(key, compiled)
        self.compiled = compiled
        self.source = compiled.main.source
        self.filename = compiled.main.filename
        self.line_info: dict[int, LineInfo] = compiled.main.line_info
        self.files = {self.filename: self.line_info}    # filename -> its line table
        self.namespace = self._namespace(helpers)
        for handle, found in maps.items():
            for call in direct.values():
                self.namespace[method_name(call, handle)] = getattr(found, call.method)
        self.seg: dict[int, Callable[..., tuple[int, ...]]] = {
            pc: partial(self._first, pc) for pc in compiled.heads}
        self.namespace["SEG"] = self.seg
        _bind_sized(self.namespace, compiled.main.source)
        exec(compiled.main.code, self.namespace)
        self.subs: dict[int, Callable[..., int]] = {
            start: self.namespace[f"sub_{start}"]  # type: ignore[misc]
            for start in program.subprogs}
        self.entry = self.subs[0]

    def _first(self, pc: int, *args: int) -> tuple[int, ...]:
        """The first entry into segment ``pc``: compile it (unless a runner of the same
        program did), bind it, and run it; later entries call it directly."""
        seg = self.compiled.segment(pc)
        _bind_sized(self.namespace, seg.source)
        exec(seg.code, self.namespace)
        fn: Callable[..., tuple[int, ...]] = self.namespace[f"seg_{pc}"]  # type: ignore[assignment]
        self.files[seg.filename] = seg.line_info
        self.seg[pc] = fn
        return fn(*args)

    @property
    def line_pc(self) -> dict[int, int]:
        """Line number of the generated source -> slot of the op it belongs to."""
        return {line: info[0] for line, info in self.line_info.items()}

    def _namespace(self, helpers: set[int]) -> dict[str, object]:
        vm = self.vm
        ns: dict[str, object] = dict(sem.ENV)
        ns.update(G=vm.memory.regions, C=vm.counter, VM=vm, BUDGET=vm.budget, Z=ZEROS,
                  TOP=[mem.stack_top(d) for d in range(mem.MAX_CALL_FRAMES)],
                  LDPKT=vm.memory.load_packet, OVER=self._over, DEPTH=self._depth,
                  TAILCALL=TailCall, TAILRUN=self._tail_run,
                  CALLX=self._callx, CTXLD=vm.ctx_load, CTXST=vm.ctx_store,
                  MR=vm.memory.read)
        for size in (1, 2, 4, 8):
            ns[f"U{size}"] = mem.UNPACK[size]
            ns[f"P{size}"] = mem.PACK[size]
        for size in (1, 2, 4):
            ns[f"S{size}"] = mem.UNPACK_SIGNED[size]
        for size, unpack in _BIG.items():
            ns[f"B{size}"] = unpack
        for helper_id in helpers:
            ns[f"H{helper_id}"] = vm.helpers[helper_id]
        return ns

    def _tail_run(self, call: TailCall) -> int:
        """A tail call made in a subprogram: the target's r0 (see ``Vm.run_tail_target``)."""
        return self.vm.run_tail_target(call, "jit")

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
            raise self.fault(exc) from exc

    def fault(self, exc: BaseException) -> BaseException:
        """The fault (or budget exhaustion) an exception of generated code stands for."""
        frame: types.FrameType | None = None
        info: LineInfo | None = None
        tb = exc.__traceback__
        while tb is not None:
            lines = self.files.get(tb.tb_frame.f_code.co_filename)
            if lines is not None:
                frame, info = tb.tb_frame, lines.get(tb.tb_lineno)
            tb = tb.tb_next
        if frame is None or info is None:
            return exc  # not from generated code: a host bug, re-raise as is
        pc, base, count_expr = info
        local = dict(frame.f_locals)
        if eval(count_expr, self.namespace, local) > self.vm.budget:
            return self._over(pc)
        regs = [int(local.get(f"r{i}", 0)) for i in range(11)]
        op = self.ops[pc]
        assert op is not None
        if base is not None:
            value = int(eval(base, self.namespace, local))
            regs[op.src if isinstance(op, Load) else op.dst
                 if isinstance(op, Store | Atomic) else 0] = value
        return fault_for(op, regs, self.vm.memory, exc)
