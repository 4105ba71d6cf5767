"""ARRAY and PERCPU_ARRAY: one region, in-place updates, the array errno paths."""

from __future__ import annotations

import errno

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, ENOTSUPP, ArrayMap

from .util import T, errno_of, make, u32


@pytest.fixture
def env() -> Env:
    return Env(ncpus=2)


def array(env: Env, value_size: int = 4, entries: int = 4, kind: T = T.ARRAY) -> ArrayMap:
    m = make(env, kind, 4, value_size, entries)
    assert isinstance(m, ArrayMap)
    return m


def test_starts_zeroed_and_full(env: Env) -> None:
    m = array(env, 6, 3)
    assert len(m) == 3
    assert dict(m.items()) == {u32(i): bytes(6) for i in range(3)}
    assert m.lookup(u32(2)) == bytes(6)


def test_errnos(env: Env) -> None:
    m = array(env)
    assert errno_of(m.lookup, u32(4)) == errno.ENOENT
    assert errno_of(m.update, u32(4), u32(1)) == errno.E2BIG
    assert errno_of(m.update, u32(4), u32(1), BPF_NOEXIST) == errno.E2BIG
    assert errno_of(m.update, u32(0), u32(1), BPF_NOEXIST) == errno.EEXIST
    assert errno_of(m.update, u32(9), u32(1), 8) == errno.EINVAL
    assert errno_of(m.update, u32(0), u32(1), BPF_F_LOCK) == errno.EINVAL
    m.update(u32(0), u32(5), BPF_EXIST)
    assert errno_of(m.delete, u32(0)) == errno.EINVAL
    assert errno_of(m.delete, u32(99)) == errno.EINVAL
    assert errno_of(m.lookup_and_delete, u32(0)) == ENOTSUPP
    assert errno_of(m.delete_batch, [u32(0)]) == ENOTSUPP
    assert errno_of(m.lookup_and_delete_batch, None, 1) == ENOTSUPP
    assert str(m.update.__doc__)


def test_get_next_key(env: Env) -> None:
    m = array(env, entries=3)
    assert m.get_next_key(None) == u32(0)
    assert m.get_next_key(u32(1)) == u32(2)
    assert m.get_next_key(u32(2)) is None
    assert m.get_next_key(u32(3)) == u32(0)
    assert m.get_next_key(u32(0xFFFF_FFFF)) == u32(0)
    assert list(m.keys()) == [u32(0), u32(1), u32(2)]


def test_addresses_and_in_place_updates(env: Env) -> None:
    m = array(env, 5, 4)
    base = m.vm_lookup(u32(0))
    assert m.vm_lookup(u32(3)) == base + 3 * 8     # stride round_up(5, 8)
    assert m.vm_lookup(u32(4)) == 0
    m.update(u32(3), b"hello")
    assert env.memory.read(base + 24, 5) == b"hello"
    env.memory.write(base + 8, b"world")           # a program writes in place
    assert m.lookup(u32(1)) == b"world"
    assert m.vm_update(u32(2), b"abcde", 0) == 0
    assert m.lookup(u32(2)) == b"abcde"
    assert m.vm_update(u32(7), b"abcde", 0) == -errno.E2BIG
    assert m.vm_delete(u32(0)) == -errno.EINVAL
    assert m.vm_lookup_percpu(u32(0), 0) == 0


def test_batches(env: Env) -> None:
    m = array(env, entries=5)
    m.update_batch([u32(i) for i in range(5)], [u32(10 + i) for i in range(5)])
    got, cursor = m.lookup_batch(None, 2)
    assert got == [(u32(0), u32(10)), (u32(1), u32(11))]
    assert cursor == u32(1)
    got, cursor = m.lookup_batch(cursor, 2)
    assert [k for k, _ in got] == [u32(2), u32(3)]
    assert cursor == u32(3)
    got, cursor = m.lookup_batch(cursor, 8)
    assert got == [(u32(4), u32(14))]
    assert cursor is None


def test_percpu_array(env: Env) -> None:
    m = array(env, 4, 3, T.PERCPU_ARRAY)
    assert m.host_value_size == 16
    assert m.lookup(u32(0)) == bytes(16)
    m.update(u32(1), b"AAAA\x01\x02\x03\x04BBBB\x05\x06\x07\x08")
    assert m.lookup(u32(1)) == b"AAAA\x01\x02\x03\x04BBBB\x05\x06\x07\x08"
    assert m.lookup_percpu(u32(1)) == [b"AAAA", b"BBBB"]
    assert env.memory.read(m.vm_lookup(u32(1)), 4) == b"AAAA"
    env.cpu = 1
    address = m.vm_lookup(u32(1))
    assert env.memory.read(address, 4) == b"BBBB"
    assert m.vm_lookup_percpu(u32(1), 0) == address - 8
    assert m.vm_lookup_percpu(u32(1), 2) == 0
    assert m.vm_lookup_percpu(u32(3), 0) == 0
    assert m.vm_update(u32(1), b"CCCC", 0) == 0
    assert m.lookup_percpu(u32(1)) == [b"AAAA", b"CCCC"]
    assert errno_of(m.update, u32(0), b"AAAA") == errno.EINVAL
    m.update_percpu(u32(2), [b"xxxx", b"yyyy"])
    assert m.lookup(u32(2)) == b"xxxx" + bytes(4) + b"yyyy" + bytes(4)


def test_region_name(env: Env) -> None:
    m = array(env)
    assert env.memory.region_name(m.vm_lookup(u32(0))) == "map 'm' values"
