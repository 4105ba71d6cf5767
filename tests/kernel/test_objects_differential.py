"""Compiled C programs (``tests/testdata/objects``) against the kernel, packet by packet.

Each case names an object and one of its programs.  For every hypothesis-generated packet
*sequence* the object is loaded twice from scratch: into the kernel by an independent
loader (``bpftool prog loadall``, i.e. libbpf; iproute2-style objects by the small legacy
loader in :mod:`tests.kernel.objects_oracle`), and into tcemu with ``load_object`` once per
execution tier.  Every packet of the sequence then runs through ``BPF_PROG_TEST_RUN`` on
each side, and after *every* packet the test compares:

* the outcome: retval, data_out and the 192-byte ctx_out, or the errno when the kernel
  refuses the input (an IPv4 frame shorter than its fixed header, say);
* every map of the object, read completely: hash-like maps (HASH, LRU, per-CPU hashes,
  LPM_TRIE, HASH_OF_MAPS) as dicts of key -> value, i.e. modulo the kernel's iteration
  order, which tcemu does not reproduce; arrays likewise; queues and stacks as the element
  list in pop order (the kernel side pops every element and pushes it back); ring buffers
  and perf event arrays as the records consumed after the packet; prog arrays and maps of
  maps as the names of the programs and inner maps in their slots (the kernel stores ids).

Per-CPU values: the kernel test-runs on the calling CPU, so the test process is pinned to
CPU 0 while the kernel side runs, and tcemu runs with ``Env(ncpus=<possible CPUs>, cpu=0)``;
both then return every CPU's slot in the kernel's layout (rounded to 8 bytes, concatenated).

Documented exclusions (:attr:`Case.exclude`), the only places compared modulo something:

* ``nondet``: the raw ktime (three clocks) and prandom values; their deterministic
  properties (monotonicity, CPU number 0) are compared;
* ``skb_hash``: bpf_get_hash_recalc and the skb->hash it leaves (the kernel salts the flow
  hash with a random per-boot key); set_hash / set_hash_invalid results are compared;
* ``current_task``: pid/tgid, uid/gid and comm of the current task (the test process in the
  kernel, the injected Env task in tcemu); the helpers' return codes are compared.

``bpf_trace_printk`` output is not read back (the host's trace buffer is shared); its
return values, the formatted lengths, are compared.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tcemu.bpf import load_object
from tcemu.bpf.env import Env
from tcemu.bpf.testrun import TestRunError
from tcemu.bpf.vm import Tier
from tcemu.errors import KernelError
from tests.kernel import objects_oracle as ko
from tests.kernel.objects_oracle import (
    BpfFs,
    KernelObject,
    MapState,
    TcemuMaps,
    arp_request,
    ether,
    icmp_echo,
    ip4,
    ipv4,
    ipv6,
    load_iproute2,
    load_with_bpftool,
    possible_cpus,
    private_netns,
    remove_pins,
    tcemu_map_name,
    tcp4,
    udp4,
)

OBJECTS = Path(__file__).resolve().parents[1] / "testdata" / "objects"
TIERS: tuple[Tier, ...] = ("interp", "jit")
MAX_EXAMPLES = 40

# --- the cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    obj: str
    prog: str
    # map name (tcemu's name) -> array indexes (u32 keys) whose values are not compared;
    # None: the whole map's values are not compared (its keys still are)
    exclude: dict[str, frozenset[int] | None] = field(default_factory=dict)
    # (map, key, value) loaded into both sides before the first packet
    preload: tuple[tuple[str, bytes, bytes], ...] = ()
    iproute2: bool = False
    netns: bool = False          # run the kernel side in a private network namespace
    xfail: str = ""              # a known tcemu difference (strict xfail)

    @property
    def id(self) -> str:
        return f"{self.obj}:{self.prog}"


def _route(prefix: str, plen: int, classid: int, nexthop: int) -> tuple[str, bytes, bytes]:
    return ("routes", struct.pack("<I", plen) + ip4(prefix),
            struct.pack("<IIQ", classid, nexthop, 0))


def _snat(addr: str, port: int, proto: int, new: str, new_port: int) -> tuple[str, bytes, bytes]:
    return ("snat", ip4(addr) + struct.pack("!HBx", port, proto),
            ip4(new) + struct.pack("!H", new_port) + bytes(2) + bytes(8))


# Known tcemu differences (strict xfails: they turn red once tcemu is fixed).
_ZERO_VALUE_SIZE = ("tcemu bug: the loader keeps value_size 0 of a BTF map declared with "
                    "__array(values, ...) (PROG_ARRAY, ARRAY_OF_MAPS, HASH_OF_MAPS); libbpf "
                    "uses 4 (an fd/id), so load_object fails with ValueSizeError (EINVAL)")
_PERF_MAX_ENTRIES = ("tcemu bug: the loader keeps max_entries 0 of a PERF_EVENT_ARRAY; libbpf "
                     "sets it to the number of possible CPUs, so load_object fails (EINVAL)")
_POP_EMPTY = ("tcemu bug: bpf_map_pop_elem/bpf_map_peek_elem on an empty QUEUE/STACK leave the "
              "value buffer as it was; the kernel zeroes it (__queue_map_get/__stack_map_get "
              "memset value to 0 before returning -ENOENT)")
_CLONE_GSO = ("tcemu bug: bpf_clone_redirect of a GSO skb without gso_type (ctx_in gso_size "
              "set) returns -EBADMSG in the kernel before the device lookup; tcemu clones it "
              "(0) or reports -EINVAL for a missing device")
_GSO_SEGS = ("tcemu bug: resizing a non-GSO skb (gso_size 0) with bpf_skb_change_tail or "
             "bpf_skb_adjust_room zeroes gso_segs (ctx_out offset 164); the kernel resets the "
             "GSO fields only when skb_is_gso()")
_ADJUST_GSO = ("tcemu bug: bpf_skb_adjust_room on a GSO skb without a TCP gso_type (ctx_in "
               "gso_size set) returns -ENOTSUPP (524) in the kernel and leaves the packet; "
               "tcemu grows/shrinks it and returns 0")

CASES = [
    Case("flow_counter", "flow_counter"),
    Case("proto_stats", "proto_stats"),
    Case("percpu_hash", "percpu_hash"),
    Case("lru_maps", "lru_maps"),
    Case("lpm_route", "lpm_route", preload=(
        _route("10.0.0.0", 8, 0x10010, 1), _route("10.1.0.0", 16, 0x10020, 2),
        _route("192.168.1.0", 24, 0x10030, 3), _route("10.0.0.2", 32, 0x10040, 4))),
    Case("queue_stack", "queue_stack"),
    Case("ringbuf", "ringbuf"),
    Case("perf_output", "perf_output"),
    Case("tail_libbpf", "dispatcher"),
    Case("tail_libbpf", "tail_tcp"),
    Case("tail_limit", "tail_limit"),
    Case("tail_iproute2", "cls_entry", iproute2=True),
    Case("map_in_map", "map_in_map"),
    Case("global_data", "global_data"),
    Case("bpf2bpf", "bpf2bpf"),
    Case("skb_bytes", "skb_bytes"),
    Case("nat_rewrite", "nat_rewrite", preload=(
        _snat("10.0.0.1", 12345, 17, "203.0.113.1", 40001),
        _snat("10.0.0.1", 12345, 6, "203.0.113.1", 40002),
        _snat("192.168.1.7", 53, 17, "203.0.113.2", 5353),
        _snat("10.1.2.3", 80, 6, "198.51.100.7", 8080))),
    Case("csum_helpers", "csum_helpers"),
    Case("skb_hash", "skb_hash", exclude={"out": frozenset({0, 1})}),
    Case("skb_misc", "skb_misc"),
    Case("redirect", "redirect_egress"),
    Case("redirect", "redirect_peer"),
    Case("redirect", "redirect_neigh"),
    Case("redirect", "clone_to_lo", netns=True),
    Case("nondet", "nondet", exclude={"out": frozenset({0, 1, 2, 3})}),
    Case("printk", "printk"),
    Case("current_task", "current_task", exclude={"task": None}),
    Case("pkt_rewrite", "pkt_rewrite"),
    Case("skb_ctx", "skb_ctx"),
    Case("ld_abs", "ld_abs"),
    Case("act_police", "act_police"),
    Case("sock_filter", "sock_filter"),
    Case("hash_ops", "hash_ops"),
    Case("vlan_ipv6", "vlan_ipv6"),
    Case("callbacks", "callbacks"),
    Case("skb_resize", "vlan_push_pop"),
    Case("skb_resize", "change_tail"),
    Case("skb_resize", "change_head"),
    Case("skb_resize", "adjust_room"),
    Case("skb_resize", "change_proto"),
    Case("spin_lock", "spin_lock"),
]


def _params() -> Iterator[Any]:
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.id, marks=marks)


# --- packets and contexts -------------------------------------------------------------------

_addr4 = st.sampled_from(ko.IPV4_POOL)
_addr6 = st.sampled_from(ko.IPV6_POOL)
_port = st.sampled_from(ko.PORT_POOL)
_mac = st.sampled_from(ko.MAC_POOL)
_payload = st.one_of(st.binary(max_size=24), st.binary(min_size=40, max_size=600),
                     st.builds(bytes, st.integers(1000, 1400)))
_ttl = st.sampled_from((64, 1, 2, 255, 128))


@st.composite
def _ipv4_packet(draw: st.DrawFn) -> tuple[int, bytes]:
    src, dst = draw(_addr4), draw(_addr4)
    kind = draw(st.sampled_from(("udp", "udp", "tcp", "tcp", "icmp", "gre", "frag", "opts",
                                 "udp0")))
    payload = draw(_payload)
    extra: dict[str, Any] = {"ttl": draw(_ttl), "tos": draw(st.sampled_from((0, 0x10, 0xb9))),
                             "ident": draw(st.integers(0, 0xFFFF))}
    if kind in ("udp", "udp0"):
        body, proto = udp4(src, dst, draw(_port), draw(_port), payload,
                           checksum=kind == "udp"), 17
    elif kind in ("tcp", "opts"):
        flags = draw(st.sampled_from((0x02, 0x12, 0x10, 0x18, 0x11, 0x04)))
        body, proto = tcp4(src, dst, draw(_port), draw(_port), flags, payload,
                           seq=draw(st.integers(0, 2**32 - 1))), 6
        if kind == "opts":
            extra["options"] = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    elif kind == "icmp":
        body, proto = icmp_echo(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 9)),
                                payload), 1
    elif kind == "frag":
        body, proto = udp4(src, dst, draw(_port), draw(_port), payload), 17
        extra["frag"] = draw(st.sampled_from((0x2000, 0x0010, 0x4000)))
    else:
        body, proto = payload, 47
    return 0x0800, ipv4(src, dst, proto, body, **extra)


@st.composite
def _ipv6_packet(draw: st.DrawFn) -> tuple[int, bytes]:
    src, dst = draw(_addr6), draw(_addr6)
    nh = draw(st.sampled_from((17, 6, 58)))
    payload = draw(_payload)
    if nh == 17:
        body = struct.pack("!HHHH", draw(_port), draw(_port), 8 + len(payload), 0) + payload
    elif nh == 6:
        body = struct.pack("!HHIIBBHHH", draw(_port), draw(_port), 1, 0, 0x50, 0x02, 1024, 0,
                           0) + payload
    else:
        body = struct.pack("!BBHI", 128, 0, 0, 1) + payload
    return 0x86DD, ipv6(src, dst, nh, body, hlim=draw(_ttl),
                        tclass=draw(st.integers(0, 255)), flow=draw(st.integers(0, 0xFFFFF)))


@st.composite
def _arp_packet(draw: st.DrawFn) -> tuple[int, bytes]:
    return 0x0806, arp_request(draw(_mac), draw(_addr4), draw(_addr4))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One Ethernet frame: IPv4 (UDP/TCP/ICMP/GRE, fragments, options), IPv6, ARP, optionally
    VLAN or QinQ tagged, sometimes padded to 60 bytes or truncated."""
    ethertype, l3 = draw(st.one_of(_ipv4_packet(), _ipv4_packet(), _ipv6_packet(),
                                   _arp_packet()))
    vlans = draw(st.sampled_from(((), (), (), ((0x8100, 5),), ((0x8100, 0x2007),),
                                  ((0x88A8, 100), (0x8100, 3)))))
    frame = ether(draw(_mac), draw(_mac), ethertype, l3, vlans)
    shape = draw(st.sampled_from(("whole", "whole", "whole", "pad", "cut")))
    if shape == "pad" and len(frame) < 60:
        frame += bytes(60 - len(frame))
    elif shape == "cut":
        frame = frame[:draw(st.integers(14, max(14, len(frame) - 1)))]
    return frame


@st.composite
def contexts(draw: st.DrawFn) -> bytes | None:
    """A ``struct __sk_buff`` ctx_in that sets only the fields BPF_PROG_TEST_RUN accepts."""
    if draw(st.booleans()):
        return None
    ctx = bytearray(192)
    u32 = st.integers(0, 2**32 - 1)
    struct.pack_into("<I", ctx, 8, draw(u32))                            # mark
    struct.pack_into("<I", ctx, 32, draw(st.sampled_from((0, 7, 0x10001))))  # priority
    struct.pack_into("<I", ctx, 40, draw(st.sampled_from((0, 1))))       # ifindex
    struct.pack_into("<5I", ctx, 48, *draw(st.lists(u32, min_size=5, max_size=5)))  # cb
    struct.pack_into("<Q", ctx, 152, draw(st.sampled_from((0, 123456789))))  # tstamp
    struct.pack_into("<I", ctx, 164, draw(st.sampled_from((0, 1, 4))))  # gso_segs
    struct.pack_into("<I", ctx, 176, draw(st.sampled_from((0, 1448))))  # gso_size
    return bytes(ctx)


@st.composite
def sequences(draw: st.DrawFn) -> list[tuple[bytes, bytes | None]]:
    """A few distinct frames replayed in a drawn order (flows repeat, counters grow)."""
    pool = draw(st.lists(frames(), min_size=1, max_size=4))
    order = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=7))
    return [(pool[i], draw(contexts())) for i in order]


# --- the two sides --------------------------------------------------------------------------

Outcome = tuple[Any, ...]


def _kernel_outcome(kobj: KernelObject, case: Case, data: bytes, ctx: bytes | None) -> Outcome:
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        if case.netns:
            with private_netns():
                res = kobj.run(case.prog, data, ctx)
        else:
            res = kobj.run(case.prog, data, ctx)
    except KernelError as err:
        return ("error", err.errno)
    finally:
        os.sched_setaffinity(0, affinity)
    return ("ok", res.retval, res.data_out.hex(), res.ctx_out.hex())


class Tcemu(TcemuMaps):
    """One tcemu load of the object, read the way the kernel side is read."""

    def __init__(self, case: Case, ncpus: int, tier: Tier) -> None:
        super().__init__(load_object(OBJECTS / f"{case.obj}.bpf.o",
                                     env=Env(ncpus=ncpus, cpu=0)))
        self.case = case
        self.tier: Tier = tier

    def outcome(self, data: bytes, ctx: bytes | None) -> Outcome:
        prog = self.coll.programs[self.case.prog]
        try:
            res = prog.test_run(data, ctx=ctx, tier=self.tier)
        except TestRunError as err:
            return ("error", err.errno)
        return ("ok", res.retval & 0xFFFF_FFFF, bytes(res.data_out).hex(),
                bytes(res.ctx_out).hex())


def _apply_exclusions(state: MapState, case: Case) -> MapState:
    out = dict(state)
    for name, indexes in case.exclude.items():
        contents = out.get(name)
        assert isinstance(contents, dict), f"excluded map {name} is not keyed"
        out[name] = {k: ("<excluded>" if indexes is None or int.from_bytes(
            bytes.fromhex(k), "little") in indexes else v) for k, v in contents.items()}
    return out


def _describe(seq: list[tuple[bytes, bytes | None]], step: int) -> str:
    lines = [f"packet {i}: {data.hex()} ctx={ctx.hex() if ctx else None}"
             for i, (data, ctx) in enumerate(seq[:step + 1])]
    return "\n".join(lines)


# --- the test -------------------------------------------------------------------------------


def _unavailable(message: str) -> None:
    if os.environ.get("TCEMU_REQUIRE_KERNEL") == "1":
        pytest.fail(f"TCEMU_REQUIRE_KERNEL=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def bpffs() -> Iterator[BpfFs]:
    if shutil.which(ko.BPFTOOL) is None:
        _unavailable("bpftool is not installed (Debian package: bpftool)")
    try:
        fs = BpfFs()
    except OSError as err:
        _unavailable(str(err))
    try:
        yield fs
    finally:
        fs.close()


def _load_kernel(case: Case, fs: BpfFs) -> tuple[KernelObject, Callable[[], None]]:
    obj = OBJECTS / f"{case.obj}.bpf.o"
    progs, maps = fs.fresh_dir(case.obj), fs.fresh_dir(case.obj + "_maps")

    def cleanup() -> None:
        remove_pins(progs, maps)

    try:
        (load_iproute2 if case.iproute2 else load_with_bpftool)(obj, progs, maps)
        kobj = KernelObject.open(progs, maps)
    except BaseException:
        cleanup()
        raise
    return kobj, cleanup


def _check_sequence(case: Case, fs: BpfFs, seq: list[tuple[bytes, bytes | None]]) -> None:
    ncpus = possible_cpus()
    kobj, cleanup = _load_kernel(case, fs)
    try:
        sides = [Tcemu(case, ncpus, tier) for tier in TIERS]
        names = list(sides[0].coll.maps)
        mapping = {k: tcemu_map_name(k, names) for k in kobj.maps}
        assert sorted(mapping.values()) == sorted(names), (
            f"maps differ: kernel {sorted(kobj.maps)} vs tcemu {sorted(names)}")
        for name, key, value in case.preload:
            kobj.update(name, key, value)
            for side in sides:
                side.coll.maps[name].update(key, value)
        for step, (data, ctx) in enumerate(seq):
            want = _kernel_outcome(kobj, case, data, ctx)
            kstate = _apply_exclusions(
                {mapping[k]: v for k, v in kobj.read_all().items()}, case)
            for side in sides:
                got = side.outcome(data, ctx)
                where = f"{case.id} [{side.tier}] after\n{_describe(seq, step)}"
                assert got == want, f"outcome differs {where}\nkernel {want}\ntcemu  {got}"
                tstate = _apply_exclusions(side.read_all(), case)
                for name in sorted(kstate):
                    assert tstate[name] == kstate[name], (
                        f"map {name} differs {where}\nkernel {kstate[name]}\n"
                        f"tcemu  {tstate[name]}")
    finally:
        kobj.close()
        cleanup()


@pytest.mark.kernel
@pytest.mark.parametrize("case", list(_params()))
def test_object_matches_kernel(case: Case, bpffs: BpfFs) -> None:
    # A tcemu load failure (a helper not implemented yet) shows at once, not per example.
    Tcemu(case, possible_cpus(), "interp")
    # Shrinking a known (xfail) difference only costs time.
    phases = [Phase.explicit, Phase.generate] if case.xfail else list(Phase)

    # derandomize=True alone would give every case the same sequences (the seed comes from
    # this inner function); @seed keeps the run deterministic but different per case.
    @seed(zlib.crc32(case.id.encode()))
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=phases,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(seq=sequences())
    def check(seq: list[tuple[bytes, bytes | None]]) -> None:
        _check_sequence(case, bpffs, seq)

    check()


def test_every_object_has_a_case() -> None:
    """Every committed object is exercised, and every case's object is committed."""
    objects = {p.name.removesuffix(".bpf.o") for p in OBJECTS.glob("*.bpf.o")}
    sources = {p.stem for p in OBJECTS.glob("*.c")}
    assert objects == sources, "objects and sources differ: run make -C tests/testdata/objects"
    assert {c.obj for c in CASES} == objects
    assert len(objects) >= 25



# --- minimal recorded differences -----------------------------------------------------------

_CASE = {c.id: c for c in CASES}
_MAC_A, _MAC_B = ko.MAC_POOL[0], ko.MAC_POOL[1]
_TCP_SYN = ether(_MAC_A, _MAC_B, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 6,
                                               tcp4("10.0.0.1", "10.0.0.2", 80, 443, 0x02, b"")))
_UDP = ether(_MAC_A, _MAC_B, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 17,
                                          udp4("10.0.0.1", "10.0.0.2", 53, 53, b"query")))


def _gso_ctx(gso_size: int = 0, gso_segs: int = 0) -> bytes:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 164, gso_segs)
    struct.pack_into("<I", ctx, 176, gso_size)
    return bytes(ctx)


MINIMAL = [
    # Regression cases for differences found (and fixed) by this harness.
    # One TCP packet: pushed on the stack, popped twice; the second pop finds it empty and
    # the kernel zeroes the value buffer.
    pytest.param("queue_stack:queue_stack", [(_TCP_SYN, None)], id="queue_stack-pop-empty"),
    # ctx_in gso_size = 1448: out[3] (clone to lo) and out[5] (clone to ifindex 0x7fff)
    # are -EBADMSG (-74) in the kernel (tcemu once gave 0 and -EINVAL).
    pytest.param("redirect:clone_to_lo", [(_UDP, _gso_ctx(gso_size=1448))],
                 id="clone_redirect-gso"),
    # gso_segs 1 without gso_size (not GSO): the 47-byte frame grows by 16; ctx_out gso_segs
    # stays 1 in the kernel (tcemu once reset it).  Same for adjust_room with gso_segs 4.
    pytest.param("skb_resize:change_tail", [(_UDP, _gso_ctx(gso_segs=1))],
                 id="change_tail-gso_segs"),
    pytest.param("skb_resize:adjust_room", [(_UDP, _gso_ctx(gso_segs=4))],
                 id="adjust_room-gso_segs"),
    # gso_size 1448: out[9] and out[10] (grow by 8, shrink by 4) are -524 in the kernel and
    # the packet is unchanged (tcemu once resized it).
    pytest.param("skb_resize:adjust_room", [(_UDP, _gso_ctx(gso_size=1448))],
                 id="adjust_room-gso"),
]


@pytest.mark.kernel
@pytest.mark.parametrize(("case_id", "seq"), MINIMAL)
def test_minimal_difference(case_id: str, seq: list[tuple[bytes, bytes | None]],
                            bpffs: BpfFs) -> None:
    _check_sequence(_CASE[case_id], bpffs, seq)
