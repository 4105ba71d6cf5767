"""The typed model of BTF: one frozen dataclass per ``BTF_KIND_*``, plus ``.BTF.ext`` records.

Mirrors the kinds of ``include/uapi/linux/btf.h`` as ``Documentation/bpf/btf.rst`` describes
them, decoded: names are strings, bitfield offsets are split, enum values carry their sign,
a variadic prototype is a flag instead of a trailing ``{0, 0}`` parameter.  Types refer to
each other by id (an index into ``BtfSpec.types``; id 0 is :class:`Void`), never by object,
so the model stays a flat, hashable table and cycles (``struct node { struct node *next; }``)
need no special care.

``resolve`` and ``size_of`` are the two walks most callers need; they work on any
``Sequence[BtfType]`` indexed by id, and ``BtfSpec`` exposes them as methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tcemu.bpf.btf._error import BtfError
from tcemu.bpf.btf.wire import (
    BpfCoreReloKind,
    BtfFuncLinkage,
    BtfIntEncoding,
    BtfKind,
    BtfVarLinkage,
)

__all__ = [
    "MAX_RESOLVE_DEPTH",
    "PTR_SIZE",
    "Array",
    "BtfType",
    "Const",
    "CoreRelo",
    "Datasec",
    "DeclTag",
    "Enum",
    "Enum64",
    "EnumValue",
    "Float",
    "Func",
    "FuncInfo",
    "FuncProto",
    "Fwd",
    "Int",
    "LineInfo",
    "Member",
    "Param",
    "Ptr",
    "Restrict",
    "Struct",
    "TypeTag",
    "Typedef",
    "Union",
    "Var",
    "VarSecinfo",
    "Void",
    "Volatile",
    "referenced_ids",
    "resolve",
    "size_of",
]

PTR_SIZE = 8  # the BPF target is 64-bit
# How many typedef/qualifier/array hops a walk may take before the chain counts as broken
# (the kernel's MAX_RESOLVE_DEPTH in kernel/bpf/btf.c is the same 32).
MAX_RESOLVE_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Void:
    """Type id 0: ``void``, the pointee of ``void *`` and the return of ``void f()``."""

    kind: ClassVar[BtfKind] = BtfKind.UNKN
    name: str = ""


@dataclass(frozen=True, slots=True)
class Int:
    """``BTF_KIND_INT``: ``bits`` wide at bit ``offset`` inside ``size`` bytes."""

    kind: ClassVar[BtfKind] = BtfKind.INT
    name: str
    size: int
    encoding: BtfIntEncoding
    bits: int
    offset: int = 0

    @property
    def signed(self) -> bool:
        return BtfIntEncoding.SIGNED in self.encoding


@dataclass(frozen=True, slots=True)
class Ptr:
    """``BTF_KIND_PTR`` to ``type`` (8 bytes on BPF)."""

    kind: ClassVar[BtfKind] = BtfKind.PTR
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Array:
    """``BTF_KIND_ARRAY``: ``nelems`` of ``elem``; ``index`` is the (informative) index type."""

    kind: ClassVar[BtfKind] = BtfKind.ARRAY
    name: str
    elem: int
    index: int
    nelems: int


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union member; ``bitfield_size`` is 0 for a plain (non-bitfield) member."""

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class Struct:
    """``BTF_KIND_STRUCT`` of ``size`` bytes."""

    kind: ClassVar[BtfKind] = BtfKind.STRUCT
    name: str
    size: int
    members: tuple[Member, ...]

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True, slots=True)
class Union:
    """``BTF_KIND_UNION`` of ``size`` bytes."""

    kind: ClassVar[BtfKind] = BtfKind.UNION
    name: str
    size: int
    members: tuple[Member, ...]

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumerator; ``value`` is already signed or unsigned as its enum says."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Enum:
    """``BTF_KIND_ENUM`` (values up to 32 bits); ``signed`` is the kind_flag."""

    kind: ClassVar[BtfKind] = BtfKind.ENUM
    name: str
    size: int
    values: tuple[EnumValue, ...]
    signed: bool = False


@dataclass(frozen=True, slots=True)
class Enum64:
    """``BTF_KIND_ENUM64`` (values up to 64 bits); ``signed`` is the kind_flag."""

    kind: ClassVar[BtfKind] = BtfKind.ENUM64
    name: str
    size: int
    values: tuple[EnumValue, ...]
    signed: bool = False


@dataclass(frozen=True, slots=True)
class Fwd:
    """``BTF_KIND_FWD``: a declared, never defined ``struct name`` (or ``union`` if ``union``)."""

    kind: ClassVar[BtfKind] = BtfKind.FWD
    name: str
    union: bool = False


@dataclass(frozen=True, slots=True)
class Typedef:
    """``BTF_KIND_TYPEDEF``."""

    kind: ClassVar[BtfKind] = BtfKind.TYPEDEF
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Volatile:
    """``BTF_KIND_VOLATILE``."""

    kind: ClassVar[BtfKind] = BtfKind.VOLATILE
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Const:
    """``BTF_KIND_CONST``."""

    kind: ClassVar[BtfKind] = BtfKind.CONST
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Restrict:
    """``BTF_KIND_RESTRICT``."""

    kind: ClassVar[BtfKind] = BtfKind.RESTRICT
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Func:
    """``BTF_KIND_FUNC``: a function (or subprogram) named ``name`` of prototype ``proto``."""

    kind: ClassVar[BtfKind] = BtfKind.FUNC
    name: str
    proto: int
    linkage: BtfFuncLinkage = BtfFuncLinkage.STATIC


@dataclass(frozen=True, slots=True)
class Param:
    """A prototype parameter (its name is empty in a bare function-pointer type)."""

    name: str
    type: int


@dataclass(frozen=True, slots=True)
class FuncProto:
    """``BTF_KIND_FUNC_PROTO``; ``ret`` 0 is ``void``; ``variadic`` ends the list in ``...``."""

    kind: ClassVar[BtfKind] = BtfKind.FUNC_PROTO
    name: str
    ret: int
    params: tuple[Param, ...]
    variadic: bool = False


@dataclass(frozen=True, slots=True)
class Var:
    """``BTF_KIND_VAR``: a global or static variable, listed in some :class:`Datasec`."""

    kind: ClassVar[BtfKind] = BtfKind.VAR
    name: str
    type: int
    linkage: BtfVarLinkage = BtfVarLinkage.STATIC


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """A :class:`Datasec` entry: a ``Var`` (or an extern ``Func``) at ``offset``."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Datasec:
    """``BTF_KIND_DATASEC``: an ELF data section (``.data``, ``.maps``, ...) and its variables.

    Clang writes ``size`` 0 and offset 0 for global (non-static) variables and leaves them to
    the loader, which fills them in from the ELF section and symbol table, as libbpf does.
    """

    kind: ClassVar[BtfKind] = BtfKind.DATASEC
    name: str
    size: int
    vars: tuple[VarSecinfo, ...]


@dataclass(frozen=True, slots=True)
class Float:
    """``BTF_KIND_FLOAT``."""

    kind: ClassVar[BtfKind] = BtfKind.FLOAT
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class DeclTag:
    """``BTF_KIND_DECL_TAG`` ``name`` on ``type`` (member/param ``component_idx``, or -1).

    ``attribute`` is the kind_flag: the tag text is a whole ``__attribute__`` rather than a
    ``btf_decl_tag`` string.
    """

    kind: ClassVar[BtfKind] = BtfKind.DECL_TAG
    name: str
    type: int
    component_idx: int = -1
    attribute: bool = False


@dataclass(frozen=True, slots=True)
class TypeTag:
    """``BTF_KIND_TYPE_TAG`` ``name`` qualifying ``type``; ``attribute`` as for DeclTag."""

    kind: ClassVar[BtfKind] = BtfKind.TYPE_TAG
    name: str
    type: int
    attribute: bool = False


BtfType = (
    Void | Int | Ptr | Array | Struct | Union | Enum | Enum64 | Fwd | Typedef | Volatile
    | Const | Restrict | Func | FuncProto | Var | Datasec | Float | DeclTag | TypeTag
)

# Kinds that only rename or qualify another type: ``resolve`` looks through them.
_TRANSPARENT = (Typedef, Volatile, Const, Restrict, TypeTag)
_SIZED = (Int, Struct, Union, Enum, Enum64, Datasec, Float)


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """A ``bpf_func_info``: function ``name`` (BTF ``type_id``) starts at slot ``insn``.

    ``insn`` counts 8-byte instruction slots from the start of the ELF section, as the
    kernel's ``insn_off`` does once loaded; the object file stores it in bytes.
    """

    insn: int
    type_id: int
    name: str


@dataclass(frozen=True, slots=True)
class LineInfo:
    """A ``bpf_line_info``: instructions from slot ``insn`` on come from this source line."""

    insn: int
    file_name: str
    line: str  # the source text of the line
    line_num: int
    col: int


@dataclass(frozen=True, slots=True)
class CoreRelo:
    """A ``bpf_core_relo``: the CO-RE relocation of slot ``insn`` against ``type_id``."""

    insn: int
    type_id: int
    access: str  # the access string, e.g. "0:1" (member 1 of element 0)
    kind: BpfCoreReloKind | int  # an int when the kind is newer than this table


def referenced_ids(t: BtfType) -> tuple[int, ...]:
    """Every type id ``t`` refers to, in record order (``Void`` refers to nothing)."""
    if isinstance(t, (Ptr, Typedef, Volatile, Const, Restrict, TypeTag, Var, DeclTag)):
        return (t.type,)
    if isinstance(t, Func):
        return (t.proto,)
    if isinstance(t, Array):
        return (t.elem, t.index)
    if isinstance(t, (Struct, Union)):
        return tuple(m.type for m in t.members)
    if isinstance(t, FuncProto):
        return (t.ret, *(p.type for p in t.params))
    if isinstance(t, Datasec):
        return tuple(v.type for v in t.vars)
    return ()


def _get(types: Sequence[BtfType], type_id: int) -> BtfType:
    if not 0 <= type_id < len(types):
        raise BtfError(f"no such type (ids run from 0 to {len(types) - 1})", type_id=type_id)
    return types[type_id]


def resolve(types: Sequence[BtfType], type_id: int) -> int:
    """Follow typedef/const/volatile/restrict/type_tag from ``type_id`` to the underlying id."""
    for _ in range(MAX_RESOLVE_DEPTH):
        t = _get(types, type_id)
        if not isinstance(t, _TRANSPARENT):
            return type_id
        type_id = t.type
    raise BtfError(f"more than {MAX_RESOLVE_DEPTH} typedef/qualifier hops", type_id=type_id)


def size_of(types: Sequence[BtfType], type_id: int) -> int:
    """Size in bytes of ``type_id``, as ``sizeof`` would give it on the BPF target.

    Looks through typedefs and qualifiers (and a ``Var`` to its type); pointers are 8 bytes;
    arrays multiply out.  ``void``, functions, prototypes and forward declarations have no
    size and raise :class:`BtfError`.
    """
    start, count = type_id, 1
    for _ in range(MAX_RESOLVE_DEPTH):
        t = _get(types, resolve(types, type_id))
        if isinstance(t, _SIZED):
            return count * t.size
        if isinstance(t, Ptr):
            return count * PTR_SIZE
        if isinstance(t, Array):
            count *= t.nelems
            type_id = t.elem
        elif isinstance(t, Var):
            type_id = t.type
        else:
            what = "void" if isinstance(t, Void) else t.kind.name.lower()
            raise BtfError(f"{what} has no size", type_id=start)
    raise BtfError(f"more than {MAX_RESOLVE_DEPTH} array/variable hops", type_id=start)
