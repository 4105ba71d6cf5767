"""``BPF_PROG_TEST_RUN`` for SCHED_CLS, SCHED_ACT and SOCKET_FILTER programs.

Mirrors ``net/bpf/test_run.c`` ``bpf_prog_test_run_skb()`` as kernel-semantics.md section 9
describes it: the size limits, which ``struct __sk_buff`` fields ``ctx_in`` may set, how the
skb is built (``eth_type_trans`` against ``lo``), ``repeat`` runs on the same skb, the
``BPF_F_TEST_SKB_CHECKSUM_COMPLETE`` check, and what ``ctx_out`` reports.  Errors are the
kernel's errnos, raised as :class:`TestRunError`.
"""

from __future__ import annotations

import errno as err
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu import csum
from tcemu.bpf import memory as mem
from tcemu.bpf.uapi import BpfProgType
from tcemu.errors import TcemuError
from tcemu.skb import (
    CHECKSUM_COMPLETE,
    ETH_HLEN,
    SKB_CTX_SIZE,
    SKB_INLINE_LOADS,
    PktType,
    SkBuff,
    check_ctx_access,
    ctx_image,
    ctx_loader,
    ctx_store,
)

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Tier, Vm

__all__ = ["BPF_F_TEST_SKB_CHECKSUM_COMPLETE", "SkbContext", "TestRunError", "TestRunResult",
           "prog_test_run"]

BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 4
MAX_DATA = 4096 - 64 - 320          # PAGE_SIZE - headroom - skb_shared_info (x86-64)
LO_IFINDEX = 1
ENOTSUPP = 524  # kernel-internal errno, not in userspace errno.h
# ctx_in bytes that may be non-zero (bpf_ctx_finish / convert___skb_to_skb).
_SETTABLE = ((8, 4), (32, 4), (36, 4), (40, 4), (48, 20), (152, 8), (160, 4), (164, 4),
             (176, 4), (184, 8))
_TSTAMP_TYPE_OFFSET = 180
_PACKET_BASE = mem.addr(mem.MEM_RID)      # skb->data: the packet region's first byte
_ALLOWED = sum(((1 << (8 * size)) - 1) << (8 * off) for off, size in _SETTABLE)


class TestRunError(TcemuError):
    """BPF_PROG_TEST_RUN refused the input, with the kernel's errno."""

    __test__ = False  # not a pytest test class

    def __init__(self, message: str, *, errno: int) -> None:
        self.errno = errno
        super().__init__(f"test run: {message} ({err.errorcode.get(errno, errno)})")


@dataclass(frozen=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN returns: retval (low 32 bits of r0), data, ctx, mean ns."""

    __test__ = False

    retval: int
    data_out: bytes
    ctx_out: bytes
    duration: int
    insns: int = 0            # instructions executed by the last run (tcemu's extra)


class SkbContext:
    """``struct __sk_buff`` accesses of one program type on one :class:`SkBuff`.

    ``inline_loads`` tells the translated tier which loads follow from the packet alone
    (``data``, ``data_meta``, ``data_end``, ``len``): it computes those inline from the
    packet region (which is ``skb.data`` for the run) instead of calling :meth:`load`.
    """

    inline_loads: ClassVar[Mapping[int, str]] = SKB_INLINE_LOADS

    region: ClassVar[int] = mem.MEM_RID     # the packet region (skb->data ...)

    def __init__(self, skb: SkBuff, prog_type: BpfProgType) -> None:
        self.skb = skb
        self.prog_type = prog_type
        self.tstamp_type_access = True

    # What legacy LD_ABS/LD_IND read of the skb besides its bytes (memory.PacketHeaders),
    # as they are when the load runs: a run's context model is its packet view too.
    @property
    def headroom(self) -> int:
        return self.skb.headroom

    @property
    def mac(self) -> int:
        return self.skb.mac_header

    @property
    def network(self) -> int:
        return self.skb.network_header

    @property
    def head(self) -> bytes:
        return self.skb.head

    @property
    def key(self) -> object:
        return ("__sk_buff", self.prog_type)

    def check(self, offset: int, size: int, write: bool) -> bool:
        return check_ctx_access(offset, size, write, self.prog_type) is not None

    def load(self, offset: int, size: int) -> int:
        return ctx_loader(offset, size, self.tstamp_type_access)(self.skb, _PACKET_BASE)

    def store(self, offset: int, size: int, value: int) -> None:
        ctx_store(self.skb, offset, size, value, self.tstamp_type_access)


def _ctx_tail(ctx: bytes) -> bytes:
    """``bpf_ctx_init``: a ctx_in longer than the struct must end in zeros (E2BIG)."""
    if len(ctx) > SKB_CTX_SIZE:
        if any(ctx[SKB_CTX_SIZE:]):
            raise TestRunError("ctx_in has non-zero bytes past struct __sk_buff", errno=err.E2BIG)
        ctx = ctx[:SKB_CTX_SIZE]
    return ctx.ljust(SKB_CTX_SIZE, b"\0")


def _check_ctx(ctx: bytes) -> bytes:
    """``convert___skb_to_skb``: only the settable fields may be non-zero (EINVAL)."""
    forbidden = int.from_bytes(ctx, "little") & ~_ALLOWED
    if forbidden:
        off = ((forbidden & -forbidden).bit_length() - 1) // 8
        raise TestRunError(f"ctx_in byte {off} may not be set", errno=err.EINVAL)
    return ctx


def _eth_type_trans(skb: SkBuff) -> None:
    """Set pkt_type and protocol as ``eth_type_trans`` does against ``lo``."""
    dst = bytes(skb.data[0:6])
    lo_addr, lo_broadcast = bytes(6), bytes(6)   # lo: all-zero address and broadcast
    if dst[0] & 1:
        skb.pkt_type = PktType.BROADCAST if dst == lo_broadcast else PktType.MULTICAST
    elif dst != lo_addr:
        skb.pkt_type = PktType.OTHERHOST
    ethertype = int.from_bytes(skb.data[12:14], "big")
    if ethertype >= 0x0600:
        skb.protocol = ethertype
    else:
        skb.protocol = 0x0001 if skb.data[14:16] == b"\xff\xff" else 0x0004


def build_skb(data: bytes, ctx: bytes, l2: bool = True) -> SkBuff:
    """The skb ``bpf_prog_test_run_skb`` builds, with its checks in the kernel's order:
    the device (ENODEV), the IP header length (EINVAL), then the ctx_in fields (EINVAL)."""
    skb = SkBuff(bytearray(data))
    mark, = struct.unpack_from("<I", ctx, 8)
    priority, iif, ifindex = struct.unpack_from("<III", ctx, 32)
    if ifindex > LO_IFINDEX:
        raise TestRunError(f"no device with ifindex {ifindex}", errno=err.ENODEV)
    _eth_type_trans(skb)
    l3 = len(data) - ETH_HLEN
    if (skb.protocol == 0x0800 and l3 < 20) or (skb.protocol == 0x86DD and l3 < 40):
        raise TestRunError("IP packet shorter than its fixed header", errno=err.EINVAL)
    _check_ctx(ctx)
    if not l2:
        # A socket filter runs with skb->data at the network header; the L2 header stays
        # in the headroom and is pushed back as zeros for data_out (!is_l2).
        skb.head = bytes(skb.data[:ETH_HLEN])
        del skb.data[:ETH_HLEN]
        skb.mac_header, skb.network_header = -ETH_HLEN, 0
    tstamp, = struct.unpack_from("<Q", ctx, 152)
    wire_len, gso_segs = struct.unpack_from("<II", ctx, 160)
    gso_size, = struct.unpack_from("<I", ctx, 176)
    hwtstamp, = struct.unpack_from("<Q", ctx, 184)
    if wire_len and not skb.len <= wire_len <= 65536:
        raise TestRunError(f"wire_len {wire_len} not in {skb.len}..65536", errno=err.EINVAL)
    if gso_segs > 65535:
        raise TestRunError(f"gso_segs {gso_segs} > 65535", errno=err.EINVAL)
    skb.mark, skb.priority, skb.ingress_ifindex, skb.ifindex = mark, priority, iif, LO_IFINDEX
    skb.cb = bytearray(ctx[48:68])
    skb.tstamp, skb.wire_len = tstamp, wire_len or skb.len
    skb.gso_segs, skb.gso_size, skb.hwtstamp, skb.has_sk = gso_segs, gso_size, hwtstamp, True
    return skb


AF_INET, AF_INET6 = 2, 10
TCP_CLOSE = 7
BPF_SOCK_SIZE = 80


def dummy_sock(skb: SkBuff) -> bytes:
    """The ``struct bpf_sock`` a program reads through ``skb->sk`` under test_run.

    ``bpf_prog_test_run_skb`` gives the skb a socket of its own (``sk_alloc`` +
    ``sock_init_data(NULL, sk)``: type, protocol, ports, mark and priority 0, state
    TCP_CLOSE, no rx queue) whose family and addresses come from the packet when its
    protocol is IPv4 or IPv6 and the linear data holds the whole network header.
    """
    image = bytearray(BPF_SOCK_SIZE)
    l3 = bytes(skb.data[skb.network_header:])
    if skb.protocol == 0x0800:
        struct.pack_into("<I", image, 4, AF_INET)
        if len(l3) >= 20:
            image[24:28], image[52:56] = l3[12:16], l3[16:20]     # src_ip4, dst_ip4
    elif skb.protocol == 0x86DD:
        struct.pack_into("<I", image, 4, AF_INET6)
        if len(l3) >= 40:
            image[28:44], image[56:72] = l3[8:24], l3[24:40]      # src_ip6, dst_ip6
    struct.pack_into("<Ii", image, 72, TCP_CLOSE, -1)             # state, rx_queue_mapping
    return bytes(image)


def prog_test_run(program: Program, data: bytes, ctx: bytes | None = None, *, repeat: int = 1,
             flags: int = 0, vm: Vm | None = None, tier: Tier = "interp",
             timer: Callable[[], int] | None = None) -> TestRunResult:
    """Run ``program`` like ``bpf(BPF_PROG_TEST_RUN)`` and return what the kernel returns.

    ``duration`` is measured with ``timer`` (e.g. ``time.perf_counter_ns``); by default it
    reads the environment's virtual clock, which does not move while programs run, so
    results are reproducible byte for byte (it is then 0).
    """
    from tcemu.bpf.vm import Vm

    prog_type = program.prog_type
    if prog_type not in (BpfProgType.SCHED_CLS, BpfProgType.SCHED_ACT,
                         BpfProgType.SOCKET_FILTER):
        raise TestRunError(f"program type {prog_type.name} has no skb test run",
                           errno=ENOTSUPP)
    if flags & ~BPF_F_TEST_SKB_CHECKSUM_COMPLETE:
        raise TestRunError(f"flags {flags:#x} not supported", errno=err.EINVAL)
    if not ETH_HLEN <= len(data) <= MAX_DATA:      # bpf_test_init, before anything else
        raise TestRunError(f"data_size_in {len(data)} not in {ETH_HLEN}..{MAX_DATA}",
                           errno=err.EINVAL)
    ctx_in = _ctx_tail(ctx or b"")
    l2 = prog_type is not BpfProgType.SOCKET_FILTER
    skb = build_skb(data, ctx_in, l2)
    if flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE:
        skb.ip_summed = CHECKSUM_COMPLETE
        skb.csum = csum.partial(skb.data[skb.network_header:])
    vm = vm if vm is not None else Vm(helpers=program.default_helpers())
    timer = timer if timer is not None else vm.env.clock.now_ns
    model = SkbContext(skb, prog_type)
    model.tstamp_type_access = _TSTAMP_TYPE_OFFSET in program.ctx_reads(model)
    saved, vm.ctx = vm.ctx, model
    try:
        vm.runner(program, tier)  # translate now, so the duration is of the runs alone
    finally:
        vm.ctx = saved
    regions, names = vm.memory.regions, vm.memory.names
    saved_sock = regions[mem.SOCK_RID], names[mem.SOCK_RID]
    vm.memory.map_region(mem.SOCK_RID, dummy_sock(skb), "test_run's dummy socket")
    try:
        start = timer()
        runs = max(repeat, 1)
        for _ in range(runs):
            result = vm.run_with_context(program, model, skb.data, model, tier)
        duration = min((timer() - start) // runs, 0xFFFF_FFFF)
    finally:
        regions[mem.SOCK_RID], names[mem.SOCK_RID] = saved_sock
    if flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE:
        expected = csum.partial(skb.data[skb.network_header:])
        if csum.fold(skb.csum) != csum.fold(expected):
            raise TestRunError("skb->csum does not match the packet", errno=err.EBADMSG)
    ctx_out = bytearray(ctx_in)
    image = ctx_image(skb)
    for off, size in _SETTABLE:
        if off != 176:  # gso_size echoes the input
            ctx_out[off:off + size] = image[off:off + size]
    data_out = bytes(skb.data) if l2 else bytes(ETH_HLEN) + bytes(skb.data)
    return TestRunResult(result.r0 & 0xFFFF_FFFF, data_out, bytes(ctx_out), duration,
                         result.insns)
