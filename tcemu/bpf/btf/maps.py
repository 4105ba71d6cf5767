"""BTF-defined maps: the ``struct { __uint(type, ...); ... } name SEC(".maps")`` convention.

libbpf's ``<bpf/bpf_helpers.h>`` encodes each attribute of a map as a member of an anonymous
struct, in types only, so that the compiler writes the numbers into BTF:

* ``__uint(name, N)`` is ``int (*name)[N]``: a pointer to an array of N ints; N is the value
  (``type``, ``max_entries``, ``map_flags``, ``numa_node``, ``key_size``, ``value_size``,
  ``pinning``, ``map_extra``).  ``map_extra`` may also be a one-enumerator enum, as newer
  headers' ``__ulong`` writes 64-bit values;
* ``__type(key, T)`` / ``__type(value, T)`` is ``T *key``: the size is ``sizeof(T)``;
* ``__array(values, T)`` is ``T *values[]``, a flexible array of pointers: for
  ``BPF_MAP_TYPE_{ARRAY,HASH}_OF_MAPS`` ``T`` is the inner map's definition struct, for
  ``BPF_MAP_TYPE_PROG_ARRAY`` a function prototype.  The initial slot values are ELF
  relocations against the ``values`` member (``values_offset`` says where it starts).

The encoding is libbpf's convention (``<bpf/bpf_helpers.h>``); the reading of it here is
our own, with libbpf's observable behaviour as the reference: ``key``/``key_size`` must
agree, an inner map is named ``<outer>.inner`` and cannot itself have ``values``, and an
unknown attribute is an error (as in libbpf, unless opened with relaxed_maps).  The fields of the
result are those of ``union bpf_attr``'s ``BPF_MAP_CREATE`` (include/uapi/linux/bpf.h).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tcemu.bpf.btf._error import BtfError
from tcemu.bpf.btf.types import (
    Array,
    BtfType,
    Enum,
    Enum64,
    FuncProto,
    Member,
    Ptr,
    Struct,
    resolve,
    size_of,
)
from tcemu.bpf.uapi import BpfMapType

__all__ = ["BtfMapDef", "read_map_def"]

# Attributes written as ``int (*name)[N]``.
_NUMBERS = ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size",
            "pinning", "map_extra")
_MAP_IN_MAP = (BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS)


@dataclass(frozen=True, slots=True)
class BtfMapDef:
    """The attributes of one BTF-defined map (0 where the definition leaves one out).

    ``key_type``/``value_type`` are the BTF ids the ``key``/``value`` members point to (None
    when the sizes were given as ``key_size``/``value_size``).  ``inner`` is the template of
    a map-in-map's inner maps (named ``<outer>.inner``, as libbpf names it), and
    ``values_offset`` the byte offset of the ``values`` member inside the definition, where
    the relocations of initial values (inner maps, tail-call programs) point.
    """

    name: str
    type: int
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    map_flags: int = 0
    numa_node: int = 0
    pinning: int = 0
    map_extra: int = 0
    key_type: int | None = None
    value_type: int | None = None
    inner: BtfMapDef | None = None
    values_offset: int | None = None


@dataclass(frozen=True, slots=True)
class _Reader:
    """Reads the members of one definition struct, reporting errors against the map."""

    types: Sequence[BtfType]
    name: str
    struct_id: int

    def fail(self, message: str, member: str | None = None) -> BtfError:
        where = f"member {member!r}: " if member else ""
        return BtfError(where + message, type_id=self.struct_id, verb=f"parse map {self.name!r}")

    def number(self, m: Member) -> int:
        """``int (*name)[N]`` -> N (or, for ``map_extra``, a one-value enum -> the value)."""
        t = self.types[resolve(self.types, m.type)]
        if isinstance(t, Ptr):
            target = self.types[resolve(self.types, t.type)]
            if isinstance(target, Array):
                return target.nelems
        elif m.name == "map_extra" and isinstance(t, (Enum, Enum64)) and len(t.values) == 1:
            return t.values[0].value & (1 << 64) - 1
        raise self.fail("expected a pointer to an array, as __uint() writes", m.name)

    def pointee(self, m: Member) -> int:
        """``T *name`` -> T's id (not resolved: it is what a listing should name)."""
        t = self.types[resolve(self.types, m.type)]
        if not isinstance(t, Ptr):
            raise self.fail("expected a pointer to the type, as __type() writes", m.name)
        return t.type

    def sized(self, m: Member) -> tuple[int, int]:
        type_id = self.pointee(m)
        try:
            return type_id, size_of(self.types, type_id)
        except BtfError as err:
            raise self.fail(err.reason, m.name) from err


def read_map_def(types: Sequence[BtfType], name: str, type_id: int, *,
                 is_inner: bool = False) -> BtfMapDef:
    """Decode the definition struct ``type_id`` (typedefs/qualifiers allowed) of map ``name``."""
    reader = _Reader(types, name, type_id)
    t = types[resolve(types, type_id)]
    if not isinstance(t, Struct):
        raise reader.fail(f"the definition is a {t.kind.name.lower()}, not a struct")
    numbers: dict[str, int] = {}
    typed: dict[str, tuple[int, int]] = {}
    values: Member | None = None
    for m in t.members:
        if m.name in _NUMBERS:
            numbers[m.name] = reader.number(m)
        elif m.name in ("key", "value"):
            typed[m.name] = reader.sized(m)
        elif m.name == "values":
            values = m
        else:
            raise reader.fail("unknown map attribute", m.name or "(anon)")
    key_type, key_size = _size(reader, "key", numbers, typed)
    value_type, value_size = _size(reader, "value", numbers, typed)
    inner = None
    if values is not None:
        if is_inner:
            raise reader.fail("an inner map cannot have values of its own", "values")
        inner = _values(reader, numbers.get("type", 0), values)
    return BtfMapDef(
        name=name, type=numbers.get("type", 0), key_size=key_size, value_size=value_size,
        max_entries=numbers.get("max_entries", 0), map_flags=numbers.get("map_flags", 0),
        numa_node=numbers.get("numa_node", 0), pinning=numbers.get("pinning", 0),
        map_extra=numbers.get("map_extra", 0), key_type=key_type, value_type=value_type,
        inner=inner, values_offset=None if values is None else values.bit_offset // 8,
    )


def _size(reader: _Reader, what: str, numbers: dict[str, int],
          typed: dict[str, tuple[int, int]]) -> tuple[int | None, int]:
    """Combine ``key``/``key_size`` (or value): both may be given, but must agree."""
    explicit = numbers.get(f"{what}_size")
    if what not in typed:
        return None, explicit or 0
    type_id, size = typed[what]
    if explicit is not None and explicit != size:
        raise reader.fail(f"{what}_size {explicit} conflicts with sizeof({what}) = {size}",
                          what)
    return type_id, size


def _values(reader: _Reader, map_type: int, m: Member) -> BtfMapDef | None:
    """Check ``__array(values, T)``; for a map-in-map, decode ``T`` as the inner map."""
    types = reader.types
    arr = types[resolve(types, m.type)]
    if not isinstance(arr, Array) or arr.nelems != 0:
        raise reader.fail("expected a zero-length array, as __array() writes", "values")
    ptr = types[resolve(types, arr.elem)]
    if not isinstance(ptr, Ptr):
        raise reader.fail("expected an array of pointers, as __array() writes", "values")
    target_id = resolve(types, ptr.type)
    target = types[target_id]
    if map_type in _MAP_IN_MAP and isinstance(target, Struct):
        return read_map_def(types, f"{reader.name}.inner", target_id, is_inner=True)
    if map_type == BpfMapType.PROG_ARRAY and isinstance(target, FuncProto):
        return None
    raise reader.fail(f"values of {target.kind.name.lower()} need a map-in-map (of a struct) "
                      f"or a prog array (of a function), not map type {map_type}", "values")
