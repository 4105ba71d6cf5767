"""Corrupt captures: a PcapError naming file, byte offset, packet number and the fault,
after every packet before the fault has been delivered."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tcemu.errors import TcemuError
from tcemu.pcap import PcapError, open_capture, read_packets
from tests.pcap import wire

GOOD = [(1, 0, b"a" * 40, 40), (2, 0, b"b" * 41, 41)]
HDR = 24 + 2 * 16 + 81          # offset just past the two good packets


def _read_all(path: Path) -> tuple[list[bytes], PcapError]:
    delivered: list[bytes] = []
    try:
        for rec in read_packets(path):
            delivered.append(rec.data)
    except PcapError as err:
        return delivered, err
    pytest.fail(f"{path}: read {len(delivered)} packets and no PcapError")


def _check(path: Path, data: bytes, *, offset: int | None, packet: int | None,
           reason: str, delivered: int = 0) -> PcapError:
    path.write_bytes(data)
    got, err = _read_all(path)
    assert len(got) == delivered
    assert isinstance(err, TcemuError)
    assert (err.path, err.offset, err.packet) == (str(path), offset, packet)
    assert reason in err.reason
    assert str(path) in str(err)
    if offset is not None:
        assert f"at byte {offset}" in str(err)
    return err


@pytest.mark.parametrize(("data", "offset", "reason"), [
    (b"", 0, "truncated file header: 0 of 4"),
    (b"\xd4\xc3", 0, "truncated file header: 2 of 4"),
    (b"GIF89a" + b"\0" * 30, 0, "bad magic 47494638"),
    (b"\xd4\xc3\xb2\xa1" + b"\0" * 10, 0, "truncated file header: 14 of 24"),
    (wire.classic([], version=(1, 0)), 4, "unsupported version 1.0"),
    (b"\x0a\x0d\x0d\x0a\x1c\0\0\0", 0, "truncated section header block: 8 of 12"),
])
def test_bad_file_headers(tmp_path: Path, data: bytes, offset: int, reason: str) -> None:
    path = tmp_path / "bad.cap"
    path.write_bytes(data)
    with pytest.raises(PcapError) as info:
        open_capture(path)
    assert (info.value.offset, info.value.packet) == (offset, None)
    assert reason in str(info.value)
    assert str(info.value).startswith(f"read capture '{path}' at byte {offset}: ")


@pytest.mark.parametrize("order", ["<", ">"])
def test_classic_corruption(tmp_path: Path, order: str) -> None:
    good = wire.classic(GOOD, order=order, snaplen=100)
    path = tmp_path / "c.pcap"
    _check(path, good + b"\0" * 9, offset=HDR, packet=3, delivered=2,
           reason="truncated packet header: 9 of 16 bytes")
    rec = struct.pack(order + "IIII", 3, 0, 50, 50)
    _check(path, good + rec + b"x" * 20, offset=HDR, packet=3, delivered=2,
           reason="truncated packet: caplen 50, 20 bytes left")
    rec = struct.pack(order + "IIII", 3, 0, 101, 101)
    _check(path, good + rec + b"x" * 101, offset=HDR, packet=3, delivered=2,
           reason="caplen 101 > snaplen 100")
    absurd = wire.classic(GOOD, order=order, snaplen=0) + struct.pack(
        order + "IIII", 3, 0, 0x7FFFFFFF, 1)
    _check(path, absurd, offset=HDR, packet=3, delivered=2,
           reason="caplen 2147483647 > snaplen 262144")
    huge_snaplen = wire.classic(GOOD, order=order, snaplen=0xFFFFFFFF) + struct.pack(
        order + "IIII", 3, 0, 0x7FFFFFFF, 1)
    _check(path, huge_snaplen, offset=HDR, packet=3, delivered=2,
           reason="caplen 2147483647 > the 16777216 byte limit")


def _ng(*blocks: bytes) -> bytes:
    return wire.shb("<") + wire.idb("<", 1, 100) + b"".join(blocks)


OK = wire.epb("<", 0, 1, b"ok")     # 36 bytes
AT = 28 + 20 + 36                   # offset of the block after one good packet


@pytest.mark.parametrize(("tail", "offset", "reason"), [
    (b"\x06\0\0\0\x20", AT, "truncated block header: 5 of 12 bytes"),
    (struct.pack("<III", 6, 30, 30), AT, "bad block length 30 of EPB block"),
    (struct.pack("<III", 6, 8, 8), AT, "bad block length 8 of EPB block"),
    (struct.pack("<III", 6, 1 << 30, 0), AT, "bad block length 1073741824 of EPB block"),
    (struct.pack("<II", 6, 40) + b"\0" * 16, AT, "truncated EPB block: length 40, 24 bytes"),
    (wire.epb("<", 0, 1, b"xy")[:-4] + struct.pack("<I", 40), AT,
     "EPB block says 36 at its start and 40 at its end"),
    (struct.pack("<IIIIIII", 6, 32, 0, 0, 0, 9, 9) + struct.pack("<I", 32), AT,
     "truncated packet: caplen 9 exceeds the 0 bytes of its block"),
    (wire.epb("<", 3, 1, b"xy"), AT, "packet refers to interface 3, the section has 1"),
    (wire.epb("<", 0, 1, b"x" * 101), AT, "caplen 101 > snaplen 100 of interface 0"),
    (wire.block("<", 6, struct.pack("<IIIII", 0, 0, 1, 2, 2) + b"xy\0\0"
                 + struct.pack("<HH", 1, 200)), AT,
     "bad option 1: length 200 runs past its block"),
    (wire.spb("<", b"abc", 3)[:8] + struct.pack("<I", 200) + b"abc\0"
     + struct.pack("<I", 20), AT, "simple packet block of length 20 cannot hold 100 bytes"),
    (wire.shb("<")[:8] + b"\x12\x34\x56\x78" + wire.shb("<")[12:], AT + 8,
     "bad byte-order magic 12345678"),
    (wire.shb("<", major=2), AT, "unsupported pcapng version 2.0"),
])
def test_pcapng_corruption(tmp_path: Path, tail: bytes, offset: int,
                           reason: str) -> None:
    path = tmp_path / "n.pcapng"
    packet = None if "version" in reason else 2
    _check(path, _ng(OK, tail), offset=offset, packet=packet, delivered=1, reason=reason)


def test_pcapng_first_block_must_be_a_section_header(tmp_path: Path) -> None:
    from tcemu.pcap import PcapngReader

    path = tmp_path / "x.pcapng"
    path.write_bytes(wire.idb("<") + OK)
    with pytest.raises(PcapError, match="at byte 0: bad magic 01000000: not a pcapng file"):
        PcapngReader.open(path)


def test_simple_packet_block_cut_to_snaplen() -> None:
    import io

    data = wire.shb("<") + wire.idb("<", 1, 4) + wire.spb("<", b"abcd", 9000)
    assert [(r.data, r.orig_len) for r in read_packets(io.BytesIO(data))] == [(b"abcd", 9000)]
