"""Scenario files: a YAML description of a network, its programs, traffic and
expectations (``model``), read with line-accurate errors (``loader``), with frames
written as Scapy layer strings parsed safely (``packet``)."""

from tcemu.scenario.loader import ScenarioError, ScenarioIssue, load_scenario, parse_scenario
from tcemu.scenario.model import Scenario
from tcemu.scenario.packet import PacketExprError, build_packet, parse_packet

__all__ = [
    "PacketExprError",
    "Scenario",
    "ScenarioError",
    "ScenarioIssue",
    "build_packet",
    "load_scenario",
    "parse_packet",
    "parse_scenario",
]
