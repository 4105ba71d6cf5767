"""Hypothesis strategies: any structurally valid instruction, drawn from the opcode table."""

from __future__ import annotations

from hypothesis import strategies as st

from tcemu.bpf import isa
from tcemu.bpf.isa import OPCODES, Insn, Kind, OpInfo

S16 = st.integers(-(1 << 15), (1 << 15) - 1)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)
REG = st.integers(0, 10)


def _field(allowed: frozenset[int] | None,
           default: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    return default if allowed is None else st.sampled_from(sorted(allowed))


@st.composite
def insn_slots(draw: st.DrawFn) -> list[Insn]:
    """One instruction (two slots for LD_IMM64) with every field the table allows."""
    info: OpInfo = draw(st.sampled_from(sorted(OPCODES.values(), key=lambda r: r.code)))
    dst = draw(_field(info.dst, REG))
    src = draw(_field(info.src, REG))
    off = draw(_field(info.offs, S16))
    imm = draw(_field(info.imms, S32))
    if info.kind is Kind.LDDW:
        if src in (isa.PSEUDO_FUNC, isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_IDX):
            return [Insn(info.code, dst, src, 0, imm), Insn(0)]
        return [Insn(info.code, dst, src, 0, imm), Insn(0, imm=draw(S32))]
    return [Insn(info.code, dst, src, off, imm)]


@st.composite
def insn_lists(draw: st.DrawFn, max_size: int = 20) -> list[Insn]:
    out: list[Insn] = []
    for slots in draw(st.lists(insn_slots(), min_size=1, max_size=max_size)):
        out.extend(slots)
    return out
