"""``.BTF.ext``: func_info, line_info (and ``line_for``) and CO-RE relocations.

Ground truth comes from the object itself (function symbols, the instruction a CO-RE
relocation patches) and from the C sources (the text of every line_info record).
"""

from __future__ import annotations

import itertools

import pytest

from tcemu.bpf.btf import BtfKind, BtfSpec, FuncInfo
from tcemu.bpf.btf.types import Func
from tcemu.bpf.btf.wire import BpfCoreReloKind
from tcemu.bpf.isa import decode_bytes
from tests.btf.objects import DATA, OBJECTS, btf_sections, spec
from tests.elf_sections import read_bpf_elf


@pytest.fixture(scope="module")
def funcs() -> BtfSpec:
    return spec("funcs")


def test_func_info_per_section(funcs: BtfSpec) -> None:
    def ids(name: str) -> int:
        return funcs.find_one(name, BtfKind.FUNC)

    assert dict(funcs.func_info) == {
        ".text": (FuncInfo(0, ids("global_helper"), "global_helper"),
                  FuncInfo(7, ids("mix"), "mix"),
                  FuncInfo(18, ids("classify"), "classify")),
        "tc/ingress": (FuncInfo(0, ids("ingress"), "ingress"),),
        "tc/egress": (FuncInfo(0, ids("egress"), "egress"),),
    }


@pytest.mark.parametrize("name", OBJECTS)
def test_func_info_matches_the_symbol_table(name: str) -> None:
    """Each record's slot is its function symbol's byte offset / 8, in the same section."""
    btf, elf = spec(name), read_bpf_elf(DATA / f"{name}.bpf.o")
    from_btf = {(sec, f.name, f.insn) for sec, infos in btf.func_info.items() for f in infos}
    from_elf = {(fn.section, sym, fn.offset // 8) for sym, fn in elf.functions.items()}
    assert from_btf == from_elf
    for infos in btf.func_info.values():
        for info in infos:
            func = btf[info.type_id]
            assert isinstance(func, Func)
            assert func.name == info.name


@pytest.mark.parametrize("name", OBJECTS)
def test_line_text_is_the_source_line(name: str) -> None:
    btf = spec(name)
    assert btf.line_info
    for infos in btf.line_info.values():
        assert [li.insn for li in infos] == sorted({li.insn for li in infos})
        for li in infos:
            source = (DATA / li.file_name).read_text().splitlines()
            assert source[li.line_num - 1] == li.line, li
            assert 0 <= li.col <= len(li.line) + 1


def test_function_entries_name_the_declaration_line(funcs: BtfSpec) -> None:
    entries = {sec: [f.insn for f in infos] for sec, infos in funcs.func_info.items()}
    for sec, slots in entries.items():
        for slot in slots:
            line = funcs.line_for(sec, slot)
            assert line is not None
            assert line.insn == slot
            assert line.col == 0
    mix = funcs.line_for(".text", 7)
    assert mix is not None
    assert mix.line == "static __noinline __u32 mix(__u32 x,"


def test_line_for_covers_every_slot_with_the_last_record(funcs: BtfSpec) -> None:
    infos = funcs.line_info[".text"]
    for a, b in itertools.pairwise(infos):
        for slot in range(a.insn, b.insn):
            assert funcs.line_for(".text", slot) == a
    last = funcs.line_for(".text", 10_000)
    assert last == infos[-1]


def test_multi_line_statement_gets_both_lines(funcs: BtfSpec) -> None:
    first, second = funcs.line_for(".text", 2), funcs.line_for(".text", 5)
    assert first is not None
    assert second is not None
    assert (first.line_num, first.line) == (20, "\treturn mix(skb->len,")
    assert (second.line_num, second.line) == (21, "\t\t   skb->mark) & 0xff;")
    cond = [li.line_num for li in funcs.line_info["tc/ingress"]]
    assert 40 in cond
    assert 42 in cond


def test_line_for_outside_any_record(funcs: BtfSpec) -> None:
    assert funcs.line_for(".text", -1) is None
    assert funcs.line_for("no/such/section", 0) is None


def test_func_for(funcs: BtfSpec) -> None:
    assert [getattr(funcs.func_for(".text", i), "name", None) for i in (0, 6, 7, 17, 18, 99)] \
        == ["global_helper", "global_helper", "mix", "mix", "classify", "classify"]
    assert funcs.func_for(".text", -1) is None
    assert funcs.func_for("tc", 0) is None


def test_core_relo_points_at_the_patched_load() -> None:
    btf = spec("types")
    (relo,) = btf.core_relos["tc"]
    assert btf[relo.type_id].name == "sk_buff_view"
    assert relo.access == "0:1"  # element 0, member 1 (mark)
    assert relo.kind == BpfCoreReloKind.FIELD_BYTE_OFFSET
    code = read_bpf_elf(DATA / "types.bpf.o").sections["tc"]
    insn = decode_bytes(code)[relo.insn]
    assert insn.off == 4  # offsetof(struct sk_buff_view, mark), which libbpf may rewrite


def test_no_ext_means_no_info() -> None:
    btf = BtfSpec.from_bytes(btf_sections("funcs")[0])
    assert not btf.func_info
    assert not btf.line_info
    assert not btf.core_relos
    assert btf.line_for(".text", 0) is None
    assert "0 code sections" in repr(btf)
