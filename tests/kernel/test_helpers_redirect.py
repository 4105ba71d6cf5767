"""Redirect helpers under BPF_PROG_TEST_RUN against the kernel, both tiers: bpf_redirect,
bpf_redirect_peer, bpf_redirect_neigh and bpf_clone_redirect (``net/core/filter.c``;
kernel-semantics.md section 9.4).

Under test_run the three redirects only record their target (the run returns
TC_ACT_REDIRECT, 7, or TC_ACT_SHOT, 2, for bad flags or parameters; nothing is sent).
bpf_clone_redirect really transmits a clone: its kernel side runs in a private network
namespace whose ``lo`` is up, so clones to ifindex 1 stay there.  The capture cases also
compare where the clones went: a packet socket on that ``lo`` against ``net.capture("lo")``
of a :class:`tcemu.net.Net` whose environment runs the program (frames, directions,
order)."""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from tcemu.bpf.vm import Vm
from tcemu.net import Net
from tests.kernel.objects_oracle import private_netns
from tests.kernel.test_helpers_common import (
    TIERS,
    Case,
    Outcome,
    call,
    kernel_outcome,
    params,
    run_case,
    stack_fill,
    tcemu_outcome,
    udp_frame,
)

pytestmark = pytest.mark.kernel

UDP = udp_frame()
ETH_P_ALL = 0x0003
CASES: dict[str, Case] = {}


def _regs(*args: str) -> list[str]:
    """r1.. = args (a ``;`` continues one argument with more instructions)."""
    lines = []
    for i, arg in enumerate(args):
        first, *rest = arg.split(";")
        lines.append(f"r{i + 1} = {first.strip()}")
        lines += [p.strip() for p in rest]
    return lines


# bpf_redirect(ifindex, flags): flags other than BPF_F_INGRESS -> TC_ACT_SHOT
for ifindex, flags in [("1", "0"), ("1", "1"), ("1", "2"), ("99", "0"), ("0xffffffff", "1"),
                       ("0x100000001 ll", "0"), ("1", "0x100000000 ll"), ("0", "0")]:
    CASES[f"redirect-{ifindex}-{flags}".replace(" ", "")] = Case(
        (*_regs(ifindex, flags), "call bpf_redirect", "exit"), UDP)

# bpf_redirect_peer(ifindex, flags): any flag -> TC_ACT_SHOT
for ifindex, flags in [("1", "0"), ("1", "1"), ("7", "0"), ("1", "0x100000000 ll")]:
    CASES[f"redirect_peer-{ifindex}-{flags}".replace(" ", "")] = Case(
        (*_regs(ifindex, flags), "call bpf_redirect_peer", "exit"), UDP)

# bpf_redirect_neigh(ifindex, params, plen, flags): plen 0 or >= sizeof(struct
# bpf_redir_neigh) (20), flags 0, else TC_ACT_SHOT
_NH4 = struct.pack("<I4s", 2, bytes([10, 0, 0, 2])) + bytes(12)
_NH6 = struct.pack("<I", 10) + bytes.fromhex("20010db8000000000000000000000002")
for nh, plen, nflags in [(None, 0, 0), (_NH4, 20, 0), (_NH4, 24, 0), (_NH4, 16, 0),
                        (_NH6, 20, 0), (None, 0, 1), (_NH4, 20, 1), (_NH4, 1, 0)]:
    fill = stack_fill(24, (nh or b"").ljust(24, b"\0"))
    ptr = "r10; r2 += -24" if nh is not None else "0"
    name = f"redirect_neigh-{'v4' if nh == _NH4 else 'v6' if nh else 'null'}-{plen}-{nflags}"
    CASES[name] = Case((*fill, *_regs("2", ptr, str(plen), str(nflags)),
                        "call bpf_redirect_neigh", "exit"), UDP)


def _gso(gso_size: int) -> bytes:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 176, gso_size)
    return bytes(ctx)


# bpf_clone_redirect(skb, ifindex, flags): -EINVAL for flags other than BPF_F_INGRESS or
# a missing device, -EBADMSG for a GSO skb without a gso_type (ctx_in gso_size)
CLONE_CASES: dict[str, Case] = {}
for ifindex, flags, ctx in [("1", "0", None), ("1", "1", None), ("1", "2", None),
                            ("99", "0", None), ("0", "0", None), ("0x100000001 ll", "0", None),
                            ("1", "0x100000000 ll", None), ("1", "0", _gso(1400)),
                            ("99", "0", _gso(1400)), ("1", "2", _gso(1400))]:
    name = f"clone_redirect-{ifindex}-{flags}{'-gso' if ctx else ''}".replace(" ", "")
    CLONE_CASES[name] = Case((*call("bpf_clone_redirect", ifindex, flags, slot=0),
                              *call("bpf_clone_redirect", ifindex, flags, slot=1),
                              "r0 = *(u32 *)(r6 +0)", "exit"), UDP, ctx)


def _in_private_netns(fn: Callable[[], Any]) -> Any:
    with private_netns():
        return fn()


@pytest.mark.parametrize("name", list(params(CASES)))
def test_redirect(name: str) -> None:
    run_case(CASES[name])


@pytest.mark.parametrize("name", list(params(CLONE_CASES)))
def test_clone_redirect(name: str) -> None:
    run_case(CLONE_CASES[name], run_in=_in_private_netns)


# --- where the clones go: a packet socket on the kernel namespace's lo and net.capture("lo")
# of a tcemu network see the same frames, in the same directions ("out": transmitted by
# lo, "in": received).  The program clones, rewrites the source MAC, clones again.

def _clone_twice(flags: str) -> tuple[str, ...]:
    return (*call("bpf_clone_redirect", "1", flags, slot=0),
            *stack_fill(8, bytes.fromhex("0a0b0c0d0e0f0000")),
            *call("bpf_skb_store_bytes", "6", "r10; r3 += -8", "6", "0", slot=1),
            *call("bpf_clone_redirect", "1", flags, slot=2), "r0 = 0", "exit")


CAPTURE_CASES: dict[str, Case] = {
    "capture-egress": Case(_clone_twice("0"), UDP),
    "capture-ingress": Case(_clone_twice("1"), UDP),
    "capture-bad-flags": Case(_clone_twice("2"), UDP),
    "capture-egress-arp": Case(_clone_twice("0"), UDP[:12] + b"\x08\x06" + bytes(28)),
}
_PACKET_OUTGOING = 4


def _lo_frames(sock: socket.socket) -> list[tuple[str, str]]:
    """Frames the socket got, as (direction, hex); stops after 50 ms without one."""
    out = []
    while select.select([sock], [], [], 0.05)[0]:
        data, addr = sock.recvfrom(65536)
        out.append(("out" if addr[2] == _PACKET_OUTGOING else "in", data.hex()))
    return out


@pytest.mark.parametrize("name", list(params(CAPTURE_CASES)))
def test_clone_redirect_capture(name: str) -> None:
    case = CAPTURE_CASES[name]
    prog = case.program()

    def kernel_side() -> tuple[Outcome, list[tuple[str, str]]]:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
            sock.bind(("lo", 0))
            outcome = kernel_outcome(prog, case.packet)
            return outcome, _lo_frames(sock)

    kernel, kframes = _in_private_netns(kernel_side)
    for tier in TIERS:
        net = Net()
        ours = tcemu_outcome(prog, case.packet, None, 0, tier,
                             Vm(net.env, helpers=prog.default_helpers()))
        net.run()
        frames = [(c.direction, c.data.hex()) for c in net.capture("lo")]
        assert (ours, frames) == (kernel, kframes), f"[{tier}] {name}"
