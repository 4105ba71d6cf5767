"""Agreement of verify() with the kernel's recorded verdicts on the whole corpus.

Every case of ``tests/verifier/corpus`` (the project's own and the applicable PREVAIL ones)
is verified at log level 0 (verdict and error line do not depend on the level) with its
maps described as the kernel oracle creates them (unnamed).  The issue's targets are
asserted on the project's own cases: at least 98% verdict agreement and at least 90% of
rejected cases with the kernel's first error line.  Every disagreement, own or PREVAIL,
must be listed with its explanation in ``docs/verifier.md``, and every case listed there
must still disagree.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from tcemu.bpf.verifier import MapInfo, VerifierError, verify
from tests.verifier.corpus import Case, build_program, first_error, load_cases

DOC = Path(__file__).resolve().parents[2] / "docs" / "verifier.md"
_ROW = re.compile(r"^\| `([^`]+)` \|")


def _run(case: Case) -> tuple[bool, str | None]:
    maps = {i: MapInfo(int(m.type), m.key_size, m.value_size, m.max_entries, "", m.flags)
            for i, m in enumerate(case.maps)}
    try:
        verify(build_program(case), maps=maps, log_level=0, btf=case.btf,
               strict_alignment=bool(case.prog_flags & 1))
    except VerifierError as err:
        return False, first_error(err.log)
    return True, None


@cache
def _results() -> dict[str, tuple[Case, bool, str | None]]:
    return {case.id: (case, *_run(case)) for case in load_cases()}


def _disagreements() -> dict[str, str]:
    out: dict[str, str] = {}
    for cid, (case, accepted, error) in _results().items():
        if accepted != case.expect_accepted:
            out[cid] = "verdict"
        elif not accepted and error != case.expect_error:
            out[cid] = "error line"
    return out


def _documented() -> set[str]:
    text = DOC.read_text()
    section = text.split("## Disagreements with the kernel", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for line in section.splitlines() if (m := _ROW.match(line))}


def test_targets_on_own_cases() -> None:
    own = [(c, ok, err) for c, ok, err in _results().values() if c.own]
    assert len(own) >= 150
    verdicts = sum(ok == c.expect_accepted for c, ok, _ in own) / len(own)
    rejects = [(c, ok, err) for c, ok, err in own if not c.expect_accepted]
    errors = sum(err == c.expect_error for c, _, err in rejects) / len(rejects)
    assert verdicts >= 0.98, f"verdict agreement {verdicts:.3f}"
    assert errors >= 0.90, f"first-error agreement {errors:.3f}"


def test_every_disagreement_is_documented() -> None:
    actual = _disagreements()
    documented = _documented()
    missing = sorted(set(actual) - documented)
    stale = sorted(documented - set(actual))
    assert not missing, f"undocumented disagreements: {[(c, actual[c]) for c in missing]}"
    assert not stale, f"documented but agreeing now: {stale}"
