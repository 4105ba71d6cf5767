"""Read a clang-compiled eBPF object into a :class:`CollectionSpec` (pure, deterministic).

``load_collection_spec(path_or_bytes)`` parses the ELF64 little-endian relocatable object
(``EM_BPF``), finds every program (each ``STT_FUNC`` symbol of an executable section other
than ``.text``), links the ``.text`` subprograms it calls after it (as libbpf does, fixing
``R_BPF_64_32`` call relocations), and turns ``R_BPF_64_64`` map references into
``BPF_PSEUDO_MAP_IDX`` / ``BPF_PSEUDO_MAP_IDX_VALUE`` LD_IMM64 instructions that index
:attr:`CollectionSpec.maps`.  Maps come from the legacy ``maps`` section (``struct
bpf_map_def`` or iproute2's ``struct bpf_elf_map``), from BTF-defined ``.maps``, and from the
global-data sections ``.data``, ``.rodata``, ``.bss``, ``.data.*``, ``.rodata.*``.
Nothing here touches a VM: :mod:`tcemu.bpf.collection` instantiates the spec.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tcemu.bpf import isa
from tcemu.bpf.btf import BtfError, BtfSpec
from tcemu.bpf.isa import Insn
from tcemu.bpf.sections import TAIL_CALL_SECTION, section_def
from tcemu.bpf.uapi import BpfMapType, BpfProgType
from tcemu.errors import ElfError, LoadError

__all__ = ["CollectionSpec", "ObjMap", "ProgramSpec", "load_collection_spec"]

EM_BPF = 247
ET_REL = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHF_EXECINSTR = 0x4
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_NODYLD32, R_BPF_64_32 = 1, 2, 3, 4, 10
BPF_F_RDONLY_PROG = 0x80
_DATA_PREFIXES = (".data", ".rodata", ".bss")
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    data: bytes


@dataclass(frozen=True)
class Symbol:
    name: str
    info: int
    shndx: int
    value: int
    size: int

    @property
    def type(self) -> int:
        return self.info & 0xF


@dataclass(frozen=True)
class ObjMap:
    """A map as the object declares it (not yet created)."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    id: int = 0               # iproute2 bpf_elf_map.id (tail-call sections refer to it)
    pinning: int = 0          # iproute2 PIN_* / libbpf LIBBPF_PIN_BY_NAME
    inner: ObjMap | None = None
    inner_id: int = 0
    inner_idx: int = 0
    initial: bytes | None = None      # global data sections: the section's bytes
    section: str = ""
    # BTF ".values = { [i] = &x }": (index, symbol) of a program or an inner map
    values: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    section: str
    prog_type: BpfProgType
    attach: str
    insns: tuple[Insn, ...]
    license: str
    # (section, index in that section) of every slot, for BTF line info after linking
    origins: tuple[tuple[str, int], ...] = ()
    subprog_names: dict[int, str] = field(default_factory=dict)
    tail_call: tuple[int, int] | None = None   # iproute2 "ID/IDX" section


@dataclass(frozen=True)
class CollectionSpec:
    programs: dict[str, ProgramSpec]
    maps: dict[str, ObjMap]
    license: str
    btf: BtfSpec | None = None

    def map_list(self) -> list[ObjMap]:
        return list(self.maps.values())


class _Elf:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sections = self._sections()
        self.by_name = {s.name: s for s in self.sections}
        self.symbols = self._symbols()

    def fail(self, message: str, section: Section | None = None, offset: int | None = None,
             ) -> ElfError:
        return ElfError(message, section=section.name if section else None, offset=offset)

    def _sections(self) -> list[Section]:
        data = self.data
        if len(data) < _EHDR.size:
            raise ElfError(f"file is {len(data)} bytes, shorter than an ELF header", offset=0)
        (ident, e_type, machine, _version, _entry, _phoff, shoff, _flags, _ehsize, _phes, _phn,
         shentsize, shnum, shstrndx) = _EHDR.unpack_from(data)
        if ident[:4] != b"\x7fELF":
            raise ElfError("not an ELF file (bad magic)", offset=0)
        if ident[4] != 2:
            raise ElfError("not a 64-bit ELF object", offset=4)
        if ident[5] != 1:
            raise ElfError("not little-endian (big-endian BPF objects are not supported)",
                           offset=5)
        if machine != EM_BPF:
            raise ElfError(f"machine is {machine}, not EM_BPF ({EM_BPF})", offset=18)
        if e_type != ET_REL:
            raise ElfError(f"ELF type {e_type} is not a relocatable object", offset=16)
        if shentsize != _SHDR.size or shoff + shnum * _SHDR.size > len(data) or shnum == 0:
            raise ElfError("section header table is out of bounds", offset=shoff)
        raw = [_SHDR.unpack_from(data, shoff + i * _SHDR.size) for i in range(shnum)]
        if shstrndx >= shnum:
            raise ElfError(f"section name table index {shstrndx} is out of range", offset=62)
        names = self._blob(raw[shstrndx], ".shstrtab")
        out = []
        for i, (name, typ, flags, _addr, off, size, link, info, _align, _es) in enumerate(raw):
            sec_name = self._cstr(names, name, ".shstrtab")
            content = b"" if typ in (SHT_NOBITS, 0) else self._blob(raw[i], sec_name)
            out.append(Section(i, sec_name, typ, flags, off, size, link, info, content))
        return out

    def _blob(self, hdr: tuple[int, ...], name: str) -> bytes:
        off, size = hdr[4], hdr[5]
        if off + size > len(self.data):
            raise ElfError(f"contents (bytes {off}..{off + size}) are past the end of the file",
                           section=name, offset=off)
        return self.data[off:off + size]

    def _cstr(self, table: bytes, offset: int, what: str) -> str:
        end = table.find(b"\0", offset)
        if offset >= len(table) or end < 0:
            raise ElfError(f"string offset {offset} is outside the string table", section=what)
        return table[offset:end].decode("utf-8", "replace")

    def _symbols(self) -> list[Symbol]:
        symtabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if not symtabs:
            raise ElfError("no symbol table (.symtab)")
        symtab = symtabs[0]
        if symtab.link >= len(self.sections):
            raise self.fail("string table link is out of range", symtab)
        strtab = self.sections[symtab.link].data
        out = []
        for off in range(0, len(symtab.data) - len(symtab.data) % _SYM.size, _SYM.size):
            name, info, _other, shndx, value, size = _SYM.unpack_from(symtab.data, off)
            out.append(Symbol(self._cstr(strtab, name, ".strtab"), info, shndx, value, size))
        return out

    def relocations(self, section: Section) -> Iterator[tuple[int, int, Symbol]]:
        """(offset in section, relocation type, symbol) of every REL entry for ``section``."""
        for rel in self.sections:
            if rel.type != SHT_REL or rel.info != section.index:
                continue
            for off in range(0, len(rel.data) - len(rel.data) % _REL.size, _REL.size):
                r_offset, r_info = _REL.unpack_from(rel.data, off)
                sym_idx, rtype = r_info >> 32, r_info & 0xFFFF_FFFF
                if sym_idx >= len(self.symbols):
                    raise self.fail(f"relocation refers to symbol {sym_idx}, out of range",
                                    rel, rel.offset + off)
                if r_offset + 8 > section.size:
                    raise self.fail(f"relocation at byte {r_offset} is outside the section",
                                    rel, rel.offset + off)
                yield r_offset, rtype, self.symbols[sym_idx]

    def section_name(self, index: int) -> str:
        return self.sections[index].name if index < len(self.sections) else f"#{index}"


def _license(elf: _Elf) -> str:
    sec = elf.by_name.get("license")
    return sec.data.split(b"\0", 1)[0].decode("ascii", "replace") if sec else ""


def _is_data_section(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _DATA_PREFIXES)


def _legacy_maps(elf: _Elf) -> list[ObjMap]:
    sec = elf.by_name.get("maps")
    if sec is None:
        return []
    syms = sorted((s for s in elf.symbols if s.shndx == sec.index and s.type != STT_SECTION),
                  key=lambda s: s.value)
    out = []
    for sym in syms:
        size = sym.size or 20
        if size < 20 or sym.value + size > len(sec.data):
            raise LoadError(f"load section 'maps' symbol '{sym.name}': map definition of {size} "
                            "bytes does not fit (need struct bpf_map_def, 20 bytes)")
        raw = sec.data[sym.value:sym.value + size] + bytes(16)
        mtype, key, value, entries, flags, ident, pinning, inner_id, inner_idx = \
            struct.unpack_from("<9I", raw)
        if size < 36:
            ident = pinning = inner_id = inner_idx = 0
        out.append(ObjMap(sym.name, mtype, key, value, entries, flags, ident, pinning,
                          inner_id=inner_id, inner_idx=inner_idx, section="maps"))
    return out


def _btf_maps(elf: _Elf, btf: BtfSpec | None) -> list[ObjMap]:
    sec = elf.by_name.get(".maps")
    if sec is None:
        return []
    if btf is None:
        raise LoadError("load section '.maps': BTF-defined maps need a .BTF section "
                        "(compile with clang -g)")
    syms = sorted((s for s in elf.symbols if s.shndx == sec.index and s.type == STT_OBJECT),
                  key=lambda s: s.value)
    inits: dict[str, list[tuple[int, str]]] = {}
    for r_off, _rtype, target in elf.relocations(sec):
        owner = next((s for s in syms if s.value <= r_off < s.value + s.size), None)
        if owner is not None:
            inits.setdefault(owner.name, []).append((r_off - owner.value, target.name))
    out = []
    for sym in syms:
        try:
            d = btf.map_def(sym.name)
        except BtfError as err:
            raise LoadError(f"load section '.maps' symbol '{sym.name}': {err}") from err
        inner = None
        if d.inner is not None:
            i = d.inner
            inner = ObjMap(f"{sym.name}.inner", i.type, i.key_size, i.value_size,
                           i.max_entries, i.map_flags, section=".maps")
        start = d.values_offset or 0
        if any(off < start for off, _ in inits.get(sym.name, ())):
            raise LoadError(f"load section '.maps' symbol '{sym.name}': relocation outside "
                            "the 'values' member")
        values = tuple(sorted(((off - start) // 8, name) for off, name in inits.get(sym.name, ())))
        out.append(ObjMap(sym.name, d.type, d.key_size, d.value_size, d.max_entries,
                          d.map_flags, pinning=d.pinning, inner=inner, section=".maps",
                          values=values))
    return out


def _data_maps(elf: _Elf) -> list[ObjMap]:
    out = []
    for sec in elf.sections:
        if not _is_data_section(sec.name) or sec.type not in (SHT_PROGBITS, SHT_NOBITS):
            continue
        initial = bytes(sec.size) if sec.type == SHT_NOBITS else sec.data
        flags = BPF_F_RDONLY_PROG if sec.name.startswith(".rodata") else 0
        out.append(ObjMap(sec.name, BpfMapType.ARRAY, 4, max(sec.size, 1), 1, flags,
                          initial=initial.ljust(max(sec.size, 1), b"\0"), section=sec.name))
    return out


def _functions(elf: _Elf, sec: Section) -> list[Symbol]:
    funcs = sorted((s for s in elf.symbols if s.shndx == sec.index and s.type == STT_FUNC),
                   key=lambda s: s.value)
    for f in funcs:
        if f.value % 8 or f.value + f.size > sec.size:
            raise elf.fail(f"function '{f.name}' lies outside its section", sec, f.value)
    return funcs


class _Linker:
    """Builds one program: its own instructions, then every subprogram it reaches."""

    def __init__(self, elf: _Elf, maps: dict[str, int], data_maps: dict[str, int]) -> None:
        self.elf = elf
        self.maps = maps            # map symbol name -> index
        self.data_maps = data_maps  # data section name -> index

    def link(self, sec: Section, func: Symbol) -> tuple[list[Insn], list[tuple[str, int]],
                                                        dict[int, str]]:
        insns: list[Insn] = []
        origins: list[tuple[str, int]] = []
        placed: dict[tuple[int, int], int] = {}   # (section index, byte offset) -> slot
        names: dict[int, str] = {}
        pending: list[tuple[int, int, int]] = []  # (call slot, section, target byte offset)

        def place(s: Section, f: Symbol) -> None:
            # bpf_object__reloc_code: the calls of a function in instruction order; a
            # subprogram not placed yet is appended and relocated at once (depth first).
            start = len(insns)
            placed[(s.index, f.value)] = start
            names[start] = f.name
            insns.extend(isa.decode_bytes(s.data[f.value:f.value + f.size]))
            origins.extend((s.name, f.value // 8 + i) for i in range(f.size // 8))
            for slot, target_sec, target_off in sorted(self._relocate(s, f, insns, start)):
                pending.append((slot, target_sec, target_off))
                if (target_sec, target_off) not in placed:
                    place(*self._subprog(target_sec, target_off))

        place(sec, func)
        for slot, target_sec, target_off in pending:
            target = placed[(target_sec, target_off)]
            old = insns[slot]
            if old.code == isa.JMP | isa.CALL:
                insns[slot] = Insn(old.code, old.dst, isa.PSEUDO_CALL, old.off, target - slot - 1)
            else:  # LD_IMM64 of a function address (BPF_PSEUDO_FUNC)
                insns[slot] = Insn(old.code, old.dst, isa.PSEUDO_FUNC, old.off, target - slot - 1)
        return insns, origins, names

    def _subprog(self, sec_index: int, offset: int) -> tuple[Section, Symbol]:
        sec = self.elf.sections[sec_index]
        for f in _functions(self.elf, sec):
            if f.value == offset:
                return sec, f
        raise LoadError(f"load section '{sec.name}': call to offset {offset}, which is not the "
                        "start of a function")

    def _relocate(self, sec: Section, func: Symbol, insns: list[Insn], start: int,
                  ) -> list[tuple[int, int, int]]:
        calls: list[tuple[int, int, int]] = []
        relocated: set[int] = set()
        for r_off, rtype, sym in self.elf.relocations(sec):
            if not func.value <= r_off < func.value + func.size:
                continue
            slot = start + (r_off - func.value) // 8
            relocated.add(slot)
            insn = insns[slot]
            where = f"load section '{sec.name}' symbol '{func.name}': insn {slot - start}"
            if rtype == R_BPF_64_32 and insn.code == isa.JMP | isa.CALL:
                if not 0 < sym.shndx < len(self.elf.sections):
                    raise LoadError(f"{where}: call relocation against '{sym.name}', which is "
                                    "in no section")
                off = sym.value if sym.type == STT_FUNC else (insn.imm + 1) * 8
                calls.append((slot, sym.shndx, off))
            elif (rtype == R_BPF_64_64 and insn.code == isa.LD | isa.IMM | isa.DW
                  and slot + 1 < len(insns)):
                calls.extend(self._ldimm64(insns, slot, sym, where))
            elif rtype in (R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_NODYLD32):
                continue  # data/debug relocations (.BTF, .maps initialisers)
            else:
                raise LoadError(f"{where}: unsupported relocation type {rtype} against "
                                f"'{sym.name}'")
        # Calls the compiler resolved itself (a static function in the same section).
        for i in range(start, len(insns)):
            insn = insns[i]
            if (i not in relocated and insn.code == isa.JMP | isa.CALL
                    and insn.src == isa.PSEUDO_CALL):
                calls.append((i, sec.index, func.value + (i - start + insn.imm + 1) * 8))
        return calls

    def _ldimm64(self, insns: list[Insn], slot: int, sym: Symbol, where: str,
                 ) -> list[tuple[int, int, int]]:
        insn, nxt = insns[slot], insns[slot + 1]
        sec_name = self.elf.section_name(sym.shndx)
        if insn.src == isa.PSEUDO_FUNC or sym.type == STT_FUNC or (
                sym.shndx < len(self.elf.sections)
                and self.elf.sections[sym.shndx].flags & SHF_EXECINSTR):
            off = sym.value if sym.type == STT_FUNC else insn.imm
            return [(slot, sym.shndx, off)]
        if sec_name in ("maps", ".maps"):
            if sym.name not in self.maps:
                raise LoadError(f"{where}: relocation against unknown map '{sym.name}'")
            insns[slot] = Insn(insn.code, insn.dst, isa.PSEUDO_MAP_IDX, 0, self.maps[sym.name])
            return []
        if sec_name in self.data_maps:
            offset = (sym.value if sym.type != STT_SECTION else 0) + insn.imm
            insns[slot] = Insn(insn.code, insn.dst, isa.PSEUDO_MAP_IDX_VALUE, 0,
                               self.data_maps[sec_name])
            insns[slot + 1] = Insn(nxt.code, nxt.dst, nxt.src, nxt.off, offset)
            return []
        raise LoadError(f"{where}: relocation against '{sym.name}' in section '{sec_name}', "
                        "which is neither a map nor global data (.kconfig/.ksyms are not "
                        "supported)")


def _load_btf(elf: _Elf) -> BtfSpec | None:
    btf = elf.by_name.get(".BTF")
    if btf is None:
        return None
    ext = elf.by_name.get(".BTF.ext")
    return BtfSpec.from_bytes(btf.data, ext.data if ext else None)


def load_collection_spec(source: str | Path | bytes) -> CollectionSpec:
    """Parse an object file (a path or its bytes) without creating anything."""
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as err:
            raise LoadError(f"read object {source}: {err.strerror or err}") from err
    elf = _Elf(data)
    btf = _load_btf(elf)
    license = _license(elf)
    objmaps = _legacy_maps(elf) + _btf_maps(elf, btf) + _data_maps(elf)
    maps = {m.name: m for m in objmaps}
    index = {m.name: i for i, m in enumerate(objmaps)}
    data_index = {m.section: i for i, m in enumerate(objmaps) if m.initial is not None}
    linker = _Linker(elf, index, data_index)
    programs: dict[str, ProgramSpec] = {}
    for sec in elf.sections:
        if not sec.flags & SHF_EXECINSTR or sec.name == ".text" or sec.type != SHT_PROGBITS:
            continue
        tail = TAIL_CALL_SECTION.match(sec.name)
        if tail and max(int(tail.group(1)), int(tail.group(2))) > 0xFFFF_FFFF:
            raise LoadError(f"load section '{sec.name}': tail-call id or slot does not fit u32")
        for func in _functions(elf, sec):
            sdef = section_def(sec.name, symbol=func.name)
            insns, origins, names = linker.link(sec, func)
            if func.name in programs:
                raise LoadError(f"load section '{sec.name}': duplicate program '{func.name}'")
            programs[func.name] = ProgramSpec(
                func.name, sec.name, sdef.prog_type, sdef.attach, tuple(insns), license,
                tuple(origins), names,
                (int(tail.group(1)), int(tail.group(2))) if tail else None)
    return CollectionSpec(programs, maps, license, btf)
