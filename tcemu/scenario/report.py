"""Reports of a scenario run: readable text (rich), JSON, JUnit XML, pcapng and traces.

* :func:`render_text` prints every check with ✓/✗, what was expected and what was found,
  the verifier's verdict on each program and the trace_printk lines.
* :func:`to_json` is the same for machines (``tcemu run --json``).
* :func:`junit_xml` makes one ``<testcase>`` per check, for CI dashboards.
* :func:`write_pcapng` writes every device's capture into one pcapng file, one interface
  block per device (``netns/dev``), each packet with its direction and a comment naming
  the hook, the filter and the verdict, so the run opens in Wireshark.
* :func:`pipeline_lines` is the per-packet path through the datapath (device → hook →
  filter → program → verdict → next device) as text; :func:`pipeline_json` as JSON lines.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tcemu.trace import event_json
from tcemu.trace import pipeline_lines as format_pipeline

if TYPE_CHECKING:
    from tcemu.net.stack import Captured
    from tcemu.scenario.runner import ScenarioResult

__all__ = ["junit_xml", "pipeline_json", "pipeline_lines", "render_text", "to_json",
           "write_pcapng"]


def render_text(result: ScenarioResult, out: IO[str], *, color: bool | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=out, force_terminal=color, no_color=color is False,
                      highlight=False, width=120)
    status = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    console.print(f"{status} [bold]{escape(result.name)}[/] ({escape(result.path)})")
    for name, info in result.programs.items():
        verdict = "verified" if info.accepted else f"rejected: {info.error}"
        console.print(f"  program {escape(name)}: {escape(verdict)}")
    for check in result.checks:
        mark = ("[dim]–[/]" if not check.observable else "[green]✓[/]" if check.passed
                else "[red]✗[/]")
        console.print(f"  {mark} {check.kind}: {escape(check.summary)}")
        if check.detail:
            console.print(f"      [yellow]{escape(check.detail)}[/]")
    passed = sum(c.passed for c in result.checks)
    console.print(f"  {passed}/{len(result.checks)} checks passed, "
                  f"{len(result.packets)} packets sent")
    for line in result.trace_lines:
        console.print(f"  trace_printk: {escape(line)}")


def to_json(result: ScenarioResult) -> dict[str, Any]:
    net = result.net
    captures: dict[str, list[dict[str, Any]]] = {}
    if net is not None:
        for frame in _all_captures(result):
            captures.setdefault(f"{frame.netns}/{frame.dev}", []).append(
                {"direction": frame.direction, "time_ns": frame.timestamp - result.start_ns,
                 "pkt": frame.pkt, "hook": frame.tc, "verdict": frame.verdict,
                 "bytes": frame.data.hex()})
    return {
        "name": result.name, "path": result.path, "passed": result.passed,
        "checks": [{"index": c.index, "kind": c.kind, "passed": c.passed,
                    "expected": c.summary, "found": c.detail, "observable": c.observable}
                   for c in result.checks],
        "programs": {n: {"accepted": i.accepted, "error": i.error}
                     for n, i in result.programs.items()},
        "packets": result.packets,
        "captures": captures,
        "trace_printk": result.trace_lines,
    }


def junit_xml(results: list[ScenarioResult]) -> str:
    suites = ET.Element("testsuites", name="tcemu")
    for result in results:
        failures = sum(not c.passed for c in result.checks)
        suite = ET.SubElement(suites, "testsuite", name=result.name,
                              tests=str(len(result.checks)), failures=str(failures),
                              errors="0", file=result.path)
        for check in result.checks:
            case = ET.SubElement(suite, "testcase", classname=result.name,
                                 name=f"{check.index}: {check.kind}: {check.summary}")
            if not check.passed:
                failure = ET.SubElement(case, "failure", message=check.detail or "failed")
                failure.text = f"expected {check.summary}\nfound: {check.detail}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _all_captures(result: ScenarioResult) -> list[Captured]:
    net = result.net
    if net is None:
        return []
    frames = [frame for captured in net.captures.values() for frame in captured]
    frames.sort(key=lambda c: (c.timestamp, c.pkt))
    return frames


def _filters_by_packet(result: ScenarioResult) -> dict[tuple[int, str, str], list[str]]:
    """(pkt, netns, dev) -> the program events of that packet there."""
    out: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    if result.net is not None:
        for event in result.net.trace:
            if event.stage in ("prog", "action", "filter"):
                out[(event.pkt, event.netns, event.dev)].append(event.detail)
    return out


def write_pcapng(result: ScenarioResult, path: str | Path) -> int:
    """Write the run's captures; returns the number of packets written."""
    from tcemu.pcap import Direction, PcapngWriter

    frames = _all_captures(result)
    programs = _filters_by_packet(result)
    devices = sorted({(f.netns, f.dev) for f in frames})
    with PcapngWriter(path, comment=f"tcemu scenario {result.name}") as writer:
        index = {dev: writer.add_interface(f"{dev[0]}/{dev[1]}",
                                           description=f"{dev[1]} in netns {dev[0]}")
                 for dev in devices}
        for frame in frames:
            notes = [f"{frame.direction} {frame.netns}/{frame.dev}"]
            if frame.tc:
                filters = "; ".join(programs.get((frame.pkt, frame.netns, frame.dev), []))
                notes.append(f"{frame.tc}: {filters or 'no filter ran'}")
            direction = Direction.INBOUND if frame.direction == "in" else Direction.OUTBOUND
            writer.write(index[(frame.netns, frame.dev)], frame.timestamp, frame.data,
                         comment=" | ".join(notes), direction=direction)
    return len(frames)


def pipeline_lines(result: ScenarioResult) -> list[str]:
    """Each packet's path, grouped by packet, in the order the kernel would do the work."""
    if result.net is None:
        return []
    return format_pipeline(result.net.trace, result.start_ns)


def pipeline_json(result: ScenarioResult) -> list[str]:
    if result.net is None:
        return []
    return [json.dumps(event_json(e, result.start_ns)) for e in result.net.trace]
