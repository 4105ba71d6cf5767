"""Runs inside a throwaway network namespace (``ip netns exec NS python3 this.py DEV
PRIO[:SIZE]...``): sends one frame per argument out of DEV through an AF_PACKET socket
whose SO_PRIORITY is PRIO, so the frame enters the root qdisc with ``skb->priority`` set
to it (``packet_snd`` copies ``sk_priority``).  Frames are SIZE bytes (default 1000); a
frame the qdisc drops makes ``send`` fail with ENOBUFS, which is expected and ignored."""

from __future__ import annotations

import errno
import socket
import struct
import sys

ETH_P_TEST = 0x88B5               # IEEE local experimental EtherType: no stack touches it


def send(dev: str, frames: list[tuple[int, int]]) -> None:
    header = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ETH_P_TEST)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
        tx.bind((dev, 0))
        for seq, (priority, size) in enumerate(frames):
            tx.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, priority)
            try:
                tx.send(header + struct.pack("!I", seq) + bytes(size - 18))
            except OSError as err:
                if err.errno != errno.ENOBUFS:
                    raise


def _frame(arg: str) -> tuple[int, int]:
    prio, _, size = arg.partition(":")
    return int(prio, 0), int(size or "1000")


if __name__ == "__main__":
    send(sys.argv[1], [_frame(a) for a in sys.argv[2:]])
