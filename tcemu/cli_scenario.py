"""``tcemu validate`` and ``tcemu run``: scenario files on the command line.

Exit status: 0 every scenario valid / passed, 1 an expectation failed, 2 a scenario is
invalid or could not be set up (every problem printed as ``file:line: yaml.path: what``),
3 (``--backend kernel`` and ``tcemu diff``) this machine's kernel cannot run the scenario:
not root, no bpf(), a missing device kind, qdisc or action (docs/backends.md).

``tcemu diff SCENARIO`` runs both backends and lists every difference: 0 equal, 1 they
differ, 2 invalid / could not be set up, 3 the kernel cannot run it.
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
    from tcemu.cli import atomic_output, make_dir, write_atomic
    from tcemu.scenario.report import (
        junit_xml,
        pipeline_json,
        pipeline_lines,
        render_text,
        to_json,
        write_pcapng,
    )
    from tcemu.scenario.runner import run_scenario

    if args.backend == "kernel":
        return _run_kernel(args)
    results = []
    reports = []
    jsonl: list[str] = []
    for path in args.files:
        scenario = load_scenario(path)
        tracer = None
        if args.trace_insns:
            from tcemu.bpf.insntrace import InsnTracer

            tracer = InsnTracer()
        result = run_scenario(scenario, path, tier=args.tier, insn_tracer=tracer)
        results.append(result)
        if args.trace_jsonl:
            jsonl.extend(json.dumps({"scenario": result.name, **json.loads(line)})
                         for line in pipeline_json(result))
            if tracer is not None:
                jsonl.extend(json.dumps({"scenario": result.name, "stage": "insn",
                                         **json.loads(e.to_json())}) for e in tracer.events)
        if args.write:
            out_dir = make_dir(args.write)
            with atomic_output(out_dir / f"{Path(path).name.split('.')[0]}.pcapng") as tmp:
                write_pcapng(result, tmp)
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
        write_atomic(args.junit, junit_xml(results).encode())
    if args.trace_jsonl:
        text = "".join(line + "\n" for line in jsonl)
        if args.trace_jsonl == "-":
            sys.stdout.write(text)
        else:
            write_atomic(args.trace_jsonl, text.encode())
    return 0 if all(r.passed for r in results) else 1


def _cmd_diagram(args: argparse.Namespace) -> int:
    from tcemu.cli import write_atomic
    from tcemu.diagram import diagram, to_dot, to_mermaid
    from tcemu.scenario.runner import run_scenario

    result = run_scenario(load_scenario(args.file), args.file, play=False)
    assert result.net is not None
    model = diagram(result.net)
    text = to_mermaid(model) if args.format == "mermaid" else to_dot(model)
    if args.output:
        write_atomic(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0


def _unavailable(path: str, err: Exception) -> int:
    from tcemu.scenario.kernel import EXIT_KERNEL_UNAVAILABLE

    print(f"tcemu: {path}: the kernel backend cannot run this scenario here: {err}",
          file=sys.stderr)
    return EXIT_KERNEL_UNAVAILABLE


def _run_kernel(args: argparse.Namespace) -> int:
    """``tcemu run --backend kernel``: each scenario on this machine's kernel."""
    from tcemu.cli import write_atomic
    from tcemu.scenario.kernel import KernelUnavailableError, run_kernel
    from tcemu.scenario.report import junit_xml, render_text, to_json

    if args.write or args.trace or args.trace_insns:
        from tcemu.cli import UsageError

        raise UsageError("run --backend kernel: -w, --trace and --trace-insns are "
                         "emulator-only")
    results, reports, unavailable = [], [], 0
    for path in args.files:
        scenario = load_scenario(path)
        try:
            run = run_kernel(scenario, path)
        except KernelUnavailableError as err:
            unavailable = _unavailable(path, err)
            continue
        results.append(run.result)
        if args.json:
            report = to_json(run.result)
            report["backend"] = "kernel"
            report["captures"] = _kernel_captures(run.frames)
            report["not_observable"] = [c.index for c in run.result.checks
                                        if not c.observable]
            reports.append(report)
            continue
        render_text(run.result, sys.stdout, color=None if sys.stdout.isatty() else False)
        for frame_note in run.notes:
            print(f"  note: {frame_note}")
    if args.json and reports:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    if args.junit:
        write_atomic(args.junit, junit_xml(results).encode())
    if not all(r.passed for r in results):
        return 1
    return unavailable


def _kernel_captures(frames: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for frame in frames:
        out.setdefault(f"{frame.netns}/{frame.dev}", []).append(
            {"direction": frame.direction, "bytes": frame.data.hex()})
    return out


def _cmd_diff(args: argparse.Namespace) -> int:
    from tcemu.scenario.diff import diff_scenario, render_diff
    from tcemu.scenario.kernel import KernelUnavailableError

    reports, code = [], 0
    for path in args.files:
        scenario = load_scenario(path)
        try:
            report = diff_scenario(scenario, path)
        except KernelUnavailableError as err:
            code = max(code, _unavailable(path, err))
            if args.json:
                reports.append({"path": path, "name": scenario.name, "equal": None,
                                "kernel_unavailable": err.reason, "feature": err.feature})
            continue
        if not report.equal:
            code = max(code, 1) if code != 3 else code
        if args.json:
            reports.append(report.to_json())
        else:
            print("\n".join(render_diff(report)))
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    return code


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
    p.add_argument("--trace-jsonl", metavar="FILE",
                   help="write the per-packet trace (and with --trace-insns every "
                        "instruction) as JSON lines to FILE ('-' for stdout)")
    p.add_argument("--tier", choices=("interp", "jit"), default="jit")
    p.add_argument("--backend", choices=("emulator", "kernel"), default="emulator",
                   help="where to run: tcemu's emulator, or this machine's kernel (root, "
                        "bpf(); exit 3 when the kernel cannot run the scenario)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("diff", help="run scenarios on the emulator and on the kernel and "
                                    "list every difference (exit 0 equal, 1 different, "
                                    "3 the kernel cannot run it)")
    p.add_argument("files", nargs="+", metavar="SCENARIO", help="*.yaml scenario files")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("diagram", help="draw a scenario's network with its qdiscs, filters "
                       "and programs (Mermaid or Graphviz DOT)")
    p.add_argument("file", metavar="SCENARIO")
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=_cmd_diagram)
