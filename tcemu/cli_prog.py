"""``tcemu prog run|show|dump`` and ``tcemu map dump``: bpftool's commands on objects.

``prog run`` mirrors ``bpftool prog run`` (BPF_PROG_TEST_RUN): data and context in from
files, out to files, ``--repeat``; ``--json`` also reports every map's contents after the
run.  ``prog show`` lists the programs of an object, ``prog dump`` prints one with its C
source lines from BTF, ``map dump`` prints the maps as loaded (global data, initialisers).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tcemu.bpf.collection import Collection, load_object
from tcemu.bpf.elf import CollectionSpec, ProgramSpec, load_collection_spec
from tcemu.bpf.listing import format_listing
from tcemu.bpf.maps import MapBase
from tcemu.bpf.program import Program
from tcemu.bpf.testrun import prog_test_run
from tcemu.bpf.uapi import BpfMapType
from tcemu.errors import LoadError, TcemuError

_MAP_TYPE_VALUES = frozenset(int(t) for t in BpfMapType)

__all__ = ["ObjectError", "add_commands", "naming_object"]


class CliError(TcemuError):
    """A problem with the command line's arguments (exit status 2)."""


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CliError(f"read {path}: {err.strerror or err}") from err


@contextmanager
def naming_object(path: str) -> Iterator[None]:
    """Prefix an error from reading or loading the object at ``path`` with its name, so the
    one error line says which file was wrong (``--diff``, scenarios: several objects)."""
    try:
        yield
    except TcemuError as err:
        if path in str(err):
            raise
        raise ObjectError(f"load object {path}: {err}") from err


class ObjectError(LoadError):
    """A clang-built object named on the command line could not be read or loaded; the
    message names the file, the cause (``__cause__``) keeps the typed error."""


def _load_object(path: str) -> Collection:
    with naming_object(path):
        return load_object(path)


def _load_spec(path: str) -> CollectionSpec:
    with naming_object(path):
        return load_collection_spec(path)


def _pick(coll: Collection, name: str | None, section: str | None) -> Program:
    progs = coll.programs
    if name is not None:
        if name not in progs:
            raise CliError(f"no program '{name}' (programs: {', '.join(progs) or 'none'})")
        return progs[name]
    matches = [p for p in progs.values() if section is None or p.section == section]
    if len(matches) != 1:
        what = f"in section '{section}'" if section else "in the object"
        raise CliError(f"{len(matches)} programs {what}: choose one with --name "
                       f"({', '.join(p.name for p in matches) or 'none'})")
    return matches[0]


def _map_json(m: MapBase) -> dict[str, Any]:
    rows = [{"key": k.hex(), "value": v.hex()} for k, v in m.items()]
    return {"name": m.spec.name, "type": m.spec.type.name, "key_size": m.spec.key_size,
            "value_size": m.spec.value_size, "max_entries": m.spec.max_entries,
            "entries": rows}


def _cmd_run(args: argparse.Namespace, write: Callable[[str, bytes], None]) -> int:
    coll = _load_object(args.obj)
    prog = _pick(coll, args.name, args.section)
    ctx = _read(args.ctx_in) if args.ctx_in else None
    timer = time.perf_counter_ns if args.wall_time else None
    tracer = None
    if args.trace_insns and prog.vm is not None:
        from tcemu.bpf.insntrace import InsnTracer

        tracer = prog.vm.tracer = InsnTracer()
    result = prog_test_run(prog, _read(args.data_in), ctx, repeat=args.repeat, tier=args.tier,
                           vm=prog.vm, timer=timer)
    if args.data_out:
        write(args.data_out, result.data_out)
    if args.ctx_out:
        write(args.ctx_out, result.ctx_out)
    if args.json:
        print(json.dumps({"program": prog.name, "retval": result.retval,
                          "duration": result.duration, "insns": result.insns,
                          "data_out": result.data_out.hex(), "ctx_out": result.ctx_out.hex(),
                          "maps": [_map_json(m) for m in coll.maps.values()],
                          "trace": list(coll.env.trace_pipe),
                          **({"insn_trace": [json.loads(e.to_json()) for e in tracer.events]}
                             if tracer else {})}, indent=2))
    else:
        if tracer is not None:
            print("\n".join(tracer.lines()))
        print(f"Return value: {result.retval}, duration (average): {result.duration}ns")
        for line in coll.env.trace_pipe:
            print(f"trace_printk: {line}")
    return 0


def _spec_programs(spec: CollectionSpec, name: str | None) -> list[ProgramSpec]:
    if name is None:
        return list(spec.programs.values())
    if name not in spec.programs:
        raise CliError(f"no program '{name}' (programs: {', '.join(spec.programs) or 'none'})")
    return [spec.programs[name]]


def _cmd_show(args: argparse.Namespace, write: Callable[[str, bytes], None]) -> int:
    spec = _load_spec(args.obj)
    rows: list[dict[str, Any]] = [
        {"name": p.name, "section": p.section, "type": p.prog_type.name,
         "insns": len(p.insns), "license": p.license,
         "subprograms": sorted(set(p.subprog_names.values()) - {p.name})}
        for p in _spec_programs(spec, args.name)]
    maps = [{"name": m.name, "type": m.type, "key_size": m.key_size,
             "value_size": m.value_size, "max_entries": m.max_entries}
            for m in spec.maps.values()]
    if args.json:
        print(json.dumps({"programs": rows, "maps": maps}, indent=2))
        return 0
    for r in rows:
        extra = f"  calls {', '.join(r['subprograms'])}" if r["subprograms"] else ""
        print(f"{r['name']}: {r['type'].lower()}  section '{r['section']}'  "
              f"{r['insns']} insns  license '{r['license']}'{extra}")
    for m in spec.maps.values():
        kind = BpfMapType(m.type).name.lower() if m.type in _MAP_TYPE_VALUES else str(m.type)
        print(f"map {m.name}: {kind}  key {m.key_size}B  value {m.value_size}B"
              f"  max_entries {m.max_entries}")
    return 0


def _cmd_dump(args: argparse.Namespace, write: Callable[[str, bytes], None]) -> int:
    spec = _load_spec(args.obj)
    listings = {p.name: format_listing(p.insns, origins=p.origins, btf=spec.btf,
                                       names=p.subprog_names or {0: p.name})
                for p in _spec_programs(spec, args.name)}
    if args.json:
        print(json.dumps(listings, indent=2))
        return 0
    for lines in listings.values():
        print("\n".join(lines))
    return 0


def _cmd_map_dump(args: argparse.Namespace, write: Callable[[str, bytes], None]) -> int:
    coll = _load_object(args.obj)
    maps = [m for m in coll.maps.values() if args.name is None or m.spec.name == args.name]
    if args.name and not maps:
        raise CliError(f"no map '{args.name}' (maps: {', '.join(coll.maps) or 'none'})")
    if args.json:
        print(json.dumps([_map_json(m) for m in maps], indent=2))
        return 0
    for m in maps:
        print(f"map {m.spec.name} ({m.spec.type.name.lower()}):")
        for key, value in m.items():
            print(f"  key: {key.hex(' ')}  value: {value.hex(' ')}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from tcemu.cli_verify import verify_command

    return verify_command(args.obj, args.sec, args.log_level, args.json)


def _repeat(text: str) -> int:
    """``--repeat``: the kernel's ``u32 repeat`` of BPF_PROG_TEST_RUN (0 runs once)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 0xFFFF_FFFF:
        raise argparse.ArgumentTypeError(f"{value} is not a u32 (0..4294967295)")
    return value


def add_commands(sub: Any, write: Callable[[str, bytes], None]) -> None:
    """Add ``prog`` and ``map`` to the top-level subparsers."""
    prog = sub.add_parser("prog", help="load an object's programs, run them like the kernel")
    psub = prog.add_subparsers(dest="prog_command", required=True, metavar="COMMAND")
    p = psub.add_parser("run", help="run a program like BPF_PROG_TEST_RUN (bpftool prog run)")
    p.add_argument("obj", help="clang-built BPF object (.o)")
    p.add_argument("--name", help="program (function) name")
    p.add_argument("--section", help="ELF section, when it holds one program")
    p.add_argument("--data-in", required=True, help="packet bytes to run on")
    p.add_argument("--data-out", help="write the packet after the run here")
    p.add_argument("--ctx-in", help="struct __sk_buff to start with (192 bytes)")
    p.add_argument("--ctx-out", help="write the struct __sk_buff after the run here")
    p.add_argument("--repeat", type=_repeat, default=1,
                   help="runs on the same skb (0 means 1, as in the kernel)")
    p.add_argument("--tier", choices=("interp", "jit"), default="jit")
    p.add_argument("--json", action="store_true", help="also report maps and trace output")
    p.add_argument("--trace-insns", action="store_true",
                   help="print every executed instruction with registers and memory accesses")
    p.add_argument("--wall-time", action="store_true",
                   help="measure duration with the host clock (not reproducible); by default "
                        "the virtual clock is used and the duration is 0")
    p.set_defaults(func=lambda a: _cmd_run(a, write))
    for name, fn, text in (("show", _cmd_show, "list the programs and maps of an object"),
                           ("dump", _cmd_dump, "print programs with their C source lines")):
        p = psub.add_parser(name, help=text)
        p.add_argument("obj", help="clang-built BPF object (.o)")
        p.add_argument("--name", help="only this program")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=lambda a, fn=fn: fn(a, write))
    p = psub.add_parser("verify", help="run tcemu's verifier and print the kernel-style log")
    p.add_argument("obj", help="clang-built BPF object (.o)")
    p.add_argument("--sec", "--section", dest="sec", help="only the programs of this section")
    p.add_argument("--log-level", type=int, choices=(1, 2), default=1,
                   help="1: the path to an error; 2: every state")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_verify)
    maps = sub.add_parser("map", help="inspect an object's maps")
    msub = maps.add_subparsers(dest="map_command", required=True, metavar="COMMAND")
    p = msub.add_parser("dump", help="print the maps as loaded (global data, initialisers)")
    p.add_argument("obj", help="clang-built BPF object (.o)")
    p.add_argument("--name", help="only this map")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=lambda a: _cmd_map_dump(a, write))
