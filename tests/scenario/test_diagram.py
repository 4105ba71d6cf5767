"""Topology diagrams show namespaces, devices, links and the tc datapath on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcemu.cli import main
from tcemu.diagram import diagram, to_dot, to_mermaid
from tcemu.scenario import load_scenario
from tcemu.scenario.runner import run_scenario

ROOT = Path(__file__).resolve().parents[2]


def _model(name: str):  # type: ignore[no-untyped-def]
    path = ROOT / "scenarios" / name
    net = run_scenario(load_scenario(path), path, play=False).net
    assert net is not None
    return diagram(net)


def test_vxlan_lesson() -> None:
    model = _model("02-vxlan-collect-md.tcemu.yaml")
    assert set(model.namespaces) >= {"a", "b"}
    text = to_mermaid(model)
    assert 'subgraph ns_a["netns a"]' in text
    assert "egress prio 49152: bpf set_key handle 0x1 direct-action" in text
    assert "d_a_ul0 ---|veth| d_b_ul1" in text
    assert "vxlan external udp/4789" in text


def test_htb_lesson_shows_classes_and_the_classifier() -> None:
    text = to_dot(_model("08-classid-htb-shaping.tcemu.yaml"))
    assert "qdisc htb 1:" in text
    assert "class 1:10" in text
    assert "filter 1: prio 49152: bpf classid.bpf.o:[tc]" in text
    assert text.startswith("graph tcemu {")


def test_actions_are_drawn() -> None:
    text = to_mermaid(_model("07-classifier-to-action-metadata.tcemu.yaml"))
    assert "action bpf act" in text


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", str(ROOT / "scenarios" / "01-vlan-push-pop.tcemu.yaml")]) == 0
    assert capsys.readouterr().out.startswith("flowchart LR")
