"""Reader for the bpf_conformance / uBPF ``.data`` test-vector format.

A file is a sequence of ``-- section`` headers (``asm``, ``raw``, ``mem``, ``result``,
``error``, ``error pattern``, ...) each followed by its lines; ``#`` lines before the first
header are comments.  ``-- asm @ FILE`` / ``-- mem @ FILE`` read the section from a file next
to the vector (uBPF).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Vector:
    path: Path
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    def memory(self) -> bytes:
        """The ``-- mem`` bytes; tcpdump ``-x`` style ``0x0010:`` line prefixes are dropped."""
        text = re.sub(r"(?m)^\s*0x[0-9a-fA-F]+:", "", self.sections.get("mem", ""))
        return bytes.fromhex("".join(text.split()))

    def raw(self) -> bytes | None:
        """The ``-- raw`` section (64-bit little-endian words) as program bytes."""
        if "raw" not in self.sections:
            return None
        words = [int(tok, 16) for tok in self.sections["raw"].split()]
        if all(len(tok) <= 2 for tok in self.sections["raw"].split()):
            return bytes(words)  # a byte dump, not words
        return b"".join(w.to_bytes(8, "little") for w in words)

    def result(self) -> int | None:
        text = self.sections.get("result", "").strip()
        return int(text, 0) if text else None

    @property
    def expects_error(self) -> bool:
        return "error" in self.sections or "error pattern" in self.sections


def parse(path: Path) -> Vector:
    vec = Vector(path)
    current: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if current is not None:
            vec.sections[current] = "\n".join(lines)

    for line in path.read_text().splitlines():
        if line.startswith("-- "):
            flush()
            header = line[3:].strip()
            lines = []
            name, _, ref = header.partition(" @ ")
            current = name.strip()
            if ref:
                lines.append((path.parent / ref.strip()).read_text())
            continue
        if current is not None:
            lines.append(line)
    flush()
    return vec
