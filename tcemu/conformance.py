"""A bpf_conformance plugin: ``python -m tcemu.conformance [--tier interp|jit]``.

The bpf_conformance runner (github.com/Alan-Jowett/bpf_conformance) starts a plugin per
test, writes the program as hex on stdin, passes the memory as hex in ``argv[1]`` and reads
r0 as hex from stdout; r1 points to the memory and r2 holds its length.  Errors go to
stderr with exit status 1.

Helper 5 is the conformance suite's ``unwind`` extension (``call_unwind_fail``,
``callx``): it returns its argument and ends the program when that is zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from tcemu.bpf.program import Program
from tcemu.bpf.vm import HelperFn, ProgramExit, Vm
from tcemu.errors import TcemuError

__all__ = ["CONFORMANCE_HELPERS", "main", "run_hex"]


def _unwind(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r1 == 0:
        raise ProgramExit(0)
    return r1


CONFORMANCE_HELPERS: Mapping[int, HelperFn] = {5: _unwind}


def run_hex(program_hex: str, memory_hex: str = "", tier: str = "interp") -> int:
    program = Program.from_bytes(bytes.fromhex("".join(program_hex.split())))
    memory = bytes.fromhex("".join(memory_hex.split()))
    if tier not in ("interp", "jit"):
        raise ValueError(f"unknown tier {tier!r}")
    return program.run(memory, "jit" if tier == "jit" else "interp",
                       helpers=CONFORMANCE_HELPERS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tcemu.conformance",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("memory", nargs="?", default="", help="memory as hex")
    parser.add_argument("--tier", choices=("interp", "jit"), default="interp")
    parser.add_argument("--program", help="program as hex (default: read stdin)")
    args, _unknown = parser.parse_known_args(argv)
    program_hex = args.program if args.program is not None else sys.stdin.read()
    try:
        r0 = run_hex(program_hex, args.memory, args.tier)
    except (TcemuError, ValueError) as err:
        print(f"tcemu: {err}", file=sys.stderr)
        return 1
    print(f"{r0:x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
