"""Scalar range tracking: ALU results and conditional-jump refinement.

Mirrors kernel/bpf/verifier.c ``adjust_scalar_min_max_vals`` with its
``scalar{,32}_min_max_*`` helpers, ``is_scalar_branch_taken``, ``regs_refine_cond_op`` and
``reg_set_min_max``.  All functions work in place on :class:`RegState` objects.
"""

from __future__ import annotations

from tcemu.bpf.ops import AluOp, Cond
from tcemu.bpf.verifier.state import (
    S32_MAX,
    S32_MIN,
    S64_MAX,
    S64_MIN,
    RegState,
    s32,
    s64,
)
from tcemu.bpf.verifier.tnum import (
    U32,
    U64,
    t_add,
    t_and,
    t_arshift,
    t_const,
    t_intersect,
    t_is_const,
    t_lshift,
    t_mul,
    t_neg,
    t_or,
    t_rshift,
    t_sub,
    t_subreg,
    t_with_subreg,
    t_xor,
)

__all__ = ["FLIP", "REV", "add_bounds", "branch_taken", "scalar_alu", "set_min_max"]


def _src_const(src: RegState, alu32: bool) -> bool:
    if alu32:
        return (t_is_const(t_subreg(src.var_off)) and src.s32_min == src.s32_max
                and src.u32_min == src.u32_max)
    return t_is_const(src.var_off) and src.smin == src.smax and src.umin == src.umax


def _add(d: RegState, s: RegState, alu32: bool) -> None:
    if alu32:
        lo, hi = d.s32_min + s.s32_min, d.s32_max + s.s32_max
        d.s32_min, d.s32_max = (lo, hi) if lo >= S32_MIN and hi <= S32_MAX else (S32_MIN, S32_MAX)
        lo, hi = d.u32_min + s.u32_min, d.u32_max + s.u32_max
        d.u32_min, d.u32_max = (lo, hi) if hi <= U32 else (0, U32)
    else:
        lo, hi = d.smin + s.smin, d.smax + s.smax
        d.smin, d.smax = (lo, hi) if lo >= S64_MIN and hi <= S64_MAX else (S64_MIN, S64_MAX)
        lo, hi = d.umin + s.umin, d.umax + s.umax
        d.umin, d.umax = (lo, hi) if hi <= U64 else (0, U64)


def add_bounds(d: RegState, s: RegState) -> None:
    """``scalar32_min_max_add`` and ``scalar_min_max_add`` (the tnum is left alone)."""
    _add(d, s, True)
    _add(d, s, False)


def _sub(d: RegState, s: RegState, alu32: bool) -> None:
    if alu32:
        lo, hi = d.s32_min - s.s32_max, d.s32_max - s.s32_min
        d.s32_min, d.s32_max = (lo, hi) if lo >= S32_MIN and hi <= S32_MAX else (S32_MIN, S32_MAX)
        if d.u32_min < s.u32_max:
            d.u32_min, d.u32_max = 0, U32
        else:
            d.u32_min, d.u32_max = d.u32_min - s.u32_max, d.u32_max - s.u32_min
    else:
        lo, hi = d.smin - s.smax, d.smax - s.smin
        d.smin, d.smax = (lo, hi) if lo >= S64_MIN and hi <= S64_MAX else (S64_MIN, S64_MAX)
        if d.umin < s.umax:
            d.umin, d.umax = 0, U64
        else:
            d.umin, d.umax = d.umin - s.umax, d.umax - s.umin


def _mul(d: RegState, s: RegState, alu32: bool) -> None:
    if alu32:
        umax, umin = d.u32_max * s.u32_max, d.u32_min * s.u32_min
        d.u32_min, d.u32_max = (umin, umax) if umax <= U32 else (0, U32)
        prods = [a * b for a in (d.s32_min, d.s32_max) for b in (s.s32_min, s.s32_max)]
        if all(S32_MIN <= p <= S32_MAX for p in prods):
            d.s32_min, d.s32_max = min(prods), max(prods)
        else:
            d.s32_min, d.s32_max = S32_MIN, S32_MAX
    else:
        umax, umin = d.umax * s.umax, d.umin * s.umin
        d.umin, d.umax = (umin, umax) if umax <= U64 else (0, U64)
        prods = [a * b for a in (d.smin, d.smax) for b in (s.smin, s.smax)]
        if all(S64_MIN <= p <= S64_MAX for p in prods):
            d.smin, d.smax = min(prods), max(prods)
        else:
            d.smin, d.smax = S64_MIN, S64_MAX


def _bitwise(d: RegState, s: RegState, op: AluOp, alu32: bool) -> None:
    if alu32:
        var = t_subreg(d.var_off)
        if t_is_const(t_subreg(s.var_off)) and t_is_const(var):
            d.mark32_known(var[0])
            return
        if op is AluOp.AND:
            d.u32_min, d.u32_max = var[0], min(d.u32_max, s.u32_max)
        elif op is AluOp.OR:
            d.u32_min, d.u32_max = max(d.u32_min, s.u32_min), var[0] | var[1]
        else:
            d.u32_min, d.u32_max = var[0], var[0] | var[1]
        if s32(d.u32_min) <= s32(d.u32_max):
            d.s32_min, d.s32_max = s32(d.u32_min), s32(d.u32_max)
        else:
            d.s32_min, d.s32_max = S32_MIN, S32_MAX
        d.update32()
        return
    var = d.var_off
    if t_is_const(s.var_off) and t_is_const(var):
        d.mark_known(var[0])
        return
    if op is AluOp.AND:
        d.umin, d.umax = var[0], min(d.umax, s.umax)
    elif op is AluOp.OR:
        d.umin, d.umax = max(d.umin, s.umin), var[0] | var[1]
    else:
        d.umin, d.umax = var[0], var[0] | var[1]
    if s64(d.umin) <= s64(d.umax):
        d.smin, d.smax = s64(d.umin), s64(d.umax)
    else:
        d.smin, d.smax = S64_MIN, S64_MAX
    d.update_bounds()


def _lsh32_bounds(d: RegState, lo: int, hi: int) -> None:
    d.s32_min, d.s32_max = S32_MIN, S32_MAX
    if hi > 31 or d.u32_max > 1 << (31 - hi):
        d.u32_min, d.u32_max = 0, U32
    else:
        d.u32_min, d.u32_max = d.u32_min << lo, d.u32_max << hi


def _shift(d: RegState, s: RegState, op: AluOp, alu32: bool) -> None:
    lo, hi = s.umin, s.umax
    if alu32:
        sub = t_subreg(d.var_off)
        if op is AluOp.LSH:
            _lsh32_bounds(d, lo, hi)
            d.var_off = t_subreg(t_lshift(sub, lo))
        elif op is AluOp.RSH:
            d.s32_min, d.s32_max = S32_MIN, S32_MAX
            d.var_off = t_rshift(sub, lo)
            d.u32_min, d.u32_max = d.u32_min >> hi, d.u32_max >> lo
        else:
            d.s32_min, d.s32_max = d.s32_min >> lo, d.s32_max >> lo
            d.var_off = t_arshift(sub, lo, 32)
            d.u32_min, d.u32_max = 0, U32
        d.mark64_unbounded()
        d.update32()
        return
    if op is AluOp.LSH:
        d.smax = (d.s32_max << 32) if lo == hi == 32 and d.s32_max >= 0 else S64_MAX
        d.smin = (d.s32_min << 32) if lo == hi == 32 and d.s32_min >= 0 else S64_MIN
        if d.umax > 1 << (63 - hi):
            d.umin, d.umax = 0, U64
        else:
            d.umin, d.umax = d.umin << lo, d.umax << hi
        _lsh32_bounds(d, lo, hi)
        d.var_off = t_lshift(d.var_off, lo)
    elif op is AluOp.RSH:
        d.smin, d.smax = S64_MIN, S64_MAX
        d.var_off = t_rshift(d.var_off, lo)
        d.umin, d.umax = d.umin >> hi, d.umax >> lo
        d.mark32_unbounded()
    else:
        d.smin, d.smax = d.smin >> lo, d.smax >> lo
        d.var_off = t_arshift(d.var_off, lo, 64)
        d.umin, d.umax = 0, U64
        d.mark32_unbounded()
    d.update_bounds()


_SAFE = {AluOp.ADD, AluOp.SUB, AluOp.NEG, AluOp.AND, AluOp.OR, AluOp.XOR, AluOp.MUL}
_SHIFTS = {AluOp.LSH, AluOp.RSH, AluOp.ARSH}


def scalar_alu(d: RegState, s: RegState, op: AluOp, alu32: bool) -> None:
    """``adjust_scalar_min_max_vals`` for two scalars; ``d`` is updated in place."""
    bits = 32 if alu32 else 64
    if not (op in _SAFE or (op in _SHIFTS and _src_const(s, alu32) and s.umax < bits)):
        # is_safe_to_compute_dst_reg_range() is false: the kernel marks all 64 bits
        # unknown and returns before its alu32 zero-extension (6.18 logs "w1 %= 3" as
        # R1=scalar()).
        d.mark_unknown()
        return
    d.id = d.off = d.add_const = 0
    if t_is_const(d.var_off) and t_is_const(s.var_off) and _const_fold(d, s, op, alu32):
        return
    if op is AluOp.ADD:
        _add(d, s, alu32)
        _add(d, s, not alu32)
        d.var_off = t_add(d.var_off, s.var_off)
    elif op is AluOp.SUB:
        _sub(d, s, alu32)
        _sub(d, s, not alu32)
        d.var_off = t_sub(d.var_off, s.var_off)
    elif op is AluOp.NEG:
        old = d.copy()
        d.mark_known(0)
        _sub(d, old, alu32)
        _sub(d, old, not alu32)
        d.var_off = t_neg(old.var_off)
    elif op is AluOp.MUL:
        d.var_off = t_mul(d.var_off, s.var_off)
        _mul(d, s, alu32)
        _mul(d, s, not alu32)
    elif op in (AluOp.AND, AluOp.OR, AluOp.XOR):
        fn = {AluOp.AND: t_and, AluOp.OR: t_or, AluOp.XOR: t_xor}[op]
        d.var_off = fn(d.var_off, s.var_off)
        _bitwise(d, s, op, True)
        _bitwise(d, s, op, False)
    else:
        _shift(d, s, op, alu32)
    if alu32:
        d.zext_32_to_64()
    d.sync()


def _const_fold(d: RegState, s: RegState, op: AluOp, alu32: bool) -> bool:
    """Two constants (within their bounds): the result is the constant the CPU computes,
    which is what the tnum and range rules give as well."""
    if not (d.is_const() and s.is_const() and sane_const(d) and sane_const(s)):
        return False
    mask = U32 if alu32 else U64
    bits = 32 if alu32 else 64
    a, b = d.var_off[0] & mask, s.var_off[0] & mask
    if op is AluOp.ADD:
        r = a + b
    elif op is AluOp.SUB:
        r = a - b
    elif op is AluOp.MUL:
        r = a * b
    elif op is AluOp.AND:
        r = a & b
    elif op is AluOp.OR:
        r = a | b
    elif op is AluOp.XOR:
        r = a ^ b
    elif op is AluOp.NEG:
        r = -a
    elif op is AluOp.LSH:
        r = a << b
    elif op is AluOp.RSH:
        r = a >> b
    else:
        sa = a - (1 << bits) if a >> (bits - 1) else a
        r = sa >> b
    d.mark_known(r & mask)
    return True


def sane_const(r: RegState) -> bool:
    v = r.var_off[0]
    return r.umin == r.umax == v and r.smin == r.smax


# ---- conditional jumps ------------------------------------------------------------------
FLIP = {Cond.JGT: Cond.JLT, Cond.JLT: Cond.JGT, Cond.JGE: Cond.JLE, Cond.JLE: Cond.JGE,
        Cond.JSGT: Cond.JSLT, Cond.JSLT: Cond.JSGT, Cond.JSGE: Cond.JSLE, Cond.JSLE: Cond.JSGE,
        Cond.JEQ: Cond.JEQ, Cond.JNE: Cond.JNE, Cond.JSET: Cond.JSET}
# The opposite condition; None stands for "not JSET" (BPF_JSET | BPF_X in the kernel).
REV: dict[Cond, Cond | None] = {
    Cond.JEQ: Cond.JNE, Cond.JNE: Cond.JEQ, Cond.JGT: Cond.JLE, Cond.JLE: Cond.JGT,
    Cond.JGE: Cond.JLT, Cond.JLT: Cond.JGE, Cond.JSGT: Cond.JSLE, Cond.JSLE: Cond.JSGT,
    Cond.JSGE: Cond.JSLT, Cond.JSLT: Cond.JSGE, Cond.JSET: None}


def _is_const(r: RegState, jmp32: bool) -> bool:
    return t_is_const(t_subreg(r.var_off)) if jmp32 else t_is_const(r.var_off)


def _const(r: RegState, jmp32: bool) -> int:
    return r.var_off[0] & U32 if jmp32 else r.var_off[0]


def branch_taken(r1: RegState, r2: RegState, cond: Cond, jmp32: bool) -> int:
    """``is_scalar_branch_taken``: 1 always, 0 never, -1 unknown."""
    if jmp32:
        t1, t2 = t_subreg(r1.var_off), t_subreg(r2.var_off)
        umin1, umax1, smin1, smax1 = r1.u32_min, r1.u32_max, r1.s32_min, r1.s32_max
        umin2, umax2, smin2, smax2 = r2.u32_min, r2.u32_max, r2.s32_min, r2.s32_max
    else:
        t1, t2 = r1.var_off, r2.var_off
        umin1, umax1, smin1, smax1 = r1.umin, r1.umax, r1.smin, r1.smax
        umin2, umax2, smin2, smax2 = r2.umin, r2.umax, r2.smin, r2.smax
    if cond in (Cond.JEQ, Cond.JNE):
        ne = 1 if cond is Cond.JNE else 0
        if t_is_const(t1) and t_is_const(t2):
            return int((t1[0] == t2[0]) != bool(ne))
        if umin1 > umax2 or umax1 < umin2 or smin1 > smax2 or smax1 < smin2:
            return ne
        if not jmp32 and (r1.u32_min > r2.u32_max or r1.u32_max < r2.u32_min
                          or r1.s32_min > r2.s32_max or r1.s32_max < r2.s32_min):
            return ne
        return -1
    if cond is Cond.JSET:
        if not _is_const(r2, jmp32):
            t1, t2 = t2, t1
            if not _is_const(r1, jmp32):
                return -1
        if (~t1[1] & t1[0]) & t2[0]:
            return 1
        if not ((t1[1] | t1[0]) & t2[0]):
            return 0
        return -1
    table = {
        Cond.JGT: (umin1 > umax2, umax1 <= umin2), Cond.JSGT: (smin1 > smax2, smax1 <= smin2),
        Cond.JLT: (umax1 < umin2, umin1 >= umax2), Cond.JSLT: (smax1 < smin2, smin1 >= smax2),
        Cond.JGE: (umin1 >= umax2, umax1 < umin2), Cond.JSGE: (smin1 >= smax2, smax1 < smin2),
        Cond.JLE: (umax1 <= umin2, umin1 > umax2), Cond.JSLE: (smax1 <= smin2, smin1 > smax2),
    }
    yes, no = table[cond]
    return 1 if yes else 0 if no else -1


def _refine(r1: RegState, r2: RegState, cond: Cond | None, jmp32: bool) -> None:
    """``regs_refine_cond_op``: learn from ``r1 <cond> r2`` being true."""
    if cond in (Cond.JGE, Cond.JGT, Cond.JSGE, Cond.JSGT):
        cond = FLIP[cond]
        r1, r2 = r2, r1
    if cond is Cond.JEQ:
        if jmp32:
            r1.u32_min = r2.u32_min = max(r1.u32_min, r2.u32_min)
            r1.u32_max = r2.u32_max = min(r1.u32_max, r2.u32_max)
            r1.s32_min = r2.s32_min = max(r1.s32_min, r2.s32_min)
            r1.s32_max = r2.s32_max = min(r1.s32_max, r2.s32_max)
            t = t_intersect(t_subreg(r1.var_off), t_subreg(r2.var_off))
            r1.var_off = t_with_subreg(r1.var_off, t)
            r2.var_off = t_with_subreg(r2.var_off, t)
        else:
            r1.umin = r2.umin = max(r1.umin, r2.umin)
            r1.umax = r2.umax = min(r1.umax, r2.umax)
            r1.smin = r2.smin = max(r1.smin, r2.smin)
            r1.smax = r2.smax = min(r1.smax, r2.smax)
            r1.var_off = r2.var_off = t_intersect(r1.var_off, r2.var_off)
        return
    if cond in (Cond.JNE, Cond.JSET, None):
        if not _is_const(r2, jmp32):
            r1, r2 = r2, r1
        if not _is_const(r2, jmp32):
            return
        val = _const(r2, jmp32)
        if cond is Cond.JNE:
            _ne(r1, val, jmp32)
        elif cond is Cond.JSET:
            if val and not val & (val - 1):
                t = t_or(t_subreg(r1.var_off) if jmp32 else r1.var_off, t_const(val))
                r1.var_off = t_with_subreg(r1.var_off, t) if jmp32 else t
        else:
            mask = U32 if jmp32 else U64
            t = t_and(t_subreg(r1.var_off) if jmp32 else r1.var_off, t_const(~val & mask))
            r1.var_off = t_with_subreg(r1.var_off, t) if jmp32 else t
        return
    strict = 1 if cond in (Cond.JLT, Cond.JSLT) else 0
    if cond in (Cond.JLE, Cond.JLT):
        if jmp32:
            r1.u32_max = min(r1.u32_max, r2.u32_max - strict)
            r2.u32_min = max(r1.u32_min + strict, r2.u32_min)
        else:
            r1.umax = min(r1.umax, r2.umax - strict)
            r2.umin = max(r1.umin + strict, r2.umin)
    elif jmp32:
        r1.s32_max = min(r1.s32_max, r2.s32_max - strict)
        r2.s32_min = max(r1.s32_min + strict, r2.s32_min)
    else:
        r1.smax = min(r1.smax, r2.smax - strict)
        r2.smin = max(r1.smin + strict, r2.smin)


def _ne(r: RegState, val: int, jmp32: bool) -> None:
    if jmp32:
        if r.u32_min == val:
            r.u32_min += 1
        if r.u32_max == val:
            r.u32_max -= 1
        if r.s32_min == s32(val):
            r.s32_min += 1
        if r.s32_max == s32(val):
            r.s32_max -= 1
    else:
        if r.umin == val:
            r.umin += 1
        if r.umax == val:
            r.umax -= 1
        if r.smin == s64(val):
            r.smin += 1
        if r.smax == s64(val):
            r.smax -= 1


def set_min_max(t1: RegState, t2: RegState, f1: RegState, f2: RegState, cond: Cond,
                jmp32: bool) -> bool:
    """``reg_set_min_max``: refine the taken (t*) and fall-through (f*) copies.

    Returns False when a branch turns out impossible (bounds crossed), which the kernel
    reports as a bounds sanity failure; callers treat it as an unreachable branch."""
    if not (f1.is_scalar and f2.is_scalar):
        return True
    _refine(f1, f2, REV[cond], jmp32)
    f1.sync()
    f2.sync()
    _refine(t1, t2, cond, jmp32)
    t1.sync()
    t2.sync()
    return True


def sane(r: RegState) -> bool:
    return (r.umin <= r.umax and r.smin <= r.smax and r.u32_min <= r.u32_max
            and r.s32_min <= r.s32_max)
