"""What a conditional jump decides and teaches: kernel/bpf/verifier.c ``is_branch_taken``
(pointers against NULL, ``is_pkt_ptr_branch_taken`` with the data_end marks, then
``is_scalar_branch_taken``), ``sync_linked_regs``, ``mark_ptr_or_null_regs`` and
``try_match_pkt_pointers`` / ``find_good_pkt_pointers`` / ``mark_pkt_end``.
"""

from __future__ import annotations

from tcemu.bpf.ops import Cond, Jump
from tcemu.bpf.verifier.scalar import FLIP, add_bounds
from tcemu.bpf.verifier.scalar import branch_taken as scalar_branch_taken
from tcemu.bpf.verifier.state import RegState, RegType, VState, s32
from tcemu.bpf.verifier.tnum import U64, t_add, t_is_const

__all__ = ["AT_PKT_END", "BEYOND_PKT_END", "branch_taken_any", "mark_ptr_or_null",
           "match_pkt_pointers", "sync_linked"]

MAX_PACKET_OFF = 0xFFFF
BEYOND_PKT_END = -2
AT_PKT_END = -1


def pktbranch_taken(r1: RegState, r2: RegState, cond: Cond) -> int:
    """``is_pkt_ptr_branch_taken``: what the data_end marks decide."""
    if r2.type == RegType.PKT_END:
        pkt = r1
    elif r1.type == RegType.PKT_END:
        pkt, cond = r2, FLIP[cond]
    else:
        return -1
    if pkt.range >= 0:
        return -1
    if cond in (Cond.JLE, Cond.JGT) and pkt.range == BEYOND_PKT_END:
        return int(cond is Cond.JGT)
    if cond in (Cond.JLT, Cond.JGE):
        return int(cond is Cond.JGE)
    return -1


def branch_taken_any(r1: RegState, r2: RegState, cond: Cond, jmp32: bool) -> int:
    """``is_branch_taken``: pointers against NULL and data_end marks, then scalars."""
    pkts = (RegType.PKT, RegType.PKT_META, RegType.PKT_END)
    if r1.type in pkts and r2.type in pkts and not jmp32:
        return pktbranch_taken(r1, r2, cond)
    if r1.is_pointer or r2.is_pointer:
        if r1.is_pointer and r2.is_pointer:
            return -1
        if not r2.is_scalar:
            cond = FLIP[cond]
            r1, r2 = r2, r1
        if not (t_is_const(r2.var_off) if not jmp32 else t_is_const((r2.var_off[0] & 0xFFFFFFFF,
                                                                      r2.var_off[1] & 0xFFFFFFFF))):
            return -1
        not_null = (not r1.maybe_null and r1.type in (RegType.MAP_VALUE, RegType.MAP_KEY,
                                                      RegType.MEM, RegType.MAP_PTR,
                                                      RegType.SOCK, RegType.SOCKET))
        if not not_null:
            return -1
        val = r2.var_off[0] & (0xFFFFFFFF if jmp32 else U64)
        if val:
            return -1
        return {Cond.JEQ: 0, Cond.JNE: 1}.get(cond, -1)
    return scalar_branch_taken(r1, r2, cond, jmp32)


def sync_linked(st: VState, known: RegState) -> None:
    """``sync_linked_regs``: what a branch taught about ``known`` holds for the registers
    linked to it, shifted by their constant deltas."""
    for reg in st.all_regs():
        if reg is known or not reg.is_scalar or reg.id != known.id:
            continue
        if (not reg.add_const and not known.add_const) or reg.off == known.off:
            reg.assign(known)
            continue
        saved_off, saved_id, saved_add = reg.off, reg.id, reg.add_const
        delta = RegState()
        delta.mark_const_scalar(s32(saved_off) - s32(known.off))
        reg.assign(known)
        reg.off, reg.id, reg.add_const = saved_off, saved_id, saved_add
        add_bounds(reg, delta)
        reg.var_off = t_add(reg.var_off, delta.var_off)
        if known.add_const == 32:
            reg.zext_32_to_64()
        reg.sync()


def mark_ptr_or_null(st: VState, rid: int, is_null: bool) -> None:
    for reg in st.all_regs():
        if reg.maybe_null and reg.id == rid:
            if is_null:
                reg.mark_const_scalar(0)
            else:
                reg.maybe_null = False
                # reg_may_point_to_spin_lock: the id names the lock taken through it.
                if reg.type != RegType.MAP_VALUE or reg.map is None or (
                        reg.map.spin_lock_off < 0):
                    reg.id = 0
    if is_null:
        st.refs = [r for r in st.refs if r[0] != rid]


def find_good_pkt(st: VState, reg: RegState, open_right: bool) -> None:
    if reg.off < 0 or (reg.off == 0 and open_right):
        return
    if reg.umax > MAX_PACKET_OFF or reg.umax + reg.off > MAX_PACKET_OFF:
        return
    new_range = reg.off + (1 if open_right else 0)
    for r in st.all_regs():
        if r.type == reg.type and r.id == reg.id:
            r.range = max(r.range, new_range)


def match_pkt_pointers(cond: Cond, dst: RegState, src: RegState, this: VState,
                        other: VState, op: Jump) -> None:
    """``try_match_pkt_pointers``: a comparison with data_end proves a packet range."""
    assert op.src is not None

    def kind(a: RegState, b: RegState) -> bool:
        return ((a.type == RegType.PKT and b.type == RegType.PKT_END)
                or (a.type == RegType.PKT_META and b.type == RegType.PKT and b.off == 0
                    and b.is_const()))

    table = {Cond.JGT: (False, False), Cond.JLT: (True, True), Cond.JGE: (False, True),
             Cond.JLE: (True, False)}
    if cond not in table:
        return
    taken_when_pkt_first, open_right = table[cond]
    if kind(dst, src):
        reg_no = op.dst
    elif kind(src, dst):
        # ``end <op> pkt'``: the same as ``pkt' <flip op> end``.
        taken_when_pkt_first, open_right = table[FLIP[cond]]
        reg_no = op.src
    else:
        return
    good, bad = (other, this) if taken_when_pkt_first else (this, other)
    find_good_pkt(good, good.cur.regs[reg_no], open_right)
    # ``mark_pkt_end``: on the other branch the pointer is at or beyond data_end.
    reg = bad.cur.regs[reg_no]
    if reg.type == RegType.PKT:
        reg.range = AT_PKT_END if open_right else BEYOND_PKT_END
