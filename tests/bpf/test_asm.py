"""The assembler: kernel syntax, the uBPF dialect, labels, errors, and asm(disasm(p)) == p."""

from __future__ import annotations

import pytest
from hypothesis import given

from tcemu.bpf import Program, assemble
from tcemu.bpf.asm import assemble_insns
from tcemu.bpf.disasm import format_program
from tcemu.bpf.isa import Insn
from tcemu.errors import AsmError
from tests.bpf.strategies import insn_lists


@given(insn_lists(max_size=30))
def test_asm_disasm_round_trip(insns: list[Insn]) -> None:
    text = "\n".join(format_program(insns))
    assert assemble_insns(text)[0] == insns


@given(insn_lists(max_size=10))
def test_round_trip_without_index_and_code_prefixes(insns: list[Insn]) -> None:
    # Without the "(18)" hint, an LD_IMM64 is recognised by its hex constant.
    lines = [line.split(") ", 1)[1] for line in format_program(insns)]
    assert assemble_insns("\n".join(lines))[0] == insns


def test_kernel_syntax_with_labels() -> None:
    prog = assemble("""
        ; count down from 3
            r0 = 0
            r1 = 3
        loop:
            r0 += r1
            r1 += -1
            if r1 != 0x0 goto loop
            call sum
            exit
        sum:                      # a bpf-to-bpf subprogram
            r0 = 42
            exit
    """)
    assert prog.insns[4] == Insn(0x55, 1, 0, -3, 0)
    assert prog.insns[5] == Insn(0x85, 0, 1, 0, 1)
    assert prog.labels[2] == "loop"
    assert prog.run() == 42


def test_kernel_syntax_constants() -> None:
    insns, _ = assemble_insns("r1 = 5\nr2 = 0x5\nr3 = 5 ll\nr4 = 4294967296\nw5 = -1")
    assert insns[0] == Insn(0xB7, 1, 0, 0, 5)
    assert insns[1:3] == [Insn(0x18, 2, 0, 0, 5), Insn(0)]
    assert insns[3:5] == [Insn(0x18, 3, 0, 0, 5), Insn(0)]
    assert insns[5:7] == [Insn(0x18, 4, 0, 0, 0), Insn(0, imm=1)]
    assert insns[7] == Insn(0xB4, 5, 0, 0, -1)


def test_ubpf_dialect() -> None:
    insns, _ = assemble_insns("""
        mov32 %r0, 1
        ldxw %r2, [%r1+4]
        stxdw [%r10-8], %r2
        lock fetch add [%r10-8], %r2
        lock cmpxchg32 [%r10-4], %r3
        jne %r0, 0x10, +1
        movsx1632 %r1, %r2
        sdiv %r1, -3
        be16 %r1
        call local fn
        call %r4
        call 7
        exit
    fn:
        exit
    """)
    assert insns == [
        Insn(0xB4, 0, 0, 0, 1), Insn(0x61, 2, 1, 4), Insn(0x7B, 10, 2, -8),
        Insn(0xDB, 10, 2, -8, 0x01), Insn(0xC3, 10, 3, -4, 0xF1), Insn(0x55, 0, 0, 1, 16),
        Insn(0xBC, 1, 2, 16), Insn(0x37, 1, 0, 1, -3), Insn(0xDC, 1, 0, 0, 16),
        Insn(0x85, 0, 1, 0, 3), Insn(0x8D, 4), Insn(0x85, 0, 0, 0, 7), Insn(0x95),
        Insn(0x95)]


@pytest.mark.parametrize(("text", "line", "message"), [
    ("r0 = 1\nr0 ?= 2\nexit", 2, "unknown operator"),
    ("r0 = 1\nfrobnicate %r0\nexit", 2, "invalid mnemonic"),
    ("goto nowhere\nexit", 1, "undefined label 'nowhere'"),
    ("x:\nx:\nexit", 2, "duplicate label"),
    ("r11 = 1\nexit", 1, "invalid register r11"),
    ("mov32 %r0, 2147483648\nexit", 1, "does not fit in 32 bits"),
    ("ldxb %r0, [%r1+0x10000]\nexit", 1, "does not fit in 16 bits"),
    ("lddw %r0\nexit", 1, "lddw takes 2 operand"),
    ("lock or [%r10-8]\nexit", 1, "invalid number of operands for lock"),
    ("r0 = 0\nw1 += r2\nexit", 2, "mixed r and w registers"),
])
def test_errors_carry_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(AsmError, match=message) as info:
        assemble(text)
    assert info.value.line == line


def test_empty_text_is_an_error() -> None:
    with pytest.raises(AsmError, match="no instructions"):
        assemble("; nothing\n")


def test_program_from_bytes_round_trip() -> None:
    prog = assemble("r0 = 0x1122334455667788\nexit")
    assert Program.from_bytes(prog.to_bytes()) == prog
    assert prog.run() == 0x1122334455667788
