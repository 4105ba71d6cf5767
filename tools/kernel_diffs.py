"""Write docs/kernel-diffs.md: every deliberate difference from the kernel, from the code.

Each difference is marked where it is made with a ``KERNEL-DIFF:`` comment or docstring
paragraph (DEVELOPERS.md, "Rules of the house"); this script collects them, so the list
cannot drift from the code.  ``tests/test_project.py`` fails when the committed file is not
what this script writes.

    python tools/kernel_diffs.py            # rewrite docs/kernel-diffs.md
    python tools/kernel_diffs.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "kernel-diffs.md"
TAG = "KERNEL-DIFF:"

HEADER = """# Where tcemu differs from the kernel

tcemu's reference is the Linux kernel: for the same program and packet it must give the
same return code, bytes, skb fields and map contents. Where it deliberately does not (a
mechanism not modelled, a nondeterministic kernel value replaced by a seeded one), the
code says so with a `KERNEL-DIFF:` note at the place where the difference is made. This
page lists every one of them; it is generated from the code by `tools/kernel_diffs.py`
(a test checks that it is current), so it is complete by construction.

"""


def _note(lines: list[str], at: int) -> str:
    """The text of the note that starts on line ``at``: the rest of that line, then the
    comment lines (``#``) or docstring lines that continue it, up to a blank line."""
    first = lines[at]
    comment = first.lstrip().startswith("#") or "# KERNEL-DIFF" in first
    text = [first.split(TAG, 1)[1].strip()]
    for line in lines[at + 1:]:
        stripped = line.strip()
        if comment:
            if not stripped.startswith("#") or TAG in stripped:
                break
            stripped = stripped.lstrip("#").strip()
            if not stripped:
                break
        elif not stripped or stripped.startswith(('"""', "'''")) or TAG in stripped:
            break
        text.append(stripped.rstrip('"').rstrip())
    joined = " ".join(part for part in text if part)
    return re.sub(r"\s+", " ", joined).strip()


def collect() -> list[tuple[str, int, str]]:
    """(path relative to the repository, line, note) for every note, in path order."""
    found = []
    for path in sorted((ROOT / "tcemu").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if TAG in line:
                found.append((path.relative_to(ROOT).as_posix(), i + 1, _note(lines, i)))
    return found


def render() -> str:
    notes = collect()
    out = [HEADER, f"{len(notes)} notes in {len({p for p, _, _ in notes})} modules.\n"]
    areas: dict[str, list[tuple[str, int, str]]] = {}
    for note in notes:
        areas.setdefault(note[0].rsplit("/", 1)[0], []).append(note)
    for area in sorted(areas):
        out.append(f"\n## `{area}/`\n\n| where | what tcemu does differently |\n|---|---|")
        for path, line, text in areas[area]:
            cell = text.replace("|", "\\|")
            out.append(f"| [`{path.rsplit('/', 1)[1]}:{line}`](../{path}#L{line}) | {cell} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python tools/kernel_diffs.py",
                  file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
