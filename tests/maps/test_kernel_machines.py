"""Hypothesis state machines: random host command sequences, tcemu against the kernel.

Every step runs on a tcemu map and on a kernel map created from the same spec; errnos and
returned bytes must agree (for hash maps, iteration compares as sets: KERNEL-DIFF, see
``diff.py``), and after every step the whole contents must agree.  LRU maps run pinned to
one CPU (their free lists follow the CPU of the caller); the ``*Evict`` machines use a
key space three times the map's size, so which elements the kernel's LRU evicts, and
when, is compared too (tcemu/bpf/maps/lru_list.py follows bpf_lru_list.c).
"""

from __future__ import annotations

import os
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tcemu.bpf.env import Env
from tcemu.bpf.maps import MapSpec
from tcemu.bpf.maps import spec as ms

from .diff import Op, Pair
from .kernel_ext import possible_cpus
from .util import T, u32

pytestmark = pytest.mark.kernel

SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
NOPRE = ms.BPF_F_NO_PREALLOC
NCPUS = possible_cpus()

UPDATE_FLAGS = st.sampled_from([0, 0, 0, 1, 2, 3, 4])
LOOKUP_FLAGS = st.sampled_from([0, 0, 0, 0, 4, 1])


def u32_keys(top: int) -> st.SearchStrategy[bytes]:
    return st.integers(0, top).map(u32)


class MapMachine(RuleBasedStateMachine):
    """Generic host-command machine; subclasses set the spec and the strategies."""

    SPEC: ClassVar[MapSpec]
    KEYS: ClassVar[st.SearchStrategy[bytes]] = u32_keys(7)
    VALUE_SIZE: ClassVar[int] = 4
    PIN: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.saved_cpus = os.sched_getaffinity(0)
        cpu = min(self.saved_cpus)
        if self.PIN:
            os.sched_setaffinity(0, {cpu})
        self.pair = Pair(self.SPEC, Env(ncpus=NCPUS, cpu=cpu))

    def teardown(self) -> None:
        self.pair.close()
        if self.PIN:
            os.sched_setaffinity(0, self.saved_cpus)

    @classmethod
    def values(cls) -> st.SearchStrategy[bytes]:
        return st.binary(min_size=cls.VALUE_SIZE, max_size=cls.VALUE_SIZE)

    @rule(data=st.data(), flags=UPDATE_FLAGS)
    def update(self, data: st.DataObject, flags: int) -> None:
        key = data.draw(self.KEYS)
        self.pair.apply(Op("update", key, data.draw(self.values()), flags))

    @rule(data=st.data(), flags=LOOKUP_FLAGS)
    def lookup(self, data: st.DataObject, flags: int) -> None:
        self.pair.apply(Op("lookup", data.draw(self.KEYS), flags=flags))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.pair.apply(Op("delete", data.draw(self.KEYS)))

    @rule(data=st.data())
    def next_key(self, data: st.DataObject) -> None:
        self.pair.apply(Op("next", data.draw(st.none() | self.KEYS)))

    @rule(data=st.data(), flags=st.sampled_from([0, 0, 0, 4]))
    def lookup_and_delete(self, data: st.DataObject, flags: int) -> None:
        self.pair.apply(Op("lad", data.draw(self.KEYS), flags=flags))

    @invariant()
    def same_contents(self) -> None:
        self.pair.check_contents()


class HashMachine(MapMachine):
    SPEC = MapSpec("h", T.HASH, 4, 4, 4)


class HashNoPreallocMachine(MapMachine):
    SPEC = MapSpec("h", T.HASH, 4, 4, 4, NOPRE)


class PercpuHashMachine(MapMachine):
    SPEC = MapSpec("h", T.PERCPU_HASH, 4, 4, 3)
    VALUE_SIZE = NCPUS * 8


class LruHashMachine(MapMachine):
    SPEC = MapSpec("l", T.LRU_HASH, 4, 4, 64)
    KEYS = u32_keys(31)
    PIN = True


class _Evicting(MapMachine):
    """Plain inserts of keys from a space three times the map's size: the map fills and
    the LRU evicts, again and again."""

    @rule(data=st.data())
    def insert(self, data: st.DataObject) -> None:
        self.pair.apply(Op("update", data.draw(self.KEYS), data.draw(self.values()), 0))

    @rule(data=st.data())
    def insert_again(self, data: st.DataObject) -> None:
        self.insert(data)


class LruEvictMachine(_Evicting):
    SPEC = MapSpec("l", T.LRU_HASH, 4, 4, 8 * NCPUS)
    KEYS = u32_keys(24 * NCPUS)
    PIN = True


class LruPercpuNoCommonEvictMachine(_Evicting):
    SPEC = MapSpec("l", T.LRU_PERCPU_HASH, 4, 4, 4 * NCPUS, ms.BPF_F_NO_COMMON_LRU)
    KEYS = u32_keys(12 * NCPUS)
    VALUE_SIZE = NCPUS * 8
    PIN = True


class LruPercpuNoCommonMachine(MapMachine):
    SPEC = MapSpec("l", T.LRU_PERCPU_HASH, 4, 4, 64 * NCPUS, ms.BPF_F_NO_COMMON_LRU)
    KEYS = u32_keys(31)
    VALUE_SIZE = NCPUS * 8
    PIN = True


class ArrayMachine(MapMachine):
    SPEC = MapSpec("a", T.ARRAY, 4, 4, 4)
    KEYS = u32_keys(6)


class PercpuArrayMachine(MapMachine):
    SPEC = MapSpec("a", T.PERCPU_ARRAY, 4, 12, 3)
    KEYS = u32_keys(4)
    VALUE_SIZE = NCPUS * 16


LPM_DATA = st.sampled_from([bytes([10, 0, 0, 0]), bytes([10, 1, 0, 0]), bytes([10, 1, 2, 3]),
                            bytes([10, 128, 0, 1]), bytes([192, 168, 0, 1]), bytes(4),
                            bytes([255] * 4)]) | st.binary(min_size=4, max_size=4)
LPM_KEYS = st.builds(lambda plen, data: u32(plen) + data,
                     st.integers(0, 33) | st.sampled_from([0, 8, 9, 16, 24, 32]), LPM_DATA)


class LpmMachine(MapMachine):
    SPEC = MapSpec("t", T.LPM_TRIE, 8, 4, 6, NOPRE)
    KEYS = LPM_KEYS


class QueueMachine(RuleBasedStateMachine):
    SPEC: ClassVar[MapSpec] = MapSpec("q", T.QUEUE, 0, 4, 3)

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair(self.SPEC)

    def teardown(self) -> None:
        self.pair.close()

    @rule(value=st.binary(min_size=4, max_size=4), flags=UPDATE_FLAGS)
    def push(self, value: bytes, flags: int) -> None:
        self.pair.apply(Op("update", None, value, flags))

    @rule(flags=LOOKUP_FLAGS)
    def peek(self, flags: int) -> None:
        self.pair.apply(Op("lookup", flags=flags))

    @rule(flags=st.sampled_from([0, 0, 0, 4, 1]))
    def pop(self, flags: int) -> None:
        self.pair.apply(Op("lad", flags=flags))

    @rule()
    def delete_and_next(self) -> None:
        self.pair.apply(Op("delete"))
        self.pair.apply(Op("next"))

    @invariant()
    def same_head(self) -> None:
        self.pair.apply(Op("lookup"))


class StackMachine(QueueMachine):
    SPEC = MapSpec("s", T.STACK, 0, 4, 3)


MACHINES = [HashMachine, HashNoPreallocMachine, PercpuHashMachine, LruHashMachine,
            LruEvictMachine, LruPercpuNoCommonEvictMachine, LruPercpuNoCommonMachine,
            ArrayMachine, PercpuArrayMachine, LpmMachine, QueueMachine, StackMachine]

TestHash = HashMachine.TestCase
TestHashNoPrealloc = HashNoPreallocMachine.TestCase
TestPercpuHash = PercpuHashMachine.TestCase
TestLruHash = LruHashMachine.TestCase
TestLruEvict = LruEvictMachine.TestCase
TestLruPercpuNoCommonEvict = LruPercpuNoCommonEvictMachine.TestCase
TestLruPercpuNoCommon = LruPercpuNoCommonMachine.TestCase
TestArray = ArrayMachine.TestCase
TestPercpuArray = PercpuArrayMachine.TestCase
TestLpm = LpmMachine.TestCase
TestQueue = QueueMachine.TestCase
TestStack = StackMachine.TestCase

for _case in (TestHash, TestHashNoPrealloc, TestPercpuHash, TestLruHash, TestLruEvict,
              TestLruPercpuNoCommonEvict, TestLruPercpuNoCommon, TestArray, TestPercpuArray,
              TestLpm, TestQueue, TestStack):
    _case.settings = SETTINGS
    setattr(_case, "pytestmark", [pytest.mark.kernel])  # noqa: B010 - not a declared attribute
del _case
