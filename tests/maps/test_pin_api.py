"""Pinning, the registry (ids, handles), create_map/MAP_TYPES and the public names."""

from __future__ import annotations

import errno
import gc
import importlib

import pytest

from tcemu.bpf import maps
from tcemu.bpf.env import Env
from tcemu.bpf.maps import (
    LIBBPF_PIN_BY_NAME,
    MAP_TYPES,
    PIN_GLOBAL_NS,
    PIN_NONE,
    PIN_OBJECT_NS,
    Map,
    MapBase,
    MapError,
    MapSpec,
    create_map,
    create_or_reuse,
    get_pinned,
    map_from_handle,
    map_handle,
    pin,
    pin_path,
    registry,
    unpin,
)
from tcemu.errors import TcemuError

from .util import T, errno_of, u32

FLOWS = MapSpec("flows", T.HASH, 4, 8, 64, pinning=PIN_GLOBAL_NS)


# -- pins --------------------------------------------------------------------------------------


def test_pin_and_get() -> None:
    env = Env()
    m = create_map(FLOWS, env)
    pin(env, "/sys/fs/bpf/flows", m)
    assert get_pinned(env, "/sys/fs/bpf/flows") is m
    assert errno_of(pin, env, "/sys/fs/bpf/flows", m) == errno.EEXIST
    assert errno_of(get_pinned, env, "/sys/fs/bpf/none") == errno.ENOENT
    env.pins["/sys/fs/bpf/prog"] = object()
    assert errno_of(get_pinned, env, "/sys/fs/bpf/prog") == errno.EINVAL
    unpin(env, "/sys/fs/bpf/flows")
    assert errno_of(unpin, env, "/sys/fs/bpf/flows") == errno.ENOENT


def test_pin_paths() -> None:
    assert pin_path(FLOWS) == "/sys/fs/bpf/tc/globals/flows"
    local = MapSpec("flows", T.HASH, 4, 8, 64, pinning=PIN_OBJECT_NS)
    assert pin_path(local, object_id="abc") == "/sys/fs/bpf/tc/abc/flows"
    assert errno_of(pin_path, local) == errno.EINVAL
    assert pin_path(local, loader="libbpf") == "/sys/fs/bpf/flows"     # 1 = BY_NAME
    by_name = MapSpec("flows", T.HASH, 4, 8, 64, pinning=LIBBPF_PIN_BY_NAME)
    assert pin_path(by_name, loader="libbpf", root="/mnt/bpf") == "/mnt/bpf/flows"
    assert errno_of(pin_path, FLOWS, loader="libbpf") == errno.EINVAL
    assert pin_path(MapSpec("x", T.HASH, 4, 8, 64, pinning=PIN_NONE)) is None
    custom = MapSpec("x", T.HASH, 4, 8, 64, pinning=7)
    assert errno_of(pin_path, custom) == errno.EINVAL


def test_two_objects_share_a_pinned_map() -> None:
    env = Env()
    first = create_or_reuse(FLOWS, env)
    second = create_or_reuse(MapSpec("flows", T.HASH, 4, 8, 64, pinning=PIN_GLOBAL_NS), env)
    assert first is second
    first.update(u32(1), bytes(8))
    assert len(second) == 1
    other_env = create_or_reuse(FLOWS, Env())
    assert other_env is not first
    for bad in (MapSpec("flows", T.HASH, 4, 8, 65, pinning=PIN_GLOBAL_NS),
                MapSpec("flows", T.HASH, 4, 4, 64, pinning=PIN_GLOBAL_NS),
                MapSpec("flows", T.LRU_HASH, 4, 8, 64, pinning=PIN_GLOBAL_NS)):
        assert errno_of(create_or_reuse, bad, env) == errno.EINVAL
    unpinned = MapSpec("flows", T.HASH, 4, 8, 64)
    assert create_or_reuse(unpinned, env) is not first


# -- registry ----------------------------------------------------------------------------------


def test_ids_and_handles() -> None:
    env = Env()
    a = create_map(MapSpec("a", T.ARRAY, 4, 4, 1), env)
    b = create_map(MapSpec("b", T.ARRAY, 4, 4, 1), env)
    assert (a.id, b.id) == (1, 2)
    assert create_map(MapSpec("c", T.ARRAY, 4, 4, 1), Env()).id == 1
    assert map_handle(b) == (11 << 32) | 2
    assert map_from_handle(env, map_handle(a)) is a
    assert map_from_handle(env, 12345) is None
    assert map_from_handle(Env(), map_handle(a)) is None
    assert "id=1" in repr(a)


def test_registry_follows_lifetimes() -> None:
    env = Env()
    handle = map_handle(create_map(MapSpec("gone", T.HASH, 4, 4, 1), env))
    gc.collect()
    assert map_from_handle(env, handle) is None         # nothing held the map
    key = id(env)
    assert key in registry._STATES
    del env
    gc.collect()
    assert key not in registry._STATES


def test_prog_ids_for_unhashable_and_slotted_objects() -> None:
    env = Env()

    class Slotted:
        __slots__ = ("prog_type",)

    a, b = Slotted(), [1]
    assert registry.prog_id(env, a) == registry.prog_id(env, a)
    assert registry.prog_id(env, b) != registry.prog_id(env, a)


# -- create_map, MAP_TYPES, exports ------------------------------------------------------------

SPECS = {
    T.HASH: MapSpec("m", T.HASH, 4, 4, 4),
    T.ARRAY: MapSpec("m", T.ARRAY, 4, 4, 4),
    T.PROG_ARRAY: MapSpec("m", T.PROG_ARRAY, 4, 4, 4),
    T.PERF_EVENT_ARRAY: MapSpec("m", T.PERF_EVENT_ARRAY, 4, 4, 4),
    T.PERCPU_HASH: MapSpec("m", T.PERCPU_HASH, 4, 4, 4),
    T.PERCPU_ARRAY: MapSpec("m", T.PERCPU_ARRAY, 4, 4, 4),
    T.LRU_HASH: MapSpec("m", T.LRU_HASH, 4, 4, 4),
    T.LRU_PERCPU_HASH: MapSpec("m", T.LRU_PERCPU_HASH, 4, 4, 4),
    T.LPM_TRIE: MapSpec("m", T.LPM_TRIE, 8, 4, 4, 1),
    T.ARRAY_OF_MAPS: MapSpec("m", T.ARRAY_OF_MAPS, 4, 4, 4,
                             inner=MapSpec("i", T.ARRAY, 4, 4, 4)),
    T.HASH_OF_MAPS: MapSpec("m", T.HASH_OF_MAPS, 4, 4, 4, inner=MapSpec("i", T.HASH, 4, 4, 4)),
    T.QUEUE: MapSpec("m", T.QUEUE, 0, 4, 4),
    T.STACK: MapSpec("m", T.STACK, 0, 4, 4),
    T.RINGBUF: MapSpec("m", T.RINGBUF, 0, 0, 4096),
}


@pytest.mark.parametrize("kind", list(MAP_TYPES))
def test_every_registered_type_creates(kind: T) -> None:
    m: Map = create_map(SPECS[kind], Env())
    assert type(m) is MAP_TYPES[kind]
    assert m.spec.type is kind
    assert m.key_size == SPECS[kind].key_size


def test_map_types_is_explicit() -> None:
    assert set(MAP_TYPES) == set(SPECS)
    assert all(issubclass(cls, MapBase) for cls in MAP_TYPES.values())


@pytest.mark.parametrize("name", ["tcemu.bpf.maps", "tcemu.bpf.maps.spec",
                                  "tcemu.bpf.maps.base", "tcemu.bpf.maps.errors",
                                  "tcemu.bpf.maps.hash", "tcemu.bpf.maps.lru",
                                  "tcemu.bpf.maps.array", "tcemu.bpf.maps.lpm_trie",
                                  "tcemu.bpf.maps.queue_stack", "tcemu.bpf.maps.ringbuf",
                                  "tcemu.bpf.maps.prog_array", "tcemu.bpf.maps.perf_event",
                                  "tcemu.bpf.maps.map_in_map", "tcemu.bpf.maps.pin",
                                  "tcemu.bpf.maps.registry"])
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


def test_errors_are_tcemu_errors() -> None:
    for name in ("MapError", "KeyNotFoundError", "KeyExistsError", "KeySizeError",
                 "ValueSizeError", "BatchError"):
        cls = getattr(maps, name)
        assert issubclass(cls, MapError)
        assert issubclass(cls, TcemuError)
    err = maps.KeyNotFoundError("look up element of map 'x': no such element")
    assert err.errno == errno.ENOENT
    assert str(err).endswith("(ENOENT)")
    assert str(MapError("x", errno=maps.ENOTSUPP)).endswith("(ENOTSUPP)")
