"""Kernel-differential tests of the disassembler on the committed objects in tests/testdata.

Every object is loaded into the running kernel with ``bpftool -d prog loadall`` (pinned in a
private bpffs directory that is always removed) and three comparisons are made, per program:

(a) XLATED, the main check: the kernel's own translated bytes (``bpftool prog dump xlated
    ... file F``) printed by :func:`tcemu.bpf.disasm.format_program` must equal bpftool's
    text of the same program line by line, except where bpftool prints through callbacks
    that name kernel state (see :func:`_xlated_skip`).  Map loads are compared: the test
    passes bpftool's own ld_imm64 naming (``map[id:N]``) as the ``namer``.
(b) ORIGINAL: each function's instruction bytes from the ELF file, printed by us, against
    the same bpftool text, for the instructions the kernel kept byte for byte (found by
    aligning the two instruction sequences).  Rewritten ones -- ctx accesses, helper calls,
    map loads, LD_ABS/LD_IND, division guards, jumps whose offsets moved, dead code -- are
    counted, not compared.
(c) VERIFIER: the ELF bytes printed by us against the verifier log's "Live regs before
    insn" listing (log_level 2, kernel 6.15+), which the running kernel prints with its own
    ``kernel/bpf/disasm.c`` before any rewrite.  Unlike bpftool's copy of disasm.c, this
    printer is as new as the kernel, so it is the oracle for the -mcpu=v4 encodings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tcemu.bpf import Insn, Program
from tcemu.bpf.disasm import format_program
from tests.elf_sections import BpfElf, read_bpf_elf

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "bpf"
OBJECTS = sorted(TESTDATA.glob("*.bpf.o"))
BPFTOOL = "bpftool"
SYSFS_BPF = Path("/sys/fs/bpf")

_SLOT = struct.Struct("<BBhi")  # struct bpf_insn: code, regs, off, imm
_LD_IMM64 = 0x18
_CALL = 0x85
_PSEUDO_CALL = 1
_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
_MAX_REPORTED = 40


# --------------------------------------------------------------------------------------------
# Raw instruction fields, decoded here so the skip rules do not depend on tcemu's decoder.


@dataclass(frozen=True)
class Slot:
    code: int
    dst: int
    src: int
    off: int
    imm: int

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def op(self) -> int:
        return self.code & 0xF0


def _slots(data: bytes) -> list[Slot]:
    return [Slot(c, r & 0x0F, r >> 4, o, i) for c, r, o, i in _SLOT.iter_unpack(data)]


def _is_pseudo_call(s: Slot) -> bool:
    return s.code == _CALL and s.src == _PSEUDO_CALL


def _is_cpu_v4_encoding(s: Slot) -> bool:
    """Encodings added with -mcpu=v4 (kernel 6.6): what a pre-6.6 disasm.c misprints."""
    if s.cls in (_ALU, _ALU64):
        if s.op in (0x30, 0x90) and s.off == 1:  # sdiv, smod
            return True
        if s.op == 0xB0 and s.code & 0x08 and s.off != 0:  # movsx
            return True
        return s.cls == _ALU64 and s.op == 0xD0  # bswap
    if s.cls == _LDX:
        return s.code & 0xE0 == 0x80  # ldsx (BPF_MEMSX)
    return s.code == (_JMP32 | 0x00)  # gotol


# --------------------------------------------------------------------------------------------
# Text lines: "(b7) r0 = 0" keyed by instruction index.

_OURS = re.compile(r"^(\d+): (\([0-9a-f]{2}\) .*)$")
# Verifier log, "Live regs before insn:" section (kernel/bpf/verifier.c): an optional strongly
# connected component number, the index, one column per r0..r9, then the instruction.
_LIVE_REGS = re.compile(r"^\s*(?:\d+\s+)?(\d+): [.0-9]{10} (\([0-9a-f]{2}\) .*)$")
_FUNC_START = re.compile(r"^func#(\d+) @(\d+)$")
_PROTO_NAME = re.compile(r"(\w+)\(")


def _ours(data: bytes) -> dict[int, str]:
    """Our disassembly of raw bytes, keyed by instruction index."""
    program = Program.from_bytes(data, validate=False)
    return _index(format_program(program, namer=_bpftool_imm))


def _index(lines: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in lines:
        m = _OURS.match(line)
        assert m, f"format_program line not in the kernel's 'idx: (code) text' shape: {line!r}"
        out[int(m.group(1))] = m.group(2)
    return out


def _bpftool_imm(insn: Insn, value: int) -> str:
    """bpftool's ``print_imm`` callback (tools/bpf/bpftool/xlated_dumper.c).

    In a dump, the kernel (``bpf_insn_prepare_dump``) has replaced each map pointer by the
    map's id and restored src_reg, so bpftool prints ``map[id:N]`` / ``map[id:N][0]+off``;
    the instruction's own fields are still ours to print.
    """
    src, imm = insn.src, insn.imm
    if src == 1:  # BPF_PSEUDO_MAP_FD
        return f"map[id:{imm & 0xFFFFFFFF}]"
    if src == 2:  # BPF_PSEUDO_MAP_VALUE
        return f"map[id:{imm & 0xFFFFFFFF}][0]+{(value >> 32) & 0xFFFFFFFF}"
    return f"{value:#x}"


# --------------------------------------------------------------------------------------------
# Loading objects into the kernel.


@dataclass
class KernelProg:
    name: str
    xlated: bytes
    text: dict[int, str]  # bpftool's xlated text by index
    subprogs: list[tuple[str, int]]  # (function name, first xlated index), from BTF
    verifier_listing: dict[int, str] | None  # "Live regs before insn" lines by index
    verifier_starts: list[int]  # func#N @start, in the submitted program


@dataclass
class LoadedObject:
    path: Path
    elf: BpfElf
    progs: dict[str, KernelProg] = field(default_factory=dict)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFTOOL, *args], capture_output=True, text=True, check=False)


def _bpftool_json(*args: str) -> Any:
    res = _run("-j", *args)
    assert res.returncode == 0, f"bpftool -j {' '.join(args)} failed: {res.stderr[-2000:]}"
    return json.loads(res.stdout)


def _bpffs_mounted_at(path: Path) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return any(
            f.split()[1] == str(path) and f.split()[2] == "bpf" for f in mounts if f.strip()
        )


def _verifier_logs(stderr: str) -> dict[str, list[str]]:
    """libbpf prints each program's log between BEGIN/END markers when log_level is set."""
    logs: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stderr.splitlines():
        m = re.search(r"prog '(\w+)': -- BEGIN PROG LOAD LOG --", line)
        if m:
            current = logs.setdefault(m.group(1), [])
        elif line.startswith("-- END PROG LOAD LOG --"):
            current = None
        elif current is not None:
            current.append(line)
    return logs


def _parse_verifier_log(lines: list[str]) -> tuple[dict[int, str] | None, list[int]]:
    starts = [int(m.group(2)) for m in map(_FUNC_START.match, lines) if m]
    try:
        first = lines.index("Live regs before insn:") + 1
    except ValueError:
        return None, starts
    listing: dict[int, str] = {}
    for line in lines[first:]:
        m = _LIVE_REGS.match(line)
        if not m:
            break
        listing[int(m.group(1))] = m.group(2)
    return listing, starts


class KernelLoader:
    """Loads objects lazily (after the kernel gate ran) and removes every pin at the end."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._private_mount = False
        self._cache: dict[Path, LoadedObject] = {}

    def _dir(self) -> Path:
        if self._root is not None:
            return self._root
        if _bpffs_mounted_at(SYSFS_BPF):
            self._root = Path(tempfile.mkdtemp(prefix=f"tcemu_test_{os.getpid()}_",
                                               dir=SYSFS_BPF))
        else:
            # No bpffs on /sys/fs/bpf: mount a private one rather than change the host's.
            root = Path(tempfile.mkdtemp(prefix="tcemu_test_bpffs_"))
            res = subprocess.run(["mount", "-t", "bpf", "bpf", str(root)],
                                 capture_output=True, text=True, check=False)
            if res.returncode != 0:
                root.rmdir()
                pytest.fail(f"cannot mount a bpffs for pinning: {res.stderr.strip()}")
            self._root, self._private_mount = root, True
        return self._root

    def close(self) -> None:
        if self._root is None:
            return
        if self._private_mount:
            subprocess.run(["umount", str(self._root)], check=False)
            self._root.rmdir()
        else:
            shutil.rmtree(self._root)
        self._root = None

    def load(self, path: Path) -> LoadedObject:
        if path in self._cache:
            return self._cache[path]
        if shutil.which(BPFTOOL) is None:
            message = "bpftool is not installed (Debian package: bpftool)"
            if os.environ.get("TCEMU_REQUIRE_KERNEL") == "1":
                pytest.fail(f"TCEMU_REQUIRE_KERNEL=1 but {message}")
            pytest.skip(message)
        pins = self._dir() / path.name.replace(".", "_")
        res = _run("-d", "prog", "loadall", str(path), str(pins), "type", "tc")
        assert res.returncode == 0, (
            f"the kernel rejected {path.name}:\n" + "\n".join(res.stderr.splitlines()[-60:])
        )
        logs = _verifier_logs(res.stderr)
        loaded = LoadedObject(path, read_bpf_elf(path))
        for pin in sorted(pins.iterdir()):
            prog_id = _bpftool_json("prog", "show", "pinned", str(pin))["id"]
            dump = _bpftool_json("prog", "dump", "xlated", "id", str(prog_id))
            with tempfile.TemporaryDirectory(prefix="tcemu_xlated_") as tmp:
                raw_file = Path(tmp) / "xlated.bin"  # not on the bpffs: it holds only pins
                res = _run("prog", "dump", "xlated", "id", str(prog_id), "file", str(raw_file))
                assert res.returncode == 0, f"bpftool dump xlated file failed: {res.stderr}"
                xlated = raw_file.read_bytes()
            text: dict[int, str] = {}
            subprogs: list[tuple[str, int]] = []
            idx = 0
            for entry in dump:
                if "proto" in entry:
                    m = _PROTO_NAME.search(entry["proto"])
                    assert m, f"unexpected prototype {entry['proto']!r}"
                    subprogs.append((m.group(1), idx))
                text[idx] = entry["disasm"]
                idx += 2 if entry["disasm"].startswith(f"({_LD_IMM64:02x})") else 1
            listing, starts = _parse_verifier_log(logs.get(pin.name, []))
            loaded.progs[pin.name] = KernelProg(pin.name, xlated, text, subprogs, listing,
                                                starts)
        assert loaded.progs, f"bpftool pinned no program of {path.name}"
        self._cache[path] = loaded
        return loaded


@pytest.fixture(scope="module")
def kernel_loader() -> Iterator[KernelLoader]:
    loader = KernelLoader()
    try:
        yield loader
    finally:
        loader.close()


@cache
def _bpftool_knows_cpu_v4() -> bool:
    """bpftool carries its own copy of disasm.c; cpu v4 printing arrived in bpftool 7.3."""
    m = re.search(r"v(\d+)\.(\d+)", _run("version").stdout)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= (7, 3)


# --------------------------------------------------------------------------------------------
# Comparison.


@dataclass
class Report:
    compared: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    def check(self, where: str, slot: Slot, kernel: str, ours: str) -> None:
        self.compared += 1
        if kernel != ours:
            self.mismatches.append(
                f"{where} opcode {slot.code:#04x} (src={slot.src} off={slot.off} "
                f"imm={slot.imm}):\n    kernel: {kernel}\n    ours:   {ours}"
            )

    def assert_clean(self, what: str) -> None:
        shown = "\n".join(self.mismatches[:_MAX_REPORTED])
        more = len(self.mismatches) - _MAX_REPORTED
        assert not self.mismatches, (
            f"{len(self.mismatches)} of {self.compared} {what} lines differ "
            f"(skipped: {dict(self.skipped)}):\n{shown}"
            + (f"\n... and {more} more" if more > 0 else "")
        )
        assert self.compared > 0, f"no {what} line was compared (skipped: {dict(self.skipped)})"


def _xlated_skip(slot: Slot) -> str | None:
    """Why bpftool's text for this translated instruction is not ours to reproduce."""
    if _is_pseudo_call(slot):
        # jit_subprogs() moves the pc-relative offset to off and stores the callee's
        # subprog index in imm; bpftool prints off and the JITed symbol ("pc+14#bpf_prog_..").
        return "bpf-to-bpf call renumbered by jit_subprogs()"
    if slot.code == _CALL:
        # do_misc_fixups() replaces the helper id by the helper's address relative to
        # __bpf_call_base (LD_ABS/LD_IND expand into such calls too); bpftool names the
        # address through kallsyms ("call htab_map_lookup_elem#330864").
        return "helper call patched to an address by do_misc_fixups()"
    if _is_cpu_v4_encoding(slot) and not _bpftool_knows_cpu_v4():
        return "cpu v4 encoding, which this bpftool's disasm.c predates"
    return None


def _object_id(path: Path) -> str:
    return path.name.removesuffix(".bpf.o")


objects = pytest.mark.parametrize("obj", OBJECTS, ids=_object_id)


def test_testdata_objects_are_present() -> None:
    sources = sorted(p.stem for p in TESTDATA.glob("*.c"))
    assert sources, f"no BPF sources in {TESTDATA}"
    built = {p.name.split(".")[0] for p in OBJECTS}
    missing = set(sources) - built
    assert not missing, f"unbuilt sources: {missing} (run make -C tests/testdata)"


@objects
def test_elf_reader_finds_programs(obj: Path) -> None:
    elf = read_bpf_elf(obj)
    assert elf.sections["license"] == b"GPL\0"
    assert elf.sections["tc"]
    assert len(elf.sections["tc"]) % 8 == 0
    tc_funcs = [name for name, fn in elf.functions.items() if fn.section == "tc"]
    assert tc_funcs == [obj.name.split(".")[0]]
    for name, fn in elf.functions.items():
        code = elf.sections[fn.section][fn.offset : fn.offset + fn.size]
        assert len(code) == fn.size, name
        assert fn.size % 8 == 0, name
        assert format_program(Program.from_bytes(code, validate=False)), name


@pytest.mark.kernel
@objects
def test_xlated_matches_bpftool(obj: Path, kernel_loader: KernelLoader) -> None:
    """(a) Our text for the kernel's translated bytes == bpftool's text for them."""
    loaded = kernel_loader.load(obj)
    report = Report()
    for prog in loaded.progs.values():
        ours = _ours(prog.xlated)
        slots = _slots(prog.xlated)
        assert sorted(ours) == sorted(prog.text), (
            f"{prog.name}: instruction boundaries differ from bpftool's "
            f"({len(ours)} lines vs {len(prog.text)})"
        )
        for idx, kernel in prog.text.items():
            reason = _xlated_skip(slots[idx])
            if reason:
                report.skipped[reason] += 1
                continue
            report.check(f"{prog.name}:{idx}", slots[idx], kernel, ours[idx])
    report.assert_clean("xlated")


def _functions(prog: KernelProg, length: int) -> Iterator[tuple[str, int, int]]:
    """(name, start, end) of each subprogram, by the BTF prototypes bpftool prints."""
    bounds = [start for _, start in prog.subprogs] + [length]
    for (name, start), end in zip(prog.subprogs, bounds[1:], strict=True):
        yield name, start, end


def _kept_pairs(orig: bytes, xlated: bytes) -> Iterator[tuple[int, int]]:
    """(ELF index, xlated index) of the instructions the kernel kept byte for byte.

    The kernel inserts and removes instructions (ctx accesses that expand, LD_ABS, inlined
    map lookups, division guards, dead code), so indices drift; aligning the two slot
    sequences finds the runs it left alone. A jump whose offset had to change, a rewritten
    ctx access, a patched call or map load is not in any run and is not compared.
    """
    a = [orig[i : i + 8] for i in range(0, len(orig), 8)]
    b = [xlated[i : i + 8] for i in range(0, len(xlated), 8)]
    for block in SequenceMatcher(None, a, b).get_matching_blocks():
        for k in range(block.size):
            yield block.a + k, block.b + k


@pytest.mark.kernel
@objects
def test_original_matches_xlated(obj: Path, kernel_loader: KernelLoader) -> None:
    """(b) Our text for the ELF's bytes == bpftool's, where the kernel kept the bytes."""
    loaded = kernel_loader.load(obj)
    report = Report()
    for prog in loaded.progs.values():
        for name, start, end in _functions(prog, len(prog.xlated) // 8):
            fn = loaded.elf.functions[name]
            code = loaded.elf.sections[fn.section][fn.offset : fn.offset + fn.size]
            ours, orig = _ours(code), _slots(code)
            kept = dict(_kept_pairs(code, prog.xlated[start * 8 : end * 8]))
            for idx, text in ours.items():
                xidx = kept.get(idx)
                wide = orig[idx].code == _LD_IMM64
                if xidx is None or (wide and kept.get(idx + 1) != xidx + 1):
                    report.skipped["rewritten or moved by the kernel"] += 1
                    continue
                if start + xidx not in prog.text:  # matched an ld_imm64's second half
                    report.skipped["not an instruction start in the xlated program"] += 1
                    continue
                reason = _xlated_skip(orig[idx])
                if reason:
                    report.skipped[reason] += 1
                    continue
                kernel = prog.text[start + xidx]
                report.check(f"{prog.name}/{name}:{idx}->{start + xidx}", orig[idx], kernel, text)
    report.assert_clean("original-vs-xlated")


@pytest.mark.kernel
@objects
def test_original_matches_verifier_log(obj: Path, kernel_loader: KernelLoader) -> None:
    """(c) Our text for the ELF's bytes == the running kernel's own verifier listing."""
    loaded = kernel_loader.load(obj)
    report = Report()
    for prog in loaded.progs.values():
        if prog.verifier_listing is None:
            pytest.skip("the verifier log has no 'Live regs before insn' listing (kernel < 6.15)")
        assert len(prog.verifier_starts) == len(prog.subprogs), (
            f"{prog.name}: verifier saw subprogs at {prog.verifier_starts}, "
            f"bpftool {prog.subprogs}"
        )
        # Subprograms keep their order from submission to dump; libbpf appended the callees.
        starts = [*prog.verifier_starts, max(prog.verifier_listing) + 1]
        for i, (name, _) in enumerate(prog.subprogs):
            fn = loaded.elf.functions[name]
            code = loaded.elf.sections[fn.section][fn.offset : fn.offset + fn.size]
            assert len(code) // 8 == starts[i + 1] - starts[i], (
                f"{prog.name}/{name}: {len(code) // 8} insns in the ELF, but the verifier "
                f"listed {starts[i + 1] - starts[i]}"
            )
            relocated = loaded.elf.relocated.get(fn.section, frozenset())
            orig = _slots(code)
            for idx, ours in _ours(code).items():
                kernel = prog.verifier_listing.get(starts[i] + idx)
                assert kernel is not None, f"{prog.name}/{name}:{idx} missing from the listing"
                where = f"{prog.name}/{name}:{idx}"
                if fn.offset + idx * 8 in relocated or _is_pseudo_call(orig[idx]):
                    # libbpf rewrote it: a map reference became the map's kernel address in
                    # the log; a bpf-to-bpf call got the pc-relative offset of the callee in
                    # libbpf's layout (main program, then callees appended as it finds them),
                    # whether or not clang left a relocation. Compare the opcode only.
                    report.skipped["rewritten by libbpf (opcode compared only)"] += 1
                    report.check(where, orig[idx], kernel[:4], ours[:4])
                else:
                    report.check(where, orig[idx], kernel, ours)
    report.assert_clean("verifier-listing")
