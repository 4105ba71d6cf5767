"""PROG_ARRAY, PERF_EVENT_ARRAY, ARRAY_OF_MAPS and HASH_OF_MAPS."""

from __future__ import annotations

import errno
from dataclasses import dataclass

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import (
    BPF_EXIST,
    BPF_F_CURRENT_CPU,
    BPF_NOEXIST,
    ENOTSUPP,
    ArrayOfMaps,
    HashOfMaps,
    MapSpec,
    PerfEventArrayMap,
    ProgArrayMap,
    create_map,
    map_from_handle,
    map_handle,
    prog_id,
)
from tcemu.bpf.maps import spec as ms
from tcemu.bpf.uapi import BpfProgType

from .util import T, errno_of, make, u32


@dataclass
class Prog:
    prog_type: int = BpfProgType.SCHED_CLS


@dataclass
class ProgWithId:
    id: int
    prog_type: int = BpfProgType.SCHED_CLS


@pytest.fixture
def env() -> Env:
    return Env(ncpus=2)


# -- prog array --------------------------------------------------------------------------------


def progs(env: Env, entries: int = 4) -> ProgArrayMap:
    m = make(env, T.PROG_ARRAY, 4, 4, entries)
    assert isinstance(m, ProgArrayMap)
    return m


def test_prog_array_slots(env: Env) -> None:
    m = progs(env)
    a, b = Prog(), Prog()
    assert m.get_program(0) is None
    m.update(u32(0), a)
    m.update(u32(3), b)
    assert m.get_program(0) is a
    assert m.get_program(3) is b
    assert m.get_program(4) is None
    assert m.get_program(-1) is None
    assert m.lookup(u32(0)) == u32(prog_id(env, a))
    assert prog_id(env, a) == prog_id(env, a) != prog_id(env, b)
    m.update(u32(0), b)                                 # takes effect at once
    assert m.get_program(0) is b
    assert m.lookup(u32(0)) == m.lookup(u32(3))
    assert dict(m.items()) == {u32(0): u32(prog_id(env, b)), u32(3): u32(prog_id(env, b))}
    m.delete(u32(0))
    assert m.get_program(0) is None
    assert m.slot(3) is b


def test_prog_array_ids(env: Env) -> None:
    m = progs(env)
    m.update(u32(1), ProgWithId(42))
    assert m.lookup(u32(1)) == u32(42)


def test_prog_array_errnos(env: Env) -> None:
    m = progs(env)
    assert errno_of(m.lookup, u32(0)) == errno.ENOENT
    assert errno_of(m.lookup, u32(9)) == errno.ENOENT
    assert errno_of(m.update, u32(0), Prog(), BPF_NOEXIST) == errno.EINVAL
    assert errno_of(m.update, u32(9), Prog(), BPF_NOEXIST) == errno.EINVAL
    assert errno_of(m.update, u32(9), Prog()) == errno.E2BIG
    assert errno_of(m.update, u32(0), u32(3)) == errno.EBADF
    assert errno_of(m.update, u32(0), None) == errno.EBADF
    assert errno_of(m.delete, u32(0)) == errno.ENOENT
    assert errno_of(m.delete, u32(9)) == errno.E2BIG
    assert errno_of(m.lookup_and_delete, u32(0)) == ENOTSUPP
    assert errno_of(m.lookup_batch, None, 1) == ENOTSUPP
    assert m.get_next_key(None) == u32(0)
    assert m.get_next_key(u32(3)) is None
    assert m.vm_lookup(u32(0)) == 0
    assert m.vm_update(u32(0), u32(0), 0) == -errno.EOPNOTSUPP
    assert m.vm_delete(u32(0)) == -errno.EOPNOTSUPP


def test_prog_array_owner_type(env: Env) -> None:
    m = progs(env)
    m.update(u32(0), Prog(BpfProgType.SCHED_CLS))
    assert m.owner_type == BpfProgType.SCHED_CLS
    assert errno_of(m.update, u32(1), Prog(BpfProgType.XDP)) == errno.EINVAL
    assert m.compatible(Prog(BpfProgType.SCHED_CLS))
    assert not m.compatible(Prog(BpfProgType.XDP))
    m.update(u32(1), object())                          # untyped objects are accepted


# -- perf event array --------------------------------------------------------------------------


def perf(env: Env, entries: int = 4) -> PerfEventArrayMap:
    m = make(env, T.PERF_EVENT_ARRAY, 4, 4, entries)
    assert isinstance(m, PerfEventArrayMap)
    return m


def test_perf_output(env: Env) -> None:
    m = perf(env)
    assert m.vm_output(b"abc", BPF_F_CURRENT_CPU) == 0
    assert m.vm_output(b"def", 0) == 0
    assert m.vm_output(b"x", 1) == -errno.EOPNOTSUPP   # the event of slot 1 is on CPU 1
    assert m.vm_output(b"x", 2) == -errno.ENOENT       # only 2 CPUs: slots 2, 3 empty
    assert m.vm_output(b"x", 4) == -errno.E2BIG
    env.cpu = 1
    assert m.vm_output(b"ghij", BPF_F_CURRENT_CPU) == 0
    assert m.vm_output(b"x", (1 << 32) | 1) == 0        # the helper's upper bits are ignored
    assert [r.data for r in m.records()] == [b"abc", b"def", b"ghij", b"x"]
    assert [r.data for r in m.records(1)] == [b"ghij", b"x"]
    assert m.records(0)[0].raw == b"abc\0"              # (4 + n) % 8 == 0
    assert [r.raw for r in m.records(1)] == [b"ghij", b"x" + bytes(3)]
    assert [r.data for r in m.drain(0)] == [b"abc", b"def"]
    assert [r.data for r in m.records()] == [b"ghij", b"x"]
    assert len(m.drain()) == 2
    assert m.records() == []


def test_perf_slots(env: Env) -> None:
    m = perf(env)
    m.delete(u32(0))
    assert m.vm_output(b"x", 0) == -errno.ENOENT
    assert errno_of(m.delete, u32(0)) == errno.ENOENT
    m.update(u32(3), u32(0))                            # slot 3: an event on CPU 0
    assert m.vm_output(b"x", 3) == 0
    assert errno_of(m.update, u32(2), u32(2)) == errno.EBADF
    assert errno_of(m.update, u32(2), u32(0), BPF_EXIST) == errno.EINVAL
    assert errno_of(m.update, u32(4), u32(0)) == errno.E2BIG
    assert errno_of(m.lookup, u32(3)) == ENOTSUPP
    assert errno_of(m.delete, u32(4)) == errno.E2BIG
    assert len(m) == 4


# -- map in map --------------------------------------------------------------------------------


INNER = MapSpec("inner", T.ARRAY, 4, 4, 4)


def test_array_of_maps(env: Env) -> None:
    outer = create_map(MapSpec("outer", T.ARRAY_OF_MAPS, 4, 4, 2, inner=INNER), env)
    assert isinstance(outer, ArrayOfMaps)
    inner = create_map(INNER, env)
    inner.update(u32(1), u32(77))
    outer.update(u32(0), inner)
    assert outer.lookup(u32(0)) == u32(inner.id)
    assert outer.get_map(u32(0)) is inner
    assert outer.get_map(u32(1)) is None
    handle = outer.vm_lookup(u32(0))
    assert handle == map_handle(inner)
    found = map_from_handle(env, handle)
    assert found is inner
    assert found is not None
    assert env.memory.read(found.vm_lookup(u32(1)), 4) == u32(77)
    assert outer.vm_lookup(u32(1)) == 0
    assert outer.vm_lookup(u32(7)) == 0
    assert errno_of(outer.update, u32(1), create_map(MapSpec("x", T.ARRAY, 4, 4, 5), env)) \
        == errno.EINVAL
    assert errno_of(outer.update, u32(1), create_map(INNER, Env())) == errno.EBADF
    assert errno_of(outer.update, u32(1), inner, BPF_NOEXIST) == errno.EINVAL
    assert errno_of(outer.update, u32(2), inner) == errno.E2BIG
    got, cursor = outer.lookup_batch(None, 4)
    assert got == [(u32(0), u32(inner.id))]
    assert cursor is None
    assert outer.update_batch([u32(1)], [inner]) == 1
    outer.delete(u32(0))
    assert errno_of(outer.delete, u32(0)) == errno.ENOENT
    assert outer.vm_update(u32(0), u32(0), 0) == -errno.EOPNOTSUPP


def test_inner_map_flag_relaxes_max_entries(env: Env) -> None:
    template = MapSpec("t", T.ARRAY, 4, 4, 4, ms.BPF_F_INNER_MAP)
    outer = create_map(MapSpec("o", T.ARRAY_OF_MAPS, 4, 4, 2, inner=template), env)
    assert isinstance(outer, ArrayOfMaps)
    outer.update(u32(0), create_map(MapSpec("big", T.ARRAY, 4, 4, 64, ms.BPF_F_INNER_MAP), env))
    assert errno_of(outer.update, u32(1), create_map(MapSpec("p", T.ARRAY, 4, 4, 4), env)) \
        == errno.EINVAL                                 # the flags must match too


def test_hash_of_maps(env: Env) -> None:
    template = MapSpec("t", T.HASH, 4, 8, 16)
    outer = create_map(MapSpec("o", T.HASH_OF_MAPS, 4, 4, 2, inner=template), env)
    assert isinstance(outer, HashOfMaps)
    a = create_map(MapSpec("a", T.HASH, 4, 8, 1024), env)   # hashes may differ in size
    b = create_map(template, env)
    outer.update(u32(1), a)
    assert errno_of(outer.update, u32(1), b, BPF_NOEXIST) == errno.EEXIST
    outer.update(u32(1), b, BPF_EXIST)
    assert outer.get_map(u32(1)) is b
    outer.update(u32(2), a)
    assert errno_of(outer.update, u32(3), a) == errno.E2BIG
    assert errno_of(outer.update, u32(3), b"nope") == errno.EBADF
    assert dict(outer.items()) == {u32(1): u32(b.id), u32(2): u32(a.id)}
    assert outer.vm_lookup(u32(2)) == map_handle(a)
    assert outer.vm_lookup(u32(3)) == 0
    assert outer.vm_update(u32(3), u32(0), 0) == -errno.EOPNOTSUPP
    assert outer.vm_delete(u32(1)) == -errno.EOPNOTSUPP
    assert errno_of(outer.lookup_and_delete, u32(1)) == ENOTSUPP
    got, _ = outer.lookup_and_delete_batch(None, 1)
    assert got == [(u32(1), u32(b.id))]
    assert len(outer) == 1
    assert outer.update_batch([u32(5)], [b]) == 1
    assert errno_of(outer.update_batch, [u32(6)], [a]) == errno.E2BIG
    assert outer.get_map(u32(9)) is None
