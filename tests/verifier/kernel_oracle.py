"""The kernel oracle of the verifier corpus: load a case into the running kernel.

:func:`kernel_verdict` creates the case's maps (``BPF_MAP_CREATE``), patches their fds into
the LD_IMM64 map references, loads the program with ``BPF_PROG_LOAD`` at log level 1 and
returns whether the kernel accepted it, the error line of its log (``corpus.first_error``)
and the log itself.  Everything is closed again before it returns.

A case with ``btf: true`` is loaded with BTF func info: a BTF object (``BPF_BTF_LOAD``)
with one static function ``int fN(void)`` per subprogram, and ``func_info`` naming them,
as libbpf passes for a C object.  Only BTF func info: no line info, no types of maps.

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

__all__ = ["KernelVerdict", "func_info_btf", "kernel_verdict", "patch_map_fds", "record",
           "subprog_starts"]

LOG_SIZE = 1 << 20
_LDDW = isa.LD | isa.IMM | isa.DW
_CALL = isa.JMP | isa.CALL
_BPF_PROG_LOAD = 5
_BPF_BTF_LOAD = 18
_BTF_KIND_INT, _BTF_KIND_FUNC, _BTF_KIND_FUNC_PROTO = 1, 12, 13
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


def subprog_starts(insns: bytes) -> list[int]:
    """Slot of every subprogram: 0, bpf-to-bpf call targets and ``func[...]`` targets."""
    starts = {0}
    for off in range(0, len(insns), 8):
        code, regs, _, imm = struct.unpack_from("<BBhi", insns, off)
        pc = off // 8
        if (code == _CALL and regs >> 4 == isa.PSEUDO_CALL) or (
                code == _LDDW and regs >> 4 == isa.PSEUDO_FUNC):
            starts.add(pc + imm + 1)
    return sorted(starts)


def func_info_btf(count: int) -> bytes:
    """A BTF blob: ``int``, ``int (void)`` and ``count`` static FUNCs ``f0``..: type ids
    1, 2 and 3.. (include/uapi/linux/btf.h)."""
    names = b"\0int\0" + b"".join(f"f{i}\0".encode() for i in range(count))
    types = struct.pack("<IIII", 1, _BTF_KIND_INT << 24, 4, (1 << 24) | 32)   # signed 32-bit
    types += struct.pack("<III", 0, _BTF_KIND_FUNC_PROTO << 24, 1)
    at = len(b"\0int\0")
    for i in range(count):
        types += struct.pack("<III", at, _BTF_KIND_FUNC << 24, 2)
        at += len(f"f{i}\0")
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(names))
    return header + types + names


def _btf_load(blob: bytes) -> syscall.MapFd:
    """BPF_BTF_LOAD; the fd is wrapped in an owned-fd object so it gets closed."""
    buf = bytearray(blob)
    attr = bytearray(syscall.ATTR_SIZE)
    struct.pack_into("<QQII", attr, 0, syscall._addr(buf), 0, len(buf), 0)
    fd = syscall._sys_bpf(_BPF_BTF_LOAD, attr)
    if fd < 0:
        raise KernelError(f"load BTF: errno {-fd}", errno=-fd)
    return syscall.MapFd(fd, map_type=0, key_size=0, value_size=0, max_entries=0)


def _load(insns: bytes, case: Case, log_level: int, log_size: int,
          btf_fd: int = 0) -> tuple[int, str]:
    """One BPF_PROG_LOAD (retried only on EAGAIN): (fd or -errno, log).

    With ``btf_fd`` the program carries BTF func info: one ``fN`` per subprogram.
    """
    code = bytearray(insns)
    lic = bytearray(case.license.encode() + b"\0")
    log = bytearray(log_size if log_level else 0)
    starts = subprog_starts(insns) if btf_fd else []
    finfo = bytearray(b"".join(struct.pack("<II", at, 3 + i) for i, at in enumerate(starts)))
    attr = bytearray(syscall.ATTR_SIZE)
    struct.pack_into("<IIQQIIQII", attr, 0, int(case.prog_type), len(code) // 8,
                     syscall._addr(code), syscall._addr(lic), log_level, len(log),
                     syscall._addr(log), 0, case.prog_flags)
    if btf_fd:
        struct.pack_into("<IIQI", attr, 72, btf_fd, 8, syscall._addr(finfo), len(starts))
    for _ in range(5):  # EAGAIN: a signal interrupted the verifier
        ret = syscall._sys_bpf(_BPF_PROG_LOAD, attr)
        if ret != -errno.EAGAIN:
            break
    end = log.find(0)
    return ret, log[: end if end >= 0 else len(log)].decode("utf-8", "replace")


def kernel_verdict(case: Case, log_level: int = 1) -> KernelVerdict:
    """Load ``case`` into the running kernel; raises KernelError if a map cannot be made.

    ``log_level`` 2 logs every state; the error line (:func:`first_error`) is the same.
    """
    with ExitStack() as stack:
        fds = []
        for m in case.maps:
            made = syscall.map_create(int(m.type), m.key_size, m.value_size, m.max_entries,
                                      map_flags=m.flags)
            stack.callback(made.close)
            fds.append(made.fd)
        insns = patch_map_fds(case.insns, fds)
        btf_fd = 0
        if case.btf:
            btf = _btf_load(func_info_btf(len(subprog_starts(insns))))
            stack.callback(btf.close)
            btf_fd = btf.fd
        ret, log = _load(insns, case, log_level, LOG_SIZE * (8 if log_level > 1 else 1),
                         btf_fd)
        if ret == -errno.ENOSPC:
            ret, _ = _load(insns, case, 0, 0, btf_fd)
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
