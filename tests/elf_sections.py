"""A minimal reader for the ELF64 little-endian BPF relocatable objects in tests/testdata.

Only what the disassembler tests need: PROGBITS section contents, function symbols, and
which byte offsets of each section carry a relocation (instructions that libbpf rewrites).
The real ELF loader lives elsewhere; this one trusts its (committed, clang-built) input and
merely rejects files that are not BPF relocatable objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BpfElf", "Function", "progbits_sections", "read_bpf_elf"]

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym
_REL = struct.Struct("<QQ")  # Elf64_Rel
_ET_REL, _EM_BPF = 1, 247
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_REL = 1, 2, 9
_STT_FUNC = 2


@dataclass(frozen=True)
class Function:
    """A function symbol: the section it lives in, its byte offset and its size in bytes."""

    section: str
    offset: int
    size: int


@dataclass(frozen=True)
class BpfElf:
    sections: dict[str, bytes]  # PROGBITS sections by name
    functions: dict[str, Function]  # STT_FUNC symbols by name
    relocated: dict[str, frozenset[int]]  # section name -> byte offsets with a relocation


def _cstr(table: bytes, offset: int) -> str:
    return table[offset : table.index(b"\0", offset)].decode()


def read_bpf_elf(path: Path | str) -> BpfElf:
    data = Path(path).read_bytes()
    ident, e_type, machine, *_, shoff, _fl, _eh, _ph, _phn, shentsize, shnum, shstrndx = (
        _EHDR.unpack_from(data)
    )
    is_bpf_rel = (e_type, machine) == (_ET_REL, _EM_BPF)
    if ident[:4] != b"\x7fELF" or ident[4:6] != b"\x02\x01" or not is_bpf_rel:
        raise ValueError(f"{path}: not an ELF64 little-endian BPF relocatable object")
    headers = [_SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    strtab = data[headers[shstrndx][4] : headers[shstrndx][4] + headers[shstrndx][5]]
    names = [_cstr(strtab, h[0]) for h in headers]
    sections: dict[str, bytes] = {}
    functions: dict[str, Function] = {}
    relocated: dict[str, frozenset[int]] = {}
    for name, header in zip(names, headers, strict=True):
        sh_type, offset, size, link, info = header[1], header[4], header[5], header[6], header[7]
        body = data[offset : offset + size]
        if sh_type == _SHT_PROGBITS:
            sections[name] = body
        elif sh_type == _SHT_REL:
            relocated[names[info]] = frozenset(r[0] for r in _REL.iter_unpack(body))
        elif sh_type == _SHT_SYMTAB:
            sym_names = data[headers[link][4] : headers[link][4] + headers[link][5]]
            for st_name, st_info, _o, shndx, value, sym_size in _SYM.iter_unpack(body):
                if st_info & 0xF == _STT_FUNC and 0 < shndx < shnum:
                    fn = Function(names[shndx], value, sym_size)
                    functions[_cstr(sym_names, st_name)] = fn
    return BpfElf(sections, functions, relocated)


def progbits_sections(path: Path | str) -> dict[str, bytes]:
    """``{section_name: contents}`` for every PROGBITS section (code, maps, license...)."""
    return read_bpf_elf(path).sections
