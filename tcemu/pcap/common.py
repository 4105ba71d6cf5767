"""What every capture format shares: the error, link types, interfaces and packet records.

Mirrors no kernel file: the formats are libpcap's savefile (``pcap-savefile(5)``) and
pcapng (IETF draft-ietf-opsawg-pcapng), with link-type numbers from tcpdump.org's
LINKTYPE_* registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO, NamedTuple

from tcemu.errors import TcemuError

__all__ = [
    "MAX_SNAPLEN",
    "CaptureSource",
    "Direction",
    "Interface",
    "LinkType",
    "PacketRecord",
    "PcapError",
    "linktype_name",
    "source_name",
]

# libpcap's MAXIMUM_SNAPLEN: no capture tool writes a longer packet, so a larger caplen
# means a corrupt header rather than a big packet.
MAX_SNAPLEN = 262_144

CaptureSource = str | os.PathLike[str] | BinaryIO


class PcapError(TcemuError):
    """A capture file is corrupt, truncated, foreign, or cannot be written as asked.

    ``offset`` is the byte offset in the file of the header or block that is wrong and
    ``packet`` the 1-based number of the packet being read (Wireshark's frame number);
    every packet before it has already been delivered.
    """

    def __init__(self, message: str, *, path: str, offset: int | None = None,
                 packet: int | None = None, verb: str = "read") -> None:
        self.path = path
        self.offset = offset
        self.packet = packet
        self.reason = message
        at = f" at byte {offset}" if offset is not None else ""
        pkt = f" (packet {packet})" if packet is not None else ""
        super().__init__(f"{verb} capture '{path}'{at}{pkt}: {message}")


class LinkType(IntEnum):
    """Link-layer header types (tcpdump.org ``LINKTYPE_*``) that tcemu names."""

    NULL = 0                  # BSD loopback, 4-byte address family in host byte order
    ETHERNET = 1
    RAW = 101                 # bare IPv4 or IPv6, told apart by the version nibble
    IEEE802_11 = 105
    LOOP = 108                # OpenBSD loopback, address family in network byte order
    LINUX_SLL = 113           # Linux "cooked" capture v1 (tcpdump -i any)
    IEEE802_11_RADIOTAP = 127
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276          # Linux "cooked" capture v2


def linktype_name(value: int) -> str:
    """``ETHERNET``, or the bare number for link types tcemu has no name for."""
    try:
        return LinkType(value).name
    except ValueError:
        return str(value)


class Direction(IntEnum):
    """Bits 0-1 of the pcapng ``epb_flags`` option: which way the packet went."""

    UNKNOWN = 0
    INBOUND = 1
    OUTBOUND = 2


@dataclass(frozen=True, slots=True)
class Interface:
    """One capture interface: the only one of a classic pcap, an IDB of a pcapng section.

    ``tsresol`` is the raw ``if_tsresol`` byte (6: microseconds, 9: nanoseconds; with the
    top bit set, a negative power of two) and ``tsoffset_s`` the ``if_tsoffset`` in
    seconds; both are already folded into every record's ``timestamp_ns``.
    ``snaplen`` 0 means "no limit" (pcapng).  ``fcs_len`` is the number of frame-check
    bytes at the end of each packet (pcapng ``if_fcslen``, the pcap header's FCS bits).
    """

    index: int
    linktype: int
    snaplen: int
    name: str | None = None
    description: str | None = None
    tsresol: int = 6
    tsoffset_s: int = 0
    fcs_len: int = 0
    section: int = 0


class PacketRecord(NamedTuple):
    """One captured packet.

    ``timestamp_ns`` is an exact integer (nanoseconds since the epoch, or since whatever
    the capture counted from); ``data`` holds ``len(data)`` captured bytes of a packet
    that was ``orig_len`` bytes on the wire.  ``comment`` is the pcapng ``opt_comment``
    (several are joined with newlines) and ``flags`` the ``epb_flags`` word (0 when
    absent, and always for classic pcap).
    """

    timestamp_ns: int
    data: bytes
    orig_len: int
    interface: Interface
    comment: str | None = None
    flags: int = 0

    @property
    def if_index(self) -> int:
        return self.interface.index

    @property
    def if_name(self) -> str | None:
        return self.interface.name

    @property
    def linktype(self) -> int:
        return self.interface.linktype

    @property
    def direction(self) -> Direction:
        bits = self.flags & 3
        return Direction(bits) if bits != 3 else Direction.UNKNOWN


def source_name(source: CaptureSource) -> str:
    """What errors call a capture: its path, a file object's ``name``, or ``<stream>``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"
