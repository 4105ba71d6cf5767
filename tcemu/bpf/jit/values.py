"""What a block's generator knows of each register: the values not yet stored.

The generator keeps, per register, either "the Python local ``rN`` holds the value" or a
*pending* expression not yet stored (:class:`Val`): a value read once later in the block is
pasted into its reader instead of being stored, a value nobody reads is not computed at
all (unless it is a memory read, which must still fault), constants and copies are pasted
into any number of readers.  A pending expression reads locals; before such a local is
overwritten the expression is stored (into its own register, or into a temporary).
:class:`ValueGen` is that bookkeeping; :mod:`.memops` adds memory accesses to it and
:mod:`.gen` the other ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf import memory as mem
from tcemu.bpf.jit.facts import State
from tcemu.bpf.jit.out import LineInfo, Out
from tcemu.bpf.ops import (
    Alu,
    Endian,
    Jump,
    Op,
)

if TYPE_CHECKING:
    from tcemu.bpf.jit.group import Group
    from tcemu.bpf.jit.translate import Translator

__all__ = ["M32S", "M64S", "Fast", "Val", "ValueGen"]

M64S = "0xFFFFFFFFFFFFFFFF"
M32S = "0xFFFFFFFF"
_MAX_SIZE = 6                  # ops folded into one pending expression



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


class ValueGen:
    """The values of one subprogram's registers as its blocks are emitted (one
    instance per subprogram)."""

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
        for r in range(11):
            p = self.vals[r]
            if p is not None and p is not _DEAD and p.live:
                self.vals[r] = None
                self.write_local(r, p.expr, p.refs, p.mem)
