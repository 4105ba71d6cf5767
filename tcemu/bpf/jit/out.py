"""The generated text and what each of its lines means for fault reports."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chain", "LineInfo", "Out"]

LineInfo = tuple[int, str | None, str]
"""(slot of the op, expression of its base register or None, expression of the exact
instruction count when that op executes) for a line that may raise."""


@dataclass(slots=True)
class Chain:
    """Blocks that fall into each other and share one ``n += <total>`` line (see
    ``Translator.block``): where that line is, the ``n -= <rest>`` lines on the branches
    that leave the chain early, the block expected next (index, indentation), and the
    ``if`` line of a branch that left it just now (index, indentation of its body)."""

    count_line: int
    total: int
    decs: list[tuple[int, int]]
    expect: tuple[int, int]
    pending: tuple[int, int] | None = None


@dataclass(slots=True)
class Out:
    """Source lines (indentation: one space per level) and the lines that may raise."""

    lines: list[str] = field(default_factory=list)
    info: dict[int, LineInfo] = field(default_factory=dict)

    def put(self, ind: int, text: str, info: LineInfo | None = None) -> None:
        self.lines.append(" " * ind + text)
        if info is not None:
            self.info[len(self.lines)] = info

    def splice(self, other: Out) -> None:
        """Append ``other`` (built separately) with its line numbers shifted."""
        shift = len(self.lines)
        self.lines.extend(other.lines)
        for line, info in other.info.items():
            self.info[line + shift] = info

    def grow(self, chain: Chain, size: int) -> None:
        """Add a block of ``size`` insns to ``chain``: its first line's total, the counts
        of the lines that may fault in it so far, and what each early exit takes back."""
        lines, info = self.lines, self.info
        if chain.pending is not None:
            at, ind = chain.pending
            lines.insert(at + 1, " " * ind + f"n -= {size}")
            chain.decs.append((at + 1, 0))
        chain.decs = [(at, back + size) for at, back in chain.decs]
        for at, back in chain.decs:
            text = lines[at]
            lines[at] = text[:len(text) - len(text.lstrip())] + f"n -= {back}"
        chain.total += size
        text = lines[chain.count_line]
        lines[chain.count_line] = text[:len(text) - len(text.lstrip())] + f"n += {chain.total}"
        for line in range(chain.count_line + 2, len(lines) + 1):
            entry = info.get(line)
            if entry is not None:
                count = entry[2]
                rest = int(count[4:]) if count.startswith("n - ") else 0
                assert count == ("n" if not rest else f"n - {rest}"), count
                info[line] = (entry[0], entry[1], f"n - {rest + size}")
