"""RINGBUF maps (kernel/bpf/ringbuf.c) and the host-side reader (libbpf's ``ring_buffer``).

Layout.  The kernel maps the data pages twice in a row, so a record that wraps around the
end is still contiguous for the program.  tcemu allocates one region of twice the ring
size: a reservation returns ``base + (producer_pos & mask) + 8`` and the program writes
the record there, possibly into the second copy; committing folds whatever was written
past the end back to the start of the first copy, which is the ring the reader sees.  A
reservation that wraps first copies the start of the ring into the second copy, so the
bytes a program does not write are the ring's old contents, as in the kernel.

Records.  Each record starts with an 8-byte header ``{u32 len; u32 pg_off}``; ``len``
carries ``BPF_RINGBUF_BUSY_BIT`` while reserved and ``BPF_RINGBUF_DISCARD_BIT`` once
discarded; records are ``round_up(len + 8, 8)`` bytes apart.  ``__bpf_ringbuf_reserve``
rules: a record larger than the ring or than RINGBUF_MAX_RECORD_SZ fails; the producer may
not get more than ``size - 1`` bytes ahead of the consumer, nor of the oldest record still
reserved (``pending_pos``, the 6.10 overrun fix).  Failure is NULL for
``bpf_ringbuf_reserve`` (also for any flags), -EAGAIN for ``bpf_ringbuf_output`` (flags
other than BPF_RB_NO_WAKEUP/BPF_RB_FORCE_WAKEUP are -EINVAL).  Submit and discard clear
the busy bit; the reader stops at the first busy record, skips discarded ones.

Wakeups are counted in :attr:`RingBufMap.wakeups` with the kernel's rule (forced, or the
consumer is waiting at this very record and BPF_RB_NO_WAKEUP is not set); nothing sleeps.
Every host map command is ENOTSUPP, as in the kernel.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, MapBase
from tcemu.bpf.maps.registry import register_ring, ring_of
from tcemu.bpf.maps.spec import PAGE_SIZE, U32_MAX, MapSpec, round8

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = [
    "BPF_RB_AVAIL_DATA",
    "BPF_RB_CONS_POS",
    "BPF_RB_FORCE_WAKEUP",
    "BPF_RB_NO_WAKEUP",
    "BPF_RB_PROD_POS",
    "BPF_RB_RING_SIZE",
    "BPF_RINGBUF_BUSY_BIT",
    "BPF_RINGBUF_DISCARD_BIT",
    "BPF_RINGBUF_HDR_SZ",
    "RingBufMap",
    "RingbufReader",
    "ringbuf_of",
]

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
RINGBUF_MAX_RECORD_SZ = U32_MAX // 4
BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2
BPF_RB_AVAIL_DATA = 0
BPF_RB_RING_SIZE = 1
BPF_RB_CONS_POS = 2
BPF_RB_PROD_POS = 3
_DATA_PGOFF = 3     # RINGBUF_PGOFF (1) + RINGBUF_POS_PAGES (2): data starts on page 3
_HDR = struct.Struct("<II")


class RingBufMap(MapBase):
    """BPF_MAP_TYPE_RINGBUF: a multi-producer, single-consumer byte ring of records."""

    HOST_OPS = frozenset()

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self.size = spec.max_entries
        self.mask = self.size - 1
        self._buf = bytearray(2 * self.size)
        self.base = env.memory.add_region(self._buf, f"map {spec.name!r} ring")
        register_ring(env, self.base >> 32, self)
        self.consumer_pos = 0
        self.producer_pos = 0
        self.pending_pos = 0
        self.wakeups = 0

    def _footprint(self) -> int:
        return 2 * self.spec.max_entries

    def __len__(self) -> int:
        """Records a reader would get now."""
        return sum(1 for _ in self._committed(self.consumer_pos))

    def header_len(self, pos: int) -> int:
        """The ``len`` word of the record header at ring position ``pos``."""
        return int.from_bytes(self._buf[pos & self.mask:(pos & self.mask) + 4], "little")

    def _committed(self, pos: int) -> list[tuple[int, int]]:
        """(position, length) of the consumable, non-discarded records from ``pos``."""
        out = []
        while pos < self.producer_pos:
            length = self.header_len(pos)
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            if not length & BPF_RINGBUF_DISCARD_BIT:
                out.append((pos, length))
            pos += round8((length & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ)
        return out

    # -- producer side -----------------------------------------------------------------------

    def _advance_pending(self) -> int:
        pend = self.pending_pos
        while pend < self.producer_pos:
            length = self.header_len(pend)
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            pend += round8((length & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ)
        self.pending_pos = pend
        return pend

    def reserve(self, size: int) -> int:
        """``__bpf_ringbuf_reserve``: the sample address, or 0 when it does not fit."""
        if not 0 <= size <= RINGBUF_MAX_RECORD_SZ:
            return 0
        length = round8(size + BPF_RINGBUF_HDR_SZ)
        if length > self.size:
            return 0
        prod = self.producer_pos
        new_prod = prod + length
        pend = self._advance_pending()
        if new_prod - self.consumer_pos > self.mask or new_prod - pend > self.mask:
            return 0
        off = prod & self.mask
        end = off + length
        if end > self.size:
            # Both mappings are the same pages in the kernel: the part of the sample past
            # the end holds what the start of the ring holds (the program may leave it).
            self._buf[self.size:end] = self._buf[:end - self.size]
        _HDR.pack_into(self._buf, off, size | BPF_RINGBUF_BUSY_BIT,
                       _DATA_PGOFF + off // PAGE_SIZE)
        self.producer_pos = new_prod
        return self.base + off + BPF_RINGBUF_HDR_SZ

    def commit(self, sample: int, flags: int, discard: bool) -> int:
        """``bpf_ringbuf_commit``; -EINVAL for an address that is not a reserved sample
        (the verifier makes that impossible in the kernel)."""
        off = (sample - self.base) - BPF_RINGBUF_HDR_SZ
        if sample >> 32 != self.base >> 32 or not 0 <= off < self.size or off % 8:
            return -errno.EINVAL
        length = self.header_len(off)
        if not length & BPF_RINGBUF_BUSY_BIT:
            return -errno.EINVAL
        end = off + BPF_RINGBUF_HDR_SZ + (length & ~BPF_RINGBUF_BUSY_BIT)
        if end > self.size:                 # fold the second mapping back onto the first
            self._buf[:end - self.size] = self._buf[self.size:end]
        new_len = length ^ BPF_RINGBUF_BUSY_BIT
        if discard:
            new_len |= BPF_RINGBUF_DISCARD_BIT
        self._buf[off:off + 4] = new_len.to_bytes(4, "little")
        waiting = self.consumer_pos & self.mask == off
        if flags & BPF_RB_FORCE_WAKEUP or (waiting and not flags & BPF_RB_NO_WAKEUP):
            self.wakeups += 1
        return 0

    # -- in-VM API ----------------------------------------------------------------------------

    def vm_reserve(self, size: int, flags: int) -> int:
        """``bpf_ringbuf_reserve``: a writable sample address, or 0 (NULL)."""
        return 0 if flags else self.reserve(size)

    def vm_submit(self, sample: int, flags: int) -> int:
        """``bpf_ringbuf_submit``."""
        return self.commit(sample, flags, discard=False)

    def vm_discard(self, sample: int, flags: int) -> int:
        """``bpf_ringbuf_discard``."""
        return self.commit(sample, flags, discard=True)

    def vm_output(self, data: bytes, flags: int) -> int:
        """``bpf_ringbuf_output``: 0, -EINVAL for unknown flags, -EAGAIN when full."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -errno.EINVAL
        sample = self.reserve(len(data))
        if not sample:
            return -errno.EAGAIN
        off = sample & 0xFFFF_FFFF
        self._buf[off:off + len(data)] = data
        return self.commit(sample, flags, discard=False)

    def vm_query(self, flags: int) -> int:
        """``bpf_ringbuf_query``."""
        if flags == BPF_RB_AVAIL_DATA:
            return self.producer_pos - self.consumer_pos
        if flags == BPF_RB_RING_SIZE:
            return self.size
        if flags == BPF_RB_CONS_POS:
            return self.consumer_pos
        if flags == BPF_RB_PROD_POS:
            return self.producer_pos
        return 0

    # -- consumer side --------------------------------------------------------------------------

    def sample_bytes(self, pos: int, length: int) -> bytes:
        start = (pos + BPF_RINGBUF_HDR_SZ) & self.mask
        end = start + length
        if end <= self.size:
            return bytes(self._buf[start:end])
        return bytes(self._buf[start:self.size] + self._buf[:end - self.size])


def ringbuf_of(env: Env, sample: int) -> RingBufMap | None:
    """The ring buffer a sample pointer belongs to (``bpf_ringbuf_restore_from_rec``)."""
    ring = ring_of(env, sample)
    return ring if isinstance(ring, RingBufMap) else None


class RingbufReader:
    """The user-space consumer: reads committed records in order, advancing consumer_pos."""

    def __init__(self, ring: RingBufMap) -> None:
        self.ring = ring

    def read(self, limit: int | None = None) -> list[bytes]:
        """Consume up to ``limit`` records (all available ones by default), oldest first.

        Like ``ring_buffer__consume``: stops at the first record still reserved, skips
        discarded records, and moves the consumer position past everything it passed.
        """
        ring = self.ring
        out: list[bytes] = []
        pos = ring.consumer_pos
        while pos < ring.producer_pos and (limit is None or len(out) < limit):
            length = ring.header_len(pos)
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            size = length & ~BPF_RINGBUF_DISCARD_BIT
            if not length & BPF_RINGBUF_DISCARD_BIT:
                out.append(ring.sample_bytes(pos, size))
            pos += round8(size + BPF_RINGBUF_HDR_SZ)
            ring.consumer_pos = pos
        return out

    def available(self) -> int:
        """Bytes between the consumer and the producer (``BPF_RB_AVAIL_DATA``)."""
        return self.ring.producer_pos - self.ring.consumer_pos
