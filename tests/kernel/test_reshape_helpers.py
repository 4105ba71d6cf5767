"""Packet-reshaping and metadata helpers against the kernel (BPF_PROG_TEST_RUN), both tiers:
VLAN push/pop, change_tail/head/proto, adjust_room, ecn_set_ce, set_tstamp, check_mtu and
the tunnel key/option helpers.  Each program folds helper results and skb fields into r0
or cb[], so retval, data_out and ctx_out together expose every effect."""

from __future__ import annotations

import pytest

from tcemu.bpf import assemble
from tests.kernel.test_testrun import PACKETS, _ipv4_udp, _same

pytestmark = pytest.mark.kernel

# Save r0 into cb[slot] after a helper call; r6 keeps the context.
def _call(helper: str, *args: str, slot: int) -> list[str]:
    regs = [f"r{i + 2} = {a}" for i, a in enumerate(args)]
    return ["r1 = r6", *regs, f"call {helper}", f"*(u32 *)(r6 +{48 + 4 * slot}) = r0"]


def _fields() -> list[str]:
    """r0 = vlan_present | vlan_tci << 8 | vlan_proto << 24 | protocol << 40 | len << 56."""
    return ["r0 = *(u32 *)(r6 +20)", "r2 = *(u32 *)(r6 +24)", "r2 <<= 8", "r0 |= r2",
            "r2 = *(u32 *)(r6 +28)", "r2 <<= 24", "r0 |= r2", "r2 = *(u32 *)(r6 +16)",
            "r2 <<= 40", "r0 |= r2", "r2 = *(u32 *)(r6 +0)", "r2 <<= 56", "r0 ^= r2",
            "r2 = r0", "r2 >>= 32", "r0 ^= r2"]


def _prog(*steps: list[str]) -> str:
    body = [line for step in steps for line in step]
    return "\n".join(["r6 = r1", *body, *_fields(), "exit"])


VLAN_CASES = {
    "push": _prog(_call("bpf_skb_vlan_push", "0x81", "0x3005", slot=0)),
    "push-push": _prog(_call("bpf_skb_vlan_push", "0x81", "0x3005", slot=0),
                       _call("bpf_skb_vlan_push", "0xa888", "7", slot=1)),
    "push-bad-proto": _prog(_call("bpf_skb_vlan_push", "0x1234", "0xffff", slot=0)),
    "push-push-pop": _prog(_call("bpf_skb_vlan_push", "0x81", "0x3005", slot=0),
                           _call("bpf_skb_vlan_push", "0xa888", "7", slot=1),
                           _call("bpf_skb_vlan_pop", slot=2)),
    "pop-untagged": _prog(_call("bpf_skb_vlan_pop", slot=0)),
    "pop-twice": _prog(_call("bpf_skb_vlan_push", "0x81", "5", slot=0),
                       _call("bpf_skb_vlan_pop", slot=1), _call("bpf_skb_vlan_pop", slot=2)),
}
TAGGED = PACKETS["udp"][:12] + bytes.fromhex("810000c8") + PACKETS["udp"][12:]
QINQ = PACKETS["udp"][:12] + bytes.fromhex("88a8000581002064") + PACKETS["udp"][12:]


@pytest.mark.parametrize("name", list(VLAN_CASES))
@pytest.mark.parametrize("packet", [PACKETS["udp"], TAGGED, QINQ], ids=["plain", "8021q", "qinq"])
@pytest.mark.parametrize("flags", [0, 4])
def test_vlan(name: str, packet: bytes, flags: int) -> None:
    _same(assemble(VLAN_CASES[name]), packet, None, flags)


RESHAPE_CASES = {
    "tail-grow": _prog(_call("bpf_skb_change_tail", "100", "0", slot=0)),
    "tail-trim": _prog(_call("bpf_skb_change_tail", "20", "0", slot=0)),
    "tail-too-short": _prog(_call("bpf_skb_change_tail", "13", "0", slot=0)),
    "tail-flags": _prog(_call("bpf_skb_change_tail", "60", "1", slot=0)),
    "head": _prog(_call("bpf_skb_change_head", "14", "0", slot=0)),
    "head-flags": _prog(_call("bpf_skb_change_head", "4", "2", slot=0)),
    "proto-4to6": _prog(_call("bpf_skb_change_proto", "0xdd86", "0", slot=0)),
    "proto-same": _prog(_call("bpf_skb_change_proto", "0x8", "0", slot=0)),
    "room-net-grow": _prog(_call("bpf_skb_adjust_room", "8", "0", "0", slot=0)),
    "room-mac-grow": _prog(_call("bpf_skb_adjust_room", "16", "1", "0", slot=0)),
    "room-net-shrink": _prog(_call("bpf_skb_adjust_room", "-8", "0", "0", slot=0)),
    "room-too-big": _prog(_call("bpf_skb_adjust_room", "0x1000", "0", "0", slot=0)),
    "room-bad-mode": _prog(_call("bpf_skb_adjust_room", "4", "2", "0", slot=0)),
    "ecn": _prog(_call("bpf_skb_ecn_set_ce", slot=0)),
    "tstamp-real": _prog(_call("bpf_skb_set_tstamp", "123", "0", slot=0)),
    "tstamp-mono0": _prog(_call("bpf_skb_set_tstamp", "0", "1", slot=0)),
    "tstamp-mono": _prog(_call("bpf_skb_set_tstamp", "99", "1", slot=0)),
    "tstamp-bad": _prog(_call("bpf_skb_set_tstamp", "99", "3", slot=0)),
}


def _ecn(tos: int) -> bytes:
    data = bytearray(_ipv4_udp())
    data[15] = tos
    return bytes(data)


@pytest.mark.parametrize("name", list(RESHAPE_CASES))
@pytest.mark.parametrize("packet", [PACKETS["udp"], _ecn(1), _ecn(2), _ecn(3), PACKETS["arp"],
                                    PACKETS["ipv6"]],
                         ids=["udp", "ect1", "ect0", "ce", "arp", "ipv6"])
def test_reshape(name: str, packet: bytes) -> None:
    _same(assemble(RESHAPE_CASES[name]), packet)


MTU = """
    r6 = r1
    r2 = {mtu_in}
    *(u32 *)(r10 -4) = r2
    r1 = r6
    r2 = {ifindex}
    r3 = r10
    r3 += -4
    r4 = {diff}
    r5 = {flags}
    call bpf_check_mtu
    r2 = *(u32 *)(r10 -4)
    r2 <<= 8
    r0 ^= r2
    exit
"""


@pytest.mark.parametrize(("mtu_in", "ifindex", "diff", "flags"), [
    (0, 0, 0, 0), (0, 1, 0, 0), (0, 0, 70000, 0), (1500, 0, 0, 0), (65536, 0, 100, 0),
    (0, 0, 0, 1), (5, 0, 0, 1), (0, 99, 0, 0), (0, 0, 0, 2),
])
def test_check_mtu(mtu_in: int, ifindex: int, diff: int, flags: int) -> None:
    text = MTU.format(mtu_in=mtu_in, ifindex=ifindex, diff=diff, flags=flags)
    _same(assemble(text), PACKETS["udp"])


def _key(size: int, set_flags: int, get_flags: int, get_size: int) -> str:
    lines = ["r6 = r1"]
    # struct bpf_tunnel_key at r10-48: id 0x11223344, remote 10.0.0.2, tos 4, ttl 64,
    # label (v6 only), local 10.0.0.1 / 2001:db8::1
    values = {0: 0x11223344, 4: 0x0A000002, 8: 0, 12: 0, 16: 0, 20: 0x4004, 24: 0,
              28: 0x0A000001, 32: 0, 36: 0, 40: 0}
    if set_flags & 1:
        values.update({4: 0x0DB80120, 16: 0x01000000, 24: 0x12345, 28: 0x0DB80120,
                       40: 0x02000000})
    for off, value in values.items():
        lines.append(f"*(u32 *)(r10 -{48 - off}) = {value}")
    lines += _call("bpf_skb_set_tunnel_key", "r10", str(size), str(set_flags), slot=0)
    lines.insert(-3, "r2 += -48")
    lines += ["r2 = 0x11111111", *[f"*(u32 *)(r10 -{96 - off}) = r2" for off in range(0, 44, 4)]]
    lines += _call("bpf_skb_get_tunnel_key", "r10", str(get_size), str(get_flags), slot=1)
    lines.insert(-3, "r2 += -96")
    for off in range(0, 44, 8):
        lines += [f"r2 = *(u64 *)(r10 -{96 - off})" if off + 8 <= 44 else
                  f"r2 = *(u32 *)(r10 -{96 - off})", "r0 ^= r2", "r0 *= 31"]
    lines += ["r2 = r0", "r2 >>= 32", "r0 ^= r2", "exit"]
    return "\n".join(lines)


@pytest.mark.parametrize(("size", "set_flags", "get_flags", "get_size"), [
    (44, 0, 0, 44), (44, 0, 16, 44), (44, 4, 16, 44), (44, 2, 16, 44), (44, 8 | 16, 16, 44),
    (28, 0, 0, 28), (24, 0, 0, 24), (22, 0, 0, 22), (40, 0, 0, 44), (44, 0, 0, 8),
    (44, 1, 1, 44), (44, 1, 1 | 16, 44), (44, 1, 0, 44), (44, 0, 1, 44), (44, 32, 0, 44),
    (44, 0, 2, 44),
])
def test_tunnel_key(size: int, set_flags: int, get_flags: int, get_size: int) -> None:
    _same(assemble(_key(size, set_flags, get_flags, get_size)), PACKETS["udp"])


TUNNEL_OPT = """
    r6 = r1
    r2 = 0
    *(u64 *)(r10 -48) = r2
    *(u64 *)(r10 -40) = r2
    *(u64 *)(r10 -32) = r2
    *(u64 *)(r10 -24) = r2
    *(u64 *)(r10 -16) = r2
    *(u64 *)(r10 -8) = r2
    r2 = 0x0a000002
    *(u32 *)(r10 -44) = r2
    {set_key}
    r2 = 0x0102030405060708 ll
    *(u64 *)(r10 -64) = r2
    r1 = r6
    r2 = r10
    r2 += -64
    r3 = {opt_len}
    call bpf_skb_set_tunnel_opt
    *(u32 *)(r6 +48) = r0
    r2 = 0x5555555555555555 ll
    *(u64 *)(r10 -80) = r2
    *(u64 *)(r10 -72) = r2
    r1 = r6
    r2 = r10
    r2 += -80
    r3 = {get_len}
    call bpf_skb_get_tunnel_opt
    *(u32 *)(r6 +52) = r0
    r0 = *(u64 *)(r10 -80)
    r2 = *(u64 *)(r10 -72)
    r0 ^= r2
    exit
"""
SET_KEY = ("r1 = r6\nr2 = r10\nr2 += -48\nr3 = 44\nr4 = 0\ncall bpf_skb_set_tunnel_key\n"
           "*(u32 *)(r6 +56) = r0")


@pytest.mark.parametrize(("set_key", "opt_len", "get_len"), [
    (True, 8, 16), (True, 4, 16), (True, 8, 4), (True, 6, 16), (False, 8, 16),
])
def test_tunnel_options(set_key: bool, opt_len: int, get_len: int) -> None:
    text = TUNNEL_OPT.format(set_key=SET_KEY if set_key else "", opt_len=opt_len,
                             get_len=get_len)
    _same(assemble(text), PACKETS["udp"])


REVIEW_CASES = {
    "room-shrink-encap": _prog(_call("bpf_skb_adjust_room", "-4", "0", "2", slot=0)),
    "room-grow-decap": _prog(_call("bpf_skb_adjust_room", "8", "0", "128", slot=0)),
    "room-both-l3": _prog(_call("bpf_skb_adjust_room", "8", "0", "6", slot=0)),
    "room-encap-twice": _prog(_call("bpf_skb_adjust_room", "20", "1", "2", slot=0),
                              _call("bpf_skb_adjust_room", "20", "1", "2", slot=1)),
    "room-encap-v6": _prog(_call("bpf_skb_adjust_room", "40", "1", "4", slot=0)),
    "room-encap-then-tail": _prog(_call("bpf_skb_adjust_room", "20", "1", "2", slot=0),
                                  _call("bpf_skb_change_tail", "90", "0", slot=1)),
    "room-decap": _prog(_call("bpf_skb_adjust_room", "-20", "1", "256", slot=0)),
    "tail-trim-csum": _prog(_call("bpf_skb_change_tail", "40", "0", slot=0)),
    "tail-grow-csum-update": _prog(_call("bpf_skb_change_tail", "100", "0", slot=0),
                                   _call("bpf_csum_update", "0", slot=1)),
    "l4-mangled-zero-first": _prog(_call("bpf_l4_csum_replace", "40", "1", "2", "0x23",
                                         slot=0)),
    "tstamp-u32-type": _prog(_call("bpf_skb_set_tstamp", "5", "0x100000000", slot=0)),
    "head-huge": _prog(_call("bpf_skb_change_head", "0xfffffff0", "0", slot=0)),
    "relative-u32-start": ["r6 = r1", "*(u64 *)(r10 -8) = 0",
                           *_call("bpf_skb_load_bytes_relative", "0", "r10", "2",
                                  "0x100000000", slot=0)[:-2],
                           "r1 = r6", "r2 = 0", "r3 = r10", "r3 += -8", "r4 = 2",
                           "r5 = 0x100000000 ll", "call bpf_skb_load_bytes_relative",
                           "exit"],
}


@pytest.mark.parametrize("name", list(REVIEW_CASES))
@pytest.mark.parametrize("flags", [0, 4])
def test_review_cases(name: str, flags: int) -> None:
    prog = REVIEW_CASES[name]
    text = prog if isinstance(prog, str) else "\n".join(prog)
    packet = bytearray(_ipv4_udp())
    packet[40:42] = b"\x00\x00"  # UDP "no checksum" for the MARK_MANGLED_0 case
    _same(assemble(text), bytes(packet), None, flags)


@pytest.mark.parametrize("packet", [
    PACKETS["udp"][:12] + bytes.fromhex("81000005") + _ecn(1)[12:],   # ECN through a VLAN tag
    bytes.fromhex("020000000002020000000001") + b"\x81\x00" + bytes(2),  # 16-byte tagged
    bytes.fromhex("020000000002020000000001") + bytes.fromhex("88a800058100"),  # cut QinQ
])
@pytest.mark.parametrize("case", ["ecn", "pop"])
def test_vlan_edge_packets(packet: bytes, case: str) -> None:
    step = _call("bpf_skb_ecn_set_ce" if case == "ecn" else "bpf_skb_vlan_pop", slot=0)
    _same(assemble(_prog(step)), packet)


# Legacy loads relative to the headers after a helper moved them: the kernel's
# bpf_internal_load_pointer_neg_helper reads skb_network_header()/skb_mac_header() as they
# are at the load.  Each load's word goes to cb[1..4], mark or priority (ctx_out); a
# failed load ends the program with r0 = 0, which the kernel reports alike, so r0 = 1
# marks getting through.
def _header_loads() -> list[str]:
    lines = []
    for field, offset in zip((52, 56, 60, 64, 8, 32),
                             (-0x100000, -0x100000 + 8, -0x200000, -0x200000 + 10, 14, 2),
                             strict=True):
        lines += [f"r0 = *(u32 *)skb[{offset}]", f"*(u32 *)(r6 +{field}) = r0"]
    return [*lines, "r7 = 1"]


HEADER_LOAD_CASES = {
    "none": [],
    "change-head": _call("bpf_skb_change_head", "14", "0", slot=0),
    "room-net-grow": _call("bpf_skb_adjust_room", "8", "0", "0", slot=0),
    "room-mac-grow": _call("bpf_skb_adjust_room", "16", "1", "0", slot=0),
    "room-net-shrink": _call("bpf_skb_adjust_room", "-8", "0", "0", slot=0),
    "vlan-push": _call("bpf_skb_vlan_push", "0x81", "0x3005", slot=0),
    "proto-4to6": _call("bpf_skb_change_proto", "0xdd86", "0", slot=0),
    "tail-trim": _call("bpf_skb_change_tail", "20", "0", slot=0),
}


@pytest.mark.parametrize("name", list(HEADER_LOAD_CASES))
@pytest.mark.parametrize("packet", [PACKETS["udp"], TAGGED], ids=["plain", "8021q"])
def test_legacy_loads_after_the_headers_moved(name: str, packet: bytes) -> None:
    text = "\n".join(["r6 = r1", *HEADER_LOAD_CASES[name], *_header_loads(),
                      "r0 = r7", "exit"])
    _same(assemble(text), packet)
