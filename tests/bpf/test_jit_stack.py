"""Stores into the frame in the translated tier: runs of zero stores that touch become
one ``ZS<n>(S, lo)``; r10 is not bound when nothing reads it.  Seeded programs of
overlapping zero and non-zero stores of every size, with loads in between, are compared
with the interpreter (r0, instruction count)."""

from __future__ import annotations

import random

import pytest

from tcemu.bpf import Vm, assemble
from tcemu.bpf.jit import translate_source
from tcemu.bpf.vm import Tier
from tcemu.errors import VmFault


def _program(seed: int) -> str:
    rng = random.Random(seed)
    out = ["r0 = 0"] + [f"*(u64 *)(r10 -{8 * s}) = {rng.randrange(1, 1 << 31)}"
                        for s in range(1, 9)]
    at = rng.randrange(1, 64)
    for _ in range(rng.randrange(4, 30)):
        size = rng.choice((1, 2, 4, 8))
        pick = rng.random()
        if pick < 0.5:             # next to the previous store, below or above it
            at = max(size, min(64, at + rng.choice((-size, size, 0))))
        elif pick < 0.7:
            at = rng.randrange(size, 65)
        at = max(at, size)
        if rng.random() < 0.7:
            out.append(f"*(u{8 * size} *)(r10 -{at}) = 0")
        elif rng.random() < 0.5:
            out += ["r1 = 0", f"*(u{8 * size} *)(r10 -{at}) = r1"]
        else:
            out.append(f"*(u{8 * size} *)(r10 -{at}) = {rng.randrange(1, 200)}")
        if rng.random() < 0.15:
            out += [f"r2 = *(u{8 * size} *)(r10 -{at})", "r0 += r2"]
    for s in range(1, 9):
        out += [f"r2 = *(u64 *)(r10 -{8 * s})", "r0 ^= r2", "r0 *= 31"]
    out.append("exit")
    return "\n".join(out)


def _run(text: str, tier: Tier) -> tuple[int, int]:
    result = assemble(text).execute(b"", tier)
    return result.r0, result.insns


@pytest.mark.parametrize("seed", range(40))
def test_frame_stores_agree_with_the_interpreter(seed: int) -> None:
    text = _program(seed)
    assert _run(text, "jit") == _run(text, "interp")


def test_zero_runs_are_one_call() -> None:
    text = "\n".join(["*(u64 *)(r10 -8) = 0", "*(u64 *)(r10 -16) = 0", "r1 = 0",
                      "*(u32 *)(r10 -20) = r1", "*(u8 *)(r10 -30) = 0",
                      "r0 = *(u64 *)(r10 -16)", "exit"])
    source = translate_source(Vm(), assemble(text))
    assert "ZS20(S, 492)" in source
    assert "ZS1(S, 482)" in source
    assert "r10 = TOP" not in source       # nothing reads r10
    assert _run(text, "jit") == _run(text, "interp")


@pytest.mark.parametrize("text", ["*(u64 *)(r10 -8) = 0\n*(u64 *)(r10 +8) = 0\nr0 = 0\nexit",
                                  "*(u32 *)(r10 -4) = 0\nr0 = *(u64 *)(r10 -4)\nexit",
                                  "*(u64 *)(r10 -520) = 0\nr0 = 0\nexit"])
def test_frame_faults_agree(text: str) -> None:
    """Zero stores and loads past the frame (r10 unbound in the translated function)."""
    reports = []
    for tier in ("interp", "jit"):
        with pytest.raises(VmFault) as fault:
            _run(text, tier)
        reports.append((fault.value.pc, fault.value.addr, fault.value.access,
                        fault.value.region))
    assert reports[0] == reports[1]


# An atomic without fetch is one statement whose new value is ``old <op> <source>``: a
# source the translator knows as an expression (``0 ^ r1`` below: r4 was the constant 0)
# must keep its parentheses there (``+``, ``&`` bind tighter than ``^`` and ``|``).  Found
# by the kernel ISA differential (atomic_add after ``w4 ^= w1``).
ATOMIC_SOURCES = ["w4 ^= w1", "r4 |= r1", "r4 += r1", "w4 &= w1", "r4 -= r1", "r4 <<= 3"]


@pytest.mark.parametrize("source", ATOMIC_SOURCES)
@pytest.mark.parametrize("op", ["+=", "|=", "&=", "^="])
@pytest.mark.parametrize("size", ["u32", "u64"])
def test_atomic_source_expressions(source: str, op: str, size: str) -> None:
    text = "\n".join([
        "r1 = 0x1357",
        "r2 = 0x7531",
        "*(u64 *)(r10 -8) = r2",
        "r4 = 0",
        source,
        f"lock *({size} *)(r10 -8) {op} r4",
        "r0 = *(u64 *)(r10 -8)",
        "exit",
    ])
    assert _run(text, "jit") == _run(text, "interp"), translate_source(Vm(), assemble(text))
