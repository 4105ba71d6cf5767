"""Seeded mutations of valid captures: the readers deliver packets or raise PcapError,
never another exception (struct.error, IndexError, UnicodeError, ...)."""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable

import pytest

from tcemu.pcap import PcapError, read_packets
from tests.pcap import wire


def _pcapng() -> bytes:
    o = "<"
    return b"".join([
        wire.shb(o, opts=[(4, b"app")]),
        wire.idb(o, 1, 200, [(2, b"eth0"), (9, b"\x09"), (14, struct.pack("<q", 5))]),
        wire.idb(o, 101, 0, [(2, b"tun0"), (9, b"\x86"), (13, b"\x04")]),
        wire.epb(o, 0, 123456789, bytes(range(70)), 80, [(1, b"comment"), (2, b"\1\0\0\0")]),
        wire.spb(o, b"simple" * 3),
        wire.pb(o, 1, 99, b"packet block"),
        wire.block(o, 5, b"\0" * 16),
        wire.epb(o, 1, 1 << 40, b"x" * 33),
        wire.shb(">"),
        wire.idb(">", 1, 0, [(2, b"\xff\xfe bad utf-8")]),
        wire.epb(">", 0, 7, b"big-endian"),
    ])


def _classic() -> bytes:
    return wire.classic([(i, i, bytes([i]) * (i * 13 % 90), 90) for i in range(12)],
                        snaplen=100)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:                                   # flip a few bytes
        for _ in range(rng.randrange(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:                                 # truncate
        del buf[rng.randrange(len(buf)):]
    elif kind == 2:                                 # overwrite a 32-bit word
        at = rng.randrange(len(buf) - 4) & ~3
        buf[at:at + 4] = struct.pack("<I", rng.choice([0, 1, 3, 12, 0xFFFFFFFF,
                                                       rng.randrange(1 << 32)]))
    else:                                           # insert junk
        at = rng.randrange(len(buf))
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    return bytes(buf)


@pytest.mark.parametrize("make", [_pcapng, _classic])
def test_mutated_captures_raise_only_pcap_errors(make: Callable[[], bytes]) -> None:
    good = make()
    rng = random.Random(2026)
    outcomes = {"ok": 0, "error": 0}
    paths = set()
    for _ in range(600):
        data = _mutate(rng, good)
        try:
            for rec in read_packets(io.BytesIO(data)):
                assert len(rec.data) <= 1 << 18
        except PcapError as err:
            paths.add(err.path)
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
    assert paths == {"<stream>"}
    assert outcomes["error"] > 100
    assert outcomes["ok"] > 10
