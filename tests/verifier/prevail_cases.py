"""The PREVAIL YAML cases (``prevail/test-data``) adapted into kernel-loadable corpus cases.

A PREVAIL case is an abstract pre-state (``pre``: constraints on registers, stack cells and
the packet), a code fragment in labelled blocks, and the post-state PREVAIL infers.  The
kernel has no such pre-state, so each case becomes a SCHED_CLS program::

    prelude      establish the pre-state from the ctx in r1 (see below)
    goto body                        # these two only if something branches
    assume_fail: r0 = 0; exit        # to assume_fail (a failed `assume` or range check)
    body:        the blocks in order, labels renamed, `assume` turned into branches
    [r0 = 0; exit]                   # only if the last block falls off its end

Pre-state constraints that have a kernel equivalent:

* ``rN.type=number`` with ``svalue``/``uvalue`` a constant: ``rN = K``; with intervals (or
  none): an unknown u64 (``*(u64 *)(r1 +152)``, ``__sk_buff.tstamp``) narrowed by
  branches to ``assume_fail``; ``rN.uvalue=rN.svalue`` when implied by the intervals.
* ``rN.type=ctx`` (+ ``ctx_offset``), ``rN.type=stack`` (+ ``stack_offset``, counted from
  the bottom of the 512-byte frame, so r10 is 512), ``rN.type=shared`` (a map value: a
  one-entry ARRAY of ``shared_region_size`` bytes, direct value access at
  ``shared_offset``), ``rN.type=packet`` at a constant ``packet_offset`` with the packet
  length proven by a ``data_end`` check of ``packet_size`` (its lower bound), and
  ``rN.packet_offset=packet_size`` (that is ``data_end``).
* ``s[A...B].type=number`` (optionally a constant value): an 8- or 4-byte store.
* ``rN.type=map_fd`` / ``map_fd_programs``: PREVAIL's YAML harness describes every map
  fd as key 4, value 4, 4 entries (of an unspecified type); they become a HASH map and a
  PROG_ARRAY of that shape, one per fd.
* ``meta_offset=0``, and the interval constraints PREVAIL puts on pointers' addresses.

PREVAIL's YAML harness gives programs a 64-byte context with ``data`` at offset 0 and
``data_end`` at 4; the kernel's is ``struct __sk_buff``, so a ctx access at a given offset
reads a different field here (and may be refused where PREVAIL's is fine).

Everything else is PREVAIL's own model (map references written in its code syntax,
disjunctive types,
relations between registers, big-endian targets, callx) and the case is skipped with the
reason recorded in :func:`skipped_cases`; so is a case whose code the assembler refuses.
The prelude leaves one scratch register (the first of r0, r9..r2 that the pre-state does
not mention) initialised where PREVAIL would have it uninitialised.

The kernel's verdicts are recorded in ``corpus/prevail.json`` (``kernel_oracle record``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tcemu.bpf.uapi import BpfMapType
from tests.verifier.corpus import CORPUS_DIR, Case, CaseError, MapDef, parse_case

__all__ = ["EXPECT_FILE", "PREVAIL_DIR", "Adapted", "Skipped", "adapt_all", "prevail_cases",
           "skipped_cases"]

PREVAIL_DIR = Path(__file__).with_name("prevail") / "test-data"
EXPECT_FILE = CORPUS_DIR / "prevail.json"

_TSTAMP = 152          # offsetof(struct __sk_buff, tstamp): a u64 the program may read
_DATA, _DATA_END = 76, 80
_FAIL = "assume_fail"
_U64 = (1 << 64) - 1
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">",
           "s<": "s>=", "s>=": "s<", "s>": "s<=", "s<=": "s>"}


class NotAdaptableError(Exception):
    """This case depends on something only PREVAIL has."""


@dataclass(frozen=True)
class Skipped:
    """A PREVAIL case left out, and why."""

    topic: str
    name: str
    reason: str


@dataclass
class Adapted:
    """A PREVAIL case as kernel assembly."""

    topic: str
    name: str
    asm: str
    maps: list[MapDef] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.topic}/{self.name}"


# --- the pre-state ---------------------------------------------------------------------------


@dataclass
class _Reg:
    type: str | None = None
    props: dict[str, str] = field(default_factory=dict)
    relations: set[str] = field(default_factory=set)   # "uvalue=svalue"


def _interval(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\[\s*(-?\d+)\s*,\s*(-?\d+)\s*\]", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    if re.fullmatch(r"-?\d+", text):
        return int(text), int(text)
    raise NotAdaptableError(f"bound {text!r} is not a constant interval")


def _parse_pre(pre: list[str]) -> tuple[dict[int, _Reg], list[tuple[int, int, str, str]],
                                        dict[str, str]]:
    regs: dict[int, _Reg] = {}
    cells: list[tuple[int, int, str, str]] = []   # (lo, hi, field, value)
    other: dict[str, str] = {}
    for item in pre:
        text = item.replace(" ", "")
        m = re.fullmatch(r"r(\d+)\.(\w+)=(.+)", text)
        if m:
            reg = regs.setdefault(int(m.group(1)), _Reg())
            if m.group(2) == "type":
                reg.type = m.group(3)
            elif {m.group(2), m.group(3)} == {"uvalue", f"r{m.group(1)}.svalue"} or (
                    m.group(2) == "svalue" and m.group(3) == f"r{m.group(1)}.uvalue"):
                reg.relations.add("uvalue=svalue")
            elif m.group(2) == "packet_offset" and m.group(3) == "packet_size":
                reg.relations.add("packet_offset=packet_size")   # data_end
            elif m.group(2) in reg.props and reg.props[m.group(2)] != m.group(3):
                raise NotAdaptableError(f"two constraints on r{m.group(1)}.{m.group(2)}")
            else:
                reg.props[m.group(2)] = m.group(3)
            continue
        m = re.fullmatch(r"s\[(\d+)\.\.\.(\d+)\]\.(\w+)=(.+)", text)
        if m:
            cells.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
            continue
        m = re.fullmatch(r"(meta_offset|packet_size)=(.+)", text)
        if m:
            other[m.group(1)] = m.group(2)
            continue
        raise NotAdaptableError(f"pre-condition {item!r} has no kernel equivalent")
    return regs, cells, other


class _Prelude:
    def __init__(self, regs: dict[int, _Reg], cells: list[tuple[int, int, str, str]],
                 other: dict[str, str]) -> None:
        self.regs, self.cells, self.other = regs, cells, other
        self.lines: list[str] = []
        self.maps: list[MapDef] = []
        self.harness: dict[tuple[str, int], int] = {}
        free = [r for r in (0, 9, 8, 7, 6, 5, 4, 3, 2) if r not in regs]
        self.tmp = free[0] if free else None
        if 10 in regs and (regs[10].type != "stack" or regs[10].props.get("stack_offset")
                           not in (None, "512")):
            raise NotAdaptableError("r10 is not the frame pointer")

    def harness_map(self, kind: str, fd: int) -> int:
        """The index of PREVAIL's test-harness map ``fd``: every fd there is described as
        key 4, value 4, 4 entries; a plain one becomes a HASH, a program map a PROG_ARRAY."""
        key = (kind, fd)
        if key not in self.harness:
            map_type = BpfMapType.HASH if kind == "map_fd" else BpfMapType.PROG_ARRAY
            self.maps.append(MapDef(map_type, 4, 4, 4))
            self.harness[key] = len(self.maps) - 1
        return self.harness[key]

    def scratch(self) -> int:
        if self.tmp is None:
            raise NotAdaptableError("no scratch register left for the prelude")
        return self.tmp

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def const(self, reg: int, value: int) -> None:
        if not -(1 << 63) <= value <= _U64:
            raise NotAdaptableError(f"constant {value} does not fit in 64 bits")
        if -(1 << 31) <= value < (1 << 31):
            self.emit(f"r{reg} = {value}")
        else:
            self.emit(f"r{reg} = {value & _U64:#x} ll")

    def branch(self, reg: int, op: str, value: int) -> None:
        """``if rREG op value goto assume_fail`` (through the scratch register if needed)."""
        if -(1 << 31) <= value < (1 << 31):
            self.emit(f"if r{reg} {op} {value} goto {_FAIL}")
        else:
            tmp = self.scratch()
            self.const(tmp, value)
            self.emit(f"if r{reg} {op} r{tmp} goto {_FAIL}")

    # -- per kind ------------------------------------------------------------------------

    def stack_cells(self) -> None:
        for lo, hi, fld, value in self.cells:
            if fld in ("svalue", "uvalue"):
                continue
            if fld != "type" or value != "number":
                raise NotAdaptableError(f"stack cell constraint s[{lo}...{hi}].{fld}={value}")
            if not 0 <= lo <= hi < 512:
                raise NotAdaptableError(f"stack cell s[{lo}...{hi}] is outside the frame")
            values = {f: v for a, b, f, v in self.cells if (a, b) == (lo, hi) and f != "type"}
            tmp = self.scratch()
            if values:
                size = hi - lo + 1
                s = _interval(values.get("svalue", values.get("uvalue", "")))
                if s[0] != s[1] or size not in (1, 2, 4, 8) or lo % size:
                    raise NotAdaptableError(f"stack cell s[{lo}...{hi}] holds an interval or "
                                            "is not one aligned slot")
                self.const(tmp, s[0])
                self.emit(f"*(u{size * 8} *)(r10 {lo - 512}) = r{tmp}")
                continue
            self.emit(f"r{tmp} = *(u64 *)(r1 +{_TSTAMP})")
            at = lo
            while at <= hi:   # aligned stores of an unknown value, widest first
                size = next(z for z in (8, 4, 2, 1) if at % z == 0 and at + z - 1 <= hi)
                self.emit(f"*(u{size * 8} *)(r10 {at - 512}) = r{tmp}")
                at += size

    def number(self, n: int, reg: _Reg) -> None:
        props = dict(reg.props)
        rel = "uvalue=svalue" in reg.relations
        s = _interval(props.pop("svalue")) if "svalue" in props else None
        u = _interval(props.pop("uvalue")) if "uvalue" in props else None
        if props:
            raise NotAdaptableError(f"number constraint r{n}.{next(iter(props))}")
        if rel and s is not None and s[0] < 0:
            raise NotAdaptableError(f"relational constraint r{n}.uvalue=r{n}.svalue over "
                                    "negative values")
        if rel and s is None:
            s = (0, (1 << 63) - 1)
        for bounds in (s, u):
            if bounds is not None and bounds[0] > bounds[1]:
                raise NotAdaptableError(f"empty interval on r{n}")
        if s is not None and s[0] == s[1]:
            self.const(n, s[0])
            return
        if u is not None and u[0] == u[1]:
            self.const(n, u[0])
            return
        self.emit(f"r{n} = *(u64 *)(r1 +{_TSTAMP})")
        if s is not None:
            if s[0] > -(1 << 63):
                self.branch(n, "s<", s[0])
            if s[1] < (1 << 63) - 1:
                self.branch(n, "s>", s[1])
        if u is not None:
            if u[0] > 0:
                self.branch(n, "<", u[0] - (1 << 64) if u[0] >= 1 << 63 else u[0])
            if u[1] < _U64:
                self.branch(n, ">", u[1] - (1 << 64) if u[1] >= 1 << 63 else u[1])

    def pointer(self, n: int, reg: _Reg) -> None:
        props = {k: v for k, v in reg.props.items() if k not in ("svalue", "uvalue")}
        # PREVAIL models pointers as addresses in [1, 2^31); the kernel has no such facts.
        kind = reg.type
        if kind == "ctx":
            off = int(props.pop("ctx_offset", "0")) if re.fullmatch(
                r"-?\d+", props.get("ctx_offset", "0")) else None
            if off is None:
                raise NotAdaptableError(f"r{n}.ctx_offset is not a constant")
            if n != 1:
                self.emit(f"r{n} = r1")
            if off:
                self.emit(f"r{n} += {off}")
        elif kind == "stack":
            off_text = props.pop("stack_offset", None)
            props.pop("stack_numeric_size", None)  # as root every stack byte may be read
            if off_text is None or not re.fullmatch(r"\d+", off_text):
                raise NotAdaptableError(f"r{n}.stack_offset is not a constant")
            if n != 10:
                self.emit(f"r{n} = r10")
                if int(off_text) != 512:
                    self.emit(f"r{n} += {int(off_text) - 512}")
        elif kind == "shared":
            size = props.pop("shared_region_size", "")
            where = props.pop("shared_offset", "0")
            if not size.isdigit() or not where.isdigit() or int(size) == 0:
                raise NotAdaptableError(f"r{n} is a shared region without a constant size "
                                        "and offset")
            self.maps.append(MapDef(BpfMapType.ARRAY, 4, int(size), 1))
            self.emit(f"r{n} = map[fd:{len(self.maps) - 1}][0]+{int(where)}")
        elif kind in ("map_fd", "map_fd_programs"):
            fd = props.pop(kind, "")
            if not fd.isdigit():
                raise NotAdaptableError(f"r{n}.{kind} is not a constant")
            self.emit(f"r{n} = map[fd:{self.harness_map(kind, int(fd))}]")
        elif kind == "packet":
            where = props.pop("packet_offset", "0")
            self.packet(n, "packet_size" if "packet_offset=packet_size" in reg.relations
                        else where)
        else:
            raise NotAdaptableError(f"r{n}.type={kind} has no kernel equivalent")
        if props:
            raise NotAdaptableError(f"{reg.type} constraint r{n}.{next(iter(props))}")

    def packet(self, n: int, off_text: str) -> None:
        if self.other.get("meta_offset", "0") != "0":
            raise NotAdaptableError("packet metadata (meta_offset) other than 0")
        if off_text == "packet_size":
            self.emit(f"r{n} = *(u32 *)(r1 +{_DATA_END})")
            return
        if not re.fullmatch(r"\d+", off_text):
            raise NotAdaptableError(f"r{n}.packet_offset={off_text} is not a constant")
        size = _interval(self.other.get("packet_size", "0"))[0] if (
            "packet_size" in self.other) else 0
        self.emit(f"r{n} = *(u32 *)(r1 +{_DATA})")
        if size > 0:
            tmp = self.scratch()
            self.emit(f"r{tmp} = *(u32 *)(r1 +{_DATA_END})")
            self.emit(f"r{n} += {size}")
            self.emit(f"if r{n} > r{tmp} goto {_FAIL}")
            self.emit(f"r{n} += {-size}")
        if int(off_text):
            self.emit(f"r{n} += {int(off_text)}")

    def build(self) -> list[str]:
        self.stack_cells()
        for n in sorted(self.regs, key=lambda r: (r == 1, r)):   # r1 (the ctx) last
            reg = self.regs[n]
            if reg.type is None:
                raise NotAdaptableError(f"r{n} is constrained but has no type")
            if reg.type == "number":
                self.number(n, reg)
            else:
                self.pointer(n, reg)
        return self.lines


# --- the code --------------------------------------------------------------------------------


def _label(name: str) -> str:
    return "L_" + re.sub(r"\W", "_", name.strip("<>"))


def _u32_immediate(m: re.Match[str]) -> str:
    """PREVAIL writes an imm field above 2^31 as its u32 value: give the assembler hex
    (an imm field), except for ``rN = K``, where a big constant means LD_IMM64."""
    value = int(m.group(2))
    if (1 << 31) <= value < (1 << 32) and not re.fullmatch(r"r\d+ =", m.group(1)):
        return f"{m.group(1)} {value:#x}"
    return m.group(0)


def _translate(line: str) -> list[str]:
    """One PREVAIL code line in the assembler's kernel syntax (no lines for a comment)."""
    text = line.split(";", 1)[0].strip()
    if not text:
        return []
    text = re.sub(r"<(\w+)>", lambda m: _label(m.group(1)), text)
    text = re.sub(r"(?<=[0-9a-fA-F])ll$", " ll", text)
    # PREVAIL writes 32-bit operations with a 64-bit source name and u32 immediates.
    text = re.sub(r"^(w\d+ \S*=) r(\d+)$", r"\1 w\2", text)
    text = re.sub(r"^([rw]\d+ \S*=) (\d+)$", _u32_immediate, text)
    text = re.sub(r"^([rw]\d+)=([rw]\d+)$", r"\1 = \2", text)
    text = re.sub(r"= - ([rw])", r"= -\1", text)
    if text.startswith("callx"):
        raise NotAdaptableError("callx (BPF_CALL|BPF_X) is not a Linux instruction")
    if re.search(r"map_fd|map_by_idx|map_val|mva\(", text):
        raise NotAdaptableError("map references through PREVAIL's test-harness map table")
    m = re.fullmatch(r"assume ([rw]\d+) (\S+) ([rw]\d+|-?\w+)", text)
    if m:
        op = _NEGATE.get(m.group(2))
        if op is None:
            raise NotAdaptableError(f"assume with operator {m.group(2)!r}")
        return [f"if {m.group(1)} {op} {m.group(3)} goto {_FAIL}"]
    if re.match(r"if \S+ &[=!]= ", text):
        raise NotAdaptableError("PREVAIL-only bit-test comparison")
    m = re.fullmatch(r"([rw])(\d+) s(8|16|32)= ([rw])(\d+)", text)
    if m:
        return [f"{m.group(1)}{m.group(2)} = (s{m.group(3)}){m.group(1)}{m.group(5)}"]
    m = re.fullmatch(r"w(\d+) = r(\d+)", text)
    if m:
        return [f"w{m.group(1)} = w{m.group(2)}"]
    m = re.fullmatch(r"r(\d+) = swap(16|32|64) r(\d+)", text)
    if m:
        return [f"r{m.group(1)} = bswap{m.group(2)} r{m.group(3)}"]
    m = re.fullmatch(r"r0 = \*\((u8|u16|u32) \*\)skb\[r(\d+)\]", text)
    if m:
        return [f"r0 = *({m.group(1)} *)skb[r{m.group(2)} + 0]"]
    m = re.fullmatch(r"lock \*\((u32|u64) \*\)\((r\d+) ([-+]) (\d+)\) (\S+)= (r\d+)( fetch)?",
                     text)
    if m:
        size, base, sign, off, op, src, fetch = m.groups()
        ptr = f"(({size} *)({base} {sign}{off})"
        if op == "x":
            return [f"{src} = atomic_xchg{ptr}, {src})"]
        if op == "cx":
            return [f"r0 = atomic_cmpxchg{ptr}, r0, {src})"]
        name = {"+": "add", "&": "and", "|": "or", "^": "xor"}.get(op)
        if name is None:
            raise NotAdaptableError(f"atomic operator {op}=")
        if fetch:
            return [f"{src} = atomic_fetch_{name}{ptr}, {src})"]
        return [f"lock *({size} *)({base} {sign}{off}) {op}= {src}"]
    m = re.fullmatch(r"call (\d+)", text)
    if m:
        return [f"call {m.group(1)}"]
    return [text]


def _code(code: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for block, body in code.items():
        out.append(f"{_label(block)}:")
        lines = body.splitlines() if isinstance(body, str) else [str(x) for x in body]
        for line in lines:
            out.extend(_translate(line))
    return out


def _falls_through(lines: list[str]) -> bool:
    last = next((line for line in reversed(lines) if not line.endswith(":")), "")
    return not (last == "exit" or re.fullmatch(r"goto(l)? \S+", last) is not None)


def _adapt(doc: dict[str, Any]) -> tuple[str, list[MapDef]]:
    options = set(doc.get("options") or ())
    if "big_endian" in options:
        raise NotAdaptableError("big-endian target")
    if "expected-exception" in doc:
        raise NotAdaptableError("a PREVAIL harness exception fixture")
    regs, cells, other = _parse_pre(doc.get("pre") or [])
    prelude = _Prelude(regs, cells, other)
    lines = prelude.build()
    body = _code(doc["code"])
    if _falls_through(body):
        body += ["r0 = 0", "exit"]
    if any(line.endswith(f"goto {_FAIL}") for line in lines + body):
        asm = [*lines, "goto prevail_body", f"{_FAIL}:", "r0 = 0", "exit", "prevail_body:",
               *body]
    else:
        asm = [*lines, *body]
    return "\n".join(asm) + "\n", prelude.maps


# --- the cases ---------------------------------------------------------------------------------


def _documents() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in sorted(PREVAIL_DIR.glob("*.yaml")):
        topic = f"prevail/{path.stem}"
        seen: dict[str, int] = {}
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            name = str(doc["test-case"])
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} #{seen[name]}"
            yield topic, name, doc


@cache
def adapt_all() -> tuple[tuple[Adapted, ...], tuple[Skipped, ...]]:
    """Every PREVAIL case, adapted or skipped (with the reason)."""
    from tcemu.bpf.asm import assemble_insns
    from tcemu.errors import AsmError

    adapted: list[Adapted] = []
    skipped: list[Skipped] = []
    for topic, name, doc in _documents():
        try:
            asm, maps = _adapt(doc)
            try:
                assemble_insns(asm)
            except AsmError as err:
                raise NotAdaptableError(
                    f"the assembler refuses the translated code: {err}") from err
        except NotAdaptableError as why:
            skipped.append(Skipped(topic, name, str(why)))
            continue
        adapted.append(Adapted(topic, name, asm, maps))
    return tuple(adapted), tuple(skipped)


def skipped_cases() -> list[Skipped]:
    """The PREVAIL cases that were not adapted, each with its reason."""
    return list(adapt_all()[1])


def load_expectations() -> dict[str, dict[str, Any]]:
    """The kernel verdicts recorded for the adapted cases, by case id."""
    if not EXPECT_FILE.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(EXPECT_FILE.read_text())
    return data


def to_case(item: Adapted, expect: dict[str, Any]) -> Case:
    """An adapted case as a corpus :class:`Case` with the given ``expect``."""
    raw = {"name": item.name, "covers": f"prevail.{item.topic.split('/', 1)[1]}",
           "asm": item.asm, "expect": expect,
           "maps": [{"type": m.type.name.lower(), "key_size": m.key_size,
                     "value_size": m.value_size, "max_entries": m.max_entries}
                    for m in item.maps]}
    return parse_case(raw, item.topic, str(EXPECT_FILE.relative_to(CORPUS_DIR.parent)))


def prevail_cases() -> list[Case]:
    """The adapted PREVAIL cases with the kernel verdicts of ``corpus/prevail.json``."""
    expectations = load_expectations()
    cases = []
    for item in adapt_all()[0]:
        expect = expectations.get(item.id)
        if expect is None:
            raise CaseError(f"no recorded kernel verdict for {item.id!r}: run "
                            "`python -m tests.verifier.kernel_oracle record-prevail`")
        cases.append(to_case(item, expect))
    return cases
