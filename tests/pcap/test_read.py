"""The readers against hand-built files: both formats, byte orders, resolutions, blocks."""

from __future__ import annotations

import inspect
import io
import struct
from pathlib import Path

import pytest

from tcemu.pcap import (
    Direction,
    LinkType,
    PcapngReader,
    PcapReader,
    open_capture,
    read_packets,
)
from tests.pcap import wire

FRAMES = [bytes(range(60)), b"\xff" * 61, b"\x01\x02\x03", b""]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("nano", "modified"), [(False, False), (True, False), (False, True)])
def test_classic_byte_orders_and_magics(tmp_path: Path, order: str, nano: bool,
                                        modified: bool) -> None:
    recs = [(1_700_000_000 + i, 999_999 - i, data, len(data) + i)
            for i, data in enumerate(FRAMES)]
    path = tmp_path / "in.pcap"
    path.write_bytes(wire.classic(recs, order=order, nano=nano, modified=modified,
                                  linktype=LinkType.RAW))
    with open_capture(path) as reader:
        assert isinstance(reader, PcapReader)
        assert reader.byte_order == order
        assert reader.nanosecond is nano
        assert reader.linktype == LinkType.RAW
        assert reader.snaplen == 65535
        got = list(reader)
    unit = 1 if nano else 1000
    assert [(r.timestamp_ns, r.data, r.orig_len) for r in got] == [
        (sec * 1_000_000_000 + frac * unit, data, orig) for sec, frac, data, orig in recs]
    assert {(r.if_index, r.if_name, r.linktype, r.comment, r.flags) for r in got} == {
        (0, None, LinkType.RAW, None, 0)}


def test_classic_fcs_bits_of_the_linktype_word(tmp_path: Path) -> None:
    path = tmp_path / "fcs.pcap"
    path.write_bytes(wire.classic([(0, 0, b"x" * 64, 64)], linktype=1 | 1 << 26 | 2 << 28))
    with open_capture(path) as reader:
        assert reader.interfaces[0].linktype == LinkType.ETHERNET
        assert reader.interfaces[0].fcs_len == 4


def test_read_packets_is_a_generator_and_reads_file_objects() -> None:
    data = wire.classic([(1, 2, b"abc", 3)])
    assert inspect.isgenerator(read_packets(io.BytesIO(data)))
    assert [r.data for r in read_packets(io.BytesIO(data))] == [b"abc"]


class Trickle(io.RawIOBase):
    """A pipe-like stream: returns at most 3 bytes per read and cannot seek."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self._data[self._pos:self._pos + min(3, n if n >= 0 else 3)]
        self._pos += len(chunk)
        return chunk


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunk_boundaries_anywhere(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr("tcemu.pcap.stream.CHUNK", chunk)
    recs = [(i, i, bytes([i]) * (i * 7 % 97), i * 7 % 97) for i in range(50)]
    got = list(read_packets(Trickle(wire.classic(recs))))  # type: ignore[arg-type]
    assert [r.data for r in got] == [d for _, _, d, _ in recs]
    ng = wire.shb("<") + wire.idb("<") + b"".join(
        wire.epb("<", 0, i, d) for i, (_, _, d, _) in enumerate(recs))
    got = list(read_packets(Trickle(ng)))  # type: ignore[arg-type]
    assert [(r.timestamp_ns, r.data) for r in got] == [
        (i * 1000, d) for i, (_, _, d, _) in enumerate(recs)]


def _pcapng(order: str) -> bytes:
    o = order
    return b"".join([
        wire.shb(o, opts=[(4, b"hand-built")]),
        wire.idb(o, 1, 0, [(2, b"eth0"), (3, b"first"), (9, b"\x09")]),
        wire.block(o, 4, b"\0\0\0\0"),                      # name resolution: skipped
        wire.idb(o, LinkType.RAW, 128, [(2, b"tun0"), (9, b"\x8a"), (14, struct.pack(
            o + "q", 100))]),
        wire.epb(o, 0, 1_700_000_000_123_456_789, FRAMES[0], 1514,
                 [(1, b"hook=ingress"), (1, b"second"), (2, struct.pack(o + "I", 2))]),
        wire.epb(o, 1, 3 << 10 | 512, FRAMES[1]),            # 3.5 s in 1/1024 s units
        wire.block(o, 0x40000BAD, b"PEN!" + b"\0" * 4),      # custom block: skipped
        wire.spb(o, FRAMES[2]),
        wire.block(o, 5, b"\0" * 12),                        # statistics: skipped
        wire.pb(o, 0, 42, FRAMES[3]),
        wire.block(o, 0x1234, b""),                          # unknown: skipped
        wire.epb(o, 1, 7, b"tun"),
    ])


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_blocks_options_and_interfaces(order: str) -> None:
    with open_capture(io.BytesIO(_pcapng(order))) as reader:
        assert isinstance(reader, PcapngReader)
        got = list(reader)
        eth0, tun0 = reader.interfaces
    assert (eth0.name, eth0.description, eth0.tsresol, eth0.linktype) == (
        "eth0", "first", 9, LinkType.ETHERNET)
    assert (tun0.name, tun0.snaplen, tun0.tsresol, tun0.tsoffset_s) == ("tun0", 128, 0x8A, 100)
    assert [(r.if_index, r.timestamp_ns, r.data, r.orig_len) for r in got] == [
        (0, 1_700_000_000_123_456_789, FRAMES[0], 1514),
        (1, 103_500_000_000, FRAMES[1], 61),
        (0, 103_500_000_000, FRAMES[2], 3),   # SPB: no timestamp, the previous one kept
        (0, 42, FRAMES[3], 0),
        (1, 100_000_000_000 + 7 * 1_000_000_000 // 1024, b"tun", 3),
    ]
    assert got[0].comment == "hook=ingress\nsecond"
    assert got[0].direction is Direction.OUTBOUND
    assert got[1].comment is None
    assert got[1].direction is Direction.UNKNOWN


def test_pcapng_sections_reset_interfaces_and_may_change_byte_order() -> None:
    data = (wire.shb("<") + wire.idb("<", 1, 0, [(2, b"a")]) + wire.epb("<", 0, 1, b"A")
            + wire.shb(">") + wire.idb(">", 101, 0, [(2, b"b"), (9, b"\x03")])
            + wire.epb(">", 0, 5, b"B"))
    with open_capture(io.BytesIO(data)) as reader:
        got = list(reader)
        assert [(i.name, i.section, i.index) for i in reader.interfaces] == [
            ("a", 0, 0), ("b", 1, 0)]
    assert [(r.if_name, r.linktype, r.timestamp_ns, r.data) for r in got] == [
        ("a", 1, 1000, b"A"), ("b", LinkType.RAW, 5_000_000, b"B")]


@pytest.mark.parametrize(("tsresol", "raw", "ns"), [
    (0, 3, 3_000_000_000), (3, 3, 3_000_000), (9, 3, 3), (12, 3_999, 3),
    (0x80, 3, 3_000_000_000), (0x81, 3, 1_500_000_000), (0x9E, 1 << 30, 1_000_000_000)])
def test_pcapng_if_tsresol(tsresol: int, raw: int, ns: int) -> None:
    data = wire.shb("<") + wire.idb("<", 1, 0, [(9, bytes([tsresol]))]) + wire.epb(
        "<", 0, raw, b"x")
    assert [r.timestamp_ns for r in read_packets(io.BytesIO(data))] == [ns]


def test_reader_iterates_once_and_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(wire.classic([(1, 0, b"a", 1), (2, 0, b"b", 1)]))
    reader = open_capture(path)
    it = iter(reader)
    assert next(it).data == b"a"
    assert iter(reader) is it
    assert [r.data for r in reader] == [b"b"]
    reader.close()
    reader.close()
