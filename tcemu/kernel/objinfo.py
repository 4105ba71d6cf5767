"""BPF programs and maps the kernel already holds: by id, by pin, or loaded from an object.

This module owns the ``bpf(2)`` commands that reach objects tcemu did not create through
:mod:`tcemu.kernel.syscall` itself: ``BPF_OBJ_GET`` (7, a pinned path),
``BPF_PROG_GET_FD_BY_ID`` (13), ``BPF_MAP_GET_FD_BY_ID`` (14) and
``BPF_OBJ_GET_INFO_BY_FD`` (15), with the leading fields of ``struct bpf_prog_info`` and
``struct bpf_map_info`` from ``include/uapi/linux/bpf.h``:

* ``bpf_prog_info``: type 0, id 4, tag[8] 8, ..., nr_map_ids 52, map_ids (u64 pointer) 56,
  name[16] 64.
* ``bpf_map_info``: type 0, id 4, key_size 8, value_size 12, max_entries 16, map_flags 20,
  name[16] 24.

It also reads whole maps (``BPF_MAP_GET_NEXT_KEY`` + ``BPF_MAP_LOOKUP_ELEM``; per-CPU values
are every possible CPU's value, each rounded up to 8 bytes, as ``kernel/bpf/syscall.c``
``bpf_map_value_size`` copies them), and loads a compiled object the way users do outside
tc, with ``bpftool prog loadall`` (libbpf), pinning into a private bpffs that is unmounted
again as soon as the program fds are open: the kernel objects then live exactly as long as
the fds (or the tc filters holding them).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tcemu.errors import KernelError

# The syscall entry and the errno formatting are the syscall layer's (one copy of each).
from tcemu.kernel.syscall import (
    ATTR_SIZE,
    ProgFd,
    _addr,
    _error,
    _sys_bpf,
    map_get_next_key,
    map_lookup,
)

__all__ = [
    "BpfFd",
    "LoadedObject",
    "MapInfo",
    "ProgInfo",
    "load_object",
    "map_fd_by_id",
    "map_info",
    "map_items",
    "obj_get",
    "obj_pin",
    "open_map",
    "possible_cpus",
    "private_bpffs",
    "prog_fd_by_id",
    "prog_info",
    "prog_maps",
]

_BPF_OBJ_PIN = 6
_BPF_OBJ_GET = 7
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_MAP_GET_FD_BY_ID = 14
_BPF_OBJ_GET_INFO_BY_FD = 15

_PROG_INFO_SIZE = 80  # through name[16]; the kernel accepts a shorter info_len
_MAP_INFO_SIZE = 40
_PERCPU_MAP_TYPES = frozenset({5, 6, 10})  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH = 2


class BpfFd(ProgFd):
    """An owned fd of a program or map reached by id or pin (closed like a ProgFd)."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, "")


@dataclass(frozen=True)
class ProgInfo:
    """The leading fields of ``struct bpf_prog_info``."""

    id: int
    prog_type: int
    name: str
    tag: bytes
    map_ids: tuple[int, ...]


@dataclass(frozen=True)
class MapInfo:
    """The leading fields of ``struct bpf_map_info``."""

    id: int
    map_type: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int


def _cstr(raw: bytes) -> str:
    """A NUL-terminated ``char name[16]``."""
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _fd_by_id(cmd: int, obj_id: int, what: str) -> BpfFd:
    attr = bytearray(ATTR_SIZE)
    struct.pack_into("<III", attr, 0, obj_id, 0, 0)
    ret = _sys_bpf(cmd, attr)
    if ret < 0:
        raise _error(f"open {what} id {obj_id}", -ret)
    return BpfFd(ret)


def prog_fd_by_id(prog_id: int) -> BpfFd:
    """An fd of the loaded program with this id (``BPF_PROG_GET_FD_BY_ID``)."""
    return _fd_by_id(_BPF_PROG_GET_FD_BY_ID, prog_id, "program")


def map_fd_by_id(map_id: int) -> BpfFd:
    """An fd of the map with this id (``BPF_MAP_GET_FD_BY_ID``)."""
    return _fd_by_id(_BPF_MAP_GET_FD_BY_ID, map_id, "map")


def obj_get(path: Path | str) -> BpfFd:
    """An fd of the program or map pinned at ``path`` on a bpffs (``BPF_OBJ_GET``)."""
    name = bytearray(os.fsencode(path) + b"\0")
    attr = bytearray(ATTR_SIZE)
    struct.pack_into("<QII", attr, 0, _addr(name), 0, 0)
    ret = _sys_bpf(_BPF_OBJ_GET, attr)
    if ret < 0:
        raise _error(f"open pinned object {str(path)!r}", -ret)
    return BpfFd(ret)


def obj_pin(fd: int, path: Path | str) -> None:
    """Pin the program or map ``fd`` at ``path`` on a bpffs (``BPF_OBJ_PIN``)."""
    name = bytearray(os.fsencode(path) + b"\0")
    attr = bytearray(ATTR_SIZE)
    struct.pack_into("<QII", attr, 0, _addr(name), fd, 0)
    ret = _sys_bpf(_BPF_OBJ_PIN, attr)
    if ret < 0:
        raise _error(f"pin object at {str(path)!r}", -ret)


def _obj_info(fd: int, size: int, info: bytearray | None = None) -> bytearray:
    buf = info if info is not None else bytearray(size)
    attr = bytearray(ATTR_SIZE)
    struct.pack_into("<IIQ", attr, 0, fd, len(buf), _addr(buf))
    ret = _sys_bpf(_BPF_OBJ_GET_INFO_BY_FD, attr)
    if ret < 0:
        raise _error(f"get info of bpf fd {fd}", -ret)
    return buf


def prog_info(fd: int) -> ProgInfo:
    """Id, type, name, tag and map ids of a program fd."""
    head = _obj_info(fd, _PROG_INFO_SIZE)
    nr_maps = struct.unpack_from("<I", head, 52)[0]
    ids = bytearray(4 * nr_maps)
    if nr_maps:
        # Second call with room for the ids: map_ids points at `ids`, nr_map_ids says how many.
        again = bytearray(_PROG_INFO_SIZE)
        struct.pack_into("<IQ", again, 52, nr_maps, _addr(ids))
        head = _obj_info(fd, _PROG_INFO_SIZE, again)
    prog_type, prog_id = struct.unpack_from("<II", head, 0)
    return ProgInfo(
        id=prog_id,
        prog_type=prog_type,
        name=_cstr(bytes(head[64:80])),
        tag=bytes(head[8:16]),
        map_ids=struct.unpack(f"<{nr_maps}I", ids),
    )


def map_info(fd: int) -> MapInfo:
    """Id, type, name and shape of a map fd."""
    raw = _obj_info(fd, _MAP_INFO_SIZE)
    map_type, map_id, key_size, value_size, max_entries, flags = struct.unpack_from("<6I", raw)
    return MapInfo(
        id=map_id,
        map_type=map_type,
        name=_cstr(bytes(raw[24:40])),
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
    )


def possible_cpus() -> int:
    """Number of possible CPUs (``/sys/devices/system/cpu/possible``, e.g. ``0-1`` → 2)."""
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def map_items(fd: int, info: MapInfo | None = None) -> dict[bytes, bytes]:
    """Every ``key -> value`` of a map (per-CPU maps: all CPUs' values, 8-byte aligned each)."""
    info = info or map_info(fd)
    size = info.value_size
    if info.map_type in _PERCPU_MAP_TYPES:
        size = (size + 7) // 8 * 8 * possible_cpus()
    items: dict[bytes, bytes] = {}
    key = map_get_next_key(fd, None, info.key_size)
    while key is not None:
        value = map_lookup(fd, key, size)
        if value is not None:  # deleted between get_next_key and lookup
            items[key] = value
        key = map_get_next_key(fd, key, info.key_size)
    return items


def prog_maps(prog_id: int) -> dict[str, MapInfo]:
    """The maps the loaded program ``prog_id`` uses, by (kernel, at most 15-byte) name."""
    with prog_fd_by_id(prog_id) as fd:
        ids = prog_info(fd.fd).map_ids
    result = {}
    for map_id in ids:
        with map_fd_by_id(map_id) as mfd:
            info = map_info(mfd.fd)
        result[info.name] = info
    return result


def open_map(*, prog_id: int | None = None, name: str | None = None,
             map_id: int | None = None, pinned: str | Path | None = None) -> BpfFd:
    """An fd of a map found by pin, by id, or by the id of a program using it and its name."""
    if pinned is not None:
        return obj_get(pinned)
    if map_id is not None:
        return map_fd_by_id(map_id)
    if prog_id is None or name is None:
        raise KernelError("open map: give pinned=, map_id= or prog_id= with name=",
                          errno=errno.EINVAL)
    found = prog_maps(prog_id).get(name[:15])
    if found is None:
        raise KernelError(f"open map: program id {prog_id} has no map {name!r}",
                          errno=errno.ENOENT)
    return map_fd_by_id(found.id)


# --- loading an object with bpftool -----------------------------------------------------------


@dataclass
class LoadedObject:
    """Programs of one object loaded by bpftool: fds by program name, map ids by map name."""

    path: Path
    progs: dict[str, BpfFd]
    map_ids: dict[str, int]

    def close(self) -> None:
        """Close every program fd (the kernel frees what no filter holds any more)."""
        for prog in self.progs.values():
            prog.close()


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_void_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


@contextlib.contextmanager
def _private_bpffs() -> Iterator[Path]:
    """A bpffs mounted on a fresh temporary directory (never over ``/sys/fs/bpf``)."""
    root = Path(tempfile.mkdtemp(prefix="tcemu-bpffs-"))
    libc = _libc()
    try:
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        if libc.mount(b"bpf", os.fsencode(root), b"bpf", flags, None) != 0:
            err = ctypes.get_errno()
            raise KernelError(f"mount a private bpffs: {os.strerror(err)}", errno=err,
                              missing_feature="bpffs")
        try:
            yield root
        finally:
            libc.umount2(os.fsencode(root), _MNT_DETACH)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def private_bpffs() -> contextlib.AbstractContextManager[Path]:
    """A bpffs on a fresh temporary directory, unmounted and removed on exit."""
    return _private_bpffs()


def load_object(obj: Path | str) -> LoadedObject:
    """Load every program of ``obj`` with ``bpftool prog loadall`` (libbpf) and keep fds.

    Program types come from the section names (``tc`` → SCHED_CLS).  Maps are created by
    libbpf (BTF maps, global data, ``.values`` initialisers); their ids are reported by
    name so that :func:`map_items` can read them.  Raises KernelError with
    ``missing_feature="tool/bpftool"`` when bpftool is not installed.
    """
    path = Path(obj)
    tool = shutil.which("bpftool")
    if tool is None:
        raise KernelError("load object: bpftool is not installed", errno=errno.ENOENT,
                          missing_feature="tool/bpftool")
    with _private_bpffs() as root:
        progs_dir, maps_dir = root / "progs", root / "maps"
        res = subprocess.run(
            [tool, "prog", "loadall", str(path), str(progs_dir), "pinmaps", str(maps_dir)],
            capture_output=True, text=True, check=False,
        )
        if res.returncode != 0:
            tail = "\n".join(res.stderr.splitlines()[-20:])
            raise KernelError(f"load object {path.name}: bpftool refused it:\n{tail}",
                              errno=errno.EINVAL, log=res.stderr)
        progs = {pin.name: obj_get(pin) for pin in sorted(progs_dir.iterdir())}
        map_ids: dict[str, int] = {}
        for pin in sorted(maps_dir.iterdir()) if maps_dir.exists() else []:
            with obj_get(pin) as fd:
                map_ids[pin.name] = map_info(fd.fd).id
    return LoadedObject(path=path, progs=progs, map_ids=map_ids)
