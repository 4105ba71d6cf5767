"""verify() against the running kernel: verdict, error line and the whole level-1 log.

The programs of ``test_verifier_messages.py`` that use no maps are loaded with
``BPF_PROG_LOAD`` (SCHED_CLS, GPL, log_level 1); tcemu must give the same verdict and
error line and, for these map-free programs, the very same log text.
"""

from __future__ import annotations

import pytest

from tcemu.bpf import asm
from tcemu.bpf.verifier import VerifierError, verify
from tcemu.errors import KernelError
from tests.verifier.corpus import first_error
from tests.verifier.test_verifier_messages import ACCEPTS, REJECTS

CASES = [(name, text) for name, text, _ in REJECTS if "map[" not in text]
CASES += [(name, text) for name, text in ACCEPTS if "map[" not in text]
# Logs that differ on purpose (see docs/verifier.md): structural errors are found before
# the walk in tcemu; tcemu tracks no precision, so the old state of an infinite loop lacks
# the kernel's "P" marks.
_LOG_DIFFERS = {"fall_off", "back_edge_loop"}


def _kernel(text: str, level: int) -> tuple[bool, str]:
    from tcemu.kernel.syscall import prog_load

    prog = asm.assemble(text, validate=False)
    try:
        with prog_load(prog.to_bytes(), log_level=level):
            return True, ""
    except KernelError as err:
        return False, err.log


def _tcemu(text: str, level: int) -> tuple[bool, str]:
    try:
        return True, verify(asm.assemble(text, validate=False), log_level=level).log
    except VerifierError as err:
        return False, err.log


@pytest.mark.kernel
@pytest.mark.parametrize(("name", "text"), CASES, ids=[c[0] for c in CASES])
def test_same_verdict_error_and_log(name: str, text: str) -> None:
    k_ok, k_log = _kernel(text, 1)
    t_ok, t_log = _tcemu(text, 1)
    assert t_ok == k_ok
    if not k_ok:
        assert first_error(t_log) == first_error(k_log)
        if name not in _LOG_DIFFERS:
            assert t_log == k_log
