"""Straight-line code of one basic block: expressions, forwarding, masks, memory accesses.

Each op becomes an expression from the shared templates of :mod:`tcemu.bpf.semantics`.
The generator keeps, per register, either "the Python local ``rN`` holds the value" or a
*pending* expression not yet stored: a value read once later in the block is pasted into
its reader instead of being stored, a value nobody reads is not computed at all (unless it
is a memory read, which must still fault), constants and copies are pasted into any number
of readers.  A pending expression reads locals; before such a local is overwritten the
expression is stored (into its own register, or into a temporary).

The packet region is the local ``PK`` when the subprogram loads packet pointers from the
context, and a map helper whose map is a constant calls the map's method directly (see
:mod:`.direct`).

Invariants that keep fault reports exact (see :class:`~tcemu.bpf.jit.out.Out`):

* a statement contains at most one memory access, and the line of that statement records
  the access's slot, how to recompute its base register, and the instruction count;
* a memory read is only pasted into the very next op, and only if that op is pure (ALU,
  byte swap, a branch condition), so no side effect or other fault moves across it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.jit.direct import method_name
from tcemu.bpf.jit.facts import TOP, Range, State, alu_ranges, transfer
from tcemu.bpf.jit.group import Group, joinable, member
from tcemu.bpf.jit.out import LineInfo, Out
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
from tcemu.bpf.semantics import atomic_body
from tcemu.bpf.uapi import BpfFunc

BPF_FUNC_TAIL_CALL = BpfFunc.tail_call

if TYPE_CHECKING:
    from tcemu.bpf.jit.translate import Translator

__all__ = ["M32S", "M64S", "BlockGen", "Val"]

M64S = "0xFFFFFFFFFFFFFFFF"
M32S = "0xFFFFFFFF"
_MAX_SIZE = 6                  # ops folded into one pending expression
_MOVES = (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32)
_ring_template = cache(sem.ring_template)
_OLD = re.compile(r"\bold\b")
_PACKET = f"G[{mem.MEM_RID}]"


def ctx_load_expr(pointers: Mapping[int, str], offset: int, size: int) -> str:
    """What a context load becomes: computed inline when it follows from the packet
    (``data`` is the packet region's base address, ``data_end`` that plus the region's
    length, ``len`` the length, as ``SkbContext.load`` computes them), anything else a call
    of the model's load."""
    kind = pointers.get(offset) if size == 4 else None
    if kind is None:
        return f"CTXLD({offset}, {size})"
    base = mem.addr(mem.MEM_RID)
    if kind == "len":
        return f"len(G[{mem.MEM_RID}])"
    return f"{base} + len(G[{mem.MEM_RID}])" if kind == "data_end" else str(base)


def ctx_load_range(pointers: Mapping[int, str], offset: int, size: int) -> Range | None:
    """The range of a context load computed inline: ``data`` is the packet region's base
    address, ``data_end`` lies in that region and ``len`` is below 4 GiB (a region is
    shorter than that)."""
    kind = pointers.get(offset) if size == 4 else None
    if kind is None:
        return None
    base = mem.addr(mem.MEM_RID)
    if kind == "len":
        return (0, sem.M32)
    return (base, base + sem.M32) if kind == "data_end" else (base, base)


@dataclass(slots=True, eq=False)
class Val:
    """A register's value that is not (yet) in its local."""

    expr: str                  # evaluates to the canonical value; atomic or parenthesised
    refs: int                  # the register locals ``expr`` reads (bit set)
    cheap: bool = False        # a literal or a bare name: may be pasted any number of times
    raw: str | None = None     # congruent to the value modulo 2**raw_bits (no final mask)
    raw_bits: int = 64
    mem: LineInfo | None = None  # set when evaluating ``expr`` reads memory (may fault)
    size: int = 1
    uses: int = 0              # reads still to come in this block
    live: bool = False         # must be stored in its local by the end of the block
    addr: Addr | None = None   # in a counted loop: base + bounded index (see Fast)


Addr = tuple[int, str, int, int]
"""(loop-invariant base register B, index expression, lowest, highest index): the value is
``(rB + index) & M64`` and, once the loop entry has checked that ``rB``'s offset plus any
such index stays in its region, the access is ``_gB[_oB + index]``."""


@dataclass(slots=True)
class Fast:
    """How the body of a counted loop is specialised (``Translator.counted``)."""

    var: int                   # the induction register: the Python loop variable
    at: int                    # index in the block of the op that steps it (not emitted)
    step: int                  # +1 or -1
    bases: int                 # registers the loop never writes (bit set)
    need: dict[int, tuple[int, int]]  # base register -> index range its accesses use


_FRAME_POINTERS = (mem.stack_top(0), mem.stack_top(mem.MAX_CALL_FRAMES - 1))
_LOCAL = [Val(f"r{n}", 1 << n, cheap=True) for n in range(11)]
_DEAD = Val("<dead>", 0)       # a value nobody reads any more (its text must never appear)


@cache
def _template(op: AluOp, is64: bool, const: int | None) -> tuple[str, int, int]:
    """The template with literal masks, and how often it pastes {a}/{a32} and {b}/{w}."""
    text = sem.alu_template(op, is64, const).replace("M64", M64S).replace("M32", M32S)
    return text, text.count("{a}") + text.count("{a32}"), text.count("{b}") + text.count("{w}")


@cache
def _wrapped(template: str) -> bool:
    """Whether ``template`` is one parenthesised expression (its first "(" closes last)."""
    depth = 0
    for k, ch in enumerate(template):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return k == len(template) - 1
    return False


@cache
def _cond_views(is64: bool, signed: bool) -> tuple[str, Callable[[int], int]]:
    view, imm = sem.operand_views(is64, signed)
    return view.replace("M64", M64S).replace("M32", M32S), imm


def _simple(text: str) -> bool:
    return text.isidentifier() or text.isdigit()


def _name(expr: str) -> str:
    """What names the value of ``expr`` after it ran: ``(x := ...)`` is ``x``; anything
    else (a name, a constant, ``S``, ``PK``, ``G[k]``, ``o0 + 8``) is pasted again."""
    if expr[0] == "(" and " := " in expr:
        name = expr[1:expr.index(" := ")]
        if name.isidentifier():
            return name
    return expr


def _bare(expr: str) -> str:
    """A value's expression without its outer parentheses, for a place that needs none
    (the right side of an assignment, an argument): ``Val.expr`` is atomic or wrapped in
    one pair, and each redundant pair costs ``compile()`` about 2 us."""
    return expr[1:-1] if expr[0] == "(" else expr


def _assign(name: str, expr: str) -> str:
    """``name = expr``; a load's ``U4(...)[0]`` becomes ``name, = U4(...)`` (compiles
    ~8% faster, runs as fast: a statement holds at most one memory access, so a text that
    starts with the call and ends with its ``[0]`` is that one call)."""
    if expr[-1] == "]" and expr[-4:] == ")[0]" and expr[0] in "UB" and expr[2] == "(":
        return f"{name}, = {expr[:-3]}"
    return f"{name} = {expr[1:-1] if expr[0] == '(' else expr}"


class BlockGen:
    """Emits the body of blocks of one subprogram (one instance per subprogram)."""

    def __init__(self, tr: Translator, frame: bool) -> None:
        self.tr = tr
        self.frame = frame        # r10 is never written: stack accesses use S directly
        self.packet = False       # the packet region is the local PK (see Translator)
        self.temps = 0
        self.out = Out()
        self.ind = 0
        self.st: State = []
        self.vals: list[Val | None] = [None] * 11
        self.def_uses: list[int] = []
        self.def_live: list[bool] = []
        self.size = 0
        self.ops: list[Op] = []
        self.fast: Fast | None = None
        self.count: Callable[[int], str] = self._count
        # per register: its value is r10 + this (known in this block), else None
        self.fp: list[int | None] = [None] * 11
        # per register: (op index, offset) of this block's last store or atomic through
        # it with a region of its own (g<reg>, o<reg>), see _hoisted
        self.hoists: dict[int, tuple[int, int]] = {}
        # the last zero store into the frame: (lines, its line number, indentation, range)
        self.zeros: tuple[list[str], int, int, int, int] | None = None
        self.group: Group | None = None      # writes through one base, merged (.group)

    # -- bookkeeping ---------------------------------------------------------------------
    def _count(self, i: int) -> str:
        rem = self.size - 1 - i
        return f"n - {rem}" if rem else "n"

    def start(self, out: Out, ind: int, ops: list[Op], facts: State, live_out: int) -> None:
        """Prepare for the ops of one block: use counts of every definition."""
        self.out, self.ind, self.st, self.size = out, ind, list(facts), len(ops)
        if self.frame:            # r10 is never written: it is the top of some frame
            self.st[10] = _FRAME_POINTERS
        self.ops = ops
        self.vals = [None] * 11
        self.fp = [None] * 11
        self.fp[10] = 0 if self.frame else None
        self.hoists = {}
        self.group = None
        uses = [0] * 11
        later = 0                 # registers defined later in the block
        use_def = self.tr.use_defs
        n = len(ops)
        def_uses = [0] * n
        def_live = [False] * n
        for i in range(n - 1, -1, -1):
            use, dfn = use_def[ops[i].pc]
            if dfn:                   # every op writes at most one register
                d = dfn.bit_length() - 1
                def_uses[i] = uses[d]
                def_live[i] = not later >> d & 1 and bool(live_out >> d & 1)
                uses[d] = 0
                later |= dfn
            while use:
                low = use & -use
                uses[low.bit_length() - 1] += 1
                use ^= low
        self.def_uses, self.def_live = def_uses, def_live

    def get(self, r: int) -> Val:
        """Read register ``r`` once (every op reads each register it uses exactly once)."""
        v = self.vals[r]
        if v is None:
            return _LOCAL[r]
        assert v is not _DEAD, f"read of a dead value of r{r}"
        v.uses -= 1
        if v.uses <= 0 and not v.live:
            self.vals[r] = _DEAD
        return v

    def temp(self, v: Val) -> str:
        name = f"_t{self.temps}"
        self.temps += 1
        self.out.put(self.ind, _assign(name, v.expr), v.mem)
        return name

    def write_local(self, x: int, expr: str, refs: int, info: LineInfo | None) -> None:
        """Emit ``rX = expr``, first saving pending values that read the old ``rX``."""
        bit = 1 << x
        vals = self.vals
        for y in range(11):
            p = vals[y]
            if p is None or p is _DEAD or y == x or not p.refs & bit:
                continue
            # Can p go to its own local now?  Only if nothing pending (nor expr) reads rY.
            ybit = 1 << y
            blocked = refs & ybit or any(
                q is not None and q is not _DEAD and q is not p and q.refs & ybit
                for q in vals)
            if blocked:
                name = self.temp(p)
                p.expr, p.refs, p.raw, p.cheap, p.mem, p.addr = name, 0, None, True, None, None
            else:
                self.out.put(self.ind, _assign(f"r{y}", p.expr), p.mem)
                vals[y] = None
        self.out.put(self.ind, _assign(f"r{x}", expr), info)

    def define(self, d: int, v: Val, i: int) -> None:
        """Register ``d`` gets value ``v`` (op index ``i`` in the block)."""
        uses, live = self.def_uses[i], self.def_live[i]
        if uses == 0 and not live:
            if v.mem is not None:      # nobody reads it, but the access must still fault
                self.out.put(self.ind, _bare(v.expr), v.mem)
            self.vals[d] = _DEAD
            return
        v.uses, v.live = uses, live
        pend = v.cheap or (uses == 1 and not live and v.size <= _MAX_SIZE)
        if pend and v.mem is not None:
            pend = uses == 1 and not live and self._pure_reader(i, d)
        if pend:
            self.vals[d] = v
        else:
            self.write_local(d, v.expr, v.refs, v.mem)
            self.vals[d] = None

    def _pure_reader(self, i: int, d: int) -> bool:
        ops = self.ops
        if i + 1 >= len(ops):
            return False
        nxt = ops[i + 1]
        return (isinstance(nxt, Alu | Endian) or (isinstance(nxt, Jump) and nxt.cond is not None)
                ) and bool(self.tr.use_defs[nxt.pc][0] >> d & 1)

    def local(self, r: int) -> None:
        """Read ``r`` once and make sure its value is in the local ``rR``."""
        v = self.get(r)
        if v is not _LOCAL[r]:
            self.write_local(r, v.expr, v.refs, v.mem)
            self.vals[r] = None

    def clobber(self, r: int) -> None:
        """The local ``rR`` is about to be written by a statement we emit ourselves."""
        bit = 1 << r
        for y in range(11):
            p = self.vals[y]
            if p is not None and p is not _DEAD and y != r and p.refs & bit:
                name = self.temp(p)
                p.expr, p.refs, p.raw, p.cheap, p.mem, p.addr = name, 0, None, True, None, None

    def finish(self) -> None:
        """Store the pending values the successors read."""
        self.flush()
        for r in range(11):
            p = self.vals[r]
            if p is not None and p is not _DEAD and p.live:
                self.vals[r] = None
                self.write_local(r, p.expr, p.refs, p.mem)

    # -- ops ---------------------------------------------------------------------------
    def op(self, op: Op, i: int) -> int:
        """Emit op ``i`` of the block; returns how many ops it consumed (2 when fused)."""
        fp = self.fp
        d = -1
        new: int | None = None
        dfn = self.tr.use_defs[op.pc][1]
        if dfn:
            d = dfn.bit_length() - 1
            if isinstance(op, Alu) and op.is64 and (self.fast is None or i != self.fast.at):
                if op.op is AluOp.MOV and op.src is not None:
                    new = fp[op.src]
                elif op.op in (AluOp.ADD, AluOp.SUB) and op.src is None:
                    base = fp[d]
                    imm = sem.alu_operand(True, op.imm)
                    imm = imm - (1 << 64) if imm >> 63 else imm
                    if base is not None:
                        new = base + (imm if op.op is AluOp.ADD else -imm)
        used = self._op(op, i)
        if d >= 0:
            fp[d] = None if used > 1 else new
        return used

    def _op(self, op: Op, i: int) -> int:
        group = self.group
        if group is not None and not (joinable(op) and op.dst == group.base) and (
                not self._pure(op) or self.tr.use_defs[op.pc][1] & (group.refs | 1 << group.base)):
            self.flush()
        fast = self.fast
        if fast is not None and i == fast.at:
            # The induction step is the loop itself: later reads see ``var + step``.
            v = fast.var
            uses = self.def_uses[i] - 1          # the loop test is not emitted
            if uses > 0:
                self.vals[v] = Val(f"(r{v} {'+' if fast.step > 0 else '-'} 1)", 1 << v,
                                   cheap=True, uses=uses)
            else:
                self.vals[v] = _DEAD
            transfer(self.st, op)
            return 1
        if isinstance(op, Alu):
            self.alu(op, i)
            return 1
        if isinstance(op, Load):
            ops = self.ops
            nxt = ops[i + 1] if i + 1 < len(ops) else None
            if (isinstance(nxt, Endian) and nxt.kind != "le" and nxt.dst == op.dst
                    and nxt.bits == 8 * op.size and op.size > 1 and not op.signed):
                self.load(op, i + 1, big=True)
                transfer(self.st, nxt)
                return 2
            self.load(op, i)
        elif isinstance(op, Store):
            if not self._join(op, i):
                self.store(op, i)
        elif isinstance(op, Endian):
            self.endian(op, i)
        elif isinstance(op, LdImm64):
            value = self.tr.ldimm64(op)
            self.define(op.dst, Val(str(value), 0, cheap=True), i)
            self.st[op.dst] = (value, value)
            return 1
        elif isinstance(op, Atomic):
            if not self._join(op, i):
                self.atomic(op, i)
        elif isinstance(op, Call):
            self.call(op, i)
        elif isinstance(op, CallX):
            self.callx(op, i)
        elif isinstance(op, LdPacket):
            self.ld_packet(op, i)
        elif isinstance(op, CtxLoad):
            fact = ctx_load_range(self.tr.pointers, op.offset, op.size)
            if fact is not None and fact[0] == fact[1]:     # ``data``: a constant
                self.define(op.dst, Val(str(fact[0]), 0, cheap=True), i)
            else:
                self.clobber(op.dst)
                expr = ctx_load_expr(self.tr.pointers, op.offset, op.size)
                if self.packet:
                    expr = expr.replace(_PACKET, "PK")
                self.out.put(self.ind, f"r{op.dst} = {expr}", (op.pc, None, self.count(i)))
                self.vals[op.dst] = None
            self.st[op.dst] = fact or TOP
            return 1
        elif isinstance(op, CtxStore):
            stored = str(op.imm) if op.src is None else self.get(op.src).expr
            self.out.put(self.ind, f"CTXST({op.offset}, {op.size}, {stored})",
                         (op.pc, None, self.count(i)))
            self.rebind(False)
        transfer(self.st, op)
        return 1

    def alu(self, op: Alu, i: int) -> None:
        kind, is64, d = op.op, op.is64, op.dst
        bits, maskv, mask = (64, sem.M64, M64S) if is64 else (32, sem.M32, M32S)
        a_rng = self.st[d]
        s_rng = None if op.src is None else self.st[op.src]
        raw_rng, res = alu_ranges(op, a_rng, s_rng)
        a = None if kind in _MOVES else self.get(d)
        if op.src is None:
            b = None
        elif op.src == d and a is not None:
            if not a.cheap:            # pasted twice: evaluate once
                a = Val(self.temp(a), 0, cheap=True)
            b = a
        else:
            b = self.get(op.src)
        const = sem.alu_operand(is64, op.imm) if op.src is None else None
        refs = (0 if a is None else a.refs) | (0 if b is None else b.refs)
        memi = (None if a is None else a.mem) or (None if b is None else b.mem)
        size = 1 + (0 if a is None or a.cheap else a.size) + (0 if b is None or b.cheap else b.size)
        if raw_rng is not None:
            assert a is not None
            keep = raw_rng[0] < 0 or raw_rng[1] > maskv
            at = a.raw if keep and a.raw is not None and a.raw_bits >= bits else a.expr
            if b is None:
                wt = str(const)
            else:
                wt = b.raw if keep and b.raw is not None and b.raw_bits >= bits else b.expr
            if b is None and (kind is AluOp.ADD or kind is AluOp.SUB):
                # the signed immediate (as facts.alu_ranges has it): r1 - 8, whose mask
                # the ranges can drop, rather than r1 + 18446744073709551608
                assert const is not None
                signed = const - (1 << bits) if const >> (bits - 1) else const
                if (kind is AluOp.ADD) == (signed >= 0):
                    raw = f"({at} + {abs(signed)})"
                else:
                    raw = f"({at} - {abs(signed)})"
            else:
                raw = "(" + _ring_template(kind, is64, const).format(a=at, w=wt) + ")"
            # +, -, *, << and & bind at least as tightly as the mask's &
            inner = raw[1:-1] if kind not in (AluOp.OR, AluOp.XOR) else raw
            expr = f"({inner} & {mask})" if keep else raw
            v = Val(expr, refs, raw=raw if keep else None, raw_bits=bits, mem=memi, size=size)
            if self.fast is not None and kind is AluOp.ADD and is64:
                v.addr = self._index(op, a, b, a_rng, s_rng, const)
        elif kind is AluOp.MOV and (op.src is None or is64 or (s_rng is not None
                                    and s_rng[1] <= sem.M32)):
            if b is None:
                v = Val(str(const), 0, cheap=True)
            else:
                v = Val(b.expr, b.refs, b.cheap, b.raw, b.raw_bits, b.mem, b.size,
                        addr=self._base(b, op.src) if is64 else None)
        else:
            text, a_n, b_n = _template(kind, is64, const)
            at = ""
            if a is not None:
                at = a.expr if a_n < 2 or a.cheap else self.temp(a)
            bt = wt = str(const)
            if b is not None:
                wt = b.expr if b_n < 2 or b.cheap else self.temp(b)
                narrow = is64 or (s_rng is not None and s_rng[1] <= sem.M32)
                bt = wt if narrow else f"({wt} & {M32S})"
            a32 = at if a_rng[1] <= sem.M32 else f"({at} & {M32S})"
            expr = text.format(a=at, a32=a32, b=bt, w=wt)
            if not (_simple(expr) or _wrapped(text)):
                expr = f"({expr})"
            v = Val(expr, refs, mem=memi, size=size)
        self.define(d, v, i)
        self.st[d] = res

    def endian(self, op: Endian, i: int) -> None:
        a = self.get(op.dst)
        rng = self.st[op.dst]
        if op.kind == "le" and (op.bits == 64 or rng[1] < (1 << op.bits)):
            v = Val(a.expr, a.refs, a.cheap, None, 64, a.mem, a.size)
        elif op.kind != "le" and op.bits == 16:
            # bswap16 inline: a call of semantics.bswap (int.to_bytes/from_bytes) is ~4x
            # the cost; the operand is pasted twice, so it must be cheap.
            x = a.expr if a.cheap else self.temp(a)
            v = Val(f"(({x} & 255) << 8 | {x} >> 8 & 255)", a.refs if a.cheap else 0)
        else:
            text = sem.endian_expr(op.kind, op.bits).format(a=a.expr)
            v = Val(f"({text})", a.refs, mem=a.mem, size=1 + (0 if a.cheap else a.size))
        self.define(op.dst, v, i)

    def _base(self, v: Val, reg: int | None) -> Addr | None:
        """``v`` (the value of ``reg``) as base + index, if it is one."""
        fast = self.fast
        if fast is None or reg is None:
            return None
        if v.addr is not None:
            return v.addr
        if v is _LOCAL[reg] and fast.bases >> reg & 1:
            return (reg, "", 0, 0)
        return None

    def _index(self, op: Alu, a: Val, b: Val | None, a_rng: tuple[int, int],
               s_rng: tuple[int, int] | None, const: int | None) -> Addr | None:
        """The address form of ``a + b`` (64-bit) when one side is a base + index and the
        other a bounded value."""
        base = self._base(a, op.dst)
        if b is None:
            assert const is not None
            if base is None:
                return None
            delta = const - (1 << 64) if const >> 63 else const
            return (base[0], f"{base[1]} + {delta}", base[2] + delta, base[3] + delta)
        assert s_rng is not None
        other, rng = b, s_rng
        if base is None:
            base, other, rng = self._base(b, op.src), a, a_rng
        if base is None or rng[1] >= 1 << 32 or other.mem is not None:
            return None
        return (base[0], f"{base[1]} + {other.expr}", base[2] + rng[0], base[3] + rng[1])

    def access(self, base: Val, reg: int, off: int, i: int,
               now: bool = False) -> tuple[str, str]:
        """(region, offset) expressions for the address ``reg + off`` (``now``: for a
        store or an atomic, whose statement is emitted at once, see ``_hoisted``)."""
        if reg == 10 and self.frame and base is _LOCAL[10] and off >= -mem.STACK_SIZE:
            return "S", str(mem.STACK_SIZE + off)
        form = self._base(base, reg)
        if form is not None and not base.mem and self.fast is not None:
            b, index, lo, hi = form
            need = self.fast.need.get(b)
            lo, hi = lo + off, hi + off
            self.fast.need[b] = (lo, hi) if need is None else (min(lo, need[0]), max(hi, need[1]))
            return f"_g{b}", f"_o{b}{index} + {off}" if off else f"_o{b}{index}"
        lo, hi = self.st[reg]
        rid = (lo + off) >> 32
        if lo + off >= 0 and hi + off <= sem.M64 and (hi + off) >> 32 == rid:
            # The facts place every address in one region: index it directly.
            delta = off - (rid << 32)
            region = "PK" if rid == mem.MEM_RID and self.packet else f"G[{rid}]"
            if lo == hi:           # a constant address
                return region, str(lo + delta)
            if delta == 0:
                return region, _bare(base.expr)
            sign = "+" if delta > 0 else "-"
            return region, f"{base.expr} {sign} {abs(delta)}"
        if off == 0:
            addr = _bare(base.expr)
        else:
            addr = f"{base.expr} + {off}"
            if lo + off < 0:
                addr = f"{addr} & {M64S}"
            # Past 2**64 (off > 0) the address would wrap into region 0, which is never
            # mapped; unwrapped, the region index is past the table: a fault either way,
            # and the fault report recomputes the address from the registers.
        if now:
            prev = self._hoisted(reg, off, i)
            if prev is not None:
                return prev
            self.hoists[reg] = (i, off)
        if _simple(addr):
            region, offset = f"G[{addr} >> 32]", f"{addr} & {M32S}"
        else:
            # one statement: the region is evaluated first, then the offset (also in stores)
            region, offset = f"G[(a := {addr}) >> 32]", f"a & {M32S}"
        if now:
            return f"(g{reg} := {region})", f"(o{reg} := {offset})"
        return region, offset

    def _hoisted(self, reg: int, off: int, i: int) -> tuple[str, str] | None:
        """The region and offset a store or atomic through ``reg`` earlier in the block
        found (``g<reg>``, ``o<reg>``), when ``reg`` is unchanged since and ``off`` is at
        most 64 KiB above that access's: that access succeeded, so its offset plus the
        size it accessed is within its region, and (regions being shorter than 2**32 -
        2**16) ``reg + off`` is in the same region, ``off`` minus its offset further: the
        same bytes, and the same fault when they are out of bounds."""
        prev = self.hoists.get(reg)
        if prev is None:
            return None
        j, off0 = prev
        delta = off - off0
        use_def = self.tr.use_defs
        ops = self.ops
        if not 0 <= delta <= 0xFFFF or any(use_def[ops[k].pc][1] >> reg & 1
                                           for k in range(j + 1, i)):
            return None
        return f"g{reg}", f"o{reg} + {delta}" if delta else f"o{reg}"

    def _where(self, base: Val) -> str:
        """The base register's value for the line table: r10 unwritten is ``TOP[depth]``
        (so a function that reads r10 nowhere else need not bind it)."""
        return "TOP[depth]" if base is _LOCAL[10] and self.frame else base.expr

    def load(self, op: Load, i: int, big: bool = False) -> None:
        base = self.get(op.src)
        region, off = self.access(base, op.src, op.off, i)
        if (region == "S" and int(off) + op.size <= mem.STACK_SIZE and not self.def_uses[i]
                and not self.def_live[i]):
            self.vals[op.dst] = _DEAD      # nobody reads it, and it cannot fault
            return
        info = (op.pc, self._where(base), self.count(i - 1 if big else i))
        if op.signed:
            expr = f"(S{op.size}({region}, {off})[0] & {M64S})"
        elif op.size == 1:
            expr = f"{region}[{off}]"
        else:
            expr = f"{'B' if big else 'U'}{op.size}({region}, {off})[0]"
        self.define(op.dst, Val(expr, 0 if region == "S" else base.refs, mem=info), i)

    def store(self, op: Store, i: int) -> None:
        base = self.get(op.dst)
        mask = (1 << (8 * op.size)) - 1
        if op.src is None:
            value = str(op.imm & mask)
        else:
            if op.src == op.dst and not base.cheap:
                base = Val(self.temp(base), 0, cheap=True)
            v = base if op.src == op.dst else self.get(op.src)
            fits = op.size == 8 or self.st[op.src][1] <= mask
            value = _bare(v.expr) if fits else f"{v.expr} & {mask:#x}"
        region, off = self.access(base, op.dst, op.off, i, now=True)
        info = (op.pc, self._where(base), self.count(i))
        if value == "0" and region == "S":
            # zero stores into the frame that follow each other and touch: one
            # ``ZS<n>(S, lo)`` (a struct of n pad bytes; the frame cannot fault)
            lo, hi = int(off), int(off) + op.size
            run = self.zeros
            lines = self.out.lines
            if run is not None and run[0] is lines and run[1] == len(lines) \
                    and run[2] == self.ind and (run[4] == lo or run[3] == hi):
                lo, hi = min(run[3], lo), max(run[4], hi)
                lines[-1] = " " * self.ind + f"ZS{hi - lo}(S, {lo})"
                self.zeros = (lines, len(lines), self.ind, lo, hi)
                return
            self.out.put(self.ind, f"ZS{op.size}(S, {lo})", info)
            self.zeros = (lines, len(lines), self.ind, lo, hi)
            return
        if op.size == 1:
            self.out.put(self.ind, f"{region}[{off}] = {value}", info)
        else:
            self.out.put(self.ind, f"P{op.size}({region}, {off}, {value})", info)

    def atomic(self, op: Atomic, i: int) -> None:
        if op.op != isa.CMPXCHG and not op.fetch and op.src != op.dst:
            self._atomic_store(op, i)
            return
        self.local(op.dst)
        if op.src != op.dst:
            self.local(op.src)
        if op.op == isa.CMPXCHG:
            if 0 not in (op.dst, op.src):
                self.local(0)
            self.clobber(0)
        elif op.fetch:
            self.clobber(op.src)
        body = atomic_body(op, lambda n: f"r{n}")
        body = body.replace("U(", f"U{op.size}(").replace("P(", f"P{op.size}(")
        body = body.replace("M64", M64S).replace("M32", M32S)
        first = f"a = (r{op.dst} + {op.off}) & {M64S}"
        if op.off >= 0 and body.startswith(first):
            # no mask on a positive offset, as in access(); none at all for + 0
            body = (f"a = r{op.dst} + {op.off}" if op.off else f"a = r{op.dst}") \
                + body[len(first):]
        info = (op.pc, f"r{op.dst}", self.count(i))
        for line in body.split("\n"):
            self.out.put(self.ind + len(line) - len(line.lstrip()), line.lstrip(), info)

    # -- groups of writes through one base (see .group) --------------------------------
    def _pure(self, op: Op) -> bool:
        """An op that reads no memory and cannot fault (a group's writes may pass it)."""
        if isinstance(op, CtxLoad):
            return ctx_load_range(self.tr.pointers, op.offset, op.size) is not None
        return isinstance(op, Alu | Endian | LdImm64)

    def _current(self, r: int | None) -> int:
        """The registers the value of ``r`` reads, or -1 when one of them (other than
        ``r``) is pending: its local is to be written later in the block, which only the
        pending values are protected against."""
        if r is None:
            return 0
        v = self.vals[r]
        if v is None:
            return 1 << r
        bits = v.refs & ~(1 << r)
        while bits:
            low = bits & -bits
            p = self.vals[low.bit_length() - 1]
            if p is not None and p is not _DEAD:
                return -1
            bits ^= low
        return v.refs

    def _join(self, op: Store | Atomic, i: int) -> bool:
        """Add ``op`` to the block's group of writes, or open one when another member
        follows; False when ``op`` is to be emitted on its own."""
        group = self.group
        base_refs, src_refs = self._current(op.dst), self._current(op.src)
        if (self.fast is not None or not joinable(op) or self.fp[op.dst] is not None
                or op.dst == 10 or base_refs < 0 or src_refs < 0):
            self.flush()
            return False
        if group is not None and (group.base != op.dst or not group.fits(op.off, op.size)):
            self.flush()
            group = None
        if group is None and not self._followed(op, i):
            return False
        base = self.get(op.dst)
        if isinstance(op, Store):
            mask = (1 << (8 * op.size)) - 1
            if op.src is None:
                value = str(op.imm & mask)
            else:
                v = self.get(op.src)
                fits = op.size == 8 or self.st[op.src][1] <= mask
                value = _bare(v.expr) if fits else f"{v.expr} & {mask:#x}"
        else:
            value = self.get(op.src).expr
        if group is None:
            group = self.group = Group(op.dst, base.expr, base_refs)
        group.refs |= src_refs
        group.members.append(member(op, value, (op.pc, self._where(base), self.count(i))))
        return True

    def _followed(self, op: Store | Atomic, i: int) -> bool:
        """Whether another write through the same base, to other bytes, follows ``op``
        with only pure ops that leave the base alone in between."""
        ops, use_defs = self.ops, self.tr.use_defs
        for j in range(i + 1, len(ops)):
            nxt = ops[j]
            if joinable(nxt) and nxt.dst == op.dst:
                return nxt.off + nxt.size <= op.off or op.off + op.size <= nxt.off
            if not self._pure(nxt) or use_defs[nxt.pc][1] >> op.dst & 1:
                return False
        return False

    def flush(self) -> None:
        """Emit the open group, if any."""
        group = self.group
        if group is not None:
            self.group = None
            group.emit(self.out, self.ind)
            self.hoists.pop(group.base, None)

    def _atomic_store(self, op: Atomic, i: int) -> None:
        """An atomic without a fetch as one statement: ``P(g := <region>, o := <offset>,
        <new>)`` where <new> is ``atomic_body``'s with ``old`` read in place (the same
        order: region, offset, the read, the write), the address formed as ``access``
        forms a store's (so the frame is ``S``, a known region ``G[k]``)."""
        base = self.get(op.dst)
        src = self.get(op.src)
        # src.expr keeps its parentheses: atomic_body puts it next to other operators
        body = atomic_body(op, lambda n: src.expr if n == op.src else f"r{n}")
        last = body.rsplit("\n", 1)[1]
        assert last.startswith("P(g, o, "), body
        assert last.endswith(")"), body
        region, off = self.access(base, op.dst, op.off, i, now=True)
        g_name, o_name = _name(region), _name(off)
        new = _OLD.sub(f"U{op.size}({g_name}, {o_name})[0]", last[len("P(g, o, "):-1])
        new = new.replace("M64", M64S).replace("M32", M32S)
        self.out.put(self.ind, f"P{op.size}({region}, {off}, {new})",
                     (op.pc, self._where(base), self.count(i)))

    def _args(self, extra: int = -1) -> tuple[str, str]:
        """The arguments r1..r5 (each read once), and register ``extra`` if one is named."""
        args = [_bare(self.get(r).expr) for r in range(1, 6)]
        if 1 <= extra <= 5:
            return ", ".join(args), args[extra - 1]
        return ", ".join(args), (_bare(self.get(extra).expr) if extra >= 0 else "")

    def _event(self, i: int, pc: int) -> None:
        """The exact count goes to C[0] before anything that may observe or end the run."""
        self.out.put(self.ind, f"C[0] = {self.count(i)}")
        self.out.put(self.ind, f"if C[0] > BUDGET: raise OVER({pc})")

    def _direct(self, op: Call) -> str | None:
        """A map helper with a constant map as a call of the map's method (see
        :mod:`.direct`), reading r1..r5 once; None when it does not apply."""
        call = self.tr.direct.get(op.imm)
        lo, hi = self.st[1]
        sizes = self.tr.maps.get(lo) if call is not None and lo == hi else None
        if call is None or sizes is None:
            return None
        vals = [self.get(r) for r in range(1, 6)]
        parts = []
        for reg, what in call.reads:
            size = sizes[0] if what == "key" else sizes[1]
            k = self.fp[reg]
            if k is not None and k >= -mem.STACK_SIZE and k + size <= 0:
                # bytes of the frame (K<size>: a struct '<size>s'): in bounds, cannot fault
                parts.append(f"K{size}(S, {mem.STACK_SIZE + k})[0]")
            else:
                parts.append(f"MR({_bare(vals[reg - 1].expr)}, {size})")
        parts += [_bare(vals[reg - 1].expr) for reg in call.passed]
        text = f"{method_name(call, lo)}({', '.join(parts)})"
        return f"{text} & {M64S}" if call.errno else text

    def call(self, op: Call, i: int) -> None:
        self.tr.check_call(op)
        info = (op.pc, None, self.count(i))
        direct = self._direct(op) if op.kind == 0 else None
        if direct is not None:
            # A map method neither runs programs nor reads the count: no C[0], and the
            # frames stay the same objects (no S = G[...] again).
            self.tr.helpers.add(op.imm)
            self.clobber(0)
            self.out.put(self.ind, f"if {self.count(i)} > BUDGET: raise OVER({op.pc})")
            self.out.put(self.ind, f"r0 = {direct}", info)
            self.vals[0] = None
            return
        args = self._args()[0]
        self.clobber(0)
        if op.kind == isa.PSEUDO_CALL:
            rem = self.size - 1 - i
            self.out.put(self.ind, f"if depth >= {mem.MAX_CALL_FRAMES - 1}: "
                                   f"raise DEPTH(depth, {op.pc})", info)
            self._event(i, op.pc)
            self.out.put(self.ind, f"r0 = sub_{op.target}({args}, depth + 1)", info)
            self.out.put(self.ind, f"n = C[0] + {rem}" if rem else "n = C[0]")
        else:
            self.tr.helpers.add(op.imm)
            self._event(i, op.pc)
            if op.imm == BPF_FUNC_TAIL_CALL:
                # In a subprogram (depth > 0) a tail call replaces only that subprogram:
                # the target runs to its end and its r0 returns to the caller, as the
                # x86-64 JIT's frame handling does (Vm.run_tail_target).
                self.out.put(self.ind, "try:")
                self.out.put(self.ind + 1, f"r0 = H{op.imm}(VM, {args}) & {M64S}", info)
                self.out.put(self.ind, "except TAILCALL as tail:")
                self.out.put(self.ind + 1, "if not depth: raise")
                self.out.put(self.ind + 1, self.tr.ret("TAILRUN(tail)"))
            else:
                self.out.put(self.ind, f"r0 = H{op.imm}(VM, {args}) & {M64S}", info)
        self.vals[0] = None
        self.rebind(self.frame)

    def rebind(self, frame: bool) -> None:
        """After a call that may run programs (which may replace the frames' and the
        packet's buffers while they run), the locals that hold them read them again."""
        if frame:
            self.out.put(self.ind, "S = G[depth + 1]")
        if self.packet:
            self.out.put(self.ind, f"PK = {_PACKET}")

    def callx(self, op: CallX, i: int) -> None:
        args, target = self._args(op.reg)
        self.clobber(0)
        rem = self.size - 1 - i
        self._event(i, op.pc)
        self.out.put(self.ind, f"r0 = CALLX({target}, {op.pc}, depth, {args})",
                     (op.pc, None, self.count(i)))
        self.out.put(self.ind, f"n = C[0] + {rem}" if rem else "n = C[0]")
        self.vals[0] = None
        self.rebind(self.frame)

    def ld_packet(self, op: LdPacket, i: int) -> None:
        off = str(op.imm) if op.src is None else f"s32({self.get(op.src).expr} + {op.imm})"
        self.clobber(0)
        self.out.put(self.ind, f"r0 = LDPKT({off}, {op.size})", (op.pc, None, self.count(i)))
        self.vals[0] = None
        self.out.put(self.ind, "if r0 is None:")
        self.ind += 1
        self._event(i, op.pc)
        self.out.put(self.ind, self.tr.ret("0"))
        self.ind -= 1

    # -- the block's last op -------------------------------------------------------------
    def cond(self, op: Jump, negate: bool = False) -> tuple[str, LineInfo | None]:
        """The branch condition as Python text (reads its registers), and its fault info."""
        assert op.cond is not None
        cond = op.cond
        if negate and cond in sem.NEGATED:
            cond, negate = sem.NEGATED[cond], False
        view, imm_view = _cond_views(op.is64, cond.signed)
        a = self.get(op.dst)
        memi = a.mem
        at = view.format(r=a.expr, r32=a.expr if self.st[op.dst][1] <= sem.M32
                         else f"({a.expr} & {M32S})")
        if op.src is None:
            bt = str(imm_view(op.imm))
        else:
            if op.src == op.dst and not a.cheap:
                a = Val(self.temp(a), 0, cheap=True)
                at = view.format(r=a.expr, r32=a.expr if self.st[op.dst][1] <= sem.M32
                                 else f"({a.expr} & {M32S})")
            b = a if op.src == op.dst else self.get(op.src)
            memi = memi or b.mem
            bt = view.format(r=b.expr, r32=b.expr if self.st[op.src][1] <= sem.M32
                             else f"({b.expr} & {M32S})")
        text = sem.COND[cond].format(a=at, b=bt)
        return (f"not ({text})" if negate else text), memi

    def exit(self, op: Exit, i: int) -> None:
        v = self.get(0)
        if v.mem is not None:      # the read happens before the count check
            self.write_local(0, v.expr, v.refs, v.mem)
            v = _LOCAL[0]
        lines, head = self.out.lines, " " * self.ind + "n += "
        last = lines[-1] if lines else ""
        if last.startswith(head) and last[len(head):].isdigit() \
                and len(lines) not in self.out.info:
            # the block's (or chain's) count line just before: one statement for both
            lines[-1] = " " * self.ind + f"C[0] = n = n + {last[len(head):]}"
        else:
            self.out.put(self.ind, "C[0] = n")
        self.out.put(self.ind, f"if n > BUDGET: raise OVER({op.pc})")
        self.out.put(self.ind, self.tr.ret(_bare(v.expr)))
