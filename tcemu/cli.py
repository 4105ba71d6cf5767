"""The ``tcemu`` command line: a thin layer over the library.

Commands: ``asm`` (text to bytecode), ``disasm`` (bytecode to the kernel's syntax), ``exec``
(run bytecode on raw memory, on either tier) and ``demo`` (the flagship demonstration).
Every error the library raises on purpose is printed as one line, ``tcemu: error: ...``,
with exit status 1 (2 for bad usage); no traceback reaches the user.  Output files are
written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tcemu import __version__
from tcemu.bpf import Program, assemble
from tcemu.bpf.disasm import format_program
from tcemu.errors import TcemuError

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


class UsageError(TcemuError):
    """The command line itself is wrong (exit status 2)."""


def _is_usage(err: TcemuError) -> bool:
    from tcemu.cli_prog import CliError
    from tcemu.scenario.loader import ScenarioError
    from tcemu.scenario.runner import ScenarioRunError

    return isinstance(err, UsageError | CliError | ScenarioError | ScenarioRunError)


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"read {path}: {err.strerror or err}") from err


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, so a failure leaves nothing half-done."""
    target = Path(path)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plain open() honours umask
        os.replace(tmp, target)
    except OSError as err:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise UsageError(f"write {path}: {err.strerror or err}") from err


def _looks_like_text(data: bytes) -> bool:
    try:
        data.decode("ascii")
    except UnicodeDecodeError:
        return False
    return not data or all(ch in b"\t\n\r" or 32 <= ch < 127 for ch in data)


def _load_program(path: str, fmt: str) -> Program:
    """Read a program as raw bytecode, hex text or assembly (``fmt`` or by sniffing)."""
    data = _read_input(path)
    if fmt == "auto":
        fmt = "raw" if not _looks_like_text(data) else "hex" if _is_hex(data) else "asm"
    if fmt == "raw":
        return Program.from_bytes(data, name=Path(path).stem)
    if fmt == "hex":
        return Program.from_bytes(bytes.fromhex(data.decode().replace("\n", " ")),
                                  name=Path(path).stem)
    return assemble(data.decode(), name=Path(path).stem)


def _is_hex(data: bytes) -> bool:
    text = b"".join(data.split())
    return bool(text) and len(text) % 16 == 0 and all(ch in b"0123456789abcdefABCDEF"
                                                      for ch in text)


def _cmd_asm(args: argparse.Namespace) -> int:
    program = _load_program(args.file, "asm")
    code = program.to_bytes()
    if args.output:
        _write_atomic(args.output, code)
    else:
        for slot in range(len(program)):
            print(code[8 * slot:8 * slot + 8].hex())
    return EXIT_OK


def _cmd_disasm(args: argparse.Namespace) -> int:
    program = _load_program(args.file, args.format)
    lines = format_program(program)
    if args.json:
        rows = [{"slot": int(line.split(":", 1)[0]), "text": line.split(": ", 1)[1]}
                for line in lines]
        print(json.dumps({"insns": len(program), "listing": rows}, indent=2))
    else:
        labels = program.labels
        for line in lines:
            slot = int(line.split(":", 1)[0])
            if slot in labels and labels[slot] != "exit":
                print(f"{labels[slot]}:")
            print(line)
    return EXIT_OK


def _cmd_exec(args: argparse.Namespace) -> int:
    program = _load_program(args.file, args.format)
    memory = bytes.fromhex(args.mem) if args.mem else b""
    if args.mem_file:
        memory = _read_input(args.mem_file)
    result = program.execute(memory, args.tier)
    if args.json:
        print(json.dumps({"r0": result.r0, "insns": result.insns, "tier": args.tier,
                          "memory": result.memory.hex()}))
    else:
        print(f"r0 = {result.r0:#x} ({result.r0})   [{result.insns} insns, {args.tier}]")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from tcemu.demo import run_demo

    run_demo(sys.stdout)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tcemu", description="Emulate the Linux tc/eBPF "
                                     "datapath in userspace.")
    parser.add_argument("--version", action="version", version=f"tcemu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("asm", help="assemble kernel-syntax or uBPF-dialect text")
    p.add_argument("file", help="assembly file ('-' for stdin)")
    p.add_argument("-o", "--output", help="write raw bytecode here (default: hex to stdout)")
    p.set_defaults(func=_cmd_asm)

    fmt = {"choices": ("auto", "raw", "hex", "asm"), "default": "auto",
           "help": "input format (default: guess)"}
    p = sub.add_parser("disasm", help="print bytecode in the kernel's verifier-log syntax")
    p.add_argument("file", help="raw bytecode, hex or assembly ('-' for stdin)")
    p.add_argument("--format", **fmt)  # type: ignore[arg-type]
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_disasm)

    p = sub.add_parser("exec", help="run a program on raw memory (r1 = memory, r2 = length)")
    p.add_argument("file", help="raw bytecode, hex or assembly ('-' for stdin)")
    p.add_argument("--format", **fmt)  # type: ignore[arg-type]
    p.add_argument("--mem", help="memory as hex")
    p.add_argument("--mem-file", help="memory from a file")
    p.add_argument("--tier", choices=("interp", "jit"), default="interp")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_exec)

    p = sub.add_parser("demo", help="a guided tour: assemble, print and run a classifier")
    p.set_defaults(func=_cmd_demo)
    from tcemu.cli_prog import add_commands

    add_commands(sub, _write_atomic)
    from tcemu import cli_scenario

    cli_scenario.add_commands(sub)
    from tcemu import cli_replay

    cli_replay.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except TcemuError as err:
        print(f"tcemu: error: {err}", file=sys.stderr)
        return EXIT_USAGE if _is_usage(err) else EXIT_ERROR
    except ValueError as err:
        print(f"tcemu: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tcemu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``tcemu ... | head``): stop quietly, as cat(1) does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:
        print(f"tcemu: internal error: {type(err).__name__}: {err} "
              "(please report this with the command line)", file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
