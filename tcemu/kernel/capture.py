"""AF_PACKET capture on real devices, as tcpdump shows it, and merging into one timeline.

Mirrors ``net/packet/af_packet.c`` (``packet_rcv``: the bytes, ``sll_pkttype`` and the
``PACKET_AUXDATA`` control message) and the two taps of ``net/core/dev.c``:

* a device's **received** frames reach the tap in ``__netif_receive_skb_core`` (``ptype_all``)
  *before* its tc ingress hook, after ``skb_vlan_untag`` moved an outer in-payload tag into
  the hw-accel fields;
* its **transmitted** frames reach the tap in ``dev_queue_xmit_nit`` *after* its tc egress
  hook and qdisc, with a hw-accel tag still in metadata when the device offloads VLAN TX
  (veth and vxlan do).

As libpcap does (``pcap-linux.c``), a hw-accel tag reported by ``PACKET_AUXDATA``
(``TP_STATUS_VLAN_VALID`` or a non-zero ``tp_vlan_tci``) is re-inserted after the two MAC
addresses, with ``tp_vlan_tpid`` when ``TP_STATUS_VLAN_TPID_VALID`` says it is set and
0x8100 otherwise, so :attr:`Captured.data` is the frame as it would be on a wire.

One socket per device, bound to that device with ``ETH_P_ALL`` (created with protocol 0
and then bound, so that it never sees another device's frames).  Frames of one device keep
the socket's order, which is the order the taps ran.  Across devices the only clock the
kernel offers is the tap timestamp (``SO_TIMESTAMPNS``, CLOCK_REALTIME, set by
``net_timestamp_set`` at the taps): :func:`merge` interleaves the per-device sequences by it,
never reordering a device's own frames.  That global order is causal for the synchronous
paths these tests use (a veth transmit is received by the peer after its own tap ran), but
it is a measurement, not a guarantee.

Sockets must be created inside the network namespace of the device (the caller runs
:func:`open_capture` on a thread that is in that namespace); afterwards any thread may read.
"""

from __future__ import annotations

import errno
import heapq
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from tcemu.errors import KernelError

__all__ = [
    "ETH_P_ALL",
    "PACKET_OUTGOING",
    "CaptureSet",
    "Captured",
    "Direction",
    "decode_frame",
    "ignore_ethertypes",
    "merge",
    "open_capture",
]

Direction = Literal["in", "out"]

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD: struct timespec of two 64-bit fields on 64-bit
SO_RCVBUFFORCE = 33
TP_STATUS_CSUMNOTREADY = 0x8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40

_AUXDATA = struct.Struct("<IIIHHHH")  # struct tpacket_auxdata
_TIMESPEC = struct.Struct("<qq")
_RCVBUF = 8 << 20
_FRAME_MAX = 1 << 18  # larger than any GSO frame veth/vxlan build (gso_max_size 64 KiB)
_ANC_SIZE = socket.CMSG_SPACE(_AUXDATA.size) + socket.CMSG_SPACE(_TIMESPEC.size)


@dataclass(frozen=True)
class Captured:
    """One frame seen by a device's tap.

    ``data`` is the wire frame (hw-accel VLAN tag re-inserted, see ``vlan``); ``direction``
    is ``"out"`` for ``PACKET_OUTGOING`` and ``"in"`` otherwise (tcpdump's ``-Q in|out``,
    as in tcemu's emulated captures), with ``pkttype`` = ``sll_pkttype`` (0 host,
    1 broadcast, 2 multicast, 3 otherhost, 4 outgoing).
    ``csum_not_ready`` is ``TP_STATUS_CSUMNOTREADY`` (CHECKSUM_PARTIAL: the L4 checksum in
    ``data`` holds only the pseudo-header sum).  ``order`` ranks the frame among every
    capture of the :class:`CaptureSet` (see the module docstring); ``tstamp_ns`` is the
    kernel tap time, only meaningful for ordering.
    """

    netns: str
    dev: str
    direction: Direction
    data: bytes
    pkttype: int
    vlan: tuple[int, int] | None  # (tpid, tci) of the re-inserted hw-accel tag
    csum_not_ready: bool
    tstamp_ns: int
    order: int = -1

    @property
    def ethertype(self) -> int:
        """The EtherType after the MAC addresses (the outer tag's TPID if tagged)."""
        return int.from_bytes(self.data[12:14], "big") if len(self.data) >= 14 else 0


def ignore_ethertypes(*ethertypes: int) -> Callable[[Captured], bool]:
    """A noise rule for :meth:`CaptureSet.frames`: drop frames of these EtherTypes."""
    wanted = frozenset(ethertypes)
    return lambda frame: frame.ethertype in wanted


def open_capture(ifname: str) -> socket.socket:
    """A non-blocking capture socket on ``ifname``; call it inside the device's netns."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RCVBUF)
        sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        raise KernelError(f"capture on {ifname!r}: {err.strerror}",
                          errno=err.errno or errno.EIO) from err
    return sock


def decode_frame(netns: str, dev: str, data: bytes,
                 ancdata: list[tuple[int, int, bytes]], pkttype: int) -> Captured:
    """A Captured from one ``recvmsg`` result: bytes, control messages, ``sll_pkttype``.

    ``order`` is assigned later by :func:`merge`.
    """
    status, tci, tpid, stamp = 0, 0, 0, 0
    for level, kind, payload in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(payload) >= _AUXDATA.size:
            status, _, _, _, _, tci, tpid = _AUXDATA.unpack_from(payload)
        elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            stamp = sec * 1_000_000_000 + nsec
    vlan = None
    if (tci or status & TP_STATUS_VLAN_VALID) and len(data) >= 12:
        if not status & TP_STATUS_VLAN_TPID_VALID:
            tpid = ETH_P_8021Q
        vlan = (tpid, tci)
        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return Captured(
        netns=netns,
        dev=dev,
        direction="out" if pkttype == PACKET_OUTGOING else "in",
        data=data,
        pkttype=pkttype,
        vlan=vlan,
        csum_not_ready=bool(status & TP_STATUS_CSUMNOTREADY),
        tstamp_ns=stamp,
    )


def _drain(sock: socket.socket, netns: str, dev: str) -> tuple[list[Captured], int]:
    """Every frame queued on a capture socket, in order, and how many were stamped late.

    A frame the taps did not timestamp (net timestamps were still being switched on) gets
    its stamp in ``recvmsg`` (``__sock_recv_timestamp``), i.e. no earlier than the read.
    """
    frames: list[Captured] = []
    late = 0
    while True:
        read_at = time.time_ns()
        try:
            data, anc, flags, addr = sock.recvmsg(_FRAME_MAX, _ANC_SIZE)
        except BlockingIOError:
            return frames, late
        except OSError as err:
            # A socket bound to a device that is (or went) down carries ENETDOWN as its
            # pending error (packet_do_bind, packet_notifier): reported once, then cleared.
            if err.errno == errno.ENETDOWN:
                continue
            raise
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise KernelError(f"capture on {netns}/{dev}: frame or control data truncated",
                              errno=errno.EMSGSIZE)
        frame = decode_frame(netns, dev, data, anc, addr[2])
        late += frame.tstamp_ns >= read_at
        frames.append(frame)


def _drops(sock: socket.socket) -> int:
    """Frames the kernel dropped on this socket since the last call (PACKET_STATISTICS)."""
    _, dropped = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return int(dropped)


def merge(streams: Iterable[list[Captured]]) -> list[Captured]:
    """Interleave per-device sequences by tap time; each sequence keeps its own order.

    Returns copies numbered 0.. in the merged order (``Captured.order``).
    """
    ordered = heapq.merge(*streams, key=lambda frame: frame.tstamp_ns)
    return [replace(frame, order=index) for index, frame in enumerate(ordered)]


class CaptureSet:
    """Capture sockets of many devices (possibly in many namespaces), read together."""

    def __init__(self) -> None:
        self._socks: dict[tuple[str, str], socket.socket] = {}
        self._frames: dict[tuple[str, str], list[Captured]] = {}
        self.late_stamps = 0
        # Any socket asking for timestamps switches on net timestamping (netstamp_needed_key),
        # but the switch is deferred to a workqueue (net_enable_timestamp): turn it on now,
        # long before the first capture, so that the taps stamp every frame.
        self._stamp_switch = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stamp_switch.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def add(self, netns: str, dev: str, sock: socket.socket) -> None:
        """Start collecting the frames of ``sock`` as those of ``netns``/``dev``."""
        if (netns, dev) in self._socks:
            sock.close()
            return
        self._socks[(netns, dev)] = sock
        self._frames[(netns, dev)] = []

    def __contains__(self, key: object) -> bool:
        return key in self._socks

    def poll(self) -> int:
        """Read every queued frame of every device; the number read."""
        count = 0
        for (netns, dev), sock in self._socks.items():
            new, late = _drain(sock, netns, dev)
            self._frames[(netns, dev)].extend(new)
            count += len(new)
            self.late_stamps += late
            dropped = _drops(sock)
            if dropped:
                raise KernelError(f"capture on {netns}/{dev}: the kernel dropped {dropped} "
                                  "frame(s) (socket buffer full)", errno=errno.ENOBUFS)
        return count

    def settle(self, *, timeout: float, quiet: float, min_frames: int = 0) -> bool:
        """Read until ``quiet`` seconds pass without a frame, once ``min_frames`` are in.

        Returns False when ``timeout`` seconds passed first (traffic still flowing, or fewer
        than ``min_frames`` frames).  Polling only: the bound is wall time, nothing in the
        capture depends on it.
        """
        deadline = time.monotonic() + timeout
        socks = list(self._socks.values())
        self.poll()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            readable, _, _ = select.select(socks, [], [], min(quiet, remaining))
            got = self.poll()
            if not readable and not got and self.count() >= min_frames:
                return True

    def count(self) -> int:
        """Frames collected so far."""
        return sum(len(frames) for frames in self._frames.values())

    def frames(
        self, *, ignore: Callable[[Captured], bool] | None = None
    ) -> dict[tuple[str, str], list[Captured]]:
        """Collected frames per ``(netns, dev)``, ordered, without those ``ignore`` matches.

        ``order`` is the rank in the merged timeline of *all* collected frames (ignored ones
        included), so it stays comparable between calls with different rules.
        """
        merged = merge(self._frames.values())
        result: dict[tuple[str, str], list[Captured]] = {key: [] for key in self._frames}
        for frame in merged:
            if ignore is None or not ignore(frame):
                result[(frame.netns, frame.dev)].append(frame)
        return result

    def clear(self) -> None:
        """Forget the collected frames (after reading what is queued)."""
        self.poll()
        for frames in self._frames.values():
            frames.clear()

    def close(self) -> None:
        """Close every socket; collected frames stay readable."""
        socks, self._socks = self._socks, {}
        for sock in socks.values():
            sock.close()
        self._stamp_switch.close()

    @property
    def order_exact(self) -> bool:
        """Whether every frame carries its tap time, so the merged order is measured."""
        return self.late_stamps == 0
