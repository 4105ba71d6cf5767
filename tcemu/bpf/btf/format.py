"""A C-like printer for BTF types, for error messages and listings.

Spells a type the way a C declaration would (``struct flow_key``, ``unsigned int``,
``int (*)[4]``, ``const char *``, ``int (*)(struct __sk_buff *)``), and summarises a struct,
union, enum or datasec on one line (``struct flow_key { __u32 saddr; ...; __u8 proto:4; }``).
It mirrors no kernel file; the spelling follows C's declarator rules, which is also what
``bpftool btf dump format c`` prints, one declaration at a time.

Anonymous aggregates print as ``struct {...}`` inside other types so that a one-line
message never expands a nested definition.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcemu.bpf.btf._error import BtfError
from tcemu.bpf.btf.types import (
    Array,
    BtfType,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Func,
    FuncProto,
    Fwd,
    Member,
    Ptr,
    Restrict,
    Struct,
    TypeTag,
    Union,
    Var,
    Void,
    Volatile,
)

__all__ = ["format_decl", "format_summary", "format_type"]

_MAX_DEPTH = 64  # nesting of pointers/arrays/prototypes before we call the chain broken
_QUALIFIERS = (Const, Volatile, Restrict, TypeTag)
# The storage class a func/var declaration starts with, by linkage name.
_LINKAGE = {"STATIC": "static ", "GLOBAL": "", "GLOBAL_ALLOCATED": "", "EXTERN": "extern ",
            "GLOBAL_EXTERN": "extern "}


def format_type(types: Sequence[BtfType], type_id: int) -> str:
    """The C spelling of ``type_id`` (for a func or var: its declaration)."""
    t = _get(types, type_id)
    if isinstance(t, Func):
        return _LINKAGE[t.linkage.name] + _decl(types, t.proto, t.name, 0)
    if isinstance(t, Var):
        return _LINKAGE[t.linkage.name] + _decl(types, t.type, t.name, 0)
    if isinstance(t, Datasec):
        return f'SEC("{t.name}")'
    if isinstance(t, DeclTag):
        where = "" if t.component_idx < 0 else f" (component {t.component_idx})"
        return f"{_tag(t.name, t.attribute, 'decl')} on {format_type(types, t.type)}{where}"
    return _decl(types, type_id, "", 0)


def format_decl(types: Sequence[BtfType], type_id: int, name: str) -> str:
    """A declaration of ``name`` with type ``type_id``: ``int (*name)[4]``."""
    return _decl(types, type_id, name, 0)


def format_summary(types: Sequence[BtfType], type_id: int, *, max_items: int = 8) -> str:
    """One line with the members (enumerators, variables) of an aggregate, up to ``max_items``.

    Other kinds print as :func:`format_type` does.
    """
    t = _get(types, type_id)
    if isinstance(t, (Struct, Union)):
        items = [_member(types, m) for m in t.members]
        head = _spell(t).replace("{...}", "").rstrip()
    elif isinstance(t, (Enum, Enum64)):
        items = [f"{v.name} = {v.value}" for v in t.values]
        head = _spell(t).replace("{...}", "").rstrip()
        return f"{head} {{ {_join(items, max_items, ', ')} }}" if items else head
    elif isinstance(t, Datasec):
        items = [f"{format_type(types, v.type)}; /* +{v.offset} */" for v in t.vars]
        head = format_type(types, type_id)
    else:
        return format_type(types, type_id)
    return f"{head} {{ {_join(items, max_items, ' ')} }}" if items else f"{head} {{}}"


def _join(items: list[str], limit: int, sep: str) -> str:
    shown = items[:limit] + (["..."] if len(items) > limit else [])
    return sep.join(shown)


def _member(types: Sequence[BtfType], m: Member) -> str:
    bits = f":{m.bitfield_size}" if m.bitfield_size else ""
    return f"{_decl(types, m.type, m.name, 0)}{bits};"


def _get(types: Sequence[BtfType], type_id: int) -> BtfType:
    if not 0 <= type_id < len(types):
        raise BtfError(f"no such type (ids run from 0 to {len(types) - 1})", type_id=type_id)
    return types[type_id]


def _decl(types: Sequence[BtfType], type_id: int, inner: str, depth: int) -> str:
    """C's inside-out declarator: wrap ``inner`` in the operators of ``type_id``."""
    if depth > _MAX_DEPTH:
        raise BtfError(f"type nesting deeper than {_MAX_DEPTH}", type_id=type_id)
    t = _get(types, type_id)
    if isinstance(t, Ptr):
        star = f"*{inner}"
        return _decl(types, t.type, f"({star})" if _binds_tighter(types, t.type) else star,
                     depth + 1)
    if isinstance(t, Array):
        return _decl(types, t.elem, f"{inner}[{t.nelems}]", depth + 1)
    if isinstance(t, FuncProto):
        return _decl(types, t.ret, f"{inner}({_params(types, t, depth)})", depth + 1)
    if isinstance(t, _QUALIFIERS):
        word = _qualifier(t)
        if _is_pointer(types, t.type):  # ``int *const p``: the qualifier follows the star
            return _decl(types, t.type, f"{word} {inner}".rstrip(), depth + 1)
        return f"{word} {_decl(types, t.type, inner, depth + 1)}"
    return _attach(_spell(t), inner)


def _attach(base: str, inner: str) -> str:
    if not inner:
        return base
    tight = inner[0] == "[" or (inner[0] == "(" and not inner.startswith("(*"))
    return f"{base}{inner}" if tight else f"{base} {inner}"


def _params(types: Sequence[BtfType], proto: FuncProto, depth: int) -> str:
    parts = [_decl(types, p.type, p.name, depth + 1) for p in proto.params]
    if proto.variadic:
        parts.append("...")
    return ", ".join(parts) if parts else "void"


def _binds_tighter(types: Sequence[BtfType], type_id: int) -> bool:
    """Whether a pointer to ``type_id`` needs parentheses: ``(*p)[4]``, ``(*f)(int)``."""
    for _ in range(_MAX_DEPTH):
        t = _get(types, type_id)
        if not isinstance(t, _QUALIFIERS):
            return isinstance(t, (Array, FuncProto))
        type_id = t.type
    raise BtfError(f"qualifier chain deeper than {_MAX_DEPTH}", type_id=type_id)


def _is_pointer(types: Sequence[BtfType], type_id: int) -> bool:
    for _ in range(_MAX_DEPTH):
        t = _get(types, type_id)
        if not isinstance(t, _QUALIFIERS):
            return isinstance(t, Ptr)
        type_id = t.type
    raise BtfError(f"qualifier chain deeper than {_MAX_DEPTH}", type_id=type_id)


def _qualifier(t: Const | Volatile | Restrict | TypeTag) -> str:
    if isinstance(t, TypeTag):
        return _tag(t.name, t.attribute, "type")
    return {Const: "const", Volatile: "volatile", Restrict: "restrict"}[type(t)]


def _tag(text: str, attribute: bool, which: str) -> str:
    if attribute:  # the kind_flag: the name is the attribute's whole text
        return f"__attribute__(({text}))"
    return f'__attribute__((btf_{which}_tag("{text}")))'


def _spell(t: BtfType) -> str:
    """The name of a type that has no declarator part of its own."""
    if isinstance(t, Void):
        return "void"
    if isinstance(t, (Struct, Union, Enum, Enum64, Fwd)):
        word = _aggregate_word(t)
        return f"{word} {t.name}" if t.name else f"{word} {{...}}"
    return t.name or f"<anon {t.kind.name.lower()}>"


def _aggregate_word(t: Struct | Union | Enum | Enum64 | Fwd) -> str:
    if isinstance(t, Fwd):
        return "union" if t.union else "struct"
    return "struct" if isinstance(t, Struct) else "union" if isinstance(t, Union) else "enum"
