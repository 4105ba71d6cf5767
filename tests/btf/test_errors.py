"""Malformed ``.BTF`` / ``.BTF.ext``: each check raises BtfError with the id/offset it names.

Every hand-made blob is one violation on top of an otherwise valid table (tests/btf/
builder.py); the fuzz tests at the end flip single bytes of the committed objects' sections
and require that parsing (and every walk over the result) either succeeds or raises
BtfError, never anything else.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable

import pytest

from tcemu.bpf.btf import BtfError, BtfSpec, FuncInfo, LineInfo
from tcemu.bpf.btf.wire import BtfKind as K
from tcemu.errors import TcemuError
from tests.btf.builder import Builder, ext_blob, info_subsection
from tests.btf.objects import OBJECTS, btf_sections

HDR = 24


def _one_int() -> Builder:
    b = Builder()
    b.int_()
    return b


def _raises(blob: bytes, pattern: str, ext: bytes | None = None) -> BtfError:
    with pytest.raises(BtfError, match=pattern) as info:
        BtfSpec.from_bytes(blob, ext)
    assert isinstance(info.value, TcemuError)
    assert str(info.value).startswith(("parse btf: ", "parse btf.ext: "))
    return info.value


# --- the header ------------------------------------------------------------------------

HEADER_CASES: dict[str, tuple[Callable[[], bytes], str, int | None]] = {
    "empty": (lambda: b"", r"^parse btf: at byte 0: truncated btf_header", 0),
    "big-endian": (lambda: _one_int().build(magic=0x9FEB), "big-endian btf .bpfeb.", 0),
    "bad magic": (lambda: _one_int().build(magic=0x1234), "bad magic 0x1234", 0),
    "version": (lambda: _one_int().build(version=2), "unsupported version 2", 2),
    "flags": (lambda: _one_int().build(flags=1), "unsupported flags 0x1", 3),
    "hdr_len": (lambda: _one_int().build(hdr_len=4096), "hdr_len 4096 is outside", 4),
    "short hdr_len": (lambda: _one_int().build(hdr_len=16), "hdr_len 16 is outside", 4),
    "header tail": (lambda: _one_int().build(hdr_len=28, extra_header=b"\1\0\0\0"),
                    "4 unknown non-zero bytes", 24),
    "type_off": (lambda: _one_int().build(type_off=2), "type_off 2 is not 4-byte aligned", 8),
    "type_len": (lambda: _one_int().build(type_len=4096), "type section .* runs past", 8),
    "str_len": (lambda: _one_int().build(str_len=4096), "string section .* runs past", 16),
    "overlap": (lambda: _one_int().build(str_off=0), "type and string sections overlap", 8),
    "no final nul": (lambda: _one_int().build(str_len=4), "start and end with a NUL", None),
    "empty strings": (lambda: _one_int().build(str_len=0), "start and end with a NUL", None),
}


@pytest.mark.parametrize("case", HEADER_CASES)
def test_header(case: str) -> None:
    make, pattern, offset = HEADER_CASES[case]
    err = _raises(make(), pattern)
    assert err.type_id is None
    if offset is not None:
        assert err.offset == offset


def test_longer_zeroed_header_is_accepted() -> None:
    btf = BtfSpec.from_bytes(_one_int().build(hdr_len=32, extra_header=bytes(8)))
    assert btf[1].name == "int"


# --- type records ----------------------------------------------------------------------


def _type_case(build: Callable[[Builder], object]) -> bytes:
    b = Builder()
    b.int_()  # id 1, the usual referent
    build(b)
    return b.build()


TYPE_CASES: dict[str, tuple[Callable[[Builder], object], str, int]] = {
    "name offset": (lambda b: b.add(K.INT, name_off=9999, ref=4,
                                    trailer=struct.pack("<I", 32)),
                    "name offset 9999 is outside the string section", 2),
    "unknown kind": (lambda b: b.add(20, "x"), "unknown kind 20", 2),
    "kind zero": (lambda b: b.add(0), "unknown kind 0", 2),
    "vlen past end": (lambda b: b.add(K.STRUCT, "s", vlen=5, ref=4),
                      "struct with vlen 5 runs past the end", 2),
    "vlen on ptr": (lambda b: b.add(K.PTR, vlen=1, ref=1), "vlen 1 on ptr", 2),
    "kflag on int": (lambda b: b.add(K.INT, "i", kflag=True, ref=4,
                                     trailer=struct.pack("<I", 32)), "kind_flag set on int", 2),
    "reserved info": (lambda b: b.add(K.PTR | 0x20, ref=1), "reserved info bits", 2),
    "int size": (lambda b: b.int_("i", size=3, bits=8), "int size 3", 2),
    "int bits 0": (lambda b: b.int_("i", bits=0), "int of 0 bits", 2),
    "int too wide": (lambda b: b.int_("i", bits=30, offset=4), "does not fit in 4 bytes", 2),
    "int encoding": (lambda b: b.int_("i", encoding=3), "int encoding 0x3 combines", 2),
    "int reserved": (lambda b: b.add(K.INT, "i", ref=4, trailer=struct.pack("<I", 1 << 8 | 32)),
                     "reserved bits set in int data", 2),
    "named ptr": (lambda b: b.ref(K.PTR, 1, "p"), "ptr must be anonymous", 2),
    "anonymous typedef": (lambda b: b.ref(K.TYPEDEF, 1), "typedef has no name", 2),
    "anonymous func": (lambda b: b.func("", b.proto(1, [])), "func has no name", 3),
    "array size field": (lambda b: b.add(K.ARRAY, ref=4, trailer=struct.pack("<III", 1, 1, 2)),
                         "array has non-zero size/type field 4", 2),
    "enum size": (lambda b: b.enum("e", [("A", 1)], size=3), "enum size 3", 2),
    "float size": (lambda b: b.add(K.FLOAT, "f", ref=3), "float size 3", 2),
    "func linkage": (lambda b: b.func("f", b.proto(1, []), linkage=3),
                     "unknown func linkage 3", 3),
    "var linkage": (lambda b: b.var("v", 1, linkage=3), "unknown var linkage 3", 2),
    "void param": (lambda b: b.proto(1, [("", 0), ("x", 1)]), "a void parameter", 2),
    "decl tag idx": (lambda b: b.decl_tag("t", b.var("v", 1), -2), "component_idx -2", 3),
    "dangling ref": (lambda b: b.ref(K.PTR, 99), "refers to type 99, but the last id is 2", 2),
    "dangling member": (lambda b: b.struct("s", 4, [("a", 77, 0)]), "refers to type 77", 2),
    "func proto kind": (lambda b: b.func("f", 1), r"func prototype is type 1 \(int\)", 2),
    "datasec entry": (lambda b: b.datasec(".data", [(1, 0, 4)]),
                      r"datasec entry is type 1 \(int\)", 2),
    "void member": (lambda b: b.struct("s", 4, [("a", 0, 0)]),
                    r"member 'a' type is type 0 \(void\)", 2),
    "proto member": (lambda b: b.struct("s", 4, [("a", b.proto(1, []), 0)]),
                     r"member 'a' type is type 2 \(func_proto\)", 3),
    "void element": (lambda b: b.array(0, 1, 2), r"array element type is type 0 \(void\)", 2),
    "var of proto": (lambda b: b.var("v", b.proto(1, [])), "variable type is type 2", 3),
    "ptr to func": (lambda b: b.ref(K.PTR, b.func("f", b.proto(1, []))),
                    r"ptr target is type 3 \(func\)", 4),
    "decl tag target": (lambda b: b.decl_tag("t", 1), r"decl tag target is type 1 \(int\)", 2),
    "decl tag member": (lambda b: b.decl_tag("t", b.struct("s", 4, [("a", 1, 0)]), 1),
                        "component_idx 1 is out of range for type 2 .1 components", 3),
    "decl tag var idx": (lambda b: b.decl_tag("t", b.var("v", 1), 0),
                         "component_idx 0 is out of range", 3),
    "array index": (lambda b: b.array(1, b.struct("s", 4, [("a", 1, 0)]), 2),
                    "array index type 2 is not an int", 3),
    "member past end": (lambda b: b.struct("s", 4, [("a", 1, 16)]),
                        r"member 'a' \(bits 16..48\) exceeds the 4-byte struct", 2),
    "bitfield past end": (lambda b: b.struct("s", 1, [("a", 1, 3 << 24 | 6)], kflag=True),
                          r"bits 6..9\) exceeds the 1-byte struct", 2),
    "sizeless member": (lambda b: b.struct("s", 4, [("a", b.add(K.FWD, "o"), 0)]),
                        "member 'a': fwd has no size", 3),
    "ptr cycle": (lambda b: (b.ref(K.PTR, 3), b.ref(K.CONST, 2)), "reference cycle", 3),
    "typedef loop": (lambda b: b.ref(K.TYPEDEF, 2, "t"), "reference cycle through type 2", 2),
}


@pytest.mark.parametrize("case", TYPE_CASES)
def test_type_record(case: str) -> None:
    build, pattern, type_id = TYPE_CASES[case]
    err = _raises(_type_case(build), pattern)
    assert err.type_id == type_id
    assert str(err).startswith(f"parse btf: type {type_id}")


def test_framing_errors_carry_the_record_offset() -> None:
    err = _raises(_type_case(lambda b: b.add(20, "x")), "unknown kind")
    assert err.offset == HDR + 16  # after the 16-byte INT record


def test_cycles_through_a_struct_are_fine() -> None:
    b = Builder()
    node = b.count + 1
    b.struct("node", 8, [("next", node + 1, 0)])
    b.ref(K.PTR, node)
    btf = BtfSpec.from_bytes(b.build())
    assert btf.format(2) == "struct node *"
    assert btf.summary(node) == "struct node { struct node *next; }"


def test_resolve_depth_is_bounded() -> None:
    b = _one_int()
    for i in range(40):
        b.ref(K.TYPEDEF, 1 + i, f"t{i}")
    btf = BtfSpec.from_bytes(b.build())
    with pytest.raises(BtfError, match="more than 32 typedef/qualifier hops"):
        btf.size_of(len(btf) - 1)
    assert btf.resolve(20) == 1


# --- .BTF.ext --------------------------------------------------------------------------


def _ext_btf() -> tuple[Builder, dict[str, int]]:
    b = _one_int()
    b.func("f", b.proto(1, []))
    names = {"tc": b.s("tc"), "file": b.s("f.c"), "line": b.s("int f(void)"), "acc": b.s("0")}
    b.strings += b"bad \xff text\0"
    names["bad"] = len(b.strings) - len(b"bad \xff text\0")
    return b, names


def _func_info(sec: int, *records: tuple[int, ...], rec_size: int = 8) -> bytes:
    return info_subsection(rec_size, [(sec, list(records))])


def test_ext_round_trip() -> None:
    b, n = _ext_btf()
    ext = ext_blob(_func_info(n["tc"], (8, 3)),
                   info_subsection(16, [(n["tc"], [(0, n["file"], n["line"], 7 << 10 | 3),
                                                   (16, n["file"], n["bad"], 9 << 10)])]),
                   info_subsection(16, [(n["tc"], [(8, 1, n["acc"], 99)])]))
    btf = BtfSpec.from_bytes(b.build(), ext)
    assert btf.func_info == {"tc": (FuncInfo(1, 3, "f"),)}
    assert btf.line_info["tc"] == (LineInfo(0, "f.c", "int f(void)", 7, 3),
                                   LineInfo(2, "f.c", "bad \ufffd text", 9, 0))
    (relo,) = btf.core_relos["tc"]
    assert (relo.insn, relo.type_id, relo.access, relo.kind) == (1, 1, "0", 99)


def test_ext_without_core_relo_header_fields() -> None:
    b, n = _ext_btf()
    btf = BtfSpec.from_bytes(b.build(), ext_blob(_func_info(n["tc"], (0, 3)), hdr_len=24))
    assert btf.func_info["tc"][0].name == "f"
    assert not btf.core_relos


def test_ext_larger_records_are_skipped_over() -> None:
    b, n = _ext_btf()
    ext = ext_blob(_func_info(n["tc"], (0, 3, 0xDEAD), (16, 3, 0xBEEF), rec_size=12))
    btf = BtfSpec.from_bytes(b.build(), ext)
    assert [f.insn for f in btf.func_info["tc"]] == [0, 2]


EXT_CASES: dict[str, tuple[Callable[[dict[str, int]], bytes], str]] = {
    "truncated": (lambda n: b"\x9f\xeb\x01", "truncated btf_ext_header"),
    "big-endian": (lambda n: ext_blob(magic=0x9FEB), "big-endian"),
    "version": (lambda n: ext_blob(version=9), "unsupported version 9"),
    "hdr_len": (lambda n: ext_blob(hdr_len=20) + bytes(8), "hdr_len 20 is outside"),
    "header tail": (lambda n: ext_blob(hdr_len=36) + b"\1\0\0\0", "unknown non-zero bytes"),
    "insn_off": (lambda n: ext_blob(_func_info(n["tc"], (4, 3))), "insn_off 4 is not a multiple"),
    "not a func": (lambda n: ext_blob(_func_info(n["tc"], (0, 1))), "type 1 is not a func"),
    "func id range": (lambda n: ext_blob(_func_info(n["tc"], (0, 50))), "type 50 is not a func"),
    "rec_size": (lambda n: ext_blob(_func_info(n["tc"], (0,), rec_size=4)),
                 "func_info record size 4 is invalid"),
    "unaligned rec": (lambda n: ext_blob(_func_info(n["tc"], (0, 3), rec_size=10)),
                      "record size 10 is invalid"),
    "no records": (lambda n: ext_blob(info_subsection(8, [(n["tc"], [])])), "has no records"),
    "past end": (lambda n: ext_blob(_func_info(n["tc"], (0, 3))[:-4]), "runs past the end"),
    "short sub": (lambda n: ext_blob(b"\x08\0"), "too short for its record size"),
    "sec name": (lambda n: ext_blob(_func_info(500, (0, 3))), "section name offset 500"),
    "file name": (lambda n: ext_blob(line_info=info_subsection(16, [(n["tc"], [(0, 900, 0, 0)])])),
                  "file name offset 900"),
    "relo type": (lambda n: ext_blob(core_relo=info_subsection(16, [(n["tc"], [(0, 9, 0, 0)])])),
                  "core_relo type 9 is out of range"),
    "access str": (lambda n: ext_blob(core_relo=info_subsection(16, [(n["tc"], [(0, 1, 999, 0)])])),
                   "access string offset 999"),
}


@pytest.mark.parametrize("case", EXT_CASES)
def test_ext(case: str) -> None:
    b, names = _ext_btf()
    make, pattern = EXT_CASES[case]
    err = _raises(b.build(), pattern, make(names))
    assert str(err).startswith("parse btf.ext: ")


def test_ext_subsection_outside_the_blob() -> None:
    b, _ = _ext_btf()
    ext = bytearray(ext_blob())
    struct.pack_into("<I", ext, 12, 64)  # func_info_len
    err = _raises(b.build(), r"func_info section \[32, 96\) runs past", bytes(ext))
    assert err.offset == 8


# --- fuzz ------------------------------------------------------------------------------


def _exercise(btf: BtfSpec) -> None:
    """Every walk over a parsed table may refuse with BtfError, and only with it."""
    for tid in range(len(btf)):
        for walk in (btf.format, btf.summary, btf.size_of, btf.resolve):
            with contextlib.suppress(BtfError):
                walk(tid)
    for name in btf.map_names():
        with contextlib.suppress(BtfError):
            btf.map_def(name)
    for sec in btf.line_info:
        btf.line_for(sec, 3)


def _mutations(blob: bytes, seed: str, count: int, hot: int) -> list[tuple[int, int]]:
    """(position, xor mask) pairs: half in the first ``hot`` bytes, half anywhere."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        pos = rng.randrange(hot if i % 2 else len(blob))
        out.append((pos, rng.randrange(1, 256)))
    return out


def _mutated(blob: bytes, pos: int, mask: int) -> bytes:
    data = bytearray(blob)
    data[pos] ^= mask
    return bytes(data)


@pytest.mark.parametrize("name", OBJECTS)
def test_single_byte_mutations_of_btf(name: str) -> None:
    blob, _ = btf_sections(name)
    type_end = HDR + struct.unpack_from("<I", blob, 12)[0]
    outcomes = {"ok": 0, "error": 0}
    for pos, mask in _mutations(blob, f"btf/{name}", 300, type_end):
        try:
            btf = BtfSpec.from_bytes(_mutated(blob, pos, mask))
        except BtfError:
            outcomes["error"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure we hunt for
            pytest.fail(f"byte {pos} ^ {mask:#x}: {exc!r}")
        outcomes["ok"] += 1
        _exercise(btf)
    assert outcomes["ok"]
    assert outcomes["error"]


@pytest.mark.parametrize("name", ["types", "funcs"])
def test_single_byte_mutations_of_btf_ext(name: str) -> None:
    blob, ext = btf_sections(name)
    for pos, mask in _mutations(ext, f"ext/{name}", 300, 64):
        try:
            btf = BtfSpec.from_bytes(blob, _mutated(ext, pos, mask))
        except BtfError:
            continue
        except Exception as exc:  # pragma: no cover - the failure we hunt for
            pytest.fail(f"byte {pos} ^ {mask:#x}: {exc!r}")
        _exercise(btf)


@pytest.mark.parametrize("name", OBJECTS)
def test_truncations(name: str) -> None:
    blob, ext = btf_sections(name)
    for cut in range(0, len(blob), 7):
        with pytest.raises(BtfError):
            BtfSpec.from_bytes(blob[:cut])
    for cut in range(0, len(ext), 5):
        with contextlib.suppress(BtfError):
            BtfSpec.from_bytes(blob, ext[:cut])
