"""The eBPF instruction set: raw instructions and the one opcode table.

This module owns ``struct bpf_insn`` (uapi ``include/uapi/linux/bpf.h``) as :class:`Insn`
and :data:`OPCODES`, the only table of valid opcodes.  The assembler, the disassembler,
the decoder (``ops.py``) and the structural checks in :func:`validate` all derive from it.
Encodings follow RFC 9669 and ``include/uapi/linux/bpf_common.h``; field rules follow the
kernel verifier (``kernel/bpf/verifier.c``: ``check_alu_op``, ``do_check_insn``,
``resolve_pseudo_ldimm64``, ``check_subprogs``), whose messages :func:`validate` reuses.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from tcemu.errors import EncodingError, ValidationError

__all__ = [
    "BPF_COMPLEXITY_LIMIT_INSNS",
    "INSN_SIZE",
    "MAX_BPF_REG",
    "OPCODES",
    "Insn",
    "Kind",
    "OpInfo",
    "decode_bytes",
    "encode_insns",
    "validate",
]

INSN_SIZE = 8
MAX_BPF_REG = 11  # r0..r10
BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000
"""The most instructions ``bpf_prog_load()`` takes from a CAP_BPF caller (``insn_cnt``
above it is E2BIG, kernel/bpf/syscall.c); the verifier's processed-insn budget is the same
number."""

# Instruction classes (BPF_CLASS), bpf_common.h / bpf.h.
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
# Sizes (BPF_SIZE) and their byte widths.
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {W: 4, H: 2, B: 1, DW: 8}
# Modes (BPF_MODE).
IMM, ABS, IND, MEM, MEMSX, ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0
# Source (BPF_SRC).
K, X = 0x00, 0x08
# ALU operations (BPF_OP).
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
NEG, MOD, XOR, MOV, ARSH, END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
TO_LE, TO_BE = 0x00, 0x08
# JMP operations (BPF_OP).
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
CALL, EXIT, JLT, JLE, JSLT, JSLE = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
# Atomic operations (imm of BPF_STX | BPF_ATOMIC).
FETCH = 0x01
XCHG = 0xE0 | FETCH
CMPXCHG = 0xF0 | FETCH
ATOMIC_IMMS = frozenset({ADD, OR, AND, XOR, ADD | FETCH, OR | FETCH, AND | FETCH,
                         XOR | FETCH, XCHG, CMPXCHG})
# src_reg values of LD_IMM64 (BPF_PSEUDO_*).
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, PSEUDO_BTF_ID, PSEUDO_FUNC = 1, 2, 3, 4
PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE = 5, 6
# src_reg values of CALL.
PSEUDO_CALL, PSEUDO_KFUNC_CALL = 1, 2

_REG = None  # marks a field that holds a register number (0..10)


class Kind(Enum):
    """What an opcode does, at the granularity the decoder and printer need."""

    ALU = "alu"          # binary ALU op (incl. MOV, signed div/mod, movsx)
    NEG = "neg"
    END = "end"          # le/be conversions (ALU) and bswap (ALU64)
    LDX = "ldx"          # load, zero- or sign-extending
    ST = "st"            # store immediate
    STX = "stx"          # store register
    ATOMIC = "atomic"
    LDDW = "lddw"        # 16-byte LD_IMM64
    LDABS = "ldabs"      # legacy packet load, constant offset
    LDIND = "ldind"      # legacy packet load, register + constant offset
    JA = "ja"            # goto (16-bit off)
    GOTOL = "gotol"      # goto (32-bit imm), JMP32 | JA
    JCOND = "jcond"      # conditional jump
    CALL = "call"        # helper, bpf-to-bpf or kfunc call
    CALLX = "callx"      # call through a register (uBPF/bpf_conformance extension)
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class OpInfo:
    """One row of the opcode table.

    ``dst``/``src`` are ``None`` when the field holds a register, else the set of values the
    field may hold; ``offs``/``imms`` are ``None`` when any value is allowed.
    """

    code: int
    kind: Kind
    mnemonic: str        # bpf_conformance/uBPF mnemonic, e.g. ``add32``, ``ldxw``, ``jsgt``
    doc: str             # one-line semantics
    dst: frozenset[int] | None
    src: frozenset[int] | None
    offs: frozenset[int] | None
    imms: frozenset[int] | None
    reserved: str        # the kernel's message when a reserved field is set

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def op(self) -> int:
        return self.code & 0xF0

    @property
    def size(self) -> int:
        """Access width in bytes for loads, stores and atomics."""
        return SIZE_BYTES[self.code & 0x18]

    @property
    def uses_reg_src(self) -> bool:
        return self.code & X == X


@dataclass(frozen=True, slots=True)
class Insn:
    """``struct bpf_insn``: exactly the five uapi fields, so byte round trips are lossless."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    _STRUCT = struct.Struct("<BBhi")

    def encode(self) -> bytes:
        return Insn._STRUCT.pack(self.code, (self.src << 4) | self.dst, self.off, self.imm)

    def __repr__(self) -> str:
        return (f"Insn(code={self.code:#04x}, dst={self.dst}, src={self.src}, "
                f"off={self.off}, imm={self.imm})")


_ZERO = frozenset({0})
_ALU_NAMES = {ADD: "add", SUB: "sub", MUL: "mul", DIV: "div", OR: "or", AND: "and",
              LSH: "lsh", RSH: "rsh", MOD: "mod", XOR: "xor", MOV: "mov", ARSH: "arsh"}
_ALU_DOCS = {ADD: "dst += src", SUB: "dst -= src", MUL: "dst *= src",
             DIV: "dst /= src (off=1: signed); x/0 = 0", OR: "dst |= src", AND: "dst &= src",
             LSH: "dst <<= src", RSH: "dst >>= src (logical)",
             MOD: "dst %= src (off=1: signed); x%0 = x", XOR: "dst ^= src",
             MOV: "dst = src (off=8/16/32: sign-extend)", ARSH: "dst >>= src (arithmetic)"}
_JMP_NAMES = {JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset", JNE: "jne", JSGT: "jsgt",
              JSGE: "jsge", JLT: "jlt", JLE: "jle", JSLT: "jslt", JSLE: "jsle"}
_SIZE_NAMES = {W: "w", H: "h", B: "b", DW: "dw"}


def _row(code: int, kind: Kind, mnemonic: str, doc: str, reserved: str, *,
         dst: frozenset[int] | None = _REG, src: frozenset[int] | None = _ZERO,
         offs: frozenset[int] | None = _ZERO,
         imms: frozenset[int] | None = None) -> OpInfo:
    return OpInfo(code, kind, mnemonic, doc, dst, src, offs, imms, reserved)


def _alu_rows() -> Iterable[OpInfo]:
    for cls, suffix in ((ALU64, ""), (ALU, "32")):
        width = "64" if cls == ALU64 else "32"
        for op, name in _ALU_NAMES.items():
            signed_offs = frozenset({0, 1}) if op in (DIV, MOD) else _ZERO
            k_offs, x_offs = signed_offs, signed_offs
            if op == MOV:
                x_offs = frozenset({0, 8, 16, 32}) if cls == ALU64 else frozenset({0, 8, 16})
            reserved = f"BPF_{'MOV' if op == MOV else 'ALU'} uses reserved fields"
            doc = f"{width}-bit {_ALU_DOCS[op]}"
            yield _row(cls | op | K, Kind.ALU, name + suffix, doc + ", src = imm", reserved,
                       offs=k_offs)
            yield _row(cls | op | X, Kind.ALU, name + suffix, doc + ", src = reg", reserved,
                       src=_REG, offs=x_offs, imms=_ZERO)
        yield _row(cls | NEG, Kind.NEG, "neg" + suffix, f"{width}-bit dst = -dst",
                   "BPF_NEG uses reserved fields", imms=_ZERO)
    widths = frozenset({16, 32, 64})
    yield _row(ALU | END | TO_LE, Kind.END, "le", "dst = htole(dst, imm bits)",
               "BPF_END uses reserved fields", imms=widths)
    yield _row(ALU | END | TO_BE, Kind.END, "be", "dst = htobe(dst, imm bits)",
               "BPF_END uses reserved fields", imms=widths)
    yield _row(ALU64 | END | TO_LE, Kind.END, "swap", "dst = bswap(dst, imm bits) (v4)",
               "BPF_END uses reserved fields", imms=widths)


def _mem_rows() -> Iterable[OpInfo]:
    for size, sname in _SIZE_NAMES.items():
        n = SIZE_BYTES[size]
        yield _row(LDX | MEM | size, Kind.LDX, "ldx" + sname,
                   f"dst = *(u{8 * n} *)(src + off)", "BPF_LDX uses reserved fields",
                   src=_REG, offs=None, imms=_ZERO)
        yield _row(ST | MEM | size, Kind.ST, "st" + sname, f"*(u{8 * n} *)(dst + off) = imm",
                   "BPF_ST uses reserved fields", offs=None)
        yield _row(STX | MEM | size, Kind.STX, "stx" + sname,
                   f"*(u{8 * n} *)(dst + off) = src", "BPF_STX uses reserved fields",
                   src=_REG, offs=None, imms=_ZERO)
        if size != DW:
            yield _row(LDX | MEMSX | size, Kind.LDX, "ldxs" + sname,
                       f"dst = *(s{8 * n} *)(src + off) (v4)", "BPF_LDX uses reserved fields",
                       src=_REG, offs=None, imms=_ZERO)
            yield _row(LD | ABS | size, Kind.LDABS, "ldabs" + sname,
                       f"r0 = ntoh(*(u{8 * n} *)skb[imm]); on failure return 0",
                       "BPF_LD_[ABS|IND] uses reserved fields", dst=_ZERO)
            yield _row(LD | IND | size, Kind.LDIND, "ldind" + sname,
                       f"r0 = ntoh(*(u{8 * n} *)skb[src + imm]); on failure return 0",
                       "BPF_LD_[ABS|IND] uses reserved fields", dst=_ZERO, src=_REG)
    for size, sname in ((W, "32"), (DW, "")):
        yield _row(STX | ATOMIC | size, Kind.ATOMIC, "lock" + sname,
                   "atomic read-modify-write of *(dst + off) with src (op in imm)",
                   "BPF_ATOMIC uses reserved fields", src=_REG, offs=None, imms=ATOMIC_IMMS)
    yield _row(LD | IMM | DW, Kind.LDDW, "lddw", "dst = imm64 (src: BPF_PSEUDO_* kind)",
               "invalid bpf_ld_imm64 insn", src=frozenset(range(7)))


def _jmp_rows() -> Iterable[OpInfo]:
    for cls, suffix in ((JMP, ""), (JMP32, "32")):
        width = "64" if cls == JMP else "32"
        for op, name in _JMP_NAMES.items():
            doc = f"if ({width}-bit dst {name[1:]} src) goto pc + off"
            yield _row(cls | op | K, Kind.JCOND, name + suffix, doc + " (src = imm)",
                       "BPF_JMP/JMP32 uses reserved fields", offs=None)
            yield _row(cls | op | X, Kind.JCOND, name + suffix, doc + " (src = reg)",
                       "BPF_JMP/JMP32 uses reserved fields", src=_REG, offs=None, imms=_ZERO)
    yield _row(JMP | JA, Kind.JA, "ja", "goto pc + off", "BPF_JA uses reserved fields",
               dst=_ZERO, offs=None, imms=_ZERO)
    yield _row(JMP32 | JA, Kind.GOTOL, "ja32", "goto pc + imm (gotol, v4)",
               "BPF_JA uses reserved fields", dst=_ZERO)
    yield _row(JMP | CALL, Kind.CALL, "call",
               "call helper imm (src=0), subprog pc + imm + 1 (src=1) or kfunc (src=2)",
               "BPF_CALL uses reserved fields", dst=_ZERO, src=frozenset({0, 1, 2}))
    # KERNEL-DIFF: the kernel rejects BPF_CALL|BPF_X; bpf_conformance defines it as
    # "call the helper (or subprogram address) held in dst".
    yield _row(JMP | CALL | X, Kind.CALLX, "callx", "call through register dst",
               "BPF_CALL uses reserved fields", imms=_ZERO)
    yield _row(JMP | EXIT, Kind.EXIT, "exit", "return r0", "BPF_EXIT uses reserved fields",
               dst=_ZERO, imms=_ZERO)


OPCODES: dict[int, OpInfo] = {row.code: row for rows in (_alu_rows(), _mem_rows(), _jmp_rows())
                              for row in rows}


def decode_bytes(data: bytes | bytearray | memoryview) -> tuple[Insn, ...]:
    """Split raw program bytes into :class:`Insn` records (no validation)."""
    if len(data) % INSN_SIZE:
        raise EncodingError(f"length {len(data)} is not a multiple of {INSN_SIZE}",
                            offset=len(data) - len(data) % INSN_SIZE)
    return tuple(Insn(code, regs & 0x0F, regs >> 4, off, imm)
                 for code, regs, off, imm in Insn._STRUCT.iter_unpack(bytes(data)))


def encode_insns(insns: Iterable[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in insns)


def _check_fields(idx: int, insn: Insn, info: OpInfo) -> None:
    for field, allowed in (("dst", info.dst), ("src", info.src)):
        value = getattr(insn, field)
        if allowed is None:
            if value >= MAX_BPF_REG:
                raise ValidationError(f"R{value} is invalid", index=idx, insn=insn)
        elif value not in allowed:
            raise ValidationError(info.reserved, index=idx, insn=insn)
    if info.offs is not None and insn.off not in info.offs:
        raise ValidationError(info.reserved, index=idx, insn=insn)
    if info.imms is not None and insn.imm not in info.imms:
        if info.kind is Kind.ATOMIC:
            raise ValidationError(f"BPF_ATOMIC uses invalid atomic opcode {insn.imm & 0xFF:02x}",
                                  index=idx, insn=insn)
        raise ValidationError(info.reserved, index=idx, insn=insn)


def _check_lddw(idx: int, insns: Sequence[Insn]) -> None:
    if idx + 1 >= len(insns):
        raise ValidationError("invalid bpf_ld_imm64 insn", index=idx, insn=insns[idx])
    nxt = insns[idx + 1]
    if nxt.code or nxt.dst or nxt.src or nxt.off:
        raise ValidationError("invalid bpf_ld_imm64 insn", index=idx, insn=insns[idx])
    if insns[idx].src in (PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_IDX) and nxt.imm:
        # resolve_pseudo_ldimm64: only the *_VALUE kinds carry an offset in insn[1].imm
        raise ValidationError("unrecognized bpf_ld_imm64 insn", index=idx, insn=insns[idx])


def slot_kinds(insns: Sequence[Insn]) -> list[OpInfo | None]:
    """The opcode row of each slot; ``None`` for the second half of an LD_IMM64."""
    rows: list[OpInfo | None] = []
    idx = 0
    while idx < len(insns):
        insn = insns[idx]
        info = OPCODES.get(insn.code)
        if info is None:
            raise ValidationError(f"unknown opcode {insn.code:02x}", index=idx, insn=insn)
        _check_fields(idx, insn, info)
        rows.append(info)
        if info.kind is Kind.LDDW:
            _check_lddw(idx, insns)
            rows.append(None)
            idx += 1
        idx += 1
    return rows


def jump_target(idx: int, insn: Insn, info: OpInfo) -> int | None:
    """The slot a jump or a bpf-to-bpf call goes to, or ``None`` for other instructions."""
    if info.kind in (Kind.JA, Kind.JCOND):
        return idx + insn.off + 1
    if info.kind is Kind.GOTOL or (info.kind is Kind.CALL and insn.src == PSEUDO_CALL):
        return idx + insn.imm + 1
    return None


def subprog_starts(insns: Sequence[Insn], rows: Sequence[OpInfo | None]) -> list[int]:
    """Sorted first slots of every subprogram: 0, bpf-to-bpf call targets, BPF_PSEUDO_FUNC."""
    starts = {0}
    for idx, info in enumerate(rows):
        if info is None:
            continue
        insn = insns[idx]
        calls = info.kind is Kind.CALL and insn.src == PSEUDO_CALL
        if not calls and not (info.kind is Kind.LDDW and insn.src == PSEUDO_FUNC):
            continue
        target = idx + insn.imm + 1
        if not 0 <= target < len(insns) or rows[target] is None:
            raise ValidationError("call to invalid destination", index=idx, insn=insn)
        starts.add(target)
    return sorted(starts)


def validate(insns: Sequence[Insn]) -> list[OpInfo | None]:
    """Structural check of a whole program, as the kernel does before abstract interpretation.

    Rejects unknown opcodes, set reserved fields, bad registers, broken LD_IMM64 pairs,
    jumps out of range, into an LD_IMM64 or across subprograms, and falling off the end of a
    subprogram.  Returns the opcode row per slot.  Raises :class:`ValidationError` with the
    instruction index.
    """
    if not insns:
        raise ValidationError("program is empty", index=0)
    if len(insns) > BPF_COMPLEXITY_LIMIT_INSNS:
        raise ValidationError(f"program of {len(insns)} insns is larger than "
                              f"BPF_COMPLEXITY_LIMIT_INSNS ({BPF_COMPLEXITY_LIMIT_INSNS}): E2BIG",
                              index=BPF_COMPLEXITY_LIMIT_INSNS)
    rows = slot_kinds(insns)
    starts = subprog_starts(insns, rows)
    bounds = [*starts, len(insns)]
    for sub, start in enumerate(starts):
        end = bounds[sub + 1]
        for idx in range(start, end):
            info = rows[idx]
            if info is None:
                continue
            target = jump_target(idx, insns[idx], info)
            if target is not None and info.kind is not Kind.CALL and not start <= target < end:
                raise ValidationError(f"jump out of range from insn {idx} to {target}",
                                      index=idx, insn=insns[idx])
            if target is not None and target < len(rows) and rows[target] is None:
                raise ValidationError(f"jump into the middle of ldimm64 insn {target - 1}",
                                      index=idx, insn=insns[idx])
        last = end - 1 if rows[end - 1] is not None else end - 2
        last_info = rows[last]
        if last_info is None or last_info.kind not in (Kind.EXIT, Kind.JA, Kind.GOTOL):
            raise ValidationError("last insn is not an exit or jmp", index=last,
                                  insn=insns[last])
    return rows
