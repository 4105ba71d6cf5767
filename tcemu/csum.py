"""Internet-checksum arithmetic exactly as the kernel computes it on x86-64.

``include/net/checksum.h`` and ``arch/x86/lib/csum-partial_64.c``: 32-bit one's-complement
partial sums over little-endian words, folding, and the incremental replace operations the
checksum helpers use (kernel-semantics.md section 5.2).  Every value is an unsigned int;
16-bit fields are taken as loaded from memory on a little-endian machine.
"""

from __future__ import annotations

__all__ = ["add16", "add32", "by_diff", "fold", "from32to16", "partial", "replace2",
           "replace4", "shift", "sub32"]

M16, M32 = 0xFFFF, 0xFFFF_FFFF


def add32(a: int, b: int) -> int:
    """``csum_add``: 32-bit add with end-around carry."""
    r = (a + b) & M32
    return (r + (r < (b & M32))) & M32


def sub32(a: int, b: int) -> int:
    """``csum_sub``."""
    return add32(a, ~b & M32)


def fold(x: int) -> int:
    """``csum_fold``: 32-bit partial sum to the complemented 16-bit checksum."""
    x = (x & M16) + (x >> 16)
    x = (x & M16) + (x >> 16)
    return ~x & M16


def from32to16(x: int) -> int:
    """``csum_from32to16`` (no complement)."""
    x = (x + (((x << 16) | (x >> 16)) & M32)) & M32
    return x >> 16


def add16(a: int, b: int) -> int:
    r = (a + b) & M16
    return (r + (r < b)) & M16


def replace2(check: int, old: int, new: int) -> int:
    """``csum_replace2`` on a 16-bit checksum field."""
    return ~add16(add16(~check & M16, ~old & M16), new & M16) & M16


def replace4(check: int, old: int, new: int) -> int:
    """``csum_replace4``."""
    return fold(add32(sub32(~check & M32, old & M32), new & M32))


def by_diff(check: int, diff: int) -> int:
    """``csum_replace_by_diff``."""
    return fold(add32(diff & M32, ~check & M32))


def partial(buf: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """``csum_partial``: seed plus the little-endian u32 words of buf (zero-padded)."""
    data = bytes(buf)
    if len(data) % 4:
        data += bytes(4 - len(data) % 4)
    total = seed & M32
    for i in range(0, len(data), 4):
        total += int.from_bytes(data[i:i + 4], "little")
    while total >> 32:
        total = (total & M32) + (total >> 32)
    return total


def shift(csum: int, offset: int) -> int:
    """``csum_shift``: rotate a partial sum by 8 bits for a block at an odd offset."""
    if offset & 1:
        return ((csum << 8) | (csum >> 24)) & M32
    return csum
