"""A tiny ``.BTF`` / ``.BTF.ext`` assembler for hand-made (often malformed) test inputs.

Each ``add_*`` appends one ``struct btf_type`` with its trailer and returns the new id;
``build()`` lays out header, types and strings (header fields can be overridden to break
them).  It encodes exactly what it is told: no checks, so tests can produce any violation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from tcemu.bpf.btf.wire import BTF_MAGIC, BtfKind

HEADER = struct.Struct("<HBBIIIII")


@dataclass
class Builder:
    strings: bytearray = field(default_factory=lambda: bytearray(b"\0"))
    types: bytearray = field(default_factory=bytearray)
    count: int = 0

    def s(self, text: str) -> int:
        """Offset of ``text`` in the string section (added on first use; "" is 0)."""
        if not text:
            return 0
        raw = text.encode() + b"\0"
        at = self.strings.find(b"\0" + raw)
        if at >= 0:
            return at + 1
        self.strings += raw
        return len(self.strings) - len(raw)

    def add(self, kind: int, name: str = "", *, vlen: int = 0, kflag: bool = False,
            ref: int = 0, trailer: bytes = b"", name_off: int | None = None) -> int:
        info = (kflag << 31) | (kind << 24) | vlen
        off = self.s(name) if name_off is None else name_off
        self.types += struct.pack("<III", off, info, ref) + trailer
        self.count += 1
        return self.count

    def int_(self, name: str = "int", size: int = 4, bits: int = 32, encoding: int = 1,
             offset: int = 0) -> int:
        data = encoding << 24 | offset << 16 | bits
        return self.add(BtfKind.INT, name, ref=size, trailer=struct.pack("<I", data))

    def ref(self, kind: int, target: int, name: str = "") -> int:
        return self.add(kind, name, ref=target)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self.add(BtfKind.ARRAY, trailer=struct.pack("<III", elem, index, nelems))

    def struct(self, name: str, size: int, members: list[tuple[str, int, int]], *,
               kflag: bool = False, union: bool = False) -> int:
        trailer = b"".join(struct.pack("<III", self.s(n), t, off) for n, t, off in members)
        kind = BtfKind.UNION if union else BtfKind.STRUCT
        return self.add(kind, name, vlen=len(members), kflag=kflag, ref=size, trailer=trailer)

    def enum(self, name: str, values: list[tuple[str, int]], *, size: int = 4,
             signed: bool = False) -> int:
        trailer = b"".join(struct.pack("<II", self.s(n), v & 0xFFFFFFFF) for n, v in values)
        return self.add(BtfKind.ENUM, name, vlen=len(values), kflag=signed, ref=size,
                        trailer=trailer)

    def proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        trailer = b"".join(struct.pack("<II", self.s(n), t) for n, t in params)
        return self.add(BtfKind.FUNC_PROTO, vlen=len(params), ref=ret, trailer=trailer)

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self.add(BtfKind.FUNC, name, vlen=linkage, ref=proto)

    def var(self, name: str, type_id: int, linkage: int = 1) -> int:
        return self.add(BtfKind.VAR, name, ref=type_id, trailer=struct.pack("<I", linkage))

    def datasec(self, name: str, entries: list[tuple[int, int, int]], size: int = 0) -> int:
        trailer = b"".join(struct.pack("<III", *e) for e in entries)
        return self.add(BtfKind.DATASEC, name, vlen=len(entries), ref=size, trailer=trailer)

    def decl_tag(self, name: str, target: int, component_idx: int = -1) -> int:
        return self.add(BtfKind.DECL_TAG, name, ref=target,
                        trailer=struct.pack("<i", component_idx))

    def build(self, *, magic: int = BTF_MAGIC, version: int = 1, flags: int = 0,
              hdr_len: int = HEADER.size, extra_header: bytes = b"", type_off: int = 0,
              type_len: int | None = None, str_off: int | None = None,
              str_len: int | None = None) -> bytes:
        types, strs = bytes(self.types), bytes(self.strings)
        header = HEADER.pack(magic, version, flags, hdr_len, type_off,
                             len(types) if type_len is None else type_len,
                             len(types) if str_off is None else str_off,
                             len(strs) if str_len is None else str_len)
        return header + extra_header + types + strs


EXT_HEADER = struct.Struct("<HBBIIIIIII")


def ext_blob(func_info: bytes = b"", line_info: bytes = b"", core_relo: bytes = b"", *,
             magic: int = BTF_MAGIC, version: int = 1, flags: int = 0,
             hdr_len: int = EXT_HEADER.size) -> bytes:
    """A ``.BTF.ext`` with the three subsections laid out back to back after the header."""
    header = EXT_HEADER.pack(magic, version, flags, hdr_len, 0, len(func_info),
                             len(func_info), len(line_info), len(func_info) + len(line_info),
                             len(core_relo))
    return header[:hdr_len] + func_info + line_info + core_relo


def info_subsection(rec_size: int, blocks: list[tuple[int, list[tuple[int, ...]]]]) -> bytes:
    """``rec_size`` then, per (sec_name_off, records), a btf_ext_info_sec and its records."""
    out = struct.pack("<I", rec_size)
    for sec_name_off, records in blocks:
        out += struct.pack("<II", sec_name_off, len(records))
        for rec in records:
            raw = struct.pack(f"<{len(rec)}I", *rec)
            out += raw.ljust(rec_size, b"\0")
    return out
