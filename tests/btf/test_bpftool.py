"""Cross-checks against the tools: bpftool's raw BTF dump, objdump's line table, clang.

The committed dumps (``data/*.btf.txt``, ``data/*.lines.txt``) make the main checks run
anywhere; where bpftool, llvm-objdump-19 or clang-19 are installed, further tests confirm
that the dumps and objects are what those tools produce today.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tcemu.bpf.btf import BtfSpec
from tcemu.bpf.btf.types import (
    Array,
    BtfType,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Struct,
    Union,
    Var,
    Void,
)
from tcemu.bpf.btf.wire import BtfIntEncoding
from tests.btf.objects import (
    DATA,
    OBJECTS,
    DumpType,
    dump_text,
    parse_line_dump,
    parse_raw_dump,
    spec,
)

_INT_ENCODING = {BtfIntEncoding.NONE: "(none)", BtfIntEncoding.SIGNED: "SIGNED",
                 BtfIntEncoding.CHAR: "CHAR", BtfIntEncoding.BOOL: "BOOL"}
_LINKAGE = {0: "static", 1: "global", 2: "extern"}


Row = tuple[Mapping[str, object], Sequence[tuple[str | None, Mapping[str, object]]]]


def _attrs_and_items(t: BtfType) -> Row:
    """What bpftool prints for ``t`` (tools/bpf/bpftool/btf.c, ``dump_btf_type`` raw mode)."""
    if isinstance(t, Int):
        return {"size": t.size, "bits_offset": t.offset, "nr_bits": t.bits,
                "encoding": _INT_ENCODING[t.encoding]}, []
    if isinstance(t, Array):
        return {"type_id": t.elem, "index_type_id": t.index, "nr_elems": t.nelems}, []
    if isinstance(t, (Struct, Union)):
        members = [(m.name or "(anon)", {"type_id": m.type, "bits_offset": m.bit_offset}
                    | ({"bitfield_size": m.bitfield_size} if m.bitfield_size else {}))
                   for m in t.members]
        return {"size": t.size, "vlen": len(t.members)}, members
    if isinstance(t, (Enum, Enum64)):
        suffix = ("LL" if t.signed else "ULL") if isinstance(t, Enum64) else ""
        values = [(v.name, {"val": f"{v.value}{suffix}"}) for v in t.values]
        encoding = "SIGNED" if t.signed else "UNSIGNED"
        return {"encoding": encoding, "size": t.size, "vlen": len(t.values)}, values
    if isinstance(t, Fwd):
        return {"fwd_kind": "union" if t.union else "struct"}, []
    if isinstance(t, Func):
        return {"type_id": t.proto, "linkage": _LINKAGE[t.linkage]}, []
    if isinstance(t, FuncProto):
        params = [(p.name or "(anon)", {"type_id": p.type}) for p in t.params]
        params += [("(anon)", {"type_id": 0})] if t.variadic else []
        return {"ret_type_id": t.ret, "vlen": len(params)}, params
    if isinstance(t, Var):
        return {"type_id": t.type, "linkage": _LINKAGE[t.linkage]}, []
    if isinstance(t, Datasec):
        entries = [(None, {"type_id": v.type, "offset": v.offset, "size": v.size})
                   for v in t.vars]
        return {"size": t.size, "vlen": len(t.vars)}, entries
    if isinstance(t, Float):
        return {"size": t.size}, []
    if isinstance(t, DeclTag):
        return {"type_id": t.type, "component_idx": t.component_idx}, []
    assert not isinstance(t, Void), "bpftool does not print type 0"
    return {"type_id": t.type}, []  # PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG


def _as_dump(btf: BtfSpec, type_id: int) -> DumpType:
    t = btf[type_id]
    attrs, items = _attrs_and_items(t)
    return DumpType(type_id, t.kind.name, t.name or "(anon)",
                    {k: str(v) for k, v in attrs.items()},
                    [(n, {k: str(v) for k, v in a.items()}) for n, a in items])


@pytest.mark.parametrize("name", OBJECTS)
def test_every_type_matches_bpftool(name: str) -> None:
    btf = spec(name)
    dump = parse_raw_dump(dump_text(name, "btf.txt"))
    assert len(dump) == len(btf) - 1
    for expected in dump:
        assert _as_dump(btf, expected.type_id) == expected, f"type {expected.type_id}"


@pytest.mark.parametrize("name", OBJECTS)
def test_sizes_agree_with_bpftool(name: str) -> None:
    """Where bpftool prints a size, size_of gives it (DATASECs excepted: clang writes 0)."""
    btf = spec(name)
    for entry in parse_raw_dump(dump_text(name, "btf.txt")):
        if "size" in entry.attrs and entry.kind != "DATASEC":
            assert btf.size_of(entry.type_id) == int(entry.attrs["size"])


def test_dumps_cover_every_kind() -> None:
    kinds = {e.kind for name in OBJECTS for e in parse_raw_dump(dump_text(name, "btf.txt"))}
    assert kinds == {"INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF",
                     "VOLATILE", "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC",
                     "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64"}


@pytest.mark.parametrize("name", OBJECTS)
def test_line_info_matches_the_dwarf_line_table(name: str) -> None:
    """objdump's ``; file:N`` marks (DWARF) and BTF line_info tell the same story.

    One deliberate difference: at a function's first instruction BTF names the line of
    the function's declaration (clang emits the DISubprogram line there), while DWARF
    names the line of the opening brace or first statement.
    """
    btf = spec(name)
    entries = {(sec, f.insn) for sec, infos in btf.func_info.items() for f in infos}
    marks = parse_line_dump(dump_text(name, "lines.txt"))
    assert marks
    for mark in marks:
        if (mark.section, mark.insn) not in entries:
            line = btf.line_for(mark.section, mark.insn)
            assert line is not None, mark
            assert line.line_num == mark.line_num, mark
    by_slot = {(m.section, m.insn): m.line_num for m in marks}
    for sec, infos in btf.line_info.items():
        previous = None
        for info in infos:
            if (sec, info.insn) not in entries and info.line_num != previous:
                assert by_slot.get((sec, info.insn)) == info.line_num, (sec, info)
            previous = info.line_num


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed, so the committed dumps are not re-checked")
    return path


@pytest.mark.parametrize("name", OBJECTS)
def test_committed_btf_dump_is_fresh(name: str) -> None:
    bpftool = _tool("bpftool")
    res = subprocess.run([bpftool, "btf", "dump", "file", f"{name}.bpf.o", "format", "raw"],
                         cwd=DATA, capture_output=True, text=True, check=True)
    assert res.stdout == dump_text(name, "btf.txt")


@pytest.mark.parametrize("name", OBJECTS)
def test_committed_line_dump_is_fresh(name: str) -> None:
    objdump = _tool("llvm-objdump-19")
    res = subprocess.run([objdump, "-d", "-l", "--no-show-raw-insn", f"{name}.bpf.o"],
                         cwd=DATA, capture_output=True, text=True, check=True)
    assert res.stdout == dump_text(name, "lines.txt")


@pytest.mark.parametrize("name", OBJECTS)
def test_committed_object_is_fresh(name: str, tmp_path: Path) -> None:
    """The object is what the Makefile's clang-19 command builds from the source today."""
    clang = _tool("clang-19")
    out = tmp_path / f"{name}.bpf.o"
    arch = f"/usr/include/{platform.machine()}-linux-gnu"
    res = subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I", ".",
                          "-I", arch, f"-fdebug-prefix-map={DATA}=.", "-c", f"{name}.c",
                          "-o", str(out)], cwd=DATA, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"clang-19 cannot build here (libbpf-dev headers?): {res.stderr[-300:]}")
    assert out.read_bytes() == (DATA / f"{name}.bpf.o").read_bytes(), \
        f"rebuild with `make -C tests/btf/data` and commit {name}.bpf.o"
