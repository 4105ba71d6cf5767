"""Basic blocks of one subprogram, their edges, register liveness, and the shape of the
graph the translator needs: where segments are cut (:func:`cuts`), whether blocks form a
cycle (:func:`cyclic`), and an order of dispatch regions in which every jump goes forward
(:func:`region_order`).

Registers are bit sets (bit ``n`` = rN).  Liveness is the translator's licence not to keep
a register it will not read again: a value nobody reads (not in any later instruction of
its block, not live out of it) is never written to its Python local.  What the emulator can
observe of registers is r0 at exit, the arguments of calls, and the address of a faulting
access (the translator records how to recompute that one), so a dead register is safe to
drop.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from tcemu.bpf import isa
from tcemu.bpf.ops import (
    Alu,
    AluOp,
    Atomic,
    Call,
    CallX,
    CtxLoad,
    CtxStore,
    Endian,
    Exit,
    Jump,
    LdImm64,
    LdPacket,
    Load,
    Op,
    Store,
)

__all__ = ["ARGS", "Block", "blocks_of", "cuts", "cyclic", "liveness", "region_order", "use_def"]

ARGS = 0b111110            # r1..r5
_MOVES = (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32)


def use_def(op: Op) -> tuple[int, int]:
    """The registers ``op`` reads and the registers it writes, as bit sets."""
    if isinstance(op, Alu):
        use = 0 if op.op in _MOVES else 1 << op.dst
        return (use | (0 if op.src is None else 1 << op.src)), 1 << op.dst
    if isinstance(op, Load):
        return 1 << op.src, 1 << op.dst
    if isinstance(op, Store):
        return (1 << op.dst) | (0 if op.src is None else 1 << op.src), 0
    if isinstance(op, Endian):
        return 1 << op.dst, 1 << op.dst
    if isinstance(op, Jump):
        if op.cond is None:
            return 0, 0
        return (1 << op.dst) | (0 if op.src is None else 1 << op.src), 0
    if isinstance(op, LdImm64):
        return 0, 1 << op.dst
    if isinstance(op, Atomic):
        use = (1 << op.dst) | (1 << op.src)
        if op.op == isa.CMPXCHG:
            return use | 1, 1
        return use, (1 << op.src) if op.fetch else 0
    if isinstance(op, Call):
        return ARGS, 1
    if isinstance(op, CallX):
        return ARGS | (1 << op.reg), 1
    if isinstance(op, Exit):
        return 1, 0
    if isinstance(op, LdPacket):
        return (0 if op.src is None else 1 << op.src), 1
    if isinstance(op, CtxLoad):
        return 0, 1 << op.dst
    assert isinstance(op, CtxStore)
    return (0 if op.src is None else 1 << op.src), 0


@dataclass(slots=True, eq=False)
class Block:
    """Straight-line ops from ``start``; ``fall``/``jump`` are successor block indices."""

    index: int
    start: int
    ops: list[Op]
    fall: int | None = None
    jump: int | None = None
    preds: list[int] = field(default_factory=list)
    live_in: int = 0
    live_out: int = 0

    @property
    def tail(self) -> Op:
        return self.ops[-1]

    @property
    def self_loop(self) -> bool:
        return self.jump == self.index

    def succs(self) -> list[int]:
        return [s for s in (self.jump, self.fall) if s is not None]


def blocks_of(ops: Sequence[Op | None], start: int, end: int) -> list[Block]:
    """The basic blocks of the subprogram in slots ``[start, end)``, in slot order."""
    leaders = {start}
    for op in ops[start:end]:
        if isinstance(op, Jump):
            leaders.add(op.target)
            leaders.add(op.pc + 1)
        elif isinstance(op, Exit):
            leaders.add(op.pc + 1)
    bounds = sorted(x for x in leaders if start <= x < end)
    index = {pc: i for i, pc in enumerate(bounds)}
    blocks: list[Block] = []
    for i, first in enumerate(bounds):
        last = bounds[i + 1] if i + 1 < len(bounds) else end
        body = [op for op in ops[first:last] if op is not None]
        blocks.append(Block(i, first, body))
    for blk in blocks:
        tail = blk.tail
        nxt = blk.index + 1 if blk.index + 1 < len(blocks) else None
        if isinstance(tail, Jump):
            blk.jump = index[tail.target]
            if tail.cond is not None:
                blk.fall = nxt
        elif not isinstance(tail, Exit):
            blk.fall = nxt
        for succ in {s for s in (blk.jump, blk.fall) if s is not None}:
            blocks[succ].preds.append(blk.index)
    return blocks


def liveness(blocks: list[Block], use_defs: dict[int, tuple[int, int]]) -> None:
    """Fill ``live_in``/``live_out`` (``use_defs``: per op pc, from :func:`use_def`)."""
    gen_kill: list[tuple[int, int]] = []
    for blk in blocks:
        gen = kill = 0
        for op in blk.ops:
            use, dfn = use_defs[op.pc]
            gen |= use & ~kill
            kill |= dfn
        gen_kill.append((gen, kill))
    changed = True
    while changed:
        changed = False
        for blk in reversed(blocks):
            out = 0
            for succ in (blk.jump, blk.fall):
                if succ is not None:
                    out |= blocks[succ].live_in
            gen, kill = gen_kill[blk.index]
            live_in = gen | (out & ~kill)
            if out != blk.live_out or live_in != blk.live_in:
                blk.live_out, blk.live_in = out, live_in
                changed = True


def cuts(blocks: list[Block], size: int) -> set[int]:
    """Blocks where a new segment starts: the first boundary after about ``size`` insns
    that at most one forward edge jumps over (two past ``2 * size``, and so on); each edge
    jumping over a cut becomes a dispatch."""
    over = [0] * (len(blocks) + 1)
    for blk in blocks:
        for s in blk.succs():
            if s > blk.index + 1:
                over[blk.index + 1] += 1
                over[s] -= 1
    found: set[int] = set()
    jumped = acc = 0
    for blk in blocks:
        jumped += over[blk.index]
        if acc >= size and jumped <= acc // size:
            found.add(blk.index)
            acc = 0
        acc += len(blk.ops)
    return found


def cyclic(blocks: list[Block]) -> bool:
    """Whether a path between distinct blocks leads back to where it started (a block
    looping onto itself checks the budget on each iteration in place)."""
    state = [0] * len(blocks)          # 0 unseen, 1 on the current path, 2 done
    for root in range(len(blocks)):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(blocks[root].succs()))]
        while stack:
            node, succs = stack[-1]
            for s in succs:
                if s == node:
                    continue
                if state[s] == 1:
                    return True
                if state[s] == 0:
                    state[s] = 1
                    stack.append((s, iter(blocks[s].succs())))
                    break
            else:
                state[node] = 2
                stack.pop()
    return False


def region_order(blocks: list[Block], heads: set[int]) -> list[int] | None:
    """The dispatch heads in an order where every dispatch that can run goes forward (the
    region of a head is the blocks up to the next head), lowest first among the ready
    ones; None if there is none."""
    order = sorted(heads)
    ends = dict(zip(order, [*order[1:], len(blocks)], strict=True))
    succs: dict[int, set[int]] = {h: set() for h in order}
    preds = dict.fromkeys(order, 0)
    for h in order:
        # Only blocks the head reaches inside its region can run there: a block of the
        # region that is not a head is entered from inside the region only.
        todo, seen = [h], {h}
        while todo:
            for t in blocks[todo.pop()].succs():
                if t in succs:
                    if t != h and t not in succs[h]:
                        succs[h].add(t)
                        preds[t] += 1
                elif h < t < ends[h] and t not in seen:
                    seen.add(t)
                    todo.append(t)
    ready = [h for h in order if not preds[h]]
    heapq.heapify(ready)
    result: list[int] = []
    while ready:
        h = heapq.heappop(ready)
        result.append(h)
        for t in succs[h]:
            preds[t] -= 1
            if not preds[t]:
                heapq.heappush(ready, t)
    return result if len(result) == len(order) and result[0] == 0 else None
