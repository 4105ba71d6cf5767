"""The kernel side of the compiled-object differential tests (``test_objects_differential.py``).

Everything here talks to the running kernel without going through tcemu's object loader:

* :class:`BpfFs` mounts a private bpffs (in a temporary directory, never over the host's
  ``/sys/fs/bpf``) that holds every pin of a test session, and removes it at the end.
* :func:`load_with_bpftool` loads an object with ``bpftool prog loadall OBJ DIR pinmaps
  MAPDIR`` (libbpf: BTF-defined maps, global data, ``.values`` initialisation of prog arrays
  and maps of maps); :func:`load_iproute2` is a small loader of iproute2's legacy format
  (``struct bpf_elf_map`` in ``SEC("maps")``, tail-call sections ``"ID/IDX"``), which libbpf
  1.x refuses and Debian's tc (built on libbpf) therefore cannot load either.  It follows
  iproute2's ``lib/bpf_legacy.c``: create the maps, patch every ``R_BPF_64_64`` map reference
  into ``BPF_PSEUDO_MAP_FD``, load each section, fill prog arrays from the ``ID/IDX`` sections.
* :class:`KernelObject` opens the pins again (``BPF_OBJ_GET``), runs a program with
  ``BPF_PROG_TEST_RUN`` and reads every map into a :data:`MapState` after each packet:
  hash-like maps as dicts (so iteration order does not matter), queues and stacks by popping
  every element and pushing it back, ring buffers by consuming the records through mmap,
  perf event arrays through one ``PERF_COUNT_SW_BPF_OUTPUT`` event per CPU installed in the
  map (as libbpf's perf_buffer does) and read from its mmap'ed ring, prog arrays and maps of
  maps as the *names* of the programs / inner maps they hold.
* :func:`ipv4`, :func:`udp4`, :func:`tcp4`, ... build the test frames with struct.
* :func:`private_netns` runs a block in a fresh network namespace with ``lo`` up, for
  ``bpf_clone_redirect``, which really transmits a clone on the target device.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tcemu.bpf.collection import Collection
from tcemu.bpf.maps import (
    ArrayOfMaps,
    HashOfMaps,
    PerfEventArrayMap,
    ProgArrayMap,
    QueueMap,
    RingBufMap,
    RingbufReader,
)
from tcemu.kernel import (
    MapFd,
    ProgFd,
    map_create,
    map_get_next_key,
    map_lookup,
    map_update,
    prog_load,
)
from tcemu.kernel.syscall import TestRunResult, prog_test_run

__all__ = [
    "MAP_TYPE_NAMES",
    "BpfFs",
    "KernelObject",
    "MapInfo",
    "MapState",
    "TcemuMaps",
    "load_iproute2",
    "load_with_bpftool",
    "possible_cpus",
    "private_netns",
    "remove_pins",
    "tcemu_map_name",
]

BPFTOOL = "bpftool"

# include/uapi/linux/bpf.h enum bpf_map_type
MAP_TYPE_NAMES = {
    1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash",
    6: "percpu_array", 7: "stack_trace", 8: "cgroup_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps",
    22: "queue", 23: "stack", 27: "ringbuf",
}
PERCPU_TYPES = {5, 6, 10}
PROG_ARRAY, PERF_EVENT_ARRAY, ARRAY_OF_MAPS, HASH_OF_MAPS = 3, 4, 12, 13
QUEUE, STACK, RINGBUF = 22, 23, 27

_BPF_MAP_LOOKUP_ELEM, _BPF_MAP_UPDATE_ELEM = 1, 2
_BPF_OBJ_PIN, _BPF_OBJ_GET, _BPF_OBJ_GET_INFO_BY_FD = 6, 7, 15
_BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21
_NR_BPF = 321  # x86_64; the kernel tests run on the x86_64 CI machine
_ATTR_SIZE = 144
_PSEUDO_MAP_FD = 1

MapState = dict[str, object]
"""Map name -> contents: dict[key hex, value hex] for keyed maps, list[hex] for queues,
stacks and ring buffers, dict[key hex, name] for prog arrays and maps of maps."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
_libc_any = ctypes.CDLL(None, use_errno=True)  # a second handle: syscall() without argtypes
_libc_any.syscall.restype = ctypes.c_long


def _addr(buf: bytearray) -> int:
    return ctypes.addressof((ctypes.c_char * max(len(buf), 1)).from_buffer(buf)) if buf else 0


def _bpf(cmd: int, attr: bytearray, what: str) -> int:
    ret = _libc.syscall(_NR_BPF, cmd, _addr(attr), len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({what}): {os.strerror(err)}")
    return int(ret)


def obj_get(path: Path) -> int:
    """``BPF_OBJ_GET``: a new fd for the pinned object at ``path``."""
    name = bytearray(os.fsencode(path) + b"\0")
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("<Q", attr, 0, _addr(name))
    return _bpf(_BPF_OBJ_GET, attr, f"obj_get {path}")


def obj_pin(fd: int, path: Path) -> None:
    """``BPF_OBJ_PIN``: pin ``fd`` at ``path`` (on a bpffs)."""
    name = bytearray(os.fsencode(path) + b"\0")
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("<QI", attr, 0, _addr(name), fd)
    _bpf(_BPF_OBJ_PIN, attr, f"obj_pin {path}")


def _obj_info(fd: int) -> bytes:
    info = bytearray(256)
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("<IIQ", attr, 0, fd, len(info), _addr(info))
    _bpf(_BPF_OBJ_GET_INFO_BY_FD, attr, "obj_get_info_by_fd")
    return bytes(info)


@dataclass(frozen=True)
class MapInfo:
    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str


def map_info(fd: int) -> MapInfo:
    """struct bpf_map_info: type 0, id 4, key_size 8, value_size 12, max_entries 16,
    map_flags 20, name[16] 24."""
    raw = _obj_info(fd)
    typ, ident, ks, vs, me, flags = struct.unpack_from("<6I", raw, 0)
    name = raw[24:40].split(b"\0", 1)[0].decode()
    return MapInfo(typ, ident, ks, vs, me, flags, name)


def prog_id_name(fd: int) -> tuple[int, str]:
    """struct bpf_prog_info: id at 4, name[16] at 64."""
    raw = _obj_info(fd)
    return struct.unpack_from("<I", raw, 4)[0], raw[64:80].split(b"\0", 1)[0].decode()


def _null_key_call(cmd: int, fd: int, value: bytearray, flags: int = 0) -> int:
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("<I4xQQQ", attr, 0, fd, 0, _addr(value), flags)
    ret = _libc.syscall(_NR_BPF, cmd, _addr(attr), len(attr))
    return int(ret) if ret >= 0 else -ctypes.get_errno()


def map_pop(fd: int, value_size: int) -> bytes | None:
    """Pop one element of a queue/stack (LOOKUP_AND_DELETE with no key); None when empty."""
    value = bytearray(value_size)
    ret = _null_key_call(_BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, value)
    if ret == -errno.ENOENT:
        return None
    if ret < 0:
        raise OSError(-ret, f"pop: {os.strerror(-ret)}")
    return bytes(value)


def map_push(fd: int, value: bytes) -> None:
    """Push onto a queue/stack (UPDATE with no key)."""
    ret = _null_key_call(_BPF_MAP_UPDATE_ELEM, fd, bytearray(value))
    if ret < 0:
        raise OSError(-ret, f"push: {os.strerror(-ret)}")


def possible_cpus() -> int:
    """The number of possible CPUs (``/sys/devices/system/cpu/possible``), as libbpf counts."""
    text = Path("/sys/devices/system/cpu/possible").read_text(encoding="ascii").strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def _round8(n: int) -> int:
    return (n + 7) & ~7


# --- bpffs -----------------------------------------------------------------------------------


class BpfFs:
    """A private bpffs mounted on a temporary directory; :meth:`fresh_dir` gives unique dirs."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tcemu_objects_bpffs_"))
        res = subprocess.run(["mount", "-t", "bpf", "bpf", str(self.root)],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            self.root.rmdir()
            raise OSError(f"cannot mount a bpffs: {res.stderr.strip()}")
        self._n = 0

    def fresh_dir(self, stem: str) -> Path:
        """A not yet existing path on the bpffs, unique within the session."""
        self._n += 1
        return self.root / f"tcemu_{os.getpid()}_{self._n}_{stem.replace('.', '_')}"

    def close(self) -> None:
        subprocess.run(["umount", str(self.root)], check=False)
        with contextlib.suppress(OSError):
            self.root.rmdir()


def load_with_bpftool(obj: Path, progs: Path, maps: Path) -> None:
    """``bpftool prog loadall OBJ PROGS pinmaps MAPS``; program types from the section names."""
    if shutil.which(BPFTOOL) is None:
        raise FileNotFoundError("bpftool is not installed (Debian package: bpftool)")
    res = subprocess.run([BPFTOOL, "prog", "loadall", str(obj), str(progs), "pinmaps",
                          str(maps)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise OSError(f"bpftool refused {obj.name}:\n" + "\n".join(res.stderr.splitlines()[-40:]))


# --- iproute2's legacy object format -----------------------------------------------------------

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_ELF_MAP = struct.Struct("<9I")  # iproute2 include/bpf_elf.h struct bpf_elf_map
_SHF_EXECINSTR = 0x4
_SHT_SYMTAB, _SHT_REL = 2, 9
_R_BPF_64_64 = 1


@dataclass
class _Section:
    name: str
    type: int
    flags: int
    data: bytes
    link: int
    info: int


def _elf_sections(raw: bytes) -> list[_Section]:
    ehdr = _EHDR.unpack_from(raw, 0)
    shoff, shentsize, shnum, shstrndx = ehdr[6], ehdr[11], ehdr[12], ehdr[13]
    hdrs = [_SHDR.unpack_from(raw, shoff + i * shentsize) for i in range(shnum)]
    strtab = hdrs[shstrndx]
    names = raw[strtab[4]:strtab[4] + strtab[5]]
    out = []
    for h in hdrs:
        name = names[h[0]:names.index(b"\0", h[0])].decode()
        data = raw[h[4]:h[4] + h[5]] if h[1] != 8 else b""
        out.append(_Section(name, h[1], h[2], data, h[6], h[7]))
    return out


def load_iproute2(obj: Path, progs: Path, maps: Path) -> None:
    """Load an iproute2-style object the way ``tc`` (lib/bpf_legacy.c) would, and pin it.

    Every program is loaded as SCHED_CLS; maps are pinned under ``maps`` by symbol name,
    programs under ``progs`` by function name.
    """
    raw = obj.read_bytes()
    secs = _elf_sections(raw)
    symtab = next(s for s in secs if s.type == _SHT_SYMTAB)
    strtab = secs[symtab.link].data
    syms = []
    for off in range(0, len(symtab.data), _SYM.size):
        st_name, info, _, shndx, value, size = _SYM.unpack_from(symtab.data, off)
        syms.append((strtab[st_name:strtab.index(b"\0", st_name)].decode(), info, shndx,
                     value, size))
    license_sec = next(s for s in secs if s.name == "license")
    license_text = license_sec.data.split(b"\0", 1)[0].decode()
    maps_idx = next(i for i, s in enumerate(secs) if s.name == "maps")

    map_fds: dict[int, tuple[int, tuple[int, ...]]] = {}  # offset in "maps" -> (fd, def)
    progs.mkdir()
    maps.mkdir()
    owned: list[MapFd | ProgFd] = []
    try:
        for name, info, shndx, value, _ in syms:
            if shndx != maps_idx or info & 0xF != 1:  # STT_OBJECT in "maps"
                continue
            d = _ELF_MAP.unpack_from(secs[maps_idx].data, value)
            typ, ksize, vsize, max_elem, flags = d[:5]
            m = map_create(typ, ksize, vsize, max_elem, map_flags=flags, name=name[:15])
            owned.append(m)
            obj_pin(m.fd, maps / name)
            map_fds[value] = (m.fd, d)
        tail_fills = []
        for idx, sec in enumerate(secs):
            if not sec.flags & _SHF_EXECINSTR or sec.name == ".text" or not sec.data:
                continue
            code = bytearray(sec.data)
            rel = next((s for s in secs if s.type == _SHT_REL and s.info == idx), None)
            for off in range(0, len(rel.data) if rel else 0, 16):
                assert rel is not None
                r_offset, r_info = struct.unpack_from("<QQ", rel.data, off)
                sym = syms[r_info >> 32]
                if r_info & 0xFFFFFFFF != _R_BPF_64_64 or sym[2] != maps_idx:
                    raise OSError(f"{obj.name}: unsupported relocation in {sec.name}")
                fd = map_fds[sym[3]][0]
                code[r_offset + 1] = (code[r_offset + 1] & 0x0F) | (_PSEUDO_MAP_FD << 4)
                struct.pack_into("<i", code, r_offset + 4, fd)
            func = next(s[0] for s in syms if s[2] == idx and s[1] & 0xF == 2)  # STT_FUNC
            p = prog_load(bytes(code), license=license_text, log_level=0, prog_name=func[:15])
            owned.append(p)
            obj_pin(p.fd, progs / func)
            head, _, tail = sec.name.partition("/")
            if head.isdigit() and tail.isdigit():
                tail_fills.append((int(head), int(tail), p.fd))
        for ident, key, prog_fd in tail_fills:
            target = next(fd for fd, d in map_fds.values() if d[5] == ident and d[0] == PROG_ARRAY)
            map_update(target, struct.pack("<I", key), struct.pack("<I", prog_fd))
    finally:
        for o in owned:
            o.close()


# --- a loaded object --------------------------------------------------------------------------


_NR_PERF_EVENT_OPEN = 298  # x86_64
_PERF_TYPE_SOFTWARE, _PERF_COUNT_SW_BPF_OUTPUT, _PERF_SAMPLE_RAW = 1, 10, 1 << 10
_PERF_RECORD_SAMPLE, _PERF_FLAG_FD_CLOEXEC = 9, 8
_PERF_PAGES = 8  # data pages per event (a power of two)


class _PerfReader:
    """One ``PERF_COUNT_SW_BPF_OUTPUT`` event per CPU, installed in a PERF_EVENT_ARRAY slot
    each (slot i = CPU i, as libbpf's perf_buffer does), with their mmap'ed rings."""

    def __init__(self, map_fd: int, ncpus: int) -> None:
        self.events: list[tuple[int, mmap.mmap]] = []
        try:
            for cpu in range(ncpus):
                attr = bytearray(64)  # PERF_ATTR_SIZE_VER0
                struct.pack_into("<IIQQQ", attr, 0, _PERF_TYPE_SOFTWARE, len(attr),
                                 _PERF_COUNT_SW_BPF_OUTPUT, 1, _PERF_SAMPLE_RAW)
                struct.pack_into("<I", attr, 48, 1)  # wakeup_events
                fd = _libc_any.syscall(ctypes.c_long(_NR_PERF_EVENT_OPEN),
                                       ctypes.c_void_p(_addr(attr)), ctypes.c_int(-1),
                                       ctypes.c_int(cpu), ctypes.c_int(-1),
                                       ctypes.c_ulong(_PERF_FLAG_FD_CLOEXEC))
                if fd < 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"perf_event_open(cpu {cpu}): {os.strerror(err)}")
                ring = mmap.mmap(int(fd), (1 + _PERF_PAGES) * mmap.PAGESIZE,
                                 flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
                self.events.append((int(fd), ring))
                map_update(map_fd, struct.pack("<I", cpu), struct.pack("<I", fd))
        except BaseException:
            self.close()
            raise

    def consume(self) -> list[str]:
        """The raw sample payloads (``u32 size`` stripped, padding kept) of every CPU."""
        out = []
        for cpu, (_, ring) in enumerate(self.events):
            head, tail, data_off, data_size = struct.unpack_from("<QQQQ", ring, 1024)
            while tail < head:
                pos = data_off + (tail % data_size)
                rec = bytes(ring[pos:pos + 8])
                typ, _, size = struct.unpack("<IHH", rec)
                body = bytearray()
                for i in range(8, size):  # a record may wrap around the ring's end
                    body.append(ring[data_off + ((tail + i) % data_size)])
                if typ == _PERF_RECORD_SAMPLE:
                    raw_len = struct.unpack_from("<I", body, 0)[0]
                    out.append(f"cpu{cpu}:" + bytes(body[4:4 + raw_len]).hex())
                else:
                    out.append(f"cpu{cpu}:record type {typ}")
                tail += size
            struct.pack_into("<Q", ring, 1032, tail)
        return out

    def close(self) -> None:
        for fd, ring in self.events:
            ring.close()
            os.close(fd)
        self.events.clear()


@dataclass
class KernelMap:
    name: str
    fd: int
    info: MapInfo
    ring: _Ring | None = None
    perf: _PerfReader | None = None


class _Ring:
    """Consumer of a BPF ring buffer through its mmap'ed pages."""

    def __init__(self, fd: int, size: int) -> None:
        page = mmap.PAGESIZE
        self.size = size
        self.cons = mmap.mmap(fd, page, flags=mmap.MAP_SHARED,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self.prod = mmap.mmap(fd, page + 2 * size, flags=mmap.MAP_SHARED,
                              prot=mmap.PROT_READ, offset=page)

    def consume(self) -> list[str]:
        page = mmap.PAGESIZE
        records = []
        cons = struct.unpack_from("<Q", self.cons, 0)[0]
        prod = struct.unpack_from("<Q", self.prod, 0)[0]
        while cons < prod:
            off = page + (cons & (self.size - 1))
            length, _ = struct.unpack_from("<II", self.prod, off)
            assert not length & (1 << 31), "ring buffer record still busy after the run"
            size = length & ~(3 << 30)
            if not length & (1 << 30):  # discarded records are skipped
                records.append(self.prod[off + 8:off + 8 + size].hex())
            cons += _round8(size + 8)
        struct.pack_into("<Q", self.cons, 0, cons)
        return records

    def close(self) -> None:
        self.cons.close()
        self.prod.close()


@dataclass
class KernelObject:
    """Programs and maps of one object, loaded and pinned in the kernel; reopened by pin."""

    progs: dict[str, int] = field(default_factory=dict)       # function name -> fd
    maps: dict[str, KernelMap] = field(default_factory=dict)  # kernel map name -> map
    prog_names: dict[int, str] = field(default_factory=dict)  # prog id -> function name
    map_names: dict[int, str] = field(default_factory=dict)   # map id -> kernel name
    ncpus: int = 1

    @classmethod
    def open(cls, progs: Path, maps: Path) -> KernelObject:
        ko = cls(ncpus=possible_cpus())
        try:
            for pin in sorted(progs.iterdir()):
                fd = obj_get(pin)
                ko.progs[pin.name] = fd
                ko.prog_names[prog_id_name(fd)[0]] = pin.name
            for pin in sorted(maps.iterdir()):
                fd = obj_get(pin)
                info = map_info(fd)
                km = KernelMap(info.name, fd, info)
                ko.maps[info.name] = km
                ko.map_names[info.id] = info.name
                if info.type == RINGBUF:
                    km.ring = _Ring(fd, info.max_entries)
                elif info.type == PERF_EVENT_ARRAY:
                    km.perf = _PerfReader(fd, min(ko.ncpus, info.max_entries))
        except BaseException:
            ko.close()
            raise
        return ko

    def close(self) -> None:
        for km in self.maps.values():
            if km.ring is not None:
                km.ring.close()
            if km.perf is not None:
                km.perf.close()
            os.close(km.fd)
        for fd in self.progs.values():
            os.close(fd)
        self.maps.clear()
        self.progs.clear()

    def run(self, prog: str, data: bytes, ctx: bytes | None) -> TestRunResult:
        return prog_test_run(self.progs[prog], data, ctx=ctx)

    def value_size(self, info: MapInfo) -> int:
        if info.type in PERCPU_TYPES:
            return _round8(info.value_size) * self.ncpus
        return info.value_size

    def update(self, name: str, key: bytes, value: bytes) -> None:
        map_update(self.maps[name].fd, key, value)

    def read(self, km: KernelMap) -> object:
        info = km.info
        if info.type == RINGBUF:
            assert km.ring is not None
            return km.ring.consume()
        if info.type in (QUEUE, STACK):
            items = []
            while (v := map_pop(km.fd, info.value_size)) is not None:
                items.append(v)
            for v in items if info.type == QUEUE else reversed(items):
                map_push(km.fd, v)
            return [v.hex() for v in items]
        if info.type == PERF_EVENT_ARRAY:
            assert km.perf is not None
            return km.perf.consume()
        out: dict[str, object] = {}
        key: bytes | None = None
        while (key := map_get_next_key(km.fd, key, info.key_size)) is not None:
            value = map_lookup(km.fd, key, self.value_size(info))
            if value is None:
                continue
            if info.type == PROG_ARRAY:
                out[key.hex()] = self.prog_names.get(struct.unpack("<I", value)[0], "?")
            elif info.type in (ARRAY_OF_MAPS, HASH_OF_MAPS):
                out[key.hex()] = self.map_names.get(struct.unpack("<I", value)[0], "?")
            else:
                out[key.hex()] = value.hex()
        return out

    def read_all(self) -> MapState:
        return {name: self.read(km) for name, km in self.maps.items()}


# --- a private network namespace ----------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_IFF_UP = 0x1


@contextlib.contextmanager
def private_netns() -> Iterator[None]:
    """Run the block in a new network namespace whose ``lo`` is up, then return.

    BPF_PROG_TEST_RUN runs on the loopback device of the caller's namespace, so a program
    that transmits (bpf_clone_redirect to ifindex 1) sends into this private namespace only.
    """
    saved = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                ifr = bytearray(struct.pack("16sH22x", b"lo", 0))
                fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifr)
                flags = struct.unpack_from("H", ifr, 16)[0] | _IFF_UP
                struct.pack_into("H", ifr, 16, flags)
                fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, ifr)
            yield
        finally:
            if _libc.setns(saved, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the test's namespace: {os.strerror(err)}")
    finally:
        os.close(saved)


# --- packets ------------------------------------------------------------------------------------
# Frames of realistic shapes, built with struct (correct IPv4 header and L4 checksums unless
# a test asks for a broken one).  Addresses and ports come from small pools so that flows
# repeat within a sequence and preloaded map entries (routes, NAT rules) are hit.

IPV4_POOL = ("10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.7", "172.16.5.4", "127.0.0.1",
             "203.0.113.9")
IPV6_POOL = ("2001:db8::1", "2001:db8::2", "2001:db8:1::7", "fe80::1", "::1")
PORT_POOL = (53, 80, 443, 5353, 12345, 40000, 1)
MAC_POOL = (bytes.fromhex("020000000001"), bytes.fromhex("020000000002"),
            bytes.fromhex("ffffffffffff"), bytes.fromhex("01005e000001"),
            bytes.fromhex("3333000000fb"))


def ip4(text: str) -> bytes:
    return socket.inet_aton(text)


def ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def inet_csum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum, complemented (ready to store)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ether(dst: bytes, src: bytes, ethertype: int, payload: bytes,
          vlans: tuple[tuple[int, int], ...] = ()) -> bytes:
    """An Ethernet frame; ``vlans`` are (TPID, TCI) tags, outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in vlans)
    return dst + src + tags + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ttl: int = 64, tos: int = 0,
         ident: int = 1, frag: int = 0, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(payload), ident, frag,
                      ttl, proto, 0, ip4(src), ip4(dst)) + options
    return hdr[:10] + struct.pack("!H", inet_csum(hdr)) + hdr[12:] + payload


def l4_v4(src: str, dst: str, proto: int, segment: bytes, csum_at: int) -> bytes:
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, len(segment))
    c = inet_csum(pseudo + segment)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return segment[:csum_at] + struct.pack("!H", c) + segment[csum_at + 2:]


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes, *,
         checksum: bool = True) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return l4_v4(src, dst, 17, seg, 6) if checksum else seg


def tcp4(src: str, dst: str, sport: int, dport: int, flags: int, payload: bytes, *,
         seq: int = 1000, ack: int = 0) -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return l4_v4(src, dst, 6, seg + payload, 16)


def icmp_echo(ident: int, seq: int, payload: bytes) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return msg[:2] + struct.pack("!H", inet_csum(msg)) + msg[4:]


def ipv6(src: str, dst: str, nexthdr: int, payload: bytes, *, hlim: int = 64,
         tclass: int = 0, flow: int = 0) -> bytes:
    first = (6 << 28) | (tclass << 20) | flow
    return struct.pack("!IHBB", first, len(payload), nexthdr, hlim) + ip6(src) + ip6(dst) + payload


def arp_request(sha: bytes, spa: str, tpa: str) -> bytes:
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + ip4(spa) + bytes(6) + ip4(tpa)


# --- the tcemu side, read the way KernelObject.read reads the kernel ------------------------


class TcemuMaps:
    """A tcemu :class:`~tcemu.bpf.collection.Collection`'s maps as ``KernelObject.read``
    shows the kernel's: keyed maps as hex dicts, ring buffers and perf events as the
    records consumed so far, queues/stacks in pop order, program and map slots by name."""

    def __init__(self, coll: Collection) -> None:
        self.coll = coll
        self.readers = {name: RingbufReader(m) for name, m in coll.maps.items()
                        if isinstance(m, RingBufMap)}

    def _name_of(self, obj: object) -> str:
        for name, prog in self.coll.programs.items():
            if prog is obj:
                return name
        for name, m in self.coll.maps.items():
            if m is obj:
                return name
        return f"<not of this object: {obj!r}>"

    def read(self, name: str) -> object:
        m = self.coll.maps[name]
        if isinstance(m, RingBufMap):
            return [bytes(r).hex() for r in self.readers[name].read()]
        if isinstance(m, QueueMap):  # and StackMap: items() in pop order
            return [v.hex() for _, v in m.items()]
        if isinstance(m, PerfEventArrayMap):
            return [f"cpu{r.cpu}:{r.raw.hex()}" for r in m.drain()]
        if isinstance(m, (ProgArrayMap, ArrayOfMaps)):
            return {struct.pack("<I", i).hex(): self._name_of(obj)
                    for i in range(m.spec.max_entries) if (obj := m.slot(i)) is not None}
        if isinstance(m, HashOfMaps):
            return {k.hex(): self._name_of(m.get_map(k)) for k, _ in m.items()}
        return {k.hex(): v.hex() for k, v in m.items()}

    def read_all(self) -> MapState:
        return {name: self.read(name) for name in self.coll.maps}


def tcemu_map_name(kname: str, names: list[str]) -> str:
    """The tcemu map a kernel map name stands for: bpftool names global-data maps
    "<obj prefix>.<section>" (15 chars at most)."""
    if kname in names:
        return kname
    if "." in kname:
        suffix = kname[kname.index("."):]
        for n in names:
            if n == suffix or (n.startswith(suffix) and len(kname) == 15):
                return n
    raise AssertionError(f"kernel map {kname!r} has no tcemu counterpart among {names}")


def remove_pins(*dirs: Path) -> None:
    """Unpin everything in these bpffs directories and remove them."""
    for d in dirs:
        if d.exists():
            for pin in d.iterdir():
                pin.unlink()
            d.rmdir()
