"""pcapng (draft-ietf-opsawg-pcapng): a streaming reader.

Reads Section Header, Interface Description, Enhanced Packet, Simple Packet and the
obsolete Packet blocks, in either byte order, across several sections and interfaces;
every other block type (name resolution, statistics, decryption secrets, custom) is
skipped by its length.  Timestamps honour ``if_tsresol`` and ``if_tsoffset`` and come out
as exact integer nanoseconds.  A Simple Packet Block has no timestamp and no interface
id: its record carries interface 0 of the section and the previous packet's timestamp
(0 before any), so replay time never runs backwards.

dpkt's ``pcapng.Reader`` is not used: it knows only the first interface of a file, no
Simple Packet Blocks and no second section, and it yields float timestamps.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import BinaryIO

from tcemu.pcap.common import MAX_SNAPLEN, Interface, PacketRecord
from tcemu.pcap.stream import CaptureReader, refill

__all__ = ["BLOCK_TYPES", "PcapngReader"]

BT_SHB = 0x0A0D0D0A
BT_IDB = 1
BT_PB = 2
BT_SPB = 3
BT_EPB = 6
BLOCK_TYPES = {BT_SHB: "SHB", BT_IDB: "IDB", BT_PB: "PB", BT_SPB: "SPB", 4: "NRB", 5: "ISB",
               BT_EPB: "EPB", 0xA: "DSB", 0xBAD: "CB", 0x40000BAD: "CB"}
_BOM = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_OPT_HDR = {order: struct.Struct(order + "HH").unpack_from for order in "<>"}
_U32 = {order: struct.Struct(order + "I").unpack_from for order in "<>"}
# No capture tool writes a block this large; a bigger length is a corrupt header.
MAX_BLOCK = 16 << 20

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_EPB_FLAGS = 2
OPT_IF_NAME = 2
OPT_IF_DESCRIPTION = 3
OPT_IF_TSRESOL = 9
OPT_IF_FCSLEN = 13
OPT_IF_TSOFFSET = 14


def ts_scale(tsresol: int, tsoffset_s: int) -> tuple[int, int, int]:
    """(mul, div, add) such that ``raw * mul // div + add`` is the timestamp in ns."""
    exp = tsresol & 0x7F
    add = tsoffset_s * 1_000_000_000
    if tsresol & 0x80:
        return 1_000_000_000, 1 << exp, add
    if exp <= 9:
        return 10 ** (9 - exp), 1, add
    return 1, 10 ** (exp - 9), add


class PcapngReader(CaptureReader):
    """A pcapng file.  ``interfaces`` lists every IDB seen so far, of every section."""

    format = "pcapng"

    def __init__(self, f: BinaryIO, *, name: str, owns: bool, prefix: bytes = b"") -> None:
        super().__init__(f, name=name, owns=owns, prefix=prefix)
        head = self._need(12, "section header block")
        if head[:4] != b"\x0a\x0d\x0d\x0a":
            raise self.error(f"bad magic {head[:4].hex()}: not a pcapng file", offset=0)
        self._section = -1
        self._order = "<"
        # per interface of the current section: (interface, caplen limit, mul, div, add)
        self._info: list[tuple[Interface, int, int, int, int]] = []

    # --- the loop ------------------------------------------------------------------------

    def _packets(self) -> Generator[PacketRecord, None, None]:
        read = self._f.read
        new = tuple.__new__
        record = PacketRecord
        buf, pos, base = self._buf, 0, self._base
        self._buf = b""
        count = 0
        last_ts = 0
        order = ""
        # the first block is a section header (checked on open): its type reads the same in
        # either byte order, and these are rebound to the section's order there
        unpack_hdr = unpack_u32 = struct.Struct("<II").unpack_from
        unpack_head = struct.Struct("<IIIIIII").unpack_from
        info = self._info
        while True:
            # Fast path: a whole, well-formed EPB in the buffer.  Anything else, including
            # an EPB that is not wholly in the buffer yet, takes the general path below,
            # which checks what this one does (so it raises, or refills and comes back).
            if len(buf) - pos >= 32:
                btype, blen, if_id, hi, lo, caplen, wirelen = unpack_head(buf, pos)
                end = pos + blen
                if (btype == 6 and 32 + caplen <= blen <= MAX_BLOCK and not blen & 3
                        and end <= len(buf) and if_id < len(info)
                        and unpack_u32(buf, end - 4)[0] == blen):
                    iface, limit, mul, div, add = info[if_id]
                    if caplen <= limit:
                        last_ts = ((hi << 32) | lo) * mul // div + add
                        count += 1
                        dend = pos + 28 + caplen
                        if dend + 3 & ~3 < end - 4:
                            comment, flags = self._epb_options(buf, dend + 3 & ~3, end - 4,
                                                               order, base + pos, count)
                            yield new(record, (last_ts, buf[pos + 28:dend], wirelen, iface,
                                               comment, flags))
                        else:
                            yield new(record, (last_ts, buf[pos + 28:dend], wirelen, iface,
                                               None, 0))
                        pos = end
                        continue
            if len(buf) - pos < 12:
                buf = refill(read, buf, pos, 12)
                base += pos
                pos = 0
                if len(buf) < 12:
                    if buf:
                        raise self.error(f"truncated block header: {len(buf)} of 12 bytes",
                                         offset=base, packet=count + 1)
                    return
            btype, blen = unpack_hdr(buf, pos)
            if btype == BT_SHB:
                bom = buf[pos + 8:pos + 12]
                if bom not in _BOM:
                    raise self.error(f"bad byte-order magic {bom.hex()}",
                                     offset=base + pos + 8, packet=count + 1)
                if _BOM[bom] != order:
                    order = _BOM[bom]
                    unpack_hdr = struct.Struct(order + "II").unpack_from
                    unpack_head = struct.Struct(order + "IIIIIII").unpack_from
                    unpack_u32 = struct.Struct(order + "I").unpack_from
                    btype, blen = unpack_hdr(buf, pos)
            if blen < 12 or blen & 3 or blen > MAX_BLOCK:
                raise self.error(f"bad block length {blen} of {_block_name(btype)} block",
                                 offset=base + pos, packet=count + 1)
            end = pos + blen
            if end > len(buf):
                buf = refill(read, buf, pos, blen)
                base += pos
                pos, end = 0, blen
                if blen > len(buf):
                    raise self.error(
                        f"truncated {_block_name(btype)} block: length {blen}, "
                        f"{len(buf)} bytes left", offset=base, packet=count + 1)
            if unpack_u32(buf, end - 4)[0] != blen:
                raise self.error(
                    f"bad block length: {_block_name(btype)} block says {blen} at its start "
                    f"and {unpack_u32(buf, end - 4)[0]} at its end",
                    offset=base + pos, packet=count + 1)
            if btype == BT_EPB:
                if blen < 32:
                    raise self.error(f"bad block length {blen} of EPB block (minimum 32)",
                                     offset=base + pos, packet=count + 1)
                if_id, _hi, _lo, caplen, _wire = unpack_head(buf, pos)[2:]
                if 32 + caplen > blen or if_id >= len(info):
                    raise self._bad_packet(if_id, caplen, blen - 32, base + pos, count + 1)
                if caplen > info[if_id][1]:
                    raise self.error(f"caplen {caplen} > snaplen {info[if_id][1]} of interface"
                                     f" {if_id}", offset=base + pos, packet=count + 1)
                continue        # whole and well-formed: the fast path takes it
            elif btype == BT_SPB:
                if not info or blen < 16:
                    raise self.error("simple packet block " + (
                        "before any interface" if not info else f"of length {blen}"),
                        offset=base + pos, packet=count + 1)
                iface = info[0][0]
                wirelen = unpack_u32(buf, pos + 8)[0]
                caplen = min(wirelen, iface.snaplen or wirelen)
                if caplen > blen - 16:
                    raise self.error(f"truncated packet: simple packet block of length {blen}"
                                     f" cannot hold {caplen} bytes", offset=base + pos,
                                     packet=count + 1)
                count += 1
                yield new(record, (last_ts, buf[pos + 12:pos + 12 + caplen], wirelen, iface,
                                   None, 0))
            elif btype == BT_IDB:
                self._idb(buf, pos, end, order, base)
            elif btype == BT_SHB:
                self._shb(buf, pos, end, order, base)
                info = self._info
            elif btype == BT_PB:
                last_ts, rec = self._pb(buf, pos, end, order, base, count + 1)
                count += 1
                yield rec
            pos = end

    # --- block bodies (not per packet, or rare) ----------------------------------------

    def _bad_packet(self, if_id: int, caplen: int, room: int, offset: int,
                    packet: int) -> Exception:
        if if_id >= len(self._info):
            return self.error(f"packet refers to interface {if_id}, the section has "
                              f"{len(self._info)}", offset=offset, packet=packet)
        return self.error(f"truncated packet: caplen {caplen} exceeds the {room} bytes of "
                          "its block", offset=offset, packet=packet)

    def _options(self, buf: bytes, start: int, end: int, order: str,
                 offset: int, packet: int | None) -> list[tuple[int, bytes]]:
        opts: list[tuple[int, bytes]] = []
        unpack = _OPT_HDR[order]
        while start + 4 <= end:
            code, length = unpack(buf, start)
            if code == OPT_ENDOFOPT:
                break
            vstart = start + 4
            if vstart + length > end:
                raise self.error(f"bad option {code}: length {length} runs past its block",
                                 offset=offset, packet=packet)
            opts.append((code, buf[vstart:vstart + length]))
            start = vstart + ((length + 3) & ~3)
        return opts

    def _epb_options(self, buf: bytes, start: int, end: int, order: str, offset: int,
                     packet: int) -> tuple[str | None, int]:
        """``opt_comment`` (several joined by newlines) and ``epb_flags`` of a packet block.

        Walks the options in place rather than through :meth:`_options`: tcemu's own
        captures have a comment on every packet, so this runs once per packet there.
        """
        comment = None
        flags = 0
        unpack = _OPT_HDR[order]
        while start + 4 <= end:
            code, length = unpack(buf, start)
            if code == OPT_ENDOFOPT:
                break
            vstart = start + 4
            vend = vstart + length
            if vend > end:
                raise self.error(f"bad option {code}: length {length} runs past its block",
                                 offset=offset, packet=packet)
            if code == OPT_COMMENT:
                text = buf[vstart:vend].decode("utf-8", "replace")
                comment = text if comment is None else f"{comment}\n{text}"
            elif code == OPT_EPB_FLAGS and length == 4:
                flags = _U32[order](buf, vstart)[0]
            start = vend + (-length & 3)
        return comment, flags

    def _shb(self, buf: bytes, pos: int, end: int, order: str, base: int) -> None:
        if end - pos < 28:
            raise self.error(f"bad block length {end - pos} of SHB block (minimum 28)",
                             offset=base + pos)
        major, minor = struct.unpack_from(order + "HH", buf, pos + 12)
        if major != 1:
            raise self.error(f"unsupported pcapng version {major}.{minor}", offset=base + pos)
        self._section += 1
        self._info = []

    def _idb(self, buf: bytes, pos: int, end: int, order: str, base: int) -> None:
        if end - pos < 20:
            raise self.error(f"bad block length {end - pos} of IDB block (minimum 20)",
                             offset=base + pos)
        linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        name: str | None = None
        description: str | None = None
        tsresol, tsoffset, fcs_len = 6, 0, 0
        for code, value in self._options(buf, pos + 16, end - 4, order, base + pos, None):
            if code == OPT_IF_NAME:
                name = value.decode("utf-8", "replace").rstrip("\0")
            elif code == OPT_IF_DESCRIPTION:
                description = value.decode("utf-8", "replace").rstrip("\0")
            elif code == OPT_IF_TSRESOL and len(value) == 1:
                tsresol = value[0]
                if (tsresol & 0x7F) > (63 if tsresol & 0x80 else 18):
                    raise self.error(f"bad if_tsresol {tsresol:#x}", offset=base + pos)
            elif code == OPT_IF_TSOFFSET and len(value) == 8:
                tsoffset = struct.unpack(order + "q", value)[0]
            elif code == OPT_IF_FCSLEN and len(value) == 1:
                fcs_len = value[0]
        iface = Interface(index=len(self._info), linktype=linktype, snaplen=snaplen,
                          name=name, description=description, tsresol=tsresol,
                          tsoffset_s=tsoffset, fcs_len=fcs_len, section=self._section)
        self._info.append((iface, snaplen or MAX_SNAPLEN, *ts_scale(tsresol, tsoffset)))
        self.interfaces.append(iface)

    def _pb(self, buf: bytes, pos: int, end: int, order: str, base: int,
            packet: int) -> tuple[int, PacketRecord]:
        """The obsolete Packet Block: an EPB with a 16-bit interface id and a drop count."""
        if end - pos < 32:
            raise self.error(f"bad block length {end - pos} of PB block (minimum 32)",
                             offset=base + pos, packet=packet)
        if_id, _drops, hi, lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", buf,
                                                                     pos + 8)
        start = pos + 28
        if start + caplen > end - 4 or if_id >= len(self._info):
            raise self._bad_packet(if_id, caplen, end - pos - 32, base + pos, packet)
        iface, _limit, mul, div, add = self._info[if_id]
        ts = ((hi << 32) | lo) * mul // div + add
        comment, flags = self._epb_options(buf, (start + caplen + 3) & ~3, end - 4, order,
                                           base + pos, packet)
        return ts, PacketRecord(ts, buf[start:start + caplen], wirelen, iface, comment, flags)


def _block_name(btype: int) -> str:
    return BLOCK_TYPES.get(btype, f"type {btype:#x}")
