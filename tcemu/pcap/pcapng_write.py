"""pcapng (draft-ietf-opsawg-pcapng): the writer behind per-device captures.

One Section Header Block, one Interface Description Block per device (``if_name``,
``if_description``, ``if_tsresol``), and one Enhanced Packet Block per packet carrying
an ``opt_comment`` (for tcemu: hook, filter, verdict) and ``epb_flags`` (direction).
Output is little-endian whatever the host, and holds nothing but what the caller gave
(no host name, OS or wall-clock time), so the same calls give the same bytes.
"""

from __future__ import annotations

import struct
from types import TracebackType

from tcemu.pcap.common import (
    MAX_SNAPLEN,
    CaptureSource,
    Direction,
    Interface,
    LinkType,
    PcapError,
    source_name,
)
from tcemu.pcap.stream import open_binary

__all__ = ["PcapngWriter"]

_SHB_OPT_USERAPPL = 4
_OPT_COMMENT = 1
_OPT_EPB_FLAGS = 2
_OPT_IF_NAME = 2
_OPT_IF_DESCRIPTION = 3
_OPT_IF_TSRESOL = 9
_EPB_HEAD = struct.Struct("<IIIIIII")     # type, length, if_id, ts_hi, ts_lo, caplen, len
_U32 = struct.Struct("<I")
_MAX_TS = (1 << 64) - 1


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


def _block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + _U32.pack(length)


class PcapngWriter:
    """Write a pcapng capture: ``add_interface`` per device, then ``write`` per packet.

    Usable as a context manager; ``close`` closes the file only if the writer opened it.
    """

    def __init__(self, target: CaptureSource, *, application: str | None = "tcemu",
                 comment: str | None = None) -> None:
        self.name = source_name(target)
        self._f, self._owns = open_binary(target, "wb")
        self.interfaces: list[Interface] = []
        self._scale: list[int] = []
        self._by_name: dict[str, int] = {}
        self.count = 0
        opts = b""
        if comment:
            opts += _option(_OPT_COMMENT, comment.encode())
        if application:
            opts += _option(_SHB_OPT_USERAPPL, application.encode())
        if opts:
            opts += _option(0, b"")
        # byte-order magic, version 1.0, section length -1 (not given)
        self._f.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts))

    def error(self, message: str) -> PcapError:
        return PcapError(message, path=self.name, packet=self.count + 1, verb="write")

    def add_interface(self, name: str, linktype: int = LinkType.ETHERNET, *,
                      tsresol_ns: bool = True, description: str | None = None,
                      snaplen: int = MAX_SNAPLEN) -> int:
        """Describe one more interface and return its index for :meth:`write`.

        ``tsresol_ns`` records nanosecond timestamps; otherwise pcapng's default
        microseconds (timestamps are truncated to µs).  ``snaplen`` 0 means no limit.
        """
        if not 0 <= linktype <= 0xFFFF or not 0 <= snaplen <= 0xFFFFFFFF:
            raise PcapError(f"bad interface {name!r}: linktype {linktype}, snaplen {snaplen}",
                            path=self.name, verb="write")
        opts = _option(_OPT_IF_NAME, name.encode())
        if description:
            opts += _option(_OPT_IF_DESCRIPTION, description.encode())
        if tsresol_ns:
            opts += _option(_OPT_IF_TSRESOL, b"\x09")
        opts += _option(0, b"")
        self._f.write(_block(1, struct.pack("<HHI", linktype, 0, snaplen) + opts))
        index = len(self.interfaces)
        self._by_name.setdefault(name, index)
        self.interfaces.append(Interface(index=index, linktype=linktype, snaplen=snaplen,
                                         name=name, description=description,
                                         tsresol=9 if tsresol_ns else 6))
        self._scale.append(1 if tsresol_ns else 1000)
        return index

    def interface(self, name: str, linktype: int = LinkType.ETHERNET, *,
                  description: str | None = None) -> int:
        """The index of the interface called ``name``, described on first use.

        Lets a capture of several devices add each device's block when its first packet
        is written, so devices that see no packet do not appear.
        """
        index = self._by_name.get(name)
        if index is None:
            index = self.add_interface(name, linktype, description=description)
        elif self.interfaces[index].linktype != linktype:
            raise PcapError(f"interface {name!r} is link type {self.interfaces[index].linktype}"
                            f", not {linktype}", path=self.name, verb="write")
        return index

    def write(self, if_index: int, timestamp_ns: int, data: bytes, *,
              comment: str | None = None, direction: Direction | None = None,
              flags: int = 0, orig_len: int | None = None) -> None:
        """Append one Enhanced Packet Block.

        ``direction`` sets bits 0-1 of ``epb_flags``; ``flags`` gives the other bits
        (reception type, FCS length, link-layer errors) for callers that know them.
        A packet longer than the interface's snaplen is cut to it, keeping ``orig_len``.
        """
        if not 0 <= if_index < len(self.interfaces):
            raise self.error(f"no interface {if_index} (have {len(self.interfaces)})")
        raw = timestamp_ns // self._scale[if_index]
        if not 0 <= raw <= _MAX_TS:
            raise self.error(f"timestamp {timestamp_ns} ns does not fit 64 bits")
        wire = len(data) if orig_len is None else orig_len
        if wire < len(data):
            raise self.error(f"orig_len {wire} < {len(data)} captured bytes")
        snaplen = self.interfaces[if_index].snaplen
        if snaplen and len(data) > snaplen:
            data = data[:snaplen]
        opts = b""
        if comment is not None:
            opts += _option(_OPT_COMMENT, comment.encode())
        epb_flags = flags | (int(direction) if direction is not None else 0)
        if epb_flags:
            if not 0 <= epb_flags <= 0xFFFFFFFF:
                raise self.error(f"epb_flags {epb_flags:#x} do not fit 32 bits")
            opts += _option(_OPT_EPB_FLAGS, _U32.pack(epb_flags))
        if opts:
            opts += b"\0\0\0\0"
        pad = -len(data) & 3
        length = 32 + len(data) + pad + len(opts)
        self._f.write(_EPB_HEAD.pack(6, length, if_index, raw >> 32, raw & 0xFFFFFFFF,
                                     len(data), wire))
        self._f.write(data + b"\0" * pad + opts + _U32.pack(length))
        self.count += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._owns:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
