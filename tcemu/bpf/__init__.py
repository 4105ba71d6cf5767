"""The eBPF core: instructions, programs, the two execution tiers."""

from __future__ import annotations

from tcemu.bpf.isa import Insn
from tcemu.bpf.program import Program
from tcemu.bpf.vm import ExecResult, Vm

__all__ = ["ExecResult", "Insn", "Program", "Vm"]
