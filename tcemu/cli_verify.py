"""``tcemu prog verify OBJ [--sec S] [--log-level 1|2] [--json]``: the verifier on an object.

Loads the object as ``tcemu prog run`` does (maps created, global data filled) and runs
:func:`tcemu.bpf.verifier.verify` on each of its programs (or those of one section),
printing the kernel-style log.  Exit status 0 when every program is accepted, 1 when one
is rejected (as ``bpftool prog load`` fails).
"""

from __future__ import annotations

import json as _json
import sys
from pathlib import Path
from typing import TextIO

from tcemu.bpf.collection import load_object
from tcemu.bpf.verifier import VerifierError, verify
from tcemu.errors import TcemuError

__all__ = ["verify_command"]


def verify_command(path: str | Path, section: str | None = None, log_level: int = 1,
                   json: bool = False, *, out: TextIO | None = None) -> int:
    """Verify the programs of ``path``; print their logs; 0 if all accepted, else 1."""
    out = out if out is not None else sys.stdout
    if log_level not in (1, 2):
        raise TcemuError(f"verify {path}: --log-level must be 1 or 2, not {log_level}")
    from tcemu.cli_prog import naming_object

    with naming_object(str(path)):
        coll = load_object(str(path))
    progs = [p for p in coll.programs.values() if section is None or p.section == section]
    if not progs:
        raise TcemuError(f"verify {path}: no program in section '{section}'")
    status = 0
    report: list[dict[str, object]] = []
    for prog in progs:
        try:
            res = verify(prog, log_level=log_level)
            entry: dict[str, object] = {"name": prog.name, "section": prog.section,
                                        "accepted": True, "log": res.log,
                                        "processed": res.stats.insn_processed,
                                        "kernel_log": list(res.notices)}
            if res.notices and not json:
                # The kernel writes these to its own log (dmesg), not the verifier's.
                for line in res.notices:
                    sys.stderr.write(f"kernel log: {line}\n")
        except VerifierError as err:
            status = 1
            entry = {"name": prog.name, "section": prog.section, "accepted": False,
                     "log": err.log, "error": err.first_error, "insn": err.insn_index}
        report.append(entry)
        if not json:
            if len(progs) > 1:
                out.write(f"== {prog.name} (section {prog.section}) ==\n")
            out.write(str(entry["log"]))
            if not entry["accepted"]:
                out.write(f"verify {prog.name}: rejected: {entry['error']}\n")
    if json:
        out.write(_json.dumps(report, indent=2) + "\n")
    return status
