"""``tcemu validate`` and ``tcemu run``: scenario files on the command line.

Exit status: 0 every scenario valid / passed, 1 an expectation failed, 2 a scenario is
invalid or could not be set up (every problem printed as ``file:line: yaml.path: what``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tcemu.scenario.loader import ScenarioError, load_scenario, scenario_schema

__all__ = ["add_commands"]


def _cmd_validate(args: argparse.Namespace) -> int:
    if args.schema:
        sys.stdout.write(scenario_schema())
        return 0
    if not args.files:
        from tcemu.cli import UsageError

        raise UsageError("validate: give at least one SCENARIO file (or --schema)")
    report: list[dict[str, Any]] = []
    failed = False
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as err:
            failed = True
            report.append({"file": path, "valid": False,
                           "issues": [vars(issue) for issue in err.issues]})
            if not args.json:
                for issue in err.issues:
                    print(issue, file=sys.stderr)
            continue
        report.append({"file": path, "valid": True, "name": scenario.name})
        if not args.json:
            print(f"{path}: ok ({scenario.name})")
    if args.json:
        print(json.dumps(report, indent=2))
    return 2 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from tcemu.scenario.report import (
        junit_xml,
        pipeline_json,
        pipeline_lines,
        render_text,
        to_json,
        write_pcapng,
    )
    from tcemu.scenario.runner import run_scenario

    results = []
    reports = []
    for path in args.files:
        scenario = load_scenario(path)
        tracer = None
        if args.trace_insns:
            from tcemu.bpf.insntrace import InsnTracer

            tracer = InsnTracer()
        result = run_scenario(scenario, path, tier=args.tier, insn_tracer=tracer)
        results.append(result)
        if args.write:
            out_dir = Path(args.write)
            out_dir.mkdir(parents=True, exist_ok=True)
            write_pcapng(result, out_dir / f"{Path(path).name.split('.')[0]}.pcapng")
        if args.json:
            report = to_json(result)
            if args.trace:
                report["pipeline"] = [json.loads(line) for line in pipeline_json(result)]
            if tracer is not None:
                report["insn_trace"] = [json.loads(e.to_json()) for e in tracer.events]
            reports.append(report)
            continue
        render_text(result, sys.stdout, color=None if sys.stdout.isatty() else False)
        if args.trace:
            print("\n".join(pipeline_lines(result)))
        if tracer is not None:
            print("\n".join(tracer.lines()))
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    if args.junit:
        Path(args.junit).write_text(junit_xml(results))
    return 0 if all(r.passed for r in results) else 1


def _cmd_diagram(args: argparse.Namespace) -> int:
    from tcemu.diagram import diagram, to_dot, to_mermaid
    from tcemu.scenario.runner import run_scenario

    result = run_scenario(load_scenario(args.file), args.file, play=False)
    assert result.net is not None
    model = diagram(result.net)
    text = to_mermaid(model) if args.format == "mermaid" else to_dot(model)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("validate", help="check scenario files against the schema")
    p.add_argument("files", nargs="*", metavar="SCENARIO", help="*.yaml scenario files")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--schema", action="store_true",
                   help="print the scenario JSON Schema and exit")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="run scenario files on the emulator and check them")
    p.add_argument("files", nargs="+", metavar="SCENARIO", help="*.yaml scenario files")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("-w", "--write", metavar="DIR",
                   help="write a pcapng of every device's capture into DIR")
    p.add_argument("--trace", action="store_true",
                   help="show each packet's path through the datapath")
    p.add_argument("--trace-insns", action="store_true",
                   help="show every executed BPF instruction (registers, memory, helpers)")
    p.add_argument("--tier", choices=("interp", "jit"), default="jit")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("diagram", help="draw a scenario's network with its qdiscs, filters "
                       "and programs (Mermaid or Graphviz DOT)")
    p.add_argument("file", metavar="SCENARIO")
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=_cmd_diagram)
