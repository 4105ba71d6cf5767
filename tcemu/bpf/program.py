"""A validated eBPF program: raw instructions, their decoded ops and their subprograms.

``Program`` is immutable.  ``Program.from_bytes`` and ``tcemu.bpf.assemble`` build one;
``program.run(memory, tier=...)`` executes it on a fresh default :class:`~tcemu.bpf.vm.Vm`
(no helpers, no maps), with r1 pointing to ``memory`` and r2 holding its length, as the
bpf_conformance plugin protocol specifies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

from tcemu.bpf import isa
from tcemu.bpf.isa import Insn, OpInfo
from tcemu.bpf.ops import Op, decode
from tcemu.bpf.vm import DEFAULT_BUDGET, ExecResult, HelperFn, Tier, Vm
from tcemu.errors import ExecutionError

__all__ = ["Program"]


class Program:
    """An eBPF program (one entry, any number of bpf-to-bpf subprograms)."""

    def __init__(self, insns: Sequence[Insn], *, name: str = "", validate: bool = True,
                 labels: Mapping[int, str] | None = None) -> None:
        self.insns: tuple[Insn, ...] = tuple(insns)
        self.name = name
        self.labels: dict[int, str] = dict(labels or {})
        self.rows: list[OpInfo | None] | None = isa.validate(self.insns) if validate else None
        self._init_checked: set[frozenset[int]] = set()

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
