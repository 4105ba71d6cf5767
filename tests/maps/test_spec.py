"""MapSpec validation: one table of BPF_MAP_CREATE attributes and the errno of each.

The same table runs on MapSpec and, marked ``kernel``, through ``BPF_MAP_CREATE`` on the
running kernel, so every expected errno here is one the kernel returns.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import (
    ENOTSUPP,
    KeySizeError,
    MapError,
    MapSpec,
    ValueSizeError,
    create_map,
)
from tcemu.bpf.maps import spec as ms

from .kernel_ext import KMap
from .util import T

NOPRE = ms.BPF_F_NO_PREALLOC
OK = 0
EINVAL, E2BIG = errno.EINVAL, errno.E2BIG


@dataclass(frozen=True)
class Case:
    kind: T
    key: int
    value: int
    entries: int
    flags: int = 0
    expect: int = OK
    numa: int = 0
    extra: int = 0
    inner: tuple[T, int, int, int, int] | None = None


INNER_ARRAY = (T.ARRAY, 4, 4, 4, 0)
INNER_HASH = (T.HASH, 4, 4, 4, 0)

CASES: dict[str, Case] = {
    # hash family: htab_map_alloc_check + htab_map_alloc
    "hash": Case(T.HASH, 4, 4, 1),
    "hash-key0": Case(T.HASH, 0, 4, 1, expect=EINVAL),
    "hash-value0": Case(T.HASH, 4, 0, 1, expect=EINVAL),
    "hash-entries0": Case(T.HASH, 4, 4, 0, expect=EINVAL),
    "hash-key65535": Case(T.HASH, 65535, 4, 1),
    "hash-kv-max": Case(T.HASH, 4, 4194251, 1),
    "hash-kv-too-big": Case(T.HASH, 4, 4194252, 1, expect=E2BIG),
    "hash-kv-too-big-noprealloc": Case(T.HASH, 64, 4194192, 1, NOPRE, expect=E2BIG),
    "percpu-hash-unit": Case(T.PERCPU_HASH, 4, 32768, 1),
    "percpu-hash-over-unit": Case(T.PERCPU_HASH, 4, 32769, 1, expect=E2BIG),
    "hash-mmapable": Case(T.HASH, 4, 4, 1, ms.BPF_F_MMAPABLE, expect=EINVAL),
    "hash-preserve": Case(T.HASH, 4, 4, 1, ms.BPF_F_PRESERVE_ELEMS, expect=EINVAL),
    "hash-inner-map-flag": Case(T.HASH, 4, 4, 1, ms.BPF_F_INNER_MAP, expect=EINVAL),
    "hash-build-id": Case(T.HASH, 4, 4, 1, ms.BPF_F_STACK_BUILD_ID, expect=EINVAL),
    "hash-no-common-lru": Case(T.HASH, 4, 4, 1, ms.BPF_F_NO_COMMON_LRU, expect=EINVAL),
    "hash-zero-seed": Case(T.HASH, 4, 4, 1, ms.BPF_F_ZERO_SEED),
    "hash-rdonly-prog": Case(T.HASH, 4, 4, 1, ms.BPF_F_RDONLY_PROG),
    "hash-rdonly-wronly": Case(T.HASH, 4, 4, 1, ms.BPF_F_RDONLY | ms.BPF_F_WRONLY,
                               expect=EINVAL),
    "hash-prog-rdonly-wronly": Case(T.HASH, 4, 4, 1,
                                    ms.BPF_F_RDONLY_PROG | ms.BPF_F_WRONLY_PROG, expect=EINVAL),
    "hash-numa0": Case(T.HASH, 4, 4, 1, ms.BPF_F_NUMA_NODE),
    "hash-numa1": Case(T.HASH, 4, 4, 1, ms.BPF_F_NUMA_NODE, expect=EINVAL, numa=1),
    "hash-numa-ignored-without-flag": Case(T.HASH, 4, 4, 1, numa=7),
    "percpu-hash-numa": Case(T.PERCPU_HASH, 4, 4, 1, ms.BPF_F_NUMA_NODE, expect=EINVAL),
    "hash-map-extra": Case(T.HASH, 4, 4, 1, extra=1, expect=EINVAL),
    "hash-buckets-max": Case(T.HASH, 4, 4, 1 << 27, NOPRE),
    "hash-buckets-over": Case(T.HASH, 4, 4, (1 << 27) + 1, NOPRE, expect=E2BIG),
    "hash-entries-u32max": Case(T.HASH, 4, 8, 0xFFFF_FFFF, NOPRE, expect=E2BIG),
    "lru": Case(T.LRU_HASH, 4, 4, 1),
    "lru-noprealloc": Case(T.LRU_HASH, 4, 4, 1, NOPRE, expect=ENOTSUPP),
    "lru-no-common": Case(T.LRU_HASH, 4, 4, 3, ms.BPF_F_NO_COMMON_LRU),
    "lru-percpu-no-common": Case(T.LRU_PERCPU_HASH, 4, 4, 1, ms.BPF_F_NO_COMMON_LRU),
    "lru-no-common-numa": Case(T.LRU_HASH, 4, 4, 2,
                               ms.BPF_F_NO_COMMON_LRU | ms.BPF_F_NUMA_NODE, expect=EINVAL),
    "percpu-hash-no-common": Case(T.PERCPU_HASH, 4, 4, 1, ms.BPF_F_NO_COMMON_LRU,
                                  expect=EINVAL),
    # array family: array_map_alloc_check, fd_array_map_alloc_check
    "array": Case(T.ARRAY, 4, 4, 1),
    "array-key8": Case(T.ARRAY, 8, 4, 1, expect=EINVAL),
    "array-value0": Case(T.ARRAY, 4, 0, 1, expect=EINVAL),
    "array-entries0": Case(T.ARRAY, 4, 4, 0, expect=EINVAL),
    "array-noprealloc": Case(T.ARRAY, 4, 4, 1, NOPRE, expect=EINVAL),
    "array-no-common-lru": Case(T.ARRAY, 4, 4, 1, ms.BPF_F_NO_COMMON_LRU, expect=EINVAL),
    "array-zero-seed": Case(T.ARRAY, 4, 4, 1, ms.BPF_F_ZERO_SEED, expect=EINVAL),
    "array-mmapable": Case(T.ARRAY, 4, 4, 1, ms.BPF_F_MMAPABLE),
    "array-inner-map": Case(T.ARRAY, 4, 4, 1, ms.BPF_F_INNER_MAP),
    "array-preserve": Case(T.ARRAY, 4, 4, 1, ms.BPF_F_PRESERVE_ELEMS, expect=EINVAL),
    "array-numa": Case(T.ARRAY, 4, 4, 1, ms.BPF_F_NUMA_NODE),
    "array-value-over-int-max": Case(T.ARRAY, 4, 0x8000_0000, 1, expect=E2BIG),
    "percpu-array-mmapable": Case(T.PERCPU_ARRAY, 4, 4, 1, ms.BPF_F_MMAPABLE, expect=EINVAL),
    "percpu-array-inner": Case(T.PERCPU_ARRAY, 4, 4, 1, ms.BPF_F_INNER_MAP, expect=EINVAL),
    "percpu-array-numa": Case(T.PERCPU_ARRAY, 4, 4, 1, ms.BPF_F_NUMA_NODE, expect=EINVAL),
    "percpu-array-unit": Case(T.PERCPU_ARRAY, 4, 32768, 1),
    "percpu-array-over-unit": Case(T.PERCPU_ARRAY, 4, 32769, 1, expect=E2BIG),
    "prog-array": Case(T.PROG_ARRAY, 4, 4, 1),
    "prog-array-value8": Case(T.PROG_ARRAY, 4, 8, 1, expect=EINVAL),
    "prog-array-key8": Case(T.PROG_ARRAY, 8, 4, 1, expect=EINVAL),
    "prog-array-mmapable": Case(T.PROG_ARRAY, 4, 4, 1, ms.BPF_F_MMAPABLE, expect=EINVAL),
    "prog-array-inner-flag": Case(T.PROG_ARRAY, 4, 4, 1, ms.BPF_F_INNER_MAP, expect=EINVAL),
    "perf": Case(T.PERF_EVENT_ARRAY, 4, 4, 1),
    "perf-preserve": Case(T.PERF_EVENT_ARRAY, 4, 4, 1, ms.BPF_F_PRESERVE_ELEMS),
    "perf-value8": Case(T.PERF_EVENT_ARRAY, 4, 8, 1, expect=EINVAL),
    "perf-entries0": Case(T.PERF_EVENT_ARRAY, 4, 4, 0, expect=EINVAL),
    # LPM trie: trie_alloc
    "lpm": Case(T.LPM_TRIE, 8, 4, 1, NOPRE),
    "lpm-prealloc": Case(T.LPM_TRIE, 8, 4, 1, expect=EINVAL),
    "lpm-key4": Case(T.LPM_TRIE, 4, 4, 1, NOPRE, expect=EINVAL),
    "lpm-key5": Case(T.LPM_TRIE, 5, 4, 1, NOPRE),
    "lpm-key260": Case(T.LPM_TRIE, 260, 4, 1, NOPRE),
    "lpm-key261": Case(T.LPM_TRIE, 261, 4, 1, NOPRE, expect=EINVAL),
    "lpm-value0": Case(T.LPM_TRIE, 8, 0, 1, NOPRE, expect=EINVAL),
    "lpm-entries0": Case(T.LPM_TRIE, 8, 4, 0, NOPRE, expect=EINVAL),
    "lpm-value-max": Case(T.LPM_TRIE, 8, 4194024, 1, NOPRE),
    "lpm-value-over": Case(T.LPM_TRIE, 8, 4194025, 1, NOPRE, expect=EINVAL),
    "lpm-no-common-lru": Case(T.LPM_TRIE, 8, 4, 1, NOPRE | ms.BPF_F_NO_COMMON_LRU,
                              expect=EINVAL),
    "lpm-numa": Case(T.LPM_TRIE, 8, 4, 1, NOPRE | ms.BPF_F_NUMA_NODE),
    "lpm-mmapable": Case(T.LPM_TRIE, 8, 4, 1, NOPRE | ms.BPF_F_MMAPABLE, expect=EINVAL),
    # queue and stack: queue_stack_map_alloc_check
    "queue": Case(T.QUEUE, 0, 4, 1),
    "stack": Case(T.STACK, 0, 4, 1),
    "queue-key4": Case(T.QUEUE, 4, 4, 1, expect=EINVAL),
    "queue-value0": Case(T.QUEUE, 0, 0, 1, expect=EINVAL),
    "queue-entries0": Case(T.STACK, 0, 4, 0, expect=EINVAL),
    "queue-noprealloc": Case(T.QUEUE, 0, 4, 1, NOPRE, expect=EINVAL),
    "queue-value-kmalloc-max": Case(T.QUEUE, 0, 4 << 20, 1),
    "queue-value-over": Case(T.QUEUE, 0, (4 << 20) + 1, 1, expect=E2BIG),
    "queue-rdonly": Case(T.QUEUE, 0, 4, 1, ms.BPF_F_RDONLY),
    "queue-mmapable": Case(T.QUEUE, 0, 4, 1, ms.BPF_F_MMAPABLE, expect=EINVAL),
    # ring buffer: ringbuf_map_alloc
    "ringbuf": Case(T.RINGBUF, 0, 0, 4096),
    "ringbuf-8k": Case(T.RINGBUF, 0, 0, 8192),
    "ringbuf-not-pow2": Case(T.RINGBUF, 0, 0, 3 * 4096, expect=EINVAL),
    "ringbuf-sub-page": Case(T.RINGBUF, 0, 0, 2048, expect=EINVAL),
    "ringbuf-zero": Case(T.RINGBUF, 0, 0, 0, expect=EINVAL),
    "ringbuf-key": Case(T.RINGBUF, 4, 0, 4096, expect=EINVAL),
    "ringbuf-value": Case(T.RINGBUF, 0, 4, 4096, expect=EINVAL),
    "ringbuf-numa": Case(T.RINGBUF, 0, 0, 4096, ms.BPF_F_NUMA_NODE),
    "ringbuf-rdonly": Case(T.RINGBUF, 0, 0, 4096, ms.BPF_F_RDONLY, expect=EINVAL),
    "ringbuf-noprealloc": Case(T.RINGBUF, 0, 0, 4096, NOPRE, expect=EINVAL),
    # map in map: bpf_map_meta_alloc
    "array-of-maps": Case(T.ARRAY_OF_MAPS, 4, 4, 1, inner=INNER_ARRAY),
    "array-of-maps-value8": Case(T.ARRAY_OF_MAPS, 4, 8, 1, expect=EINVAL, inner=INNER_ARRAY),
    "array-of-maps-no-inner": Case(T.ARRAY_OF_MAPS, 4, 4, 1, expect=EINVAL),
    "array-of-maps-inner-flag": Case(T.ARRAY_OF_MAPS, 4, 4, 1, ms.BPF_F_INNER_MAP,
                                     expect=EINVAL, inner=INNER_ARRAY),
    "array-of-prog-arrays": Case(T.ARRAY_OF_MAPS, 4, 4, 1, expect=ENOTSUPP,
                                 inner=(T.PROG_ARRAY, 4, 4, 1, 0)),
    "hash-of-maps": Case(T.HASH_OF_MAPS, 4, 4, 1, inner=INNER_HASH),
    "hash-of-maps-value8": Case(T.HASH_OF_MAPS, 4, 8, 1, expect=EINVAL, inner=INNER_HASH),
    "hash-of-maps-no-inner": Case(T.HASH_OF_MAPS, 4, 4, 1, expect=EINVAL),
    "hash-of-ringbufs": Case(T.HASH_OF_MAPS, 4, 4, 1, inner=(T.RINGBUF, 0, 0, 4096, 0)),
    "unspec": Case(T.UNSPEC, 4, 4, 1, expect=EINVAL),
}


def _spec(case: Case) -> MapSpec:
    inner = None
    if case.inner is not None:
        kind, key, value, entries, flags = case.inner
        inner = MapSpec("inner", kind, key, value, entries, flags)
    return MapSpec("m", case.kind, case.key, case.value, case.entries, case.flags,
                   inner=inner, numa_node=case.numa, map_extra=case.extra)


@pytest.mark.parametrize("name", CASES)
def test_mapspec_validation(name: str) -> None:
    case = CASES[name]
    if case.expect == OK:
        _spec(case)
        return
    with pytest.raises(MapError) as info:
        _spec(case)
    assert info.value.errno == case.expect, str(info.value)


@pytest.mark.kernel
@pytest.mark.parametrize("name", CASES)
def test_kernel_agrees(name: str) -> None:
    case = CASES[name]
    inner = KMap.create(*case.inner) if case.inner is not None else None
    try:
        assert inner is None or inner.fd >= 0
        kmap = KMap.create(case.kind, case.key, case.value, case.entries, case.flags,
                           inner_fd=inner.fd if inner else 0, numa_node=case.numa,
                           map_extra=case.extra)
        got = kmap.errno
        kmap.close()
    finally:
        if inner is not None:
            inner.close()
    assert got == case.expect


def test_fixed_sizes_raise_typed_errors() -> None:
    with pytest.raises(KeySizeError) as info:
        MapSpec("a", T.ARRAY, 8, 4, 1)
    assert (info.value.got, info.value.expected, info.value.errno) == (8, 4, errno.EINVAL)
    assert str(info.value) == "create map 'a': key is 8 bytes, expected 4 (EINVAL)"
    with pytest.raises(ValueSizeError) as vinfo:
        MapSpec("p", T.PROG_ARRAY, 4, 8, 1)
    assert (vinfo.value.got, vinfo.value.expected) == (8, 4)
    with pytest.raises(KeySizeError):
        MapSpec("q", T.QUEUE, 4, 4, 1)
    with pytest.raises(ValueSizeError):
        MapSpec("r", T.RINGBUF, 0, 4, 4096)


def test_unknown_type_number() -> None:
    with pytest.raises(MapError) as info:
        MapSpec("m", 99, 4, 4, 1)  # type: ignore[arg-type]
    assert info.value.errno == errno.EINVAL


def test_int_type_is_coerced() -> None:
    assert MapSpec("m", 1, 4, 4, 1).type is T.HASH  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["key_size", "value_size", "max_entries", "flags"])
def test_u32_fields(field: str) -> None:
    sizes = {"key_size": 4, "value_size": 4, "max_entries": 1, "flags": 0, field: -1}
    with pytest.raises(MapError) as info:
        MapSpec("m", T.HASH, sizes["key_size"], sizes["value_size"], sizes["max_entries"],
                sizes["flags"])
    assert info.value.errno == errno.EINVAL


def test_inner_of_inner_is_rejected() -> None:
    inner = MapSpec("i", T.ARRAY_OF_MAPS, 4, 4, 1, inner=MapSpec("ii", T.ARRAY, 4, 4, 1))
    with pytest.raises(MapError) as info:
        MapSpec("o", T.ARRAY_OF_MAPS, 4, 4, 1, inner=inner)
    assert info.value.errno == errno.EINVAL


def test_inner_ignored_for_plain_maps() -> None:
    MapSpec("m", T.HASH, 4, 4, 1, inner=MapSpec("i", T.PROG_ARRAY, 4, 4, 1))


def test_compatible() -> None:
    a = MapSpec("a", T.HASH, 4, 8, 16)
    assert a.compatible(MapSpec("b", T.HASH, 4, 8, 16, pinning=ms.PIN_GLOBAL_NS))
    assert not a.compatible(MapSpec("a", T.HASH, 4, 8, 17))
    assert not a.compatible(MapSpec("a", T.HASH, 4, 8, 16, NOPRE))
    assert not a.compatible(MapSpec("a", T.LRU_HASH, 4, 8, 16))


# -- checks that need the Env ------------------------------------------------------------------


def test_memory_limit_enomem() -> None:
    spec = MapSpec("big", T.ARRAY, 4, 8, 1 << 20)
    with pytest.raises(MapError) as info:
        create_map(spec, Env(), memory_limit=(8 << 20) - 1)
    assert info.value.errno == errno.ENOMEM
    assert len(create_map(spec, Env(), memory_limit=8 << 20)) == 1 << 20


def test_memory_limit_counts_cpus() -> None:
    spec = MapSpec("pc", T.PERCPU_ARRAY, 4, 8, 1024)
    create_map(spec, Env(ncpus=1), memory_limit=8192)
    with pytest.raises(MapError) as info:
        create_map(spec, Env(ncpus=2), memory_limit=8192)
    assert info.value.errno == errno.ENOMEM


def test_default_limit_refuses_a_huge_array() -> None:
    with pytest.raises(MapError) as info:
        create_map(MapSpec("huge", T.ARRAY, 4, 8, 0xFFFF_FFFF), Env())
    assert info.value.errno == errno.ENOMEM


def test_lazy_maps_are_not_limited() -> None:
    create_map(MapSpec("h", T.HASH, 4, 8, 1 << 26), Env(), memory_limit=1)


def test_not_emulated_type() -> None:
    with pytest.raises(MapError) as info:
        create_map(MapSpec("d", T.DEVMAP, 4, 4, 1), Env())
    assert info.value.errno == errno.EOPNOTSUPP
