"""Project invariants: the README quick start, CI wiring, the generated uapi module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_quick_start_has_exactly_two_commands() -> None:
    install_demo, tests = _quick_start()
    assert "tcemu demo" in install_demo
    assert "pytest" in tests
    assert "clang-19" in tests
    assert "bpftool" in tests
    for command in (install_demo, tests):
        assert "\n" not in command


def test_ci_runs_the_readme_test_command_with_the_kernel_required() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "TCEMU_REQUIRE_KERNEL=1" in ci
    assert "README.md" in ci


def test_uapi_is_generated_from_the_header() -> None:
    header = Path("/usr/include/linux/bpf.h")
    if not header.exists():
        pytest.skip("no /usr/include/linux/bpf.h to regenerate from (install linux-libc-dev)")
    fresh = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_uapi.py"), str(header)],
                           capture_output=True, text=True, check=True).stdout
    assert fresh == (ROOT / "tcemu" / "bpf" / "uapi.py").read_text()


def test_kernel_diffs_page_lists_every_note_in_the_code() -> None:
    """docs/kernel-diffs.md is what tools/kernel_diffs.py collects from the code today."""
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "kernel_diffs.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    page = (ROOT / "docs" / "kernel-diffs.md").read_text()
    tagged = sum(1 for path in (ROOT / "tcemu").rglob("*.py")
                 for line in path.read_text().splitlines() if "KERNEL-DIFF:" in line)
    assert page.count("| [`") == tagged > 30
