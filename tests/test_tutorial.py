"""docs/tutorial.md stays true: every command in its ``sh`` blocks runs as written (from
docs/tutorial, in a copy), and every line of its plain output blocks is printed by one of
them.  ``tcemu diff`` needs the kernel and is its own test."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tcemu.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "tutorial.md"
FILES = ROOT / "docs" / "tutorial"


def _blocks(lang: str) -> list[list[str]]:
    """The fenced blocks whose info string is ``lang`` ("" for plain ones)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    inside = False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            if inside:
                if current is not None:
                    blocks.append(current)
                current, inside = None, False
            else:
                inside = True
                current = [] if line[3:].strip() == lang else None
        elif current is not None:
            current.append(line)
    return blocks


def _commands() -> list[str]:
    out = []
    for block in _blocks("sh"):
        for line in block:
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                out.append(command)
    return out


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of docs/tutorial at the same depth below a tree that has pcaps/."""
    work = tmp_path / "docs" / "tutorial"
    shutil.copytree(FILES, work, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pcaps").symlink_to(ROOT / "pcaps")
    monkeypatch.chdir(work)
    return work


def test_the_commands_run_and_print_what_the_tutorial_shows(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands()
    assert len(commands) >= 14
    printed: list[str] = []
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "tcemu" and argv[1] == "diff":
            continue                                   # test_diff_with_the_kernel
        if argv[0] == "make":
            continue                                   # test_the_object_is_what_make_builds
        if argv[:3] == ["python3", "-m", "pytest"]:
            res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p",
                                  "no:cacheprovider", str(workdir)], cwd=ROOT,
                                 capture_output=True, text=True, check=False)
            assert res.returncode == 0, res.stdout[-2000:]
            assert "2 passed" in res.stdout
            continue
        if argv[0] == "python3":
            subprocess.run([sys.executable, *argv[1:]], check=True, capture_output=True)
            continue
        assert argv[0] == "tcemu", command
        code = main(argv[1:])
        out = capsys.readouterr().out
        assert code == 0, f"{command}: exit {code}\n{out[-2000:]}"
        printed.append(out)
    text = "\n".join(printed)
    for block in _blocks(""):
        for line in block:
            if line.strip() and not line.startswith(("16: ", "invalid access", "R1 offset",
                                                     "EQUAL")):
                assert line.rstrip() in text, f"the tutorial shows {line!r}; nobody prints it"


def test_the_rejection_it_describes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Step 2: without the UDP header check the verifier refuses, with the lines shown."""
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("clang-19 is not installed")
    source = (workdir / "port_guard.c").read_text()
    assert "if ((void *)(udp + 1) > end)" in source
    (workdir / "bad.c").write_text(source.replace("if ((void *)(udp + 1) > end)", "if (0)"))
    arch = f"/usr/include/{subprocess.check_output(['uname', '-m'], text=True).strip()}" \
        "-linux-gnu"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-I", arch, "-c", "bad.c", "-o",
                    "bad.o"], check=True, capture_output=True)
    assert main(["prog", "verify", "bad.o"]) == 1
    out = capsys.readouterr().out
    for block in _blocks(""):
        for line in block:
            if line.startswith(("16: ", "invalid access", "R1 offset")):
                assert line.split(";")[0].rstrip() in out


def test_the_object_is_what_make_builds(workdir: Path) -> None:
    if shutil.which("clang-19") is None or shutil.which("make") is None:
        pytest.skip("clang-19 or make is not installed")
    committed = (workdir / "port_guard.bpf.o").read_bytes()
    (workdir / "port_guard.bpf.o").unlink()
    tools = workdir.parent.parent / "tools"         # the Makefile includes ../../tools/bpf.mk
    tools.mkdir()
    shutil.copy(ROOT / "tools" / "bpf.mk", tools / "bpf.mk")
    subprocess.run(["make"], cwd=workdir, check=True, capture_output=True)
    assert (workdir / "port_guard.bpf.o").read_bytes() == committed, \
        "rebuild with `make -C docs/tutorial` and commit port_guard.bpf.o"


@pytest.mark.kernel
def test_diff_with_the_kernel(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    diffs = [c for c in _commands() if c.startswith("tcemu diff")]
    assert diffs
    for command in diffs:
        assert main(shlex.split(command)[1:]) == 0
        out = capsys.readouterr().out
        shown = [line for block in _blocks("") for line in block if line.startswith("EQUAL")]
        assert shown
        assert all(line in out for line in shown)
