"""Print instructions in the kernel's syntax (``kernel/bpf/disasm.c`` ``print_bpf_insn``).

The verifier log and ``bpftool prog dump xlated`` print ``0: (b7) r0 = 0``; so do we, so
traces diff against real kernel output.  Where the kernel's plain printer has no syntax of
its own we use bpftool's callback syntax (``map[fd:3]``, ``map[idx:0][0]+8``) and say so
with a ``KERNEL-DIFF`` tag.  :mod:`tcemu.bpf.asm` reads all of it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tcemu.bpf import isa
from tcemu.bpf.isa import OPCODES, Insn, Kind
from tcemu.bpf.uapi import HELPER_NAMES

if TYPE_CHECKING:
    from tcemu.bpf.program import Program

__all__ = ["ImmNamer", "format_insn", "format_program", "helper_name"]

# The kernel's operator strings (disasm.c bpf_alu_string / bpf_jmp_string / ...).
ALU_STRING = {isa.ADD: "+=", isa.SUB: "-=", isa.MUL: "*=", isa.DIV: "/=", isa.OR: "|=",
              isa.AND: "&=", isa.LSH: "<<=", isa.RSH: ">>=", isa.MOD: "%=", isa.XOR: "^=",
              isa.MOV: "=", isa.ARSH: "s>>="}
ALU_SIGN_STRING = {isa.DIV: "s/=", isa.MOD: "s%="}
MOVSX_STRING = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
LDST_STRING = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
LDSX_STRING = {1: "s8", 2: "s16", 4: "s32"}
JMP_STRING = {isa.JEQ: "==", isa.JGT: ">", isa.JLT: "<", isa.JGE: ">=", isa.JLE: "<=",
              isa.JSET: "&", isa.JNE: "!=", isa.JSGT: "s>", isa.JSLT: "s<", isa.JSGE: "s>=",
              isa.JSLE: "s<="}
ATOMIC_ALU_STRING = {isa.ADD: "add", isa.AND: "and", isa.OR: "or", isa.XOR: "xor"}

ImmNamer = Callable[[Insn, int], str]
"""Like the kernel's ``cb_imm``: names the 64-bit immediate of an LD_IMM64."""


def helper_name(helper_id: int) -> str:
    """The kernel's ``func_id_name()``: ``bpf_map_lookup_elem`` or ``unknown``."""
    return HELPER_NAMES.get(helper_id, "unknown")


def _ldimm64_name(insn: Insn, value: int) -> str:
    # KERNEL-DIFF: the kernel prints 0x%llx for every kind (after it replaced fds by
    # pointers); bpftool names maps.  We name every pseudo kind so the text round-trips.
    imm, hi = insn.imm, (value >> 32) & 0xFFFFFFFF
    if insn.src == isa.PSEUDO_MAP_FD:
        return f"map[fd:{imm}]"
    if insn.src == isa.PSEUDO_MAP_IDX:
        return f"map[idx:{imm}]"
    if insn.src == isa.PSEUDO_MAP_VALUE:
        return f"map[fd:{imm}][0]+{hi}"
    if insn.src == isa.PSEUDO_MAP_IDX_VALUE:
        return f"map[idx:{imm}][0]+{hi}"
    if insn.src == isa.PSEUDO_FUNC:
        return f"func[pc{imm:+d}]"
    if insn.src == isa.PSEUDO_BTF_ID:  # insn[1].imm: the module BTF's fd, 0 for vmlinux
        return f"btf_id[{imm}]" + (f"[btf_fd:{value >> 32}]" if value >> 32 else "")
    return f"{value:#x}"


def _alu(insn: Insn, cls: int) -> str:
    reg = "w" if cls == isa.ALU else "r"
    op = insn.code & 0xF0
    if op == isa.END:
        if cls == isa.ALU64:
            return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"
        endian = "be" if insn.code & isa.TO_BE else "le"
        return f"r{insn.dst} = {endian}{insn.imm} r{insn.dst}"
    if op == isa.NEG:
        return f"{reg}{insn.dst} = -{reg}{insn.dst}"
    sign = op in ALU_SIGN_STRING and insn.off == 1
    opstr = ALU_SIGN_STRING[op] if sign else ALU_STRING[op]
    if insn.code & isa.X:
        movsx = MOVSX_STRING.get(insn.off, "") if op == isa.MOV else ""
        return f"{reg}{insn.dst} {opstr} {movsx}{reg}{insn.src}"
    return f"{reg}{insn.dst} {opstr} {insn.imm}"


def _stx(insn: Insn, size: int) -> str:
    ptr = f"({LDST_STRING[size]} *)(r{insn.dst} {insn.off:+d})"
    if insn.code & 0xE0 == isa.MEM:
        return f"*{ptr} = r{insn.src}"
    bits = "64" if size == 8 else ""
    imm = insn.imm
    if imm in ATOMIC_ALU_STRING:
        return f"lock *{ptr} {ALU_STRING[imm]} r{insn.src}"
    if imm & isa.FETCH and imm & ~isa.FETCH in ATOMIC_ALU_STRING:
        name = ATOMIC_ALU_STRING[imm & ~isa.FETCH]
        return f"r{insn.src} = atomic{bits}_fetch_{name}({ptr}, r{insn.src})"
    if imm == isa.CMPXCHG:
        return f"r0 = atomic{bits}_cmpxchg({ptr}, r0, r{insn.src})"
    if imm == isa.XCHG:
        return f"r{insn.src} = atomic{bits}_xchg({ptr}, r{insn.src})"
    return f"BUG_{insn.code:02x}"


def _ld(insn: Insn, size: int, nxt: Insn | None, namer: ImmNamer) -> str:
    mode = insn.code & 0xE0
    if mode == isa.ABS:
        return f"r0 = *({LDST_STRING[size]} *)skb[{insn.imm}]"
    if mode == isa.IND:
        return f"r0 = *({LDST_STRING[size]} *)skb[r{insn.src} + {insn.imm}]"
    hi = nxt.imm if nxt is not None else 0
    value = ((hi & 0xFFFFFFFF) << 32) | (insn.imm & 0xFFFFFFFF)
    return f"r{insn.dst} = {namer(insn, value)}"


def _call(insn: Insn) -> str:
    if insn.src == isa.PSEUDO_CALL:
        return f"call pc{insn.imm:+d}"
    if insn.src == isa.PSEUDO_KFUNC_CALL:
        # KERNEL-DIFF: the verifier log prints the kfunc's BTF name; we have no BTF here.
        return f"call kfunc#{insn.imm}"
    return f"call {helper_name(insn.imm)}#{insn.imm}"


def _jmp(insn: Insn, cls: int) -> str:
    op = insn.code & 0xF0
    if op == isa.CALL:
        if insn.code & isa.X:
            # KERNEL-DIFF: callx is a bpf_conformance extension the kernel cannot print.
            return f"callx r{insn.dst}"
        return _call(insn)
    if insn.code == isa.JMP | isa.JA:
        return f"goto pc{insn.off:+d}"
    if insn.code == isa.JMP32 | isa.JA:
        return f"gotol pc{insn.imm:+d}"
    if insn.code == isa.JMP | isa.EXIT:
        return "exit"
    reg = "w" if cls == isa.JMP32 else "r"
    if op not in JMP_STRING:
        return f"BUG_jmp_{insn.code:02x}"
    if insn.code & isa.X:
        return (f"if {reg}{insn.dst} {JMP_STRING[op]} {reg}{insn.src} "
                f"goto pc{insn.off:+d}")
    return (f"if {reg}{insn.dst} {JMP_STRING[op]} {insn.imm & 0xFFFFFFFF:#x} "
            f"goto pc{insn.off:+d}")


def format_insn(insn: Insn, nxt: Insn | None = None, *,
                namer: ImmNamer = _ldimm64_name) -> str:
    """The kernel's text for one instruction, without the ``idx: `` prefix.

    ``nxt`` is the following slot, needed for the upper half of an LD_IMM64.
    """
    cls = insn.code & 0x07
    info = OPCODES.get(insn.code)
    size = isa.SIZE_BYTES[insn.code & 0x18]
    if cls in (isa.ALU, isa.ALU64):
        text = _alu(insn, cls) if info is not None else f"BUG_alu_{insn.code:02x}"
    elif cls == isa.STX:
        text = _stx(insn, size)
    elif cls == isa.ST:
        text = (f"*({LDST_STRING[size]} *)(r{insn.dst} {insn.off:+d}) = {insn.imm}"
                if insn.code & 0xE0 == isa.MEM else f"BUG_st_{insn.code:02x}")
    elif cls == isa.LDX:
        names = LDSX_STRING if insn.code & 0xE0 == isa.MEMSX else LDST_STRING
        text = (f"r{insn.dst} = *({names[size]} *)(r{insn.src} {insn.off:+d})"
                if size in names else f"BUG_ldx_{insn.code:02x}")
    elif cls == isa.LD:
        text = _ld(insn, size, nxt, namer)
    else:
        text = _jmp(insn, cls)
    return f"({insn.code:02x}) {text}"


def format_program(program: Program | Sequence[Insn], *,
                   namer: ImmNamer = _ldimm64_name) -> list[str]:
    """One ``idx: (code) text`` line per instruction; LD_IMM64 takes one line, two slots."""
    insns: Sequence[Insn] = program if isinstance(program, Sequence) else program.insns
    lines: list[str] = []
    idx = 0
    while idx < len(insns):
        insn = insns[idx]
        wide = OPCODES.get(insn.code) is not None and OPCODES[insn.code].kind is Kind.LDDW
        nxt = insns[idx + 1] if wide and idx + 1 < len(insns) else None
        lines.append(f"{idx}: {format_insn(insn, nxt, namer=namer)}")
        idx += 2 if wide else 1
    return lines
