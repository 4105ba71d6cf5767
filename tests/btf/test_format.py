"""The C-like printer: declarator rules on real and hand-made types, one-line summaries."""

from __future__ import annotations

import pytest

from tcemu.bpf.btf import BtfError, BtfKind, BtfSpec
from tcemu.bpf.btf.format import format_type
from tcemu.bpf.btf.types import Struct, Var
from tcemu.bpf.btf.wire import BtfKind as K
from tests.btf.builder import Builder
from tests.btf.objects import spec

OPS_MEMBERS = {
    "handle": "handler_fn handle",
    "done": "void (*done)(int, ...)",
    "name": "const char *name",
    "counter": "volatile int counter",
    "out": "int *restrict out",
    "priv": "struct opaque *priv",
    "upriv": "union opaque_u *upriv",
    "wide": "long double wide",
    "color": "enum color color",
    "big": "enum big big",
    "enabled": "_Bool enabled",
    "label": "char label[8]",
    "grid": "int grid[3][4]",
    "addr": "union addr addr",
    "point": "struct {...} point",
    "": "union {...}",
}


@pytest.mark.parametrize(("member", "text"), OPS_MEMBERS.items())
def test_struct_ops_members(member: str, text: str) -> None:
    btf = spec("types")
    ops = btf[btf.find_one("ops", BtfKind.STRUCT)]
    assert isinstance(ops, Struct)
    m = ops.member(member)
    assert m is not None
    assert btf.format_decl(m.type, m.name) == text


@pytest.mark.parametrize(("name", "kind", "text"), [
    ("handler_fn", BtfKind.TYPEDEF, "handler_fn"),
    ("types_prog", BtfKind.FUNC, "int types_prog(struct __sk_buff *skb)"),
    ("bpf_rcu_read_lock", BtfKind.FUNC, "extern void bpf_rcu_read_lock(void)"),
    ("static_counter", BtfKind.VAR, "static int static_counter"),
    ("LINUX_KERNEL_VERSION", BtfKind.VAR, "extern unsigned int LINUX_KERNEL_VERSION"),
    ("config_limit", BtfKind.VAR, "const volatile __u32 config_limit"),
    ("banner", BtfKind.VAR, "const char banner[6]"),
    (".bss", BtfKind.DATASEC, 'SEC(".bss")'),
    ("member_tag", BtfKind.DECL_TAG,
     '__attribute__((btf_decl_tag("member_tag"))) on struct tagged (component 0)'),
])
def test_named_types(name: str, kind: BtfKind, text: str) -> None:
    btf = spec("types")
    assert btf.format(btf.find_one(name, kind)) == text


def test_static_function() -> None:
    btf = spec("funcs")
    assert btf.format(btf.find_one("mix")) == "static __u32 mix(__u32 x, __u32 y)"


def test_map_definition_members() -> None:
    btf = spec("maps")
    summary = btf.summary(btf.find_one("inner", BtfKind.STRUCT))
    assert summary == ("struct inner { int (*type)[2]; int (*max_entries)[2]; __u32 *key; "
                       "__u64 *value; }")
    jumps = btf[btf.find_one("jumps", BtfKind.VAR)]
    assert isinstance(jumps, Var)
    assert btf.summary(jumps.type) == ("struct { int (*type)[3]; int (*max_entries)[3]; "
                                       "int (*key_size)[4]; "
                                       "int (*values[0])(struct __sk_buff *); }")


def test_summaries() -> None:
    btf = spec("types")
    key = btf.find_one("flow_key", BtfKind.STRUCT)
    assert btf.summary(key, max_items=100) == (
        "struct flow_key { addr_t saddr; daddr_t daddr; unsigned short sport; "
        "unsigned short dport; unsigned char proto:4; unsigned char flags:3; "
        "unsigned char valid:1; unsigned int hash:20; int signed_bits:7; }")
    assert btf.summary(key, max_items=2) == "struct flow_key { addr_t saddr; daddr_t daddr; ... }"
    assert btf.summary(btf.find_one("delta")) == "enum delta { DOWN = -1, STILL = 0, UP = 1 }"
    assert btf.summary(btf.find_one(".rodata")) == (
        'SEC(".rodata") { const volatile __u32 config_limit; /* +0 */ '
        "const char banner[6]; /* +0 */ }")
    assert btf.summary(btf.find_one("opaque")) == "struct opaque"  # not an aggregate: plain


def _declarators() -> tuple[Builder, dict[str, int]]:
    b = Builder()
    i = b.int_()
    c = b.int_("char", 1, 8, 2)
    arr4 = b.array(i, i, 4)
    ids = {
        "int *const": b.ref(K.CONST, b.ref(K.PTR, i)),
        "const int (*)[4]": b.ref(K.PTR, b.ref(K.CONST, arr4)),
        "int (*(void))[4]": b.proto(b.ref(K.PTR, arr4), []),
        "char **": b.ref(K.PTR, b.ref(K.PTR, c)),
        "void (**)(void)": b.ref(K.PTR, b.ref(K.PTR, b.proto(0, []))),
        "int (*[2])(char, ...)": b.array(b.ref(K.PTR, b.proto(i, [("", c), ("", 0)])), i, 2),
        "void *volatile *": b.ref(K.PTR, b.ref(K.VOLATILE, b.ref(K.PTR, 0))),
        "int (*const)[4]": b.ref(K.CONST, b.ref(K.PTR, arr4)),
        "struct {...}": b.struct("", 4, [("a", i, 0)]),
        "enum {...}": b.enum("", [("A", 1)]),
        "__attribute__((user)) int *": b.ref(K.PTR, b.add(K.TYPE_TAG, "user", ref=i,
                                                        kflag=True)),
    }
    return b, ids


@pytest.mark.parametrize("text", list(_declarators()[1]))
def test_declarators(text: str) -> None:
    b, ids = _declarators()
    btf = BtfSpec.from_bytes(b.build())
    assert btf.format(ids[text]) == text


def test_function_returning_pointer_to_array_declares_right() -> None:
    b, ids = _declarators()
    btf = BtfSpec.from_bytes(b.build())
    assert btf.format_decl(ids["int (*(void))[4]"], "f") == "int (*f(void))[4]"


def test_format_out_of_range() -> None:
    btf = spec("types")
    with pytest.raises(BtfError, match="no such type"):
        format_type(btf.types, len(btf))
