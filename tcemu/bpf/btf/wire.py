"""On-disk records of the ``.BTF`` and ``.BTF.ext`` ELF sections, and their framing.

Mirrors ``include/uapi/linux/btf.h`` (``struct btf_header``, ``struct btf_type`` and the
per-kind trailing records ``btf_array``, ``btf_member``, ``btf_enum``, ``btf_enum64``,
``btf_param``, ``btf_var``, ``btf_var_secinfo``, ``btf_decl_tag``), the ``.BTF.ext`` layout
described in ``Documentation/bpf/btf.rst`` (``struct btf_ext_header``, the per-ELF-section
``btf_ext_info_sec`` blocks) and the records it carries from ``include/uapi/linux/bpf.h``
(``bpf_func_info``, ``bpf_line_info``, ``bpf_core_relo``).  The canonical documentation
lives in the Linux kernel repository; this module only adds the framing checks (every
record inside its blob, kinds known, strings terminated) and raises :class:`BtfError`.

Everything is little-endian: that is the byte order of the BPF target (``-target bpf`` on
an x86/arm64 host, i.e. ``bpfel``).  A blob whose magic reads byte-swapped was written for
``bpfeb`` and is rejected with a typed error rather than misread.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar, Generic, TypeVar

from tcemu.bpf.btf._error import BtfError

__all__ = [
    "BTF_MAGIC",
    "BTF_MAX_NAME_OFFSET",
    "BTF_MAX_TYPE",
    "BTF_MAX_VLEN",
    "BTF_VERSION",
    "TRAILER",
    "BpfCoreRelo",
    "BpfCoreReloKind",
    "BpfFuncInfo",
    "BpfLineInfo",
    "BtfArrayRecord",
    "BtfDeclTagRecord",
    "BtfEnum64Record",
    "BtfEnumRecord",
    "BtfExtHeader",
    "BtfFuncLinkage",
    "BtfHeader",
    "BtfIntEncoding",
    "BtfKind",
    "BtfMemberRecord",
    "BtfParamRecord",
    "BtfTypeHeader",
    "BtfVarLinkage",
    "BtfVarRecord",
    "BtfVarSecinfoRecord",
    "InfoSection",
    "Record",
    "StringTable",
    "TypeRecord",
    "check_magic",
    "check_preamble",
    "check_zero_tail",
    "iter_info_sections",
    "iter_types",
    "section_bounds",
]

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
BTF_MAX_TYPE = 0x000FFFFF  # largest type id
BTF_MAX_NAME_OFFSET = 0x00FFFFFF  # largest string offset
BTF_MAX_VLEN = 0xFFFF  # most members / enumerators / params


class BtfKind(IntEnum):
    """``BTF_KIND_*`` (include/uapi/linux/btf.h)."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class BtfIntEncoding(IntFlag):
    """``BTF_INT_*`` encoding bits of a ``BTF_KIND_INT`` (include/uapi/linux/btf.h)."""

    NONE = 0
    SIGNED = 1 << 0
    CHAR = 1 << 1
    BOOL = 1 << 2


class BtfFuncLinkage(IntEnum):
    """``enum btf_func_linkage`` (include/uapi/linux/btf.h)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class BtfVarLinkage(IntEnum):
    """``BTF_VAR_*`` (include/uapi/linux/btf.h)."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


class BpfCoreReloKind(IntEnum):
    """``enum bpf_core_relo_kind`` (include/uapi/linux/bpf.h)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


# Bytes that follow ``struct btf_type`` for each kind: (fixed part, size of one of the vlen
# records).  The total is ``fixed + vlen * per_item``.
TRAILER: dict[BtfKind, tuple[int, int]] = {
    BtfKind.INT: (4, 0),
    BtfKind.PTR: (0, 0),
    BtfKind.ARRAY: (12, 0),
    BtfKind.STRUCT: (0, 12),
    BtfKind.UNION: (0, 12),
    BtfKind.ENUM: (0, 8),
    BtfKind.FWD: (0, 0),
    BtfKind.TYPEDEF: (0, 0),
    BtfKind.VOLATILE: (0, 0),
    BtfKind.CONST: (0, 0),
    BtfKind.RESTRICT: (0, 0),
    BtfKind.FUNC: (0, 0),
    BtfKind.FUNC_PROTO: (0, 8),
    BtfKind.VAR: (4, 0),
    BtfKind.DATASEC: (0, 12),
    BtfKind.FLOAT: (0, 0),
    BtfKind.DECL_TAG: (4, 0),
    BtfKind.TYPE_TAG: (0, 0),
    BtfKind.ENUM64: (0, 12),
}

_R = TypeVar("_R", bound="Record")


class Record:
    """A fixed-size little-endian record; subclasses are dataclasses in field order."""

    __slots__ = ()
    FORMAT: ClassVar[struct.Struct]

    @classmethod
    def unpack_from(cls: type[_R], data: bytes, offset: int) -> _R:
        if offset < 0 or offset + cls.FORMAT.size > len(data):
            raise BtfError(f"truncated {cls.__name__} ({cls.FORMAT.size} bytes needed, "
                           f"{max(0, len(data) - offset)} left)", offset=offset)
        return cls(*cls.FORMAT.unpack_from(data, offset))


@dataclass(frozen=True, slots=True)
class BtfHeader(Record):
    """``struct btf_header``; section offsets are relative to the end of the header."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<HBBIIIII")
    magic: int
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int


@dataclass(frozen=True, slots=True)
class BtfTypeHeader(Record):
    """``struct btf_type``: the 12 bytes every type starts with."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<III")
    name_off: int
    info: int
    size_or_type: int  # the uapi union: ``size`` for sized kinds, ``type`` for the others

    @property
    def kind(self) -> int:
        return (self.info >> 24) & 0x1F

    @property
    def vlen(self) -> int:
        return self.info & 0xFFFF

    @property
    def kflag(self) -> bool:
        return bool(self.info >> 31)

    @property
    def unused_bits(self) -> int:
        """Bits 16-23 and 29-30 of ``info``, reserved (the kernel requires them zero)."""
        return self.info & 0x60FF0000


@dataclass(frozen=True, slots=True)
class BtfArrayRecord(Record):
    """``struct btf_array``."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<III")
    type: int
    index_type: int
    nelems: int


@dataclass(frozen=True, slots=True)
class BtfMemberRecord(Record):
    """``struct btf_member``; ``offset`` packs the bitfield size when the kind_flag is set."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<III")
    name_off: int
    type: int
    offset: int


@dataclass(frozen=True, slots=True)
class BtfEnumRecord(Record):
    """``struct btf_enum``; ``val`` is read unsigned, its signedness is the kind_flag's."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<II")
    name_off: int
    val: int


@dataclass(frozen=True, slots=True)
class BtfEnum64Record(Record):
    """``struct btf_enum64``."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<III")
    name_off: int
    val_lo32: int
    val_hi32: int


@dataclass(frozen=True, slots=True)
class BtfParamRecord(Record):
    """``struct btf_param``."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<II")
    name_off: int
    type: int


@dataclass(frozen=True, slots=True)
class BtfVarRecord(Record):
    """``struct btf_var``."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<I")
    linkage: int


@dataclass(frozen=True, slots=True)
class BtfVarSecinfoRecord(Record):
    """``struct btf_var_secinfo``."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<III")
    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class BtfDeclTagRecord(Record):
    """``struct btf_decl_tag``."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<i")
    component_idx: int


@dataclass(frozen=True, slots=True)
class BtfExtHeader:
    """``struct btf_ext_header``; the core_relo fields exist only when ``hdr_len >= 32``."""

    BASE: ClassVar[struct.Struct] = struct.Struct("<HBBIIIII")
    CORE: ClassVar[struct.Struct] = struct.Struct("<II")
    magic: int
    version: int
    flags: int
    hdr_len: int
    func_info_off: int
    func_info_len: int
    line_info_off: int
    line_info_len: int
    core_relo_off: int = 0
    core_relo_len: int = 0

    @classmethod
    def unpack_from(cls, data: bytes) -> BtfExtHeader:
        if len(data) < cls.BASE.size:
            raise BtfError(f"truncated btf_ext_header ({len(data)} bytes, "
                           f"{cls.BASE.size} needed)", offset=0, verb="parse btf.ext")
        base = cls.BASE.unpack_from(data, 0)
        hdr_len = base[3]
        if hdr_len < cls.BASE.size + cls.CORE.size or len(data) < cls.BASE.size + cls.CORE.size:
            return cls(*base)
        return cls(*base, *cls.CORE.unpack_from(data, cls.BASE.size))


@dataclass(frozen=True, slots=True)
class BpfFuncInfo(Record):
    """``struct bpf_func_info``; in an object file ``insn_off`` counts bytes."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<II")
    insn_off: int
    type_id: int


@dataclass(frozen=True, slots=True)
class BpfLineInfo(Record):
    """``struct bpf_line_info``; in an object file ``insn_off`` counts bytes."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<IIII")
    insn_off: int
    file_name_off: int
    line_off: int
    line_col: int

    @property
    def line_num(self) -> int:
        return self.line_col >> 10  # BPF_LINE_INFO_LINE_NUM

    @property
    def col(self) -> int:
        return self.line_col & 0x3FF  # BPF_LINE_INFO_LINE_COL


@dataclass(frozen=True, slots=True)
class BpfCoreRelo(Record):
    """``struct bpf_core_relo``; in an object file ``insn_off`` counts bytes."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<IIII")
    insn_off: int
    type_id: int
    access_str_off: int
    kind: int


def check_magic(magic: int, verb: str) -> None:
    """Reject anything but the little-endian BTF magic, naming big-endian input as such."""
    if magic == BTF_MAGIC:
        return
    if magic == int.from_bytes(BTF_MAGIC.to_bytes(2, "little"), "big"):
        raise BtfError("big-endian btf (bpfeb) is not supported; compile with -target bpf "
                       "or bpfel", offset=0, verb=verb)
    raise BtfError(f"bad magic {magic:#06x} (want {BTF_MAGIC:#06x})", offset=0, verb=verb)


def check_preamble(magic: int, version: int, flags: int, verb: str) -> None:
    """The first four bytes of both headers: magic, version 1, no flags."""
    check_magic(magic, verb)
    if version != BTF_VERSION:
        raise BtfError(f"unsupported version {version}", offset=2, verb=verb)
    if flags:
        raise BtfError(f"unsupported flags {flags:#x}", offset=3, verb=verb)


def check_zero_tail(data: bytes, known: int, hdr_len: int, verb: str) -> None:
    """A header longer than we know is fine only if the extra bytes are zero (as the kernel)."""
    if any(data[known:hdr_len]):
        raise BtfError(f"header has {hdr_len - known} unknown non-zero bytes", offset=known,
                       verb=verb)


def section_bounds(data: bytes, base: int, off: int, length: int, what: str, field: int,
                   verb: str = "parse btf") -> tuple[int, int]:
    """``[start, end)`` of a subsection given relative to the header's end (``base``);
    ``field`` is the header offset of the field to blame."""
    start = base + off
    if start + length > len(data):
        raise BtfError(f"{what} section [{start}, {start + length}) runs past the end of the "
                       f"blob ({len(data)} bytes)", offset=field, verb=verb)
    return start, start + length


class StringTable:
    """The string section: NUL-terminated strings addressed by byte offset."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes, *, base_offset: int = 0) -> None:
        if not data or data[0] != 0 or data[-1] != 0:
            raise BtfError("string section must start and end with a NUL byte",
                           offset=base_offset)
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, offset: int, *, what: str = "name", type_id: int | None = None,
            strict: bool = True, verb: str = "parse btf") -> str:
        """The string at ``offset``; ``strict`` requires UTF-8, else bad bytes are replaced."""
        if not 0 <= offset < len(self._data):
            raise BtfError(f"{what} offset {offset} is outside the string section "
                           f"({len(self._data)} bytes)", type_id=type_id, verb=verb)
        raw = self._data[offset : self._data.index(0, offset)]
        try:
            return raw.decode("utf-8", "strict" if strict else "replace")
        except UnicodeDecodeError:
            raise BtfError(f"{what} at string offset {offset} is not valid utf-8",
                           type_id=type_id, verb=verb) from None


@dataclass(frozen=True, slots=True)
class TypeRecord:
    """One ``struct btf_type`` located in the type section: its header and trailer offset."""

    type_id: int
    offset: int  # of the btf_type header, within the .BTF blob
    header: BtfTypeHeader
    kind: BtfKind

    @property
    def trailer(self) -> int:
        """Offset of the per-kind data that follows the header."""
        return self.offset + BtfTypeHeader.FORMAT.size


def iter_types(data: bytes, start: int, end: int) -> Iterator[TypeRecord]:
    """Walk the type section ``data[start:end]``, yielding ids 1, 2, ... in order.

    Checks only framing: the header and the per-kind trailer fit before ``end``, and the
    kind is one of the known ones.  Meaning (references, names) is ``parse``'s business.
    """
    offset, type_id = start, 1
    while offset < end:
        if type_id > BTF_MAX_TYPE:
            raise BtfError(f"more than {BTF_MAX_TYPE} types", offset=offset)
        if offset + BtfTypeHeader.FORMAT.size > end:
            raise BtfError("truncated btf_type header", type_id=type_id, offset=offset)
        header = BtfTypeHeader.unpack_from(data, offset)
        if not BtfKind.UNKN < header.kind <= BtfKind.ENUM64:
            raise BtfError(f"unknown kind {header.kind}", type_id=type_id, offset=offset)
        kind = BtfKind(header.kind)
        fixed, per_item = TRAILER[kind]
        size = BtfTypeHeader.FORMAT.size + fixed + header.vlen * per_item
        if offset + size > end:
            raise BtfError(f"{kind.name.lower()} with vlen {header.vlen} runs past the end "
                           "of the type section", type_id=type_id, offset=offset)
        yield TypeRecord(type_id, offset, header, kind)
        offset += size
        type_id += 1


@dataclass(frozen=True, slots=True)
class InfoSection(Generic[_R]):
    """One ``btf_ext_info_sec`` block: the ELF section it describes and its records."""

    offset: int  # of the btf_ext_info_sec header, within the .BTF.ext blob
    sec_name_off: int
    records: tuple[tuple[int, _R], ...]  # (offset in the blob, record)


_SEC = struct.Struct("<II")  # btf_ext_info_sec: sec_name_off, num_info


def iter_info_sections(data: bytes, start: int, length: int, record: type[_R],
                       what: str) -> Iterator[InfoSection[_R]]:
    """Walk one ``.BTF.ext`` subsection: a u32 record size, then ``btf_ext_info_sec`` blocks.

    The record size in the blob may exceed ``record``'s (a newer producer appended fields;
    the extra bytes are skipped) but never be smaller, and it must keep records 4-aligned.
    """
    if length == 0:
        return
    end = start + length
    if length < 4:
        raise BtfError(f"{what} subsection too short for its record size", offset=start,
                       verb="parse btf.ext")
    rec_size = int.from_bytes(data[start : start + 4], "little")
    if rec_size < record.FORMAT.size or rec_size % 4:
        raise BtfError(f"{what} record size {rec_size} is invalid (at least "
                       f"{record.FORMAT.size}, a multiple of 4)", offset=start,
                       verb="parse btf.ext")
    offset = start + 4
    while offset < end:
        yield _info_section(data, offset, end, rec_size, record, what)
        offset += _SEC.size + _SEC.unpack_from(data, offset)[1] * rec_size


def _info_section(data: bytes, offset: int, end: int, rec_size: int, record: type[_R],
                  what: str) -> InfoSection[_R]:
    if offset + _SEC.size > end:
        raise BtfError(f"truncated {what} btf_ext_info_sec header", offset=offset,
                       verb="parse btf.ext")
    sec_name_off, num_info = _SEC.unpack_from(data, offset)
    if num_info == 0:
        raise BtfError(f"{what} block has no records", offset=offset, verb="parse btf.ext")
    first = offset + _SEC.size
    if first + num_info * rec_size > end:
        raise BtfError(f"{what} block of {num_info} records runs past the end of its "
                       "subsection", offset=offset, verb="parse btf.ext")
    offsets = range(first, first + num_info * rec_size, rec_size)
    records = tuple((at, record.unpack_from(data, at)) for at in offsets)
    return InfoSection(offset, sec_name_off, records)
