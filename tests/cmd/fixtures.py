"""Reading ``fixtures/iproute2_errors.txt`` (written by ``record_fixtures.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ERRORS = Path(__file__).parent / "fixtures" / "iproute2_errors.txt"


@dataclass(frozen=True)
class RecordedError:
    command: str
    status: int
    message: str


def recorded_errors() -> list[RecordedError]:
    out = []
    lines = ERRORS.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("$ "):
            command, _, status = line[2:].rpartition("  [")
            out.append(RecordedError(command, int(status.rstrip("]")), lines[i + 1]))
    return out
