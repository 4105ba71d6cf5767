"""New, realistic clang-compiled tc programs (``tests/testdata/hunt``) run through the
kernel's BPF_PROG_TEST_RUN and through tcemu on both tiers (``net/core/filter.c``,
``kernel/bpf/*.c``).

Each :class:`Hunt` is one program of an object run on a sequence of packets, each packet
optionally with a ``ctx_in`` and test-run flags.  Maps can be preloaded (the same bytes on
both sides, before the first packet).  After every packet the outcome (retval, data_out,
ctx_out or the errno) and every map must be equal, as in ``test_helpers_common``.  Programs
write what they observe into the ``res`` ARRAY of ``hunt.h`` so that the map comparison
sees it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tcemu.bpf import load_object
from tcemu.bpf.env import Env
from tcemu.bpf.testrun import TestRunError
from tcemu.bpf.verifier import VerifierError, verify
from tcemu.bpf.vm import Tier
from tcemu.errors import KernelError
from tcemu.kernel.syscall import prog_test_run as kernel_test_run
from tests.kernel import objects_oracle as ko
from tests.kernel.objects_oracle import (
    BpfFs,
    KernelObject,
    TcemuMaps,
    arp_request,
    ether,
    icmp_echo,
    ip4,
    ipv4,
    ipv6,
    load_with_bpftool,
    possible_cpus,
    remove_pins,
    tcemu_map_name,
    tcp4,
    udp4,
)
from tests.kernel.test_helpers_common import (
    MAC_A,
    MAC_B,
    TIERS,
    Outcome,
    _explain,
    bpffs_fixture,
)

pytestmark = pytest.mark.kernel

HUNT_DIR = Path(__file__).resolve().parents[1] / "testdata" / "hunt"
CHECKSUM_COMPLETE = 4


@dataclass(frozen=True)
class Run:
    """One BPF_PROG_TEST_RUN: the packet, an optional ctx_in and the flags."""

    packet: bytes
    ctx: bytes | None = None
    flags: int = 0


@dataclass(frozen=True)
class Hunt:
    obj: str
    prog: str
    runs: tuple[Run | bytes, ...]
    preload: tuple[tuple[str, bytes, bytes], ...] = ()   # (map name, key, value)
    # map name -> keys (hex) whose values are not compared (nondeterministic in the kernel)
    ignore: Mapping[str, frozenset[str]] = field(default_factory=dict)
    xfail: str = ""
    tiers: tuple[Tier, ...] = TIERS

    @property
    def path(self) -> Path:
        return HUNT_DIR / f"{self.obj}.bpf.o"


class _Side(TcemuMaps):
    """One tcemu load of the object, read the way ``KernelObject.read_all`` reads the kernel."""

    def __init__(self, path: Path, ncpus: int) -> None:
        super().__init__(load_object(path, env=Env(ncpus=ncpus, cpu=0)))


def _map_diff(kernel: object, ours: object) -> str:
    """The entries that differ (keyed maps), else both contents."""
    if isinstance(kernel, dict) and isinstance(ours, dict):
        keys = sorted(set(kernel) | set(ours))
        return "\n".join(f"  {k}: kernel {kernel.get(k)} tcemu {ours.get(k)}" for k in keys
                         if kernel.get(k) != ours.get(k))
    return f"kernel {kernel}\ntcemu  {ours}"


def _masked(state: object, keys: frozenset[str]) -> object:
    if isinstance(state, dict) and keys:
        return {k: ("?" if k in keys else v) for k, v in state.items()}
    return state


def assert_hunt_same(case: Hunt, fs: BpfFs) -> None:
    progs, maps = fs.fresh_dir(case.obj), fs.fresh_dir(case.obj + "_maps")
    load_with_bpftool(case.path, progs, maps)
    kobj = KernelObject.open(progs, maps)
    ncpus = possible_cpus()
    try:
        sides = {tier: _Side(case.path, ncpus) for tier in case.tiers}
        for name, key, value in case.preload:
            kobj.update(name, key, value)
            for side in sides.values():
                side.coll.maps[name].update(key, value)
        for step, item in enumerate(case.runs):
            run = item if isinstance(item, Run) else Run(item)
            affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {0})
            try:
                r = kernel_test_run(kobj.progs[case.prog], run.packet, ctx=run.ctx,
                                    flags=run.flags)
                kernel: Outcome = ("ok", r.retval, r.data_out.hex(), r.ctx_out.hex())
            except KernelError as err:
                kernel = ("errno", err.errno)
            finally:
                os.sched_setaffinity(0, affinity)
            kmaps = kobj.read_all()
            for tier, side in sides.items():
                prog = side.coll.programs[case.prog]
                try:
                    t = prog.test_run(run.packet, run.ctx, flags=run.flags, tier=tier)
                    ours: Outcome = ("ok", t.retval, t.data_out.hex(), t.ctx_out.hex())
                except TestRunError as err:
                    ours = ("errno", err.errno)
                where = f"{case.obj}:{case.prog} [{tier}] run {step}: {run.packet.hex()}"
                if ours != kernel:
                    pytest.fail(f"{where}\n{_explain(kernel, ours)}", pytrace=False)
                names = list(side.coll.maps)
                for kname in sorted(kmaps):
                    name = tcemu_map_name(kname, names)
                    skip = case.ignore.get(name, frozenset())
                    ours_map = side.read(name)
                    if _masked(ours_map, skip) != _masked(kmaps[kname], skip):
                        pytest.fail(f"{where}: map {name} differs\n"
                                    f"{_map_diff(kmaps[kname], ours_map)}", pytrace=False)
    finally:
        kobj.close()
        remove_pins(progs, maps)


# --- packets ---------------------------------------------------------------------------------


def ip6(src: str = "2001:db8::1", dst: str = "2001:db8::2", nexthdr: int = 17,
        payload: bytes = b"", *, tclass: int = 0, flow: int = 0) -> bytes:
    return ether(MAC_B, MAC_A, 0x86DD, ipv6(src, dst, nexthdr, payload, tclass=tclass,
                                             flow=flow))


def ext(nexthdr: int, body: bytes) -> bytes:
    """An IPv6 extension header (hop-by-hop/routing/dstopts) padded to 8-byte units."""
    raw = bytes([nexthdr, 0]) + body
    raw += bytes(-len(raw) % 8)
    return bytes([nexthdr, len(raw) // 8 - 1]) + raw[2:]


def udp6(sport: int = 1234, dport: int = 53, payload: bytes = b"v6data") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp6_echo(ident: int = 7, seq: int = 1, payload: bytes = b"ping6") -> bytes:
    return struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload


def ip4_frame(proto: int, seg: bytes, *, options: bytes = b"", ttl: int = 64, tos: int = 0,
              frag: int = 0) -> bytes:
    """Ethernet/IPv4 10.0.0.1 -> 10.0.0.2 with ``options`` (padded to 4 bytes)."""
    options += bytes(-len(options) % 4)
    return ether(MAC_B, MAC_A, 0x0800, ipv4("10.0.0.1", "10.0.0.2", proto, seg, ttl=ttl,
                                             tos=tos, frag=frag, options=options))


def udp_seg(sport: int = 1234, dport: int = 53, payload: bytes = b"hello") -> bytes:
    return udp4("10.0.0.1", "10.0.0.2", sport, dport, payload)


def skb_ctx(*, mark: int = 0, priority: int = 0, ifindex: int = 0,
            cb: tuple[int, ...] = (0, 0, 0, 0, 0), tstamp: int = 0, wire_len: int = 0,
            gso_segs: int = 0, gso_size: int = 0, hwtstamp: int = 0, **raw: int) -> bytes:
    """A ``struct __sk_buff`` ctx_in; ``raw`` sets other u32 fields by offset (``o44=1``)."""
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 8, mark)
    struct.pack_into("<II", ctx, 32, priority, 0)
    struct.pack_into("<I", ctx, 40, ifindex)
    struct.pack_into("<5I", ctx, 48, *cb)
    struct.pack_into("<Q", ctx, 152, tstamp)
    struct.pack_into("<II", ctx, 160, wire_len, gso_segs)
    struct.pack_into("<I", ctx, 176, gso_size)
    struct.pack_into("<Q", ctx, 184, hwtstamp)
    for name, value in raw.items():
        struct.pack_into("<I", ctx, int(name[1:]), value)
    return bytes(ctx)



UDP4 = ether(MAC_B, MAC_A, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp_seg()))
TCP4 = ether(MAC_B, MAC_A, 0x0800,
             ipv4("10.0.0.1", "10.0.0.2", 6, tcp4("10.0.0.1", "10.0.0.2", 80, 443, 0x18, b"x")))
ICMP4 = ether(MAC_B, MAC_A, 0x0800,
              ipv4("10.0.0.1", "10.0.0.2", 1, icmp_echo(0x42, 3, b"abcdefgh")))
RUNT = bytes(14)

# --- the cases -------------------------------------------------------------------------------

CASES: dict[str, Hunt] = {}


def _add(case: Hunt, name: str | None = None) -> None:
    key = name or case.prog
    assert key not in CASES, key
    CASES[key] = case


_add(Hunt("ipv6_ext", "ipv6_ext", (
    ip6(nexthdr=17, payload=udp6(), tclass=0xB8, flow=0xABCDE),
    ip6(nexthdr=0, payload=ext(43, bytes(6)) + ext(60, bytes(6)) + ext(58, bytes(14))
        + icmp6_echo()),
    ip6(nexthdr=60, payload=ext(44, bytes(6)) + struct.pack("!BBHI", 6, 0, 1, 0x11223344)
        + tcp4("10.0.0.1", "10.0.0.2", 1, 2, 2, b"")),
    ip6(nexthdr=44, payload=struct.pack("!BBHI", 17, 0, 0x0108, 0x55667788) + b"frag2"),
    ip6(nexthdr=58, payload=icmp6_echo(), flow=1),
    ip6(nexthdr=0, payload=b""),
    ip6(nexthdr=51, payload=bytes([17, 1]) + bytes(10) + udp6(9, 10)),
    UDP4, RUNT,
    Run(ip6(nexthdr=58, payload=icmp6_echo()), flags=CHECKSUM_COMPLETE),
    Run(ip6(nexthdr=17, payload=udp6()), flags=CHECKSUM_COMPLETE),
)))

_add(Hunt("ipv4_opts", "ipv4_opts", (
    ip4_frame(17, udp_seg()),
    ip4_frame(17, udp_seg(), options=b"\x94\x04\x00\x00"),               # router alert
    ip4_frame(6, tcp4("10.0.0.1", "10.0.0.2", 1000, 80, 2, b""),
              options=b"\x01\x07\x0b\x04" + bytes(8) + b"\x01\x00"),     # NOP, record route
    ip4_frame(17, udp_seg(), options=b"\x44\x0c\x05\x00" + bytes(8) + bytes(24)),
    ip4_frame(17, udp_seg(), ttl=1),
    ip4_frame(17, udp_seg(), frag=0x2000),
    ip4_frame(1, icmp_echo(1, 1, b"x"), options=b"\x01\x01\x01\x00"),
    UDP4[:30], RUNT,
    Run(ip4_frame(17, udp_seg(), options=b"\x94\x04\x00\x00"), flags=CHECKSUM_COMPLETE),
)))


_add(Hunt("qinq", "qinq", (
    ether(MAC_B, MAC_A, 0x88A8, struct.pack("!HHHH", 0x0064, 0x8100, 0x2005, 0x0800)
          + ipv4("10.0.0.1", "10.0.0.2", 17, udp_seg())),
    ether(MAC_B, MAC_A, 0x8100, struct.pack("!HH", 0x000A, 0x0806) + bytes(28)),
    ether(MAC_B, MAC_A, 0x8100, struct.pack("!HHHH", 0x000B, 0x8100, 0x000C, 0x86DD)
          + ipv6("2001:db8::1", "2001:db8::2", 17, udp6())),
    UDP4,
    ether(MAC_B, MAC_A, 0x88A8, struct.pack("!HH", 0x0FFF, 0x8100)),
    RUNT,
    Run(ether(MAC_B, MAC_A, 0x88A8, struct.pack("!HHHH", 0x0064, 0x8100, 0x2005, 0x0800)
              + ipv4("10.0.0.1", "10.0.0.2", 17, udp_seg())), flags=CHECKSUM_COMPLETE),
    Run(UDP4, flags=CHECKSUM_COMPLETE),
)))


def _vip(addr: str, port: int, proto: int) -> bytes:
    return ip4(addr) + struct.pack("!HBB", port, proto, 0)


def _be(addr: str, port: int) -> bytes:
    return ip4(addr) + struct.pack("!HH", port, 0)


def _tcp(src: str, dst: str, sport: int, dport: int) -> bytes:
    return ether(MAC_B, MAC_A, 0x0800,
                 ipv4(src, dst, 6, tcp4(src, dst, sport, dport, 0x10, b"payload")))


def _udp(src: str, dst: str, sport: int, dport: int, checksum: bool = True) -> bytes:
    return ether(MAC_B, MAC_A, 0x0800,
                 ipv4(src, dst, 17, udp4(src, dst, sport, dport, b"q", checksum=checksum)))


LB_PRELOAD = (
    ("vips", _vip("10.0.0.2", 443, 6), _be("10.1.0.5", 8443)),
    ("vips", _vip("10.0.0.2", 53, 17), _be("10.1.0.6", 5353)),
    ("vips", _vip("10.0.0.2", 0x42, 1), _be("10.1.0.7", 0x99)),
    ("vips", _vip("10.1.0.5", 8443, 0x86), _be("10.0.0.2", 443)),
    ("vips", _vip("10.1.0.6", 5353, 0x91), _be("10.0.0.2", 53)),
    ("vips", _vip("10.1.0.7", 0, 0x81), _be("10.0.0.2", 0)),
)

_add(Hunt("lb_nat", "lb_nat", (
    _tcp("10.0.0.1", "10.0.0.2", 40000, 443),
    Run(_tcp("10.0.0.1", "10.0.0.2", 40000, 443), flags=CHECKSUM_COMPLETE),
    _udp("10.0.0.1", "10.0.0.2", 5000, 53),
    _udp("10.0.0.1", "10.0.0.2", 5000, 53, checksum=False),
    Run(_udp("10.0.0.1", "10.0.0.2", 5000, 53, checksum=False), flags=CHECKSUM_COMPLETE),
    ICMP4,
    _tcp("10.1.0.5", "10.0.0.1", 8443, 40000),
    _udp("10.1.0.6", "10.0.0.1", 5353, 5000),
    _udp("10.1.0.6", "10.0.0.1", 5353, 5000, checksum=False),
    ether(MAC_B, MAC_A, 0x0800, ipv4("10.1.0.7", "10.0.0.1", 1, icmp_echo(0, 1, b"r"))),
    _tcp("10.0.0.1", "10.0.0.9", 1, 443),
    UDP4[:36],
), preload=LB_PRELOAD))

_add(Hunt("nat64", "nat64", (
    _udp("10.0.0.1", "10.0.0.2", 5000, 53),
    Run(_udp("10.0.0.1", "10.0.0.2", 5000, 53), flags=CHECKSUM_COMPLETE),
    _udp("10.0.0.1", "10.0.0.2", 5000, 53, checksum=False),
    ether(MAC_B, MAC_A, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 6,
                                     tcp4("10.0.0.1", "10.0.0.2", 80, 443, 0x18, b"x"),
                                     tos=0xB9)),
    ip6("2001:db8::1", "64:ff9b::a00:2", 17, udp6(), tclass=0x2E),
    ip6("64:ff9b::a00:1", "64:ff9b::a00:2", 6,
        struct.pack("!HHIIBBHHH", 1, 2, 3, 4, 0x50, 2, 100, 0x1234, 0)),
    Run(ip6("2001:db8::1", "64:ff9b::a00:2", 17, udp6()), flags=CHECKSUM_COMPLETE),
    ICMP4,
    ether(MAC_B, MAC_A, 0x0806, bytes(28)),
    RUNT,
    Run(_udp("10.0.0.1", "10.0.0.2", 5000, 53), skb_ctx(gso_segs=3, gso_size=20)),
    Run(ip6("2001:db8::1", "64:ff9b::a00:2", 17, udp6(payload=b"p" * 60)),
        skb_ctx(gso_segs=2, gso_size=30)),
)))




def _udp_to(dport: int, payload: bytes = b"inner payload") -> bytes:
    return _udp("10.0.0.1", "10.0.0.2", 1111, dport) if not payload else ether(
        MAC_B, MAC_A, 0x0800,
        ipv4("10.0.0.1", "10.0.0.2", 17, udp4("10.0.0.1", "10.0.0.2", 1111, dport, payload)))


_GUE = ether(MAC_B, MAC_A, 0x0800, ipv4("192.168.0.1", "192.168.0.2", 17, udp4(
    "192.168.0.1", "192.168.0.2", 49152, 5, ipv4("10.0.0.1", "10.0.0.2", 17, udp_seg()))))

_add(Hunt("encap", "encap", tuple(
    [_udp_to(p) for p in (1, 2, 3, 4, 6, 7)]
    + [Run(_udp_to(p), flags=CHECKSUM_COMPLETE) for p in (1, 2, 4)]
    + [_GUE, _udp_to(5, b""), TCP4, RUNT]
    + [Run(_udp_to(p, b"g" * 200), skb_ctx(gso_segs=2, gso_size=100)) for p in (1, 2, 4, 5)])))

_add(Hunt("head_tail", "head_tail", (
    UDP4, UDP4[:42], _udp_to(9, b"z" * 80), RUNT, bytes(15), _udp_to(9, b"y" * 40),
    Run(UDP4[:42], flags=CHECKSUM_COMPLETE), Run(_udp_to(9, b"z" * 80), flags=CHECKSUM_COMPLETE),
    ip6(payload=udp6()),
)))


_add(Hunt("lru_evict", "lru_evict", (
    _udp("10.0.0.1", "10.0.0.2", 1000, 20),
    _udp("10.0.0.1", "10.0.0.2", 2000, 5),
    _udp("10.0.0.1", "10.0.0.2", 1000, 3),
    _udp("10.0.0.1", "10.0.0.2", 3000, 31),
    _udp("10.0.0.1", "10.0.0.2", 2003, 8),
    RUNT,
)))


def _key6(addr: str, plen: int) -> bytes:
    return struct.pack("<I", plen) + ko.ip6(addr)


_add(Hunt("lpm6", "lpm6", (
    ip6("2001:db8::1", "2001:db8:1:2::5", payload=udp6()),
    ip6("2001:db8::1", "2001:db8:1:3::5", payload=udp6()),
    ip6("2001:db8:9::1", "2001:db8:ffff::1", payload=udp6()),
    ip6("2001:db8::1", "2001:db9::1", payload=udp6()),
    ether(MAC_B, MAC_A, 0x86DD, ipv6("2001:db8::7", "2001:db8:1:3::5", 17, udp6(), hlim=1)),
    ip6("2001:db8::1", "2001:db8:1:3::5", payload=udp6()),
    ip6("2001:db8::1", "fe80::1", payload=udp6()),
    UDP4, RUNT,
), preload=(
    ("policy", _key6("::", 0), struct.pack("<I", 1)),
    ("policy", _key6("2001:db8::", 32), struct.pack("<I", 2)),
    ("policy", _key6("2001:db8:1::", 48), struct.pack("<I", 3)),
    ("policy", _key6("2001:db8:1:2::", 64), struct.pack("<I", 4)),
)))

_add(Hunt("ringbuf_dyn", "ringbuf_dyn", (
    UDP4, _udp_to(9, b"r" * 100), _udp_to(9, b"s" * 100), RUNT, TCP4, _udp_to(9, b"t" * 300),
)))

_add(Hunt("loops", "loops", (
    UDP4, TCP4, _udp_to(9, b"\x35" * 3), RUNT, _udp_to(0x3535, b"w" * 200), ICMP4,
)))




_add(Hunt("skb_fields", "skb_fields", (
    UDP4,
    Run(UDP4, skb_ctx(mark=5, priority=7, ifindex=1, cb=(1, 2, 3, 4, 5), tstamp=123456789)),
    Run(TCP4, skb_ctx(wire_len=len(TCP4), gso_segs=4, gso_size=1448, hwtstamp=999)),
    Run(TCP4, skb_ctx(wire_len=len(TCP4) - 1)),
    Run(TCP4, skb_ctx(wire_len=len(TCP4) + 1000, gso_segs=0xFFFF_FFFF)),
    Run(UDP4, skb_ctx(o36=1)),
    Run(UDP4, skb_ctx(o44=3)),
    Run(UDP4, skb_ctx(o180=1)),
    Run(UDP4, skb_ctx(gso_size=0xFFFF_FFFF)),
    ip6(payload=udp6()),
    ether(MAC_B, MAC_A, 0x8100, struct.pack("!HH", 0x0005, 0x0800) + UDP4[14:]),
    ether(bytes.fromhex("ffffffffffff"), MAC_A, 0x0806, bytes(28)),
    RUNT,
)))

_TAILCHAIN = (
    UDP4, TCP4, ip6(payload=udp6()), ether(MAC_B, MAC_A, 0x0806, bytes(28)), UDP4[:20],
    Run(UDP4, skb_ctx(cb=(0, 2, 0, 0, 0))), Run(UDP4, skb_ctx(cb=(0, 4, 0, 0, 0))),
    Run(UDP4, skb_ctx(cb=(0, 7, 0, 0, 0))), Run(UDP4, skb_ctx(cb=(0, 0xFFFF_FFFF, 0, 0, 0))),
)
_add(Hunt("tailchain", "parse", _TAILCHAIN), "tailchain")
_add(Hunt("tailchain", "loop", (UDP4, RUNT)), "tailchain_loop")


_add(Hunt("funcs", "funcs", (
    UDP4, TCP4, ICMP4, ip6(payload=udp6()), RUNT, UDP4[:30], _udp_to(9, b"f" * 300),
)))

_add(Hunt("l2_misc", "l2_misc", (
    ip4_frame(17, udp_seg(), tos=0x02), ip4_frame(17, udp_seg(), tos=0x01),
    ip4_frame(17, udp_seg(), tos=0x03), ip4_frame(6, tcp4("10.0.0.1", "10.0.0.2", 1, 2, 2, b""),
                                                   tos=0xB8),
    ip6(payload=udp6(), tclass=0x02), ip6(payload=udp6(), tclass=0x00),
    Run(ip4_frame(17, udp_seg(), tos=0x02), flags=CHECKSUM_COMPLETE),
    ether(bytes.fromhex("ffffffffffff"), MAC_A, 0x0806,
          arp_request(MAC_A, "10.0.0.1", "10.0.0.99")),
    ether(bytes.fromhex("ffffffffffff"), MAC_A, 0x0806,
          arp_request(MAC_A, "10.0.0.1", "10.0.0.99"))[:30],
    RUNT, UDP4[:30],
    Run(ether(bytes.fromhex("ffffffffffff"), MAC_A, 0x0806,
              arp_request(MAC_A, "10.0.0.1", "10.0.0.99")), flags=CHECKSUM_COMPLETE),
    Run(ip6(payload=udp6(), tclass=0x02), flags=CHECKSUM_COMPLETE),
)))




def _text(payload: bytes) -> bytes:
    """UDP to port 7 whose payload (at offset 42) is ``payload`` padded to 80 bytes."""
    return _udp_to(7, payload.ljust(80, b"\0"))


_STRINGS = (
    b"GET /index.html", b"  -123 rest", b"0x1fZ", b"0xg", b"0Xfeed", b"077", b"089", b"-0",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
    b"-9223372036854775809", b"18446744073709551615", b"18446744073709551616",
    b"-99999999999999999999999", b"-5", b"+5", b" \t\n\v\f\r42", b"   ", b"",
    b"\xaa12", b"\xa07", b"0" * 70 + b"7", b"abc", b"ABCDEF", b"- 5", b"--5", b"0x",
    b"12\x0034",
)
_add(Hunt("strings", "strings", (*(_text(p) for p in _STRINGS), RUNT)))


_add(Hunt("globals", "globals", (
    UDP4, TCP4, _udp("10.0.0.7", "10.0.0.8", 9, 443), ip4_frame(17, udp_seg(), ttl=37, tos=5),
    _udp("10.0.0.1", "10.0.0.2", 1, 8080), ICMP4, RUNT, UDP4, _udp_to(80, b"x" * 100),
)))

_add(Hunt("maps_mix", "maps_mix", (
    UDP4, UDP4, TCP4, _udp_to(9, b"ab"), _udp_to(9, b"abc"), ICMP4, RUNT, bytes(15),
)))


_add(Hunt("sock", "sock", (
    UDP4, TCP4, ip6(payload=udp6()), ICMP4, ether(MAC_B, MAC_A, 0x0806, bytes(28)), RUNT,
    UDP4[:30], Run(UDP4, skb_ctx(mark=7, priority=3, ifindex=1)),
)))




def _bytes22(seed: int) -> bytes:
    """22 payload bytes that make the v4 arithmetic interesting (signs, zeros, extremes)."""
    rng = [(seed * 97 + i * 31 + (i * i) * 7) & 0xFF for i in range(22)]
    return bytes(rng)


_ALU = [
    _bytes22(1), _bytes22(2), _bytes22(77), bytes(22), b"\xff" * 22,
    b"\x80\x01" + b"\x00\x80\xff\xff" + b"\x00\x00\x00\x80\xff\xff\xff\xff"
    + b"\x00" * 7 + b"\x80",
    b"\x7f\xff\x7f\xff\x80\x00" + b"\xff\xff\xff\x7f" + b"\x01\x00\x00\x00"
    + b"\xff" * 8,
    b"\xc0\x00\x01\x00\x00\x00" + b"\x00\x00\x00\x80" + b"\xff\xff\xff\xff"
    + b"\x00" * 7 + b"\x80",
]
_add(Hunt("alu_v4", "alu_v4", (*(_udp_to(9, p) for p in _ALU), UDP4, RUNT)))




def _v4(proto: int, src: str, dst: str, seg: bytes, *, ttl: int = 64, ident: int = 1,
        frag: int = 0, options: bytes = b"") -> bytes:
    return ether(MAC_B, MAC_A, 0x0800, ipv4(src, dst, proto, seg, ttl=ttl, ident=ident,
                                             frag=frag, options=options))


def _u4(src: str, dst: str, sport: int, dport: int, payload: bytes = b"a", *, ttl: int = 64,
        ident: int = 1, frag: int = 0) -> bytes:
    return _v4(17, src, dst, udp4(src, dst, sport, dport, payload), ttl=ttl, ident=ident,
               frag=frag)


def _u6(src: str, dst: str, sport: int, dport: int, payload: bytes = b"a", *, flow: int = 0,
        hlim: int = 64) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return ether(MAC_B, MAC_A, 0x86DD, ipv6(src, dst, 17, seg, flow=flow, hlim=hlim))


A4, B4 = "10.0.0.1", "10.0.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
_FLOWS = (
    _u4(A4, B4, 1234, 53),                                   # 0
    _u4(A4, B4, 1234, 53, b"bbbbbbbb", ttl=3, ident=99),     # 1: same flow
    _u4(B4, A4, 53, 1234, b"reply"),                         # 2: the other direction
    _u4(A4, B4, 1235, 53),                                   # 3: another source port
    _v4(6, A4, B4, tcp4(A4, B4, 1234, 53, 0x10, b"")),       # 4: TCP, same ports
    _v4(6, A4, B4, tcp4(A4, B4, 1234, 53, 0x18, b"xx", seq=7), ttl=9),   # 5: same as 4
    _u6(A6, B6, 1000, 2000),                                 # 6
    _u6(A6, B6, 1000, 2000, b"zzzz", hlim=1),                # 7: same as 6
    _u6(B6, A6, 2000, 1000),                                 # 8: other direction
    _u6(A6, B6, 1000, 2000, flow=0x12345),                   # 9: with a flow label
    _u6(A6, B6, 3000, 4000, flow=0x12345),                   # 10: label, other ports
    _u6(A6, B6, 1000, 2000, flow=0x54321),                   # 11: other label
    _v4(1, A4, B4, icmp_echo(5, 1, b"p")),                   # 12: echo id 5
    _v4(1, A4, B4, icmp_echo(5, 2, b"pp")),                  # 13: id 5, next seq
    _v4(1, A4, B4, icmp_echo(6, 1, b"p")),                   # 14: id 6
    _v4(1, B4, A4, b"\x00\x00\xff\xfa\x00\x05\x00\x01p"),      # 15: echo reply id 5
    _u4(A4, B4, 1234, 53, b"f" * 16, frag=0x2000),           # 16: first fragment
    _v4(17, A4, B4, b"tail of it", frag=0x0003),             # 17: later fragment
    _v4(47, A4, B4, b"\x00\x00\x08\x00" + b"g" * 20),       # 18: GRE
    _v4(47, A4, B4, b"\x00\x00\x08\x00" + b"h" * 30),       # 19: GRE, same
    ether(MAC_B, MAC_A, 0x8100, struct.pack("!HH", 5, 0x0800)
          + ipv4(A4, B4, 17, udp4(A4, B4, 1234, 53, b"a"))),  # 20: VLAN 5, flow 0
    ether(bytes.fromhex("ffffffffffff"), MAC_A, 0x0806, arp_request(MAC_A, A4, B4)),  # 21
    ether(bytes.fromhex("ffffffffffff"), MAC_A, 0x0806,
          arp_request(MAC_B, "10.0.0.7", B4)),               # 22: another ARP
    ether(MAC_B, MAC_A, 0x88B5, b"local experimental" + bytes(30)),  # 23
    _u4(A4, A4, 53, 1234),                                   # 24: same addresses
    _u4(A4, A4, 1234, 53),                                   # 25: ports swapped
    _u4(A4, B4, 53, 1234),                                   # 26: 0's ports swapped only
    ether(MAC_B, MAC_A, 0x86DD, ipv6(A6, B6, 0, bytes([17, 0]) + bytes(6) + struct.pack(
        "!HHHH", 1000, 2000, 9, 0) + b"e")),                 # 27: hop-by-hop, then 6's flow
    _v4(17, A4, B4, udp4(A4, B4, 1234, 53, b"o"), options=b"\x01\x01\x01\x00"),  # 28
    _v4(4, "192.168.0.1", "192.168.0.2",
        ipv4(A4, B4, 17, udp4(A4, B4, 1234, 53, b"a"))),    # 29: IPIP around flow 0
    _v4(47, "192.168.0.1", "192.168.0.2", b"\x20\x00\x08\x00" + b"\x00\x00\x00\x07"
        + ipv4(A4, B4, 17, udp4(A4, B4, 1234, 53, b"a"))),  # 30: GRE with a key
    _v4(47, "192.168.0.1", "192.168.0.2", b"\x00\x00\x08\x00"
        + ipv4(A4, B4, 17, udp4(A4, B4, 1234, 53, b"a"))),  # 31: GRE around flow 0
)
_add(Hunt("flowhash", "flowhash", _FLOWS,
          ignore={"seen": frozenset(struct.pack("<I", i).hex() for i in range(32))}))


_SECTIONS = (ip4_frame(17, udp_seg(), tos=0xB8), UDP4, ip4_frame(6, b"", tos=0x20), RUNT)
for _prog in ("sec_tcx", "sec_tc", "sec_cls"):
    _add(Hunt("sections", _prog, _SECTIONS))




def _icmp_err(kind: int, code: int, inner: bytes, *, src: str = "10.9.9.9") -> bytes:
    """An ICMP error from ``src`` to 10.0.0.1 quoting ``inner`` (checksum correct)."""
    msg = struct.pack("!BBHHH", kind, code, 0, 0, 1400) + inner
    msg = msg[:2] + struct.pack("!H", ko.inet_csum(msg)) + msg[4:]
    return _v4(1, src, "10.0.0.1", msg)


def _quoted(proto: int, src: str = "10.1.0.5", *, checksum: bool = True) -> bytes:
    if proto == 17:
        seg = udp4(src, "10.0.0.1", 80, 40000, b"reply data", checksum=checksum)
    else:
        seg = tcp4(src, "10.0.0.1", 80, 40000, 0x12, b"")
    return ipv4(src, "10.0.0.1", proto, seg)[:28 + 8]


def _icmp6_ptb(inner: bytes) -> bytes:
    msg = struct.pack("!BBHI", 2, 0, 0x1234, 1280) + inner
    return ether(MAC_B, MAC_A, 0x86DD, ipv6("2001:db8::9", "2001:db8::1", 58, msg))


_add(Hunt("icmp_nat", "icmp_nat", (
    _icmp_err(3, 4, _quoted(17)),
    Run(_icmp_err(3, 4, _quoted(17)), flags=CHECKSUM_COMPLETE),
    _icmp_err(3, 3, _quoted(17, checksum=False)),
    _icmp_err(11, 0, _quoted(6)),
    Run(_icmp_err(11, 0, _quoted(6)), flags=CHECKSUM_COMPLETE),
    _icmp_err(3, 1, _quoted(17, src="10.1.0.6")),
    _icmp_err(3, 4, _quoted(17)[:20]),
    ICMP4,
    _icmp6_ptb(ipv6("2001:db8::1", "2001:db8::5", 17, udp6())),
    Run(_icmp6_ptb(ipv6("2001:db8::1", "2001:db8::5", 17, udp6())), flags=CHECKSUM_COMPLETE),
    UDP4, RUNT,
)))


_add(Hunt("lru_scan", "lru_scan", (
    _udp_to(9, b"e"), _udp_to(9, b"od"), _udp_to(9, b"e"), _udp_to(9, b"odd"),
    _udp_to(9, b"eeee"), _udp_to(9, b"ooo"), _udp_to(9, b"od"), _udp_to(9, b"ooooo"),
)))




def _with_srh(inner_nh: int, payload: bytes) -> bytes:
    srh = bytes([inner_nh, 4, 4, 1, 1, 0, 0, 0]) + ko.ip6("2001:db8::2") + ko.ip6("fc00::1")
    return ether(MAC_B, MAC_A, 0x86DD, ipv6("2001:db8::1", "fc00::1", 43, srh + payload))


_add(Hunt("srv6", "srv6", (
    ip6(payload=udp6()),
    Run(ip6(payload=udp6()), flags=CHECKSUM_COMPLETE),
    ip6(nexthdr=58, payload=icmp6_echo()),
    _with_srh(17, udp6()),
    Run(_with_srh(17, udp6()), flags=CHECKSUM_COMPLETE),
    _with_srh(17, b"")[:60],
    Run(ip6(payload=udp6(payload=b"s" * 100)), skb_ctx(gso_segs=2, gso_size=60)),
    UDP4, RUNT,
)))


@pytest.fixture(scope="module")
def bpffs() -> Iterator[BpfFs]:
    yield from bpffs_fixture()


def _params() -> Iterator[object]:
    for name, case in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", list(_params()))
def test_hunt_program(name: str, bpffs: BpfFs) -> None:
    assert_hunt_same(CASES[name], bpffs)


# Every program above is accepted by the kernel's verifier (bpftool loads it): tcemu's
# verifier must accept it too.
_VERIFIER_XFAIL = {
    "ipv4_opts": "verifier: tcemu's static precision approximation keeps the option walk's "
                 "index precise, so states never prune and it stops at 1M insns; the kernel "
                 "processes 3286",
}


def _verify_params() -> Iterator[object]:
    seen: set[tuple[str, str]] = set()
    for case in CASES.values():
        if (case.obj, case.prog) in seen:
            continue
        seen.add((case.obj, case.prog))
        reason = _VERIFIER_XFAIL.get(case.prog, "")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(case.obj, case.prog, id=f"{case.obj}:{case.prog}", marks=marks)


@pytest.mark.parametrize(("obj", "prog"), list(_verify_params()))
def test_hunt_verifier_accepts(obj: str, prog: str) -> None:
    coll = load_object(HUNT_DIR / f"{obj}.bpf.o")
    try:
        verify(coll.programs[prog])
    except VerifierError as err:
        pytest.fail(f"tcemu's verifier refuses {obj}:{prog} at insn {err.insn_index}: "
                    f"{err.first_error}", pytrace=False)


# Objects the kernel's verifier refuses: tcemu's verifier must refuse them with the same
# message (the last line of the kernel's log before the statistics).
REJECTED: dict[str, str] = {
    "snprintf_bad": "Invalid format string",
    "mod_index_bad": "math between map_value pointer and register with unbounded min value "
                     "is not allowed",
    "tail_stack_bad": "tail_calls are not allowed when call stack of previous frames is 304 "
                      "bytes. Too large",
}


@pytest.mark.parametrize("obj", sorted(REJECTED))
def test_hunt_rejected_alike(obj: str, bpffs: BpfFs) -> None:
    path = HUNT_DIR / f"{obj}.bpf.o"
    progs, maps = bpffs.fresh_dir(obj), bpffs.fresh_dir(obj + "_maps")
    try:
        with pytest.raises(OSError, match=REJECTED[obj]):
            load_with_bpftool(path, progs, maps)
    finally:
        for d in (progs, maps):
            if d.exists():
                for pin in d.iterdir():
                    pin.unlink()
                d.rmdir()
    coll = load_object(path)
    for prog in coll.programs.values():
        with pytest.raises(VerifierError) as ours:
            verify(prog)
        assert ours.value.first_error == REJECTED[obj], ours.value.first_error


def test_every_hunt_object_has_a_case() -> None:
    sources = {p.stem for p in HUNT_DIR.glob("*.c")}
    objects = {p.name.removesuffix(".bpf.o") for p in HUNT_DIR.glob("*.bpf.o")}
    used = {c.obj for c in CASES.values()} | set(REJECTED)
    assert sources == objects == used
