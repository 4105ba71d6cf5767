"""Tristate numbers: what is known about the bits of a 64-bit value.

Mirrors ``kernel/bpf/tnum.c``.  A tnum is ``(value, mask)``: bits set in ``mask`` are
unknown, the other bits equal those of ``value`` (``value & mask == 0``).  Plain tuples keep
states cheap to copy and compare.
"""

from __future__ import annotations

__all__ = [
    "U32",
    "U64",
    "UNKNOWN",
    "Tnum",
    "t_add",
    "t_and",
    "t_arshift",
    "t_cast",
    "t_clear_subreg",
    "t_const",
    "t_in",
    "t_intersect",
    "t_is_const",
    "t_is_unknown",
    "t_lshift",
    "t_mul",
    "t_neg",
    "t_or",
    "t_range",
    "t_rshift",
    "t_str",
    "t_sub",
    "t_subreg",
    "t_with_subreg",
    "t_xor",
]

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1

Tnum = tuple[int, int]
UNKNOWN: Tnum = (0, U64)


def t_const(value: int) -> Tnum:
    return (value & U64, 0)


def t_is_const(a: Tnum) -> bool:
    return a[1] == 0


def t_is_unknown(a: Tnum) -> bool:
    return a[1] == U64


def t_range(lo: int, hi: int) -> Tnum:
    """``tnum_range``: the bits common to every value in [lo, hi] (unsigned)."""
    chi = lo ^ hi
    bits = chi.bit_length()
    if bits > 63:
        return UNKNOWN
    delta = (1 << bits) - 1
    return (lo & ~delta & U64, delta)


def t_lshift(a: Tnum, shift: int) -> Tnum:
    return ((a[0] << shift) & U64, (a[1] << shift) & U64)


def t_rshift(a: Tnum, shift: int) -> Tnum:
    return (a[0] >> shift, a[1] >> shift)


def _sx(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def t_arshift(a: Tnum, shift: int, bits: int) -> Tnum:
    mask = (1 << bits) - 1
    return ((_sx(a[0], bits) >> shift) & mask, (_sx(a[1], bits) >> shift) & mask)


def t_add(a: Tnum, b: Tnum) -> Tnum:
    sm = (a[1] + b[1]) & U64
    sv = (a[0] + b[0]) & U64
    sigma = (sm + sv) & U64
    chi = sigma ^ sv
    mu = chi | a[1] | b[1]
    return (sv & ~mu & U64, mu)


def t_sub(a: Tnum, b: Tnum) -> Tnum:
    dv = (a[0] - b[0]) & U64
    alpha = (dv + a[1]) & U64
    beta = (dv - b[1]) & U64
    chi = alpha ^ beta
    mu = chi | a[1] | b[1]
    return (dv & ~mu & U64, mu)


def t_neg(a: Tnum) -> Tnum:
    return t_sub((0, 0), a)


def t_and(a: Tnum, b: Tnum) -> Tnum:
    alpha = a[0] | a[1]
    beta = b[0] | b[1]
    v = a[0] & b[0]
    return (v, alpha & beta & ~v & U64)


def t_or(a: Tnum, b: Tnum) -> Tnum:
    v = a[0] | b[0]
    mu = a[1] | b[1]
    return (v, mu & ~v & U64)


def t_xor(a: Tnum, b: Tnum) -> Tnum:
    v = a[0] ^ b[0]
    mu = a[1] | b[1]
    return (v & ~mu & U64, mu)


def t_mul(a: Tnum, b: Tnum) -> Tnum:
    acc_v = (a[0] * b[0]) & U64
    acc_m: Tnum = (0, 0)
    while a[0] or a[1]:
        if a[0] & 1:
            acc_m = t_add(acc_m, (0, b[1]))
        elif a[1] & 1:
            acc_m = t_add(acc_m, (0, b[0] | b[1]))
        a = t_rshift(a, 1)
        b = t_lshift(b, 1)
    return t_add((acc_v, 0), acc_m)


def t_intersect(a: Tnum, b: Tnum) -> Tnum:
    v = a[0] | b[0]
    mu = a[1] & b[1]
    return (v & ~mu & U64, mu)


def t_cast(a: Tnum, size: int) -> Tnum:
    mask = (1 << (size * 8)) - 1
    return (a[0] & mask, a[1] & mask)


def t_in(a: Tnum, b: Tnum) -> bool:
    """Is every value of ``b`` a value of ``a``?"""
    if b[1] & ~a[1]:
        return False
    return a[0] == b[0] & ~a[1]


def t_subreg(a: Tnum) -> Tnum:
    return (a[0] & U32, a[1] & U32)


def t_clear_subreg(a: Tnum) -> Tnum:
    return (a[0] & ~U32 & U64, a[1] & ~U32 & U64)


def t_with_subreg(reg: Tnum, subreg: Tnum) -> Tnum:
    return t_or(t_clear_subreg(reg), t_subreg(subreg))


def t_str(a: Tnum) -> str:
    """``tnum_strn``: ``(0x0; 0xff)``."""
    return f"({a[0]:#x}; {a[1]:#x})"
