"""IPv4 fragmentation and reassembly (``net/ipv4/ip_output.c`` ``ip_do_fragment``, its
slow path; ``net/ipv4/ip_fragment.c`` ``ip_defrag``).

Output (:func:`ip_fragment`): a datagram longer than the output device's MTU, DF clear,
is cut into fragments whose payloads are multiples of 8 bytes but the last, each with a
copy of the IPv4 header (same id; ``frag_off`` and ``tot_len`` set, checksum redone) and
the metadata of the original (``ip_copy_metadata``).  A CHECKSUM_PARTIAL L4 checksum is
finished first (``skb_checksum_help``).  A datagram with DF set cannot be fragmented.

Input (:func:`ip_defrag`): fragments of a datagram for a local address are queued per
(source, destination, id, protocol) in the namespace (``ipq``) until the queue holds
the whole datagram; the fragment that completes it carries the rebuilt datagram on
(``ip_frag_reasm``: frag_off 0, tot_len of the whole, checksum redone).  Overlapping
fragments discard the queue, as since Linux 4.19.

KERNEL-DIFF: no queue expiry (``ipfrag_time``: 30 s, then ICMP time exceeded) and no
memory limits; IP options are copied into every fragment (the kernel keeps only the
"copied" options after the first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcemu import csum
from tcemu.skb import CHECKSUM_NONE, skb_checksum_help

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["IP_DF", "IP_MF", "IP_OFFSET", "FragQueues", "ip_defrag", "ip_fragment",
           "is_fragment"]

IP_DF, IP_MF, IP_OFFSET = 0x4000, 0x2000, 0x1FFF


def _send_check(header: bytearray) -> None:
    """``ip_send_check``: the IPv4 header checksum."""
    header[10:12] = b"\0\0"
    header[10:12] = csum.fold(csum.partial(header)).to_bytes(2, "little")


def is_fragment(ip: bytes | bytearray) -> bool:
    """``ip_is_fragment``: MF set or a non-zero offset."""
    return bool(int.from_bytes(ip[6:8], "big") & (IP_MF | IP_OFFSET))


def ip_fragment(skb: SkBuff, mtu: int) -> list[SkBuff] | None:
    """The fragments of ``skb`` (data at its IPv4 header) for ``mtu``; None when DF is set
    or the MTU leaves no room for 8 bytes of payload."""
    data = skb.data
    hlen = (data[0] & 0xF) * 4
    frag_off = int.from_bytes(data[6:8], "big")
    if frag_off & IP_DF or mtu - hlen < 8:
        return None
    skb_checksum_help(skb)
    offset = (frag_off & IP_OFFSET) << 3
    more = frag_off & IP_MF
    left, ptr = len(data) - hlen, hlen
    out: list[SkBuff] = []
    while left > 0:
        size = min(left, mtu - hlen)
        if size < left:
            size &= ~7
        left -= size
        frag = skb.clone()
        header = bytearray(data[:hlen])
        header[2:4] = (hlen + size).to_bytes(2, "big")
        header[6:8] = ((offset >> 3) | (IP_MF if left > 0 or more else 0)).to_bytes(2, "big")
        _send_check(header)
        frag.data = header + data[ptr:ptr + size]
        frag.network_header, frag.transport_header = 0, hlen
        frag.ip_summed = CHECKSUM_NONE
        out.append(frag)
        ptr += size
        offset += size
    return out


@dataclass
class _Queue:
    """``struct ipq``: the fragments (offset -> payload) and the first one's header."""

    parts: dict[int, bytes] = field(default_factory=dict)
    header: bytes = b""
    total: int | None = None       # known once the last fragment (MF clear) arrived


@dataclass
class FragQueues:
    """A namespace's reassembly queues (``net->ipv4.fqdir``)."""

    queues: dict[tuple[bytes, bytes, int, int], _Queue] = field(default_factory=dict)


def ip_defrag(queues: FragQueues, skb: SkBuff) -> bool:
    """Queue the fragment ``skb`` (data at its IPv4 header, a valid header assumed).

    True: the datagram is complete and ``skb`` now holds it; False: ``skb`` was consumed
    by the queue (or dropped with it, when it overlapped another fragment)."""
    data = skb.data
    hlen = (data[0] & 0xF) * 4
    tot_len = int.from_bytes(data[2:4], "big")
    frag_off = int.from_bytes(data[6:8], "big")
    key = (bytes(data[12:16]), bytes(data[16:20]), int.from_bytes(data[4:6], "big"), data[9])
    queue = queues.queues.setdefault(key, _Queue())
    offset = (frag_off & IP_OFFSET) << 3
    payload = bytes(data[hlen:tot_len])
    end = offset + len(payload)
    if not frag_off & IP_MF:
        if queue.total is not None and queue.total != end:
            del queues.queues[key]
            return False
        queue.total = end
    elif len(payload) % 8:
        del queues.queues[key]          # a middle fragment must be a multiple of 8
        return False
    for start, part in queue.parts.items():
        if start < end and offset < start + len(part):
            del queues.queues[key]      # RFC 5722 style: overlaps discard the datagram
            return False
    queue.parts[offset] = payload
    if offset == 0:
        queue.header = bytes(data[:hlen])
    if queue.total is None or not queue.header:
        return False
    covered = 0
    for start in sorted(queue.parts):
        if start != covered:
            return False
        covered += len(queue.parts[start])
    if covered != queue.total:
        return False
    del queues.queues[key]
    header = bytearray(queue.header)
    header[2:4] = (len(header) + covered).to_bytes(2, "big")
    header[6:8] = b"\0\0"
    _send_check(header)
    skb.data = header + b"".join(queue.parts[start] for start in sorted(queue.parts))
    skb.network_header, skb.transport_header = 0, len(header)
    skb.ip_summed = CHECKSUM_NONE
    return True
