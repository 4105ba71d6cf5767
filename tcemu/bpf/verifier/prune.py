"""State equivalence for pruning: ``states_equal``, ``regsafe`` and ``stacksafe``.

Mirrors kernel/bpf/verifier.c: an explored state whose every path was proven safe prunes
the current one when each live register and stack slot of the old state is at least as
general as the current one (ranges contain, tnums include, ids map one to one).  With
``exact`` the two must be identical, which is the infinite-loop test.
"""

from __future__ import annotations

from tcemu.bpf.verifier.state import FuncState, RegState, RegType, StackSlot, VState
from tcemu.bpf.verifier.tnum import t_in

__all__ = ["states_equal"]


def _regsafe(old: RegState, cur: RegState, idmap: dict[int, int], exact: bool) -> bool:
    if old.type == RegType.NOT_INIT:
        return not exact or cur.type == RegType.NOT_INIT
    if cur.type == RegType.NOT_INIT:
        return False
    if exact:
        return _ids(old.id, cur.id, idmap) and _same(old, cur)
    if old.type != cur.type or old.maybe_null != cur.maybe_null or old.ringbuf != cur.ringbuf:
        return False
    if old.is_scalar:
        if old.add_const != cur.add_const or (old.add_const and old.off != cur.off):
            return False
        return (old.range_within(cur) and t_in(old.var_off, cur.var_off)
                and (not old.id or _ids(old.id, cur.id, idmap)))
    if old.off != cur.off or old.map != cur.map or old.frameno != cur.frameno:
        return False
    if old.is_pkt and old.range > cur.range:
        return False
    if old.mem_size != cur.mem_size or old.subprog != cur.subprog:
        return False
    if not _ids(old.id, cur.id, idmap) or not _ids(old.ref_obj_id, cur.ref_obj_id, idmap):
        return False
    return old.range_within(cur) and t_in(old.var_off, cur.var_off)


def _same(a: RegState, b: RegState) -> bool:
    return all(getattr(a, n) == getattr(b, n) for n in RegState.__slots__ if n not in
               ("id", "ref_obj_id"))


def _ids(old: int, cur: int, idmap: dict[int, int]) -> bool:
    if not old:
        return not cur or True
    seen = idmap.get(old)
    if seen is None:
        idmap[old] = cur
        return True
    return seen == cur


def _stacksafe(old: FuncState, cur: FuncState, idmap: dict[int, int], exact: bool) -> bool:
    for spi, os_ in enumerate(old.stack):
        cs = cur.stack[spi] if spi < len(cur.stack) else StackSlot()
        if exact:
            if os_.slot_type != cs.slot_type:
                return False
            if os_.is_spill() and not _regsafe(os_.spilled, cs.spilled, idmap, True):
                return False
            continue
        for i in range(8):
            ot, ct = os_.slot_type[i], cs.slot_type[i]
            if ot in (StackSlot.INVALID, StackSlot.MISC):
                continue
            if ot != ct:
                return False
        if os_.is_spill() and not _regsafe(os_.spilled, cs.spilled, idmap, False):
            return False
    return True


def _compared_ids(st: VState, live: int, precise: int) -> set[int]:
    """Ids of the registers compared in full: an imprecise scalar linked to one of them
    (same id) must be compared in full too, since a branch on it refines them."""
    ids = {0}
    top = len(st.frames) - 1
    for depth, f in enumerate(st.frames):
        for i, r in enumerate(f.regs):
            if r.id and (depth != top or (live >> i & 1 and (precise >> i & 1
                                                             or r.type != RegType.SCALAR))):
                ids.add(r.id)
        ids.update(s.spilled.id for s in f.stack if s.is_spill())
    ids.discard(0)
    return ids


def states_equal(old: VState, cur: VState, live: int, exact: bool, precise: int = -1) -> bool:
    if len(old.frames) != len(cur.frames):
        return False
    idmap: dict[int, int] = {}
    old_ids = _compared_ids(old, live, precise)
    cur_ids = _compared_ids(cur, live, precise)
    for depth, (of, cf) in enumerate(zip(old.frames, cur.frames, strict=True)):
        if of.callsite != cf.callsite:
            return False
        top = depth == len(old.frames) - 1
        for i in range(11):
            if top and not live >> i & 1:
                continue
            o, c = of.regs[i], cf.regs[i]
            if (top and not exact and not precise >> i & 1 and o.type == RegType.SCALAR
                    and c.type == RegType.SCALAR and o.id not in old_ids
                    and c.id not in cur_ids):
                continue   # an imprecise scalar: its value decides nothing from here
            if not _regsafe(o, c, idmap, exact):
                return False
        if not _stacksafe(of, cf, idmap, exact):
            return False
    if len(old.refs) != len(cur.refs):
        return False
    if (old.lock is None) != (cur.lock is None) or (
            old.lock is not None and cur.lock is not None and old.lock[1] is not cur.lock[1]):
        return False
    return all(_ids(a[0], b[0], idmap) for a, b in zip(old.refs, cur.refs, strict=True))


