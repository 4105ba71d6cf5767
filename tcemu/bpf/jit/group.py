"""Writes through one base register, merged: one struct call reads them all, one writes.

A map value is often updated field after field, with nothing but register arithmetic in
between (``__sync_fetch_and_add(&v->packets, 1); __sync_fetch_and_add(&v->bytes,
skb->len)``): each atomic add is a ``struct`` read and a ``struct`` write, and the calls
are most of what such a program costs.  A *group* is a run of plain stores and atomics
without fetch through the same base register at offsets ``>= 0`` whose bytes do not
overlap, in one block, with only pure operations between them (ALU, byte swaps, 64-bit
immediates, context loads computed inline) that write neither the base nor a register a
member's value reads.  It is emitted where its last member is::

    if len(g0 := G[r0 >> 32]) >= (o0 := r0 & 0xFFFFFFFF) + 24:
     _w0, _w1, _w2, _w3 = FU_QQ4sI(g0, o0)
     FP_QQ4sI(g0, o0, (_w0 + 1) & M64, (_w1 + r1) & M64, _w2, _w3 | (r7 & M32))
    else:
     <each member's own statement, in program order>

The guard proves every member in bounds, so the merged statements fault only where the
first member would (a region index past the table, a read-only region), and the line
table gives them the first member's slot; anything else takes the members one by one,
each faulting exactly.  Bytes between members are read and written back unchanged.
Moving the writes past the pure operations between them is invisible: those read no
memory and cannot fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeGuard

from tcemu.bpf import isa
from tcemu.bpf.jit.out import LineInfo, Out
from tcemu.bpf.jit.values import M32S, M64S
from tcemu.bpf.ops import Atomic, Store
from tcemu.bpf.semantics import atomic_body

__all__ = ["Group", "Member", "atomic_new", "joinable", "member"]

_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_OLD = re.compile(r"\bold\b")


@dataclass(slots=True)
class Member:
    """One write of a group: ``new`` is its value, with ``{old}`` where an atomic reads
    the bytes it replaces."""

    off: int
    size: int
    new: str
    info: LineInfo


@dataclass(slots=True)
class Group:
    """The members so far, through ``base`` (the register) whose value is ``expr``."""

    base: int
    expr: str
    refs: int                    # registers the base and the values read (bit set)
    members: list[Member] = field(default_factory=list)

    def fits(self, off: int, size: int) -> bool:
        """Whether bytes ``[off, off + size)`` overlap no member's."""
        return all(off + size <= m.off or m.off + m.size <= off for m in self.members)

    def emit(self, out: Out, ind: int) -> None:
        """The group's statements (see the module's description)."""
        first = self.members[0]
        r = self.base
        g, o = f"g{r}", f"o{r}"
        if len(self.members) > 1:
            lo = min(m.off for m in self.members)
            hi = max(m.off + m.size for m in self.members)
            codes: list[str] = []
            values: list[str] = []
            names: list[str] = []
            at = lo
            for m in sorted(self.members, key=lambda m: m.off):
                if m.off > at:                      # bytes between members, kept
                    codes.append(f"{m.off - at}s")
                    names.append(f"_w{len(names)}")
                    values.append(names[-1])
                codes.append(_CODES[m.size])
                names.append(f"_w{len(names)}")
                values.append(m.new.format(old=names[-1]))
                at = m.off + m.size
            fmt = "".join(codes)
            where = f"{o} + {lo}" if lo else o
            addr = self.expr if self.expr.isidentifier() else "a"
            region = f"G[{addr} >> 32]" if addr == self.expr else f"G[(a := {self.expr}) >> 32]"
            out.put(ind, f"if len({g} := {region}) >= ({o} := {addr} & {M32S}) + {hi}:",
                    first.info)
            out.put(ind + 1, f"{', '.join(names)} = FU_{fmt}({g}, {where})", first.info)
            out.put(ind + 1, f"FP_{fmt}({g}, {where}, {', '.join(values)})", first.info)
            out.put(ind, "else:")
            ind += 1
        for m in self.members:
            addr = f"{self.expr} + {m.off}" if m.off else self.expr
            old = f"U{m.size}({g}, {o})[0]"
            if "{old}" in m.new:
                out.put(ind, f"P{m.size}(({g} := G[(a := {addr}) >> 32]), ({o} := a & {M32S}), "
                             f"{m.new.format(old=old)})", m.info)
            elif m.size == 1:
                out.put(ind, f"G[(a := {addr}) >> 32][a & {M32S}] = {m.new}", m.info)
            else:
                out.put(ind, f"P{m.size}(G[(a := {addr}) >> 32], a & {M32S}, {m.new})", m.info)


def joinable(op: object) -> TypeGuard[Store | Atomic]:
    """Whether ``op`` can be a member: a store, or an atomic without fetch (not CMPXCHG),
    at an offset ``>= 0`` from a base that is not the register it stores."""
    if isinstance(op, Store):
        return op.off >= 0 and op.src != op.dst
    return isinstance(op, Atomic) and op.off >= 0 and op.op != isa.CMPXCHG and \
        not op.fetch and op.src != op.dst


def member(op: Store | Atomic, value: str, info: LineInfo) -> Member:
    """The member for ``op`` whose source (register or immediate) is ``value``: a store's
    masked value, or an atomic's new value (:func:`atomic_new`)."""
    if isinstance(op, Store):
        return Member(op.off, op.size, value, info)
    return Member(op.off, op.size, atomic_new(op, value), info)


def atomic_new(op: Atomic, value: str) -> str:
    """The value an atomic without fetch whose source is ``value`` writes, from
    ``atomic_body``: a format string with ``{old}`` where it reads the bytes it replaces
    (``value`` keeps its parentheses: atomic_body puts it next to other operators)."""
    body = atomic_body(op, lambda n: value if n == op.src else f"r{n}")
    last = body.rsplit("\n", 1)[1]
    assert last.startswith("P(g, o, "), body
    assert last.endswith(")"), body
    new = last[len("P(g, o, "):-1].replace("{", "{{").replace("}", "}}")
    return _OLD.sub("{old}", new).replace("M64", M64S).replace("M32", M32S)
