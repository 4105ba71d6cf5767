"""Decode ``.BTF.ext``: per-ELF-section func_info, line_info and CO-RE relocations.

Follows the "BTF.ext section" part of ``Documentation/bpf/btf.rst``: a ``struct
btf_ext_header``, then up to three subsections, each a record size followed by one
``btf_ext_info_sec`` block per ELF section; the records are ``struct bpf_func_info``,
``struct bpf_line_info`` and ``struct bpf_core_relo`` of ``include/uapi/linux/bpf.h``.
Names (section, file, line text, access string) and type ids refer to the ``.BTF`` section
parsed first (:func:`tcemu.bpf.btf.parse.parse_btf`).

What is checked: the header (magic, version, flags, ``hdr_len`` with any unknown tail
zero, the core_relo fields only when ``hdr_len`` covers them), every subsection inside the
blob, record sizes at least the uapi size and 4-aligned (larger records from a newer
producer are read and their tail skipped), no empty blocks, every string offset inside the
string section, ``insn_off`` a whole instruction, a func_info naming a FUNC, a core_relo
naming an existing type.  A core_relo kind newer than :class:`BpfCoreReloKind` stays a
plain int rather than failing: relocating is the loader's business, not the parser's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tcemu.bpf.btf._error import BtfError
from tcemu.bpf.btf.parse import ParsedBtf
from tcemu.bpf.btf.types import CoreRelo, Func, FuncInfo, LineInfo
from tcemu.bpf.btf.wire import (
    BpfCoreRelo,
    BpfCoreReloKind,
    BpfFuncInfo,
    BpfLineInfo,
    BtfExtHeader,
    Record,
    check_preamble,
    check_zero_tail,
    iter_info_sections,
    section_bounds,
)

__all__ = ["BtfExt", "parse_btf_ext"]

_EXT = "parse btf.ext"
_EXT_HEADER_BASE = 24  # magic .. line_info_len; the core_relo fields make it 32
_R = TypeVar("_R", bound=Record)
_T = TypeVar("_T", FuncInfo, LineInfo, CoreRelo)


@dataclass(frozen=True, slots=True)
class BtfExt:
    """A decoded ``.BTF.ext`` section, keyed by the ELF section the records describe."""

    func_info: Mapping[str, tuple[FuncInfo, ...]]
    line_info: Mapping[str, tuple[LineInfo, ...]]
    core_relos: Mapping[str, tuple[CoreRelo, ...]]


def parse_btf_ext(data: bytes, btf: ParsedBtf) -> BtfExt:
    """Decode ``.BTF.ext``; its names and types refer to the already parsed ``btf``.

    Instruction offsets are stored in bytes from the start of the ELF section; the model
    holds slot indices (``insn_off / 8``), as libbpf hands them to the kernel.
    """
    data = bytes(data)
    header = BtfExtHeader.unpack_from(data)
    check_preamble(header.magic, header.version, header.flags, _EXT)
    if not _EXT_HEADER_BASE <= header.hdr_len <= len(data):
        raise BtfError(f"hdr_len {header.hdr_len} is outside {_EXT_HEADER_BASE}..{len(data)}",
                       offset=4, verb=_EXT)
    known = min(header.hdr_len, _EXT_HEADER_BASE + 8)
    check_zero_tail(data, known, header.hdr_len, _EXT)
    base = header.hdr_len
    return BtfExt(
        _subsection(data, base, 8, header.func_info_off, header.func_info_len, btf,
                    BpfFuncInfo, "func_info", _func_info),
        _subsection(data, base, 16, header.line_info_off, header.line_info_len, btf,
                    BpfLineInfo, "line_info", _line_info),
        _subsection(data, base, 24, header.core_relo_off, header.core_relo_len, btf,
                    BpfCoreRelo, "core_relo", _core_relo),
    )


def _insn(insn_off: int, at: int) -> int:
    if insn_off % 8:
        raise BtfError(f"insn_off {insn_off} is not a multiple of 8 (one instruction)",
                       offset=at, verb=_EXT)
    return insn_off // 8


def _sec_name(btf: ParsedBtf, offset: int, at: int) -> str:
    try:
        return btf.strings.get(offset, what="section name", verb=_EXT)
    except BtfError as err:
        raise BtfError(err.reason, offset=at, verb=_EXT) from err


def _subsection(data: bytes, base: int, field: int, off: int, length: int, btf: ParsedBtf,
                record: type[_R], what: str,
                convert: Callable[[_R, int, ParsedBtf], _T]) -> dict[str, tuple[_T, ...]]:
    """Decode one subsection into ``{ELF section name: records}``; ``field`` is the header
    offset of its ``*_off`` field, blamed when the subsection lies outside the blob."""
    start, _ = section_bounds(data, base, off, length, what, field, _EXT)
    out: dict[str, tuple[_T, ...]] = {}
    for sec in iter_info_sections(data, start, length, record, what):
        items = tuple(convert(rec, at, btf) for at, rec in sec.records)
        name = _sec_name(btf, sec.sec_name_off, sec.offset)
        out[name] = out.get(name, ()) + items  # two blocks for one section: concatenate
    return out


def _func_info(rec: BpfFuncInfo, at: int, btf: ParsedBtf) -> FuncInfo:
    func = btf.types[rec.type_id] if rec.type_id < len(btf.types) else None
    if not isinstance(func, Func):
        raise BtfError(f"func_info type {rec.type_id} is not a func", offset=at, verb=_EXT)
    return FuncInfo(_insn(rec.insn_off, at), rec.type_id, func.name)


def _line_info(rec: BpfLineInfo, at: int, btf: ParsedBtf) -> LineInfo:
    try:
        # Source text is not ours to police: undecodable bytes are replaced, not refused.
        file_name = btf.strings.get(rec.file_name_off, what="file name", strict=False,
                                    verb=_EXT)
        line = btf.strings.get(rec.line_off, what="line text", strict=False, verb=_EXT)
    except BtfError as err:
        raise BtfError(err.reason, offset=at, verb=_EXT) from err
    return LineInfo(_insn(rec.insn_off, at), file_name, line, rec.line_num, rec.col)


def _core_relo(rec: BpfCoreRelo, at: int, btf: ParsedBtf) -> CoreRelo:
    if rec.type_id >= len(btf.types):
        raise BtfError(f"core_relo type {rec.type_id} is out of range", offset=at, verb=_EXT)
    try:
        access = btf.strings.get(rec.access_str_off, what="access string", verb=_EXT)
    except BtfError as err:
        raise BtfError(err.reason, offset=at, verb=_EXT) from err
    known = rec.kind <= max(BpfCoreReloKind)
    kind: BpfCoreReloKind | int = BpfCoreReloKind(rec.kind) if known else rec.kind
    return CoreRelo(_insn(rec.insn_off, at), rec.type_id, access, kind)
