"""Runs inside a throwaway network namespace (``ip netns exec NS python3 this.py DEV
PRIO...``): sends one frame per argument out of DEV through an AF_PACKET socket whose
SO_PRIORITY is that argument, so the frame enters the root qdisc with ``skb->priority``
set to it (``packet_snd`` copies ``sk_priority``)."""

from __future__ import annotations

import socket
import struct
import sys

ETH_P_TEST = 0x88B5               # IEEE local experimental EtherType: no stack touches it


def send(dev: str, priorities: list[int]) -> None:
    header = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ETH_P_TEST)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
        tx.bind((dev, 0))
        for seq, priority in enumerate(priorities):
            tx.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, priority)
            tx.send(header + struct.pack("!I", seq) + bytes(982))     # 1000-byte frames


if __name__ == "__main__":
    send(sys.argv[1], [int(a, 0) for a in sys.argv[2:]])
