"""Soundness, as a property: a random program verify() accepts never faults at run time.

Programs mix unknown scalars (``bpf_get_prandom_u32``), 64- and 32-bit ALU, copies (which
link registers, so that a branch on one bounds the others), spills and
fills, variable-offset stack accesses through a copy of r10 and forward branches that
refine ranges.  Every accepted one runs on both tiers with the drawn random values; a
VmFault (an access the verifier should have refused) fails the test.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcemu.bpf import asm
from tcemu.bpf.verifier import VerifierError, verify
from tcemu.bpf.vm import Vm

REGS = [0, 2, 3, 4, 5, 6, 7, 8, 9]
ALU_OPS = ["+=", "-=", "*=", "&=", "|=", "^=", "<<=", ">>=", "s>>=", "/=", "%="]
CONDS = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"]
SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}

reg = st.sampled_from(REGS)
imm = st.one_of(st.integers(-8, 64), st.integers(-(2**31), 2**31 - 1))


@st.composite
def _alu(draw: st.DrawFn) -> list[str]:
    w = draw(st.sampled_from("rw"))
    op = draw(st.sampled_from(ALU_OPS))
    dst = draw(reg)
    if op in ("<<=", ">>=", "s>>="):
        src = str(draw(st.integers(0, 63 if w == "r" else 31)))
    elif draw(st.booleans()):
        src = f"{w}{draw(reg)}"
    else:
        src = str(draw(imm) or 1)
    return [f"{w}{dst} {op} {src}"]


@st.composite
def _stack(draw: st.DrawFn) -> list[str]:
    size = draw(st.sampled_from(list(SIZES)))
    off = -SIZES[size] * draw(st.integers(1, 64 // SIZES[size]))
    r = draw(reg)
    if draw(st.booleans()):
        return [f"*({size} *)(r10 {off}) = r{r}"]
    return [f"r{r} = *({size} *)(r10 {off})"]


@st.composite
def _var_stack(draw: st.DrawFn) -> list[str]:
    # r1 = r10 + rX (masked or not), then an access below it: bounds checks decide.
    r = draw(reg)
    lines = ["r1 = r10"]
    if draw(st.booleans()):
        lines.append(f"r{r} &= {draw(st.sampled_from([7, 15, 31, 63, 255]))}")
    lines.append(f"r1 += r{r}")
    size = draw(st.sampled_from(list(SIZES)))
    off = -draw(st.integers(1, 80))
    if draw(st.booleans()):
        lines.append(f"*({size} *)(r1 {off}) = 7")
    else:
        lines.append(f"r{draw(reg)} = *({size} *)(r1 {off})")
    return lines


@st.composite
def _branch(draw: st.DrawFn, index: int, count: int) -> list[str]:
    target = draw(st.integers(index + 1, count))
    cond = draw(st.sampled_from(CONDS))
    rhs = f"r{draw(reg)}" if draw(st.booleans()) else str(draw(imm))
    w = "r" if rhs.startswith("r") else draw(st.sampled_from("rw"))
    return [f"if {w}{draw(reg)} {cond} {rhs} goto l{target}"]


@st.composite
def programs(draw: st.DrawFn) -> str:
    lines = ["call bpf_get_prandom_u32", "r6 = r0", "call bpf_get_prandom_u32", "r7 = r0",
             "r2 = r6", "r3 = r7"]
    lines += [f"r{r} = {draw(imm)}" for r in (0, 4, 5, 8, 9)]
    count = draw(st.integers(1, 14))
    for i in range(count):
        kind = draw(st.sampled_from(["alu", "alu", "mov", "stack", "var", "branch"]))
        lines.append(f"l{i}:")
        if kind == "alu":
            lines += draw(_alu())
        elif kind == "mov":
            w = draw(st.sampled_from("rw"))
            lines.append(f"{w}{draw(reg)} = {w}{draw(reg)}")
        elif kind == "stack":
            lines += draw(_stack())
        elif kind == "var":
            lines += draw(_var_stack())
        else:
            lines += draw(_branch(i, count))
    lines += [f"l{count}:", "r0 = 0", "exit"]
    return "\n".join(lines)


def _run(text: str, randoms: list[int], tier: str) -> None:
    values = list(randoms)

    def prandom(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return values.pop(0) if values else 0

    prog = asm.assemble(text)
    vm = Vm(helpers={7: prandom})
    vm.run(prog, memory=b"", tier=tier)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs(), st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2))
def test_accepted_programs_never_fault(text: str, randoms: list[int]) -> None:
    try:
        verify(asm.assemble(text, validate=False), log_level=0)
    except VerifierError:
        return
    for tier in ("interp", "jit"):
        _run(text, randoms, tier)


def test_generator_yields_accepted_programs() -> None:
    # A program of the generator's shape that the verifier accepts runs on both tiers.
    text = ("call bpf_get_prandom_u32\nr6 = r0\nr6 &= 63\nr1 = r10\nr1 += r6\n"
            "*(u8 *)(r1 -64) = 7\nr0 = *(u8 *)(r1 -64)\nr0 = 0\nexit")
    verify(asm.assemble(text), log_level=0)
    for tier in ("interp", "jit"):
        _run(text, [2**32 - 1, 5], tier)
    bad = text.replace("r6 &= 63", "r6 &= 127")
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(bad), log_level=0)
    assert info.value.first_error.startswith("invalid variable-offset write to stack R1")
