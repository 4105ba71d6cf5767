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
import stat
import string
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from tcemu import __version__
from tcemu.bpf import Program, assemble
from tcemu.bpf.disasm import format_program
from tcemu.errors import (
    AsmError,
    EncodingError,
    TcemuError,
    UnsupportedError,
    ValidationError,
)

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


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it becomes ``path``, on any
    failure it is removed, so an output file is written whole or not at all.

    A symlink is followed (the file it names is replaced, the link stays).  A target that
    exists and is not a regular file (``/dev/stdout``, a FIFO, ``/dev/null``) cannot be
    replaced: it is written in place.
    """
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        try:
            yield Path(path)
        except OSError as err:
            raise UsageError(f"write {path}: {err.strerror or err}") from err
        return
    target = Path(os.path.realpath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as err:
        raise UsageError(f"write {path}: {err.strerror or err}") from err
    os.close(fd)
    try:
        yield Path(tmp)
        if mode is None:  # mkstemp makes 0600; a new file gets what open() would give it
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, target)
    except OSError as err:
        raise UsageError(f"write {path}: {err.strerror or err}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def make_dir(path: str) -> Path:
    """``mkdir -p path`` for an output directory; a failure is a usage error naming it."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"create directory {path}: {err.strerror or err}") from err
    return Path(path)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, so a failure leaves nothing half-done."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def _looks_like_text(data: bytes) -> bool:
    try:
        data.decode("ascii")
    except UnicodeDecodeError:
        return False
    return not data or all(ch in b"\t\n\r" or 32 <= ch < 127 for ch in data)


def _decode_text(path: str, data: bytes) -> str:
    """``data`` as UTF-8 text; a binary file is a usage error naming the line and byte."""
    try:
        return data.decode()
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UsageError(f"read {path}: line {line}, byte {err.start}: "
                         f"{data[err.start]:#04x} is not UTF-8 text (is it bytecode? "
                         "try --format raw)") from err


def _parse_hex(text: str, what: str) -> bytes:
    """Hex digits (whitespace between bytes allowed) to bytes; ``what`` names the input."""
    for lineno, line in enumerate(text.splitlines() or [""], 1):
        digits = 0
        for col, ch in enumerate(line, 1):
            if ch.isspace():
                continue
            if ch not in string.hexdigits:
                raise UsageError(f"{what}: line {lineno}, col {col}: {ch!r} is not a hex digit")
            digits += 1
        if digits % 2:
            raise UsageError(f"{what}: line {lineno}: odd number of hex digits ({digits})")
    return bytes.fromhex("".join(text.split()))


def _load_program(path: str, fmt: str) -> Program:
    """Read a program as raw bytecode, hex text or assembly (``fmt`` or by sniffing)."""
    data = _read_input(path)
    if data.startswith(b"\x7fELF") and fmt in ("auto", "raw"):
        raise UsageError(f"read {path}: an ELF object, not bytecode (its programs: "
                         f"'tcemu prog dump {path}', 'tcemu prog run {path} ...')")
    if fmt == "auto":
        fmt = "raw" if not _looks_like_text(data) else "hex" if _is_hex(data) else "asm"
    try:
        if fmt == "raw":
            return Program.from_bytes(data, name=Path(path).stem)
        text = _decode_text(path, data)
        if fmt == "hex":
            return Program.from_bytes(_parse_hex(text, f"read {path}"), name=Path(path).stem)
        return assemble(text, name=Path(path).stem)
    except (AsmError, EncodingError, ValidationError, UnsupportedError) as err:
        # The library's message says where in the program; add which file it is.
        raise ProgramFileError(f"{path}: {err}") from err


class ProgramFileError(TcemuError):
    """A program file on the command line does not assemble, decode or validate; the
    message names the file, ``__cause__`` keeps the typed error (line, insn index...)."""


def _is_hex(data: bytes) -> bool:
    text = b"".join(data.split())
    return bool(text) and len(text) % 16 == 0 and all(ch in b"0123456789abcdefABCDEF"
                                                      for ch in text)


def _cmd_asm(args: argparse.Namespace) -> int:
    program = _load_program(args.file, "asm")
    code = program.to_bytes()
    if args.output:
        write_atomic(args.output, code)
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
    memory = _parse_hex(args.mem, "--mem") if args.mem else b""
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


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with the one error line every tcemu error has: ``tcemu: error: ...``.

    Subcommand parsers are made with the same class, so ``tcemu prog run --repeat x``
    prints ``tcemu: error: prog run: argument --repeat: ...`` after the usage, exit 2.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("tcemu").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"tcemu: error: {where}{message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="tcemu", description="Emulate the Linux tc/eBPF "
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

    p = sub.add_parser("demo", help="the flagship tour: a clang-built NAT classifier "
                       "between two namespaces, verified, traced packet by packet")
    p.set_defaults(func=_cmd_demo)
    from tcemu.cli_prog import add_commands

    add_commands(sub, write_atomic)
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
