"""Scenario files: errors carry file:line and the YAML path; the schema stays committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcemu.cli import main
from tcemu.scenario import ScenarioError, parse_scenario
from tcemu.scenario.loader import scenario_schema
from tcemu.scenario.model import parse_duration_ns

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: ok
netns: [a, b]
links:
  - {name: veth0, kind: veth, netns: a, peer: veth1, peer_netns: b}
  - ip -n a link add vx0 type vxlan external dstport 4789
programs:
  cls: {object: prog.o, section: tc}
tc:
  - tc -n a qdisc add dev veth0 clsact
  - {dev: veth0, netns: a, hook: egress, program: cls}
traffic:
  - send: {dev: veth0, netns: a, packet: 'Ether()/IP(dst="10.0.0.2")/UDP(dport=53)'}
  - advance: 1.5ms
expect:
  - seen: {dev: veth1, netns: b, fields: {IP.dst: 10.0.0.2}}
  - map: {map: counters, key: 17, value: 1}
  - trace_printk: 'hello \\d+'
"""


def _issues(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "t.yaml")
    return [str(issue) for issue in info.value.issues]


def test_a_good_scenario_loads() -> None:
    scenario = parse_scenario(GOOD, "t.yaml")
    assert scenario.name == "ok"
    assert isinstance(scenario.links[1], str)
    assert len(scenario.traffic) == 2
    assert len(scenario.expect) == 3


def test_errors_name_file_line_and_path() -> None:
    text = GOOD.replace("packet: 'Ether()", "pakket: 'Ether()").replace(
        "advance: 1.5ms", "advance: 1 fortnight")
    issues = _issues(text)
    assert "t.yaml:12: traffic[0].send.pakket: Extra inputs are not permitted" in issues
    assert any(i.startswith("t.yaml:13: traffic[1].advance: '1 fortnight' is not a duration")
               for i in issues)


def test_model_rules_point_at_the_item() -> None:
    text = GOOD.replace("{name: veth0, kind: veth, netns: a, peer: veth1, peer_netns: b}",
                        "{name: veth0, kind: veth}")
    assert _issues(text) == ["t.yaml:4: links[0]: a veth link needs 'peer'"]


def test_unknown_program_reference() -> None:
    issues = _issues(GOOD.replace("program: cls}", "program: nope}"))
    assert "unknown program 'nope'" in issues[0]


def test_bad_packet_expression_is_a_validation_error() -> None:
    issues = _issues(GOOD.replace('UDP(dport=53)', 'os.system("x")'))
    assert issues[0].startswith("t.yaml:12: traffic[0].send.packet: packet expression")


@pytest.mark.parametrize("text", ["name: [", "- a\n- b\n", "name: x\n  bad: indent\n"])
def test_broken_yaml(text: str) -> None:
    issues = _issues(text)
    assert issues[0].startswith("t.yaml")


def test_yaml_python_tags_are_refused() -> None:
    issues = _issues("name: !!python/object/apply:os.system ['id']\n")
    assert "YAML" in issues[0]


def test_durations() -> None:
    assert parse_duration_ns("1.5ms") == 1_500_000
    assert parse_duration_ns(20) == 20
    assert parse_duration_ns("2s") == 2_000_000_000


def test_committed_schema_is_current() -> None:
    assert (ROOT / "scenarios" / "schema.json").read_text() == scenario_schema()


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("kind: veth,", "kind: vethh,"))
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4: links[0].kind:" in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.tcemu.yaml")),
                         ids=lambda p: p.stem)
def test_shipped_scenarios_validate(path: Path) -> None:
    scenario = parse_scenario(path.read_text(), str(path))
    assert scenario.expect, f"{path.name} checks nothing"


def test_a_command_split_by_yaml_is_explained() -> None:
    issues = _issues("name: x\ntc:\n  - tc qdisc add dev eth0 root handle 1: htb\n")
    assert issues == ["t.yaml:3: tc[0]: the command 'tc qdisc add dev eth0 root handle 1: htb' "
                      "was read as a YAML mapping because it contains ': '; put it in quotes"]
