"""The vendored conformance vectors, on both tiers.

* bpf_conformance (313 positive vectors): r0 must equal ``-- result``;
* bpf_conformance negatives (60): assembling or validating must fail with a typed error;
* uBPF (104 files): vectors with ``-- result`` and no error pass; vectors with an error
  are rejected with a typed error (at assembly, validation, load or run time).  uBPF's own
  helpers (ids 0-5) are re-implemented in ``tests/bpf/ubpf_helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tcemu.bpf import Program, assemble
from tcemu.bpf.vm import HelperFn, Tier
from tcemu.conformance import CONFORMANCE_HELPERS
from tcemu.errors import TcemuError
from tests.bpf.ubpf_helpers import UBPF_HELPERS
from tests.dataformat import Vector, parse

CORPUS = Path(__file__).parent.parent / "corpus"
POSITIVE = sorted((CORPUS / "bpf_conformance" / "tests").glob("*.data"))
NEGATIVE = sorted((CORPUS / "bpf_conformance" / "negative").glob("*.data"))
UBPF = sorted(p for p in (CORPUS / "ubpf" / "tests").rglob("*.data")
              if p.parent.name != "elf")  # ELF-loader vectors belong to the loader tests
TIERS: list[Tier] = ["interp", "jit"]

# uBPF vectors that test uBPF's C API rather than the instruction set.
UBPF_API_ONLY = {"reload": "ubpf_load_code() called twice on one VM"}


def _program(vec: Vector) -> Program:
    raw = vec.raw()
    return Program.from_bytes(raw) if raw is not None else assemble(vec.sections.get("asm", ""))


def _run(vec: Vector, tier: Tier, helpers: dict[int, HelperFn] | None = None) -> int:
    return _program(vec).run(vec.memory(), tier, helpers=helpers)


def test_corpus_sizes() -> None:
    assert len(POSITIVE) == 313
    assert len(NEGATIVE) == 60
    assert len(UBPF) + len(list((CORPUS / "ubpf" / "tests" / "elf").glob("*.data"))) == 104


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.stem)
def test_bpf_conformance(path: Path, tier: Tier) -> None:
    vec = parse(path)
    expected = vec.result()
    assert expected is not None
    assert _run(vec, tier, dict(CONFORMANCE_HELPERS)) == expected


@pytest.mark.parametrize("path", NEGATIVE, ids=lambda p: p.stem)
def test_bpf_conformance_negative(path: Path) -> None:
    """A negative vector must not pass: a typed error, or (for the runner check
    ``incorrect_return_value_high_bits``) a result different from the wrong ``-- result``."""
    vec = parse(path)
    try:
        r0 = _run(vec, "interp", dict(CONFORMANCE_HELPERS))
    except TcemuError:
        return
    assert not vec.expects_error, f"{path.name}: expected an error, got r0={r0:#x}"
    assert r0 != vec.result()


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("path", UBPF, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ubpf(path: Path, tier: Tier) -> None:
    vec = parse(path)
    if path.stem in UBPF_API_ONLY:
        pytest.skip(f"uBPF API behaviour, not ISA: {UBPF_API_ONLY[path.stem]}")
    if vec.result() is None and not vec.expects_error:
        # An assembler vector: the text must assemble to exactly the raw words.
        raw = vec.raw()
        assert raw is not None, f"{path.name} has neither a result, an error nor raw bytes"
        assert assemble(vec.sections["asm"], validate=False).to_bytes() == raw
        return
    if vec.expects_error:
        with pytest.raises(TcemuError):
            _run(vec, tier, dict(UBPF_HELPERS))
        return
    expected = vec.result()
    assert expected is not None, f"{path.name} has neither a result nor an error"
    assert _run(vec, tier, dict(UBPF_HELPERS)) == expected
