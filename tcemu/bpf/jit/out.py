"""The generated text and what each of its lines means for fault reports."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LineInfo", "Out"]

LineInfo = tuple[int, str | None, str]
"""(slot of the op, expression of its base register or None, expression of the exact
instruction count when that op executes) for a line that may raise."""


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
