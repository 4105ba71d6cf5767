"""Reading a scenario file: YAML → :class:`~tcemu.scenario.model.Scenario`, with every
error pointing at ``file:line`` and the YAML path of the offending value.

YAML is read with PyYAML's safe loader only (no tags that build Python objects).  The
node tree from ``yaml.compose`` keeps each value's line, so a pydantic error location
such as ``('traffic', 2, 'send', 'dev')`` becomes ``demo.yaml:14: traffic[2].send.dev``.
Scapy layer strings are parsed (not built) here too, so a bad packet is a validation
error, not a run-time one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

from tcemu.errors import TcemuError
from tcemu.scenario.model import Scenario
from tcemu.scenario.packet import PacketExprError, parse_packet

__all__ = ["ScenarioError", "ScenarioIssue", "load_scenario", "parse_scenario", "scenario_schema"]


@dataclass(frozen=True)
class ScenarioIssue:
    """One problem in a scenario file."""

    file: str
    line: int          # 1-based; 0 when unknown
    path: str          # YAML path such as traffic[2].send.dev
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<top>'}: {self.message}"


class ScenarioError(TcemuError):
    """A scenario file that is not valid (``tcemu`` exit status 2)."""

    def __init__(self, issues: list[ScenarioIssue]) -> None:
        self.issues = issues
        head = str(issues[0]) if issues else "invalid scenario"
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(head + more)


def scenario_schema() -> str:
    """The committed JSON Schema of scenario files (``scenarios/schema.json``)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tcemu scenario"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def load_scenario(path: str | Path) -> Scenario:
    """Read and check ``path``; raise :class:`ScenarioError` listing every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError([ScenarioIssue(name, 0, "", f"cannot read: {err}")]) from err
    return parse_scenario(text, name)


def parse_scenario(text: str, name: str = "<scenario>") -> Scenario:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(err, "problem", None) or str(err)
        raise ScenarioError([ScenarioIssue(name, line, "", f"YAML: {problem}")]) from err
    except RecursionError as err:  # PyYAML's composer recurses once per nesting level
        raise ScenarioError([ScenarioIssue(name, 0, "", "YAML: collections nested too "
                                           "deeply to read")]) from err
    if not isinstance(data, dict):
        raise ScenarioError([ScenarioIssue(name, 1, "", "a scenario is a YAML mapping")])
    split = _split_commands(name, root, data)
    if split:
        raise ScenarioError(split)
    try:
        scenario = Scenario.model_validate(data)
    except pydantic.ValidationError as err:
        issues = [_issue(name, root, e) for e in err.errors()]
        raise ScenarioError(issues) from err
    issues = _packet_issues(name, root, scenario)
    if issues:
        raise ScenarioError(issues)
    return scenario


def _split_commands(name: str, root: yaml.Node | None,
                    data: dict[str, Any]) -> list[ScenarioIssue]:
    """``- tc qdisc add dev x root handle 1: htb`` is a YAML mapping, not a string: say so."""
    issues = []
    for section in ("links", "setup", "tc"):
        items = data.get(section)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if (isinstance(item, dict) and len(item) == 1
                    and str(next(iter(item))).split(" ", 1)[0] in ("ip", "tc", "qdisc",
                                                                   "filter", "class", "link")):
                key, value = next(iter(item.items()))
                path, node = _walk(root, (section, index))
                issues.append(ScenarioIssue(
                    name, node.start_mark.line + 1 if node is not None else 0, path,
                    f"the command '{key}: {value}' was read as a YAML mapping because it "
                    "contains ': '; put it in quotes"))
    return issues


def _issue(name: str, root: yaml.Node | None, error: Any) -> ScenarioIssue:
    loc = tuple(error["loc"])
    path, node = _walk(root, loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    return ScenarioIssue(name, node.start_mark.line + 1 if node is not None else 0,
                         path, message)


def _walk(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[str, yaml.Node | None]:
    """Follow ``loc`` through the YAML node tree; skip pydantic's union tags."""
    node = root
    parts: list[str] = []
    for step in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step < len(node.value):
                node = node.value[step]
            parts.append(f"[{step}]")
        elif isinstance(node, yaml.MappingNode) and isinstance(step, str):
            child = next((v for k, v in node.value if k.value == step), None)
            if child is None:
                if _is_tag(step, node):
                    continue
                parts.append(f".{step}")
                continue
            node = child
            parts.append(f".{step}")
    return "".join(parts).lstrip("."), node


def _is_tag(step: str, node: yaml.MappingNode) -> bool:
    # Discriminator tags are capitalised class-like names (see model._by_key).
    return step[:1].isupper()


def _packet_issues(name: str, root: yaml.Node | None, scenario: Scenario) -> list[ScenarioIssue]:
    issues = []
    for index, step in enumerate(scenario.traffic):
        send = getattr(step, "send", None)
        if send is None or send.packet is None:
            continue
        try:
            parse_packet(send.packet)
        except PacketExprError as err:
            path, node = _walk(root, ("traffic", index, "send", "packet"))
            line = node.start_mark.line + 1 if node is not None else 0
            issues.append(ScenarioIssue(name, line, path, str(err)))
    return issues
