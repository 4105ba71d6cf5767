"""BTF: the types, function and line information a clang-built BPF object carries.

``BtfSpec.from_bytes(btf, ext)`` decodes the ``.BTF`` section (and, optionally, ``.BTF.ext``)
of an object built by ``clang -O2 -g -target bpf``.  It is pure: it reads bytes and never
touches a VM.  The canonical documentation of the format lives in the Linux kernel
repository, ``Documentation/bpf/btf.rst`` and ``include/uapi/linux/btf.h``.

The package, bottom to top:

* ``wire``   -- on-disk records (``struct btf_header``, ``struct btf_type`` and its per-kind
  trailers, ``struct btf_ext_header`` and its info blocks) and their framing;
* ``types``  -- the typed model (``Int``, ``Ptr``, ``Struct``, ... ``Void`` for id 0) and
  the ``resolve``/``size_of`` walks;
* ``parse``  -- ``.BTF`` bytes -> model, with the validation the kernel would apply;
* ``ext``    -- ``.BTF.ext`` bytes -> func_info / line_info / core_relo per ELF section;
* ``maps``   -- BTF-defined maps in ``.maps`` -> :class:`BtfMapDef`;
* ``format`` -- a C-like printer for messages and listings;
* this module -- :class:`BtfSpec`, which ties them together.

Instruction offsets: ``.BTF.ext`` stores them in *bytes* from the start of the ELF section;
every ``insn`` here is the slot index (bytes / 8), as libbpf converts them for the kernel.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from tcemu.bpf.btf._error import BtfError
from tcemu.bpf.btf.ext import BtfExt, parse_btf_ext
from tcemu.bpf.btf.format import format_decl, format_summary, format_type
from tcemu.bpf.btf.maps import BtfMapDef, read_map_def
from tcemu.bpf.btf.parse import parse_btf
from tcemu.bpf.btf.types import (
    BtfType,
    CoreRelo,
    Datasec,
    FuncInfo,
    LineInfo,
    Var,
    resolve,
    size_of,
)
from tcemu.bpf.btf.wire import BtfKind

__all__ = ["BtfError", "BtfKind", "BtfMapDef", "BtfSpec", "BtfType", "CoreRelo", "FuncInfo",
           "LineInfo"]

_MAPS_SECTION = ".maps"


class BtfSpec:
    """A decoded ``.BTF`` (+ ``.BTF.ext``): the type table and per-section func/line info.

    ``types[id]`` is the type with that id (``types[0]`` is ``Void``).  ``func_info``,
    ``line_info`` and ``core_relos`` map an ELF section name (``"tc"``, ``".text"``) to its
    records in instruction order.
    """

    def __init__(self, types: tuple[BtfType, ...], ext: BtfExt | None = None) -> None:
        self.types = types
        self.func_info: Mapping[str, tuple[FuncInfo, ...]] = MappingProxyType(
            dict(ext.func_info) if ext else {})
        self.line_info: Mapping[str, tuple[LineInfo, ...]] = MappingProxyType(
            dict(ext.line_info) if ext else {})
        self.core_relos: Mapping[str, tuple[CoreRelo, ...]] = MappingProxyType(
            dict(ext.core_relos) if ext else {})
        self._by_name: dict[str, list[int]] = {}
        for type_id, t in enumerate(types):
            if t.name:
                self._by_name.setdefault(t.name, []).append(type_id)
        self._lines = {sec: _by_insn(infos) for sec, infos in self.line_info.items()}
        self._funcs = {sec: _by_insn(infos) for sec, infos in self.func_info.items()}

    @classmethod
    def from_bytes(cls, btf: bytes, ext: bytes | None = None) -> BtfSpec:
        """Decode a ``.BTF`` section and, if given, the matching ``.BTF.ext``."""
        parsed = parse_btf(btf)
        return cls(parsed.types, parse_btf_ext(ext, parsed) if ext is not None else None)

    def __len__(self) -> int:
        return len(self.types)

    def __getitem__(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"no such type (ids run from 0 to {len(self.types) - 1})",
                           type_id=type_id, verb="look up btf")
        return self.types[type_id]

    def __repr__(self) -> str:
        return f"<BtfSpec {len(self.types) - 1} types, {len(self.func_info)} code sections>"

    # --- types ---------------------------------------------------------------------------

    def find(self, name: str, kind: BtfKind | None = None) -> tuple[int, ...]:
        """Ids of every type named ``name`` (of ``kind``, if given), in id order."""
        ids = self._by_name.get(name, [])
        return tuple(i for i in ids if kind is None or self.types[i].kind == kind)

    def find_one(self, name: str, kind: BtfKind | None = None) -> int:
        """The id of the one type named ``name`` (of ``kind``); BtfError if none or several."""
        ids = self.find(name, kind)
        what = f"{kind.name.lower()} {name!r}" if kind is not None else repr(name)
        if len(ids) != 1:
            found = "no" if not ids else f"{len(ids)} ({', '.join(map(str, ids))})"
            raise BtfError(f"{found} types named {what}", verb="look up btf")
        return ids[0]

    def resolve(self, type_id: int) -> int:
        """Skip typedef/const/volatile/restrict/type_tag: the id of the underlying type."""
        return resolve(self.types, type_id)

    def size_of(self, type_id: int) -> int:
        """``sizeof`` on the BPF target (pointers are 8 bytes); BtfError for sizeless kinds."""
        return size_of(self.types, type_id)

    def format(self, type_id: int) -> str:
        """C spelling of a type (``struct flow_key``, ``int (*)[4]``)."""
        return format_type(self.types, type_id)

    def format_decl(self, type_id: int, name: str) -> str:
        """A C declaration of ``name`` with this type (``int (*type)[2]``)."""
        return format_decl(self.types, type_id, name)

    def summary(self, type_id: int, *, max_items: int = 8) -> str:
        """One-line summary with members: ``struct flow_key { __u32 saddr; ... }``."""
        return format_summary(self.types, type_id, max_items=max_items)

    # --- .BTF.ext ------------------------------------------------------------------------

    def line_for(self, section: str, insn: int) -> LineInfo | None:
        """The source line covering slot ``insn`` of ``section``: the last line_info record
        at or before it (None before the first record or without line info)."""
        insns, infos = self._lines.get(section, ((), ()))
        pos = bisect.bisect_right(insns, insn)
        return infos[pos - 1] if pos else None

    def func_for(self, section: str, insn: int) -> FuncInfo | None:
        """The function slot ``insn`` of ``section`` belongs to (the last func_info at or
        before it)."""
        insns, infos = self._funcs.get(section, ((), ()))
        pos = bisect.bisect_right(insns, insn)
        return infos[pos - 1] if pos else None

    # --- maps ----------------------------------------------------------------------------

    def map_names(self) -> tuple[str, ...]:
        """Names of the variables in the ``.maps`` datasec, in BTF order."""
        return tuple(self.types[v].name for v in self._map_vars())

    def map_def(self, var_name: str) -> BtfMapDef:
        """The definition of the BTF-defined map ``var_name`` (a variable in ``.maps``)."""
        for var_id in self._map_vars():
            var = self.types[var_id]
            if var.name == var_name and isinstance(var, Var):
                return read_map_def(self.types, var_name, var.type)
        raise BtfError(f"no variable {var_name!r} in datasec {_MAPS_SECTION!r}",
                       verb=f"parse map {var_name!r}")

    def map_defs(self) -> dict[str, BtfMapDef]:
        """Every BTF-defined map, by name."""
        return {name: self.map_def(name) for name in self.map_names()}

    def _map_vars(self) -> list[int]:
        ids = self.find(_MAPS_SECTION, BtfKind.DATASEC)
        out: list[int] = []
        for sec_id in ids:
            sec = self.types[sec_id]
            if isinstance(sec, Datasec):
                out.extend(v.type for v in sec.vars if isinstance(self.types[v.type], Var))
        return out


_Info = TypeVar("_Info", FuncInfo, LineInfo)


def _by_insn(infos: tuple[_Info, ...]) -> tuple[tuple[int, ...], tuple[_Info, ...]]:
    """(slots, records) sorted by slot, for bisecting.

    clang emits each section's records in address order already; sorting (stably) only
    guards the binary search against a producer that does not.
    """
    ordered = tuple(sorted(infos, key=lambda info: info.insn))
    return tuple(info.insn for info in ordered), ordered
