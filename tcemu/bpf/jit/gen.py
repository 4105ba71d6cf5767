"""Straight-line code of one basic block: ALU ops, byte swaps, calls and the block's end.

Each op becomes an expression from the shared templates of :mod:`tcemu.bpf.semantics`,
on top of the values not yet stored (:mod:`.values`) and the memory accesses
(:mod:`.memops`).  A map helper whose map is a constant calls the map's method directly
(see :mod:`.direct`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from tcemu.bpf import isa
from tcemu.bpf import memory as mem
from tcemu.bpf import semantics as sem
from tcemu.bpf.jit.direct import method_name
from tcemu.bpf.jit.facts import TOP, alu_ranges, transfer
from tcemu.bpf.jit.group import joinable
from tcemu.bpf.jit.memops import _PACKET, MemoryGen, ctx_load_expr, ctx_load_range
from tcemu.bpf.jit.out import LineInfo
from tcemu.bpf.jit.values import _DEAD, _LOCAL, M32S, M64S, Fast, Val, _bare, _simple
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
from tcemu.bpf.uapi import BpfFunc

BPF_FUNC_TAIL_CALL = BpfFunc.tail_call

__all__ = ["M32S", "M64S", "BlockGen", "Fast", "Val"]

BPF_FUNC_TAIL_CALL = BpfFunc.tail_call
_MOVES = (AluOp.MOV, AluOp.MOVSX8, AluOp.MOVSX16, AluOp.MOVSX32)
_ring_template = cache(sem.ring_template)




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


class BlockGen(MemoryGen):
    """Emits the body of blocks of one subprogram (one instance per subprogram)."""

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
