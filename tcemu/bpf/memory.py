"""The virtual address space a program runs in: a set of checked regions.

A virtual address is ``(region_id << 32) | offset``.  Region 0 is never mapped, so NULL and
small scalars used as pointers fault.  Every region is a ``bytearray`` (writable) or
``bytes`` (read-only), so a load or store is one index into :attr:`Memory.regions` plus
one bounds-checked slice or ``struct`` call; anything out of bounds, unmapped or read-only
raises a Python error that the tiers turn into :class:`~tcemu.errors.VmFault` with the pc
and instruction (see :func:`classify_fault`).  Host pointers are never exposed.

Fixed layout (region ids): 0 unmapped, 1..8 the 512-byte stack of each call frame
(``MAX_CALL_FRAMES`` = 8), 9 the program context, 10 the packet or raw memory, 11 map
handles (``CONST_PTR_TO_MAP``, not dereferenceable), 12 code addresses (``BPF_PSEUDO_FUNC``);
map values and globals are added from 16 on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CODE_RID",
    "CTX_RID",
    "MAPS_RID",
    "MAX_CALL_FRAMES",
    "MEM_RID",
    "STACK_SIZE",
    "Memory",
    "PacketHeaders",
    "PacketView",
    "addr",
]

MAX_CALL_FRAMES = 8
STACK_SIZE = 512
STACK_RID0 = 1
CTX_RID = 9
MEM_RID = 10
MAPS_RID = 11
CODE_RID = 12
SOCK_RID = 13   # struct bpf_sock of skb->sk: test_run's dummy socket, else unmapped
FIRST_DYNAMIC_RID = 16
OFF_MASK = 0xFFFF_FFFF

# SKF_* negative offsets of classic/legacy packet loads (uapi linux/filter.h).
SKF_NET_OFF = -0x100000
SKF_LL_OFF = -0x200000

UNPACK = {1: struct.Struct("<B").unpack_from, 2: struct.Struct("<H").unpack_from,
          4: struct.Struct("<I").unpack_from, 8: struct.Struct("<Q").unpack_from}
UNPACK_SIGNED = {1: struct.Struct("<b").unpack_from, 2: struct.Struct("<h").unpack_from,
                 4: struct.Struct("<i").unpack_from}
PACK = {1: struct.Struct("<B").pack_into, 2: struct.Struct("<H").pack_into,
        4: struct.Struct("<I").pack_into, 8: struct.Struct("<Q").pack_into}


def addr(rid: int, offset: int = 0) -> int:
    """The virtual address of ``offset`` in region ``rid``."""
    return (rid << 32) | offset


def stack_top(frame: int) -> int:
    """The frame pointer (r10) of call frame ``frame`` (0-based)."""
    return addr(STACK_RID0 + frame, STACK_SIZE)


class PacketHeaders(Protocol):
    """What legacy LD_ABS/LD_IND read besides the packet's bytes: :class:`PacketView`
    (fixed values), or a datapath's context model, which reads them from its skb when a
    load asks (``bpf_internal_load_pointer_neg_helper`` uses the headers as they are
    then, after any helper that moved them)."""

    @property
    def region(self) -> int: ...
    @property
    def headroom(self) -> int: ...
    @property
    def mac(self) -> int: ...
    @property
    def network(self) -> int: ...
    @property
    def head(self) -> bytes: ...


@dataclass(slots=True)
class PacketView:
    """What legacy LD_ABS/LD_IND see of the packet (the kernel's linear sk_buff).

    ``region`` holds the bytes from ``skb->data``; ``headroom`` zero bytes precede them
    (``skb->head``), ``mac`` and ``network`` are header offsets relative to ``data``.
    """

    region: int
    headroom: int = 64
    mac: int = 0
    network: int = 14
    head: bytes = b""      # the last bytes of the headroom (zeros before them)


class Memory:
    """The region table of one VM; its list object is shared with compiled programs."""

    def __init__(self) -> None:
        self.regions: list[bytearray | bytes] = [b""] * FIRST_DYNAMIC_RID
        self.names: list[str] = ["unmapped"] * FIRST_DYNAMIC_RID
        for frame in range(MAX_CALL_FRAMES):
            self.regions[STACK_RID0 + frame] = bytearray(STACK_SIZE)
            self.names[STACK_RID0 + frame] = f"stack frame {frame}"
        self.names[CTX_RID] = "ctx"
        self.names[MEM_RID] = "packet"
        self.names[MAPS_RID] = "map handle"
        self.names[CODE_RID] = "code"
        self.names[SOCK_RID] = "socket (not modelled)"
        self.packet: PacketHeaders | None = None
        self._free: list[int] = []
        self._pending: list[int] = []

    def map_region(self, rid: int, data: bytearray | bytes, name: str) -> int:
        """Install ``data`` as region ``rid`` and return its base address."""
        while rid >= len(self.regions):
            self.regions.append(b"")
            self.names.append("unmapped")
        self.regions[rid] = data
        self.names[rid] = name
        return addr(rid)

    def add_region(self, data: bytearray | bytes, name: str) -> int:
        """Map ``data`` as a new region (reusing a released id) and return its base address."""
        rid = self._free.pop() if self._free else len(self.regions)
        return self.map_region(rid, data, name)

    def release(self, address: int) -> None:
        """Unmap the region of ``address`` once no program can hold a pointer into it.

        Like RCU in the kernel: a deleted map element stays readable until the program
        that looked it up has finished; :meth:`quiesce` (called after every outermost run)
        ends the grace period and makes the id reusable.
        """
        rid = address >> 32
        if rid < FIRST_DYNAMIC_RID:
            raise ValueError(f"region {rid} is not a dynamic region")
        self._pending.append(rid)

    def quiesce(self) -> None:
        if not self._pending:
            return
        for rid in self._pending:
            self.regions[rid] = b""
            self.names[rid] = "unmapped"
        self._free.extend(self._pending)
        self._pending.clear()

    def reset_stack(self, frame: int = 0) -> None:
        self.regions[STACK_RID0 + frame] = bytearray(STACK_SIZE)

    def region_name(self, address: int) -> str | None:
        rid = address >> 32
        return self.names[rid] if rid < len(self.names) else None

    def read(self, address: int, size: int) -> bytes:
        """Host-side checked read (helpers use it); raises like a VM access."""
        buf = self.regions[address >> 32]
        off = address & OFF_MASK
        if off + size > len(buf):
            raise IndexError("read out of bounds")
        return bytes(buf[off:off + size])

    def write(self, address: int, data: bytes) -> None:
        """Host-side checked write (helpers use it); raises like a VM access."""
        buf = self.regions[address >> 32]
        off = address & OFF_MASK
        if off + len(data) > len(buf):
            raise IndexError("write out of bounds")
        if isinstance(buf, bytes):
            raise TypeError("region is read-only")
        buf[off:off + len(data)] = data

    def zero(self, address: int, size: int) -> None:
        """Host-side checked write of ``size`` zero bytes (bounds checked before allocating)."""
        buf = self.regions[address >> 32]
        if (address & OFF_MASK) + size > len(buf):
            raise IndexError("write out of bounds")
        self.write(address, bytes(size))

    def load_packet(self, offset: int, size: int) -> int | None:
        """Legacy LD_ABS/LD_IND: big-endian load at ``offset`` (an s32) or None on failure.

        Mirrors ``bpf_skb_load_helper_{8,16,32}`` and
        ``bpf_internal_load_pointer_neg_helper`` (net/core/filter.c): non-negative offsets
        are relative to ``skb->data``; ``SKF_NET_OFF``/``SKF_LL_OFF`` based offsets are
        relative to the network/mac header and may reach into the headroom.
        """
        view = self.packet
        if view is None:
            return None
        data = self.regions[view.region]
        if offset >= 0:
            start = offset
            if start + size > len(data):
                return None
            return int.from_bytes(data[start:start + size], "big")
        if offset >= SKF_NET_OFF:
            start = view.network + offset - SKF_NET_OFF
        elif offset >= SKF_LL_OFF:
            start = view.mac + offset - SKF_LL_OFF
        else:
            return None
        if start < -view.headroom or start + size > len(data):
            return None
        if start < 0:
            room = view.head.rjust(view.headroom, b"\0")
            head = room[view.headroom + start:view.headroom + min(start + size, 0)]
        else:
            head = b""
        chunk = head + bytes(data[max(start, 0):max(start + size, 0)])
        return int.from_bytes(chunk, "big")
