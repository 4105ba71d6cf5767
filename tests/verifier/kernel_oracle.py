"""The kernel oracle of the verifier corpus: load a case into the running kernel.

:func:`kernel_verdict` creates the case's maps (``BPF_MAP_CREATE``), patches their fds into
the LD_IMM64 map references, loads the program with ``BPF_PROG_LOAD`` at log level 1 and
returns whether the kernel accepted it, the error line of its log (``corpus.first_error``)
and the log itself.  Everything is closed again before it returns.

The log buffer is 1 MiB.  A program whose level-1 log is longer (the 1M-instruction cases)
is loaded once more without a log to learn the verdict: the kernel's rotating log keeps
the tail, which holds the error line, but reports ENOSPC instead of the verdict.

Run as a script to record the kernel's verdicts into the case files (``expect:`` lines),
printing every change::

    python -m tests.verifier.kernel_oracle record [CASE_ID_SUBSTRING ...]
    python -m tests.verifier.kernel_oracle record-prevail    # rewrites corpus/prevail.json
    python -m tests.verifier.kernel_oracle show CASE_ID       # the full log of one case
"""

from __future__ import annotations

import errno
import json
import re
import struct
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from tcemu.bpf import isa
from tcemu.errors import KernelError
from tcemu.kernel import syscall
from tests.verifier.corpus import CORPUS_DIR, Case, first_error, load_cases, load_own_cases

__all__ = ["KernelVerdict", "kernel_verdict", "patch_map_fds", "record"]

LOG_SIZE = 1 << 20
_LDDW = isa.LD | isa.IMM | isa.DW
_MAP_PSEUDOS = (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_VALUE)


class KernelVerdict(NamedTuple):
    """What the kernel said: accepted, the log's error line (None if accepted), the log."""

    accepted: bool
    error: str | None
    log: str


def patch_map_fds(insns: bytes, fds: list[int]) -> bytes:
    """``insns`` with the imm of every LD_IMM64 map reference (an index) set to its fd."""
    out = bytearray(insns)
    for off in range(0, len(out), 8):
        code, regs, _, imm = struct.unpack_from("<BBhi", out, off)
        if code == _LDDW and regs >> 4 in _MAP_PSEUDOS and 0 <= imm < len(fds):
            struct.pack_into("<i", out, off + 4, fds[imm])
    return bytes(out)


def _load(insns: bytes, case: Case, log_level: int, log_size: int) -> tuple[int, str]:
    """One BPF_PROG_LOAD without retries: (fd or -errno, log)."""
    spec = syscall._ProgSpec(insns=insns, prog_type=int(case.prog_type),
                             license=case.license.encode(), log_level=log_level, name=b"",
                             expected_attach_type=0, prog_flags=case.prog_flags)
    for _ in range(5):  # EAGAIN: a signal interrupted the verifier
        ret, log, _ = syscall._prog_load_once(spec, log_size if log_level else 0)
        if ret != -errno.EAGAIN:
            return ret, log
    return ret, log


def kernel_verdict(case: Case) -> KernelVerdict:
    """Load ``case`` into the running kernel; raises KernelError if a map cannot be made."""
    with ExitStack() as stack:
        fds = []
        for m in case.maps:
            made = syscall.map_create(int(m.type), m.key_size, m.value_size, m.max_entries,
                                      map_flags=m.flags)
            stack.callback(made.close)
            fds.append(made.fd)
        insns = patch_map_fds(case.insns, fds)
        ret, log = _load(insns, case, 1, LOG_SIZE)
        if ret == -errno.ENOSPC:
            ret, _ = _load(insns, case, 0, 0)
        if ret >= 0:
            syscall.ProgFd(ret, log).close()
            return KernelVerdict(True, None, log)
        return KernelVerdict(False, first_error(log), log)


# --- recording ------------------------------------------------------------------------------


def _expect_text(verdict: KernelVerdict) -> str:
    error = "null" if verdict.error is None else json.dumps(verdict.error)
    return f"{{accepted: {'true' if verdict.accepted else 'false'}, error: {error}}}"


def _set_expect(path: Path, name: str, text: str) -> bool:
    """Rewrite the ``expect:`` line of case ``name`` in ``path``; whether it changed."""
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines)
                  if re.fullmatch(rf"\s*- name: {re.escape(name)}\s*", line)), None)
    if start is None:
        raise KeyError(f"{path}: no line '- name: {name}'")
    indent = len(lines[start]) - len(lines[start].lstrip()) + 2
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if re.match(r"\s*- name: ", line):
            break
        if line.startswith(" " * indent + "expect:"):
            new = " " * indent + f"expect: {text}\n"
            if line == new:
                return False
            lines[i] = new
            path.write_text("".join(lines))
            return True
    raise KeyError(f"{path}: case {name} has no one-line 'expect:'")


def record(patterns: list[str]) -> int:
    """Run every own case (matching one of ``patterns``) on the kernel; update its expect."""
    changed = 0
    for case in load_own_cases():
        if patterns and not any(p in case.id for p in patterns):
            continue
        verdict = kernel_verdict(case)
        text = _expect_text(verdict)
        if _set_expect(CORPUS_DIR.parent / case.path, case.name, text):
            changed += 1
            print(f"{case.id}: {text}   (covers {case.covers})")
    print(f"{changed} expectations changed", file=sys.stderr)
    return 0


def record_prevail() -> int:
    """Run every adapted PREVAIL case on the kernel; rewrite ``corpus/prevail.json``."""
    from tests.verifier.prevail_cases import EXPECT_FILE, adapt_all, load_expectations, to_case

    old = load_expectations()
    new: dict[str, dict[str, object]] = {}
    for item in adapt_all()[0]:
        verdict = kernel_verdict(to_case(item, {"accepted": True}))
        new[item.id] = {"accepted": verdict.accepted, "error": verdict.error}
        if old.get(item.id) != new[item.id]:
            print(f"{item.id}: {new[item.id]}")
    EXPECT_FILE.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    print(f"{len(new)} PREVAIL cases recorded", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "record":
        return record(argv[1:])
    if argv == ["record-prevail"]:
        return record_prevail()
    if len(argv) == 2 and argv[0] == "show":
        case = next(c for c in load_cases() if c.id == argv[1])
        try:
            verdict = kernel_verdict(case)
        except KernelError as err:
            print(err)
            return 1
        print(verdict.log)
        print(f"accepted={verdict.accepted} error={verdict.error!r}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
