"""Reading stays flat in memory: a 200 MB capture, generated on the fly, read as a stream.

The assertion is on the peak of Python allocations (tracemalloc) while the whole file is
read, which is deterministic, never on time.  A reader that kept the packets would need
about 200 MB; a streaming one needs a chunk (1 MiB) and a packet or two.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tcemu.pcap import PcapngWriter, read_packets

SIZE = 200 << 20
PAYLOAD = 1500
BATCH = 1024
LIMIT = 8 << 20


def _write_pcap(path: Path) -> int:
    """Write SIZE bytes of pcap in batches; return the packet count."""
    rec = struct.Struct("<IIII")
    count = 0
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        while f.tell() < SIZE:
            f.write(b"".join(rec.pack(count + i, i, PAYLOAD, PAYLOAD)
                             + bytes([i & 0xFF]) * PAYLOAD for i in range(BATCH)))
            count += BATCH
    return count


def _write_pcapng(path: Path) -> int:
    count = 0
    with PcapngWriter(path) as w:
        dev = [w.add_interface(f"eth{i}") for i in range(3)]
        frames = [bytes([i]) * PAYLOAD for i in range(256)]
        while path.stat().st_size < SIZE:
            for i in range(BATCH):
                w.write(dev[i % 3], count + i, frames[i & 0xFF],
                        comment="hook=ingress" if i % 7 == 0 else None)
            count += BATCH
            w.flush()
    return count


@pytest.mark.parametrize("writer", [_write_pcap, _write_pcapng])
def test_reading_a_200mb_capture_keeps_memory_flat(
        tmp_path: Path, writer: Callable[[Path], int]) -> None:
    path = tmp_path / "big.cap"
    count = writer(path)
    assert path.stat().st_size >= SIZE
    seen = total = 0
    tracemalloc.start()
    try:
        for rec in read_packets(path):
            seen += 1
            total += len(rec.data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()
    assert (seen, total) == (count, count * PAYLOAD)
    assert peak < LIMIT, f"reading {SIZE >> 20} MB peaked at {peak >> 20} MB of Python memory"
