"""Memory accesses of a block: loads, stores, atomics and groups of writes.

The packet region is the local ``PK`` when the subprogram loads packet pointers from the
context; the frame is ``S``; a store or atomic through a register with a region of its own
finds the region once (``g<reg>``/``o<reg>``) for the accesses after it; stores and
atomics through one base are merged into one ``struct`` read and write where they can be
(:mod:`.group`).

Invariants that keep fault reports exact (see :class:`~tcemu.bpf.jit.out.Out`):

* a statement contains at most one memory access (a group's merged statements: all of its
  members' bytes, proven in bounds first), and the line of that statement records the
  access's slot, how to recompute its base register, and the instruction count;
* a memory read is only pasted into the very next op, and only if that op is pure (ALU,
  byte swap, a branch condition), so no side effect or other fault moves across it.
"""

from __future__ import annotations

from collections.abc import Mapping

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.jit.facts import Range
from tcemu.bpf.jit.group import Group, atomic_new, joinable, member
from tcemu.bpf.jit.values import (
    _DEAD,
    _LOCAL,
    M32S,
    M64S,
    Addr,
    Val,
    ValueGen,
    _bare,
    _name,
    _simple,
)
from tcemu.bpf.ops import (
    Alu,
    Atomic,
    CtxLoad,
    Endian,
    LdImm64,
    Load,
    Op,
    Store,
)
from tcemu.bpf.semantics import atomic_body

__all__ = ["MemoryGen", "ctx_load_expr", "ctx_load_range"]

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


class MemoryGen(ValueGen):
    """:class:`ValueGen` with the memory accesses."""

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
        new = atomic_new(op, self.get(op.src).expr)
        region, off = self.access(base, op.dst, op.off, i, now=True)
        new = new.format(old=f"U{op.size}({_name(region)}, {_name(off)})[0]")
        self.out.put(self.ind, f"P{op.size}({region}, {off}, {new})",
                     (op.pc, self._where(base), self.count(i)))

    def finish(self) -> None:
        """Write the open group, then store the pending values the successors read."""
        self.flush()
        super().finish()
