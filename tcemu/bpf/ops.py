"""The semantic view of a program: one :class:`Op` per instruction.

``decode(insns)`` turns validated raw :class:`~tcemu.bpf.isa.Insn` records into ops whose
fields say what the instruction means rather than how it is encoded (PREVAIL's
``asm_syntax`` idea).  Signed division and modulo and movsx are distinct operators here;
the wire byte stays in ``insn``.  The interpreter, the translator and (later) the verifier
consume ops; the printer works from raw instructions so it can print anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from tcemu.bpf import isa
from tcemu.bpf.isa import Insn, Kind, OpInfo

__all__ = [
    "Alu",
    "AluOp",
    "Atomic",
    "Call",
    "CallX",
    "Cond",
    "CtxLoad",
    "CtxStore",
    "Endian",
    "Exit",
    "Jump",
    "LdImm64",
    "LdPacket",
    "Load",
    "Op",
    "Store",
    "decode",
    "successors",
]


class AluOp(Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    SDIV = "sdiv"
    OR = "or"
    AND = "and"
    LSH = "lsh"
    RSH = "rsh"
    NEG = "neg"
    MOD = "mod"
    SMOD = "smod"
    XOR = "xor"
    MOV = "mov"
    MOVSX8 = "movsx8"
    MOVSX16 = "movsx16"
    MOVSX32 = "movsx32"
    ARSH = "arsh"


class Cond(Enum):
    JEQ = "=="
    JNE = "!="
    JGT = ">"
    JGE = ">="
    JLT = "<"
    JLE = "<="
    JSET = "&"
    JSGT = "s>"
    JSGE = "s>="
    JSLT = "s<"
    JSLE = "s<="

    @property
    def signed(self) -> bool:
        return self.value.startswith("s")


_ALU_OPS = {isa.ADD: AluOp.ADD, isa.SUB: AluOp.SUB, isa.MUL: AluOp.MUL, isa.DIV: AluOp.DIV,
            isa.OR: AluOp.OR, isa.AND: AluOp.AND, isa.LSH: AluOp.LSH, isa.RSH: AluOp.RSH,
            isa.MOD: AluOp.MOD, isa.XOR: AluOp.XOR, isa.MOV: AluOp.MOV, isa.ARSH: AluOp.ARSH}
_SIGNED = {AluOp.DIV: AluOp.SDIV, AluOp.MOD: AluOp.SMOD}
_MOVSX = {8: AluOp.MOVSX8, 16: AluOp.MOVSX16, 32: AluOp.MOVSX32}
_CONDS = {isa.JEQ: Cond.JEQ, isa.JNE: Cond.JNE, isa.JGT: Cond.JGT, isa.JGE: Cond.JGE,
          isa.JLT: Cond.JLT, isa.JLE: Cond.JLE, isa.JSET: Cond.JSET, isa.JSGT: Cond.JSGT,
          isa.JSGE: Cond.JSGE, isa.JSLT: Cond.JSLT, isa.JSLE: Cond.JSLE}


@dataclass(frozen=True, slots=True)
class Op:
    pc: int
    insn: Insn


@dataclass(frozen=True, slots=True)
class Alu(Op):
    """``dst = dst <op> src`` on 64 or 32 bits; ``src is None`` means the immediate."""

    op: AluOp
    is64: bool
    dst: int
    src: int | None
    imm: int


@dataclass(frozen=True, slots=True)
class Endian(Op):
    kind: str  # "le", "be" or "bswap"
    bits: int
    dst: int


@dataclass(frozen=True, slots=True)
class Load(Op):
    size: int
    signed: bool
    dst: int
    src: int
    off: int


@dataclass(frozen=True, slots=True)
class Store(Op):
    size: int
    dst: int
    off: int
    src: int | None  # None: store the immediate
    imm: int


@dataclass(frozen=True, slots=True)
class Atomic(Op):
    size: int
    op: int          # isa.ADD/OR/AND/XOR/XCHG/CMPXCHG (without FETCH)
    fetch: bool
    dst: int
    src: int
    off: int


@dataclass(frozen=True, slots=True)
class LdImm64(Op):
    dst: int
    pseudo: int      # BPF_PSEUDO_* (0: plain constant)
    imm: int         # first slot's imm (s32)
    imm2: int        # second slot's imm (s32)

    @property
    def value(self) -> int:
        return ((self.imm2 & 0xFFFFFFFF) << 32) | (self.imm & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class LdPacket(Op):
    """Legacy LD_ABS (``src is None``) / LD_IND packet load into r0."""

    size: int
    src: int | None
    imm: int


@dataclass(frozen=True, slots=True)
class Jump(Op):
    """Unconditional (``cond is None``) or conditional jump to slot ``target``."""

    cond: Cond | None
    is64: bool
    dst: int
    src: int | None
    imm: int
    target: int


@dataclass(frozen=True, slots=True)
class Call(Op):
    kind: int        # 0 helper, isa.PSEUDO_CALL, isa.PSEUDO_KFUNC_CALL
    imm: int
    target: int      # subprogram slot for PSEUDO_CALL, else -1


@dataclass(frozen=True, slots=True)
class CallX(Op):
    reg: int


@dataclass(frozen=True, slots=True)
class Exit(Op):
    pass


@dataclass(frozen=True, slots=True)
class CtxLoad(Op):
    """A load from the program context, rewritten like ``convert_ctx_accesses()`` does."""

    size: int
    dst: int
    offset: int      # offset in the uapi context struct (e.g. struct __sk_buff)


@dataclass(frozen=True, slots=True)
class CtxStore(Op):
    """A store into the program context (``src is None``: the immediate)."""

    size: int
    offset: int
    src: int | None
    imm: int


def successors(op: Op) -> list[int]:
    """The slots control may reach next within the same function (calls return here)."""
    if isinstance(op, Exit):
        return []
    nxt = op.pc + (2 if isinstance(op, LdImm64) else 1)
    if isinstance(op, Jump):
        return [op.target] if op.cond is None else [op.target, nxt]
    return [nxt]


def _alu(pc: int, insn: Insn, info: OpInfo) -> Op:
    is64 = info.cls == isa.ALU64
    if info.kind is Kind.NEG:
        return Alu(pc, insn, AluOp.NEG, is64, insn.dst, None, 0)
    if info.kind is Kind.END:
        kind = "bswap" if is64 else ("be" if insn.code & isa.TO_BE else "le")
        return Endian(pc, insn, kind, insn.imm, insn.dst)
    op = _ALU_OPS[info.op]
    if insn.off and op in _SIGNED:
        op = _SIGNED[op]
    elif insn.off and op is AluOp.MOV:
        op = _MOVSX[insn.off]
    src = insn.src if info.uses_reg_src else None
    return Alu(pc, insn, op, is64, insn.dst, src, insn.imm)


def _jmp(pc: int, insn: Insn, info: OpInfo) -> Op:
    target = isa.jump_target(pc, insn, info)
    if info.kind is Kind.EXIT:
        return Exit(pc, insn)
    if info.kind is Kind.CALL:
        return Call(pc, insn, insn.src, insn.imm, -1 if target is None else target)
    if info.kind is Kind.CALLX:
        return CallX(pc, insn, insn.dst)
    assert target is not None
    if info.kind in (Kind.JA, Kind.GOTOL):
        return Jump(pc, insn, None, True, 0, None, 0, target)
    src = insn.src if info.uses_reg_src else None
    return Jump(pc, insn, _CONDS[info.op], info.cls == isa.JMP, insn.dst, src, insn.imm, target)


def _mem(pc: int, insn: Insn, info: OpInfo, insns: Sequence[Insn]) -> Op:
    kind = info.kind
    if kind is Kind.LDX:
        signed = insn.code & 0xE0 == isa.MEMSX
        return Load(pc, insn, info.size, signed, insn.dst, insn.src, insn.off)
    if kind is Kind.ST:
        return Store(pc, insn, info.size, insn.dst, insn.off, None, insn.imm)
    if kind is Kind.STX:
        return Store(pc, insn, info.size, insn.dst, insn.off, insn.src, 0)
    if kind is Kind.ATOMIC:
        op = insn.imm if insn.imm in (isa.XCHG, isa.CMPXCHG) else insn.imm & ~isa.FETCH
        fetch = bool(insn.imm & isa.FETCH)
        return Atomic(pc, insn, info.size, op, fetch, insn.dst, insn.src, insn.off)
    if kind is Kind.LDDW:
        return LdImm64(pc, insn, insn.dst, insn.src, insn.imm, insns[pc + 1].imm)
    src = insn.src if kind is Kind.LDIND else None
    return LdPacket(pc, insn, info.size, src, insn.imm)


def decode(insns: Sequence[Insn], rows: Sequence[OpInfo | None] | None = None,
           ) -> list[Op | None]:
    """One op per slot (``None`` for LD_IMM64 second halves).  Validates unless given rows."""
    if rows is None:
        rows = isa.validate(insns)
    ops: list[Op | None] = []
    for pc, info in enumerate(rows):
        if info is None:
            ops.append(None)
        elif info.cls in (isa.ALU, isa.ALU64):
            ops.append(_alu(pc, insns[pc], info))
        elif info.cls in (isa.JMP, isa.JMP32):
            ops.append(_jmp(pc, insns[pc], info))
        else:
            ops.append(_mem(pc, insns[pc], info, insns))
    return ops
