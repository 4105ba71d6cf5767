"""Whole level-1 logs of the corpus against the running kernel.

Each corpus case is loaded by the kernel oracle and verified by tcemu at log level 1; the
two logs are compared line by line after the differences documented in docs/verifier.md
are normalised away: the map address the kernel prints for an LD_IMM64 of a map (and the
column the following ``;`` lands in), and the statistics line (tcemu tracks no
precision, so its state counts differ).  Cases that take more than 100,000 instructions
are left to the agreement test (level 0).  At least 97% of the logs must be identical.
"""

from __future__ import annotations

import re

import pytest

from tcemu.bpf.verifier import MapInfo, VerifierError, verify
from tests.verifier.corpus import Case, build_program, load_cases

_MAP_LDIMM = re.compile(r"= (0xffff[0-9a-f]+|map\[(fd|idx):\d+\](\[0\]\+\d+)?)")
_PAD = re.compile(r" +;")
_STATS = re.compile(r"processed (\d+) insns .*")


def normalise(log: str) -> str:
    log = _MAP_LDIMM.sub("= MAP", log)
    log = _STATS.sub("processed", log)
    return _PAD.sub(" ;", log)


def _tcemu_log(case: Case) -> str:
    maps = {i: MapInfo(int(m.type), m.key_size, m.value_size, m.max_entries, "", m.flags)
            for i, m in enumerate(case.maps)}
    try:
        return verify(build_program(case), maps=maps, log_level=1, btf=case.btf,
                      strict_alignment=bool(case.prog_flags & 1)).log
    except VerifierError as err:
        return err.log


@pytest.mark.kernel
def test_level1_logs_match_the_kernel() -> None:
    from tests.verifier.kernel_oracle import kernel_verdict

    same, differ = 0, []
    for case in load_cases():
        kernel = kernel_verdict(case, 1)
        stats = _STATS.search(kernel.log)
        if stats is None or int(stats.group(1)) > 100_000:
            continue
        if normalise(kernel.log) == normalise(_tcemu_log(case)):
            same += 1
        else:
            differ.append(case.id)
    total = same + len(differ)
    assert total >= 500
    assert same / total >= 0.97, f"{same}/{total} identical; differ: {differ}"
