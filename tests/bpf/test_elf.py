"""The ELF loader: program discovery, linking, relocations, and typed errors on bad input."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from tcemu.bpf import isa
from tcemu.bpf.elf import load_collection_spec
from tcemu.bpf.sections import section_def
from tcemu.bpf.uapi import BpfProgType
from tcemu.errors import ElfError, LoadError, TcemuError

DATA = Path(__file__).parent.parent / "testdata" / "bpf"
OBJECTS = sorted(DATA.glob("*.bpf.o"))


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.name)
def test_every_project_object_loads(path: Path) -> None:
    spec = load_collection_spec(path)
    assert spec.license == "GPL"
    assert spec.programs
    for prog in spec.programs.values():
        assert prog.prog_type is BpfProgType.SCHED_CLS
        assert len(prog.origins) == len(prog.insns)
        isa.validate(prog.insns)


def test_subprograms_are_linked_after_the_program() -> None:
    spec = load_collection_spec(DATA / "calls.v3.bpf.o")
    prog = spec.programs["calls"]
    calls = [(i, insn) for i, insn in enumerate(prog.insns)
             if insn.code == isa.JMP | isa.CALL and insn.src == isa.PSEUDO_CALL]
    assert calls
    starts = set(prog.subprog_names)
    for i, insn in calls:
        assert i + insn.imm + 1 in starts
    assert {s for s, _ in prog.origins} == {"tc", ".text"}


def test_map_references_become_map_indexes() -> None:
    spec = load_collection_spec(DATA / "calls.v3.bpf.o")
    names = list(spec.maps)
    prog = spec.programs["calls"]
    pseudo = [insn for insn in prog.insns if insn.code == 0x18 and insn.src]
    kinds = {insn.src for insn in pseudo}
    assert kinds <= {isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE}
    referenced = {names[insn.imm] for insn in pseudo}
    assert "flows" in referenced
    assert ".bss" in referenced
    assert spec.maps[".bss"].initial == bytes(spec.maps[".bss"].value_size)


@pytest.mark.parametrize(("name", "prog_type", "attach"), [
    ("tc", BpfProgType.SCHED_CLS, ""),
    ("tc/ingress", BpfProgType.SCHED_CLS, "tcx/ingress"),
    ("tcx/egress", BpfProgType.SCHED_CLS, "tcx/egress"),
    ("classifier", BpfProgType.SCHED_CLS, ""),
    ("classifier/drop", BpfProgType.SCHED_CLS, ""),
    ("action", BpfProgType.SCHED_ACT, ""),
    ("socket", BpfProgType.SOCKET_FILTER, ""),
    ("ingress", BpfProgType.SCHED_CLS, ""),      # iproute2: any name, type from tc
    ("1/0", BpfProgType.SCHED_CLS, ""),          # iproute2 __section_tail(1, 0)
])
def test_section_table(name: str, prog_type: BpfProgType, attach: str) -> None:
    sdef = section_def(name)
    assert (sdef.prog_type, sdef.attach) == (prog_type, attach)


def test_unsupported_section_names_the_symbol() -> None:
    with pytest.raises(LoadError, match="section 'xdp' symbol 'prog': xdp programs"):
        section_def("xdp", symbol="prog")


def _good() -> bytes:
    return (DATA / "calls.v3.bpf.o").read_bytes()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda b: b[:40], "shorter than an ELF header"),
    (lambda b: b"\x7fELX" + b[4:], "bad magic"),
    (lambda b: b[:4] + b"\x01" + b[5:], "not a 64-bit"),
    (lambda b: b[:5] + b"\x02" + b[6:], "not little-endian"),
    (lambda b: b[:18] + struct.pack("<H", 62) + b[20:], "not EM_BPF"),
    (lambda b: b[:16] + struct.pack("<H", 2) + b[18:], "not a relocatable object"),
    (lambda b: b[:40] + struct.pack("<Q", len(b)) + b[48:], "section header table"),
    (lambda b: b[: len(b) // 2], "past the end|out of bounds"),
])
def test_corrupt_objects_raise_elf_errors(mutate: object, message: str) -> None:
    assert callable(mutate)
    with pytest.raises(ElfError, match=message):
        load_collection_spec(mutate(_good()))


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="read object"):
        load_collection_spec(tmp_path / "absent.o")


@pytest.mark.parametrize("path", [DATA / "calls.v3.bpf.o", DATA / "atomics.v4.bpf.o"],
                         ids=lambda p: p.name)
def test_one_byte_mutations_only_raise_typed_errors(path: Path) -> None:
    good = path.read_bytes()
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        data = bytearray(good)
        pos = rng.randrange(len(data))
        data[pos] = rng.randrange(256)
        try:
            load_collection_spec(bytes(data))
        except TcemuError:
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
    assert outcomes["error"] > 0
    assert sum(outcomes.values()) == 400


OBJECTS_DIR = DATA.parent / "objects"


def _patch_legacy_map(field: int, value: int) -> bytes:
    """tail_iproute2.bpf.o with one field of its first struct bpf_elf_map replaced."""
    from tcemu.bpf.elf import _Elf

    data = bytearray((OBJECTS_DIR / "tail_iproute2.bpf.o").read_bytes())
    elf = _Elf(bytes(data))
    sec = elf.by_name["maps"]
    first = min(s.value for s in elf.symbols if s.shndx == sec.index and s.type != 3)
    struct.pack_into("<I", data, sec.offset + first + 4 * field, value)
    return bytes(data)


def test_unknown_map_type_is_a_load_error() -> None:
    from tcemu.bpf import load_object

    with pytest.raises(LoadError, match="unknown map type 99"):
        load_object(_patch_legacy_map(0, 99))


def test_oversized_map_is_a_load_error() -> None:
    from tcemu.bpf import load_object

    with pytest.raises(LoadError, match=r"E2BIG|ENOMEM"):
        load_object(_patch_legacy_map(3, 0xFFFF_FFFF))


def test_btf_maps_without_btf_are_a_load_error() -> None:
    from tcemu.bpf.elf import _EHDR, _SHDR, _Elf

    data = bytearray((OBJECTS_DIR / "flow_counter.bpf.o").read_bytes())
    elf = _Elf(bytes(data))
    shoff = _EHDR.unpack_from(data)[6]
    btf, lic = elf.by_name[".BTF"], elf.by_name["license"]
    lic_name = _SHDR.unpack_from(data, shoff + lic.index * _SHDR.size)[0]
    struct.pack_into("<I", data, shoff + btf.index * _SHDR.size, lic_name)  # rename .BTF
    with pytest.raises(LoadError, match=r"BTF-defined maps need a \.BTF section"):
        load_collection_spec(bytes(data))


def test_iproute2_object_fills_its_prog_array() -> None:
    from tcemu.bpf import load_object

    coll = load_object(OBJECTS_DIR / "tail_iproute2.bpf.o")
    jmp = coll.maps["jmp_tc"]
    assert len(list(jmp.items())) >= 1
