"""bpf_get_cgroup_classid, bpf_get_route_realm and bpf_skb_ecn_set_ce under
BPF_PROG_TEST_RUN against the kernel, both tiers (``net/core/filter.c``; kernel-semantics.md
sections 4.2, 4.5 and 8).

Under test_run the program runs in the calling task's context (not in softirq), so
bpf_get_cgroup_classid is the net_cls class id of the caller's cgroup: the kernel side runs
from a thread placed in a private net_cls v1 cgroup (:class:`tcemu.kernel.netcls.NetCls`),
tcemu's with ``Env(task=Task(classid=...))``.  The test_run skb has no route (dst), so
bpf_get_route_realm is 0.  bpf_skb_ecn_set_ce marks ECT packets CE (IPv4 with its header
checksum fixed, IPv6), leaves others, and fails (0) on short or non-IP packets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tcemu.bpf import Program
from tcemu.bpf.env import Env, Task
from tcemu.bpf.vm import Vm
from tcemu.errors import KernelError
from tcemu.kernel.netcls import NetCls
from tests.kernel.objects_oracle import ether
from tests.kernel.test_helpers_common import (
    MAC_A,
    MAC_B,
    Case,
    assert_same,
    call,
    params,
    run_case,
    udp6_frame,
    udp_frame,
    unavailable,
)

pytestmark = pytest.mark.kernel

UDP = udp_frame()
FIELDS = ["r0 = *(u32 *)(r6 +0)", "r2 = *(u32 *)(r6 +16)", "r2 <<= 32", "r0 ^= r2", "exit"]

CLASSID_CASES: dict[str, Case] = {
    f"classid-{classid:#x}": Case((*call("bpf_get_cgroup_classid", slot=0),
                                   *call("bpf_get_cgroup_classid", slot=1), "exit"), UDP)
    for classid in (0, 0x10002, 0xFFFF_FFFF)
}
CASES: dict[str, Case] = {
    "route_realm": Case((*call("bpf_get_route_realm", slot=0), "exit"), UDP),
    "route_realm-arp": Case((*call("bpf_get_route_realm", slot=0), "exit"),
                            ether(MAC_B, MAC_A, 0x0806, bytes(28))),
}


def _v4(tos: int, *, ihl_cut: bool = False) -> bytes:
    frame = bytearray(udp_frame(tos=tos))
    if ihl_cut:
        frame[14] = 0x4F            # ihl 15: longer than the packet
    return bytes(frame)


ECN_PACKETS = {
    **{f"v4-tos{tos:#x}": _v4(tos) for tos in (0, 1, 2, 3, 0xB9, 0xBA, 0xFC)},
    "v4-ihl15": _v4(2, ihl_cut=True),
    **{f"v6-tclass{tc:#x}": udp6_frame(tclass=tc) for tc in (0, 1, 2, 3, 0xB9, 0xFE)},
    "v4-short": _v4(2)[:30],
    "v6-short": udp6_frame(tclass=2)[:50],
    "arp": ether(MAC_B, MAC_A, 0x0806, bytes(28)),
    "v4-as-v6": ether(MAC_B, MAC_A, 0x86DD, _v4(2)[14:] + bytes(20)),
    "v6-in-8021q": udp6_frame(tclass=2)[:12] + bytes.fromhex("81000005") + udp6_frame(2)[12:],
}
for pname, packet in ECN_PACKETS.items():
    for tflags in (0, 4):
        CASES[f"ecn-{pname}-t{tflags}"] = Case(
            (*call("bpf_skb_ecn_set_ce", slot=0), *call("bpf_skb_ecn_set_ce", slot=1),
             *FIELDS), packet, flags=tflags)


@pytest.mark.parametrize("name", list(params(CASES)))
def test_misc_helper(name: str) -> None:
    run_case(CASES[name])


@pytest.fixture(scope="module")
def netcls() -> Iterator[NetCls]:
    cls = NetCls()
    try:
        cls.cgroup(0)        # mount now: a machine without net_cls fails here
    except KernelError as err:
        cls.close()
        unavailable(f"net_cls cgroup v1 unavailable: {err}")
    try:
        yield cls
    finally:
        cls.close()


def _as_member(cls: NetCls, classid: int) -> Callable[[Callable[[], Any]], Any]:
    """Run a callable from this thread while it is a task of the cgroup of ``classid``."""
    def run(fn: Callable[[], Any]) -> Any:
        child = cls.cgroup(classid)
        tid = str(threading.get_native_id())
        (child / "tasks").write_text(tid)
        try:
            return fn()
        finally:
            (child.parent / "tasks").write_text(tid)
    return run


@pytest.mark.parametrize("name", list(params(CLASSID_CASES)))
def test_get_cgroup_classid(name: str, netcls: NetCls) -> None:
    classid = int(name.split("-")[1], 16)
    case = CLASSID_CASES[name]

    def vm(prog: Program) -> Vm:
        return Vm(Env(task=Task(classid=classid)), helpers=prog.default_helpers())

    assert_same(case.program(), case.packet, run_in=_as_member(netcls, classid),
                vm_factory=vm)
