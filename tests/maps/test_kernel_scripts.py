"""Scripted host-command sequences run on tcemu and on the kernel, step by step.

Each script walks the errno paths of one map type (flags, full maps, missing keys,
out-of-range indices, unsupported commands, access modes); every step must give the same
errno and bytes on both (hash iteration order excepted, see ``diff.py``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import ENOTSUPP, MapSpec
from tcemu.bpf.maps import spec as ms

from .diff import Op, Pair
from .kernel_ext import possible_cpus
from .util import T, u32

pytestmark = pytest.mark.kernel

NOPRE = ms.BPF_F_NO_PREALLOC


def lpm(prefixlen: int, *octets: int) -> bytes:
    return u32(prefixlen) + bytes(octets)


def hash_script() -> list[Op]:
    k, v = u32, u32
    return [
        Op("lookup", k(1)), Op("delete", k(1)), Op("lad", k(1)), Op("next", None),
        Op("next", k(1)),
        *(Op("update", k(1), v(1), f) for f in (3, 4, 5, 8)),
        Op("update", k(1), v(1), 2), Op("update", k(1), v(1), 1), Op("update", k(1), v(2), 1),
        Op("lookup", k(1)), Op("update", k(1), v(3), 2), Op("lookup", k(1)),
        Op("update", k(2), v(4)), Op("update", k(3), v(5)), Op("update", k(3), v(5), 1),
        Op("update", k(3), v(5), 2), Op("update", k(1), v(6)), Op("update", k(1), v(6), 1),
        *(Op("lookup", k(1), flags=f) for f in (1, 2, 4, 8)),
        *(Op("lad", k(1), flags=f) for f in (1, 4)),
        Op("next", None), Op("next", k(9)), Op("lad", k(1)), Op("lookup", k(1)),
        Op("update", k(3), v(7)), Op("delete", k(2)), Op("delete", k(2)), Op("next", k(2)),
    ]


def array_script() -> list[Op]:
    k, v = u32, u32
    return [
        Op("lookup", k(0)), Op("lookup", k(2)), Op("lookup", k(3)), Op("lookup", k(0), flags=4),
        Op("update", k(3), v(1)), Op("update", k(3), v(1), 1), Op("update", k(0), v(1), 1),
        Op("update", k(0), v(1), 2), Op("update", k(5), v(1), 8), Op("update", k(0), v(1), 3),
        Op("update", k(0), v(1), 4), Op("update", k(2), v(9)), Op("lookup", k(2)),
        Op("delete", k(0)), Op("delete", k(7)), Op("lad", k(0)), Op("lad", k(0), flags=4),
        Op("next", None), Op("next", k(0)), Op("next", k(2)), Op("next", k(3)),
        Op("next", k(0xFFFF_FFFF)),
    ]


def lpm_script() -> list[Op]:
    return [
        Op("update", lpm(33, 1, 2, 3, 4), u32(1)),
        *(Op("update", lpm(8, 10, 0, 0, 0), u32(1), f) for f in (3, 4, 2)),
        Op("update", lpm(8, 10, 0, 0, 0), u32(1), 1), Op("update", lpm(8, 10, 0, 0, 0), u32(1), 1),
        Op("update", lpm(16, 10, 1, 0, 0), u32(2)), Op("update", lpm(24, 10, 1, 1, 0), u32(3)),
        Op("update", lpm(24, 10, 1, 1, 0), u32(3), 2),
        Op("update", lpm(24, 11, 1, 1, 0), u32(3), 1),
        Op("update", lpm(16, 10, 1, 0, 0), u32(5), 1),
        Op("lookup", lpm(32, 10, 1, 2, 3)), Op("lookup", lpm(32, 10, 2, 2, 3)),
        Op("lookup", lpm(12, 10, 1, 2, 3)), Op("lookup", lpm(33, 10, 1, 2, 3)),
        Op("lookup", lpm(7, 10, 1, 2, 3)), Op("lookup", lpm(8, 10, 9, 9, 9)),
        Op("delete", lpm(33, 10, 0, 0, 0)), Op("delete", lpm(9, 10, 0, 0, 0)),
        Op("lad", lpm(8, 10, 0, 0, 0)), Op("next", None), Op("next", lpm(8, 10, 0, 0, 0)),
        Op("next", lpm(16, 10, 1, 0xFF, 0xFF)), Op("next", lpm(40, 10, 1, 0, 0)),
        Op("delete", lpm(16, 10, 1, 0, 0)), Op("update", lpm(8, 10, 0xFF, 0xFF, 0xFF), u32(6)),
        Op("update", lpm(0, 1, 1, 1, 1), u32(7)), Op("lookup", lpm(32, 11, 9, 9, 9)),
        Op("lookup", lpm(0, 10, 9, 9, 9)), Op("next", None), Op("next", lpm(8, 10, 0, 0, 0)),
        Op("next", lpm(0, 0, 0, 0, 0)),
    ]


def queue_script() -> list[Op]:
    v = u32
    return [
        Op("lad"), Op("lookup"),
        *(Op("update", None, v(i), f)
          for i, f in ((1, 0), (2, 0), (3, 0), (4, 1), (5, 2), (6, 3), (7, 4), (8, 2))),
        Op("lookup"), Op("lookup", flags=1), Op("lookup", flags=4), Op("lad", flags=1),
        Op("lad", flags=4), Op("lad"), Op("lad"), Op("lad"), Op("delete"), Op("next"),
        Op("update", None, v(9), 2), Op("lookup"), Op("update", u32(1), v(1)),
    ]


def ringbuf_script() -> list[Op]:
    return [Op("lookup"), Op("update"), Op("delete"), Op("next"), Op("lad")]


def fd_array_script() -> list[Op]:
    bad_fd = u32(0xFFFF_FFFF)
    return [
        Op("lookup", u32(0)), Op("lookup", u32(9)), Op("update", u32(0), bad_fd),
        Op("update", u32(0), bad_fd, 1), Op("update", u32(9), bad_fd),
        Op("update", u32(9), bad_fd, 1), Op("delete", u32(9)), Op("lad", u32(0)),
        Op("next", None), Op("next", u32(3)), Op("next", u32(2)),
    ]


SCRIPTS = {
    "hash": (MapSpec("h", T.HASH, 4, 4, 2), hash_script),
    "hash-noprealloc": (MapSpec("h", T.HASH, 4, 4, 2, NOPRE), hash_script),
    "percpu-hash": (MapSpec("h", T.PERCPU_HASH, 4, 4, 2), None),
    "lru-hash": (MapSpec("h", T.LRU_HASH, 4, 4, 64), None),
    "array": (MapSpec("a", T.ARRAY, 4, 4, 3), array_script),
    "percpu-array": (MapSpec("a", T.PERCPU_ARRAY, 4, 4, 3), None),
    "lpm": (MapSpec("l", T.LPM_TRIE, 8, 4, 4, NOPRE), lpm_script),
    "queue": (MapSpec("q", T.QUEUE, 0, 4, 2), queue_script),
    "stack": (MapSpec("s", T.STACK, 0, 4, 2), queue_script),
    "ringbuf": (MapSpec("r", T.RINGBUF, 0, 0, 4096), ringbuf_script),
    "prog-array": (MapSpec("p", T.PROG_ARRAY, 4, 4, 3), fd_array_script),
}


def _percpu_value(i: int, ncpus: int) -> bytes:
    return b"".join(u32(i * 16 + c) + bytes([0xA0 + c]) * 4 for c in range(ncpus))


def _percpu_script(key_size: int, ncpus: int, array: bool) -> list[Op]:
    k = u32
    ops = [Op("update", k(0), _percpu_value(1, ncpus)), Op("lookup", k(0)),
           Op("update", k(0), _percpu_value(2, ncpus), 2), Op("lookup", k(0)),
           Op("update", k(0), _percpu_value(2, ncpus), 1), Op("lookup", k(1)),
           *(Op("update", k(0), _percpu_value(3, ncpus), f) for f in (3, 4, 8, 16)),
           Op("next", None), Op("lad", k(0))]
    if not array:
        ops += [Op("update", k(1), _percpu_value(4, ncpus)),
                Op("update", k(2), _percpu_value(5, ncpus)), Op("lookup", k(2)),
                Op("update", k(3), _percpu_value(6, ncpus)), Op("lad", k(1)), Op("lookup", k(1))]
    return ops


def _lru_script() -> list[Op]:
    k, v = u32, u32
    return [Op("update", k(i), v(i)) for i in range(8)] + [
        Op("update", k(1), v(1), f) for f in (1, 2, 3, 4)] + [
        Op("update", k(99), v(1), 2), Op("lookup", k(3)), Op("lad", k(3)), Op("lookup", k(3)),
        Op("delete", k(4)), Op("delete", k(4)), Op("next", None)]


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """Pin the test to one CPU: LRU free lists and per-CPU ownership follow the caller."""
    saved = os.sched_getaffinity(0)
    cpu = min(saved)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, saved)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script(name: str, one_cpu: int) -> None:
    spec, build = SCRIPTS[name]
    ncpus = possible_cpus()
    pair = Pair(spec, Env(ncpus=ncpus, cpu=one_cpu))
    try:
        if name in ("percpu-hash", "percpu-array"):
            script = _percpu_script(4, ncpus, array=name == "percpu-array")
        elif name == "lru-hash":
            script = _lru_script()
        else:
            assert build is not None
            script = build()
        for op in script:
            pair.apply(op)
        if spec.type not in (T.QUEUE, T.STACK, T.RINGBUF, T.PROG_ARRAY):
            pair.check_contents()
    finally:
        pair.close()


@pytest.mark.parametrize("flag", [ms.BPF_F_RDONLY, ms.BPF_F_WRONLY])
def test_access_flags(flag: int) -> None:
    pair = Pair(MapSpec("h", T.HASH, 4, 4, 4, flag))
    try:
        for op in (Op("update", u32(1), u32(1)), Op("lookup", u32(1)), Op("next", None),
                   Op("delete", u32(1)), Op("lad", u32(1))):
            pair.apply(op)
    finally:
        pair.close()


def test_queue_rdonly() -> None:
    pair = Pair(MapSpec("q", T.QUEUE, 0, 4, 2, ms.BPF_F_RDONLY))
    try:
        for op in (Op("update", None, u32(1)), Op("lookup"), Op("lad")):
            pair.apply(op)
    finally:
        pair.close()


def test_ringbuf_commands_are_enotsupp() -> None:
    pair = Pair(MapSpec("r", T.RINGBUF, 0, 0, 4096))
    try:
        assert {pair.apply(op)[0] for op in ringbuf_script()} == {ENOTSUPP}
    finally:
        pair.close()


def test_perf_event_array_errnos() -> None:
    """The fd-array paths that do not depend on the slots' initial state (see KERNEL-DIFF)."""
    pair = Pair(MapSpec("p", T.PERF_EVENT_ARRAY, 4, 4, 4))
    try:
        for op in (Op("lookup", u32(0)), Op("update", u32(0), u32(0xFFFF_FFFF)),
                   Op("update", u32(0), u32(0), 1), Op("update", u32(9), u32(0)),
                   Op("update", u32(9), u32(0), 1), Op("delete", u32(9)), Op("lad", u32(0)),
                   Op("next", None), Op("next", u32(3))):
            assert pair.apply(op)[0] != errno.EFAULT
    finally:
        pair.close()
