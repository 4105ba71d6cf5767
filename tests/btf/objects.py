"""The committed test objects of tests/btf/data and readers for their reference dumps.

``btf_sections(name)`` gives the raw ``.BTF`` / ``.BTF.ext`` bytes of ``data/NAME.bpf.o``
(both are PROGBITS sections, so tests/elf_sections.py reads them).  ``parse_raw_dump`` reads
``bpftool btf dump ... format raw`` text into plain records; ``parse_line_dump`` reads the
``; file:line`` annotations of ``llvm-objdump -d -l``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tcemu.bpf.btf import BtfSpec
from tests.elf_sections import progbits_sections

DATA = Path(__file__).parent / "data"
OBJECTS = ("types", "maps", "funcs")


@cache
def btf_sections(name: str) -> tuple[bytes, bytes]:
    sections = progbits_sections(DATA / f"{name}.bpf.o")
    return sections[".BTF"], sections[".BTF.ext"]


@cache
def spec(name: str) -> BtfSpec:
    return BtfSpec.from_bytes(*btf_sections(name))


def dump_text(name: str, suffix: str) -> str:
    """A committed dump without its '#' provenance header."""
    lines = (DATA / f"{name}.{suffix}").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("#")) + "\n"


@dataclass
class DumpType:
    """One type of bpftool's raw dump: ``[id] KIND 'name' k=v ...`` and its indented lines."""

    type_id: int
    kind: str
    name: str
    attrs: dict[str, str]
    items: list[tuple[str | None, dict[str, str]]] = field(default_factory=list)


_HEAD = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_ITEM = re.compile(r"^\t(?:'([^']*)')?(.*)$")
_KV = re.compile(r"(\w+)=([^\s,]+)")


def _attrs(text: str) -> dict[str, str]:
    # A DATASEC entry ends in "(VAR 'name')", a restatement of its target: not an attribute.
    return dict(_KV.findall(re.sub(r"\(\w+ '[^']*'\)", "", text)))


def parse_raw_dump(text: str) -> list[DumpType]:
    out: list[DumpType] = []
    for line in text.splitlines():
        if not line:
            continue
        head = _HEAD.match(line)
        if head:
            out.append(DumpType(int(head[1]), head[2], head[3], _attrs(head[4])))
            continue
        item = _ITEM.match(line)
        assert item, f"unexpected bpftool line {line!r}"
        assert out, f"bpftool line {line!r} before any type"
        out[-1].items.append((item[1], _attrs(item[2])))
    return out


@dataclass(frozen=True)
class LineMark:
    section: str
    insn: int
    line_num: int


def parse_line_dump(text: str) -> list[LineMark]:
    """Every ``; file:N`` annotation, attached to the instruction slot that follows it."""
    marks, section, pending = [], "", None
    for line in text.splitlines():
        if m := re.match(r"Disassembly of section (.*):$", line):
            section = m[1]
        elif m := re.match(r"; \S+:(\d+)$", line):
            pending = int(m[1])
        elif (m := re.match(r"\s+(\d+):\t", line)) and pending is not None:
            marks.append(LineMark(section, int(m[1]), pending))
            pending = None
    return marks
