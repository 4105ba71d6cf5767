"""The one copy of eBPF ALU, jump and byte-order semantics, shared by both execution tiers.

Each operation is a Python *expression template* over ``{a}`` (the destination value),
``{b}`` (the source operand in canonical form: a u64 for 64-bit ops, a u32 for 32-bit ops,
with immediates sign-extended first as RFC 9669 says) and ``{w}`` (the same source before
truncation to 32 bits, for 32-bit ops that mask their result anyway).  The interpreter
(``vm.py``) compiles each template once into a closure factory; the translator (``jit.py``)
pastes the same template into the Python source it generates.  Registers always hold
canonical u64 values, so 32-bit results are zero-extended by construction.

Kernel facts encoded here (``kernel/bpf/core.c``, RFC 9669 section 4):
* shift counts are masked to 63 (64-bit) or 31 (32-bit);
* unsigned division by zero gives 0, modulo by zero leaves the dividend (32-bit: truncated);
* signed division truncates toward zero, ``INT_MIN / -1 == INT_MIN`` and
  ``INT_MIN % -1 == 0``; the signed remainder takes the dividend's sign;
* ``le``/``be`` truncate to the width then (for ``be``/``bswap``) swap on this little-endian
  model; ``bswap`` (ALU64) swaps unconditionally.
"""

from __future__ import annotations

from collections.abc import Callable

from tcemu.bpf import isa
from tcemu.bpf.ops import AluOp, Atomic, Cond

__all__ = [
    "ALU32",
    "ALU64",
    "COND",
    "ENV",
    "M32",
    "M64",
    "atomic_body",
    "endian_expr",
    "s32",
    "s64",
]

M64 = 0xFFFF_FFFF_FFFF_FFFF
M32 = 0xFFFF_FFFF


def s64(x: int) -> int:
    """Reinterpret a u64 as signed."""
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    """Reinterpret the low 32 bits as signed."""
    x &= M32
    return x - (1 << 32) if x >> 31 else x


def _sdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _smod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def sdiv64(a: int, b: int) -> int:
    return _sdiv(s64(a), s64(b)) & M64 if b else 0


def smod64(a: int, b: int) -> int:
    return _smod(s64(a), s64(b)) & M64 if b else a


def sdiv32(a: int, b: int) -> int:
    return _sdiv(s32(a), s32(b)) & M32 if b & M32 else 0


def smod32(a: int, b: int) -> int:
    return _smod(s32(a), s32(b)) & M32 if b & M32 else a & M32


def sx(x: int, bits: int) -> int:
    """Sign-extend the low ``bits`` of x to a u64."""
    x &= (1 << bits) - 1
    return (x - (1 << bits)) & M64 if x >> (bits - 1) else x


def bswap(x: int, nbytes: int) -> int:
    return int.from_bytes((x & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


# Names the templates may use; both tiers evaluate them in this namespace.
ENV: dict[str, object] = {
    "M64": M64, "M32": M32, "s64": s64, "s32": s32, "sdiv64": sdiv64, "smod64": smod64,
    "sdiv32": sdiv32, "smod32": smod32, "sx": sx, "bswap": bswap,
}

# Operations whose result modulo 2**k depends only on the operands modulo 2**k.  Their
# templates below are "raw expression, then mask"; the translator may chain several raw
# expressions on one register and mask once (``ring_template``), or drop the mask when it
# can prove the raw value already lies in [0, 2**k) (then the mask is the identity).
RING: dict[AluOp, str] = {
    AluOp.ADD: "{a} + {w}",
    AluOp.SUB: "{a} - {w}",
    AluOp.MUL: "{a} * {w}",
    AluOp.OR: "{a} | {w}",
    AluOp.AND: "{a} & {w}",
    AluOp.XOR: "{a} ^ {w}",
    AluOp.LSH: "{a} << ({w} & {bits1})",
}


def ring_template(op: AluOp, is64: bool, const: int | None = None) -> str:
    """``RING[op]`` without the final mask, over ``{a}`` and ``{w}``; with ``const`` (the
    canonical immediate) a shift count is decided now."""
    bits1 = 63 if is64 else 31
    if op is AluOp.LSH and const is not None:
        return f"{{a}} << {const & bits1}"
    return RING[op].replace("{bits1}", str(bits1))


def _ring(op: AluOp, is64: bool) -> str:
    return f"({ring_template(op, is64)}) & {'M64' if is64 else 'M32'}"


# Placeholders: {a} the destination (a canonical u64), {a32} its low 32 bits (the caller
# passes "({a} & M32)" or, when it knows the value is below 2**32, just the value), {b} the
# source in canonical form for the width, {w} the source before truncation to 32 bits.
ALU64: dict[AluOp, str] = {
    **{op: _ring(op, True) for op in RING},
    AluOp.DIV: "({a} // {b} if {b} else 0)",
    AluOp.SDIV: "sdiv64({a}, {b})",
    AluOp.RSH: "{a} >> ({b} & 63)",
    AluOp.ARSH: "(s64({a}) >> ({b} & 63)) & M64",
    AluOp.MOD: "({a} % {b} if {b} else {a})",
    AluOp.SMOD: "smod64({a}, {b})",
    AluOp.NEG: "-{a} & M64",
    AluOp.MOV: "{b}",
    AluOp.MOVSX8: "sx({b}, 8)",
    AluOp.MOVSX16: "sx({b}, 16)",
    AluOp.MOVSX32: "sx({b}, 32)",
}

ALU32: dict[AluOp, str] = {
    # {w} is the source *before* truncation to 32 bits: where the low 32 bits of the result
    # only depend on the low 32 bits of the operands, the final mask does the truncation.
    **{op: _ring(op, False) for op in RING},
    AluOp.DIV: "({a32} // {b} if {b} else 0)",
    AluOp.SDIV: "sdiv32({a}, {b})",
    AluOp.RSH: "{a32} >> ({w} & 31)",
    AluOp.ARSH: "(s32({a}) >> ({w} & 31)) & M32",
    AluOp.MOD: "({a32} % {b} if {b} else {a32})",
    AluOp.SMOD: "smod32({a}, {b})",
    AluOp.NEG: "-{a} & M32",
    AluOp.MOV: "{b}",
    AluOp.MOVSX8: "sx({w}, 8) & M32",
    AluOp.MOVSX16: "sx({w}, 16) & M32",
    AluOp.MOVSX32: "{b}",  # not encodable (validate rejects off=32 on ALU32)
}


def alu_template(op: AluOp, is64: bool, const: int | None = None) -> str:
    """The template of ``op``; with ``const`` (a canonical immediate: :func:`alu_operand`)
    the parts that only depend on it are decided now (division guards, shift counts)."""
    if const is None:
        return (ALU64 if is64 else ALU32)[op]
    a = "{a}" if is64 else "{a32}"
    if op is AluOp.DIV:
        return f"{a} // {const}" if const else "0"
    if op is AluOp.MOD:
        return f"{a} % {const}" if const else a
    count = const & (63 if is64 else 31)
    if op is AluOp.RSH:
        return f"{a} >> {count}"
    if op is AluOp.LSH:
        return f"({{a}} << {count}) & {'M64' if is64 else 'M32'}"
    if op is AluOp.ARSH:
        return f"(s64({{a}}) >> {count}) & M64" if is64 else f"(s32({{a}}) >> {count}) & M32"
    return (ALU64 if is64 else ALU32)[op]


# Conditions over views of the operands: unsigned conditions compare canonical values,
# signed ones compare values biased by 2**(width-1) (x ^ 2**63 orders u64 values as s64
# orders them), so no call is needed for a signed comparison.
COND: dict[Cond, str] = {
    Cond.JEQ: "{a} == {b}", Cond.JNE: "{a} != {b}", Cond.JGT: "{a} > {b}",
    Cond.JGE: "{a} >= {b}", Cond.JLT: "{a} < {b}", Cond.JLE: "{a} <= {b}",
    Cond.JSET: "{a} & {b}", Cond.JSGT: "{a} > {b}", Cond.JSGE: "{a} >= {b}",
    Cond.JSLT: "{a} < {b}", Cond.JSLE: "{a} <= {b}",
}
SIGN64 = 1 << 63
SIGN32 = 1 << 31


def endian_expr(kind: str, bits: int) -> str:
    """Template for ``le``/``be``/``bswap`` of ``{a}`` to ``bits`` on a little-endian host.

    A ``be``/``bswap`` of N bits applied to the result of an unsigned N-bit load is the same
    as a big-endian N-bit load (:data:`BE_LOAD`); the translator fuses the two.
    """
    mask = (1 << bits) - 1
    if kind == "le":
        return "{a}" if bits == 64 else f"{{a}} & {mask:#x}"
    return f"bswap({{a}}, {bits // 8})"


BE_LOAD = {2: ">H", 4: ">I", 8: ">Q"}


# The negation of each condition, so a loop can say "if r3 >= r4: break".
NEGATED: dict[Cond, Cond] = {
    Cond.JEQ: Cond.JNE, Cond.JNE: Cond.JEQ, Cond.JGT: Cond.JLE, Cond.JLE: Cond.JGT,
    Cond.JGE: Cond.JLT, Cond.JLT: Cond.JGE, Cond.JSGT: Cond.JSLE, Cond.JSLE: Cond.JSGT,
    Cond.JSGE: Cond.JSLT, Cond.JSLT: Cond.JSGE,
}


def operand_views(is64: bool, signed: bool) -> tuple[str, Callable[[int], int]]:
    """How to view a register in a comparison and how to view an immediate.

    The register view is a template over ``{r}`` (the u64 value) and ``{r32}`` (its low 32
    bits: "({r} & M32)", or the value itself when the caller knows it is below 2**32).
    """
    if is64:
        if signed:
            return "({r} ^ 0x8000000000000000)", lambda imm: (imm & M64) ^ SIGN64
        return "{r}", lambda imm: imm & M64
    if signed:
        return "({r32} ^ 0x80000000)", lambda imm: (imm & M32) ^ SIGN32
    return "{r32}", lambda imm: imm & M32


def alu_operand(is64: bool, imm: int) -> int:
    """An ALU immediate in canonical form: sign-extended to u64, or truncated to u32."""
    return imm & (M64 if is64 else M32)


def atomic_body(op: Atomic, reg: Callable[[int], str]) -> str:
    """Python statements for an atomic op; shared by both tiers (``reg(n)`` names rN)."""
    mask = "M32" if op.size == 4 else "M64"
    src = reg(op.src)
    lines = [f"a = ({reg(op.dst)} + {op.off}) & M64", "g = G[a >> 32]", "o = a & 0xFFFFFFFF",
             "old = U(g, o)[0]"]
    if op.op == isa.CMPXCHG:
        lines += [f"if old == {reg(0)} & {mask}:", f"    P(g, o, {src} & {mask})",
                  f"{reg(0)} = old"]
        return "\n".join(lines)
    new = {isa.ADD: f"(old + {src}) & {mask}", isa.OR: f"old | ({src} & {mask})",
           isa.AND: f"old & {src}", isa.XOR: f"old ^ ({src} & {mask})",
           isa.XCHG: f"{src} & {mask}"}[op.op]
    lines.append(f"P(g, o, {new})")
    if op.fetch:
        lines.append(f"{src} = old")
    return "\n".join(lines)
