"""Raw map syscalls for the differential map tests: every call returns an errno, never raises.

:mod:`tcemu.kernel.syscall` covers the map commands a program test needs and raises
:class:`~tcemu.errors.KernelError`.  Differential tests want the errno of *every* outcome
and a few more commands and attributes, so this module speaks ``bpf(2)`` directly through
the syscall layer's entry point (``_sys_bpf``; the lead may promote it to public API):

* ``BPF_MAP_CREATE`` (0) with ``inner_map_fd`` (20), ``numa_node`` (24), ``map_extra`` (64);
* ``BPF_MAP_LOOKUP_ELEM``/``UPDATE_ELEM``/``DELETE_ELEM``/``GET_NEXT_KEY`` (1-4) and
  ``BPF_MAP_LOOKUP_AND_DELETE_ELEM`` (21): map_fd 0, key 8, value/next_key 16, flags 24;
* ``BPF_MAP_*_BATCH`` (24-27): in_batch 0, out_batch 8, keys 16, values 24, count 32,
  map_fd 36, elem_flags 40, flags 48 (``attr.batch`` of uapi ``linux/bpf.h``).

A key of ``None`` is passed as a NULL pointer (queue/stack maps, the first get_next_key).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from types import TracebackType

from tcemu.kernel.syscall import ATTR_SIZE, _addr, _sys_bpf

__all__ = ["KMap", "possible_cpus"]

MAP_CREATE = 0
LOOKUP_ELEM = 1
UPDATE_ELEM = 2
DELETE_ELEM = 3
GET_NEXT_KEY = 4
LOOKUP_AND_DELETE_ELEM = 21
LOOKUP_BATCH = 24
LOOKUP_AND_DELETE_BATCH = 25
UPDATE_BATCH = 26
DELETE_BATCH = 27


def possible_cpus() -> int:
    """``num_possible_cpus()``: what the kernel sizes per-CPU values by (1 off Linux)."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
    except OSError:
        return 1
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def _buf(data: bytes | None) -> bytearray:
    return bytearray(data) if data is not None else bytearray()


@dataclass
class KMap:
    """One kernel map; ``fd`` is -errno when the create failed (see :attr:`errno`)."""

    fd: int
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    closed: bool = False

    @classmethod
    def create(cls, map_type: int, key_size: int, value_size: int, max_entries: int,
               flags: int = 0, *, inner_fd: int = 0, numa_node: int = 0,
               map_extra: int = 0) -> KMap:
        attr = bytearray(ATTR_SIZE)
        struct.pack_into("<IIIIIII", attr, 0, map_type, key_size, value_size, max_entries,
                         flags, inner_fd, numa_node)
        struct.pack_into("<Q", attr, 64, map_extra)
        fd = _sys_bpf(MAP_CREATE, attr)
        return cls(fd, map_type, key_size, value_size, max_entries)

    @property
    def errno(self) -> int:
        """The create's errno (0 for a live or closed map)."""
        return -self.fd if self.fd < 0 else 0

    def close(self) -> None:
        if self.fd >= 0 and not self.closed:
            os.close(self.fd)
            self.closed = True

    def __enter__(self) -> KMap:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _elem(self, cmd: int, key: bytes | None, value: bytearray, flags: int) -> int:
        kbuf = _buf(key)
        attr = bytearray(ATTR_SIZE)
        struct.pack_into("<I4xQQQ", attr, 0, self.fd, _addr(kbuf), _addr(value), flags)
        ret = _sys_bpf(cmd, attr)
        return -ret if ret < 0 else 0

    def lookup(self, key: bytes | None, size: int | None = None,
               flags: int = 0) -> tuple[int, bytes]:
        out = bytearray(self.value_size if size is None else size)
        err = self._elem(LOOKUP_ELEM, key, out, flags)
        return err, bytes(out) if not err else b""

    def update(self, key: bytes | None, value: bytes, flags: int = 0) -> int:
        return self._elem(UPDATE_ELEM, key, bytearray(value), flags)

    def delete(self, key: bytes | None) -> int:
        return self._elem(DELETE_ELEM, key, bytearray(), 0)

    def next_key(self, key: bytes | None) -> tuple[int, bytes]:
        out = bytearray(max(self.key_size, 1))
        err = self._elem(GET_NEXT_KEY, key, out, 0)
        return err, bytes(out[:self.key_size]) if not err else b""

    def lookup_and_delete(self, key: bytes | None, size: int | None = None,
                          flags: int = 0) -> tuple[int, bytes]:
        out = bytearray(self.value_size if size is None else size)
        err = self._elem(LOOKUP_AND_DELETE_ELEM, key, out, flags)
        return err, bytes(out) if not err else b""

    def keys(self) -> list[bytes]:
        out: list[bytes] = []
        key: bytes | None = None
        while True:
            err, nxt = self.next_key(key)
            if err:
                return out
            out.append(nxt)
            key = nxt

    def batch(self, cmd: int, in_batch: bytes | None, keys: bytearray, values: bytearray,
              count: int, out_size: int = 8, elem_flags: int = 0,
              flags: int = 0) -> tuple[int, int, bytes]:
        """One batch command: (errno, count done, out_batch)."""
        inb = _buf(in_batch)
        outb = bytearray(out_size)
        attr = bytearray(ATTR_SIZE)
        struct.pack_into("<QQQQIIQQ", attr, 0, _addr(inb), _addr(outb), _addr(keys),
                         _addr(values), count, self.fd, elem_flags, flags)
        ret = _sys_bpf(cmd, attr)
        done = struct.unpack_from("<I", attr, 32)[0]
        return (-ret if ret < 0 else 0), done, bytes(outb)
