"""A validated eBPF program: raw instructions, their decoded ops and their subprograms.

``Program`` is immutable.  ``Program.from_bytes`` and ``tcemu.bpf.assemble`` build one;
``program.run(memory, tier=...)`` executes it on a fresh default :class:`~tcemu.bpf.vm.Vm`
(no helpers, no maps), with r1 pointing to ``memory`` and r2 holding its length, as the
bpf_conformance plugin protocol specifies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from tcemu.bpf import isa
from tcemu.bpf.isa import Insn, OpInfo
from tcemu.bpf.ops import Call, CtxLoad, CtxStore, LdImm64, Load, Op, Store, decode
from tcemu.bpf.uapi import BpfProgType
from tcemu.bpf.vm import DEFAULT_BUDGET, ContextModel, ExecResult, HelperFn, Tier, Vm
from tcemu.errors import ExecutionError

if TYPE_CHECKING:
    from tcemu.bpf.btf import BtfSpec
    from tcemu.bpf.testrun import TestRunResult

__all__ = ["Program"]

# include/linux/license.h license_is_gpl_compatible()
_GPL_COMPATIBLE = frozenset({"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL",
                             "Dual MIT/GPL", "Dual MPL/GPL"})


class Program:
    """An eBPF program (one entry, any number of bpf-to-bpf subprograms)."""

    def __init__(self, insns: Sequence[Insn], *, name: str = "", validate: bool = True,
                 labels: Mapping[int, str] | None = None,
                 prog_type: BpfProgType = BpfProgType.SCHED_CLS, license: str = "GPL",
                 section: str = "") -> None:
        self.insns: tuple[Insn, ...] = tuple(insns)
        self.name = name
        self.prog_type = prog_type
        self.license = license
        self.section = section
        self.labels: dict[int, str] = dict(labels or {})
        self.rows: list[OpInfo | None] | None = isa.validate(self.insns) if validate else None
        self._init_checked: set[frozenset[int]] = set()
        self._ctx_ops: dict[object, list[Op | None]] = {}
        self._ctx_reads: dict[object, frozenset[int]] = {}
        # Set when an object is loaded: LD_IMM64 of a map (fd/idx, value) -> address,
        # the shared Vm of its collection, and source information for listings.
        self.map_resolver: Callable[[LdImm64], int] | None = None
        self.vm: Vm | None = None
        self.origins: tuple[tuple[str, int], ...] = ()
        self.btf: BtfSpec | None = None
        self.subprog_names: dict[int, str] = {}

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, *, name: str = "",
                   validate: bool = True) -> Program:
        """Decode raw ``struct bpf_insn`` bytes (little-endian), validating the structure."""
        return cls(isa.decode_bytes(data), name=name, validate=validate)

    def to_bytes(self) -> bytes:
        return isa.encode_insns(self.insns)

    def __len__(self) -> int:
        return len(self.insns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.insns == other.insns

    def __hash__(self) -> int:
        return hash(self.insns)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Program{name} {len(self.insns)} insns>"

    @cached_property
    def ops(self) -> list[Op | None]:
        """One decoded op per slot (``None`` for LD_IMM64 second halves)."""
        rows = self.rows if self.rows is not None else isa.validate(self.insns)
        self.rows = rows
        return decode(self.insns, rows)

    @cached_property
    def subprogs(self) -> list[int]:
        """First slot of every subprogram, entry first."""
        self.ops  # noqa: B018 - validates
        assert self.rows is not None
        return isa.subprog_starts(self.insns, self.rows)

    def ctx_ops(self, model: ContextModel) -> list[Op | None]:
        """The ops with every context access rewritten for ``model`` (cached per model key)."""
        cached = self._ctx_ops.get(model.key)
        if cached is None:
            from tcemu.bpf.ctxaccess import find_ctx_accesses

            cached = list(self.ops)
            for pc, acc in find_ctx_accesses(self.ops, self.subprogs, model.check).items():
                op = cached[pc]
                assert isinstance(op, Load | Store)
                if acc.write:
                    assert isinstance(op, Store)
                    cached[pc] = CtxStore(pc, op.insn, acc.size, acc.offset, op.src, op.imm)
                else:
                    assert isinstance(op, Load)
                    cached[pc] = CtxLoad(pc, op.insn, acc.size, op.dst, acc.offset)
            self._ctx_ops[model.key] = cached
        return cached

    def ctx_reads(self, model: ContextModel) -> frozenset[int]:
        """Context offsets the program loads from (e.g. does it read tstamp_type?)."""
        reads = self._ctx_reads.get(model.key)
        if reads is None:
            reads = frozenset(op.offset for op in self.ctx_ops(model) if isinstance(op, CtxLoad))
            self._ctx_reads[model.key] = reads
        return reads

    def check_initialised(self, entry: frozenset[int]) -> None:
        """Reject reads of registers no path has written, given those written at entry."""
        if entry not in self._init_checked:
            from tcemu.bpf.initcheck import check_initialised

            check_initialised(self.ops, self.subprogs, entry)
            self._init_checked.add(entry)

    def subprog_entry(self, slot: int, pc: int) -> int:
        """Check that ``slot`` starts a subprogram (for calls through a register)."""
        if slot not in self.subprogs:
            raise ExecutionError(f"callx to {slot}, which is not a subprogram entry", pc=pc)
        return slot

    @property
    def gpl_compatible(self) -> bool:
        """``license_is_gpl_compatible()`` (include/linux/license.h)."""
        return self.license in _GPL_COMPATIBLE

    def helper_calls(self) -> list[tuple[int, int]]:
        """(insn index, helper id) of every helper call."""
        return [(op.pc, op.imm) for op in self.ops
                if isinstance(op, Call) and op.kind == 0]

    def default_helpers(self) -> dict[int, HelperFn]:
        """The helpers the kernel offers this program type, after checking every call."""
        from tcemu.bpf.helpers import check_calls, helpers_for

        check_calls(self.helper_calls(), self.prog_type, self.gpl_compatible)
        return helpers_for(self.prog_type)

    def test_run(self, data: bytes, ctx: bytes | None = None, repeat: int = 1, *,
                 flags: int = 0, tier: Tier = "interp", vm: Vm | None = None,
                 ) -> TestRunResult:
        """Run like ``BPF_PROG_TEST_RUN`` (SCHED_CLS, SCHED_ACT, SOCKET_FILTER)."""
        from tcemu.bpf.testrun import prog_test_run

        return prog_test_run(self, data, ctx, repeat=repeat, flags=flags,
                             vm=vm if vm is not None else self.vm, tier=tier)

    def disasm(self) -> str:
        """The program in the kernel's syntax, one ``idx: (code) text`` line per insn."""
        from tcemu.bpf.disasm import format_program

        return "\n".join(format_program(self))

    def run(self, memory: bytes | bytearray = b"", tier: Tier = "interp", *,
            helpers: Mapping[int, HelperFn] | None = None,
            budget: int = DEFAULT_BUDGET) -> int:
        """Run on raw memory (r1 = memory, r2 = its length) and return r0."""
        return self.execute(memory, tier, helpers=helpers, budget=budget).r0

    def execute(self, memory: bytes | bytearray = b"", tier: Tier = "interp", *,
                helpers: Mapping[int, HelperFn] | None = None,
                budget: int = DEFAULT_BUDGET) -> ExecResult:
        """Like :meth:`run`, returning r0, the instruction count and the memory after."""
        vm = Vm(helpers=helpers, budget=budget)
        return vm.run(self, memory=memory, tier=tier)
