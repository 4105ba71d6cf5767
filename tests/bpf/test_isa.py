"""The opcode table and structural validation (kernel messages, with the insn index)."""

from __future__ import annotations

import pytest
from hypothesis import given

from tcemu.bpf import Program, assemble, isa
from tcemu.bpf.isa import OPCODES, Insn, decode_bytes, encode_insns, validate
from tcemu.errors import EncodingError, ValidationError
from tests.bpf.strategies import insn_lists

EXIT = Insn(0x95)


def test_table_covers_every_isa_group() -> None:
    kinds = {row.kind for row in OPCODES.values()}
    assert kinds == set(isa.Kind)
    # RFC 9669: 0x87 neg64, 0xd7 bswap, 0x3c/0x3f div (off=1 sdiv), 0xbf movsx, 0x91 ldsx,
    # 0x06 gotol, 0xdb atomic64, 0x18 lddw, 0x20 ld_abs, 0x40 ld_ind, 0x8d callx.
    for code in (0x87, 0xD7, 0x3C, 0x3F, 0xBF, 0x91, 0x06, 0xDB, 0xC3, 0x18, 0x20, 0x40, 0x8D):
        assert code in OPCODES
    assert 0x98 not in OPCODES  # LD_ABS | DW does not exist


@given(insn_lists())
def test_bytes_round_trip(insns: list[Insn]) -> None:
    assert decode_bytes(encode_insns(insns)) == tuple(insns)


def test_bytes_must_be_whole_insns() -> None:
    with pytest.raises(EncodingError, match="multiple of 8"):
        decode_bytes(b"\x95" + bytes(8))


@pytest.mark.parametrize(("insns", "index", "message"), [
    ([Insn(0x07, off=1), EXIT], 0, "BPF_ALU uses reserved fields"),
    ([Insn(0x07, src=1), EXIT], 0, "BPF_ALU uses reserved fields"),
    ([Insn(0x0F, imm=1), EXIT], 0, "BPF_ALU uses reserved fields"),
    ([Insn(0x3F, off=2), EXIT], 0, "BPF_ALU uses reserved fields"),
    ([Insn(0x2F, off=1), EXIT], 0, "BPF_ALU uses reserved fields"),   # only div/mod are signed
    ([Insn(0xBC, off=32), EXIT], 0, "BPF_MOV uses reserved fields"),  # movsx32 on ALU32
    ([Insn(0xB7, src=3), EXIT], 0, "BPF_MOV uses reserved fields"),
    ([Insn(0xD4, imm=8), EXIT], 0, "BPF_END uses reserved fields"),
    ([Insn(0x87, imm=1), EXIT], 0, "BPF_NEG uses reserved fields"),
    ([Insn(0x61, imm=1), EXIT], 0, "BPF_LDX uses reserved fields"),
    ([Insn(0x62, src=1), EXIT], 0, "BPF_ST uses reserved fields"),
    ([Insn(0x63, imm=1), EXIT], 0, "BPF_STX uses reserved fields"),
    ([Insn(0xDB, imm=0x02), EXIT], 0, "BPF_ATOMIC uses invalid atomic opcode 02"),
    ([Insn(0x20, dst=1), EXIT], 0, r"BPF_LD_\[ABS\|IND\] uses reserved fields"),
    ([Insn(0x05, imm=1), EXIT], 0, "BPF_JA uses reserved fields"),
    ([Insn(0x85, dst=1), EXIT], 0, "BPF_CALL uses reserved fields"),
    ([Insn(0x95, src=1)], 0, "BPF_EXIT uses reserved fields"),
    ([Insn(0x15, src=1), EXIT], 0, "BPF_JMP/JMP32 uses reserved fields"),
    ([Insn(0xB7, dst=11), EXIT], 0, "R11 is invalid"),
    ([Insn(0xBF, dst=0, src=12), EXIT], 0, "R12 is invalid"),
    ([Insn(0xFF), EXIT], 0, "unknown opcode ff"),
    ([Insn(0xB7), Insn(0x18)], 1, "invalid bpf_ld_imm64 insn"),
    ([Insn(0x18), Insn(0x00, dst=1), EXIT], 0, "invalid bpf_ld_imm64 insn"),
    ([Insn(0x18), Insn(0x95), EXIT], 0, "invalid bpf_ld_imm64 insn"),
    ([Insn(0x05, off=5), EXIT], 0, "jump out of range from insn 0 to 6"),
    ([Insn(0x05, off=-2), EXIT], 0, "jump out of range from insn 0 to -1"),
    ([Insn(0x05, off=1), Insn(0x18), Insn(0), EXIT], 0, "jump into the middle of ldimm64 insn 1"),
    ([Insn(0xB7)], 0, "last insn is not an exit or jmp"),
    ([Insn(0x85, src=1, imm=1), EXIT, Insn(0xB7)], 2, "last insn is not an exit or jmp"),
    ([Insn(0x85, src=1, imm=1), Insn(0x05, off=1), Insn(0xB7), EXIT], 1,
     "jump out of range from insn 1 to 3"),  # a jump may not leave its subprogram
    ([Insn(0x85, src=1, imm=9), EXIT], 0, "call to invalid destination"),
    ([], 0, "program is empty"),
])
def test_validate_rejects(insns: list[Insn], index: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        validate(insns)
    assert info.value.index == index
    assert f"insn {index}" in str(info.value)


def test_validation_error_carries_insn() -> None:
    with pytest.raises(ValidationError) as info:
        Program([Insn(0x07, off=1), EXIT])
    assert info.value.insn == Insn(0x07, off=1)


def test_valid_cpu_v4_program() -> None:
    prog = assemble("""
        r1 = 7
        r1 s/= -2
        w2 = (s8)w1
        r3 = (s32)r1
        r4 = bswap64 r1
        r5 = *(s16 *)(r10 -8)
        gotol pc+0
        r0 = 0
        exit
    """, validate=False)
    assert validate(prog.insns)
