"""HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH: host errnos, values in memory, LRU order."""

from __future__ import annotations

import errno

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_LOCK,
    BPF_NOEXIST,
    ENOTSUPP,
    KeyExistsError,
    KeyNotFoundError,
    KeySizeError,
    LruHashMap,
    MapError,
    ValueSizeError,
)
from tcemu.bpf.maps import spec as ms

from .util import T, errno_of, make, u32, u64


@pytest.fixture
def env() -> Env:
    return Env(ncpus=2)


# -- host errno paths --------------------------------------------------------------------------


def test_update_flags(env: Env) -> None:
    m = make(env, T.HASH, 4, 8, 2)
    assert errno_of(m.update, u32(1), u64(1), BPF_EXIST) == errno.ENOENT
    m.update(u32(1), u64(1), BPF_NOEXIST)
    with pytest.raises(KeyExistsError):
        m.update(u32(1), u64(2), BPF_NOEXIST)
    m.update(u32(1), u64(3), BPF_EXIST)
    assert m.lookup(u32(1)) == u64(3)
    for flags in (3, BPF_F_LOCK, 5, 8, 1 << 32):
        assert errno_of(m.update, u32(1), u64(1), flags) == errno.EINVAL


def test_full_map(env: Env) -> None:
    m = make(env, T.HASH, 4, 8, 2)
    m.update(u32(1), u64(1))
    m.update(u32(2), u64(2))
    assert errno_of(m.update, u32(3), u64(3)) == errno.E2BIG
    assert errno_of(m.update, u32(3), u64(3), BPF_NOEXIST) == errno.E2BIG
    assert errno_of(m.update, u32(3), u64(3), BPF_EXIST) == errno.ENOENT
    assert errno_of(m.update, u32(1), u64(3), BPF_NOEXIST) == errno.EEXIST
    m.update(u32(1), u64(9))                        # replacing needs no free slot
    assert len(m) == 2


def test_lookup_delete_missing(env: Env) -> None:
    m = make(env, T.HASH, 4, 8, 2)
    with pytest.raises(KeyNotFoundError) as info:
        m.lookup(u32(1))
    assert info.value.errno == errno.ENOENT
    assert "look up element of map 'm'" in str(info.value)
    assert errno_of(m.delete, u32(1)) == errno.ENOENT
    assert errno_of(m.lookup_and_delete, u32(1)) == errno.ENOENT
    for flags in (1, 2, BPF_F_LOCK):
        assert errno_of(m.lookup, u32(1), flags) == errno.EINVAL
        assert errno_of(m.lookup_and_delete, u32(1), flags) == errno.EINVAL


def test_sizes_are_checked(env: Env) -> None:
    m = make(env, T.HASH, 4, 8, 2)
    with pytest.raises(KeySizeError) as info:
        m.lookup(b"abc")
    assert (info.value.got, info.value.expected, info.value.errno) == (3, 4, errno.EINVAL)
    with pytest.raises(ValueSizeError) as vinfo:
        m.update(u32(1), b"short")
    assert (vinfo.value.got, vinfo.value.expected) == (5, 8)
    assert errno_of(m.get_next_key, b"\x00") == errno.EINVAL
    m.update(bytearray(u32(7)), bytearray(u64(7)))   # any bytes-like key and value
    assert m.lookup(memoryview(u32(7))) == u64(7)


@pytest.mark.parametrize(("flag", "denied"), [
    (ms.BPF_F_RDONLY, {"update", "delete", "lookup_and_delete"}),
    (ms.BPF_F_WRONLY, {"lookup", "get_next_key", "lookup_and_delete"}),
])
def test_access_flags(env: Env, flag: int, denied: set[str]) -> None:
    m = make(env, T.HASH, 4, 4, 4, flag)
    calls = {"update": (m.update, u32(1), u32(1)), "lookup": (m.lookup, u32(1)),
             "delete": (m.delete, u32(1)), "get_next_key": (m.get_next_key, None),
             "lookup_and_delete": (m.lookup_and_delete, u32(1))}
    for name, (call, *args) in calls.items():
        got = errno_of(call, *args)
        assert (got == errno.EPERM) == (name in denied), name
    assert m.vm_update(u32(2), u32(2), BPF_ANY) == 0     # programs are not bound by it


def test_get_next_key(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 8)
    assert m.get_next_key(None) is None
    for i in (5, 3, 9):
        m.update(u32(i), u32(i))
    assert m.get_next_key(None) == u32(5)
    assert m.get_next_key(u32(5)) == u32(3)
    assert m.get_next_key(u32(9)) is None
    assert m.get_next_key(u32(42)) == u32(5)        # a missing key restarts from the first
    m.update(u32(3), u32(33))                       # a replaced element keeps its place
    assert list(m.keys()) == [u32(5), u32(3), u32(9)]
    m.delete(u32(3))
    assert m.get_next_key(u32(5)) == u32(9)
    assert dict(m.items()) == {u32(5): u32(5), u32(9): u32(9)}


def test_lookup_and_delete(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 8)
    m.update(u32(1), u32(10))
    assert m.lookup_and_delete(u32(1)) == u32(10)
    assert len(m) == 0


# -- batches -----------------------------------------------------------------------------------


def test_lookup_batch_cursor(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 16)
    for i in range(6):
        m.update(u32(i), u32(100 + i))
    first, cursor = m.lookup_batch(None, 4)
    assert [k for k, _ in first] == [u32(i) for i in range(4)]
    assert cursor is not None
    m.delete(u32(4))                                # the element the cursor points at
    rest, end = m.lookup_batch(cursor, 4)
    assert rest == [(u32(5), u32(105))]
    assert end is None
    assert m.lookup_batch(None, 0) == ([], None)
    assert errno_of(m.lookup_batch, None, 1, 1) == errno.EINVAL
    assert errno_of(m.lookup_batch, None, 1, BPF_F_LOCK) == errno.EINVAL
    assert errno_of(m.lookup_batch, b"xx", 1) == errno.EINVAL


def test_lookup_and_delete_batch(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 16)
    for i in range(5):
        m.update(u32(i), u32(i))
    got, cursor = m.lookup_and_delete_batch(None, 2)
    assert len(got) == 2
    assert len(m) == 3
    got2, cursor = m.lookup_and_delete_batch(cursor, 10)
    assert cursor is None
    assert len(got + got2) == 5
    assert len(m) == 0


def test_update_and_delete_batch(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 2)
    assert m.update_batch([u32(1), u32(2)], [u32(1), u32(2)]) == 2
    with pytest.raises(MapError) as info:
        m.update_batch([u32(1), u32(3)], [u32(1), u32(3)])
    assert info.value.errno == errno.E2BIG
    assert getattr(info.value, "done", None) == 1
    assert errno_of(m.update_batch, [u32(1)], [u32(1), u32(2)]) == errno.EINVAL
    assert m.delete_batch([u32(1), u32(2)]) == 2


# -- values in memory --------------------------------------------------------------------------


def test_vm_lookup_points_at_the_value(env: Env) -> None:
    m = make(env, T.HASH, 4, 8, 4)
    m.update(u32(1), u64(7))
    address = m.vm_lookup(u32(1))
    assert address >> 32 >= 16
    assert env.memory.read(address, 8) == u64(7)
    env.memory.write(address, u64(8))               # a program stores through the pointer
    assert m.lookup(u32(1)) == u64(8)
    assert m.vm_lookup(u32(2)) == 0
    with pytest.raises(IndexError):
        env.memory.read(address, 9)                 # the region is exactly value_size


def test_replace_gives_new_memory_and_rcu(env: Env) -> None:
    m = make(env, T.HASH, 4, 8, 4)
    m.update(u32(1), u64(1))
    old = m.vm_lookup(u32(1))
    m.update(u32(1), u64(2))
    new = m.vm_lookup(u32(1))
    assert new != old
    assert env.memory.read(old, 8) == u64(1)        # still readable during the run
    m.delete(u32(1))
    assert env.memory.read(new, 8) == u64(2)
    env.memory.quiesce()                            # the grace period ends with the run
    with pytest.raises(IndexError):
        env.memory.read(old, 8)


def test_vm_update_delete(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 1)
    assert m.vm_update(u32(1), u32(1), BPF_EXIST) == -errno.ENOENT
    assert m.vm_update(u32(1), u32(1), BPF_ANY) == 0
    assert m.vm_update(u32(2), u32(2), BPF_ANY) == -errno.E2BIG
    assert m.vm_update(u32(1), u32(1), BPF_F_LOCK) == -errno.EINVAL
    assert m.vm_delete(u32(2)) == -errno.ENOENT
    assert m.vm_delete(u32(1)) == 0
    assert m.vm_lookup_percpu(u32(1), 0) == 0
    assert m.vm_push(u32(1), 0) == -errno.EOPNOTSUPP
    assert m.vm_pop() == (-errno.EOPNOTSUPP, b"")
    assert m.vm_peek() == (-errno.EOPNOTSUPP, b"")
    assert m.vm_output(b"x", 0) == -errno.EOPNOTSUPP
    assert m.vm_reserve(8, 0) == 0
    assert m.vm_submit(0, 0) == m.vm_discard(0, 0) == -errno.EOPNOTSUPP
    assert m.vm_query(0) == 0


# -- per-CPU -----------------------------------------------------------------------------------


def test_percpu_layout_and_cpus(env: Env) -> None:
    m = make(env, T.PERCPU_HASH, 4, 4, 4)
    assert m.host_value_size == 16
    m.update(u32(1), b"AAAA\xff\xff\xff\xffBBBB\xee\xee\xee\xee")
    assert m.lookup(u32(1)) == b"AAAA\xff\xff\xff\xffBBBB\xee\xee\xee\xee"   # padding kept
    assert m.lookup_percpu(u32(1)) == [b"AAAA", b"BBBB"]
    env.cpu = 1
    assert env.memory.read(m.vm_lookup(u32(1)), 4) == b"BBBB"
    assert env.memory.read(m.vm_lookup_percpu(u32(1), 0), 4) == b"AAAA"
    assert m.vm_lookup_percpu(u32(1), 2) == 0
    address = m.vm_lookup(u32(1))
    assert m.vm_update(u32(1), b"CCCC", BPF_ANY) == 0     # in place, this CPU only
    assert m.vm_lookup(u32(1)) == address
    assert m.lookup_percpu(u32(1)) == [b"AAAA", b"CCCC"]
    assert m.vm_update(u32(2), b"DDDD", BPF_ANY) == 0     # new: other CPUs start zeroed
    assert m.lookup(u32(2)) == bytes(8) + b"DDDD" + bytes(4)
    m.update_percpu(u32(2), [b"1111", b"2222"])
    assert m.lookup(u32(2)) == b"1111" + bytes(4) + b"2222" + bytes(4)
    assert errno_of(m.update_percpu, u32(2), [b"1111"]) == errno.EINVAL
    assert errno_of(m.update, u32(3), b"AAAA") == errno.EINVAL


def test_percpu_helpers_need_a_percpu_map(env: Env) -> None:
    m = make(env, T.HASH, 4, 4, 4)
    assert errno_of(m.lookup_percpu, u32(1)) == errno.EINVAL
    assert errno_of(m.update_percpu, u32(1), [u32(1), u32(1)]) == errno.EINVAL


# -- LRU ---------------------------------------------------------------------------------------


def lru(env: Env, entries: int, flags: int = 0, kind: T = T.LRU_HASH) -> LruHashMap:
    m = make(env, kind, 4, 4, entries, flags)
    assert isinstance(m, LruHashMap)
    return m


def _keys(m: LruHashMap) -> list[int]:
    return sorted(int.from_bytes(k, "little") for k, _ in m.items())


def test_lru_evicts_like_the_kernel(env: Env) -> None:
    """Host updates on CPUs 0 and 1 (2 CPUs); every expected key set was recorded from the
    6.18 kernel with the same calls (bpf_lru_list.c: target_free = 1 for 3 entries)."""
    m = lru(env, 3)
    for i in range(3):
        m.update(u32(i), u32(i))
    assert _keys(m) == [0, 1, 2]
    m.update(u32(3), u32(3))
    assert _keys(m) == [1, 2, 3]
    m.update(u32(4), u32(4))
    m.update(u32(5), u32(5))
    assert _keys(m) == [3, 4, 5]
    m.update(u32(2), u32(2))
    assert _keys(m) == [2, 4, 5]
    m.delete(u32(5))
    env.cpu = 1
    m.update(u32(10), u32(10))
    assert _keys(m) == [2, 4, 10]
    m.update(u32(11), u32(11))
    m.update(u32(12), u32(12))
    assert _keys(m) == [2, 11, 12]
    env.cpu = 0
    m.update(u32(13), u32(13))
    assert _keys(m) == [2, 12, 13]


def test_lru_evicts_in_batches(env: Env) -> None:
    """16 entries on 2 CPUs: a refill frees target_free = 4 nodes at once, so the 17th key
    evicts four (recorded from the 6.18 kernel)."""
    m = lru(env, 16)
    for i in range(16):
        m.update(u32(i), u32(i))
    assert _keys(m) == list(range(16))
    m.update(u32(16), u32(16))
    assert _keys(m) == list(range(4, 17))
    for i in range(17, 20):
        m.update(u32(i), u32(i))
    env.cpu = 1
    m.update(u32(100), u32(100))
    assert _keys(m) == [*range(8, 20), 100]


def test_lru_program_lookup_sets_the_reference_bit(env: Env) -> None:
    m = lru(env, 16)
    for i in range(16):
        m.update(u32(i), u32(i))
    assert m.vm_lookup(u32(0))                     # a program lookup references key 0
    m.lookup(u32(1))                               # a host lookup does not
    m.update(u32(16), u32(16))
    assert _keys(m) == [0, *range(5, 17)]          # 1..4 evicted, 0 kept
    assert m.lru_order()[-1] == u32(16)            # the newest is evicted last


def test_lru_takes_a_node_before_checking_flags(env: Env) -> None:
    m = lru(env, 2)
    m.update(u32(1), u32(1))
    m.update(u32(2), u32(2))
    assert errno_of(m.update, u32(9), u32(9), BPF_EXIST) == errno.ENOENT
    assert list(m.keys()) == [u32(2)]              # key 1 was evicted all the same
    assert errno_of(m.update, u32(2), u32(2), 3) == errno.EINVAL
    assert errno_of(m.update, u32(2), u32(2), BPF_F_LOCK) == errno.EINVAL


def test_lru_percpu_exist_does_not_evict(env: Env) -> None:
    m = lru(env, 2, kind=T.LRU_PERCPU_HASH)
    m.update(u32(1), bytes(16))
    m.update(u32(2), bytes(16))
    assert errno_of(m.update, u32(9), bytes(16), BPF_EXIST) == errno.ENOENT
    assert len(m) == 2
    address = m.vm_lookup(u32(1))
    m.update(u32(1), b"\x01" * 16, BPF_EXIST)      # per-CPU: in place
    assert m.vm_lookup(u32(1)) == address
    assert m.lookup_percpu(u32(1)) == [b"\x01" * 4] * 2


def test_lru_no_common_lists_per_cpu(env: Env) -> None:
    """BPF_F_NO_COMMON_LRU: recorded from the 6.18 kernel with the same calls."""
    m = lru(env, 3, ms.BPF_F_NO_COMMON_LRU)
    assert m.max_entries == 4                      # rounded up to a multiple of 2 CPUs
    m.update(u32(0), u32(0))
    m.update(u32(1), u32(1))
    assert _keys(m) == [0, 1]
    m.update(u32(2), u32(2))                       # CPU 0's two nodes: both evicted
    assert _keys(m) == [2]
    env.cpu = 1
    m.update(u32(10), u32(10))
    m.update(u32(11), u32(11))
    assert _keys(m) == [2, 10, 11]
    m.update(u32(12), u32(12))                     # evicts from CPU 1's list only
    assert _keys(m) == [2, 12]
    m.update(u32(1), u32(1))
    env.cpu = 0
    m.update(u32(3), u32(3))
    assert _keys(m) == [1, 2, 3, 12]
    assert m.lru_order(1) == [u32(12), u32(1)]


def test_lru_delete_and_batch(env: Env) -> None:
    m = lru(env, 4)
    for i in range(4):
        m.update(u32(i), u32(i))
    m.delete(u32(0))
    assert m.lookup_and_delete(u32(1)) == u32(1)
    got, _ = m.lookup_and_delete_batch(None, 10)
    assert len(got) == 2
    assert m.lru_order() == []


def test_hash_of_unsupported_commands(env: Env) -> None:
    m = make(env, T.ARRAY, 4, 4, 4)
    assert errno_of(m.lookup_and_delete, u32(0)) == ENOTSUPP
