"""``Program.test_run`` against the kernel's ``BPF_PROG_TEST_RUN``: the skb it builds, the
``struct __sk_buff`` accesses (narrow loads included), ctx_in/ctx_out, the errnos, the
checksum-complete check and the packet helpers, on both tiers."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcemu.bpf import Program, assemble
from tcemu.bpf.testrun import TestRunError
from tcemu.bpf.uapi import BpfProgType
from tcemu.bpf.vm import Tier
from tcemu.errors import KernelError, ValidationError
from tcemu.kernel import prog_load, test_run
from tcemu.skb import SKB_FIELDS, check_ctx_access

pytestmark = pytest.mark.kernel
TIERS: list[Tier] = ["interp", "jit"]
ETH = bytes.fromhex("020000000002" "020000000001")


def _ipv4_udp(payload: bytes = b"hello", dst: bytes = ETH[:6]) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 7, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    csum = 0
    for i in range(0, 20, 2):
        csum += int.from_bytes(ip[i:i + 2], "big")
    csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
    ip = ip[:10] + csum.to_bytes(2, "big") + ip[12:]
    udp = struct.pack("!HHHH", 1234, 53, 8 + len(payload), 0) + payload
    return dst + ETH[6:] + b"\x08\x00" + ip + udp


PACKETS = {
    "udp": _ipv4_udp(),
    "broadcast": _ipv4_udp(dst=b"\xff" * 6),
    "multicast": _ipv4_udp(dst=bytes.fromhex("01005e000001")),
    "zero-dst": _ipv4_udp(dst=bytes(6)),
    "arp": ETH + b"\x08\x06" + bytes(28),
    "802.3": ETH + b"\x00\x30" + b"\xff\xff" + bytes(30),
    "802.2": ETH + b"\x00\x30" + b"\xaa\xaa" + bytes(30),
    "ipv6": ETH + b"\x86\xdd" + bytes(40),
}


def _kernel(prog: Program, data: bytes, ctx: bytes | None = None,
            flags: int = 0) -> tuple[int, bytes, bytes] | int:
    with prog_load(prog.to_bytes(), prog_type=int(prog.prog_type)) as fd:
        try:
            r = test_run(fd.fd, data, ctx=ctx, flags=flags)
        except KernelError as err:
            return err.errno
    return r.retval, r.data_out, r.ctx_out


def _ours(prog: Program, data: bytes, ctx: bytes | None, tier: Tier,
          flags: int = 0) -> tuple[int, bytes, bytes] | int:
    try:
        r = prog.test_run(data, ctx, flags=flags, tier=tier)
    except TestRunError as err:
        return err.errno
    return r.retval, r.data_out, r.ctx_out


def _same(prog: Program, data: bytes, ctx: bytes | None = None, flags: int = 0) -> None:
    expected = _kernel(prog, data, ctx, flags)
    for tier in TIERS:
        assert _ours(prog, data, ctx, tier, flags) == expected, (tier, prog.disasm())


def _reads() -> Iterator[tuple[int, int]]:
    """Every (offset, size) load the kernel accepts for SCHED_CLS, except sk."""
    for fld in SKB_FIELDS:
        if fld.kind == "sk":
            continue
        for size in (1, 2, 4, 8):
            for off in range(fld.offset, fld.offset + fld.size, size):
                if check_ctx_access(off, size, False, BpfProgType.SCHED_CLS) is not None:
                    yield off, size


def _width(size: int) -> str:
    return {1: "u8", 2: "u16", 4: "u32", 8: "u64"}[size]


CTX = bytearray(192)
struct.pack_into("<IIII", CTX, 8, 0xA1B2C3D4, 0, 0, 0)
struct.pack_into("<I", CTX, 32, 0x01020304)        # priority
struct.pack_into("<I", CTX, 36, 7)                 # ingress_ifindex
CTX[48:68] = bytes(range(0x30, 0x44))              # cb[]
struct.pack_into("<Q", CTX, 152, 0x1122334455667788)


@pytest.mark.parametrize(("off", "size"), list(_reads()), ids=str)
def test_every_ctx_read(off: int, size: int) -> None:
    text = f"r0 = *({_width(size)} *)(r1 +{off})\n"
    if off in (76, 80, 140):  # packet pointers: report their distance from data instead
        text = f"r2 = *(u32 *)(r1 +76)\n{text}r0 -= r2\n"
    prog = assemble(text + "exit")
    for name in ("udp", "broadcast", "802.3"):
        _same(prog, PACKETS[name], bytes(CTX))


@pytest.mark.parametrize(("off", "size"), [(78, 4), (76, 2), (168, 4),
                                           (181, 1), (88, 4), (144, 8), (52, 8), (21, 4)])
def test_invalid_ctx_reads_are_rejected_by_both(off: int, size: int) -> None:
    text = f"r0 = *({_width(size)} *)(r1 +{off})\nexit"
    prog = assemble(text)
    with pytest.raises(KernelError) as kernel:
        prog_load(prog.to_bytes()).close()
    assert f"invalid bpf_context access off={off} size={size}" in kernel.value.log
    with pytest.raises(ValidationError, match=f"off={off} size={size}"):
        prog.test_run(PACKETS["udp"])


@pytest.mark.parametrize("name", list(PACKETS))
def test_skb_fields_per_packet(name: str) -> None:
    # pkt_type (4), protocol (16), len (0) and wire_len (160), folded into r0.
    prog = assemble("""
        r0 = *(u32 *)(r1 +4)
        r2 = *(u32 *)(r1 +16)
        r2 <<= 8
        r0 |= r2
        r2 = *(u32 *)(r1 +0)
        r2 <<= 32
        r0 |= r2
        r2 = *(u32 *)(r1 +160)
        r0 ^= r2
        exit
    """)
    _same(prog, PACKETS[name])


WRITES = """
    r2 = 0x11223344
    *(u32 *)(r1 +8) = r2        ; mark
    *(u32 *)(r1 +32) = r2       ; priority
    *(u32 *)(r1 +44) = r2       ; tc_index (u16)
    *(u32 *)(r1 +72) = r2       ; tc_classid (u16)
    *(u32 *)(r1 +12) = r2       ; queue_mapping
    *(u16 *)(r1 +50) = r2       ; cb[0] bytes 2..3
    *(u8 *)(r1 +60) = r2        ; cb[3] byte 0
    r3 = 0x1000000000000001
    *(u64 *)(r1 +152) = r3      ; tstamp
    r0 = *(u32 *)(r1 +44)
    r3 = *(u32 *)(r1 +72)
    r3 <<= 16
    r0 |= r3
    r3 = *(u32 *)(r1 +12)
    r3 <<= 32
    r0 |= r3
    *(u32 *)(r1 +64) = r0       ; tc_index/classid/queue_mapping are not in ctx_out: cb[4]
    exit
"""


def test_ctx_writes_and_ctx_out() -> None:
    _same(assemble(WRITES), PACKETS["udp"], bytes(CTX))


@pytest.mark.parametrize(("data", "ctx"), [
    (bytes(13), None),
    (bytes(3713), None),
    (ETH + b"\x08\x00" + bytes(19), None),
    (ETH + b"\x86\xdd" + bytes(39), None),
    (PACKETS["udp"], bytes(193)),
    (PACKETS["udp"], bytes(192) + b"\x01"),
    (PACKETS["udp"], bytes(4) + b"\x01" + bytes(187)),        # pkt_type may not be set
    (PACKETS["udp"], bytes(44) + b"\x01" + bytes(147)),       # tc_index may not be set
    (PACKETS["udp"], bytes(40) + b"\x07" + bytes(151)),       # ifindex 7 does not exist
    (PACKETS["udp"], bytes(160) + b"\x05" + bytes(31)),       # wire_len < len
])
def test_input_errors(data: bytes, ctx: bytes | None) -> None:
    _same(assemble("r0 = 1\nexit"), data, ctx)


NAT = """
    r6 = r1
    r2 = 0x0200000a             ; new source address 10.0.0.2 (network order in memory)
    *(u32 *)(r10 -4) = r2
    r1 = r6
    r2 = 26                     ; IPv4 source address
    r3 = r10
    r3 += -4
    r4 = 4
    r5 = {store_flags}
    call bpf_skb_store_bytes
    r1 = r6
    r2 = 24                     ; IPv4 header checksum
    r3 = 0x0100000a
    r4 = 0x0200000a
    r5 = 4
    call bpf_l3_csum_replace
    r1 = r6
    r2 = 40                     ; UDP checksum
    r3 = 0x0100000a
    r4 = 0x0200000a
    r5 = {l4_flags}
    call bpf_l4_csum_replace
    exit
"""


@pytest.mark.parametrize(("store_flags", "l4_flags"), [(0, 0x14), (0, 0x04), (1, 0x14),
                                                      (0, 0x34), (3, 0x14), (8, 0x14)])
@pytest.mark.parametrize("flags", [0, 4])
def test_nat_checksums(store_flags: int, l4_flags: int, flags: int) -> None:
    prog = assemble(NAT.format(store_flags=store_flags, l4_flags=l4_flags))
    packet = bytearray(_ipv4_udp())
    packet[40:42] = b"\x12\x34"   # a non-zero UDP checksum to update
    _same(prog, bytes(packet), None, flags)


def test_socket_filter_sees_l3_and_returns_zeroed_l2() -> None:
    prog = Program(assemble("r6 = r1\nr0 = *(u8 *)skb[0]\nr2 = *(u32 *)(r6 +0)\n"
                            "r2 <<= 8\nr0 |= r2\nexit").insns,
                   prog_type=BpfProgType.SOCKET_FILTER)
    _same(prog, PACKETS["udp"])


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=34, max_size=200), st.integers(0, 0xFFFF))
def test_random_packets_through_field_reads(body: bytes, ethertype: int) -> None:
    data = body[:12] + ethertype.to_bytes(2, "big") + body[14:]
    prog = assemble("""
        r0 = *(u16 *)(r1 +16)
        r2 = *(u8 *)(r1 +4)
        r0 += r2
        r2 = *(u16 *)(r1 +0)
        r0 += r2
        exit
    """)
    _same(prog, data)


def _printk(fmt: bytes, args: tuple[int, int, int]) -> Program:
    """A program that calls bpf_trace_printk(fmt, len, a1, a2, a3) and returns its result."""
    padded = fmt + bytes(-len(fmt) % 8)
    lines = ["r6 = r1"]
    for i in range(0, len(padded), 8):
        word = int.from_bytes(padded[i:i + 8], "little")
        lines += [f"r2 = {word:#x} ll", f"*(u64 *)(r10 -{len(padded) - i}) = r2"]
    lines += ["r1 = r10", f"r1 += -{len(padded)}", f"r2 = {len(fmt)}",
              f"r3 = {args[0]:#x} ll", f"r4 = {args[1]:#x} ll", f"r5 = {args[2]:#x} ll",
              "call bpf_trace_printk", "exit"]
    return assemble("\n".join(lines))


@pytest.mark.parametrize("fmt", [
    b"hello\n\0", b"%llx|%08x|%-4u|\0", b"%d %i %u\0", b"%x %X %lx\0", b"%5d|%-5d|%05d\0",
    b"%+d % d\0", b"%c%c%c\0", b"100%%\0", b"%5.2d\0", b"%f\0", b"%d %d %d %d\0",
    b"no nul", b"tab\there\0", b"bell\a\0", b"%lld %llu\0", b"%pK\0", b"%px\0",
])
def test_trace_printk_return_values(fmt: bytes) -> None:
    _same(_printk(fmt, (0xABC, 0x1F, 7)), PACKETS["udp"])


def _stack_bytes(data: bytes, top: int) -> list[str]:
    """Instructions writing ``data`` (padded to 8) at r10-top onwards."""
    padded = data + bytes(-len(data) % 8)
    out = []
    for i in range(0, len(padded), 8):
        word = int.from_bytes(padded[i:i + 8], "little")
        out += [f"r2 = {word:#x} ll", f"*(u64 *)(r10 -{top - i}) = r2"]
    return out


@pytest.mark.parametrize(("text", "helper", "flags"), [
    (b"12345", "bpf_strtol", 0), (b"-42xyz", "bpf_strtol", 10), (b"0x1f", "bpf_strtol", 0),
    (b"0x1f", "bpf_strtoul", 16), (b"  077", "bpf_strtoul", 0), (b"-5", "bpf_strtoul", 0),
    (b"zzz", "bpf_strtol", 10), (b"99999999999999999999", "bpf_strtoul", 10),
    (b"12", "bpf_strtol", 3), (b"123", "bpf_strtol", 64),
])
def test_strtol_strtoul(text: bytes, helper: str, flags: int) -> None:
    lines = ["r6 = r1", *_stack_bytes(text + b"\0", 32), "r2 = 0", "*(u64 *)(r10 -40) = r2",
             "r1 = r10", "r1 += -32", f"r2 = {len(text) + 1}", f"r3 = {flags}", "r4 = r10",
             "r4 += -40", f"call {helper}", "r1 = *(u64 *)(r10 -40)", "r1 <<= 8", "r0 ^= r1",
             "exit"]
    _same(assemble("\n".join(lines)), PACKETS["udp"])


@pytest.mark.parametrize("fmt", [b"%+u|% x|%+x|% u\0", b"%p\0", b"%pa\0", b"%ks\0",
                                 b"%pks\0", b"%s\0", b"%pI4\0", b"%-8s|\0"])
def test_trace_printk_review_cases(fmt: bytes) -> None:
    # Arguments 0 (NULL) for the pointer forms: the kernel prints "" / 0.0.0.0.
    _same(_printk(fmt, (0, 0, 0)), PACKETS["udp"])
