"""The in-VM face against the kernel: tiny SCHED_CLS programs call map helpers under
``BPF_PROG_TEST_RUN`` and the ``vm_*`` methods must return what the helpers returned.

The programs are hand-encoded ``struct bpf_insn``s (uapi ``linux/bpf.h``), independent of
tcemu's assembler, one helper call per run, r0 returned as the 32-bit test_run retval.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import (
    BPF_EXIST,
    BPF_NOEXIST,
    MapBase,
    MapSpec,
    PerfEventArrayMap,
    QueueMap,
    RingBufMap,
    create_map,
)
from tcemu.bpf.maps.ringbuf import BPF_RB_AVAIL_DATA, BPF_RB_PROD_POS
from tcemu.kernel import prog_load, test_run

from .kernel_ext import KMap, possible_cpus
from .util import T, u32, u64

pytestmark = pytest.mark.kernel

PACKET = bytes(12) + b"\x08\x00" + bytes(20)
R0, R1, R2, R3, R4, R5, R6, R10 = 0, 1, 2, 3, 4, 5, 6, 10
MAP_UPDATE_ELEM, PERF_EVENT_OUTPUT, MAP_PUSH_ELEM = 2, 25, 87
RINGBUF_OUTPUT, RINGBUF_RESERVE, RINGBUF_SUBMIT, RINGBUF_QUERY = 130, 131, 132, 134


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhI", code, (src << 4) | dst, off, imm & 0xFFFF_FFFF)


def ld_map(reg: int, fd: int) -> bytes:
    return insn(0x18, reg, 1, 0, fd) + insn(0)       # BPF_LD_IMM64, BPF_PSEUDO_MAP_FD


def mov(dst: int, imm: int) -> bytes:
    return insn(0xB7, dst, imm=imm)


def mov_reg(dst: int, src: int) -> bytes:
    return insn(0xBF, dst, src)


def add(dst: int, imm: int) -> bytes:
    return insn(0x07, dst, imm=imm)


def zero_stack(size: int) -> bytes:
    """``*(u64 *)(r10 - 8k) = 0`` for the bottom ``size`` bytes of the frame."""
    return b"".join(insn(0x7A, R10, off=-8 * k) for k in range(1, (size + 7) // 8 + 1))


def call(helper: int) -> bytes:
    return insn(0x85, imm=helper)


EXIT = insn(0x95)


def run(prog: bytes) -> int:
    """Load, run once, return r0 as a signed 32-bit value."""
    with prog_load(prog, log_level=0) as loaded:
        retval = test_run(loaded.fd, PACKET).retval
    return retval - (1 << 32) if retval >= 1 << 31 else retval


@pytest.fixture
def cpu() -> Iterator[int]:
    saved = os.sched_getaffinity(0)
    pinned = min(saved)
    os.sched_setaffinity(0, {pinned})
    try:
        yield pinned
    finally:
        os.sched_setaffinity(0, saved)


def twins(spec: MapSpec, cpu: int) -> tuple[MapBase, KMap]:
    ours = create_map(spec, Env(ncpus=possible_cpus(), cpu=cpu))
    kern = KMap.create(spec.type, spec.key_size, spec.value_size, spec.max_entries, spec.flags)
    assert kern.errno == 0
    return ours, kern


# -- ring buffer ---------------------------------------------------------------------------------


def ringbuf_output(fd: int, size: int, flags: int) -> bytes:
    area = max(8, (size + 7) // 8 * 8)      # even a 0-byte output needs a stack pointer
    return (zero_stack(area) + ld_map(R1, fd) + mov_reg(R2, R10) + add(R2, -area)
            + mov(R3, size) + mov(R4, flags) + call(RINGBUF_OUTPUT) + EXIT)


def ringbuf_reserve(fd: int, size: int, flags: int) -> bytes:
    return (ld_map(R1, fd) + mov(R2, size) + mov(R3, flags) + call(RINGBUF_RESERVE)
            + insn(0x15, R0, off=5, imm=0)           # if r0 == 0 goto null
            + mov_reg(R1, R0) + mov(R2, 0) + call(RINGBUF_SUBMIT) + mov(R0, 1) + EXIT
            + mov(R0, 0) + EXIT)


def ringbuf_query(fd: int, flags: int) -> bytes:
    return ld_map(R1, fd) + mov(R2, flags) + call(RINGBUF_QUERY) + EXIT


def test_ringbuf_output_fills_like_the_kernel(cpu: int) -> None:
    ours, kern = twins(MapSpec("rb", T.RINGBUF, 0, 0, 4096), cpu)
    assert isinstance(ours, RingBufMap)
    try:
        for size, flags in [(5, 0), (0, 0), (256, 1), (9, 4), (256, 2), *[(256, 0)] * 16]:
            assert ours.vm_output(bytes(size), flags) == run(ringbuf_output(kern.fd, size, flags))
            for query in (BPF_RB_AVAIL_DATA, BPF_RB_PROD_POS):
                assert ours.vm_query(query) == run(ringbuf_query(kern.fd, query))
    finally:
        kern.close()


def test_ringbuf_reserve_like_the_kernel(cpu: int) -> None:
    ours, kern = twins(MapSpec("rb", T.RINGBUF, 0, 0, 4096), cpu)
    assert isinstance(ours, RingBufMap)
    try:
        for size, flags in [(8, 1), (4089, 0), (4080, 0), (8, 0)]:
            sample = ours.vm_reserve(size, flags)
            if sample:
                ours.vm_submit(sample, 0)
            assert int(bool(sample)) == run(ringbuf_reserve(kern.fd, size, flags)), size
            assert ours.vm_query(BPF_RB_AVAIL_DATA) == run(ringbuf_query(kern.fd, 0))
    finally:
        kern.close()


# -- per-CPU values created by a program --------------------------------------------------------


def map_update(fd: int, key: int, value: int, flags: int) -> bytes:
    return (insn(0x62, R10, off=-8, imm=key)                # *(u32 *)(r10 - 8) = key
            + insn(0x7A, R10, off=-16, imm=value)            # *(u64 *)(r10 - 16) = value
            + ld_map(R1, fd) + mov_reg(R2, R10) + add(R2, -8) + mov_reg(R3, R10)
            + add(R3, -16) + mov(R4, flags) + call(MAP_UPDATE_ELEM) + EXIT)


@pytest.mark.parametrize("kind", [T.PERCPU_HASH, T.LRU_PERCPU_HASH, T.PERCPU_ARRAY, T.HASH])
def test_program_updates(kind: T, cpu: int) -> None:
    ours, kern = twins(MapSpec("m", kind, 4, 8, 2), cpu)
    size = ours.host_value_size
    try:
        for key, value, flags in [(0, 7, BPF_EXIST), (0, 7, 0), (0, 8, BPF_NOEXIST), (1, 9, 0),
                                  (0, 10, BPF_EXIST), (2, 11, 0), (1, 12, 3), (0, 1, 4)]:
            got = ours.vm_update(u32(key), u64(value), flags)
            assert got == run(map_update(kern.fd, key, value, flags)), (key, flags)
            for k in (0, 1):
                err, raw = kern.lookup(u32(k), size)
                mine = ours.lookup(u32(k)) if err == 0 else b""
                assert raw == mine
    finally:
        kern.close()


# -- queue push, perf event output ------------------------------------------------------------


def push(fd: int, value: int, flags: int) -> bytes:
    return (insn(0x62, R10, off=-8, imm=value) + ld_map(R1, fd) + mov_reg(R2, R10)
            + add(R2, -8) + mov(R3, flags) + call(MAP_PUSH_ELEM) + EXIT)


@pytest.mark.parametrize("kind", [T.QUEUE, T.STACK])
def test_program_push(kind: T, cpu: int) -> None:
    ours, kern = twins(MapSpec("q", kind, 0, 4, 2), cpu)
    assert isinstance(ours, QueueMap)
    try:
        for value, flags in [(1, 0), (2, BPF_NOEXIST), (2, 0), (3, 0), (3, BPF_EXIST), (4, 3)]:
            assert ours.vm_push(u32(value), flags) == run(push(kern.fd, value, flags))
        while True:
            err, popped = kern.lookup_and_delete(None)
            assert ours.vm_pop() == (-err, popped)
            if err:
                break
    finally:
        kern.close()


def perf_output(fd: int, flags: int) -> bytes:
    return (mov_reg(R6, R1) + zero_stack(8) + mov_reg(R1, R6) + ld_map(R2, fd)
            + insn(0x18, R3, 0, 0, flags & 0xFFFF_FFFF) + insn(0, imm=flags >> 32)
            + mov_reg(R4, R10) + add(R4, -8) + mov(R5, 8) + call(PERF_EVENT_OUTPUT) + EXIT)


def test_perf_event_output_on_empty_slots(cpu: int) -> None:
    """A kernel map starts empty; tcemu's starts open, so close the slots first."""
    ours, kern = twins(MapSpec("p", T.PERF_EVENT_ARRAY, 4, 4, 2), cpu)
    assert isinstance(ours, PerfEventArrayMap)
    for index in range(min(2, possible_cpus())):
        ours.delete(u32(index))
    try:
        for flags in (0, 1, 2, 0xFFFF_FFFF):
            assert ours.vm_output(bytes(8), flags) == run(perf_output(kern.fd, flags)), flags
    finally:
        kern.close()
