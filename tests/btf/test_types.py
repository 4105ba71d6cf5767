"""The decoded model of types.bpf.o: every kind clang emits, and the resolve/size_of walks."""

from __future__ import annotations

import pytest

from tcemu.bpf.btf import BtfError, BtfKind, BtfSpec
from tcemu.bpf.btf.types import (
    Array,
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
    Ptr,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
)
from tcemu.bpf.btf.wire import BtfFuncLinkage, BtfIntEncoding, BtfVarLinkage
from tests.btf.builder import Builder
from tests.btf.objects import spec


@pytest.fixture(scope="module")
def btf() -> BtfSpec:
    return spec("types")


def _named(btf: BtfSpec, name: str, kind: BtfKind) -> object:
    return btf[btf.find_one(name, kind)]


def _struct(btf: BtfSpec, name: str) -> Struct:
    t = _named(btf, name, BtfKind.STRUCT)
    assert isinstance(t, Struct)
    return t


def test_void_is_id_zero(btf: BtfSpec) -> None:
    assert btf[0] == Void()
    assert btf.types[0] is btf[0]


def test_bitfields_carry_bit_offset_and_size(btf: BtfSpec) -> None:
    key = _struct(btf, "flow_key")
    assert key.size == 20
    bits = {m.name: (m.bit_offset, m.bitfield_size) for m in key.members}
    assert bits == {"saddr": (0, 0), "daddr": (32, 0), "sport": (64, 0), "dport": (80, 0),
                    "proto": (96, 4), "flags": (100, 3), "valid": (103, 1),
                    "hash": (104, 20), "signed_bits": (128, 7)}


def test_union_and_anonymous_members(btf: BtfSpec) -> None:
    addr = _named(btf, "addr", BtfKind.UNION)
    assert isinstance(addr, Union)
    assert addr.size == 16
    assert {m.bit_offset for m in addr.members} == {0}
    halves = addr.member("halves")
    assert halves is not None
    assert btf[halves.type] == Struct("", 16, (Member("hi", btf.find_one("__u64"), 0),
                                               Member("lo", btf.find_one("__u64"), 64)))
    ops = _struct(btf, "ops")
    anon = ops.members[-1]
    assert anon.name == ""
    assert isinstance(btf[anon.type], Union)
    assert ops.member("missing") is None


def test_enums_signed_unsigned_and_64_bit(btf: BtfSpec) -> None:
    assert _named(btf, "color", BtfKind.ENUM) == Enum(
        "color", 4, (EnumValue("RED", 0), EnumValue("GREEN", 5), EnumValue("BLUE", 6)))
    delta = _named(btf, "delta", BtfKind.ENUM)
    assert isinstance(delta, Enum)
    assert delta.signed
    assert [v.value for v in delta.values] == [-1, 0, 1]
    assert _named(btf, "big", BtfKind.ENUM64) == Enum64(
        "big", 8, (EnumValue("SMALL", 1), EnumValue("HUGE", 0x123456789A)))
    assert _named(btf, "sbig", BtfKind.ENUM64) == Enum64(
        "sbig", 8, (EnumValue("NEG_HUGE", -0x100000000), EnumValue("POS", 2)), signed=True)


def test_typedef_chain_resolves_to_the_int(btf: BtfSpec) -> None:
    daddr = btf.find_one("daddr_t")
    chain = []
    t = btf[daddr]
    while isinstance(t, Typedef):
        chain.append(t.name)
        t = btf[t.type]
    assert chain == ["daddr_t", "addr_t", "u32_t"]
    assert t == Int("unsigned int", 4, BtfIntEncoding.NONE, 32)
    assert btf.resolve(daddr) == btf.find_one("unsigned int")
    assert btf.size_of(daddr) == 4


def test_qualifiers_resolve_through(btf: BtfSpec) -> None:
    var = _named(btf, "config_limit", BtfKind.VAR)
    assert isinstance(var, Var)
    assert btf.format(var.type) == "const volatile __u32"
    assert btf.resolve(var.type) == btf.find_one("unsigned int")
    assert btf.size_of(btf.find_one("config_limit")) == 4  # a Var sizes as its type


@pytest.mark.parametrize(("name", "kind", "size"), [
    ("flow_key", BtfKind.STRUCT, 20), ("ops", BtfKind.STRUCT, 200),
    ("__sk_buff", BtfKind.STRUCT, 192), ("addr", BtfKind.UNION, 16),
    ("color", BtfKind.ENUM, 4), ("big", BtfKind.ENUM64, 8), ("handler_fn", BtfKind.TYPEDEF, 8),
    ("long double", BtfKind.FLOAT, 8), ("_Bool", BtfKind.INT, 1), ("addrs", BtfKind.VAR, 64),
    ("banner", BtfKind.VAR, 6), ("tagged", BtfKind.STRUCT, 16),
])
def test_size_of(btf: BtfSpec, name: str, kind: BtfKind, size: int) -> None:
    assert btf.size_of(btf.find_one(name, kind)) == size


def test_arrays_multiply_out(btf: BtfSpec) -> None:
    grid = _struct(btf, "ops").member("grid")
    assert grid is not None
    outer = btf[grid.type]
    assert isinstance(outer, Array)
    assert outer.nelems == 3
    inner = btf[outer.elem]
    assert isinstance(inner, Array)
    assert inner.nelems == 4
    assert btf[inner.index] == Int("__ARRAY_SIZE_TYPE__", 4, BtfIntEncoding.NONE, 32)
    assert btf.size_of(grid.type) == 48


def test_function_pointers(btf: BtfSpec) -> None:
    handler = _named(btf, "handler_fn", BtfKind.TYPEDEF)
    assert isinstance(handler, Typedef)
    ptr = btf[handler.type]
    assert isinstance(ptr, Ptr)
    proto = btf[ptr.type]
    assert isinstance(proto, FuncProto)
    assert not proto.variadic
    assert [p.name for p in proto.params] == ["", "", ""]
    assert btf[proto.ret] == Int("int", 4, BtfIntEncoding.SIGNED, 32)
    done = _struct(btf, "ops").member("done")
    assert done is not None
    done_ptr = btf[done.type]
    assert isinstance(done_ptr, Ptr)
    done_proto = btf[done_ptr.type]
    assert isinstance(done_proto, FuncProto)
    assert done_proto.variadic
    assert done_proto.ret == 0
    assert len(done_proto.params) == 1


def test_forward_declarations(btf: BtfSpec) -> None:
    assert _named(btf, "opaque", BtfKind.FWD) == Fwd("opaque")
    assert _named(btf, "opaque_u", BtfKind.FWD) == Fwd("opaque_u", union=True)
    with pytest.raises(BtfError, match="fwd has no size"):
        btf.size_of(btf.find_one("opaque"))


def test_floats(btf: BtfSpec) -> None:
    assert [_named(btf, n, BtfKind.FLOAT) for n in ("float", "double", "long double")] == [
        Float("float", 4), Float("double", 8), Float("long double", 8)]


def test_decl_and_type_tags(btf: BtfSpec) -> None:
    tagged = btf.find_one("tagged", BtfKind.STRUCT)
    var = btf.find_one("tagged_var", BtfKind.VAR)
    assert _named(btf, "struct_tag", BtfKind.DECL_TAG) == DeclTag("struct_tag", tagged, -1)
    assert _named(btf, "member_tag", BtfKind.DECL_TAG) == DeclTag("member_tag", tagged, 0)
    assert _named(btf, "var_tag", BtfKind.DECL_TAG) == DeclTag("var_tag", var, -1)
    tag = btf.find_one("user", BtfKind.TYPE_TAG)
    assert btf[tag] == TypeTag("user", btf.find_one("int", BtfKind.INT))
    uptr = _struct(btf, "tagged").member("uptr")
    assert uptr is not None
    assert btf[uptr.type] == Ptr("", tag)
    assert btf.resolve(tag) == btf.find_one("int", BtfKind.INT)


def test_datasecs_and_linkage(btf: BtfSpec) -> None:
    names = {btf[i].name for i in range(len(btf)) if isinstance(btf[i], Datasec)}
    assert names == {".bss", ".data", ".rodata", ".kconfig", ".ksyms", "license"}
    bss = _named(btf, ".bss", BtfKind.DATASEC)
    assert isinstance(bss, Datasec)
    static = btf.find_one("static_counter")
    # clang fills in offsets only for static variables; globals are left at 0 for the loader.
    assert VarSecinfo(static, 88, 4) in bss.vars
    assert bss.size == 0
    assert btf[static] == Var("static_counter", btf.find_one("int", BtfKind.INT),
                              BtfVarLinkage.STATIC)
    kconfig = _named(btf, "LINUX_KERNEL_VERSION", BtfKind.VAR)
    assert isinstance(kconfig, Var)
    assert kconfig.linkage == BtfVarLinkage.GLOBAL_EXTERN
    ksyms = _named(btf, ".ksyms", BtfKind.DATASEC)
    assert isinstance(ksyms, Datasec)
    kfuncs = [btf[v.type] for v in ksyms.vars]
    assert all(isinstance(f, Func) and f.linkage == BtfFuncLinkage.EXTERN for f in kfuncs)
    prog = _named(btf, "types_prog", BtfKind.FUNC)
    assert isinstance(prog, Func)
    assert prog.linkage == BtfFuncLinkage.GLOBAL


def test_find(btf: BtfSpec) -> None:
    assert btf.find("flow_key") == (btf.find_one("flow_key"),)
    assert btf.find("flow_key", BtfKind.UNION) == ()
    assert btf.find("no_such_type") == ()
    with pytest.raises(BtfError, match="no types named 'no_such_type'"):
        btf.find_one("no_such_type")


def test_find_one_refuses_ambiguity() -> None:
    b = Builder()
    i = b.int_()
    b.struct("x", 4, [("a", i, 0)])
    b.struct("x", 4, [("b", i, 0)])
    btf = BtfSpec.from_bytes(b.build())
    assert btf.find("x") == (2, 3)
    with pytest.raises(BtfError, match=r"2 \(2, 3\) types named struct 'x'"):
        btf.find_one("x", BtfKind.STRUCT)


def test_lookups_out_of_range(btf: BtfSpec) -> None:
    for bad in (-1, len(btf)):
        with pytest.raises(BtfError, match="no such type") as info:
            btf[bad]
        assert info.value.type_id == bad
        with pytest.raises(BtfError, match="no such type"):
            btf.resolve(bad)


@pytest.mark.parametrize("what", ["void", "func", "func_proto"])
def test_sizeless_kinds(btf: BtfSpec, what: str) -> None:
    func = btf[btf.find_one("types_prog")]
    assert isinstance(func, Func)
    type_id = {"void": 0, "func": btf.find_one("types_prog"), "func_proto": func.proto}[what]
    with pytest.raises(BtfError, match=f"{what} has no size"):
        btf.size_of(type_id)


def test_int_signedness(btf: BtfSpec) -> None:
    char = _named(btf, "char", BtfKind.INT)
    assert isinstance(char, Int)
    assert char.signed
    assert not Int("unsigned int", 4, BtfIntEncoding.NONE, 32).signed
