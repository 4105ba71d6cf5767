"""Capture files: streaming pcap/pcapng readers, pcap and pcapng writers, link-type mapping.

Reading::

    from tcemu.pcap import read_packets
    for rec in read_packets("in.pcapng"):       # a generator: memory stays flat
        rec.timestamp_ns, rec.data, rec.orig_len, rec.if_index, rec.if_name, rec.linktype

``open_capture`` tells classic pcap from pcapng by the first four bytes and returns the
reader (its ``interfaces`` grow as a pcapng file describes them).  Corrupt input raises
:class:`PcapError` naming the file, the byte offset and the packet number; every packet
before the fault has been delivered.

Writing (one interface per device, a comment per packet)::

    with PcapngWriter("out/capture.pcapng") as w:
        eth0 = w.add_interface("eth0", description="ns1/eth0")    # or w.interface("eth0")
        w.write(eth0, clock.now_ns(), frame, comment="ingress cls_bpf prio 1: TC_ACT_OK",
                direction=Direction.INBOUND)

``PcapngWriter.interface(name)`` adds a device's interface block when its first packet is
written and returns the same index afterwards.  ``PcapWriter`` writes classic pcap.

The formats are libpcap's savefile (``pcap-savefile(5)``) and pcapng
(draft-ietf-opsawg-pcapng); nothing here mirrors a kernel file except the pkt_type rules
of :func:`to_ethernet` (``net/ethernet/eth.c``).
"""

from __future__ import annotations

from collections.abc import Iterator

from tcemu.pcap.classic import PCAP_MAGICS, PcapReader, PcapWriter
from tcemu.pcap.common import (
    MAX_SNAPLEN,
    CaptureSource,
    Direction,
    Interface,
    LinkType,
    PacketRecord,
    PcapError,
    linktype_name,
    source_name,
)
from tcemu.pcap.linktype import DEFAULT_LOCAL_MAC, DEFAULT_REMOTE_MAC, to_ethernet
from tcemu.pcap.pcapng import PcapngReader
from tcemu.pcap.pcapng_write import PcapngWriter
from tcemu.pcap.stream import CaptureReader, open_binary, refill

__all__ = [
    "DEFAULT_LOCAL_MAC",
    "DEFAULT_REMOTE_MAC",
    "MAX_SNAPLEN",
    "CaptureReader",
    "CaptureSource",
    "Direction",
    "Interface",
    "LinkType",
    "PacketRecord",
    "PcapError",
    "PcapReader",
    "PcapWriter",
    "PcapngReader",
    "PcapngWriter",
    "linktype_name",
    "open_capture",
    "read_packets",
    "to_ethernet",
]

_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def open_capture(source: CaptureSource) -> CaptureReader:
    """Open a pcap or pcapng file (a path or a binary file object, seekable or not)."""
    f, owns = open_binary(source, "rb")
    name = source_name(source)
    try:
        head = refill(f.read, b"", 0, 4)
        if head[:4] == _PCAPNG_MAGIC:
            return PcapngReader(f, name=name, owns=owns, prefix=head)
        if head[:4] in PCAP_MAGICS:
            return PcapReader(f, name=name, owns=owns, prefix=head)
        if len(head) < 4:
            raise PcapError(f"truncated file header: {len(head)} of 4 bytes", path=name,
                            offset=0)
        raise PcapError(f"bad magic {head[:4].hex()}: neither pcap nor pcapng", path=name,
                        offset=0)
    except BaseException:
        if owns:
            f.close()
        raise


def read_packets(source: CaptureSource) -> Iterator[PacketRecord]:
    """Every packet of a pcap or pcapng file, streamed; the file is closed at the end."""
    with open_capture(source) as reader:
        yield from reader
