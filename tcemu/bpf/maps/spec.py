"""MapSpec: what ``BPF_MAP_CREATE`` is given, checked the way the kernel checks it.

:class:`MapSpec` mirrors the ``BPF_MAP_CREATE`` part of ``union bpf_attr`` (uapi
``linux/bpf.h``) plus the loader-side ``pinning`` attribute.  Its constructor runs the
kernel's attribute checks: the generic ones of ``map_create()`` (kernel/bpf/syscall.c) and
each type's ``map_alloc_check``/``map_alloc`` (kernel/bpf/hashtab.c ``htab_map_alloc_check``,
arraymap.c ``array_map_alloc_check``/``fd_array_map_alloc_check``, lpm_trie.c ``trie_alloc``,
queue_stack_maps.c ``queue_stack_map_alloc_check``, ringbuf.c ``ringbuf_map_alloc``,
map_in_map.c ``bpf_map_meta_alloc``), raising :class:`~tcemu.bpf.maps.errors.MapError` with
the errno the kernel returns.  Checks that need the environment (the number of CPUs, the
memory budget) run when the map is created (:func:`tcemu.bpf.maps.create_map`).

Every errno below was measured against Linux 6.18 (``tests/maps/test_spec.py`` replays them
on the running kernel).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from tcemu.bpf.maps.errors import ENOTSUPP, KeySizeError, MapError, ValueSizeError
from tcemu.bpf.uapi import BpfMapType

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_ACCESS_MASK",
    "BPF_F_CURRENT_CPU",
    "BPF_F_INDEX_MASK",
    "BPF_F_INNER_MAP",
    "BPF_F_LOCK",
    "BPF_F_MMAPABLE",
    "BPF_F_NO_COMMON_LRU",
    "BPF_F_NO_PREALLOC",
    "BPF_F_NUMA_NODE",
    "BPF_F_PRESERVE_ELEMS",
    "BPF_F_RDONLY",
    "BPF_F_RDONLY_PROG",
    "BPF_F_WRONLY",
    "BPF_F_WRONLY_PROG",
    "BPF_F_ZERO_SEED",
    "BPF_NOEXIST",
    "HTAB_ELEM_SIZE",
    "KMALLOC_MAX_SIZE",
    "LIBBPF_PIN_BY_NAME",
    "PAGE_SIZE",
    "PCPU_MIN_UNIT_SIZE",
    "PIN_GLOBAL_NS",
    "PIN_NONE",
    "PIN_OBJECT_NS",
    "MapSpec",
    "round8",
]

# --- update flags (uapi linux/bpf.h: BPF_ANY ...) -------------------------------------------
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# --- map_flags (uapi linux/bpf.h, the anonymous enum after BPF_F_LOCK) ----------------------
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_NUMA_NODE = 1 << 2
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_STACK_BUILD_ID = 1 << 5
BPF_F_ZERO_SEED = 1 << 6
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
BPF_F_MMAPABLE = 1 << 10
BPF_F_PRESERVE_ELEMS = 1 << 11
BPF_F_INNER_MAP = 1 << 12
BPF_F_ACCESS_MASK = BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG

# --- bpf_perf_event_output flags (uapi linux/bpf.h) ------------------------------------------
BPF_F_INDEX_MASK = 0xFFFF_FFFF
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK

# --- pinning (the ELF map definition's ``pinning`` field) ------------------------------------
# iproute2 (include/bpf_elf.h): PIN_NONE, PIN_OBJECT_NS (/sys/fs/bpf/tc/<object id>/NAME),
# PIN_GLOBAL_NS (/sys/fs/bpf/tc/globals/NAME).  libbpf (libbpf.h enum libbpf_pin_type):
# LIBBPF_PIN_NONE 0, LIBBPF_PIN_BY_NAME 1 (<pin_root_path, default /sys/fs/bpf>/NAME).
# The value 1 therefore means different things to the two loaders; see maps/pin.py.
PIN_NONE = 0
PIN_OBJECT_NS = 1
PIN_GLOBAL_NS = 2
LIBBPF_PIN_BY_NAME = 1

# --- kernel size limits (x86-64, 4 KiB pages, MAX_PAGE_ORDER 10) -----------------------------
PAGE_SIZE = 4096
KMALLOC_MAX_SIZE = 4 << 20          # 1 << (PAGE_SHIFT + MAX_PAGE_ORDER)
PCPU_MIN_UNIT_SIZE = 32 << 10       # per-CPU values are bounded by one percpu unit
HTAB_ELEM_SIZE = 48                 # sizeof(struct htab_elem): key + value must stay below
LPM_NODE_SIZE = 24                  # sizeof(struct lpm_trie_node)
LPM_DATA_SIZE_MAX = 256
INT_MAX = 0x7FFF_FFFF
U32_MAX = 0xFFFF_FFFF
BUCKET_SIZE = 16                    # sizeof(struct bucket)

_HASH_FAMILY = frozenset({BpfMapType.HASH, BpfMapType.PERCPU_HASH, BpfMapType.LRU_HASH,
                          BpfMapType.LRU_PERCPU_HASH, BpfMapType.HASH_OF_MAPS})
_ARRAY_FAMILY = frozenset({BpfMapType.ARRAY, BpfMapType.PERCPU_ARRAY, BpfMapType.PROG_ARRAY,
                           BpfMapType.PERF_EVENT_ARRAY, BpfMapType.ARRAY_OF_MAPS,
                           BpfMapType.CGROUP_ARRAY})
_FD_ARRAYS = frozenset({BpfMapType.PROG_ARRAY, BpfMapType.PERF_EVENT_ARRAY,
                        BpfMapType.ARRAY_OF_MAPS, BpfMapType.CGROUP_ARRAY})
_PERCPU = frozenset({BpfMapType.PERCPU_HASH, BpfMapType.LRU_PERCPU_HASH,
                     BpfMapType.PERCPU_ARRAY})
_LRU = frozenset({BpfMapType.LRU_HASH, BpfMapType.LRU_PERCPU_HASH})
MAP_IN_MAP = frozenset({BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS})

_HTAB_FLAGS = (BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
               | BPF_F_ZERO_SEED)
_ARRAY_FLAGS = (BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS
                | BPF_F_INNER_MAP)
_LPM_FLAGS = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
_QUEUE_FLAGS = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
_RINGBUF_FLAGS = BPF_F_NUMA_NODE


def round8(size: int) -> int:
    """``round_up(size, 8)``: the stride of array values and per-CPU slots."""
    return (size + 7) & ~7


def _pow2_at_least(n: int) -> int:
    return 1 << (n - 1).bit_length() if n > 1 else 1


@dataclass(frozen=True)
class MapSpec:
    """The attributes of one map, validated on construction like ``BPF_MAP_CREATE``.

    ``flags`` is ``map_flags``; ``numa_node`` is read only with ``BPF_F_NUMA_NODE`` (tcemu
    emulates one NUMA node, 0); ``map_extra`` must be 0 (only bloom filters and arenas use
    it, and tcemu emulates neither); ``inner`` is the template of the inner maps of
    ARRAY_OF_MAPS/HASH_OF_MAPS (the kernel's ``inner_map_fd``) and is ignored by other
    types, as the kernel ignores ``inner_map_fd``.  ``pinning`` is the loader's ELF
    attribute (PIN_* for iproute2, LIBBPF_PIN_* for libbpf); the kernel never sees it.
    """

    name: str
    type: BpfMapType
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    inner: MapSpec | None = None
    pinning: int = PIN_NONE
    map_extra: int = 0
    numa_node: int = 0

    def __post_init__(self) -> None:
        try:
            kind = BpfMapType(self.type)
        except ValueError:
            raise self._error(f"unknown map type {self.type}", errno.EINVAL) from None
        if kind is BpfMapType.UNSPEC:
            raise self._error("map type UNSPEC", errno.EINVAL)
        object.__setattr__(self, "type", kind)
        self._check_common()
        self._check_type()

    # -- helpers -------------------------------------------------------------------------

    def _error(self, cause: str, code: int) -> MapError:
        return MapError(f"create map {self.name!r}: {cause}", errno=code)

    def _fail(self, cause: str, code: int = errno.EINVAL) -> None:
        raise self._error(cause, code)

    def _expect_sizes(self, key: int | None, value: int | None) -> None:
        """Typed EINVAL errors for types whose key or value size is fixed (aya style)."""
        if key is not None and self.key_size != key:
            raise KeySizeError(f"create map {self.name!r}", got=self.key_size, expected=key)
        if value is not None and self.value_size != value:
            raise ValueSizeError(f"create map {self.name!r}", got=self.value_size,
                                 expected=value)

    @property
    def percpu(self) -> bool:
        return self.type in _PERCPU

    @property
    def lru(self) -> bool:
        return self.type in _LRU

    @property
    def prealloc(self) -> bool:
        return not self.flags & BPF_F_NO_PREALLOC

    def compatible(self, other: MapSpec) -> bool:
        """Whether a pinned map created from ``other`` may be reused for this spec.

        The union of iproute2's ``bpf_map_selfcheck_pinned`` (type, key, value, max_entries,
        flags) and libbpf's ``map_is_reuse_compat`` (the same plus map_extra).
        """
        return (self.type, self.key_size, self.value_size, self.max_entries, self.flags,
                self.map_extra) == (other.type, other.key_size, other.value_size,
                                    other.max_entries, other.flags, other.map_extra)

    # -- generic checks of map_create() ---------------------------------------------------

    def _check_common(self) -> None:
        for field in ("key_size", "value_size", "max_entries", "flags", "numa_node"):
            value = getattr(self, field)
            if not 0 <= value <= U32_MAX:
                self._fail(f"{field} {value} is not a u32")
        if not 0 <= self.map_extra < 1 << 64:
            self._fail(f"map_extra {self.map_extra} is not a u64")
        if self.map_extra and self.type not in (BpfMapType.BLOOM_FILTER,):
            self._fail("map_extra is only for bloom filters and arenas")
        if self.flags & BPF_F_NUMA_NODE and self.numa_node != 0:
            self._fail(f"numa node {self.numa_node} is not online (tcemu emulates node 0)")
        if self.flags & BPF_F_RDONLY and self.flags & BPF_F_WRONLY:
            self._fail("BPF_F_RDONLY and BPF_F_WRONLY together")

    def _access_ok(self) -> bool:
        both = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG
        return self.flags & both != both

    # -- per-type map_alloc_check ---------------------------------------------------------

    def _check_type(self) -> None:
        kind = self.type
        if kind in _HASH_FAMILY:
            self._check_hash()
        elif kind in _ARRAY_FAMILY:
            self._check_array()
        elif kind is BpfMapType.LPM_TRIE:
            self._check_lpm()
        elif kind in (BpfMapType.QUEUE, BpfMapType.STACK):
            self._check_queue()
        elif kind is BpfMapType.RINGBUF:
            self._check_ringbuf()
        if kind in MAP_IN_MAP:
            self._check_inner()

    def _check_hash(self) -> None:
        """htab_map_alloc_check, then the size checks of htab_map_alloc."""
        if self.type is BpfMapType.HASH_OF_MAPS:
            self._expect_sizes(None, 4)             # values are map fds
        numa = self.flags & BPF_F_NUMA_NODE
        if self.flags & ~_HTAB_FLAGS or not self._access_ok():
            self._fail(f"flags {self.flags:#x} not supported by hash maps")
        if not self.lru and self.flags & BPF_F_NO_COMMON_LRU:
            self._fail("BPF_F_NO_COMMON_LRU without an LRU map")
        if self.lru and not self.prealloc:
            self._fail("LRU maps are always preallocated (BPF_F_NO_PREALLOC)", ENOTSUPP)
        if numa and (self.percpu or self.flags & BPF_F_NO_COMMON_LRU):
            self._fail("BPF_F_NUMA_NODE with per-CPU values or LRU lists")
        if not (self.max_entries and self.key_size and self.value_size):
            self._fail("max_entries, key_size and value_size must be > 0")
        if self.key_size + self.value_size >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE:
            self._fail("key and value exceed KMALLOC_MAX_SIZE", errno.E2BIG)
        if self.percpu and round8(self.value_size) > PCPU_MIN_UNIT_SIZE:
            self._fail("per-CPU value exceeds PCPU_MIN_UNIT_SIZE", errno.E2BIG)
        if self.max_entries > 1 << 31 or \
                _pow2_at_least(self.max_entries) > U32_MAX // BUCKET_SIZE:
            self._fail(f"max_entries {self.max_entries} needs too many buckets", errno.E2BIG)

    def _check_array(self) -> None:
        """fd_array_map_alloc_check and array_map_alloc_check."""
        if self.type in _FD_ARRAYS:
            self._expect_sizes(None, 4)             # values are fds
            if self.flags & BPF_F_MMAPABLE:
                self._fail("fd arrays cannot be mmapped")
        self._expect_sizes(4, None)                 # the key is a u32 index
        percpu = self.type is BpfMapType.PERCPU_ARRAY
        if (not self.max_entries or not self.value_size
                or self.flags & ~_ARRAY_FLAGS or not self._access_ok()
                or (percpu and self.flags & BPF_F_NUMA_NODE)):
            self._fail(f"arrays take a value, max_entries > 0 and flags in {_ARRAY_FLAGS:#x}")
        if self.type is not BpfMapType.ARRAY and \
                self.flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP):
            self._fail("BPF_F_MMAPABLE/BPF_F_INNER_MAP only for plain arrays")
        if self.type is not BpfMapType.PERF_EVENT_ARRAY and self.flags & BPF_F_PRESERVE_ELEMS:
            self._fail("BPF_F_PRESERVE_ELEMS only for perf event arrays")
        if self.value_size > INT_MAX:
            self._fail("value_size exceeds INT_MAX", errno.E2BIG)
        if percpu and round8(self.value_size) > PCPU_MIN_UNIT_SIZE:
            self._fail("per-CPU value exceeds PCPU_MIN_UNIT_SIZE", errno.E2BIG)

    def _check_lpm(self) -> None:
        """trie_alloc: every violation is EINVAL."""
        value_max = KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - LPM_NODE_SIZE
        if (not self.max_entries or self.prealloc or self.flags & ~_LPM_FLAGS
                or not self._access_ok() or not 5 <= self.key_size <= 4 + LPM_DATA_SIZE_MAX
                or not 1 <= self.value_size <= value_max):
            self._fail("LPM tries need BPF_F_NO_PREALLOC, a 5..260-byte key "
                       "(u32 prefixlen + data) and a value")

    def _check_queue(self) -> None:
        """queue_stack_map_alloc_check."""
        self._expect_sizes(0, None)
        if (not self.max_entries or not self.value_size
                or self.flags & ~_QUEUE_FLAGS or not self._access_ok()):
            self._fail("queues and stacks take a value and max_entries > 0")
        if self.value_size > KMALLOC_MAX_SIZE:
            self._fail("value exceeds KMALLOC_MAX_SIZE", errno.E2BIG)

    def _check_ringbuf(self) -> None:
        """ringbuf_map_alloc."""
        if self.flags & ~_RINGBUF_FLAGS:
            self._fail(f"flags {self.flags:#x} not supported by ring buffers")
        self._expect_sizes(0, 0)
        size = self.max_entries
        if size & (size - 1) or not size or size % PAGE_SIZE:
            self._fail(f"ring buffer size {size} is not a power-of-2 multiple of the page size")

    def _check_inner(self) -> None:
        """bpf_map_meta_alloc: the inner template must be a real, single-level map."""
        inner = self.inner
        if inner is None:
            self._fail("map-in-map needs an inner map template")
            return
        if inner.type in MAP_IN_MAP:
            self._fail("map-in-map nests only one level")
        if inner.type is BpfMapType.PROG_ARRAY:
            self._fail("program arrays cannot be inner maps", ENOTSUPP)
