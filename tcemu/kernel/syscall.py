"""The ``bpf(2)`` syscall layer of the optional real-kernel backend (the test oracle).

This module owns the raw syscall entry (``syscall(__NR_bpf, cmd, &attr, size)`` through
ctypes), the byte layout of ``union bpf_attr`` from the uapi header
``include/uapi/linux/bpf.h`` for the commands used here, the file descriptors the kernel
hands back, and the translation of a negative return into :class:`~tcemu.errors.KernelError`.

Mirrored parts of ``union bpf_attr`` (offsets in bytes, little-endian, every pointer a u64):

* ``BPF_MAP_CREATE`` (0): map_type 0, key_size 4, value_size 8, max_entries 12,
  map_flags 16, inner_map_fd 20, numa_node 24, map_name[16] 28.
* ``BPF_MAP_LOOKUP_ELEM``/``UPDATE_ELEM``/``DELETE_ELEM``/``GET_NEXT_KEY`` (1-4):
  map_fd 0, key 8, value or next_key 16, flags 24.
* ``BPF_PROG_LOAD`` (5): prog_type 0, insn_cnt 4, insns 8, license 16, log_level 24,
  log_size 28, log_buf 32, kern_version 40, prog_flags 44, prog_name[16] 48,
  prog_ifindex 64, expected_attach_type 68, ..., log_true_size 140 (out, 6.4+).
* ``BPF_PROG_TEST_RUN`` (10, ``attr.test``): prog_fd 0, retval 4, data_size_in 8,
  data_size_out 12, data_in 16, data_out 24, repeat 32, duration 36, ctx_size_in 40,
  ctx_size_out 44, ctx_in 48, ctx_out 56, flags 64, cpu 68, batch_size 72.

Every attribute block is a zero-filled ``bytearray`` of :data:`ATTR_SIZE` bytes; the kernel
accepts a block larger than its own ``union bpf_attr`` as long as the tail is zero, and
zero-fills a shorter one.  Every buffer the kernel reads or writes is a ``bytearray`` held in
a local variable for the whole call.

Kernel behaviour of ``BPF_PROG_TEST_RUN`` this layer relies on (measured on 6.18, see
``net/bpf/test_run.c``):

* ``ctx_out`` may be requested without ``ctx_in``: the kernel then starts from an all-zero
  ``struct __sk_buff`` and reports it refreshed from the skb (ifindex 1 for lo, wire_len =
  packet length, the rest zero for a trivial program).  :func:`test_run` therefore always
  asks for the 192-byte ``ctx_out`` unless ``ctx_size_out=0``.
* ``data_size_out`` is a size hint: when the output packet is longer, the kernel copies a
  truncated packet, still reports retval, duration and the full length, skips ``ctx_out``
  and fails with ``-ENOSPC``.  :func:`test_run` turns that into a result with
  ``errno == ENOSPC`` instead of raising.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import struct
import sys
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from tcemu.errors import KernelError

__all__ = [
    "ATTR_SIZE",
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_TEST_SKB_CHECKSUM_COMPLETE",
    "BPF_NOEXIST",
    "DEFAULT_LOG_SIZE",
    "SK_BUFF_SIZE",
    "MapFd",
    "ProgFd",
    "TestRunResult",
    "map_create",
    "map_delete",
    "map_get_next_key",
    "map_lookup",
    "map_update",
    "probe",
    "prog_load",
    "prog_test_run",
    "test_run",
]

# --- uapi constants (include/uapi/linux/bpf.h) ---------------------------------------------

_BPF_MAP_CREATE = 0
_BPF_MAP_LOOKUP_ELEM = 1
_BPF_MAP_UPDATE_ELEM = 2
_BPF_MAP_DELETE_ELEM = 3
_BPF_MAP_GET_NEXT_KEY = 4
_BPF_PROG_LOAD = 5
_BPF_PROG_TEST_RUN = 10

BPF_ANY = 0
"""``map_update`` flag: create a new element or update an existing one."""
BPF_NOEXIST = 1
"""``map_update`` flag: create a new element only if it did not exist."""
BPF_EXIST = 2
"""``map_update`` flag: update an existing element only."""
BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 4
"""``test_run`` flag: run with ``ip_summed = CHECKSUM_COMPLETE`` and verify it afterwards."""

_PROG_TYPE_SCHED_CLS = 3
_BPF_OBJ_NAME_LEN = 16

SK_BUFF_SIZE = 192
"""``sizeof(struct __sk_buff)``: the ctx of SCHED_CLS/SCHED_ACT programs under test_run."""

ATTR_SIZE = 144
"""Bytes of ``union bpf_attr`` passed to the kernel: through ``log_true_size`` (offset 140)."""

DEFAULT_LOG_SIZE = 16 << 20
"""Default verifier log buffer (16 MiB); grown automatically when the kernel says ENOSPC."""

_LOG_SIZE_MAX = 0xFFFFFFFF >> 2  # kernel rejects log_size > UINT_MAX >> 2 with EINVAL
_LOAD_ATTEMPTS = 32  # enough to double a 128-byte log up to _LOG_SIZE_MAX
_EAGAIN_RETRIES = 5  # the verifier answers EAGAIN when a signal interrupted it
_DATA_OUT_SLACK = 64 << 10  # room for a program that grows the packet (change_tail & co)

# Syscall numbers of bpf(2) per machine (arch/x86/entry/syscalls/syscall_64.tbl: 321;
# include/uapi/asm-generic/unistd.h, used by arm64: 280).
_NR_BPF = {"x86_64": 321, "amd64": 321, "aarch64": 280, "arm64": 280}

# errno names the kernel uses but Python's errno module spells differently or lacks.
_ERRNO_NAMES = {errno.EOPNOTSUPP: "EOPNOTSUPP", errno.EDEADLK: "EDEADLK", 524: "ENOTSUPP"}
_ERRNO_TEXT = {524: "Operation is not supported"}

# Verifier log lines that summarise a run rather than explain a rejection.
_LOG_STATS_PREFIXES = ("processed ", "verification time", "stack depth", "func#")


# --- syscall entry ---------------------------------------------------------------------------


def _platform_problem() -> str | None:
    """Why this process cannot issue bpf() at all, or None."""
    if not sys.platform.startswith("linux"):
        return f"not Linux (platform {sys.platform!r})"
    if struct.calcsize("P") != 8:
        return "not a 64-bit Python"
    machine = platform.machine()
    if machine.lower() not in _NR_BPF:
        return f"unsupported architecture {machine!r} (bpf() syscall number unknown)"
    return None


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library of this process, with errno capture and a ``long`` syscall()."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _addr(buf: bytearray) -> int:
    """Address of a bytearray's storage (0 when empty); the caller keeps ``buf`` alive."""
    if not buf:
        return 0
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


def _sys_bpf(cmd: int, attr: bytearray) -> int:
    """Issue ``bpf(cmd, attr, len(attr))``; return the result, or ``-errno`` on failure."""
    problem = _platform_problem()
    if problem is not None:
        raise KernelError(f"call bpf(): {problem}", errno=errno.ENOSYS)
    nr = _NR_BPF[platform.machine().lower()]
    ret = int(
        _libc().syscall(
            ctypes.c_long(nr),
            ctypes.c_long(cmd),
            ctypes.c_void_p(_addr(attr)),
            ctypes.c_long(len(attr)),
        )
    )
    return ret if ret >= 0 else -ctypes.get_errno()


# --- errors ----------------------------------------------------------------------------------


def _describe(err: int) -> str:
    """``"Permission denied (EACCES)"`` for an errno value."""
    name = _ERRNO_NAMES.get(err) or errno.errorcode.get(err) or f"errno {err}"
    return f"{_ERRNO_TEXT.get(err) or os.strerror(err)} ({name})"


def _log_summary(log: str) -> str:
    """The last non-empty verifier log line that is not a statistics line."""
    for line in reversed(log.splitlines()):
        text = line.strip()
        if text and not text.startswith(_LOG_STATS_PREFIXES):
            return text
    return ""


def _error(action: str, err: int, log: str = "") -> KernelError:
    """A KernelError "``action``: strerror (ENAME)[: last log line]"."""
    message = f"{action}: {_describe(err)}"
    summary = _log_summary(log)
    if summary:
        message += f": {summary}"
    return KernelError(message, errno=err, log=log)


def _check(ret: int, action: str) -> int:
    """Return ``ret`` if the syscall succeeded, else raise the KernelError for ``action``."""
    if ret < 0:
        raise _error(action, -ret)
    return ret


def _obj_name(name: str, action: str) -> bytes:
    """Encode a map/program name for ``char name[BPF_OBJ_NAME_LEN]`` (15 bytes + NUL)."""
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        raise KernelError(f"{action}: name {name!r} is not ASCII", errno=errno.EINVAL) from None
    if len(raw) >= _BPF_OBJ_NAME_LEN:
        raise KernelError(
            f"{action}: name {name!r} is longer than {_BPF_OBJ_NAME_LEN - 1} bytes",
            errno=errno.EINVAL,
        )
    return raw


# --- owned file descriptors ------------------------------------------------------------------

_FdT = TypeVar("_FdT", bound="_OwnedFd")


class _OwnedFd:
    """A kernel object fd this process owns: closed by ``close()``, ``with`` or collection."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @property
    def fd(self) -> int:
        """The descriptor number (KernelError EBADF once closed)."""
        if self._fd < 0:
            raise KernelError(f"use {type(self).__name__}: already closed", errno=errno.EBADF)
        return self._fd

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._fd < 0

    def close(self) -> None:
        """Close the descriptor; a second call does nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self: _FdT) -> _FdT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            with contextlib.suppress(OSError):
                self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {state}>"


class ProgFd(_OwnedFd):
    """A loaded BPF program: its fd and the verifier log of the load."""

    def __init__(self, fd: int, log: str) -> None:
        super().__init__(fd)
        self.log = log


class MapFd(_OwnedFd):
    """A BPF map: its fd and the shape it was created with."""

    def __init__(
        self, fd: int, *, map_type: int, key_size: int, value_size: int, max_entries: int
    ) -> None:
        super().__init__(fd)
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries


# --- BPF_PROG_LOAD ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ProgSpec:
    """Everything of a BPF_PROG_LOAD request except the log buffer."""

    insns: bytes
    prog_type: int
    license: bytes
    log_level: int
    name: bytes
    expected_attach_type: int
    prog_flags: int


def _u32(attr: bytearray, offset: int) -> int:
    """The little-endian u32 at ``offset`` of an attribute block."""
    return int.from_bytes(attr[offset : offset + 4], "little")


def _decode_log(log: bytearray) -> str:
    """The NUL-terminated verifier log text."""
    end = log.find(0)
    return log[: end if end >= 0 else len(log)].decode("utf-8", "replace")


def _prog_load_once(spec: _ProgSpec, log_size: int) -> tuple[int, str, int]:
    """One BPF_PROG_LOAD: (fd or -errno, log text, log_true_size or 0)."""
    insns = bytearray(spec.insns)
    lic = bytearray(spec.license + b"\0")
    log = bytearray(log_size)
    attr = bytearray(ATTR_SIZE)
    struct.pack_into(
        "<IIQQIIQII16sII",
        attr,
        0,
        spec.prog_type,
        len(insns) // 8,
        _addr(insns),
        _addr(lic),
        spec.log_level,
        log_size,
        _addr(log),
        0,
        spec.prog_flags,
        spec.name,
        0,
        spec.expected_attach_type,
    )
    ret = _sys_bpf(_BPF_PROG_LOAD, attr)
    return ret, _decode_log(log), _u32(attr, 140)


def _grown_log_size(size: int, true_size: int) -> int:
    """Next log size after ENOSPC: what the kernel said it needs (6.4+), at least double."""
    return min(max(true_size, size * 2), _LOG_SIZE_MAX)


def prog_load(
    insns: bytes,
    *,
    prog_type: int = _PROG_TYPE_SCHED_CLS,
    license: str = "GPL",
    log_level: int = 1,
    log_size: int = DEFAULT_LOG_SIZE,
    expected_attach_type: int = 0,
    prog_name: str = "",
    prog_flags: int = 0,
) -> ProgFd:
    """Load ``insns`` (8-byte ``struct bpf_insn`` each) with BPF_PROG_LOAD.

    Maps are referenced the classic way: the caller patches map fds into LD_IMM64
    instructions with ``src_reg = BPF_PSEUDO_MAP_FD`` (1); no ``fd_array`` is passed.
    With ``log_level`` 0 no log is requested.  When the log does not fit (ENOSPC, which the
    kernel reports even for an otherwise valid program) the load is retried with a bigger
    buffer, as is a load the verifier abandoned with EAGAIN because of a signal.
    Raises KernelError carrying the errno and the verifier log.
    """
    if not insns or len(insns) % 8:
        raise KernelError(
            f"load program: {len(insns)} bytes is not a whole number of instructions",
            errno=errno.EINVAL,
        )
    spec = _ProgSpec(
        insns=bytes(insns),
        prog_type=prog_type,
        license=license.encode(),
        log_level=log_level,
        name=_obj_name(prog_name, "load program"),
        expected_attach_type=expected_attach_type,
        prog_flags=prog_flags,
    )
    size = log_size if log_level else 0
    eagain = 0
    for _ in range(_LOAD_ATTEMPTS):
        ret, log, true_size = _prog_load_once(spec, size)
        if ret >= 0:
            return ProgFd(ret, log)
        if -ret == errno.ENOSPC and log_level and size < _LOG_SIZE_MAX:
            size = _grown_log_size(size, true_size)
        elif -ret == errno.EAGAIN and eagain < _EAGAIN_RETRIES:
            eagain += 1
        else:
            break
    raise _error("load program", -ret, log)


# --- BPF_PROG_TEST_RUN -----------------------------------------------------------------------


@dataclass(frozen=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN reported.

    ``errno`` is 0 on success.  It is ``ENOSPC`` when the output packet did not fit the
    ``data_out`` buffer: then ``data_out`` is the truncated copy, ``data_size_out`` the full
    length, and ``ctx_out`` is empty because the kernel skips copying the ctx; or when the
    ctx did not fit a ``ctx_size_out`` smaller than the kernel's ctx (``ctx_out`` truncated).
    ``ctx_out`` is empty too when no ctx_out was requested.
    """

    __test__ = False  # not a pytest test class despite the name

    retval: int
    data_out: bytes
    ctx_out: bytes
    duration: int
    errno: int = 0
    data_size_out: int = 0


def _test_run_result(attr: bytearray, dout: bytearray, cout: bytearray, err: int) -> TestRunResult:
    """Read the out fields of ``attr.test`` and the output buffers into a TestRunResult."""
    retval, data_size, duration, ctx_size = (_u32(attr, off) for off in (4, 12, 36, 44))
    data_truncated = data_size > len(dout)
    ctx_out = b"" if data_truncated else bytes(cout[: min(ctx_size, len(cout))])
    return TestRunResult(
        retval=retval,
        data_out=bytes(dout[: min(data_size, len(dout))]),
        ctx_out=ctx_out,
        duration=duration,
        errno=err,
        data_size_out=data_size,
    )


def _truncated(attr: bytearray, dout: bytearray, cout: bytearray) -> bool:
    """Whether the kernel reported more packet or ctx bytes than the buffers hold."""
    return _u32(attr, 12) > len(dout) or _u32(attr, 44) > len(cout)


def prog_test_run(
    fd: int,
    data: bytes,
    *,
    ctx: bytes | None = None,
    repeat: int = 1,
    flags: int = 0,
    data_size_out: int = 0,
    ctx_size_out: int = SK_BUFF_SIZE,
) -> TestRunResult:
    """Run program ``fd`` once (or ``repeat`` times on the same skb) on packet ``data``.

    ``ctx`` is the ``ctx_in`` (a ``struct __sk_buff`` for SCHED_CLS; None passes none).
    ``ctx_out`` is requested with ``ctx_size_out`` bytes even without ``ctx_in`` (0 asks for
    none, for program types that refuse a ctx).  ``data_size_out`` 0 means a buffer of
    ``len(data) + 64 KiB``; the buffer size is always passed as the kernel's size hint.
    Truncation (ENOSPC) is reported in the result, see :class:`TestRunResult`; every other
    failure raises KernelError.
    """
    din = bytearray(data)
    dout = bytearray(data_size_out or len(data) + _DATA_OUT_SLACK)
    cin = bytearray(ctx or b"")
    cout = bytearray(ctx_size_out)
    attr = bytearray(ATTR_SIZE)
    struct.pack_into(
        "<IIIIQQIIIIQQI",
        attr,
        0,
        fd,
        0,
        len(din),
        len(dout),
        _addr(din),
        _addr(dout),
        repeat,
        0,
        len(cin),
        len(cout),
        _addr(cin),
        _addr(cout),
        flags,
    )
    ret = _sys_bpf(_BPF_PROG_TEST_RUN, attr)
    if ret >= 0:
        return _test_run_result(attr, dout, cout, 0)
    if -ret == errno.ENOSPC and _truncated(attr, dout, cout):
        return _test_run_result(attr, dout, cout, errno.ENOSPC)
    raise _error("test-run program", -ret)


test_run = prog_test_run
"""The name the rest of tcemu uses for :func:`prog_test_run`."""
# pytest collects module-level callables named test_* from test modules that import them.
prog_test_run.__test__ = False  # type: ignore[attr-defined]


# --- maps ------------------------------------------------------------------------------------


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    map_flags: int = 0,
    name: str = "",
) -> MapFd:
    """Create a map with BPF_MAP_CREATE."""
    attr = bytearray(ATTR_SIZE)
    struct.pack_into(
        "<IIIIIII16s",
        attr,
        0,
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        0,
        0,
        _obj_name(name, "create map"),
    )
    fd = _check(_sys_bpf(_BPF_MAP_CREATE, attr), "create map")
    return MapFd(
        fd, map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries
    )


def _elem_call(cmd: int, fd: int, key: bytearray, value: bytearray, flags: int = 0) -> int:
    """One BPF_MAP_*_ELEM / GET_NEXT_KEY call; returns the raw result (``-errno``)."""
    attr = bytearray(ATTR_SIZE)
    struct.pack_into("<I4xQQQ", attr, 0, fd, _addr(key), _addr(value), flags)
    return _sys_bpf(cmd, attr)


def map_update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    """Store ``value`` under ``key`` (both exactly the map's sizes)."""
    _check(
        _elem_call(_BPF_MAP_UPDATE_ELEM, fd, bytearray(key), bytearray(value), flags),
        "update map element",
    )


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value under ``key``, or None if there is none (ENOENT).

    ``value_size`` must be the size the kernel copies out (for per-CPU maps: the value size
    rounded up to 8, times the number of possible CPUs); a smaller buffer would be overrun.
    """
    value = bytearray(value_size)
    ret = _elem_call(_BPF_MAP_LOOKUP_ELEM, fd, bytearray(key), value)
    if ret == -errno.ENOENT:
        return None
    _check(ret, "look up map element")
    return bytes(value)


def map_delete(fd: int, key: bytes) -> None:
    """Delete the element under ``key`` (KernelError ENOENT if absent, EINVAL for arrays)."""
    _check(_elem_call(_BPF_MAP_DELETE_ELEM, fd, bytearray(key), bytearray()), "delete map element")


def map_get_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after ``key`` (the first key when ``key`` is None), or None at the end."""
    next_key = bytearray(key_size)
    ret = _elem_call(_BPF_MAP_GET_NEXT_KEY, fd, bytearray(key or b""), next_key)
    if ret == -errno.ENOENT:
        return None
    _check(ret, "get next map key")
    return bytes(next_key)


# --- probe -----------------------------------------------------------------------------------

# "r0 = 0; exit" and a minimal Ethernet + IPv4 frame (EtherType 0x0800, 20 zero bytes).
_PROBE_PROG = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
_PROBE_PACKET = bytes(12) + b"\x08\x00" + bytes(20)


def _probe_kernel() -> str | None:
    """Load and test-run the trivial SCHED_CLS program; a reason string if that fails."""
    try:
        with prog_load(_PROBE_PROG, log_level=0) as prog:
            result = prog_test_run(prog.fd, _PROBE_PACKET)
    except KernelError as err:
        if err.errno in (errno.EPERM, errno.EACCES) and os.geteuid() != 0:
            return f"not running as root ({err})"
        return f"bpf() failed: {err}"
    if result.retval != 0:
        return f"probe program returned {result.retval}, expected 0"
    return None


def probe() -> str | None:
    """None if the kernel oracle is usable, else a one-line reason.  Never raises.

    Usable means: Linux on a supported 64-bit architecture, bpf() reachable through ctypes,
    and a trivial SCHED_CLS program ("r0 = 0; exit") loads and runs under BPF_PROG_TEST_RUN
    with retval 0.
    """
    try:
        problem = _platform_problem()
        if problem is not None:
            return problem
        return _probe_kernel()
    except Exception as err:
        return f"probe failed unexpectedly: {type(err).__name__}: {err}"
