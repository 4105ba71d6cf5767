"""ALU instructions: ``check_alu_op``, ``adjust_reg_min_max_vals``, ``adjust_ptr_min_max_vals``.

Mirrors kernel/bpf/verifier.c for a privileged loader: scalar results go through
:func:`tcemu.bpf.verifier.scalar.scalar_alu`; pointer arithmetic keeps constant offsets in
the fixed ``off`` and variable ones in the tnum and bounds (a new id and no range for
packet pointers), and refuses what the kernel refuses (32-bit pointer arithmetic, bitwise
operators, arithmetic on nullable pointers, data_end and map pointers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu.bpf.disasm import ALU_STRING
from tcemu.bpf.ops import Alu, AluOp
from tcemu.bpf.verifier.checks import BPF_MAX_VAR_OFF, Reject, Restart
from tcemu.bpf.verifier.scalar import sane, scalar_alu
from tcemu.bpf.verifier.state import S64_MAX, S64_MIN, RegState, RegType, s32, s64
from tcemu.bpf.verifier.tnum import U64, t_add, t_is_const, t_sub

if TYPE_CHECKING:
    from tcemu.bpf.verifier.explore import Verifier

__all__ = ["check_alu"]


def check_alu(v: Verifier, op: Alu) -> None:
    alu32 = not op.is64
    if op.op is AluOp.NEG:
        reg = v.check_reg_src(op.dst)
        if reg.is_scalar:
            v.check_reg_dst(op.dst, mark=False)
            scalar_alu(reg, reg, AluOp.NEG, alu32)
        else:
            v.check_reg_dst(op.dst)
        return
    if op.op in (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32):
        _mov(v, op, alu32)
        return
    src = v.check_reg_src(op.src) if op.src is not None else RegState()
    dst = v.check_reg_src(op.dst)
    if op.src is None:
        if op.op in (AluOp.DIV, AluOp.MOD, AluOp.SDIV, AluOp.SMOD) and op.imm == 0:
            raise Reject("div by zero")
        if op.op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH) and not 0 <= op.imm < (
                32 if alu32 else 64):
            raise Reject(f"invalid shift {op.imm}")
        src.mark_const_scalar(op.imm)
    v.check_reg_dst(op.dst, mark=False)
    adjust_reg(v, op, dst, src, alu32)

def _mov(v: Verifier, op: Alu, alu32: bool) -> None:
    dst_no = op.dst
    if op.src is None:
        dst = v.check_reg_dst(dst_no)
        dst.mark_const_scalar(op.imm & 0xFFFFFFFF if alu32 else op.imm)
        return
    src = v.check_reg_src(op.src)
    v.check_reg_dst(dst_no, mark=False)
    dst = v.regs[dst_no]
    bits = {AluOp.MOVSX8: 1, AluOp.MOVSX16: 2, AluOp.MOVSX32: 4}.get(op.op)
    if not src.is_scalar:
        if alu32 or bits:
            dst.mark_unknown()
            if alu32:
                dst.zext_32_to_64()
                dst.sync()
            return
        dst.assign(src)
        return
    if bits:
        from tcemu.bpf.verifier.checks import _sign_extend
        new = src.copy()
        new.id = 0
        _sign_extend(new, bits)
        if alu32:
            new.zext_32_to_64()
            new.sync()
        dst.assign(new)
        return
    if not alu32:
        v.assign_scalar_id(src)
        dst.assign(src)
        return
    fits = src.umax.bit_length() <= 32
    if fits:
        v.assign_scalar_id(src)
    new = src.copy()
    if not fits:
        new.id = 0
    new.zext_32_to_64()
    new.sync()
    dst.assign(new)

def adjust_reg(v: Verifier, op: Alu, dst: RegState, src: RegState, alu32: bool) -> None:
    """``adjust_reg_min_max_vals``."""
    opname = ALU_STRING[op.insn.code & 0xF0]
    if src.is_pointer:
        if dst.is_pointer:
            if op.op is AluOp.SUB:
                dst.mark_unknown()
                return
            raise Reject(f"R{op.dst} pointer {opname} pointer prohibited")
        _demand(v, op)
        adjust_ptr(v, op, src, dst, alu32, dst_is_off=True)
        return
    if dst.is_pointer:
        if op.src is not None:
            _demand(v, op)
        adjust_ptr(v, op, dst, src, alu32, dst_is_off=False)
        return
    link = (dst.id, dst.add_const)
    scalar_alu(dst, src, op.op, alu32)
    _link_add_const(dst, src, op, alu32, *link)


def _link_add_const(dst: RegState, src: RegState, op: Alu, alu32: bool, rid: int,
                    add_const: int) -> None:
    """``rX += const`` keeps rX linked to the registers it was copied from, with the
    constant as its delta (BPF_ADD_CONST); anything else unlinks it."""
    mask = 0xFFFFFFFF if alu32 else U64
    known = t_is_const((src.var_off[0] & mask, src.var_off[1] & mask))
    if not (rid and op.op in (AluOp.ADD, AluOp.SUB) and known):
        return
    val = src.var_off[0] & mask
    if not alu32 and not -(1 << 31) <= s64(val) < (1 << 31):
        return
    off = s32(val)
    if op.op is AluOp.SUB:
        if off == -(1 << 31):
            return
        off = -off
    if add_const:
        return
    dst.id = rid
    dst.add_const = 32 if alu32 else 64
    dst.off = off


def _demand(v: Verifier, op: Alu) -> None:
    """A scalar register offsets a pointer here: its value must be compared precisely."""
    if op.pc not in v.demand:
        raise Restart(op.pc)


def adjust_ptr(v: Verifier, op: Alu, ptr: RegState, off: RegState, alu32: bool,
               dst_is_off: bool) -> None:
    """``adjust_ptr_min_max_vals``: the result replaces R<op.dst>."""
    dst = v.regs[op.dst]
    opname = ALU_STRING[op.insn.code & 0xF0]
    known = off.is_const()
    if not sane(off) or (known and (off.smin != off.smax or off.umin != off.umax)):
        # An offset with impossible bounds (a dead branch): the result is unknown.
        dst.mark_unknown()
        return
    if alu32:
        if op.op is AluOp.SUB:
            dst.mark_unknown()
            return
        raise Reject(f"R{op.dst} 32-bit pointer arithmetic prohibited")
    if ptr.maybe_null:
        raise Reject(f"R{op.dst} pointer arithmetic on {ptr.type_str()} prohibited, "
                     "null-check it first")
    if ptr.type == RegType.MAP_PTR and not (known and off.smin == 0
                                             and op.op is AluOp.ADD):
        raise Reject(f"R{op.dst} pointer arithmetic on {ptr.type_str()} prohibited")
    if ptr.type in (RegType.PKT_END, RegType.SOCK, RegType.SOCKET):
        raise Reject(f"R{op.dst} pointer arithmetic on {ptr.type_str()} prohibited")
    _sane_offset(off, ptr.type_str())
    _sane_offset(ptr, ptr.type_str())
    if op.op not in (AluOp.ADD, AluOp.SUB):
        if op.op in (AluOp.AND, AluOp.OR, AluOp.XOR):
            raise Reject(f"R{op.dst} bitwise operator {opname} on pointer prohibited")
        raise Reject(f"R{op.dst} pointer arithmetic with {opname} operator prohibited")
    if op.op is AluOp.SUB and dst_is_off:
        raise Reject(f"R{op.dst} tried to subtract pointer from scalar")
    if op.op is AluOp.SUB and ptr.type == RegType.STACK:
        raise Reject(f"R{op.dst} subtraction from stack pointer prohibited")
    res = ptr.copy()
    sign = 1 if op.op is AluOp.ADD else -1
    fixed = ptr.off + sign * off.smin
    if known and -(1 << 31) <= fixed < (1 << 31):
        res.off = fixed
    else:
        if op.op is AluOp.ADD:
            lo, hi = ptr.smin + off.smin, ptr.smax + off.smax
            ulo, uhi = ptr.umin + off.umin, ptr.umax + off.umax
            res.var_off = t_add(ptr.var_off, off.var_off)
        else:
            lo, hi = ptr.smin - off.smax, ptr.smax - off.smin
            ulo, uhi = ptr.umin - off.umax, ptr.umax - off.umin
            res.var_off = t_sub(ptr.var_off, off.var_off)
        res.smin, res.smax = (lo, hi) if lo >= S64_MIN and hi <= S64_MAX else (S64_MIN,
                                                                                S64_MAX)
        res.umin, res.umax = (ulo, uhi) if ulo >= 0 and uhi <= U64 else (0, U64)
        res.mark32_unbounded()
        if ptr.is_pkt:
            res.id = v.new_id()
            res.range = 0
    _sane_offset(res, ptr.type_str())
    res.update_bounds()
    res.deduce_bounds()
    res.bound_offset()
    dst.assign(res)


def _sane_offset(reg: RegState, tname: str) -> None:
    """``check_reg_sane_offset``."""
    val = s64(reg.var_off[0])
    if reg.is_const() and not -BPF_MAX_VAR_OFF < val < BPF_MAX_VAR_OFF:
        raise Reject(f"math between {tname} pointer and {val} is not allowed")
    if not -BPF_MAX_VAR_OFF < reg.off < BPF_MAX_VAR_OFF:
        raise Reject(f"{tname} pointer offset {reg.off} is not allowed")
    if reg.smin == S64_MIN:
        raise Reject(f"math between {tname} pointer and register with unbounded min value "
                     "is not allowed")
    if not -BPF_MAX_VAR_OFF < reg.smin < BPF_MAX_VAR_OFF:
        raise Reject(f"value {reg.smin} makes {tname} pointer be out of bounds")
