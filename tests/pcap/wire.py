"""Capture bytes built by hand, field by field, independently of tcemu's writers.

The readers are tested against these so that a bug shared by writer and reader cannot
hide; the writers are tested against dpkt, scapy and (where installed) tshark/tcpdump.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

# (sec, frac, data, orig_len)
Rec = tuple[int, int, bytes, int]


def classic(records: Iterable[Rec], *, order: str = "<", nano: bool = False,
            modified: bool = False, snaplen: int = 65535, linktype: int = 1,
            version: tuple[int, int] = (2, 4)) -> bytes:
    magic = 0xA1B2CD34 if modified else (0xA1B23C4D if nano else 0xA1B2C3D4)
    out = [struct.pack(order + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)]
    for sec, frac, data, orig in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig))
        if modified:
            out.append(struct.pack(order + "IHBB", 3, 0x0800, 0, 0))
        out.append(data)
    return b"".join(out)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


def options(order: str, opts: Sequence[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(option(order, c, v) for c, v in opts) + option(order, 0, b"")


def block(order: str, btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def shb(order: str, major: int = 1, opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
    return block(order, 0x0A0D0D0A,
                 struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1) + options(order, opts))


def idb(order: str, linktype: int = 1, snaplen: int = 0,
        opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen)
                 + options(order, opts))


def epb(order: str, if_id: int, ts: int, data: bytes, orig: int | None = None,
        opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
    body = struct.pack(order + "IIIII", if_id, ts >> 32, ts & 0xFFFFFFFF, len(data),
                       len(data) if orig is None else orig)
    return block(order, 6, body + data + b"\0" * (-len(data) & 3) + options(order, opts))


def pb(order: str, if_id: int, ts: int, data: bytes) -> bytes:
    body = struct.pack(order + "HHIIII", if_id, 0, ts >> 32, ts & 0xFFFFFFFF, len(data),
                       len(data))
    return block(order, 2, body + data + b"\0" * (-len(data) & 3))


def spb(order: str, data: bytes, orig: int | None = None) -> bytes:
    body = struct.pack(order + "I", len(data) if orig is None else orig)
    return block(order, 3, body + data + b"\0" * (-len(data) & 3))
