"""Loading a clang object with libbpf (ctypes), one verifier verdict per program.

``bpftool prog loadall`` (:func:`tcemu.kernel.objinfo.load_object`) loads every program of
an object or none: one program the verifier rejects fails the whole object.  A scenario
needs more: the kernel's own verdict and log for *each* program (a lesson may ship a
program the verifier must reject next to one it accepts), and the accepted ones loaded
once, sharing the object's maps.  :func:`load_each` does that with the system's
``libbpf.so.1``:

1. open the object and load it whole; if that works every program is accepted;
2. otherwise load it once per program with only that program auto-loaded (maps are
   created and freed each time), keeping the verifier log of the ones that fail;
3. load it once more with only the accepted programs: their fds and the object's map fds
   live until :meth:`LibbpfObject.close`.

Mirrors libbpf's ``bpf_object__open_file`` / ``bpf_object__load`` (tools/lib/bpf) and
``kernel/bpf/syscall.c`` ``bpf_prog_load``.  Program types come from section names as
libbpf decides them (``tc``/``classifier`` → SCHED_CLS, ``action`` → SCHED_ACT).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tcemu.errors import KernelError

__all__ = ["LibbpfMap", "LibbpfObject", "LibbpfProgram", "error_lines", "load_each"]

_LOG_SIZE = 4 << 20


@dataclass(frozen=True)
class LibbpfProgram:
    name: str
    section: str
    fd: int                 # -1 when the verifier rejected it
    accepted: bool
    error: str = ""         # the verifier's error line
    log: str = ""


@dataclass(frozen=True)
class LibbpfMap:
    name: str
    fd: int
    key_size: int
    value_size: int


@dataclass
class LibbpfObject:
    """An object loaded by libbpf: programs (in ELF order) and maps by name."""

    path: Path
    programs: list[LibbpfProgram] = field(default_factory=list)
    maps: dict[str, LibbpfMap] = field(default_factory=dict)
    _handle: int | None = None

    def program(self, *, name: str | None = None, section: str | None = None
                ) -> LibbpfProgram:
        """The first program named ``name`` and/or in ``section`` (as ``tc ... sec``)."""
        for prog in self.programs:
            if (name is None or prog.name == name) and (section is None
                                                         or prog.section == section):
                return prog
        sections = ", ".join(sorted({p.section for p in self.programs}))
        raise KernelError(f"{self.path.name}: no program {name or ''} in section "
                          f"{section!r} (sections: {sections})", errno=errno.ENOENT)

    def close(self) -> None:
        """Close the object: every program and map fd libbpf holds."""
        if self._handle is not None:
            _lib().bpf_object__close(ctypes.c_void_p(self._handle))
            self._handle = None


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as err:
        raise KernelError(f"load object: libbpf is not installed ({err})",
                          errno=errno.ENOENT, missing_feature="library/libbpf") from err
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    signatures: dict[str, tuple[list[type], type | None]] = {
        "bpf_object__open_file": ([cp, vp], vp),
        "bpf_object__load": ([vp], ctypes.c_int),
        "bpf_object__close": ([vp], None),
        "bpf_object__next_program": ([vp, vp], vp),
        "bpf_object__next_map": ([vp, vp], vp),
        "bpf_program__name": ([vp], cp),
        "bpf_program__section_name": ([vp], cp),
        "bpf_program__set_autoload": ([vp, ctypes.c_bool], ctypes.c_int),
        "bpf_program__set_log_buf": ([vp, vp, ctypes.c_size_t], ctypes.c_int),
        "bpf_program__set_log_level": ([vp, ctypes.c_uint32], ctypes.c_int),
        "bpf_program__fd": ([vp], ctypes.c_int),
        "bpf_map__name": ([vp], cp),
        "bpf_map__fd": ([vp], ctypes.c_int),
        "bpf_map__key_size": ([vp], ctypes.c_uint32),
        "bpf_map__value_size": ([vp], ctypes.c_uint32),
        "libbpf_set_print": ([vp], vp),
    }
    for symbol, (args, res) in signatures.items():
        fn = getattr(lib, symbol)
        fn.argtypes, fn.restype = args, res
    lib.libbpf_set_print(None)          # no libbpf chatter on stderr; logs come back here
    return lib


def _open(path: Path) -> int:
    lib = _lib()
    handle = lib.bpf_object__open_file(os.fsencode(path), None)
    if not handle:
        err = ctypes.get_errno() or errno.EINVAL
        raise KernelError(f"open object {path.name}: {os.strerror(err)}", errno=err)
    return int(handle)


def _programs(handle: int) -> list[int]:
    lib, prog = _lib(), None
    out: list[int] = []
    while True:
        prog = lib.bpf_object__next_program(ctypes.c_void_p(handle), prog)
        if not prog:
            return out
        out.append(int(prog))


def _maps(handle: int) -> list[int]:
    lib, item = _lib(), None
    out: list[int] = []
    while True:
        item = lib.bpf_object__next_map(ctypes.c_void_p(handle), item)
        if not item:
            return out
        out.append(int(item))


def _name(prog: int) -> str:
    return (_lib().bpf_program__name(ctypes.c_void_p(prog)) or b"").decode()


def _try_alone(path: Path, index: int) -> tuple[bool, str]:
    """Load only the ``index``-th program of ``path``; (accepted, verifier log)."""
    lib = _lib()
    handle = _open(path)
    log = ctypes.create_string_buffer(_LOG_SIZE)
    try:
        for n, prog in enumerate(_programs(handle)):
            lib.bpf_program__set_autoload(ctypes.c_void_p(prog), n == index)
            if n == index:
                lib.bpf_program__set_log_buf(ctypes.c_void_p(prog),
                                             ctypes.cast(log, ctypes.c_void_p), _LOG_SIZE)
                lib.bpf_program__set_log_level(ctypes.c_void_p(prog), 1)
        ret = lib.bpf_object__load(ctypes.c_void_p(handle))
        return ret == 0, log.value.decode(errors="replace")
    finally:
        lib.bpf_object__close(ctypes.c_void_p(handle))


_INSN_LINE = re.compile(r"^\d+: \(|^; |^\d+: R\d|^from \d+ to \d+")
_STATS = ("processed ", "verification time", "stack depth", "mark_read", "libbpf:")


def error_lines(log: str) -> str:
    """The verifier's error: every line after the last instruction line, statistics
    excluded (the kernel may explain one error in several lines, e.g. "invalid access to
    packet, ..." then "R1 offset is outside of the packet")."""
    lines: list[str] = []
    for line in reversed(log.splitlines()):
        text = line.strip()
        if not text or text.startswith(_STATS):
            if lines:
                break
            continue
        if _INSN_LINE.match(text):
            break
        lines.append(text)
    return "\n".join(reversed(lines))


def load_each(obj: str | Path) -> LibbpfObject:
    """Load ``obj``'s programs, each judged by the verifier on its own (module doc)."""
    path = Path(obj).resolve()
    if not path.is_file():
        raise KernelError(f"load object: no such file {path}", errno=errno.ENOENT)
    lib = _lib()
    handle = _open(path)
    progs = _programs(handle)
    if lib.bpf_object__load(ctypes.c_void_p(handle)) == 0:
        verdicts: dict[int, tuple[bool, str]] = dict.fromkeys(range(len(progs)), (True, ""))
    else:
        lib.bpf_object__close(ctypes.c_void_p(handle))
        verdicts = {n: _try_alone(path, n) for n in range(len(progs))}
        handle = _open(path)
        progs = _programs(handle)
        for n, prog in enumerate(progs):
            lib.bpf_program__set_autoload(ctypes.c_void_p(prog), verdicts[n][0])
        if any(ok for ok, _ in verdicts.values()):
            ret = lib.bpf_object__load(ctypes.c_void_p(handle))
            if ret != 0:
                lib.bpf_object__close(ctypes.c_void_p(handle))
                raise KernelError(f"load object {path.name}: the accepted programs do not "
                                  f"load together: {os.strerror(-ret)}", errno=-ret)
    loaded = LibbpfObject(path=path, _handle=handle)
    for n, prog in enumerate(progs):
        ok, log = verdicts[n]
        section = (lib.bpf_program__section_name(ctypes.c_void_p(prog)) or b"").decode()
        fd = lib.bpf_program__fd(ctypes.c_void_p(prog)) if ok else -1
        loaded.programs.append(LibbpfProgram(_name(prog), section, fd, ok,
                                             "" if ok else error_lines(log), log))
    if any(p.accepted for p in loaded.programs):
        for item in _maps(handle):
            vp = ctypes.c_void_p(item)
            name = (lib.bpf_map__name(vp) or b"").decode()
            loaded.maps[name] = LibbpfMap(name, lib.bpf_map__fd(vp),
                                          lib.bpf_map__key_size(vp),
                                          lib.bpf_map__value_size(vp))
    return loaded
