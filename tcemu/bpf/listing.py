"""Program listings with C source lines, as ``bpftool prog dump xlated`` prints them.

Each instruction is printed in the kernel's syntax (:mod:`tcemu.bpf.disasm`); subprogram
entries get a ``name:`` label, and where the object's ``.BTF.ext`` line info starts a new
source line, a ``; <source text>`` line precedes the instruction (bpftool's layout, with
``// file:line`` appended when ``with_files`` is set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tcemu.bpf.btf import BtfSpec
from tcemu.bpf.disasm import format_program
from tcemu.bpf.isa import Insn

__all__ = ["format_listing"]


def format_listing(insns: Sequence[Insn], *, origins: Sequence[tuple[str, int]] = (),
                   btf: BtfSpec | None = None, names: Mapping[int, str] | None = None,
                   with_files: bool = False) -> list[str]:
    """Listing lines: labels, ``; source`` lines and right-aligned ``idx: (code) text``."""
    out: list[str] = []
    width = max(len(str(len(insns))), 3)
    last_line = None
    for text in format_program(insns):
        slot_text, body = text.split(": ", 1)
        slot = int(slot_text)
        if names and slot in names:
            out.append(f"{names[slot]}:")
        if btf is not None and slot < len(origins):
            section, index = origins[slot]
            line = btf.line_for(section, index)
            if line is not None and line is not last_line and line.line:
                suffix = f" // {line.file_name}:{line.line_num}" if with_files else ""
                out.append(f"; {line.line.strip()}{suffix}")
                last_line = line
        out.append(f"{slot:>{width + 1}}: {body}")
    return out
