"""The text assembler: the kernel's syntax (what ``disasm`` prints) and the uBPF dialect.

Kernel syntax, as printed by the verifier log and ``bpftool prog dump xlated``::

    0: (b7) r0 = 0                     # the "idx:" and "(code)" prefixes are optional
    if r0 == 0x0 goto pc+1             # or "goto out" with a label "out:" on its own line
    r1 = *(u32 *)(r6 +80)
    call bpf_map_lookup_elem#1
    r1 = map[fd:3]                     # LD_IMM64 of a map (also map[idx:N], func[pc+N])

A hex constant in ``rN = 0x...`` (or a trailing ``ll``) means LD_IMM64, as the kernel prints
it; a decimal one means ``mov``.  The uBPF/bpf_conformance dialect is also accepted line by
line (``mov32 %r0, 1``, ``ldxw %r0, [%r1+4]``, ``lock fetch add [%r10-8], %r1``,
``call local fn``, ``jne %r0, 1, label`` and the implicit label ``exit``).  Both dialects'
mnemonics come from :data:`tcemu.bpf.isa.OPCODES`.  Errors are :class:`AsmError` with the
line and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tcemu.bpf import isa
from tcemu.bpf.disasm import ALU_SIGN_STRING, ALU_STRING, ATOMIC_ALU_STRING, JMP_STRING
from tcemu.bpf.isa import OPCODES, Insn, Kind, OpInfo
from tcemu.bpf.program import Program
from tcemu.bpf.uapi import HELPER_NAMES
from tcemu.errors import AsmError

__all__ = ["assemble", "assemble_insns"]

_HELPER_IDS = {name: ident for ident, name in HELPER_NAMES.items()}
_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "s8": 1, "s16": 2, "s32": 4}
_SIZE_CODE = {size: code for code, size in isa.SIZE_BYTES.items()}
_ALU_BY_STR = {s: op for op, s in ALU_STRING.items()}
_ALU_SIGN_BY_STR = {s: op for op, s in ALU_SIGN_STRING.items()}
_JMP_BY_STR = {s: op for op, s in JMP_STRING.items()}
_ATOMIC_BY_NAME = {name: op for op, name in ATOMIC_ALU_STRING.items()}
_BY_MNEMONIC: dict[str, list[OpInfo]] = {}
for _row in OPCODES.values():
    _BY_MNEMONIC.setdefault(_row.mnemonic, []).append(_row)

_UNUM = r"(?:0[xX][0-9a-fA-F]+|\d+)"
_NUM = r"[-+]?" + _UNUM
_REG = r"([rw])(\d+)"
_PTR = r"\*\((u8|u16|u32|u64|s8|s16|s32) \*\)\(r(\d+) ?([-+]\s*" + _UNUM + r")?\)"
_PTR_ARG = r"\((u32|u64) \*\)\(r(\d+) ?([-+]\s*" + _UNUM + r")\)"
_PREFIX = re.compile(r"^\s*(?:\d+:\s*)?(?:\(([0-9a-fA-F]{2})\)\s*)?")


class _Lit(int):
    """An integer literal that remembers whether it was written in decimal."""

    decimal: bool


def _int(text: str) -> int:
    text = text.replace(" ", "")
    lit = _Lit(int(text, 0))
    lit.decimal = not text.lstrip("+-").lower().startswith("0x")
    return lit


def _s32(value: int, what: str) -> int:
    """Wrap a literal into an s32 field: hex may use all 32 bits (0xffffffff is -1),
    decimal must be a signed 32-bit value (bpf_conformance's rule)."""
    top = (1 << 32) if isinstance(value, _Lit) and not value.decimal else (1 << 31)
    if not -(1 << 31) <= value < top:
        raise ValueError(f"{what} {int(value)} does not fit in 32 bits")
    return int(value) - (1 << 32) if value >= (1 << 31) else int(value)


def _s16(value: int, what: str) -> int:
    top = (1 << 16) if isinstance(value, _Lit) and not value.decimal else (1 << 15)
    if not -(1 << 15) <= value < top:
        raise ValueError(f"{what} {value} does not fit in 16 bits")
    return value - (1 << 16) if value >= (1 << 15) else value


@dataclass
class _Line:
    """One parsed instruction: 1 or 2 slots, plus an unresolved label reference."""

    insns: list[Insn]
    label: str | None = None
    label_field: str = "off"   # "off" for jumps, "imm" for calls / gotol / ld_imm64 func


@dataclass
class _State:
    out: list[Insn] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    fixups: list[tuple[int, str, str, int, str]] = field(default_factory=list)


def _reg(text: str) -> int:
    num = int(text)
    if num >= isa.MAX_BPF_REG:
        raise ValueError(f"invalid register r{num}")
    return num


# ---- kernel syntax ------------------------------------------------------------------
_K_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], _Line]]] = []


def _kernel(pattern: str) -> Callable[[Callable[[re.Match[str]], _Line]],
                                      Callable[[re.Match[str]], _Line]]:
    def register(fn: Callable[[re.Match[str]], _Line]) -> Callable[[re.Match[str]], _Line]:
        _K_PATTERNS.append((re.compile(pattern + r"$"), fn))
        return fn
    return register


def _cls(reg: str) -> int:
    return isa.ALU if reg == "w" else isa.ALU64


@_kernel(r"exit")
def _k_exit(m: re.Match[str]) -> _Line:
    return _Line([Insn(isa.JMP | isa.EXIT)])


@_kernel(r"(goto|gotol) (?:pc([-+]\d+)|(\w+))")
def _k_goto(m: re.Match[str]) -> _Line:
    if m.group(1) == "goto":
        return _Line([Insn(isa.JMP | isa.JA, off=_s16(int(m.group(2) or 0), "offset"))],
                     m.group(3))
    return _Line([Insn(isa.JMP32 | isa.JA, imm=_s32(int(m.group(2) or 0), "offset"))],
                 m.group(3), "imm")


@_kernel(r"if " + _REG + r" (\S+) (?:" + _REG + r"|(" + _NUM + r")) goto (?:pc([-+]\d+)|(\w+))")
def _k_if(m: re.Match[str]) -> _Line:
    cls = isa.JMP32 if m.group(1) == "w" else isa.JMP
    op = _JMP_BY_STR.get(m.group(3))
    if op is None:
        raise ValueError(f"unknown comparison {m.group(3)!r}")
    off = _s16(int(m.group(7) or 0), "offset")
    if m.group(5) is not None:
        insn = Insn(cls | op | isa.X, _reg(m.group(2)), _reg(m.group(5)), off)
    else:
        insn = Insn(cls | op | isa.K, _reg(m.group(2)), 0, off, _s32(_int(m.group(6)), "imm"))
    return _Line([insn], m.group(8))


@_kernel(r"call (?:pc([-+]\d+)|kfunc#(-?\d+)|(\w+)(?:#(-?\d+))?)")
def _k_call(m: re.Match[str]) -> _Line:
    if m.group(1) is not None:
        return _Line([Insn(isa.JMP | isa.CALL, src=isa.PSEUDO_CALL, imm=int(m.group(1)))])
    if m.group(2) is not None:
        return _Line([Insn(isa.JMP | isa.CALL, src=isa.PSEUDO_KFUNC_CALL, imm=int(m.group(2)))])
    name, num = m.group(3), m.group(4)
    if num is not None:
        return _Line([Insn(isa.JMP | isa.CALL, imm=_s32(int(num), "helper id"))])
    if re.fullmatch(_UNUM, name):
        return _Line([Insn(isa.JMP | isa.CALL, imm=_s32(_int(name), "helper id"))])
    if name in _HELPER_IDS:
        return _Line([Insn(isa.JMP | isa.CALL, imm=_HELPER_IDS[name])])
    return _Line([Insn(isa.JMP | isa.CALL, src=isa.PSEUDO_CALL)], name, "imm")


@_kernel(r"callx r(\d+)")
def _k_callx(m: re.Match[str]) -> _Line:
    return _Line([Insn(isa.JMP | isa.CALL | isa.X, dst=_reg(m.group(1)))])


@_kernel(_REG + r" = -([rw])(\d+)")
def _k_neg(m: re.Match[str]) -> _Line:
    return _Line([Insn(_cls(m.group(1)) | isa.NEG, _reg(m.group(2)))])


@_kernel(r"r(\d+) = (be|le|bswap)(16|32|64) r(\d+)")
def _k_endian(m: re.Match[str]) -> _Line:
    code = {"le": isa.ALU | isa.END | isa.TO_LE, "be": isa.ALU | isa.END | isa.TO_BE,
            "bswap": isa.ALU64 | isa.END | isa.TO_LE}[m.group(2)]
    return _Line([Insn(code, _reg(m.group(1)), imm=int(m.group(3)))])


@_kernel(r"r(\d+) = " + _PTR)
def _k_ldx(m: re.Match[str]) -> _Line:
    mode = isa.MEMSX if m.group(2).startswith("s") else isa.MEM
    code = isa.LDX | mode | _SIZE_CODE[_SIZES[m.group(2)]]
    return _Line([Insn(code, _reg(m.group(1)), _reg(m.group(3)),
                       _s16(_int(m.group(4) or "0"), "offset"))])


@_kernel(_PTR + r" = (?:r(\d+)|(" + _NUM + r"))")
def _k_store(m: re.Match[str]) -> _Line:
    size = _SIZE_CODE[_SIZES[m.group(1)]]
    dst, off = _reg(m.group(2)), _s16(_int(m.group(3) or "0"), "offset")
    if m.group(4) is not None:
        return _Line([Insn(isa.STX | isa.MEM | size, dst, _reg(m.group(4)), off)])
    return _Line([Insn(isa.ST | isa.MEM | size, dst, 0, off, _s32(_int(m.group(5)), "imm"))])


@_kernel(r"lock " + _PTR + r" (\S+) r(\d+)")
def _k_lock(m: re.Match[str]) -> _Line:
    op = _ALU_BY_STR.get(m.group(4))
    if op not in ATOMIC_ALU_STRING:
        raise ValueError(f"unknown atomic operator {m.group(4)!r}")
    size = _SIZE_CODE[_SIZES[m.group(1)]]
    return _Line([Insn(isa.STX | isa.ATOMIC | size, _reg(m.group(2)), _reg(m.group(5)),
                       _s16(_int(m.group(3) or "0"), "offset"), op)])


@_kernel(r"r(\d+) = atomic(64)?_(fetch_\w+|xchg|cmpxchg)\(" + _PTR_ARG
         + r", (?:r0, )?r(\d+)\)")
def _k_atomic(m: re.Match[str]) -> _Line:
    name = m.group(3)
    if name == "xchg":
        imm = isa.XCHG
    elif name == "cmpxchg":
        imm = isa.CMPXCHG
    elif name[6:] in _ATOMIC_BY_NAME:
        imm = _ATOMIC_BY_NAME[name[6:]] | isa.FETCH
    else:
        raise ValueError(f"unknown atomic {name!r}")
    size = _SIZE_CODE[_SIZES[m.group(4)]]
    return _Line([Insn(isa.STX | isa.ATOMIC | size, _reg(m.group(5)), _reg(m.group(7)),
                       _s16(_int(m.group(6)), "offset"), imm)])


@_kernel(r"r0 = \*\((u8|u16|u32) \*\)skb\[(?:r(\d+) \+ )?(" + _NUM + r")\]")
def _k_ldabs(m: re.Match[str]) -> _Line:
    size = _SIZE_CODE[_SIZES[m.group(1)]]
    imm = _s32(_int(m.group(3)), "imm")
    if m.group(2) is None:
        return _Line([Insn(isa.LD | isa.ABS | size, imm=imm)])
    return _Line([Insn(isa.LD | isa.IND | size, src=_reg(m.group(2)), imm=imm)])


_PSEUDO = (r"(?:map\[(fd|idx):(-?\d+)\](?:\[0\]\+(\d+))?|func\[(?:pc([-+]\d+)|(\w+))\]"
           r"|btf_id\[(-?\d+)\](?:\[btf_fd:(\d+)\])?)")


@_kernel(r"r(\d+) = " + _PSEUDO)
def _k_ldimm_pseudo(m: re.Match[str]) -> _Line:
    dst = _reg(m.group(1))
    if m.group(2) is not None:
        value = m.group(4) is not None
        src = {("fd", False): isa.PSEUDO_MAP_FD, ("idx", False): isa.PSEUDO_MAP_IDX,
               ("fd", True): isa.PSEUDO_MAP_VALUE,
               ("idx", True): isa.PSEUDO_MAP_IDX_VALUE}[(m.group(2), value)]
        offset = int(m.group(4) or 0) & 0xFFFFFFFF
        return _Line([Insn(isa.LD | isa.IMM | isa.DW, dst, src, imm=_s32(int(m.group(3)), "map")),
                      Insn(0, imm=offset - (1 << 32) if offset >> 31 else offset)])
    if m.group(7) is not None:
        btf_fd = int(m.group(8) or 0) & 0xFFFFFFFF
        return _Line([Insn(isa.LD | isa.IMM | isa.DW, dst, isa.PSEUDO_BTF_ID,
                           imm=_s32(int(m.group(7)), "btf id")),
                      Insn(0, imm=btf_fd - (1 << 32) if btf_fd >> 31 else btf_fd)])
    first = Insn(isa.LD | isa.IMM | isa.DW, dst, isa.PSEUDO_FUNC, imm=int(m.group(5) or 0))
    return _Line([first, Insn(0)], m.group(6), "imm")


def _lddw(dst: int, value: int) -> list[Insn]:
    if not -(1 << 63) <= value < (1 << 64):
        raise ValueError(f"constant {value} does not fit in 64 bits")
    value &= (1 << 64) - 1
    lo, hi = value & 0xFFFFFFFF, value >> 32
    return [Insn(isa.LD | isa.IMM | isa.DW, dst, imm=lo - (1 << 32) if lo >> 31 else lo),
            Insn(0, imm=hi - (1 << 32) if hi >> 31 else hi)]


def _k_alu(m: re.Match[str], code_hint: int | None = None) -> _Line:
    reg, dst, opstr = m.group(1), _reg(m.group(2)), m.group(3)
    cls = _cls(reg)
    sign = opstr in _ALU_SIGN_BY_STR
    op = _ALU_SIGN_BY_STR[opstr] if sign else _ALU_BY_STR.get(opstr)
    if op is None:
        raise ValueError(f"unknown operator {opstr!r}")
    off = 1 if sign else 0
    if m.group(5) is not None:
        if m.group(5) != reg:
            raise ValueError("mixed r and w registers")
        if m.group(4):
            off = int(m.group(4)[2:-1])
        return _Line([Insn(cls | op | isa.X, dst, _reg(m.group(6)), off)])
    value = _int(m.group(7))
    is_hex = m.group(7).lower().lstrip("+-").startswith("0x")
    wide = m.group(8) is not None or code_hint == isa.LD | isa.IMM | isa.DW or (
        code_hint is None and op == isa.MOV and reg == "r"
        and (is_hex or not -(1 << 31) <= value < (1 << 31)))
    if wide:
        if op != isa.MOV or reg != "r":
            raise ValueError("a 64-bit constant needs 'rN = ...'")
        return _Line(_lddw(dst, value))
    return _Line([Insn(cls | op | isa.K, dst, 0, off, _s32(value, "imm"))])


_K_PATTERNS.append((re.compile(_REG + r" (\S+) (?:(\(s(?:8|16|32)\))?" + _REG + r"|(" + _NUM
                               + r")( ll)?)$"), _k_alu))


# ---- uBPF / bpf_conformance dialect --------------------------------------------------
_U_REG = re.compile(r"%r(\d+)$")
_U_MEM = re.compile(r"\[%r(\d+)\s*(?:([-+])\s*(" + _UNUM + r"))?\]$")


def _u_reg(text: str) -> int:
    m = _U_REG.match(text)
    if m is None:
        raise ValueError(f"expected a register, got {text!r}")
    return _reg(m.group(1))


def _u_mem(text: str) -> tuple[int, int]:
    m = _U_MEM.match(text.replace(" ", ""))
    if m is None:
        raise ValueError(f"expected [%rN+off], got {text!r}")
    off = _int(m.group(3)) if m.group(3) else 0
    return _reg(m.group(1)), _s16(-off if m.group(2) == "-" else off, "offset")


def _u_target(text: str) -> tuple[int, str | None]:
    if text[:1] in "+-":
        return _int(text), None
    return 0, text


def _u_alu(mn: str, ops: list[str]) -> _Line:
    off = 0
    m = re.match(r"(s?div|s?mod|movsx(?:8|16|32)|[a-z]+?)(32|64)?$", mn)
    if m is None:
        raise ValueError(f"cannot parse {mn!r}")
    base, width = m.group(1), m.group(2)
    if base.startswith("movsx"):
        off, base = int(base[5:]), "mov"
        width = width if width else "64"
        if mn.endswith("32") and mn[5:-2] in ("8", "16"):
            width = "32"
    if base in ("sdiv", "smod"):
        off, base = 1, base[1:]
    rows = _BY_MNEMONIC.get(base + ("32" if width == "32" else ""))
    if not rows:
        raise ValueError(f"invalid mnemonic {mn!r}")
    dst = _u_reg(ops[0])
    if rows[0].kind is Kind.NEG:
        _arity(mn, ops, 1)
        return _Line([Insn(rows[0].code, dst)])
    _arity(mn, ops, 2)
    row = next(r for r in rows if r.uses_reg_src == ops[1].startswith("%"))
    if row.uses_reg_src:
        return _Line([Insn(row.code, dst, _u_reg(ops[1]), off)])
    return _Line([Insn(row.code, dst, 0, off, _s32(_int(ops[1]), "imm"))])


def _arity(mn: str, ops: list[str], count: int) -> None:
    if len(ops) != count:
        raise ValueError(f"{mn} takes {count} operand(s), got {len(ops)}")


def _u_lock(ops: list[str]) -> _Line:
    fetch = bool(ops) and ops[0] == "fetch"
    ops = ops[1:] if fetch else ops
    if len(ops) != 3:
        raise ValueError("invalid number of operands for lock")
    name = ops[0]
    width = isa.W if name.endswith("32") else isa.DW
    name = name.removesuffix("32")
    if name in _ATOMIC_BY_NAME:
        imm = _ATOMIC_BY_NAME[name] | (isa.FETCH if fetch else 0)
    elif name in ("xchg", "cmpxchg"):
        imm = isa.XCHG if name == "xchg" else isa.CMPXCHG
    else:
        raise ValueError(f"unknown atomic operation {name!r}")
    dst, off = _u_mem(ops[1])
    return _Line([Insn(isa.STX | isa.ATOMIC | width, dst, _u_reg(ops[2]), off, imm)])


def _u_jump(mn: str, ops: list[str]) -> _Line:
    if mn in ("ja", "ja32"):
        _arity(mn, ops, 1)
        value, label = _u_target(ops[0])
        if mn == "ja":
            return _Line([Insn(isa.JMP | isa.JA, off=_s16(value, "offset"))], label)
        return _Line([Insn(isa.JMP32 | isa.JA, imm=_s32(value, "offset"))], label, "imm")
    _arity(mn, ops, 3)
    rows = _BY_MNEMONIC[mn]
    row = next(r for r in rows if r.uses_reg_src == ops[1].startswith("%"))
    value, label = _u_target(ops[2])
    dst = _u_reg(ops[0])
    if row.uses_reg_src:
        return _Line([Insn(row.code, dst, _u_reg(ops[1]), _s16(value, "offset"))], label)
    return _Line([Insn(row.code, dst, 0, _s16(value, "offset"), _s32(_int(ops[1]), "imm"))],
                 label)


def _u_call(ops: list[str]) -> _Line:
    if ops and ops[0] in ("helper", "local", "runtime"):
        mode, ops = ops[0], ops[1:]
    else:
        mode = "helper"
    _arity("call", ops, 1)
    if mode == "local":
        value, label = _u_target(ops[0])
        return _Line([Insn(isa.JMP | isa.CALL, src=isa.PSEUDO_CALL, imm=value)], label, "imm")
    if ops[0].startswith("%"):
        return _Line([Insn(isa.JMP | isa.CALL | isa.X, dst=_u_reg(ops[0]))])
    src = isa.PSEUDO_KFUNC_CALL if mode == "runtime" else 0
    return _Line([Insn(isa.JMP | isa.CALL, src=src, imm=_s32(_int(ops[0]), "imm"))])


def _u_mem_insn(mn: str, ops: list[str]) -> _Line:
    rows = _BY_MNEMONIC.get(mn)
    if not rows:
        raise ValueError(f"invalid mnemonic {mn!r}")
    row = rows[0]
    if row.kind is Kind.LDDW:
        _arity(mn, ops, 2)
        return _Line(_lddw(_u_reg(ops[0]), _int(ops[1])))
    if row.kind is Kind.LDX:
        _arity(mn, ops, 2)
        src, off = _u_mem(ops[1])
        return _Line([Insn(row.code, _u_reg(ops[0]), src, off)])
    if row.kind is Kind.LDABS:
        _arity(mn, ops, 1)
        return _Line([Insn(row.code, imm=_s32(_int(ops[0]), "imm"))])
    if row.kind is Kind.LDIND:
        _arity(mn, ops, 2)
        return _Line([Insn(row.code, src=_u_reg(ops[0]), imm=_s32(_int(ops[1]), "imm"))])
    _arity(mn, ops, 2)
    dst, off = _u_mem(ops[0])
    if row.kind is Kind.STX:
        return _Line([Insn(row.code, dst, _u_reg(ops[1]), off)])
    return _Line([Insn(row.code, dst, 0, off, _s32(_int(ops[1]), "imm"))])


def _ubpf(text: str) -> _Line:
    mn, _, rest = text.partition(" ")
    ops = [op.strip() for op in rest.split(",")] if rest.strip() else []
    if mn == "lock":
        return _u_lock(rest.split() and [o.strip(",") for o in rest.split()])
    if mn == "exit":
        _arity(mn, ops, 0)
        return _Line([Insn(isa.JMP | isa.EXIT)])
    if mn == "call":
        return _u_call(rest.split())
    m = re.match(r"(le|be|swap|bswap)(16|32|64)$", mn)
    if m:
        _arity(mn, ops, 1)
        code = {"le": isa.ALU | isa.END | isa.TO_LE, "be": isa.ALU | isa.END | isa.TO_BE,
                "swap": isa.ALU64 | isa.END | isa.TO_LE,
                "bswap": isa.ALU64 | isa.END | isa.TO_LE}[m.group(1)]
        return _Line([Insn(code, _u_reg(ops[0]), imm=int(m.group(2)))])
    if mn in _BY_MNEMONIC and _BY_MNEMONIC[mn][0].kind in (Kind.JCOND, Kind.JA, Kind.GOTOL):
        return _u_jump(mn, ops)
    if mn in _BY_MNEMONIC and _BY_MNEMONIC[mn][0].kind not in (Kind.ALU, Kind.NEG):
        return _u_mem_insn(mn, ops)
    return _u_alu(mn, ops)


# ---- driver ---------------------------------------------------------------------------
_COMMENT = re.compile(r"(?:^|\s)(?:#|//|;).*$")


def _parse_line(text: str) -> _Line:
    m = _PREFIX.match(text)
    assert m is not None
    hint = int(m.group(1), 16) if m.group(1) else None
    body = text[m.end():].strip()
    if "%r" in body or re.search(r"(?<!skb)(?<!map)(?<!func)(?<!btf_id)(?<!\])\[", body):
        return _ubpf(body)
    for pattern, fn in _K_PATTERNS:
        km = pattern.match(body)
        if km is not None:
            if fn is _k_alu:
                return _k_alu(km, hint)
            return fn(km)
    return _ubpf(body)


def assemble_insns(text: str) -> tuple[list[Insn], dict[int, str]]:
    """Assemble text to instructions; also return the label of each labelled slot."""
    state = _State()
    first_exit: int | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        label = re.fullmatch(r"([A-Za-z_.][\w.]*):", line)
        if label:
            if label.group(1) in state.labels:
                raise AsmError(f"duplicate label {label.group(1)!r}", line=lineno, text=raw)
            state.labels[label.group(1)] = len(state.out)
            continue
        try:
            parsed = _parse_line(line)
        except (ValueError, KeyError, IndexError, StopIteration) as err:
            msg = str(err) if isinstance(err, ValueError) else f"cannot parse {line!r}"
            raise AsmError(msg, line=lineno, col=raw.find(line) + 1, text=raw) from err
        if parsed.insns[0].code == isa.JMP | isa.EXIT and first_exit is None:
            first_exit = len(state.out)
        if parsed.label is not None:
            state.fixups.append((len(state.out), parsed.label, parsed.label_field, lineno, raw))
        state.out.extend(parsed.insns)
    if first_exit is not None:
        state.labels.setdefault("exit", first_exit)  # the bpf_conformance implicit label
    _resolve(state)
    names = {slot: name for name, slot in state.labels.items()}
    return state.out, names


def _resolve(state: _State) -> None:
    for slot, label, fld, lineno, raw in state.fixups:
        target = state.labels.get(label)
        if target is None:
            raise AsmError(f"undefined label {label!r}", line=lineno, text=raw)
        rel = target - slot - 1
        insn = state.out[slot]
        try:
            if fld == "off":
                state.out[slot] = Insn(insn.code, insn.dst, insn.src, _s16(rel, "offset"), insn.imm)
            else:
                state.out[slot] = Insn(insn.code, insn.dst, insn.src, insn.off, _s32(rel, "offset"))
        except ValueError as err:
            raise AsmError(str(err), line=lineno, text=raw) from err


def assemble(text: str, *, name: str = "", validate: bool = True) -> Program:
    """Assemble kernel-syntax or uBPF-dialect text into a validated :class:`Program`."""
    insns, labels = assemble_insns(text)
    if not insns:
        raise AsmError("no instructions", line=1)
    return Program(insns, name=name, validate=validate, labels=labels)
