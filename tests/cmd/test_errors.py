"""tcemu refuses what ip/tc refuse, with the first line they print (recorded fixtures)."""

from __future__ import annotations

import pytest

from tcemu.cmd import CommandError, UnsupportedCommandError, parse
from tests.cmd.fixtures import RecordedError, recorded_errors

CASES = recorded_errors()


def test_fixtures_were_recorded() -> None:
    assert len(CASES) > 150


@pytest.mark.parametrize("case", CASES, ids=[c.command for c in CASES])
def test_same_error_as_iproute2(case: RecordedError) -> None:
    line = case.command.removeprefix("[clsact] ")
    with pytest.raises(CommandError) as info:
        parse(line)
    assert not isinstance(info.value, UnsupportedCommandError)
    assert str(info.value) == case.message
    assert info.value.tool == line.split()[0]
