"""Injecting frames into real devices with AF_PACKET, as tcpreplay and scapy's sendp do.

Mirrors ``net/packet/af_packet.c`` ``packet_snd``: a ``SOCK_RAW`` packet socket sends the
frame bytes unchanged through ``dev_queue_xmit`` of the named device (``PACKET_QDISC_BYPASS``
is off), so the frame passes the device's tc egress hook and root qdisc, then its tap
(where a capture sees it as ``PACKET_OUTGOING``) and the driver: a veth hands it to its
peer's receive path, a vxlan device encapsulates it.

``skb->protocol`` is ``sll_protocol`` of the destination address; :func:`transmit` passes
the frame's own EtherType (the outer TPID for a tagged frame), which is what the kernel
derives itself for a ``SOCK_RAW`` send with protocol 0 (``packet_parse_headers``).  The
socket is created with protocol 0, so it never receives anything, and it is not a capture
socket: ``dev_queue_xmit_nit`` skips only the sending socket (``skb_loop_sk``), so every
capture socket still sees the frame.
"""

from __future__ import annotations

import errno
import socket

from tcemu.errors import KernelError

__all__ = ["ETH_HLEN", "open_injector", "transmit"]

ETH_HLEN = 14


def open_injector() -> socket.socket:
    """A packet socket for :func:`transmit`; create it inside the devices' netns."""
    return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)


def transmit(sock: socket.socket, ifname: str, frame: bytes) -> None:
    """Send ``frame`` (a whole Ethernet frame) out of ``ifname`` in the socket's netns."""
    if len(frame) < ETH_HLEN:
        raise KernelError(f"inject on {ifname!r}: a frame of {len(frame)} bytes has no "
                          "Ethernet header", errno=errno.EINVAL)
    proto = int.from_bytes(frame[12:14], "big")
    try:
        sent = sock.sendto(frame, (ifname, proto))
    except OSError as err:
        raise KernelError(f"inject on {ifname!r}: {err.strerror}",
                          errno=err.errno or errno.EIO) from err
    if sent != len(frame):
        raise KernelError(f"inject on {ifname!r}: sent {sent} of {len(frame)} bytes",
                          errno=errno.EIO)
