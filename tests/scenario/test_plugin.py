"""The pytest plugin: scenario files are collected and run, fixtures and helpers work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcemu.pytest_plugin import assert_not_seen, assert_seen

ROOT = Path(__file__).resolve().parents[2]
LESSON = ROOT / "scenarios" / "03-tailcall-dispatch.tcemu.yaml"


def _copy_lesson(pytester: pytest.Pytester, name: str, change: tuple[str, str] = ("", "")) -> None:
    text = LESSON.read_text().replace("programs/", f"{ROOT}/scenarios/programs/")
    if change[0]:
        text = text.replace(*change)
    (pytester.path / name).write_text(text)


def test_scenario_files_are_collected_and_pass(pytester: pytest.Pytester) -> None:
    _copy_lesson(pytester, "dispatch.tcemu.yaml")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*dispatch.tcemu.yaml::dispatch PASSED*"])


def test_a_failing_scenario_lists_what_failed(pytester: pytest.Pytester) -> None:
    _copy_lesson(pytester, "bad.tcemu.yaml", ("key: 0x60050, value: 1}", "key: 0x60050, value: 9}"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*map: expected ports*== 0900000000000000*",
                                 "*found 0100000000000000*"])
    assert "Traceback" not in result.stdout.str()


def test_fixture_and_helpers(tcemu_net: object) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from tcemu.net import Net

    assert isinstance(tcemu_net, Net)
    net = tcemu_net
    net.link_add("a", "veth", peer="b", address="02:00:00:00:00:01",
                 peer_address="02:00:00:00:00:02")
    net.link_set("a", up=True)
    net.link_set("b", up=True)
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP()
    net.send("a", frame)
    assert_seen(net, "b", frame, direction="in", count=1)
    assert_not_seen(net, "b", frame, direction="out")
    with pytest.raises(AssertionError, match="expected at least one capture"):
        assert_seen(net, "a", frame, direction="in")


def test_scenario_fixture(tcemu_scenario: object) -> None:
    run = tcemu_scenario
    assert callable(run)
    assert run(LESSON).passed
