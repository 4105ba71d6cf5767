"""The printer writes kernel/bpf/disasm.c's syntax (literal expectations, as in the
verifier log and ``bpftool prog dump xlated``)."""

from __future__ import annotations

import pytest

from tcemu.bpf import Program
from tcemu.bpf.disasm import format_insn, format_program
from tcemu.bpf.isa import Insn

EXIT = Insn(0x95)


@pytest.mark.parametrize(("insn", "text"), [
    (Insn(0xB7, 0, 0, 0, 0), "(b7) r0 = 0"),
    (Insn(0xB4, 1, 0, 0, -1), "(b4) w1 = -1"),
    (Insn(0xBF, 6, 1), "(bf) r6 = r1"),
    (Insn(0x07, 1, 0, 0, -8), "(07) r1 += -8"),
    (Insn(0x0C, 2, 3), "(0c) w2 += w3"),
    (Insn(0x3F, 1, 2, 1), "(3f) r1 s/= r2"),
    (Insn(0x97, 1, 0, 1, 3), "(97) r1 s%= 3"),
    (Insn(0xC7, 1, 0, 0, 4), "(c7) r1 s>>= 4"),
    (Insn(0xBF, 0, 1, 8), "(bf) r0 = (s8)r1"),
    (Insn(0xBC, 0, 1, 16), "(bc) w0 = (s16)w1"),
    (Insn(0xBF, 0, 1, 32), "(bf) r0 = (s32)r1"),
    (Insn(0x87, 3), "(87) r3 = -r3"),
    (Insn(0x84, 3), "(84) w3 = -w3"),
    (Insn(0xDC, 1, 0, 0, 16), "(dc) r1 = be16 r1"),
    (Insn(0xD4, 1, 0, 0, 64), "(d4) r1 = le64 r1"),
    (Insn(0xD7, 1, 0, 0, 32), "(d7) r1 = bswap32 r1"),
    (Insn(0x61, 0, 1, 80), "(61) r0 = *(u32 *)(r1 +80)"),
    (Insn(0x79, 2, 10, -8), "(79) r2 = *(u64 *)(r10 -8)"),
    (Insn(0x91, 2, 10, -1), "(91) r2 = *(s8 *)(r10 -1)"),
    (Insn(0x89, 2, 10, -2), "(89) r2 = *(s16 *)(r10 -2)"),
    (Insn(0x7A, 10, 0, -8, 0), "(7a) *(u64 *)(r10 -8) = 0"),
    (Insn(0x62, 10, 0, -4, -1), "(62) *(u32 *)(r10 -4) = -1"),
    (Insn(0x73, 10, 1, -1), "(73) *(u8 *)(r10 -1) = r1"),
    (Insn(0xDB, 1, 2, 0, 0x00), "(db) lock *(u64 *)(r1 +0) += r2"),
    (Insn(0xC3, 1, 2, 4, 0x40), "(c3) lock *(u32 *)(r1 +4) |= r2"),
    (Insn(0xDB, 1, 2, 0, 0x51), "(db) r2 = atomic64_fetch_and((u64 *)(r1 +0), r2)"),
    (Insn(0xC3, 1, 2, 0, 0xA1), "(c3) r2 = atomic_fetch_xor((u32 *)(r1 +0), r2)"),
    (Insn(0xDB, 1, 2, 0, 0xE1), "(db) r2 = atomic64_xchg((u64 *)(r1 +0), r2)"),
    (Insn(0xDB, 1, 2, 0, 0xF1), "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)"),
    (Insn(0x28, 0, 0, 0, 12), "(28) r0 = *(u16 *)skb[12]"),
    (Insn(0x40, 0, 7, 0, 2), "(40) r0 = *(u32 *)skb[r7 + 2]"),
    (Insn(0x15, 0, 0, 1, 0), "(15) if r0 == 0x0 goto pc+1"),
    (Insn(0x55, 1, 0, -3, -1), "(55) if r1 != 0xffffffff goto pc-3"),
    (Insn(0x6D, 1, 2, 4), "(6d) if r1 s> r2 goto pc+4"),
    (Insn(0xA6, 1, 0, 2, 7), "(a6) if w1 < 0x7 goto pc+2"),
    (Insn(0x45, 1, 0, 0, 4), "(45) if r1 & 0x4 goto pc+0"),
    (Insn(0x05, 0, 0, -1), "(05) goto pc-1"),
    (Insn(0x06, 0, 0, 0, 70000), "(06) gotol pc+70000"),
    (Insn(0x85, 0, 0, 0, 1), "(85) call bpf_map_lookup_elem#1"),
    (Insn(0x85, 0, 0, 0, 12), "(85) call bpf_tail_call#12"),
    (Insn(0x85, 0, 0, 0, 99999), "(85) call unknown#99999"),
    (Insn(0x85, 0, 1, 0, 5), "(85) call pc+5"),
    (Insn(0x85, 0, 2, 0, 1234), "(85) call kfunc#1234"),
    (Insn(0x8D, 2), "(8d) callx r2"),
    (EXIT, "(95) exit"),
])
def test_format_insn(insn: Insn, text: str) -> None:
    assert format_insn(insn) == text


@pytest.mark.parametrize(("src", "imm", "imm2", "text"), [
    (0, 0, 0, "r1 = 0x0"),
    (0, -1, 0x12345678, "r1 = 0x12345678ffffffff"),
    (1, 3, 0, "r1 = map[fd:3]"),
    (2, 3, 16, "r1 = map[fd:3][0]+16"),
    (5, 0, 0, "r1 = map[idx:0]"),
    (6, 1, 8, "r1 = map[idx:1][0]+8"),
    (4, 2, 0, "r1 = func[pc+2]"),
    (3, 77, 0, "r1 = btf_id[77]"),
])
def test_format_ldimm64(src: int, imm: int, imm2: int, text: str) -> None:
    assert format_insn(Insn(0x18, 1, src, 0, imm), Insn(0, imm=imm2)) == f"(18) {text}"


def test_program_listing_counts_slots() -> None:
    prog = Program([Insn(0x18, 0, 0, 0, 1), Insn(0), Insn(0xB7, 1), EXIT])
    assert format_program(prog) == ["0: (18) r0 = 0x1", "2: (b7) r1 = 0", "3: (95) exit"]
    assert prog.disasm().splitlines()[1] == "2: (b7) r1 = 0"
