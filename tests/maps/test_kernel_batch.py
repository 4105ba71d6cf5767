"""Batch commands (``BPF_MAP_*_BATCH``) and map-in-map updates, tcemu against the kernel."""

from __future__ import annotations

import errno

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import (
    ENOTSUPP,
    ArrayOfMaps,
    BatchError,
    HashOfMaps,
    MapBase,
    MapError,
    MapSpec,
    create_map,
)
from tcemu.bpf.maps import spec as ms

from .kernel_ext import (
    DELETE_BATCH,
    LOOKUP_AND_DELETE_BATCH,
    LOOKUP_BATCH,
    UPDATE_BATCH,
    KMap,
    possible_cpus,
)
from .util import T, u32

pytestmark = pytest.mark.kernel

CMDS = {"lookup": LOOKUP_BATCH, "lookup_and_delete": LOOKUP_AND_DELETE_BATCH,
        "update": UPDATE_BATCH, "delete": DELETE_BATCH}


def _twins(spec: MapSpec) -> tuple[MapBase, KMap]:
    ours = create_map(spec, Env(ncpus=possible_cpus()))
    kern = KMap.create(spec.type, spec.key_size, spec.value_size, spec.max_entries, spec.flags)
    assert kern.errno == 0
    return ours, kern


def _kernel_walk(kern: KMap, cmd: int, count: int, key_size: int,
                 value_size: int) -> list[tuple[int, list[tuple[bytes, bytes]], bytes]]:
    """Every call of a batch walk: (errno, entries, out_batch)."""
    calls = []
    cursor: bytes | None = None
    out_size = max(key_size, 4)
    while True:
        keys, values = bytearray(count * key_size), bytearray(count * value_size)
        err, done, out = kern.batch(cmd, cursor, keys, values, count, out_size)
        entries = [(bytes(keys[i * key_size:(i + 1) * key_size]),
                    bytes(values[i * value_size:(i + 1) * value_size])) for i in range(done)]
        calls.append((err, entries, out))
        if err:
            return calls
        cursor = out


def test_array_lookup_batch_walk_is_identical() -> None:
    ours, kern = _twins(MapSpec("a", T.ARRAY, 4, 4, 5))
    try:
        for i in range(5):
            ours.update(u32(i), u32(100 + i))
            assert kern.update(u32(i), u32(100 + i)) == 0
        cursor: bytes | None = None
        for err, entries, out in _kernel_walk(kern, LOOKUP_BATCH, 2, 4, 4):
            got, cursor = ours.lookup_batch(cursor, 2)
            assert got == entries
            assert cursor == (None if err == errno.ENOENT else out)
    finally:
        kern.close()


@pytest.mark.parametrize("kind", [T.HASH, T.PERCPU_HASH, T.LRU_HASH])
def test_hash_batch_walks_see_the_same_elements(kind: T) -> None:
    spec = MapSpec("h", kind, 4, 4, 16)
    ours, kern = _twins(spec)
    size = ours.host_value_size
    try:
        for i in range(10):
            value = bytes([i]) * size
            ours.update(u32(i), value)
            assert kern.update(u32(i), value) == 0
        for cmd in ("lookup", "lookup_and_delete"):
            calls = _kernel_walk(kern, CMDS[cmd], 64, 4, size)
            assert calls[-1][0] == errno.ENOENT
            theirs = {k: v for _, entries, _ in calls for k, v in entries}
            walk = ours.lookup_batch if cmd == "lookup" else ours.lookup_and_delete_batch
            got, cursor = walk(None, 64)
            assert cursor is None
            assert dict(got) == theirs
            assert len(ours) == len(kern.keys())
    finally:
        kern.close()


def test_batch_flags_and_partial_failures() -> None:
    ours, kern = _twins(MapSpec("h", T.HASH, 4, 4, 8))
    try:
        ours.update(u32(1), u32(1))
        kern.update(u32(1), u32(1))
        for flags in (1, 2, 4):
            err, _, _ = kern.batch(UPDATE_BATCH, None, bytearray(u32(5)), bytearray(u32(5)), 1,
                                   elem_flags=flags)
            with pytest.raises(MapError) as info:
                ours.update_batch([u32(5)], [u32(5)], flags)
            assert info.value.errno == err == errno.EINVAL
        err, done, _ = kern.batch(DELETE_BATCH, None, bytearray(u32(1) + u32(9) + u32(3)),
                                  bytearray(), 3)
        with pytest.raises(BatchError) as batch:
            ours.delete_batch([u32(1), u32(9), u32(3)])
        assert (batch.value.errno, batch.value.done) == (err, done) == (errno.ENOENT, 1)
        assert ours.lookup_batch(None, 0) == ([], None)
        assert kern.batch(LOOKUP_BATCH, None, bytearray(8), bytearray(8), 0)[0] == 0
    finally:
        kern.close()


def test_array_update_batch_stops_out_of_range() -> None:
    ours, kern = _twins(MapSpec("a", T.ARRAY, 4, 4, 5))
    try:
        err, done, _ = kern.batch(UPDATE_BATCH, None, bytearray(u32(1) + u32(9) + u32(2)),
                                  bytearray(u32(7) * 3), 3)
        with pytest.raises(BatchError) as info:
            ours.update_batch([u32(1), u32(9), u32(2)], [u32(7)] * 3)
        assert (info.value.errno, info.value.done) == (err, done) == (errno.E2BIG, 1)
        assert ours.lookup(u32(1)) == kern.lookup(u32(1))[1] == u32(7)
    finally:
        kern.close()


UNSUPPORTED = {
    "array": (MapSpec("a", T.ARRAY, 4, 4, 4), ["lookup_and_delete", "delete"]),
    "queue": (MapSpec("q", T.QUEUE, 0, 4, 4), ["lookup", "lookup_and_delete", "update",
                                               "delete"]),
    "lpm": (MapSpec("l", T.LPM_TRIE, 8, 4, 4, ms.BPF_F_NO_PREALLOC), ["lookup_and_delete"]),
    "ringbuf": (MapSpec("r", T.RINGBUF, 0, 0, 4096), ["lookup", "lookup_and_delete",
                                                      "update", "delete"]),
    "prog-array": (MapSpec("p", T.PROG_ARRAY, 4, 4, 4), ["lookup", "lookup_and_delete",
                                                         "update", "delete"]),
}


def _ours_batch(m: MapBase, cmd: str) -> int:
    try:
        if cmd == "lookup":
            m.lookup_batch(None, 1)
        elif cmd == "lookup_and_delete":
            m.lookup_and_delete_batch(None, 1)
        elif cmd == "update":
            m.update_batch([bytes(m.key_size)], [bytes(m.host_value_size)])
        else:
            m.delete_batch([bytes(m.key_size)])
    except MapError as err:
        return err.errno
    return 0


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_batches(name: str) -> None:
    spec, cmds = UNSUPPORTED[name]
    ours, kern = _twins(spec)
    try:
        for cmd in cmds:
            err, _, _ = kern.batch(CMDS[cmd], None, bytearray(64), bytearray(64), 1, 8)
            assert err == ENOTSUPP, cmd
            assert _ours_batch(ours, cmd) == ENOTSUPP, cmd
    finally:
        kern.close()


# -- map in map --------------------------------------------------------------------------------

INNERS = {
    "same": MapSpec("i", T.ARRAY, 4, 4, 4),
    "other-max": MapSpec("i", T.ARRAY, 4, 4, 8),
    "other-value": MapSpec("i", T.ARRAY, 4, 8, 4),
    "inner-flag": MapSpec("i", T.ARRAY, 4, 4, 8, ms.BPF_F_INNER_MAP),
    "hash": MapSpec("i", T.HASH, 4, 4, 4),
    "hash-other-max": MapSpec("i", T.HASH, 4, 4, 9),
    "hash-noprealloc": MapSpec("i", T.HASH, 4, 4, 4, ms.BPF_F_NO_PREALLOC),
    "percpu-array-other-max": MapSpec("i", T.PERCPU_ARRAY, 4, 4, 9),
}
TEMPLATES = {
    "array": MapSpec("t", T.ARRAY, 4, 4, 4),
    "array-inner-flag": MapSpec("t", T.ARRAY, 4, 4, 4, ms.BPF_F_INNER_MAP),
    "hash": MapSpec("t", T.HASH, 4, 4, 4),
    "percpu-array": MapSpec("t", T.PERCPU_ARRAY, 4, 4, 4),
}


def _kmap(spec: MapSpec, inner_fd: int = 0) -> KMap:
    kmap = KMap.create(spec.type, spec.key_size, spec.value_size, spec.max_entries, spec.flags,
                       inner_fd=inner_fd)
    assert kmap.errno == 0
    return kmap


@pytest.mark.parametrize("outer_kind", [T.ARRAY_OF_MAPS, T.HASH_OF_MAPS])
@pytest.mark.parametrize("template", TEMPLATES)
def test_inner_map_compatibility(outer_kind: T, template: str) -> None:
    env = Env()
    tmpl = TEMPLATES[template]
    outer_spec = MapSpec("o", outer_kind, 4, 4, 2, inner=tmpl)
    ours = create_map(outer_spec, env)
    assert isinstance(ours, ArrayOfMaps | HashOfMaps)
    ktmpl = _kmap(tmpl)
    kouter = _kmap(outer_spec, ktmpl.fd)
    try:
        for name, inner in INNERS.items():
            mine = create_map(inner, env)
            kinner = _kmap(inner)
            err = kouter.update(u32(0), u32(kinner.fd))
            try:
                ours.update(u32(0), mine)
                got = 0
            except MapError as error:
                got = error.errno
            kinner.close()
            assert got == err, name
        for flags in (1, 2, 3):
            err = kouter.update(u32(1), u32(ktmpl.fd), flags)
            try:
                ours.update(u32(1), create_map(tmpl, env), flags)
                got = 0
            except MapError as error:
                got = error.errno
            assert got == err, flags
        assert kouter.update(u32(0), u32(0xFFFF_FFFF)) == errno.EBADF
        with pytest.raises(MapError) as info:
            ours.update(u32(0), b"\xff" * 4)
        assert info.value.errno == errno.EBADF
        assert kouter.lookup_and_delete(u32(0))[0] == ENOTSUPP
        with pytest.raises(MapError) as info:
            ours.lookup_and_delete(u32(0))
        assert info.value.errno == ENOTSUPP
    finally:
        kouter.close()
        ktmpl.close()
