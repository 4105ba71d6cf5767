"""bpf_fib_lookup and bpf_check_mtu under BPF_PROG_TEST_RUN against the kernel, both tiers
(``net/core/filter.c`` ``bpf_skb_fib_lookup``/``bpf_ipv4_fib_lookup``,
``bpf_skb_check_mtu``; kernel-semantics.md sections 4.2 and 9.4).

Under test_run the skb's device is ``lo`` of the caller's network namespace, and the lookup
reads that namespace's routes and neighbours.  The kernel side therefore runs in a
throwaway namespace (:class:`tcemu.kernel.netns.KernelNet`) holding a veth ``d0`` (its
peer ``p0`` in the same namespace: this kernel has no dummy devices; d0 is ifindex 3, MTU
1400, 10.0.0.1/24, neighbour 10.0.0.2), a gateway route, a gateway without neighbour,
blackhole/unreachable/prohibit routes and a route in table 100, with IPv4 forwarding on
(namespace ``fwd``) or off (``nofwd``, the case name's suffix); tcemu's side is a
:class:`tcemu.net.Net` configured the same way.  KernelNet disables IPv6 in its namespaces;
namespace ``v6`` turns it back on for d0 and adds IPv6 addresses, a neighbour and routes.

The program builds ``struct bpf_fib_lookup`` on the stack, calls the helper (rc in cb[0],
r0), and copies the 64 parameter bytes after the call into the packet at offset 14
(data_out), so ifindex, addresses, MACs and mtu_result are compared byte for byte.

tcemu's side: ``prog_test_run`` with a ``vm`` whose ``env`` is the network's
:class:`tcemu.net.env.NetEnv`; without a network skb the lookup runs on ``lo`` of the
network's default namespace, as the kernel's test_run runs on the caller's ``lo``.

bpf_check_mtu reads device MTUs from ``env.device_infos(skb)``: on a network's
environment, the namespace of the skb's device, and for test_run's skb (no device) the
default namespace's; :func:`test_check_mtu` and :func:`test_check_mtu_with_net_env` run
on such an environment.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tcemu.bpf import Program
from tcemu.bpf.vm import Vm
from tcemu.errors import KernelError
from tcemu.kernel.netns import KernelNet
from tcemu.net import Net
from tests.kernel.test_helpers_common import (
    MAC_B,
    Case,
    assert_same,
    params,
    stack_fill,
    unavailable,
)

pytestmark = pytest.mark.kernel

MAC_D, MAC_P = bytes.fromhex("020000000d00"), bytes.fromhex("020000000d01")
D0 = 3   # a veth's peer is registered first: p0 is 2, d0 is 3
AF_INET = 2
PACKET = bytes(6) + bytes(6) + b"\x88\xb5" + bytes(100)       # room for the 64 bytes
BIG = bytes(6) + bytes(6) + b"\x88\xb5" + bytes(1486)          # 1500 bytes > d0's 1418
# (destination, table-100 route?) -> what the namespace holds (see the module docstring)
DSTS = {"neigh": "10.0.0.2", "gw": "10.7.0.9", "nogw": "10.6.0.1", "noroute": "192.0.2.1",
        "blackhole": "10.5.0.1", "unreach": "10.4.0.1", "prohibit": "10.3.0.1",
        "local": "10.0.0.1", "table100": "10.9.0.1", "unknown-neigh": "10.0.0.77"}
DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK = 1, 2, 4, 8, 16, 32


def _params(dst: str, *, ifindex: int = D0, tot_len: int = 0, family: int = AF_INET,
            src: str = "0.0.0.0", tbid: int = 0, mark: int = 0) -> bytes:
    p = bytearray(64)
    struct.pack_into("<BBHHHI", p, 0, family, 17, 0x3930, 0x3500, tot_len, ifindex)
    p[16:20] = bytes(int(x) for x in src.split("."))
    p[32:36] = bytes(int(x) for x in dst.split("."))
    struct.pack_into("<I", p, 48, tbid)
    if mark:
        struct.pack_into("<I", p, 52, mark)
    return bytes(p)


def _lines(params_in: bytes, flags: int, plen: int = 64) -> tuple[str, ...]:
    return (*stack_fill(64, params_in), "r1 = r6", "r2 = r10", "r2 += -64", f"r3 = {plen}",
            f"r4 = {flags:#x}", "call bpf_fib_lookup", "*(u32 *)(r6 +48) = r0",
            "r1 = r6", "r2 = 14", "r3 = r10", "r3 += -64", "r4 = 64", "r5 = 0",
            "call bpf_skb_store_bytes", "*(u32 *)(r6 +52) = r0",
            "r0 = *(u32 *)(r6 +48)", "exit")


def _cases() -> Iterator[tuple[str, Case]]:
    for name, dst in DSTS.items():
        for flags in (0, SKIP_NEIGH, OUTPUT, SRC, DIRECT, SKIP_NEIGH | SRC):
            yield f"{name}-f{flags}", Case(_lines(_params(dst), flags), PACKET)
    for ifindex in (1, 2, 99, 0):
        yield f"gw-iif{ifindex}", Case(_lines(_params(DSTS["gw"], ifindex=ifindex), 0), PACKET)
    for tot_len in (1400, 1401, 20):
        yield f"gw-tot{tot_len}", Case(_lines(_params(DSTS["gw"], tot_len=tot_len), 0), PACKET)
    yield "gw-big-frame", Case(_lines(_params(DSTS["gw"]), 0), BIG)
    yield "gw-big-frame-tot", Case(_lines(_params(DSTS["gw"], tot_len=1000), 0), BIG)
    for tbid in (100, 254, 5):
        for flags in (DIRECT | TBID, TBID):
            yield f"table100-tbid{tbid}-f{flags}", Case(
                _lines(_params(DSTS["table100"], tbid=tbid), flags), PACKET)
    yield "gw-mark", Case(_lines(_params(DSTS["gw"], mark=7), MARK), PACKET)
    yield "gw-src-given", Case(_lines(_params(DSTS["gw"], src="10.0.0.1"), SRC), PACKET)
    yield "gw-family7", Case(_lines(_params(DSTS["gw"], family=7), 0), PACKET)
    yield "gw-badflags", Case(_lines(_params(DSTS["gw"]), 0x40), PACKET)
    yield "gw-plen63", Case(_lines(_params(DSTS["gw"]), 0, plen=63), PACKET)


CASES: dict[str, Case] = {
    f"{name}-{'fwd' if fwd else 'nofwd'}": Case(case.lines, case.packet)
    for name, case in _cases() for fwd in (True, False)
}

# --- the kernel's namespace and tcemu's network ---------------------------------------------


def _sysctl_forwarding(kn: KernelNet, ns: str, on: bool) -> None:
    subprocess.run(["ip", "netns", "exec", kn.netns_name(ns), "sysctl", "-qw",
                    f"net.ipv4.ip_forward={int(on)}"], check=True)


def _kernel_ns(kn: KernelNet, ns: str, forwarding: bool) -> None:
    kn.netns(ns)
    kn.veth("d0", ns, "p0", ns, mac0=MAC_D, mac1=MAC_P)
    kn.up(ns, "p0")
    kn.up(ns, "d0", mtu=1400)
    assert kn.ifindex(ns, "d0") == D0
    kn.addr(ns, "d0", "10.0.0.1/24")
    kn.neigh(ns, "d0", "10.0.0.2", MAC_B)
    kn.route(ns, "10.7.0.0/16", via="10.0.0.2")
    kn.route(ns, "10.6.0.0/16", via="10.0.0.9")
    for kind, prefix in (("blackhole", "10.5.0.0/16"), ("unreachable", "10.4.0.0/16"),
                         ("prohibit", "10.3.0.0/16")):
        kn.ip(ns, "route", "add", kind, prefix)
    kn.ip(ns, "route", "add", "10.9.0.0/16", "dev", "d0", "table", "100")
    _sysctl_forwarding(kn, ns, forwarding)


def tcemu_net(forwarding: bool) -> Net:
    net = Net()
    dev = net.link_add("d0", "veth", peer="p0", address=MAC_D, peer_address=MAC_P, mtu=1400)
    assert dev.ifindex == D0
    net.link_set("p0", up=True)
    net.link_set("d0", up=True)
    net.addr_add("d0", "10.0.0.1/24")
    net.neigh_add("d0", "10.0.0.2", MAC_B)
    net.route_add("10.7.0.0/16", via="10.0.0.2")
    net.route_add("10.6.0.0/16", via="10.0.0.9")
    for kind, prefix in (("blackhole", "10.5.0.0/16"), ("unreachable", "10.4.0.0/16"),
                         ("prohibit", "10.3.0.0/16")):
        net.route_add(prefix, type=kind)
    net.route_add("10.9.0.0/16", dev="d0", table=100)
    net.sysctl_forwarding("default", forwarding)
    return net


def _vm_factory(net: Net) -> Callable[[Program], Vm]:
    return lambda prog: Vm(net.env, helpers=prog.default_helpers())


@pytest.fixture(scope="module")
def kernel_net() -> Iterator[KernelNet]:
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    try:
        kn = KernelNet(prefix="tcemu-fib-")
    except KernelError as err:
        unavailable(f"kernel namespaces unavailable: {err}")
    with kn:
        _kernel_ns(kn, "fwd", True)
        _kernel_ns(kn, "nofwd", False)
        _kernel_v6(kn)
        yield kn


def _run_in(kn: KernelNet, ns: str) -> Callable[[Callable[[], Any]], Any]:
    return lambda fn: kn.run_in(ns, fn)


@pytest.mark.parametrize("name", list(params(CASES)))
def test_fib_lookup(name: str, kernel_net: KernelNet) -> None:
    case = CASES[name]
    ns = name.rsplit("-", 1)[1]
    assert_same(case.program(), case.packet, case.ctx, case.flags,
                run_in=_run_in(kernel_net, ns), vm_factory=_vm_factory(tcemu_net(ns == "fwd")))


# --- IPv6 lookups: namespace "v6" is "fwd" plus IPv6 on d0 (2001:db8::1/64, neighbour ::2,
# 2001:db8:7::/48 via ::2, 2001:db8:6::/48 via ::9 without neighbour, forwarding on).

AF_INET6 = 10
DSTS6 = {"neigh": "2001:db8::2", "gw": "2001:db8:7::9", "nogw": "2001:db8:6::1",
         "noroute": "2001:db8:99::1", "local": "2001:db8::1", "defmetric": "2001:db8:5::1"}


def _params6(dst: str, *, tot_len: int = 0, ifindex: int = D0) -> bytes:
    p = bytearray(64)
    struct.pack_into("<BBHHHI", p, 0, AF_INET6, 17, 0x3930, 0x3500, tot_len, ifindex)
    p[32:48] = ipaddress.IPv6Address(dst).packed
    return bytes(p)


def _v6_cases() -> Iterator[tuple[str, Case]]:
    for name, dst in DSTS6.items():
        for flags in (0, SKIP_NEIGH, OUTPUT, SRC, DIRECT):
            yield f"v6-{name}-f{flags}", Case(_lines(_params6(dst), flags), PACKET)
    for tot_len in (1300, 1400, 1401):
        yield f"v6-gw-tot{tot_len}", Case(_lines(_params6(DSTS6["gw"], tot_len=tot_len), 0),
                                          PACKET)
    yield "v6-gw-big-frame", Case(_lines(_params6(DSTS6["gw"]), 0), BIG)


V6_CASES: dict[str, Case] = dict(_v6_cases())


def _enable_ipv6() -> None:
    for scope in ("all", "default", "lo", "d0", "p0"):
        Path(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6").write_text("0")
    Path("/proc/sys/net/ipv6/conf/all/forwarding").write_text("1")


def _kernel_v6(kn: KernelNet) -> None:
    _kernel_ns(kn, "v6", True)
    kn.run_in("v6", _enable_ipv6)
    kn.ip("v6", "-6", "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad")
    kn.ip("v6", "-6", "neigh", "add", "2001:db8::2", "lladdr", MAC_B.hex(":"), "dev", "d0",
          "nud", "permanent")
    kn.ip("v6", "-6", "route", "add", "2001:db8:7::/48", "via", "2001:db8::2")
    kn.ip("v6", "-6", "route", "add", "2001:db8:6::/48", "via", "2001:db8::9")
    kn.ip("v6", "-6", "route", "add", "2001:db8:5::/48", "via", "2001:db8::2")


def tcemu_net_v6() -> Net:
    net = tcemu_net(True)
    net.addr_add("d0", "2001:db8::1/64")
    net.neigh_add("d0", "2001:db8::2", MAC_B)
    # The kernel's default metric of IPv6 routes, given explicitly on two of the three.
    net.route_add("2001:db8:7::/48", via="2001:db8::2", metric=1024)
    net.route_add("2001:db8:6::/48", via="2001:db8::9", metric=1024)
    net.route_add("2001:db8:5::/48", via="2001:db8::2")
    return net


@pytest.mark.parametrize("name", list(params(V6_CASES)))
def test_fib_lookup_ipv6(name: str, kernel_net: KernelNet) -> None:
    case = V6_CASES[name]
    assert_same(case.program(), case.packet, run_in=_run_in(kernel_net, "v6"),
                vm_factory=_vm_factory(tcemu_net_v6()))


# --- bpf_check_mtu(skb, ifindex, *mtu_len, len_diff, flags) against the namespace's devices:
# ifindex 0 is the skb's device (lo), 2 is p0 (MTU 1500), 3 is d0 (MTU 1400).  r0 is the
# result, cb[1] the MTU written back.

def _mtu(ifindex: int, mtu_in: int, diff: int, flags: int) -> tuple[str, ...]:
    return ("r2 = 0", "*(u64 *)(r10 -8) = r2", f"r2 = {mtu_in}", "*(u32 *)(r10 -8) = r2",
            "r1 = r6", f"r2 = {ifindex}", "r3 = r10", "r3 += -8", f"r4 = {diff}",
            f"r5 = {flags}", "call bpf_check_mtu", "*(u32 *)(r6 +48) = r0",
            "r2 = *(u32 *)(r10 -8)", "*(u32 *)(r6 +52) = r2", "exit")


def _gso_ctx(gso_size: int, segs: int) -> bytes:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 164, segs)
    struct.pack_into("<I", ctx, 176, gso_size)
    return bytes(ctx)


def _tcp(size: int) -> bytes:
    from tests.kernel.test_helpers_common import tcp_frame
    return tcp_frame(bytes(size - 54))


def _mtu_cases() -> Iterator[tuple[str, Case]]:
    for ifindex in (0, 1, 2, D0, 99):
        for size in (1000, 1418, 1419, 1500):
            yield f"mtu-if{ifindex}-len{size}", Case(_mtu(ifindex, 0, 0, 0), _tcp(size))
    for mtu_in, diff in ((1400, 0), (1401, 0), (1386, 14), (0, -100), (0, -2000), (0, 1000),
                         (1500, -101)):
        yield f"mtu-d0-in{mtu_in}-diff{diff}", Case(_mtu(D0, mtu_in, diff, 0), _tcp(1500))
    for gso_size, segs in ((500, 3), (1400, 2), (1460, 2)):
        for flags in (0, 1):
            yield f"mtu-d0-gso{gso_size}-f{flags}", Case(_mtu(D0, 0, 0, flags), _tcp(1500),
                                                         _gso_ctx(gso_size, segs))
    yield "mtu-d0-gso500-f1-fits", Case(_mtu(D0, 0, 0, 1), _tcp(1000), _gso_ctx(500, 2))
    for mtu_in, diff, flags in ((0, 0, 2), (5, 0, 1), (0, 4, 1)):
        yield f"mtu-d0-flags{flags}-in{mtu_in}-diff{diff}", Case(_mtu(D0, mtu_in, diff, flags),
                                                                 _tcp(1000))


MTU_CASES: dict[str, Case] = dict(_mtu_cases())


def _vm_with_devices(net: Net) -> Callable[[Program], Vm]:
    """A VM on the network's environment (whose device_infos gives the default
    namespace's devices to test_run's skb)."""
    def make(prog: Program) -> Vm:
        return Vm(net.env, helpers=prog.default_helpers())
    return make


@pytest.mark.parametrize("name", list(params(MTU_CASES)))
def test_check_mtu(name: str, kernel_net: KernelNet) -> None:
    case = MTU_CASES[name]
    assert_same(case.program(), case.packet, case.ctx, case.flags,
                run_in=_run_in(kernel_net, "fwd"), vm_factory=_vm_with_devices(tcemu_net(True)))


# prog_test_run on a network's environment sees the default namespace's devices by itself.
MTU_NET_ENV_CASES: dict[str, Case] = {
    name: Case(MTU_CASES[name].lines, MTU_CASES[name].packet)
    for name in ("mtu-if3-len1000", "mtu-if2-len1500")
}


@pytest.mark.parametrize("name", list(params(MTU_NET_ENV_CASES)))
def test_check_mtu_with_net_env(name: str, kernel_net: KernelNet) -> None:
    case = MTU_NET_ENV_CASES[name]
    assert_same(case.program(), case.packet, run_in=_run_in(kernel_net, "fwd"),
                vm_factory=_vm_factory(tcemu_net(True)))

