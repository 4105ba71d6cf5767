"""BTF-defined maps: the definitions of maps.bpf.o, and malformed ones built by hand."""

from __future__ import annotations

import pytest

from tcemu.bpf.btf import BtfError, BtfKind, BtfMapDef, BtfSpec
from tcemu.bpf.btf.wire import BtfKind as K
from tcemu.bpf.uapi import BpfMapType as T
from tests.btf.builder import Builder
from tests.btf.objects import spec

BPF_F_NO_PREALLOC, BPF_F_NO_COMMON_LRU, LIBBPF_PIN_BY_NAME = 1, 2, 1


@pytest.fixture(scope="module")
def btf() -> BtfSpec:
    return spec("maps")


def test_map_names_in_btf_order(btf: BtfSpec) -> None:
    assert btf.map_names() == ("inner_a", "inner_b", "outer_array", "jumps", "counters",
                               "flows", "lru", "percpu", "routes", "pinned_sized",
                               "outer_hash", "bloom", "events")


# (name, type, key_size, value_size, max_entries, map_flags, pinning, map_extra)
EXPECTED = [
    ("counters", T.ARRAY, 4, 8, 16, 0, 0, 0),
    ("flows", T.HASH, 16, 16, 1024, 0, 0, 0),
    ("lru", T.LRU_HASH, 8, 16, 4096, BPF_F_NO_COMMON_LRU, 0, 0),
    ("percpu", T.PERCPU_ARRAY, 4, 16, 4, 0, 0, 0),
    ("routes", T.LPM_TRIE, 8, 4, 256, BPF_F_NO_PREALLOC, 0, 0),
    ("events", T.RINGBUF, 0, 0, 4096, 0, 0, 0),
    ("pinned_sized", T.HASH, 4, 12, 8, 0, LIBBPF_PIN_BY_NAME, 0),
    ("bloom", T.BLOOM_FILTER, 0, 4, 100, 0, 0, 3),
    ("inner_a", T.ARRAY, 4, 8, 2, 0, 0, 0),
    ("outer_array", T.ARRAY_OF_MAPS, 4, 0, 4, 0, 0, 0),
    ("outer_hash", T.HASH_OF_MAPS, 4, 0, 8, 0, 0, 0),
    ("jumps", T.PROG_ARRAY, 4, 0, 3, 0, 0, 0),
]


@pytest.mark.parametrize("row", EXPECTED, ids=[r[0] for r in EXPECTED])
def test_map_numbers(btf: BtfSpec, row: tuple[str, int, int, int, int, int, int, int]) -> None:
    name, *numbers = row
    d = btf.map_def(name)
    assert [d.type, d.key_size, d.value_size, d.max_entries, d.map_flags, d.pinning,
            d.map_extra] == numbers
    assert d.name == name
    assert d.numa_node == 0


def test_key_and_value_types_are_kept(btf: BtfSpec) -> None:
    flows = btf.map_def("flows")
    assert flows.key_type == btf.find_one("flow_key", BtfKind.STRUCT)
    assert flows.value_type == btf.find_one("flow_stats_t", BtfKind.TYPEDEF)  # not resolved
    sized = btf.map_def("pinned_sized")
    assert (sized.key_type, sized.value_type) == (None, None)


def test_map_in_map_inner_definitions(btf: BtfSpec) -> None:
    outer = btf.map_def("outer_array")
    assert outer.values_offset == 24
    assert outer.inner == BtfMapDef("outer_array.inner", T.ARRAY, 4, 8, 2,
                                    key_type=btf.find_one("__u32"),
                                    value_type=btf.find_one("__u64"))
    inner = btf.map_def("outer_hash").inner
    assert inner is not None
    assert (inner.name, inner.type, inner.key_size, inner.value_size, inner.max_entries) == \
        ("outer_hash.inner", T.HASH, 2, 16, 32)
    assert inner.value_type == btf.find_one("flow_key", BtfKind.STRUCT)


def test_prog_array_values(btf: BtfSpec) -> None:
    jumps = btf.map_def("jumps")
    assert jumps.values_offset == 24
    assert jumps.inner is None


def test_map_defs_covers_all(btf: BtfSpec) -> None:
    assert list(btf.map_defs()) == list(btf.map_names())


def test_unknown_map_variable(btf: BtfSpec) -> None:
    with pytest.raises(BtfError, match=r"parse map 'nope': no variable 'nope' in datasec"):
        btf.map_def("nope")
    assert spec("funcs").map_names() == ()


# --- hand-built definitions ------------------------------------------------------------


class MapBuilder(Builder):
    """Builder with libbpf's __uint/__type/__array encodings."""

    def __init__(self) -> None:
        super().__init__()
        self.int_id = self.int_()
        self.u32 = self.int_("unsigned int", encoding=0)
        self.members: list[tuple[str, int, int]] = []
        self.tail = 0  # bytes of initialised values past the last member

    def uint(self, name: str, value: int) -> None:
        arr = self.array(self.int_id, self.u32, value)
        self.members.append((name, self.ref(K.PTR, arr), len(self.members) * 64))

    def type_(self, name: str, target: int) -> None:
        self.members.append((name, self.ref(K.PTR, target), len(self.members) * 64))

    def values(self, target: int, nelems: int = 0) -> None:
        arr = self.array(self.ref(K.PTR, target), self.u32, nelems)
        self.members.append(("values", arr, len(self.members) * 64))
        self.tail += 8 * nelems

    def member(self, name: str, type_id: int) -> None:
        self.members.append((name, type_id, len(self.members) * 64))

    def definition(self) -> int:
        members, self.members, tail, self.tail = self.members, [], self.tail, 0
        return self.struct("", 8 * len(members) + tail, members)

    def finish(self, name: str = "m") -> BtfSpec:
        var = self.var(name, self.definition())
        self.datasec(".maps", [(var, 0, 8)])
        return BtfSpec.from_bytes(self.build())


def test_unknown_member_names_map_and_member() -> None:
    b = MapBuilder()
    b.uint("type", T.HASH)
    b.uint("max_entires", 4)
    with pytest.raises(BtfError, match=r"^parse map 'm': type \d+: member 'max_entires': "
                                       "unknown map attribute$") as info:
        b.finish().map_def("m")
    assert info.value.type_id is not None


def test_conflicting_key_size() -> None:
    b = MapBuilder()
    b.uint("key_size", 8)
    b.type_(key := "key", b.u32)
    with pytest.raises(BtfError, match=f"member '{key}': key_size 8 conflicts with "
                                       r"sizeof\(key\) = 4"):
        b.finish().map_def("m")


def test_agreeing_key_size_and_key() -> None:
    b = MapBuilder()
    b.uint("key_size", 4)
    b.type_("key", b.u32)
    assert b.finish().map_def("m").key_size == 4


def test_uint_must_be_pointer_to_array() -> None:
    b = MapBuilder()
    b.member("type", b.int_id)
    with pytest.raises(BtfError, match="member 'type': expected a pointer to an array"):
        b.finish().map_def("m")


def test_type_must_be_a_pointer() -> None:
    b = MapBuilder()
    b.member("value", b.u32)
    with pytest.raises(BtfError, match="member 'value': expected a pointer to the type"):
        b.finish().map_def("m")


def test_sizeless_value_type() -> None:
    b = MapBuilder()
    b.type_("value", b.add(K.FWD, "opaque"))
    with pytest.raises(BtfError, match="member 'value': fwd has no size"):
        b.finish().map_def("m")


def test_map_extra_as_a_one_value_enum() -> None:
    b = MapBuilder()
    b.uint("type", T.BLOOM_FILTER)
    b.member("map_extra", b.enum("", [("__unique_value0", 5)]))
    assert b.finish().map_def("m").map_extra == 5


def test_values_need_a_map_in_map_or_prog_array() -> None:
    b = MapBuilder()
    b.uint("type", T.HASH)
    b.values(b.struct("inner", 0, []))
    with pytest.raises(BtfError, match="member 'values': values of struct need a map-in-map"):
        b.finish().map_def("m")


def test_values_must_be_a_flexible_array() -> None:
    b = MapBuilder()
    b.uint("type", T.PROG_ARRAY)
    b.values(b.proto(b.int_id, []), nelems=2)
    with pytest.raises(BtfError, match="member 'values': expected a zero-length array"):
        b.finish().map_def("m")


def test_prog_array_values_are_functions() -> None:
    b = MapBuilder()
    b.uint("type", T.PROG_ARRAY)
    b.values(b.int_id)
    with pytest.raises(BtfError, match="values of int need"):
        b.finish().map_def("m")


def test_inner_map_cannot_nest() -> None:
    b = MapBuilder()
    b.uint("type", T.ARRAY_OF_MAPS)
    b.values(b.struct("leaf", 0, []))
    inner = b.definition()
    b.uint("type", T.ARRAY_OF_MAPS)
    b.values(inner)
    with pytest.raises(BtfError, match=r"parse map 'm.inner': .*cannot have values"):
        b.finish().map_def("m")


def test_definition_must_be_a_struct() -> None:
    b = Builder()
    i = b.int_()
    v = b.var("m", i)
    b.datasec(".maps", [(v, 0, 4)])
    with pytest.raises(BtfError, match=r"parse map 'm': .*the definition is a int, not a struct"):
        BtfSpec.from_bytes(b.build()).map_def("m")


def test_empty_definition_is_all_zero() -> None:
    b = MapBuilder()
    d = b.finish("empty").map_def("empty")
    assert d == BtfMapDef("empty", 0)
