"""The eBPF core: instructions, programs, the assembler and printer, two execution tiers.

``assemble(text)`` and ``Program.from_bytes(data)`` build a :class:`Program`;
``program.run(memory, tier="interp" | "jit")`` runs it with r1 = memory, r2 = its length.
``load_object(path)`` loads a clang-built object: ``.programs[fn].test_run(data)`` runs a
program like BPF_PROG_TEST_RUN, ``.maps[name]`` are its maps.  ``verify(program)`` runs
the verifier and returns its log, or raises ``VerifierError`` with the kernel-style log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu.bpf.asm import assemble
from tcemu.bpf.collection import Collection, load_object
from tcemu.bpf.disasm import format_insn, format_program
from tcemu.bpf.isa import Insn
from tcemu.bpf.program import Program
from tcemu.bpf.vm import ExecResult, ProgramExit, TailCall, Vm

if TYPE_CHECKING:
    from tcemu.bpf.verifier import VerifierError, verify

__all__ = ["Collection", "ExecResult", "Insn", "Program", "ProgramExit", "TailCall",
           "VerifierError", "Vm", "assemble", "format_insn", "format_program", "load_object",
           "verify"]


def __getattr__(name: str) -> object:
    # The verifier imports tcemu.skb, which imports tcemu.bpf: load it on first use so
    # that importing tcemu.skb (or tcemu.net) first does not make a cycle.
    if name in ("verify", "VerifierError"):
        from tcemu.bpf import verifier

        return getattr(verifier, name)
    raise AttributeError(f"module 'tcemu.bpf' has no attribute {name!r}")
