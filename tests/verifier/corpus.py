"""The verifier corpus: cases with the real kernel's verdicts, and the rule for a log's error.

Case files live in ``tests/verifier/corpus/*.yaml`` (format: ``tests/verifier/README.md``).
:func:`load_cases` reads every file, assembles each ``asm`` case (or compiles each ``c``
case with clang, cached by source hash) and returns frozen :class:`Case` records whose
``insns`` are raw ``struct bpf_insn`` bytes: map references are LD_IMM64 with
``src_reg = BPF_PSEUDO_MAP_FD`` (or ``BPF_PSEUDO_MAP_VALUE``) and ``imm`` = the index of the
map in ``Case.maps``.  The kernel oracle (``kernel_oracle.py``) patches real fds into them;
:func:`build_program` binds them to tcemu maps.

:func:`first_error` is the one definition of "the error line of a verifier log", applied to
the kernel's log and to tcemu's alike.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tcemu.bpf import isa
from tcemu.bpf.asm import assemble_insns
from tcemu.bpf.env import Env
from tcemu.bpf.isa import Insn
from tcemu.bpf.ops import LdImm64
from tcemu.bpf.program import Program
from tcemu.bpf.uapi import BpfMapType, BpfProgType

__all__ = [
    "CORPUS_DIR",
    "PROG_FLAGS",
    "PROG_TYPES",
    "SUMMARY_PREFIXES",
    "TRACE_LINE",
    "Agreement",
    "Case",
    "CaseError",
    "Disagreement",
    "MapDef",
    "build_program",
    "case_by_name",
    "first_error",
    "load_cases",
    "load_own_cases",
    "measure",
    "parse_case",
    "tcemu_verdict",
]

CORPUS_DIR = Path(__file__).with_name("corpus")

PROG_TYPES = {
    "sched_cls": BpfProgType.SCHED_CLS,
    "sched_act": BpfProgType.SCHED_ACT,
    "socket_filter": BpfProgType.SOCKET_FILTER,
}
"""The program types a case may name (``prog_type:``), kernel enum by YAML spelling."""

PROG_FLAGS = {
    "strict_alignment": 1 << 0,   # BPF_F_STRICT_ALIGNMENT
    "any_alignment": 1 << 1,      # BPF_F_ANY_ALIGNMENT
}
"""``BPF_PROG_LOAD`` prog_flags a case may set (``prog_flags: [name, ...]``)."""

SUMMARY_PREFIXES = (
    "processed ",
    "verification time ",
    "stack depth ",
    "func#",
)
"""Log lines that summarise a verification run rather than explain a rejection."""

TRACE_LINE = re.compile(
    r"(\d+: |; |from \d+ to \d+: |frame\d+: |caller:|callee:|returning from callee:"
    r"|to caller at \d+:|mark_precise: |last_idx |parent |regs=|Live regs |Global function )")
"""Lines that trace the verifier's walk (``N: (code) insn``, ``N: R1=ctx() ...`` states,
``from A to B:`` branch states, ``; source`` line info, call frames, precision marks)."""

_GLUED_SUMMARY = re.compile(r"(?<=\S)processed \d+ insns \(limit \d+\).*$")

_CLANG = os.environ.get("TCEMU_CLANG", "clang-19")
_CFLAGS = ("-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
           f"-I/usr/include/{platform.machine()}-linux-gnu", "-c")
_CASE_KEYS = frozenset({"name", "covers", "prog_type", "prog_flags", "btf", "license", "maps",
                        "asm", "c", "expect", "note"})


class CaseError(ValueError):
    """A malformed case file or case (names the file and the case)."""


def first_error(log: str) -> str | None:
    """The error line of a verifier log: the first line of its closing error block.

    The kernel ends a rejected load's log with one or more lines that say why, after the
    trace of the failing path (:data:`TRACE_LINE`) and before the statistics
    (:data:`SUMMARY_PREFIXES`: ``processed N insns (limit ...)``, ``verification time``,
    ``stack depth``, ``func#N @M``).  Some errors take several lines, most specific first:
    ``invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)`` is followed by
    ``R2 offset is outside of the packet``, ``infinite loop detected at insn 1`` by the
    ``cur state:`` and ``old state:`` it compared.  So: drop blank and summary lines,
    take the trailing run of lines that are not trace lines, and return its first line,
    stripped.  A log that ends in a trace line gives its last line; an empty log (or one
    of statistics only, as an accepted load's log at level 1) gives None.  A message the
    kernel printed without its newline (``expected prog array map for tail call``) has the
    ``processed N insns`` statistics glued to it; they are cut off.
    """
    lines = [_GLUED_SUMMARY.sub("", line).strip() for line in log.splitlines()]
    lines = [line for line in lines if line and not line.startswith(SUMMARY_PREFIXES)]
    if not lines:
        return None
    start = len(lines)
    while start > 0 and not TRACE_LINE.match(lines[start - 1]):
        start -= 1
    return lines[start] if start < len(lines) else lines[-1]


@dataclass(frozen=True)
class MapDef:
    """One map a case creates: ``BPF_MAP_CREATE`` attributes."""

    type: BpfMapType
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0


@dataclass(frozen=True)
class Case:
    """One verifier test case and the kernel's recorded verdict on it."""

    name: str
    topic: str
    prog_type: BpfProgType
    license: str
    maps: tuple[MapDef, ...]
    insns: bytes
    expect_accepted: bool
    expect_error: str | None
    covers: str
    source: str = ""        # the asm text or C source, for messages
    path: str = ""          # the case file, relative to tests/verifier
    prog_flags: int = 0     # BPF_PROG_LOAD prog_flags (PROG_FLAGS)
    btf: bool = False       # loaded with BTF func info (one static function per subprogram)

    @property
    def id(self) -> str:
        """``topic/name``: unique across the corpus."""
        return f"{self.topic}/{self.name}"

    @property
    def own(self) -> bool:
        """Whether the project wrote the case (not adapted from PREVAIL)."""
        return not self.topic.startswith("prevail/")


# --- parsing --------------------------------------------------------------------------------


def _map_def(raw: Any, where: str) -> MapDef:
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: a map is a mapping, got {raw!r}")
    try:
        kind = BpfMapType[str(raw["type"]).upper()]
        return MapDef(kind, int(raw.get("key_size", 0)), int(raw.get("value_size", 0)),
                      int(raw["max_entries"]), int(raw.get("flags", 0)))
    except KeyError as err:
        raise CaseError(f"{where}: map {raw!r} lacks or misnames {err}") from None


# A `raw CODE DST SRC OFF IMM` line is one instruction given field by field (for encodings
# the assembler refuses on purpose); it is assembled as this placeholder, then replaced.
_RAW = re.compile(r"^(\s*)raw\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", re.M)
_PLACEHOLDER = "w9 ^= 0x5eadbeef"
_PLACEHOLDER_INSN = Insn(isa.ALU | isa.XOR | isa.K, 9, 0, 0, 0x5EADBEEF)


def _assemble(text: str, where: str) -> bytes:
    from tcemu.errors import AsmError

    raws = [Insn(*(int(m.group(i), 0) for i in range(2, 7))) for m in _RAW.finditer(text)]
    try:
        insns, _ = assemble_insns(_RAW.sub(lambda m: m.group(1) + _PLACEHOLDER, text))
    except AsmError as err:
        raise CaseError(f"{where}: {err}") from err
    if not insns:
        raise CaseError(f"{where}: no instructions")
    slots = [i for i, insn in enumerate(insns) if insn == _PLACEHOLDER_INSN]
    if len(slots) != len(raws):
        raise CaseError(f"{where}: do not write {_PLACEHOLDER!r} in a case")
    for slot, raw in zip(slots, raws, strict=True):
        insns[slot] = raw
    return b"".join(insn.encode() for insn in insns)


def _cache_dir() -> Path:
    base = Path(os.environ.get("TCEMU_CORPUS_CACHE", Path(tempfile.gettempdir())
                               / "tcemu-verifier-corpus"))
    base.mkdir(parents=True, exist_ok=True)
    return base


def compile_c(source: str, where: str = "") -> bytes:
    """Compile a C case with clang (cached by hash of source and flags); the object bytes."""
    key = hashlib.sha256((_CLANG + " ".join(_CFLAGS) + "\0" + source).encode()).hexdigest()
    obj = _cache_dir() / f"{key[:32]}.o"
    if not obj.exists():
        src = obj.with_suffix(".c")
        src.write_text(source)
        tmp = obj.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run([_CLANG, *_CFLAGS, str(src), "-o", str(tmp)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CaseError(f"{where}: clang failed:\n{done.stderr}")
        tmp.replace(obj)
    return obj.read_bytes()


def _from_c(source: str, where: str,
            ) -> tuple[bytes, tuple[MapDef, ...], str | None, BpfProgType]:
    """A C case's program (its only program), maps in declaration order, licence, type."""
    from tcemu.bpf.elf import load_collection_spec

    spec = load_collection_spec(compile_c(source, where))
    if len(spec.programs) != 1:
        raise CaseError(f"{where}: a C case defines exactly one program, got "
                        f"{sorted(spec.programs)}")
    prog = next(iter(spec.programs.values()))
    if any(m.initial is not None for m in spec.map_list()):
        raise CaseError(f"{where}: C cases cannot use global data (.data/.rodata/.bss): "
                        "the case format has no initial map contents")
    maps = tuple(MapDef(BpfMapType(m.type), m.key_size, m.value_size, m.max_entries, m.flags)
                 for m in spec.map_list())
    insns: list[Insn] = []
    for insn in prog.insns:
        if insn.code == isa.LD | isa.IMM | isa.DW and insn.src in (isa.PSEUDO_MAP_IDX,
                                                                    isa.PSEUDO_MAP_IDX_VALUE):
            src = isa.PSEUDO_MAP_FD if insn.src == isa.PSEUDO_MAP_IDX else isa.PSEUDO_MAP_VALUE
            insns.append(Insn(insn.code, insn.dst, src, insn.off, insn.imm))
        else:
            insns.append(insn)
    return isa.encode_insns(insns), maps, prog.license or None, prog.prog_type


def parse_case(raw: Any, topic: str, path: str) -> Case:
    """One case mapping of a case file (see README.md) as a :class:`Case`."""
    if not isinstance(raw, dict) or "name" not in raw:
        raise CaseError(f"{path}: a case is a mapping with a name, got {raw!r}")
    where = f"{path}: case {raw['name']!r}"
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        raise CaseError(f"{where}: unknown keys {sorted(unknown)}")
    if ("asm" in raw) == ("c" in raw):
        raise CaseError(f"{where}: exactly one of 'asm' and 'c'")
    try:
        prog_type = PROG_TYPES[raw.get("prog_type", "sched_cls")]
        if "prog_type" in raw and "c" in raw:
            raise CaseError(f"{where}: a C case takes its program type from its SEC()")
    except KeyError:
        raise CaseError(f"{where}: prog_type must be one of {sorted(PROG_TYPES)}") from None
    maps = tuple(_map_def(m, where) for m in raw.get("maps") or ())
    try:
        prog_flags = sum(PROG_FLAGS[f] for f in set(raw.get("prog_flags") or ()))
    except KeyError as err:
        raise CaseError(f"{where}: unknown prog flag {err}; known: {sorted(PROG_FLAGS)}") from None
    license = raw.get("license")
    if "asm" in raw:
        source = str(raw["asm"])
        insns = _assemble(source, where)
    else:
        source = str(raw["c"])
        if maps:
            raise CaseError(f"{where}: a C case declares its maps in C")
        insns, maps, c_license, prog_type = _from_c(source, where)
        license = license if license is not None else c_license
    expect = raw.get("expect")
    if not isinstance(expect, dict) or not isinstance(expect.get("accepted"), bool):
        raise CaseError(f"{where}: expect must be {{accepted: bool, error: str|null}}")
    error = expect.get("error")
    if error is not None and not isinstance(error, str):
        raise CaseError(f"{where}: expect.error must be a string or null")
    covers = raw.get("covers")
    if not isinstance(covers, str) or not covers:
        raise CaseError(f"{where}: covers names the check the case exercises")
    return Case(name=str(raw["name"]), topic=topic, prog_type=prog_type,
                license=license if license is not None else "GPL", maps=maps, insns=insns,
                expect_accepted=expect["accepted"], expect_error=error, covers=covers,
                source=source, path=path, prog_flags=prog_flags, btf=bool(raw.get("btf")))


def load_file(path: Path) -> list[Case]:
    """The cases of one case file."""
    rel = str(path.relative_to(Path(__file__).parent))
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise CaseError(f"{rel}: a case file is a mapping with 'topic' and 'cases'")
    topic = str(doc.get("topic") or path.stem)
    return [parse_case(raw, topic, rel) for raw in doc["cases"]]


@cache
def _load_own() -> tuple[Case, ...]:
    cases: list[Case] = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        cases.extend(load_file(path))
    return tuple(cases)


def load_own_cases() -> list[Case]:
    """The project's own cases (``corpus/*.yaml``)."""
    return list(_load_own())


@cache
def _load_all() -> tuple[Case, ...]:
    from tests.verifier.prevail_cases import prevail_cases

    cases = [*_load_own(), *prevail_cases()]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseError(f"{case.path}: duplicate case {case.id!r}")
        seen.add(case.id)
    return tuple(cases)


def load_cases() -> list[Case]:
    """Every case: the project's own (``corpus/*.yaml``) then the adapted PREVAIL ones."""
    return list(_load_all())


def case_by_name(case_id: str) -> Case:
    """The case ``topic/name``."""
    for case in _load_all():
        if case.id == case_id:
            return case
    raise KeyError(case_id)


# --- a tcemu Program for a case ----------------------------------------------------------------


def build_program(case: Case, env: Env | None = None) -> Program:
    """The case as a tcemu :class:`Program`, its maps created in ``env`` (a new one if None).

    The program is not validated (that is the verifier's job) and its LD_IMM64 map
    references resolve, as in a loaded object, through ``program.map_resolver`` to the map
    handle (``BPF_PSEUDO_MAP_FD``) or the value address (``BPF_PSEUDO_MAP_VALUE``) of
    ``maps[imm]``; ``program.vm`` is a Vm over ``env`` with the program type's helpers.
    ``tcemu.bpf.maps.map_from_handle(env, handle)`` gives the map behind a handle.
    """
    from tcemu.bpf.helpers import helpers_for
    from tcemu.bpf.maps import MapSpec, create_map, map_handle
    from tcemu.bpf.vm import Vm
    from tcemu.errors import LoadError

    env = env if env is not None else Env()
    live = [create_map(MapSpec(f"m{i}", m.type, m.key_size, m.value_size, m.max_entries,
                               m.flags), env) for i, m in enumerate(case.maps)]
    prog = Program(isa.decode_bytes(case.insns), name=case.name, validate=False,
                   prog_type=case.prog_type, license=case.license)

    def resolve(op: LdImm64) -> int:
        if not 0 <= op.imm < len(live):
            raise LoadError(f"case {case.id}: insn {op.pc}: map index {op.imm} out of range")
        target = live[op.imm]
        if op.pseudo in (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_IDX):
            return map_handle(target)
        base = target.vm_lookup((0).to_bytes(4, "little"))
        if not base:
            raise LoadError(f"case {case.id}: insn {op.pc}: map has no direct value access")
        return int(base) + (op.imm2 & 0xFFFF_FFFF)

    prog.map_resolver = resolve
    prog.vm = Vm(env, helpers=helpers_for(case.prog_type))
    return prog


# --- agreement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """A case where a verifier and the kernel's record differ."""

    case: str
    kernel: tuple[bool, str | None]
    ours: tuple[bool, str | None]


@dataclass(frozen=True)
class Agreement:
    """How far a verifier agrees with the recorded kernel verdicts (issue 4's targets)."""

    cases: int
    verdicts_agree: int
    rejected: int             # cases the kernel rejects
    errors_agree: int         # of those, rejected by us too with the same error line
    disagreements: tuple[Disagreement, ...]

    @property
    def verdict_rate(self) -> float:
        return self.verdicts_agree / self.cases if self.cases else 1.0

    @property
    def error_rate(self) -> float:
        return self.errors_agree / self.rejected if self.rejected else 1.0


def measure(cases: list[Case], run: Callable[[Case], tuple[bool, str | None]]) -> Agreement:
    """Compare ``run(case) -> (accepted, error line)`` with every case's record.

    The error line must come from :func:`first_error` applied to the verifier's log.  A
    case disagrees when the verdict differs, or when both reject with different lines.
    """
    agree = rejected = errors = 0
    out: list[Disagreement] = []
    for case in cases:
        ours = run(case)
        kernel = (case.expect_accepted, case.expect_error)
        agree += ours[0] == kernel[0]
        if not kernel[0]:
            rejected += 1
            errors += ours == kernel
        if ours != kernel and not (ours[0] and kernel[0]):
            out.append(Disagreement(case.id, kernel, ours))
    return Agreement(len(cases), agree, rejected, errors, tuple(out))


def tcemu_verdict(case: Case) -> tuple[bool, str | None]:
    """tcemu's verifier on ``case``: (accepted, first_error(log))."""
    from tcemu.bpf.verifier import VerifierError, verify

    try:
        verify(build_program(case))
    except VerifierError as err:
        return False, first_error(err.log) or err.first_error
    return True, None


def main(argv: list[str]) -> int:
    """``python -m tests.verifier.corpus score [--own|--prevail] [-v]``: tcemu vs kernel."""
    if not argv or argv[0] != "score":
        print(main.__doc__)
        return 2
    cases = load_cases()
    if "--own" in argv:
        cases = [c for c in cases if c.own]
    if "--prevail" in argv:
        cases = [c for c in cases if not c.own]
    result = measure(cases, tcemu_verdict)
    if "-v" in argv:
        for d in result.disagreements:
            print(f"{d.case}\n    kernel: {d.kernel}\n    tcemu:  {d.ours}")
    print(f"verdicts agree: {result.verdicts_agree}/{result.cases} "
          f"({100 * result.verdict_rate:.1f}%); error lines agree on rejected cases: "
          f"{result.errors_agree}/{result.rejected} ({100 * result.error_rate:.1f}%)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
