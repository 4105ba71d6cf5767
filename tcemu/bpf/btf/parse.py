"""Decode ``.BTF`` bytes into the model of :mod:`tcemu.bpf.btf.types`.

Follows the encoding rules of ``Documentation/bpf/btf.rst`` ("Type Encoding"), and takes
its idea of "well formed" from the encoding requirements listed there per kind, which the
kernel enforces when a loader hands it BTF (``kernel/bpf/btf.c``).  Every violation raises
:class:`BtfError` naming the type id and/or the byte offset in the blob; no other exception
escapes for any input bytes (tests/btf/test_errors.py fuzzes that).

What is checked, in order:

1. the header: magic (big-endian named as such), version 1, flags 0, ``hdr_len`` inside the
   blob with any bytes past the known header zero, both sections inside the blob, not
   overlapping, ``type_off`` 4-aligned, the string section NUL-delimited at both ends;
2. each type record (framing in :func:`wire.iter_types`): reserved ``info`` bits zero,
   ``kind_flag`` only where a kind defines it, ``vlen`` 0 for kinds without a list, names
   present or absent as the kind requires and inside the string section, and the per-kind
   rules (INT sizes/bits/encoding, ENUM/FLOAT sizes, FUNC/VAR linkage, ...);
3. the references: every id in range and of a kind that may be referenced from there
   (a FUNC's prototype is a FUNC_PROTO, a DATASEC lists VARs or FUNCs, decl tags point at
   a struct/union/func/var/typedef with a valid component index, array indices are ints),
   no reference cycle that does not pass through a struct or union member, and every
   member inside its struct or union.

KERNEL-DIFF: DATASEC sizes and variable offsets are not checked against each other: clang
leaves them 0 for global variables and the loader fills them in from the ELF symbol table.
KERNEL-DIFF: names are not checked to be C identifiers (the kernel's btf_name_valid_*);
they only have to be valid UTF-8.

``.BTF.ext`` is decoded by :mod:`tcemu.bpf.btf.ext`, on top of the result of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tcemu.bpf.btf._error import BtfError
from tcemu.bpf.btf.types import (
    Array,
    BtfType,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Member,
    Param,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
    referenced_ids,
    resolve,
    size_of,
)
from tcemu.bpf.btf.wire import (
    BTF_MAX_NAME_OFFSET,
    BtfArrayRecord,
    BtfDeclTagRecord,
    BtfEnum64Record,
    BtfEnumRecord,
    BtfFuncLinkage,
    BtfHeader,
    BtfIntEncoding,
    BtfKind,
    BtfMemberRecord,
    BtfParamRecord,
    BtfVarLinkage,
    BtfVarRecord,
    BtfVarSecinfoRecord,
    StringTable,
    TypeRecord,
    check_preamble,
    check_zero_tail,
    iter_types,
    section_bounds,
)

__all__ = ["ParsedBtf", "parse_btf"]

_KFLAG_KINDS = {BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.FWD, BtfKind.ENUM64,
                BtfKind.DECL_TAG, BtfKind.TYPE_TAG}
_NAMED = {BtfKind.INT, BtfKind.FWD, BtfKind.TYPEDEF, BtfKind.FUNC, BtfKind.VAR,
          BtfKind.DATASEC, BtfKind.FLOAT, BtfKind.DECL_TAG, BtfKind.TYPE_TAG}
_ANONYMOUS = {BtfKind.PTR, BtfKind.ARRAY, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT,
              BtfKind.FUNC_PROTO}
_INT_SIZES = {1, 2, 4, 8, 16}
_ENUM_SIZES = {1, 2, 4, 8}
_FLOAT_SIZES = {2, 4, 8, 12, 16}
_INT_RESERVED = 0xF000FF00  # bits of the INT trailer the uapi leaves unused


@dataclass(frozen=True, slots=True)
class ParsedBtf:
    """A decoded ``.BTF`` section: ``types[id]`` (``types[0]`` is Void) and its strings."""

    types: tuple[BtfType, ...]
    strings: StringTable


# --- .BTF header -----------------------------------------------------------------------


def parse_btf(data: bytes) -> ParsedBtf:
    """Decode and validate a whole ``.BTF`` section."""
    data = bytes(data)
    header = _read_header(data)
    str_start = header.hdr_len + header.str_off
    strings = StringTable(data[str_start : str_start + header.str_len], base_offset=str_start)
    types: list[BtfType] = [Void()]
    type_start = header.hdr_len + header.type_off
    for record in iter_types(data, type_start, type_start + header.type_len):
        types.append(_decode(record, data, strings))
    _check_references(types)
    return ParsedBtf(tuple(types), strings)


def _read_header(data: bytes) -> BtfHeader:
    if len(data) < BtfHeader.FORMAT.size:
        raise BtfError(f"truncated btf_header ({len(data)} bytes, {BtfHeader.FORMAT.size} "
                       "needed)", offset=0)
    header = BtfHeader.unpack_from(data, 0)
    check_preamble(header.magic, header.version, header.flags, "parse btf")
    if not BtfHeader.FORMAT.size <= header.hdr_len <= len(data):
        raise BtfError(f"hdr_len {header.hdr_len} is outside {BtfHeader.FORMAT.size}.."
                       f"{len(data)}", offset=4)
    check_zero_tail(data, BtfHeader.FORMAT.size, header.hdr_len, "parse btf")
    if header.type_off % 4:
        raise BtfError(f"type_off {header.type_off} is not 4-byte aligned", offset=8)
    if header.str_len > BTF_MAX_NAME_OFFSET + 1:
        raise BtfError(f"string section of {header.str_len} bytes is too large", offset=20)
    types = section_bounds(data, header.hdr_len, header.type_off, header.type_len, "type", 8)
    strs = section_bounds(data, header.hdr_len, header.str_off, header.str_len, "string", 16)
    if types[0] < strs[1] and strs[0] < types[1]:
        raise BtfError("type and string sections overlap", offset=8)
    return header


# --- type records ----------------------------------------------------------------------


def _decode(record: TypeRecord, data: bytes, strings: StringTable) -> BtfType:
    header, kind, tid = record.header, record.kind, record.type_id
    if header.unused_bits:
        raise BtfError(f"reserved info bits set ({header.info:#010x})", type_id=tid,
                       offset=record.offset)
    if header.kflag and kind not in _KFLAG_KINDS:
        raise BtfError(f"kind_flag set on {kind.name.lower()}", type_id=tid,
                       offset=record.offset)
    if header.vlen and kind not in _VLEN_KINDS:
        raise BtfError(f"vlen {header.vlen} on {kind.name.lower()}, which has no list",
                       type_id=tid, offset=record.offset)
    name = strings.get(header.name_off, type_id=tid)
    if kind in _NAMED and not name:
        raise BtfError(f"{kind.name.lower()} has no name", type_id=tid, offset=record.offset)
    if kind in _ANONYMOUS and name:
        raise BtfError(f"{kind.name.lower()} must be anonymous, is named {name!r}",
                       type_id=tid, offset=record.offset)
    return _DECODERS[kind](_Ctx(record, data, strings, name))


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What a per-kind decoder needs: the record, the blob, the strings and the name."""

    record: TypeRecord
    data: bytes
    strings: StringTable
    name: str

    @property
    def ref(self) -> int:
        return self.record.header.size_or_type

    def fail(self, message: str) -> BtfError:
        return BtfError(message, type_id=self.record.type_id, offset=self.record.offset)

    def name_at(self, offset: int, what: str) -> str:
        return self.strings.get(offset, what=what, type_id=self.record.type_id)

    def items(self, item_size: int) -> range:
        """Offsets of the vlen trailing records (framing already checked they fit)."""
        start = self.record.trailer
        return range(start, start + self.record.header.vlen * item_size, item_size)


def _int(c: _Ctx) -> Int:
    raw = int.from_bytes(c.data[c.record.trailer : c.record.trailer + 4], "little")
    size, encoding = c.ref, (raw >> 24) & 0x0F
    bits, offset = raw & 0xFF, (raw >> 16) & 0xFF
    if raw & _INT_RESERVED:
        raise c.fail(f"reserved bits set in int data {raw:#010x}")
    if size not in _INT_SIZES:
        raise c.fail(f"int size {size} is not 1, 2, 4, 8 or 16")
    if bits == 0 or bits > 128 or offset + bits > size * 8:
        raise c.fail(f"int of {bits} bits at bit {offset} does not fit in {size} bytes")
    if encoding not in (0, BtfIntEncoding.SIGNED, BtfIntEncoding.CHAR, BtfIntEncoding.BOOL):
        raise c.fail(f"int encoding {encoding:#x} combines flags")
    return Int(c.name, size, BtfIntEncoding(encoding), bits, offset)


def _array(c: _Ctx) -> Array:
    rec = BtfArrayRecord.unpack_from(c.data, c.record.trailer)
    if c.ref:
        raise c.fail(f"array has non-zero size/type field {c.ref}")
    return Array(c.name, rec.type, rec.index_type, rec.nelems)


def _members(c: _Ctx) -> tuple[Member, ...]:
    members = []
    for at in c.items(BtfMemberRecord.FORMAT.size):
        rec = BtfMemberRecord.unpack_from(c.data, at)
        name = c.name_at(rec.name_off, "member name")
        if c.record.header.kflag:
            members.append(Member(name, rec.type, rec.offset & 0xFFFFFF, rec.offset >> 24))
        else:
            members.append(Member(name, rec.type, rec.offset))
    return tuple(members)


def _struct(c: _Ctx) -> Struct:
    return Struct(c.name, c.ref, _members(c))


def _union(c: _Ctx) -> Union:
    return Union(c.name, c.ref, _members(c))


def _enum_size(c: _Ctx) -> int:
    if c.ref not in _ENUM_SIZES:
        raise c.fail(f"enum size {c.ref} is not 1, 2, 4 or 8")
    return c.ref


def _enum(c: _Ctx) -> Enum:
    signed, values = c.record.header.kflag, []
    for at in c.items(BtfEnumRecord.FORMAT.size):
        rec = BtfEnumRecord.unpack_from(c.data, at)
        value = rec.val - (1 << 32) if signed and rec.val >> 31 else rec.val
        values.append(EnumValue(c.name_at(rec.name_off, "enumerator name"), value))
    return Enum(c.name, _enum_size(c), tuple(values), signed)


def _enum64(c: _Ctx) -> Enum64:
    signed, values = c.record.header.kflag, []
    for at in c.items(BtfEnum64Record.FORMAT.size):
        rec = BtfEnum64Record.unpack_from(c.data, at)
        value = rec.val_hi32 << 32 | rec.val_lo32
        if signed and value >> 63:
            value -= 1 << 64
        values.append(EnumValue(c.name_at(rec.name_off, "enumerator name"), value))
    return Enum64(c.name, _enum_size(c), tuple(values), signed)


def _fwd(c: _Ctx) -> Fwd:
    return Fwd(c.name, c.record.header.kflag)


def _func(c: _Ctx) -> Func:
    linkage = c.record.header.vlen  # FUNC keeps its linkage in vlen
    if linkage > max(BtfFuncLinkage):
        raise c.fail(f"unknown func linkage {linkage}")
    return Func(c.name, c.ref, BtfFuncLinkage(linkage))


def _func_proto(c: _Ctx) -> FuncProto:
    recs = [BtfParamRecord.unpack_from(c.data, at) for at in c.items(BtfParamRecord.FORMAT.size)]
    variadic = bool(recs) and recs[-1] == BtfParamRecord(0, 0)
    if variadic:
        recs.pop()
    params = tuple(Param(c.name_at(r.name_off, "parameter name"), r.type) for r in recs)
    if any(p.type == 0 for p in params):
        raise c.fail("a void parameter other than a trailing '...'")
    return FuncProto(c.name, c.ref, params, variadic)


def _var(c: _Ctx) -> Var:
    linkage = BtfVarRecord.unpack_from(c.data, c.record.trailer).linkage
    if linkage > max(BtfVarLinkage):
        raise c.fail(f"unknown var linkage {linkage}")
    return Var(c.name, c.ref, BtfVarLinkage(linkage))


def _datasec(c: _Ctx) -> Datasec:
    recs = [BtfVarSecinfoRecord.unpack_from(c.data, at)
            for at in c.items(BtfVarSecinfoRecord.FORMAT.size)]
    return Datasec(c.name, c.ref, tuple(VarSecinfo(r.type, r.offset, r.size) for r in recs))


def _float(c: _Ctx) -> Float:
    if c.ref not in _FLOAT_SIZES:
        raise c.fail(f"float size {c.ref} is not 2, 4, 8, 12 or 16")
    return Float(c.name, c.ref)


def _decl_tag(c: _Ctx) -> DeclTag:
    idx = BtfDeclTagRecord.unpack_from(c.data, c.record.trailer).component_idx
    if idx < -1:
        raise c.fail(f"decl tag component_idx {idx} is below -1")
    return DeclTag(c.name, c.ref, idx, c.record.header.kflag)


_DECODERS: dict[BtfKind, Callable[[_Ctx], BtfType]] = {
    BtfKind.INT: _int,
    BtfKind.PTR: lambda c: Ptr(c.name, c.ref),
    BtfKind.ARRAY: _array,
    BtfKind.STRUCT: _struct,
    BtfKind.UNION: _union,
    BtfKind.ENUM: _enum,
    BtfKind.FWD: _fwd,
    BtfKind.TYPEDEF: lambda c: Typedef(c.name, c.ref),
    BtfKind.VOLATILE: lambda c: Volatile(c.name, c.ref),
    BtfKind.CONST: lambda c: Const(c.name, c.ref),
    BtfKind.RESTRICT: lambda c: Restrict(c.name, c.ref),
    BtfKind.FUNC: _func,
    BtfKind.FUNC_PROTO: _func_proto,
    BtfKind.VAR: _var,
    BtfKind.DATASEC: _datasec,
    BtfKind.FLOAT: _float,
    BtfKind.DECL_TAG: _decl_tag,
    BtfKind.TYPE_TAG: lambda c: TypeTag(c.name, c.ref, c.record.header.kflag),
    BtfKind.ENUM64: _enum64,
}
# Kinds whose vlen counts trailing records, plus FUNC, which stores its linkage there.
_VLEN_KINDS = {BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FUNC,
               BtfKind.FUNC_PROTO, BtfKind.DATASEC}


# --- references ------------------------------------------------------------------------

# Kinds that are not types of a value: nothing but a DATASEC or a DECL_TAG may point at them.
_NOT_A_TYPE = (Func, Var, Datasec, DeclTag)


def _check_references(types: Sequence[BtfType]) -> None:
    for tid, t in enumerate(types):
        for ref in referenced_ids(t):
            if not 0 <= ref < len(types):
                raise BtfError(f"refers to type {ref}, but the last id is {len(types) - 1}",
                               type_id=tid)
    for tid, t in enumerate(types):
        _check_targets(types, tid, t)
    _check_acyclic(types)
    for tid, t in enumerate(types):
        _check_late(types, tid, t)


def _check_targets(types: Sequence[BtfType], tid: int, t: BtfType) -> None:
    """Per-kind rules on what a reference may point at (see the module docstring)."""
    def bad(ref: int, role: str) -> BtfError:
        target = "void" if ref == 0 else types[ref].kind.name.lower()
        return BtfError(f"{role} is type {ref} ({target})", type_id=tid)

    if isinstance(t, (Ptr, Typedef, Volatile, Const, Restrict, TypeTag)):
        if isinstance(types[t.type], _NOT_A_TYPE):
            raise bad(t.type, f"{t.kind.name.lower()} target")
    elif isinstance(t, FuncProto):
        for ref in (t.ret, *(p.type for p in t.params)):
            if isinstance(types[ref], _NOT_A_TYPE):
                raise bad(ref, "return or parameter type")
    elif isinstance(t, (Array, Struct, Union, Var)):
        for ref, role in _object_refs(t):
            if ref == 0 or isinstance(types[ref], (*_NOT_A_TYPE, FuncProto)):
                raise bad(ref, role)
    else:
        _check_special_targets(types, tid, t, bad)


def _object_refs(t: Array | Struct | Union | Var) -> list[tuple[int, str]]:
    if isinstance(t, Array):
        return [(t.elem, "array element type"), (t.index, "array index type")]
    if isinstance(t, Var):
        return [(t.type, "variable type")]
    return [(m.type, f"member {m.name or '(anon)'!r} type") for m in t.members]


def _check_special_targets(types: Sequence[BtfType], tid: int, t: BtfType,
                           bad: Callable[[int, str], BtfError]) -> None:
    if isinstance(t, Func) and not isinstance(types[t.proto], FuncProto):
        raise bad(t.proto, "func prototype")
    if isinstance(t, Datasec):
        for v in t.vars:
            if not isinstance(types[v.type], (Var, Func)):
                raise bad(v.type, "datasec entry")
    if isinstance(t, DeclTag):
        _check_decl_tag(types, tid, t, bad)


def _check_decl_tag(types: Sequence[BtfType], tid: int, t: DeclTag,
                    bad: Callable[[int, str], BtfError]) -> None:
    target = types[t.type]
    if isinstance(target, (Struct, Union)):
        count = len(target.members)
    elif isinstance(target, Func):
        proto = types[target.proto]
        count = len(proto.params) if isinstance(proto, FuncProto) else 0
    elif isinstance(target, (Var, Typedef)):
        count = 0
    else:
        raise bad(t.type, "decl tag target")
    if t.component_idx >= count:
        raise BtfError(f"decl tag component_idx {t.component_idx} is out of range for type "
                       f"{t.type} ({count} components)", type_id=tid)


def _strong_refs(t: BtfType) -> tuple[int, ...]:
    """References that must not form a cycle: all but struct/union members."""
    return () if isinstance(t, (Struct, Union)) else referenced_ids(t)


def _check_acyclic(types: Sequence[BtfType]) -> None:
    """A reference cycle must pass through a struct or union member (iterative DFS)."""
    state = [0] * len(types)  # 0 unseen, 1 on the current path, 2 done
    for root in range(len(types)):
        if state[root]:
            continue
        stack = [(root, iter(_strong_refs(types[root])))]
        state[root] = 1
        while stack:
            node, refs = stack[-1]
            ref = next(refs, None)
            if ref is None:
                state[node] = 2
                stack.pop()
            elif state[ref] == 1:
                raise BtfError(f"reference cycle through type {ref} that no struct or union "
                               "breaks", type_id=node)
            elif state[ref] == 0:
                state[ref] = 1
                stack.append((ref, iter(_strong_refs(types[ref]))))


def _check_late(types: Sequence[BtfType], tid: int, t: BtfType) -> None:
    """Checks that need the whole (acyclic) table: array indices, member placement."""
    if isinstance(t, Array) and not isinstance(types[resolve(types, t.index)], Int):
        raise BtfError(f"array index type {t.index} is not an int", type_id=tid)
    if isinstance(t, (Struct, Union)):
        for m in t.members:
            bits = m.bitfield_size or _member_size(types, tid, m) * 8
            if m.bit_offset + bits > t.size * 8:
                raise BtfError(f"member {m.name or '(anon)'!r} (bits {m.bit_offset}.."
                               f"{m.bit_offset + bits}) exceeds the {t.size}-byte "
                               f"{t.kind.name.lower()}", type_id=tid)


def _member_size(types: Sequence[BtfType], tid: int, m: Member) -> int:
    try:
        return size_of(types, m.type)
    except BtfError as err:
        raise BtfError(f"member {m.name or '(anon)'!r}: {err.reason}", type_id=tid) from err
