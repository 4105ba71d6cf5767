"""Regions of acyclic code copied into their dispatch sites (``Translator.inline``): each
copy starts from the facts of the edge into it, edges emitted more than once hold the
join of every copy's facts, and a region left without a ``b = k`` is not emitted.

Seeded acyclic programs and bounds-checked packet parsers (the generators of
``test_jit_structure``), more seeds and every budget up to the program's length, against
the interpreter: r0, instruction count, memory, fault pc/address/access/region.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tcemu.bpf import Vm, assemble
from tcemu.bpf.jit import translate, translate_source
from tcemu.bpf.jit.runner import CODE_CACHE
from tests.bpf.test_jit_structure import (
    PARSER,
    _outcome,
    _raw_program,
    _skb_outcome,
    _skb_program,
)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    CODE_CACHE.clear()


@pytest.mark.parametrize(("seed", "size"), [*((s, 22) for s in range(300, 330)),
                                            *((s, 60) for s in range(400, 410))])
def test_copied_regions_agree_with_the_interpreter(seed: int, size: int) -> None:
    _agree(_outcome, _raw_program(seed, fault=seed % 5 == 2, size=size), 40)


@pytest.mark.parametrize("seed", range(100, 124))
def test_copied_parser_regions_agree_with_the_interpreter(seed: int) -> None:
    _agree(_skb_outcome, _skb_program(seed, fault=seed % 4 == 1), 20)


def _agree(outcome: Callable[..., object], text: str, steps: int) -> None:
    """Both tiers give the same outcome at the full budget and at about ``steps``
    budgets from 1 to the run's length."""
    expected = outcome(text, "interp")
    assert outcome(text, "jit") == expected
    if isinstance(expected, tuple) and expected[0] != "fault":
        insns = expected[1]
        assert isinstance(insns, int)
        for budget in range(1, insns, max(1, insns // steps)):
            assert outcome(text, "jit", budget) == outcome(text, "interp", budget), budget


def test_copies_replace_dispatches(monkeypatch: pytest.MonkeyPatch) -> None:
    tests = []
    for total in (0, translate._INLINE_TOTAL):
        monkeypatch.setattr(translate, "_INLINE_TOTAL", total)
        tests.append(sum(translate_source(Vm(), assemble(_raw_program(seed, size=22)))
                         .count("if b == ") for seed in range(300, 316)))
    assert tests[1] < tests[0] / 2
    source = translate_source(Vm(), assemble(PARSER))
    assert "if b == " not in source          # every region copied where it is entered
