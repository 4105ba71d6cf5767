"""``tcemu validate`` (and, as they land, ``run``/``replay``): scenario files on the CLI.

Exit status: 0 valid, 2 invalid (every problem printed as ``file:line: yaml.path: what``).
"""

from __future__ import annotations

import argparse
import json
import sys
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


def add_commands(sub: Any) -> None:
    p = sub.add_parser("validate", help="check scenario files against the schema")
    p.add_argument("files", nargs="*", metavar="SCENARIO", help="*.yaml scenario files")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--schema", action="store_true",
                   help="print the scenario JSON Schema and exit")
    p.set_defaults(func=_cmd_validate)
