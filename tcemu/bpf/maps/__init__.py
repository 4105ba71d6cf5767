"""BPF maps: one module per type family behind the :class:`Map` protocol.

The canonical documentation lives in the Linux kernel (kernel/bpf/hashtab.c, arraymap.c,
lpm_trie.c, queue_stack_maps.c, ringbuf.c, map_in_map.c, syscall.c and uapi
``linux/bpf.h``); every errno here was measured against Linux 6.18, and the differential
tests in ``tests/maps`` replay the host operations on the running kernel.

Layout::

    spec.py         MapSpec and the BPF_MAP_CREATE checks; flag and pinning constants
    base.py         Map protocol, MapBase (syscall-level checks, errors, batches, vm_* defaults)
    registry.py     per-Env map ids, map handles (MAPS_RID << 32 | id), program ids, rings
    hash.py         HASH, PERCPU_HASH                  lru.py      LRU_HASH, LRU_PERCPU_HASH
    array.py        ARRAY, PERCPU_ARRAY                lpm_trie.py LPM_TRIE
    prog_array.py   PROG_ARRAY (+ the fd-array rules)  perf_event.py PERF_EVENT_ARRAY
    map_in_map.py   ARRAY_OF_MAPS, HASH_OF_MAPS        queue_stack.py QUEUE, STACK
    ringbuf.py      RINGBUF and RingbufReader          pin.py      bpffs pins, loader paths
    errors.py       MapError and its subclasses (to move into tcemu.errors)

Values live in ``env.memory`` (see each module for its layout), so the address that
``vm_lookup`` returns is read and written in place by programs.  Host operations raise
:class:`MapError` subclasses carrying the kernel's errno; ``vm_*`` operations return what
the helpers return.  Every deliberate difference from the kernel is tagged KERNEL-DIFF.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from tcemu.bpf.maps.array import ArrayMap, PercpuArrayMap
from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, BatchResult, Map, MapBase
from tcemu.bpf.maps.errors import (
    ENOTSUPP,
    BatchError,
    KeyExistsError,
    KeyNotFoundError,
    KeySizeError,
    MapError,
    ValueSizeError,
)
from tcemu.bpf.maps.hash import HashMap, PercpuHashMap
from tcemu.bpf.maps.lpm_trie import LpmTrieMap, lpm_key
from tcemu.bpf.maps.lru import LruHashMap, LruPercpuHashMap
from tcemu.bpf.maps.map_in_map import ArrayOfMaps, HashOfMaps
from tcemu.bpf.maps.perf_event import PerfEventArrayMap, PerfRecord
from tcemu.bpf.maps.pin import create_or_reuse, get_pinned, pin, pin_path, unpin
from tcemu.bpf.maps.prog_array import ProgArrayMap
from tcemu.bpf.maps.queue_stack import QueueMap, StackMap
from tcemu.bpf.maps.registry import map_from_handle, map_handle, prog_id
from tcemu.bpf.maps.ringbuf import RingBufMap, RingbufReader, ringbuf_of
from tcemu.bpf.maps.spec import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_CURRENT_CPU,
    BPF_F_LOCK,
    BPF_NOEXIST,
    LIBBPF_PIN_BY_NAME,
    PIN_GLOBAL_NS,
    PIN_NONE,
    PIN_OBJECT_NS,
    MapSpec,
)
from tcemu.bpf.uapi import BpfMapType

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_CURRENT_CPU",
    "BPF_F_LOCK",
    "BPF_NOEXIST",
    "DEFAULT_MEMORY_LIMIT",
    "ENOTSUPP",
    "LIBBPF_PIN_BY_NAME",
    "MAP_TYPES",
    "PIN_GLOBAL_NS",
    "PIN_NONE",
    "PIN_OBJECT_NS",
    "ArrayMap",
    "ArrayOfMaps",
    "BatchError",
    "BatchResult",
    "HashMap",
    "HashOfMaps",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeySizeError",
    "LpmTrieMap",
    "LruHashMap",
    "LruPercpuHashMap",
    "Map",
    "MapBase",
    "MapError",
    "MapSpec",
    "PercpuArrayMap",
    "PercpuHashMap",
    "PerfEventArrayMap",
    "PerfRecord",
    "ProgArrayMap",
    "QueueMap",
    "RingBufMap",
    "RingbufReader",
    "StackMap",
    "ValueSizeError",
    "create_map",
    "create_or_reuse",
    "get_pinned",
    "lpm_key",
    "map_from_handle",
    "map_handle",
    "pin",
    "pin_path",
    "prog_id",
    "ringbuf_of",
    "unpin",
]

MAP_TYPES: dict[BpfMapType, type[MapBase]] = {
    BpfMapType.HASH: HashMap,
    BpfMapType.ARRAY: ArrayMap,
    BpfMapType.PROG_ARRAY: ProgArrayMap,
    BpfMapType.PERF_EVENT_ARRAY: PerfEventArrayMap,
    BpfMapType.PERCPU_HASH: PercpuHashMap,
    BpfMapType.PERCPU_ARRAY: PercpuArrayMap,
    BpfMapType.LRU_HASH: LruHashMap,
    BpfMapType.LRU_PERCPU_HASH: LruPercpuHashMap,
    BpfMapType.LPM_TRIE: LpmTrieMap,
    BpfMapType.ARRAY_OF_MAPS: ArrayOfMaps,
    BpfMapType.HASH_OF_MAPS: HashOfMaps,
    BpfMapType.QUEUE: QueueMap,
    BpfMapType.STACK: StackMap,
    BpfMapType.RINGBUF: RingBufMap,
}
"""The map types tcemu emulates; every other type the kernel knows fails to create."""


def create_map(spec: MapSpec, env: Env, *,
               memory_limit: int = DEFAULT_MEMORY_LIMIT) -> MapBase:
    """``BPF_MAP_CREATE``: a new, empty map of ``spec`` in ``env``.

    ``spec`` was validated when it was built; this adds the checks that need the Env (the
    number of CPUs, the memory budget: ENOMEM).  A type the kernel has but tcemu does not
    emulate (DEVMAP, SOCKMAP, ...) raises MapError with EOPNOTSUPP.
    """
    cls = MAP_TYPES.get(spec.type)
    if cls is None:
        raise MapError(f"create map {spec.name!r}: map type {spec.type.name} is not emulated",
                       errno=errno.EOPNOTSUPP)
    return cls(spec, env, memory_limit=memory_limit)
