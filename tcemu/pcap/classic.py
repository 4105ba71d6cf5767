"""Classic libpcap savefiles (``pcap-savefile(5)``): a streaming reader and a writer.

Both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magics, and the
"modified" (Kuznetzov, 0xa1b2cd34) variant whose record headers carry 8 more bytes.

dpkt's ``pcap.Reader`` is not used in the loop: it turns timestamps into floats (losing
nanoseconds), drops the original length and says nothing about a truncated file, and
building a dpkt header object per packet is slower than one ``unpack_from`` on a chunk.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from types import TracebackType
from typing import BinaryIO

from tcemu.pcap.common import (
    MAX_SNAPLEN,
    CaptureSource,
    Interface,
    LinkType,
    PacketRecord,
    PcapError,
    source_name,
)
from tcemu.pcap.stream import CaptureReader, open_binary, refill

__all__ = ["PCAP_MAGICS", "PcapReader", "PcapWriter"]

# First four file bytes -> (byte order, ns per timestamp fraction unit, record header size)
PCAP_MAGICS: dict[bytes, tuple[str, int, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1000, 24),
    b"\xa1\xb2\xcd\x34": (">", 1000, 24),
}

_FILE_HDR = 24
MAX_CAPLEN = 16 << 20
# The link-type word: bits 0-15 the link type, bit 26 "FCS length present", bits 28-31
# the FCS length in 16-bit words (pcap-savefile(5), "LinkType and additional information").
_FCS_PRESENT = 1 << 26


class PcapReader(CaptureReader):
    """A classic pcap file: one interface (index 0), then packet records until EOF."""

    format = "pcap"

    def __init__(self, f: BinaryIO, *, name: str, owns: bool, prefix: bytes = b"") -> None:
        super().__init__(f, name=name, owns=owns, prefix=prefix)
        head = self._need(_FILE_HDR, "file header")
        magic = head[:4]
        if magic not in PCAP_MAGICS:
            raise self.error(f"bad magic {magic.hex()}: not a pcap file", offset=0)
        self.byte_order, self._frac_ns, self._rec_len = PCAP_MAGICS[magic]
        self.nanosecond = self._frac_ns == 1
        major, minor, _zone, _sigfigs, snaplen, ltword = struct.unpack(
            self.byte_order + "HHiIII", head[4:])
        if major != 2:
            raise self.error(f"unsupported version {major}.{minor}", offset=4)
        self.version = (major, minor)
        fcs_len = 2 * (ltword >> 28) if ltword & _FCS_PRESENT else 0
        self.interfaces.append(Interface(index=0, linktype=ltword & 0xFFFF, snaplen=snaplen,
                                         tsresol=9 if self.nanosecond else 6,
                                         fcs_len=fcs_len))
        self._pos = _FILE_HDR

    @property
    def linktype(self) -> int:
        return self.interfaces[0].linktype

    @property
    def snaplen(self) -> int:
        return self.interfaces[0].snaplen

    def _packets(self) -> Generator[PacketRecord, None, None]:
        read = self._f.read
        unpack_from = struct.Struct(self.byte_order + "IIII").unpack_from
        new = tuple.__new__
        record = PacketRecord
        iface = self.interfaces[0]
        frac_ns = self._frac_ns
        rec_len = self._rec_len
        # A corrupt header can claim any snaplen: past MAX_CAPLEN a caplen is absurd anyway,
        # and believing it would make the reader buffer gigabytes.
        limit = min(iface.snaplen or MAX_SNAPLEN, MAX_CAPLEN)
        buf, pos, base = self._buf, self._pos, self._base
        self._buf = b""
        count = 0
        while True:
            if len(buf) - pos < rec_len:
                buf = refill(read, buf, pos, rec_len)
                base += pos
                pos = 0
                if len(buf) < rec_len:
                    if buf:
                        raise self.error(
                            f"truncated packet header: {len(buf)} of {rec_len} bytes",
                            offset=base, packet=count + 1)
                    return
            sec, frac, caplen, wirelen = unpack_from(buf, pos)
            if caplen > limit:
                what = f"snaplen {limit}" if limit < MAX_CAPLEN else f"the {limit} byte limit"
                raise self.error(f"caplen {caplen} > {what}", offset=base + pos,
                                 packet=count + 1)
            start = pos + rec_len
            end = start + caplen
            if end > len(buf):
                buf = refill(read, buf, pos, rec_len + caplen)
                base += pos
                pos, start, end = 0, rec_len, rec_len + caplen
                if end > len(buf):
                    raise self.error(
                        f"truncated packet: caplen {caplen}, {len(buf) - rec_len} bytes left",
                        offset=base, packet=count + 1)
            count += 1
            pos = end
            yield new(record, (sec * 1_000_000_000 + frac * frac_ns, buf[start:end], wirelen,
                               iface, None, 0))


class PcapWriter:
    """Write a classic pcap file, little-endian, with nanosecond timestamps by default.

    Packets longer than ``snaplen`` are cut to it, keeping their original length, as a
    capture with that snap length would.  Microsecond files truncate timestamps to µs.
    """

    def __init__(self, target: CaptureSource, *, linktype: int = LinkType.ETHERNET,
                 snaplen: int = MAX_SNAPLEN, nanosecond: bool = True) -> None:
        self.name = source_name(target)
        if not 0 < snaplen <= 0xFFFFFFFF:
            raise PcapError(f"bad snaplen {snaplen}", path=self.name, verb="write")
        self._f, self._owns = open_binary(target, "wb")
        self.snaplen = snaplen
        self._div = 1 if nanosecond else 1000
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._hdr = struct.Struct("<IIII").pack
        self.count = 0

    def write(self, timestamp_ns: int, data: bytes, *, orig_len: int | None = None) -> None:
        if not 0 <= timestamp_ns < (1 << 32) * 1_000_000_000:
            raise PcapError(f"timestamp {timestamp_ns} ns does not fit a pcap record",
                            path=self.name, packet=self.count + 1, verb="write")
        wire = len(data) if orig_len is None else orig_len
        if wire < len(data):
            raise PcapError(f"orig_len {wire} < {len(data)} captured bytes",
                            path=self.name, packet=self.count + 1, verb="write")
        if len(data) > self.snaplen:
            data = data[:self.snaplen]
        sec, ns = divmod(timestamp_ns, 1_000_000_000)
        self._f.write(self._hdr(sec, ns // self._div, len(data), wire))
        self._f.write(data)
        self.count += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._owns:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
