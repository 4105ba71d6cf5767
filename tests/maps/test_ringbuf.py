"""RINGBUF: record headers, reserve/submit/discard, wrap-around, space rules, the reader."""

from __future__ import annotations

import errno
import struct

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import ENOTSUPP, RingBufMap, RingbufReader, ringbuf_of
from tcemu.bpf.maps.ringbuf import (
    BPF_RB_AVAIL_DATA,
    BPF_RB_CONS_POS,
    BPF_RB_FORCE_WAKEUP,
    BPF_RB_NO_WAKEUP,
    BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
)

from .util import T, errno_of, make


@pytest.fixture
def env() -> Env:
    return Env()


def ring(env: Env, size: int = 4096) -> RingBufMap:
    m = make(env, T.RINGBUF, 0, 0, size)
    assert isinstance(m, RingBufMap)
    return m


def header(env: Env, rb: RingBufMap, pos: int) -> tuple[int, int]:
    raw = env.memory.read(rb.base + (pos & rb.mask), 8)
    return struct.unpack("<II", raw)


def test_output_and_read(env: Env) -> None:
    rb = ring(env)
    assert rb.vm_output(b"hello", 0) == 0
    assert rb.vm_output(b"", 0) == 0
    assert rb.vm_output(b"x" * 9, BPF_RB_NO_WAKEUP) == 0
    assert header(env, rb, 0) == (5, 3)                 # len, pg_off (data starts on page 3)
    assert rb.producer_pos == 16 + 8 + 24
    assert len(rb) == 3
    reader = RingbufReader(rb)
    assert reader.available() == 48
    assert reader.read(limit=1) == [b"hello"]
    assert reader.read() == [b"", b"x" * 9]
    assert rb.consumer_pos == rb.producer_pos
    assert reader.read() == []


def test_reserve_submit_discard_order(env: Env) -> None:
    rb = ring(env)
    a = rb.vm_reserve(4, 0)
    b = rb.vm_reserve(3, 0)
    c = rb.vm_reserve(2, 0)
    assert a
    assert b == a + 16
    assert c == b + 16
    assert header(env, rb, 0)[0] == 4 | BPF_RINGBUF_BUSY_BIT
    env.memory.write(a, b"AAAA")
    env.memory.write(b, b"BBB")
    env.memory.write(c, b"CC")
    assert rb.vm_submit(b, 0) == 0
    assert rb.vm_discard(c, 0) == 0
    assert header(env, rb, 32)[0] == 2 | BPF_RINGBUF_DISCARD_BIT
    reader = RingbufReader(rb)
    assert reader.read() == []                          # record A is still reserved
    assert rb.vm_submit(a, 0) == 0
    assert reader.read() == [b"AAAA", b"BBB"]           # C was discarded
    assert rb.consumer_pos == 48
    assert rb.vm_submit(a, 0) == -errno.EINVAL          # not reserved any more
    assert rb.vm_submit(a + 1, 0) == -errno.EINVAL
    assert rb.vm_submit(0, 0) == -errno.EINVAL


def test_space_rules(env: Env) -> None:
    rb = ring(env)
    assert rb.vm_reserve(4089, 0) == 0                  # round_up(4089 + 8, 8) > 4096
    assert rb.vm_output(b"\0" * 4081, 0) == -errno.EAGAIN   # would fill all 4096 bytes
    assert rb.vm_output(b"\0" * 4080, 0) == 0           # 4088 <= size - 1
    assert rb.vm_output(b"", 0) == -errno.EAGAIN
    assert rb.vm_reserve(0, 0) == 0
    assert rb.vm_reserve(1 << 31, 0) == 0               # above RINGBUF_MAX_RECORD_SZ
    RingbufReader(rb).read()
    assert rb.vm_output(b"again", 0) == 0


def test_reserve_flags_and_output_flags(env: Env) -> None:
    rb = ring(env)
    assert rb.vm_reserve(8, 1) == 0
    assert rb.vm_output(b"x", 4) == -errno.EINVAL
    assert rb.vm_output(b"x", BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) == 0


def test_wrap_around_is_contiguous(env: Env) -> None:
    rb = ring(env)
    reader = RingbufReader(rb)
    assert rb.vm_output(b"a" * 3000, 0) == 0
    reader.read()
    payload = bytes(range(256)) * 8                     # 2048 bytes, crosses the end
    assert rb.vm_output(payload, 0) == 0
    assert reader.read() == [payload]
    sample = rb.vm_reserve(3200, 0)                     # reserved across the end again
    assert (sample & 0xFFFF_FFFF) + 3200 > rb.size
    env.memory.write(sample, b"z" * 3200)               # the program writes it in one go
    rb.vm_submit(sample, 0)
    assert reader.read() == [b"z" * 3200]


def test_pending_records_bound_the_producer(env: Env) -> None:
    rb = ring(env)
    held = rb.vm_reserve(8, 0)
    assert held
    rb.consumer_pos = rb.producer_pos       # a consumer that skipped the reserved record
    assert rb.vm_reserve(4072, 0) == 0      # would overrun the still-reserved record
    assert rb.vm_reserve(4064, 0)
    rb.vm_submit(held, 0)
    assert rb.pending_pos == 0
    assert rb.vm_output(b"", 0) == 0
    assert rb.pending_pos > 0                           # advanced past the submitted record


def test_query_and_wakeups(env: Env) -> None:
    rb = ring(env, 8192)
    assert rb.vm_query(BPF_RB_RING_SIZE) == 8192
    rb.vm_output(b"abc", 0)                             # the consumer waits right here
    assert rb.wakeups == 1
    rb.vm_output(b"abc", 0)                             # not at the consumer: no wakeup
    assert rb.wakeups == 1
    rb.vm_output(b"abc", BPF_RB_FORCE_WAKEUP)
    assert rb.wakeups == 2
    assert rb.vm_query(BPF_RB_AVAIL_DATA) == 48
    assert rb.vm_query(BPF_RB_PROD_POS) == 48
    RingbufReader(rb).read()
    assert rb.vm_query(BPF_RB_CONS_POS) == 48
    assert rb.vm_query(BPF_RB_AVAIL_DATA) == 0
    assert rb.vm_query(99) == 0
    rb.vm_output(b"abc", BPF_RB_NO_WAKEUP)              # at the consumer, but suppressed
    assert rb.wakeups == 2


def test_ringbuf_of_and_host_commands(env: Env) -> None:
    rb = ring(env)
    other = ring(env)
    sample = rb.vm_reserve(4, 0)
    assert ringbuf_of(env, sample) is rb
    assert ringbuf_of(env, other.base) is other
    assert ringbuf_of(env, 0) is None
    assert ringbuf_of(Env(), sample) is None
    for call, args in ((rb.lookup, (b"",)), (rb.update, (b"", b"")), (rb.delete, (b"",)),
                       (rb.get_next_key, (None,)), (rb.lookup_and_delete, (None,)),
                       (rb.lookup_batch, (None, 1)), (rb.update_batch, ([], []))):
        assert errno_of(call, *args) == ENOTSUPP
    assert rb.vm_lookup(b"") == 0
    assert rb.vm_update(b"", b"", 0) == -ENOTSUPP
