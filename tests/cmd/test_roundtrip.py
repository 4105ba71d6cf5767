"""``parse(render(cmd)) == cmd``: the canonical text reads back as the same object."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tcemu.cmd import model as m
from tcemu.cmd import parse, render
from tests.cmd import strategies as s
from tests.cmd.test_ip import CASES as IP_CASES
from tests.cmd.test_tc import ALL as TC_CASES

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(s.link_adds())
def test_link_add(cmd: m.LinkAdd) -> None:
    assert parse(render(cmd)) == cmd


@SETTINGS
@given(s.qdisc_adds())
def test_qdisc_add(cmd: m.QdiscAdd) -> None:
    assert parse(render(cmd)) == cmd


@SETTINGS
@given(s.filter_adds)
def test_filter_add(cmd: m.FilterAdd) -> None:
    assert parse(render(cmd)) == cmd


EXAMPLES = [c[1] for c in IP_CASES + TC_CASES]


@pytest.mark.parametrize("cmd", EXAMPLES, ids=[c[0] for c in IP_CASES + TC_CASES])
def test_every_table_example(cmd: m.Command) -> None:
    assert parse(render(cmd)) == cmd


def test_verdicts_tc_cannot_write_are_refused() -> None:
    stolen = m.FilterAdd(dev="d", parent=0xFFFF_FFF2, filter=m.MatchallFilter(
        actions=(m.GactAction(control=m.TC_ACT_STOLEN),)))
    with pytest.raises(ValueError, match="STOLEN"):
        render(stolen)
    redirect = m.FilterAdd(dev="d", parent=0xFFFF_FFF2, filter=m.MatchallFilter(
        actions=(m.MirredAction(direction="egress", op="redirect", dev="x",
                                control=m.TC_ACT_OK),)))
    with pytest.raises(ValueError, match="stolen"):
        render(redirect)
