"""A program as Python source: one function per subprogram, structured control flow.

Forward branches become nested ``if``/``else`` wherever the region a branch skips has a
single entry and leaves only to the branch target (an ``if``), or when it is the then-part
of a diamond that ends with ``goto join`` (an ``if``/``else``).  What cannot be nested that
way (backward edges between blocks, crossing branches) goes through a dispatcher: a
``while True`` loop that tests the block number ``b`` and checks the instruction budget.
Without a cycle between blocks (most packet parsers) the dispatcher is flat instead: the
regions between dispatch heads in an order where every jump goes forward, each behind
``if b == <position>`` (see :meth:`Translator.flat`), with no loop and no budget check;
there a dispatch to a small region is a copy of that region instead (tail duplication,
:meth:`Translator.inline`), so the common paths of a parser run without dispatch tests.
A jump to a small exit block is a copy of that block.  A block that loops onto itself
becomes a Python ``for``/``while`` loop in place.

The instruction count ``n`` grows by a block's length when the block starts (a block
entered only by falling out of the previous one adds to that block's count instead, and
the branches that leave early take the rest back); it is exact wherever control leaves
such a chain, so the budget is checked where control goes backwards (the dispatcher, each
loop iteration) and before anything the run can observe (exit, helper and bpf-to-bpf
calls, a failing LD_ABS).  A fault is turned into ``BudgetExceeded`` instead when the faulting
instruction is past the budget (see ``Translated``).

A subprogram longer than :data:`SPLIT` instructions is cut into *segments* at block
boundaries that few forward edges jump over.  Each segment is a function of its own
(``seg_<pc>``, taking and returning the registers and ``n``), and the subprogram's function
is only a driver that calls the segment whose head pc is in ``b`` through the table ``SEG``
until one returns ``b < 0`` (an exit, r0 beside it).  Edges between segments are dispatches,
and a segment starts without range facts, so each segment's code depends on nothing but
the program: the runner generates and compiles a segment when it is first entered
(:meth:`Translator.segment`), which bounds the cost of getting a large program ready to
the analyses and the drivers, and never spends ``compile()`` on code that does not run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf.jit.cfg import Block, blocks_of, cuts, cyclic, liveness, region_order, use_def
from tcemu.bpf.jit.direct import MapCall
from tcemu.bpf.jit.facts import State, join, refine, top_state
from tcemu.bpf.jit.gen import BlockGen
from tcemu.bpf.jit.out import Chain, Out
from tcemu.bpf.memory import MEM_RID
from tcemu.bpf.ops import (
    Call,
    CallX,
    CtxLoad,
    Exit,
    Jump,
    LdImm64,
    LdPacket,
    Op,
)

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Vm

from tcemu.bpf.jit.loops import loop

__all__ = ["SPLIT", "Translator"]

SPLIT = 256
"""Subprograms of more instruction slots than this are cut into segments of about this many
(lazily compiled functions, see the module docstring); 0 never cuts."""

_LEAF = 4
_FLAT = 64              # acyclic subprograms of at most this many regions: see flat()
_GROUP = 4              # regions behind one range test there
_DUP_EXIT = 4           # exit blocks of at most this many ops are copied into their jumps
_INLINE_REGION = 48     # flat mode: regions of at most this many ops are copied into the
_INLINE_TOTAL = 256     # dispatches to them, up to this many ops (and three times the
_INLINE_IND = 40        # subprogram's) in all, while the indentation is below this
_MAX_NEST = 32          # nested ifs; deeper goes through the dispatcher (Python: 100 levels)
_REGS = ", ".join(f"r{r}" for r in range(11))
_R10 = re.compile(r"\br10\b")
_SEG_ARGS = f"{_REGS}, n, depth"
ZEROS = (0,) * 11
"""``Z`` of the generated code: r1..r10 and n of an exit's return from a segment."""


@dataclass(slots=True)
class _Plan:
    """A segmented subprogram: its blocks, the sorted heads of its segments, and whether
    the stack frame ``S`` is hoisted (r10 never written)."""

    blocks: list[Block]
    heads: list[int]
    frame: bool



PacketPointers = tuple[tuple[int, str], ...]
"""Context offsets whose 4-byte load is a packet pointer: (offset, is data_end)."""


def packet_pointers(model: object) -> PacketPointers:
    """The context model's ``inline_loads`` (see ``SkbContext``), or none."""
    table: Mapping[int, str] = getattr(model, "inline_loads", None) or {}
    return tuple(sorted(table.items()))


_EVENTS = (Call, CallX, LdPacket)    # ops whose statements read n (not only fault reports)


def _plain(blk: Block) -> bool:
    return not any(isinstance(op, _EVENTS) for op in blk.ops)


class Translator:
    """Builds the source of a whole program (``source()``) and its line table (``out``).

    With ``resolved`` (slot -> value of every LD_IMM64), the caller has made the load-time
    checks and resolved the LD_IMM64 values against its Vm; the translator then keeps no
    Vm, so it can generate segments later for any Vm that resolves them the same way.
    """

    def __init__(self, vm: Vm, program: Program, ops: Sequence[Op | None],
                 resolved: dict[int, int] | None = None,
                 pointers: PacketPointers = (),
                 direct: Mapping[int, MapCall] | None = None,
                 maps: Mapping[int, tuple[int, int]] | None = None) -> None:
        self.vm: Vm | None = vm if resolved is None else None
        self.resolved = resolved
        self.pointers = dict(pointers)
        self.direct = direct or {}       # helper id -> its map method (see .direct)
        self.maps = maps or {}           # map handle -> (key size, value size)
        self.program = program
        self.ops = ops
        self.out = Out()
        self.helpers: set[int] = set()
        self.use_defs = {op.pc: use_def(op) for op in ops if op is not None}
        # per subprogram
        self.blocks: list[Block] = []
        self.heads: set[int] = set()
        self.dispatched: set[int] = set()
        self.emit = False
        self.gen = BlockGen(self, False)
        self.edges: dict[tuple[int, int], State] = {}
        self.segmented = False    # emitting a segment: dispatches and exits return
        self.source_block = 0     # the block emitted last: where a dispatch comes from
        self.flat_mode = False    # emitting an acyclic subprogram's regions in order
        self.flat_pos: dict[int, int] = {}   # there: head -> position in that order
        self.flat_ends: dict[int, int] = {}  # there: head -> end of its region
        self.flat_used: set[int] = set()     # there: positions a ``b = k`` names
        self.inline_left = 0                 # there: ops that may still be copied
        self.inline_pos = 0                  # there: position of the region being emitted
        self.chain: Chain | None = None     # the open chain of blocks, see block()
        self.plans: dict[int, tuple[_Plan, int]] = {}   # head pc -> (plan, its position)

    def source(self) -> str:
        """The whole program at once: subprograms, drivers and every segment."""
        for pc in self.prepare():
            self.out.splice(self.segment(pc))
        return "\n".join(self.out.lines) + "\n"

    def prepare(self) -> list[int]:
        """Emit every subprogram into ``out`` (a driver for a segmented one); returns the
        head pcs of the segments, for :meth:`segment`."""
        starts = [*self.program.subprogs, len(self.program.insns)]
        for i, start in enumerate(starts[:-1]):
            self.subprog(start, starts[i + 1])
        return list(self.plans)

    def segment(self, pc: int) -> Out:
        """The source of segment ``seg_<pc>`` (its own line numbers)."""
        plan, k = self.plans[pc]
        self.blocks, self.heads = plan.blocks, set(plan.heads)
        self.gen = BlockGen(self, plan.frame)
        end = plan.heads[k + 1] if k + 1 < len(plan.heads) else len(plan.blocks)
        self.gen.packet = self.packet(plan.blocks[plan.heads[k]:end])
        self.edges, self.dispatched = {}, set()
        saved, out = self.out, Out()
        self.out, self.emit, self.segmented = out, True, True
        try:
            out.put(0, f"def seg_{pc}({_SEG_ARGS}):")
            if plan.frame:
                out.put(1, "S = G[depth + 1]")
            if self.gen.packet:
                out.put(1, f"PK = G[{MEM_RID}]")
            if self.walk(plan.heads[k], end, end, 1) and end < len(plan.blocks):
                self.dispatch(end, 1)
        finally:
            self.out, self.segmented = saved, False
        return out

    def packet(self, blocks: Sequence[Block]) -> bool:
        """Whether ``blocks`` load a packet pointer (or ``len``) from the context, so that
        their accesses index the packet region: then the region is the local ``PK``, read
        at entry and again after each call that may run programs (``BlockGen.rebind``)."""
        pointers = self.pointers
        return bool(pointers) and any(
            isinstance(op, CtxLoad) and op.size == 4 and op.offset in pointers
            for blk in blocks for op in blk.ops)

    def ldimm64(self, op: LdImm64) -> int:
        """The value LD_IMM64 ``op`` loads."""
        if self.resolved is not None:
            return self.resolved[op.pc]
        assert self.vm is not None
        return self.vm.resolve_ldimm64(self.program, op)

    def check_call(self, op: Call) -> None:
        """The load-time check of a call (made by the caller when it resolved the program)."""
        if self.vm is not None:
            self.vm.check_call(op)

    def ret(self, value: str) -> str:
        """The statement that ends the subprogram with r0 = ``value``."""
        return f"return -1, {value}, *Z" if self.segmented else f"return {value}"

    # -- one subprogram ----------------------------------------------------------------
    def subprog(self, start: int, end: int) -> None:
        blocks = self.blocks = blocks_of(self.ops, start, end)
        liveness(blocks, self.use_defs)
        writes_fp = any(self.use_defs[op.pc][1] >> 10 & 1 for blk in blocks for op in blk.ops)
        self.gen = BlockGen(self, not writes_fp)
        self.gen.temps = 0
        self.edges = {}
        self.heads = {0} | {s for blk in blocks for s in blk.succs() if s < blk.index}
        split = 0 < SPLIT < end - start
        if split:
            self.heads |= cuts(blocks, SPLIT)
        self.emit = False
        while True:
            self.dispatched = set()
            self.segments(0)
            new = self.dispatched - self.heads
            if not new:
                break
            self.heads |= new
        if split:
            self.driver(start)
            return
        self.emit = True
        out = self.out
        out.put(0, f"def sub_{start}(r1, r2, r3, r4, r5, depth):")
        init = [f"r{r}" for r in (0, 6, 7, 8, 9) if blocks[0].live_in >> r & 1]
        if init:
            out.put(1, " = ".join(init) + " = 0")
        out.put(1, "r10 = TOP[depth]")
        top = len(out.lines)
        self.body(blocks)
        # r10 unread (stack accesses go through S): its line is left blank (line numbers
        # stay those of the line table)
        if not any(_R10.search(line) for line in out.lines[top:]) and not any(
                _R10.search(count) or _R10.search(base or "")
                for line, (_, base, count) in out.info.items() if line > top):
            out.lines[top - 1] = ""

    def body(self, blocks: list[Block]) -> None:
        """The rest of a subprogram's function, after its ``r10 = TOP[depth]`` line."""
        out = self.out
        if self.gen.frame:
            out.put(1, "S = G[depth + 1]")
        self.gen.packet = self.packet(blocks)
        if self.gen.packet:
            out.put(1, f"PK = G[{MEM_RID}]")
        out.put(1, "n = C[0]")
        if not self.dispatched:
            self.walk(0, len(blocks), None, 1)
            return
        out.put(1, "b = 0")
        if cyclic(blocks):
            out.put(1, "while True:")
            out.put(2, "if n > BUDGET: raise OVER(b)")
        else:
            # Without a cycle between blocks the dispatcher runs at most once per block,
            # and the budget is checked before everything observable anyway.
            order = region_order(blocks, self.heads) if len(self.heads) <= _FLAT else None
            if order is not None:
                self.flat(order, 1)
                return
            out.put(1, "while True:")
        self.segments(2)

    def flat(self, order: list[int], ind: int) -> None:
        """An acyclic subprogram's regions (the blocks from one dispatch head to the next)
        in the topological ``order``, each run if ``b`` (its position in that order) names
        it: a dispatch is ``b = <position>`` and a ``break`` out of its region's one-pass
        ``while``, so it only goes forward.  Regions come in groups of ``_GROUP`` behind
        one ``if b < <end of group>`` test, so a run passes over a group it skips with one
        test (``b`` never names a region already passed)."""
        blocks, heads = self.blocks, sorted(self.heads)
        ends = dict(zip(heads, [*heads[1:], len(blocks)], strict=True))
        self.flat_pos = {h: k for k, h in enumerate(order)}
        self.flat_ends, self.flat_used = ends, {0}
        self.inline_left = min(_INLINE_TOTAL, 3 * sum(len(blk.ops) for blk in blocks))
        put = self.out.put
        self.flat_mode = True
        group = -1
        try:
            for k, h in enumerate(order):
                if k not in self.flat_used:
                    continue          # entered only where it was copied (see inline())
                at = ind
                if k >= _GROUP and len(order) - k // _GROUP * _GROUP > 1:
                    at += 1
                    if k // _GROUP != group:
                        group = k // _GROUP
                        put(ind, f"if b < {min((group + 1) * _GROUP, len(order))}:")
                body = at + 1
                if k:
                    put(at, f"if b == {k}:")
                    body += 1
                put(body - 1, "while True:")
                end = ends[h]
                self.inline_pos = k
                if self.walk(h, end, end, body) and end < len(blocks):
                    self.dispatch(end, body)
                put(body, "break")
        finally:
            self.flat_mode = False

    def inline(self, target: int, ind: int) -> bool:
        """Flat mode: emit the region headed by ``target`` here instead of dispatching to
        it (tail duplication), when it is small and the copies so far leave room.  Its
        first block starts from the facts of the edge that leads to this copy; the facts
        of edges its blocks record are joined with those of other copies (``record``)."""
        end = self.flat_ends.get(target)
        pos = self.flat_pos[target]
        if end is None or ind > _INLINE_IND or pos <= self.inline_pos:
            return False
        size = sum(len(blk.ops) for blk in self.blocks[target:end])
        if size > _INLINE_REGION or size > self.inline_left:
            return False
        self.inline_left -= size
        source, outer = self.source_block, self.inline_pos
        facts = self.edges.get((source, target))
        self.inline_pos = pos
        try:
            if self.walk(target, end, end, ind, facts=facts) and end < len(self.blocks):
                self.dispatch(end, ind)
        finally:
            self.source_block, self.inline_pos = source, outer
            self.chain = None
        return True

    def driver(self, start: int) -> None:
        """A segmented subprogram's function: call segments until one exits."""
        heads = sorted(self.heads)
        plan = _Plan(self.blocks, heads, self.gen.frame)
        for k, head in enumerate(heads):
            self.plans[self.blocks[head].start] = (plan, k)
        put = self.out.put
        put(0, f"def sub_{start}(r1, r2, r3, r4, r5, depth):")
        put(1, "r0 = r6 = r7 = r8 = r9 = 0")
        put(1, "r10 = TOP[depth]")
        put(1, "n = C[0]")
        put(1, f"b = {start}")
        put(1, "while True:")
        put(2, f"b, {_REGS}, n = SEG[b]({_SEG_ARGS})")
        put(2, "if b < 0: return r0")
        put(2, "if n > BUDGET: raise OVER(b)")

    def segments(self, ind: int) -> None:
        """Walk (dry or emitting) every segment: the blocks from one dispatch head to the
        next.  Planning with the entry as the only head walks everything as one range."""
        if not self.emit and len(self.heads) == 1:
            self.walk(0, len(self.blocks), None, ind)
            return
        heads = sorted(self.heads)
        self.tree(heads, [*heads[1:], len(self.blocks)], ind)

    def tree(self, heads: list[int], ends: list[int], ind: int) -> None:
        emit, put = self.emit, self.out.put
        if len(heads) <= _LEAF:
            for k, head in enumerate(heads):
                if emit:
                    put(ind, f"if b == {head}:")
                end = ends[k]
                falls = self.walk(head, end, end, ind + 1)
                if falls and end < len(self.blocks):
                    self.dispatched.add(end)
                    if emit:
                        put(ind + 1, f"b = {end}")
                        if k + 1 == len(heads):
                            put(ind + 1, "continue")
            return
        mid = len(heads) // 2
        if emit:
            put(ind, f"if b < {heads[mid]}:")
        self.tree(heads[:mid], ends[:mid], ind + 1)
        if emit:
            put(ind, "else:")
        self.tree(heads[mid:], ends[mid:], ind + 1)

    # -- structure ---------------------------------------------------------------------
    def closed(self, lo: int, hi: int, entry: int, exit_: int) -> bool:
        """Blocks [lo, hi) are entered only from ``entry`` (or each other) and leave only
        to ``exit_`` (or each other, or by returning)."""
        heads = self.heads
        for blk in self.blocks[lo:hi]:
            if blk.index in heads:
                return False
            for p in blk.preds:
                if p != entry and not lo <= p < hi:
                    return False
            for s in (blk.jump, blk.fall):
                if s is not None and s != exit_ and not lo <= s < hi:
                    return False
        return True

    def dispatch(self, target: int, ind: int) -> None:
        self.chain = None
        blk = self.blocks[target]
        if len(blk.ops) <= _DUP_EXIT and isinstance(blk.tail, Exit):
            # A small exit block is emitted again here rather than dispatched to (tail
            # duplication: the usual ``goto drop``/``goto out`` of a packet parser).
            if self.emit:
                self.block(blk, ind, self.edges.get((self.source_block, target)))
            return
        self.dispatched.add(target)
        if not self.emit:
            return
        if self.segmented:
            self.out.put(ind, f"return {self.blocks[target].start}, {_REGS}, n")
            return
        if self.flat_mode:
            if self.inline(target, ind):
                return
            self.flat_used.add(self.flat_pos[target])
            self.out.put(ind, f"b = {self.flat_pos[target]}")
            self.out.put(ind, "break")
            return
        self.out.put(ind, f"b = {target}")
        self.out.put(ind, "continue")

    def walk(self, i: int, j: int, cont: int | None, ind: int, nest: int = 0,
             facts: State | None = None) -> bool:
        """Emit blocks [i, j) where falling off the end continues at block ``cont``
        (``nest``: how many structured ifs enclose them; ``facts``: block i's entry
        facts when only one edge leads to this copy of it).

        Returns whether control may fall off the end.
        """
        try:
            return self._walk(i, j, cont, ind, nest, facts)
        finally:
            self.chain = None

    def _walk(self, i: int, j: int, cont: int | None, ind: int, nest: int,
              facts: State | None) -> bool:
        blocks = self.blocks
        m = i
        while m < j:
            blk = blocks[m]
            tail = blk.tail
            if self.emit:
                self.block(blk, ind, facts if m == i else None)
            if isinstance(tail, Exit) or (blk.self_loop and blk.fall is None):
                m += 1
                if m == j:
                    return False      # the range ends with a block that never falls off
                continue
            if isinstance(tail, Jump) and not blk.self_loop:
                t = blk.jump
                assert t is not None
                if tail.cond is None:
                    if t == m + 1 and m + 1 < j:
                        m += 1
                        continue
                    if m == j - 1 and t == cont:
                        return True
                    self.dispatch(t, ind)
                    m += 1
                    if m == j:
                        return False  # the range ends with a jump elsewhere
                    continue
                if t == m + 1:        # both edges lead to m + 1: only a read may matter
                    if self.emit:
                        text, info = self.gen.cond(tail)
                        if info is not None:
                            self.out.put(ind, text, info)
                else:
                    done = self.branch(m, t, j, cont, ind, nest)
                    if done is not None:
                        self.chain = None
                        if done >= j:
                            # falls off out of nested ifs: more than one edge may lead
                            # on, so no single edge's facts hold where it goes (dispatch)
                            self.source_block = -1
                            return True
                        m = done
                        continue
            # fall through to m + 1
            if m + 1 < j:
                m += 1
                continue
            if m + 1 == cont:
                return True
            self.dispatch(m + 1, ind)
            return False
        return True

    def branch(self, m: int, t: int, j: int, cont: int | None, ind: int, nest: int,
               ) -> int | None:
        """A conditional jump from block m to t: nest it if possible.

        Returns the block where emission continues (>= j: the range is done), or None when
        the jump dispatches and control falls through to m + 1.
        """
        blocks = self.blocks
        tail = blocks[m].tail
        assert isinstance(tail, Jump)
        chain, self.chain = self.chain, None
        if nest >= _MAX_NEST:
            pass
        elif m < t < j:
            last = blocks[t - 1].tail
            if isinstance(last, Jump) and last.cond is None and t - 1 != m:
                join_ = blocks[t - 1].jump
                assert join_ is not None
                if t < join_ < j or join_ == cont:
                    e_end = join_ if join_ < j else j
                    if self.closed(m + 1, t, m, join_) and self.closed(t, e_end, m, join_):
                        self.nest(m, tail, ind, True)
                        self.walk(m + 1, t, join_, ind + 1, nest + 1)
                        if self.emit:
                            self.out.put(ind, "else:")
                        self.walk(t, e_end, join_ if e_end == join_ else cont, ind + 1,
                                  nest + 1)
                        return join_ if join_ < j else j
            if self.closed(m + 1, t, m, t):
                self.nest(m, tail, ind, True)
                self.walk(m + 1, t, t, ind + 1, nest + 1)
                return t
        elif t == cont and m + 1 < j and self.closed(m + 1, j, m, t):
            self.nest(m, tail, ind, True)
            self.walk(m + 1, j, cont, ind + 1, nest + 1)
            return j
        self.nest(m, tail, ind, False)
        at = len(self.out.lines) - 1
        self.dispatch(t, ind + 1)
        # A forward exit takes back what comes after it (a backward one is likely a loop's
        # hot edge: there the chain ends, so that edge pays nothing).
        if chain is not None and self.emit and t > m and not any(
                line in self.out.info for line in range(at + 2, len(self.out.lines) + 1)):
            chain.pending = (at, ind + 1)
            self.chain = chain
        return None

    def nest(self, m: int, tail: Jump, ind: int, negate: bool) -> None:
        if self.emit:
            text, info = self.gen.cond(tail, negate)
            self.out.put(ind, f"if {text}:", info)

    # -- blocks ------------------------------------------------------------------------
    def entry_facts(self, blk: Block) -> State:
        facts: State | None = None
        for p in blk.preds:
            if p == blk.index:
                continue
            edge = self.edges.get((p, blk.index))
            if edge is None:          # a backward edge (or not emitted): no facts
                return top_state()
            facts = edge if facts is None else join(facts, edge)
        return facts if facts is not None else top_state()

    def block(self, blk: Block, ind: int, facts: State | None = None) -> None:
        """Emit ``blk`` (``facts``: its entry facts when only one edge leads to this copy)."""
        gen, out = self.gen, self.out
        if facts is None:
            facts = self.entry_facts(blk)
        self.source_block = blk.index
        tail = blk.tail
        ends = isinstance(tail, Jump | Exit)
        body = blk.ops[:-1] if ends else blk.ops
        chain, self.chain = self.chain, None
        if blk.self_loop:
            assert isinstance(tail, Jump)
            loop(self, blk, body, tail, facts, ind)
            return
        gen.count = gen._count
        gen.start(out, ind, blk.ops, facts, blk.live_out)
        # A block entered only by falling out of the previous one, where nothing reads n
        # but fault reports, adds its length to the previous block's ``n += ...`` instead
        # of a line of its own; a branch that left in between takes it back.
        if (chain is not None and chain.expect == (blk.index, ind)
                and blk.preds == [blk.index - 1] and _plain(blk)):
            self.out.grow(chain, len(blk.ops))
        else:
            chain = None
            count_line = len(out.lines)
            out.put(ind, f"n += {len(blk.ops)}")
        i = 0
        while i < len(body):
            i += gen.op(body[i], i)
        gen.finish()
        if isinstance(tail, Exit):
            gen.exit(tail, len(blk.ops) - 1)
            return
        self.record(blk, gen.st, tail if isinstance(tail, Jump) else None)
        nxt = blk.index + 1
        if blk.fall == nxt and len(self.blocks[nxt].preds) == 1 and (
                chain is not None or _plain(blk)):
            if chain is None:
                chain = Chain(count_line, len(blk.ops), [], (0, 0))
            chain.expect, chain.pending = (nxt, ind), None
            self.chain = chain

    def record(self, blk: Block, st: State, tail: Jump | None) -> None:
        if tail is None or tail.cond is None:
            for s in (blk.fall, blk.jump):
                if s is not None:
                    self.edge((blk.index, s), st)
            return
        if blk.jump is not None:
            self.edge((blk.index, blk.jump), refine(st, tail, True))
        if blk.fall is not None:
            fall = refine(st, tail, False)
            key = (blk.index, blk.fall)
            if blk.fall == blk.jump:
                self.edges[key] = join(fall, self.edges[key])
            else:
                self.edge(key, fall)

    def edge(self, key: tuple[int, int], st: State) -> None:
        """The facts of an edge; in flat mode a block may be emitted more than once
        (copied regions), so an edge holds the join of what every copy recorded."""
        old = self.edges.get(key) if self.flat_mode else None
        self.edges[key] = st if old is None else join(old, st)
