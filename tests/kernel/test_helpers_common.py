"""Shared machinery of the helper differential tests (``tests/kernel/test_helpers_*.py``).

Every helper test module keeps its programs in a module-level ``CASES`` registry, a dict of
case name -> :class:`Case` (assembly programs) or :class:`ObjCase` (a program of a compiled
object under ``tests/testdata/helpers``), and parametrizes its differential test over that
registry, so that the registry *is* the list of tests run.  ``test_helper_matrix.py`` reads
the same registries (and the programs of the older differential tests), disassembles every
program and derives from the ``call bpf_<name>#`` lines which helper is covered where.

One differential run (:func:`assert_same`): the program is loaded into the kernel and run
once with ``BPF_PROG_TEST_RUN`` (optionally inside a network namespace, through the
``run_in`` callable), then run through tcemu's :func:`tcemu.bpf.testrun.prog_test_run` on
both tiers; the outcomes must be equal: retval, data_out and the 192-byte ctx_out, or the
errno when the test run itself fails.  Programs report helper results in ``cb[]`` (part of
ctx_out) and in r0; results of helpers that are nondeterministic in the kernel (the salted
flow hash) are reduced to their deterministic properties by the program itself.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tcemu.bpf import Collection, Program, assemble, load_object
from tcemu.bpf.env import Env
from tcemu.bpf.maps import PerfEventArrayMap
from tcemu.bpf.testrun import TestRunError, prog_test_run
from tcemu.bpf.uapi import BpfProgType
from tcemu.bpf.vm import Tier, Vm
from tcemu.errors import KernelError
from tcemu.kernel import prog_load, test_run
from tests.kernel.objects_oracle import (
    BPFTOOL,
    BpfFs,
    KernelObject,
    MapState,
    ether,
    ip4,
    ipv4,
    ipv6,
    load_with_bpftool,
    possible_cpus,
    remove_pins,
    tcp4,
    udp4,
)

__all__ = ["BPF_F_TEST_SKB_CHECKSUM_COMPLETE", "HELPERS_DIR", "MAC_A", "MAC_B", "TIERS",
           "BpfProgType", "Case", "ObjCase", "Outcome", "assert_object_same", "assert_same",
           "bpffs_fixture", "call", "fold_stack",
           "ip4", "kernel_outcome", "params", "run_case", "stack_fill", "tcemu_outcome",
           "tcp_frame", "udp6_frame", "udp_frame", "unavailable"]

HELPERS_DIR = Path(__file__).resolve().parents[1] / "testdata" / "helpers"
TIERS: tuple[Tier, ...] = ("interp", "jit")
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 4

Outcome = tuple[Any, ...]
RunIn = Callable[[Callable[[], Any]], Any]


def udp_frame(payload: bytes = b"hello world!", *, src: str = "10.0.0.1",
              dst: str = "10.0.0.2", tos: int = 0, checksum: bool = True,
              mac_dst: bytes = MAC_B) -> bytes:
    """Ethernet/IPv4/UDP 1234 -> 53 with correct checksums (UDP checksum 0 if not asked)."""
    seg = udp4(src, dst, 1234, 53, payload, checksum=checksum)
    return ether(mac_dst, MAC_A, 0x0800, ipv4(src, dst, 17, seg, tos=tos))


def tcp_frame(payload: bytes = b"data") -> bytes:
    seg = tcp4("10.0.0.1", "10.0.0.2", 80, 443, 0x18, payload)
    return ether(MAC_B, MAC_A, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, seg))


def udp6_frame(tclass: int = 0, payload: bytes = b"hello6") -> bytes:
    seg = struct.pack("!HHHH", 1234, 53, 8 + len(payload), 0) + payload
    return ether(MAC_B, MAC_A, 0x86DD, ipv6("2001:db8::1", "2001:db8::2", 17, seg,
                                             tclass=tclass))


# --- program building ----------------------------------------------------------------------


def call(helper: str, *args: str, slot: int | None = None) -> list[str]:
    """``r1 = ctx`` (r6), r2.. = ``args``, call ``helper``; r0 into ``cb[slot]`` if given.

    An argument may be several instructions separated by ``;`` whose last one sets the
    register, e.g. ``"r10; r3 += -16"`` for a stack pointer in r3.
    """
    lines = ["r1 = r6"]
    for i, arg in enumerate(args):
        reg = f"r{i + 2}"
        first, *rest = arg.split(";")
        lines.append(f"{reg} = {first.strip()}")
        lines += [part.strip() for part in rest]
    lines.append(f"call {helper}")
    if slot is not None:
        lines.append(f"*(u32 *)(r6 +{48 + 4 * slot}) = r0")
    return lines


def stack_fill(top: int, data: bytes) -> list[str]:
    """Store ``data`` (padded to 8 bytes) at r10-top upwards."""
    padded = data + bytes(-len(data) % 8)
    lines = []
    for i in range(0, len(padded), 8):
        word = int.from_bytes(padded[i:i + 8], "little")
        lines += [f"r2 = {word:#x} ll", f"*(u64 *)(r10 -{top - i}) = r2"]
    return lines


def fold_stack(top: int, size: int) -> list[str]:
    """r0 ^= every u64 of the stack bytes r10-top .. r10-top+size, rotated so that their
    position matters (size a multiple of 8)."""
    lines = []
    for i in range(0, size, 8):
        lines += [f"r2 = *(u64 *)(r10 -{top - i})", "r0 *= 31", "r0 ^= r2"]
    return lines


# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One assembly program run on one packet (the program starts with ``r6 = r1``)."""

    lines: tuple[str, ...]
    packet: bytes
    ctx: bytes | None = None
    flags: int = 0                 # BPF_PROG_TEST_RUN flags (4: CHECKSUM_COMPLETE)
    xfail: str = ""                # a known tcemu difference: strict xfail with the reason

    @property
    def text(self) -> str:
        return "\n".join(["r6 = r1", *self.lines])

    def program(self) -> Program:
        return assemble(self.text)


@dataclass(frozen=True)
class ObjCase:
    """A program of a compiled object in ``tests/testdata/helpers`` run on packets."""

    obj: str
    prog: str
    packets: tuple[bytes, ...]
    xfail: str = ""

    @property
    def path(self) -> Path:
        return HELPERS_DIR / f"{self.obj}.bpf.o"


def params(cases: Mapping[str, Any]) -> Iterator[Any]:
    """pytest params over a CASES registry, with strict xfail marks where recorded."""
    for name, case in cases.items():
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(name, id=name, marks=marks)


# --- the two sides -------------------------------------------------------------------------


def kernel_outcome(prog: Program, packet: bytes, ctx: bytes | None = None, flags: int = 0,
                   run_in: RunIn | None = None) -> Outcome:
    """Load ``prog`` and test-run it once; ``run_in`` runs the test run elsewhere (a netns)."""
    with prog_load(prog.to_bytes(), prog_type=int(prog.prog_type), license="GPL") as fd:
        def run() -> Outcome:
            try:
                r = test_run(fd.fd, packet, ctx=ctx, flags=flags)
            except KernelError as err:
                return ("errno", err.errno)
            return ("ok", r.retval, r.data_out.hex(), r.ctx_out.hex())
        return run_in(run) if run_in is not None else run()


def tcemu_outcome(prog: Program, packet: bytes, ctx: bytes | None, flags: int, tier: Tier,
                  vm: Vm | None = None) -> Outcome:
    try:
        r = prog_test_run(prog, packet, ctx, flags=flags, tier=tier,
                          vm=vm if vm is not None else Vm(helpers=prog.default_helpers()))
    except TestRunError as err:
        return ("errno", err.errno)
    return ("ok", r.retval, r.data_out.hex(), r.ctx_out.hex())


def _window(kernel: bytes, ours: bytes) -> str:
    """Where two byte strings differ: lengths and 16 bytes either side of the first change."""
    first = next((i for i, (a, b) in enumerate(zip(kernel, ours, strict=False)) if a != b),
                 min(len(kernel), len(ours)))
    lo, hi = max(first - 16, 0), first + 16
    return (f"len kernel {len(kernel)} tcemu {len(ours)}, first difference at {first}:\n"
            f"  kernel [{lo}:] {kernel[lo:hi].hex()}\n  tcemu  [{lo}:] {ours[lo:hi].hex()}")


def _explain(kernel: Outcome, ours: Outcome) -> str:
    if kernel[0] != "ok" or ours[0] != "ok" or len(kernel) != len(ours):
        return f"kernel {kernel}\ntcemu  {ours}"
    lines = [f"retval kernel {kernel[1]:#x} tcemu {ours[1]:#x}"]
    if kernel[2] != ours[2]:
        lines.append("data_out " + _window(bytes.fromhex(kernel[2]), bytes.fromhex(ours[2])))
    if kernel[3] != ours[3]:
        kc, tc = bytes.fromhex(kernel[3]), bytes.fromhex(ours[3])
        for off in range(0, min(len(kc), len(tc)), 4):
            if kc[off:off + 4] != tc[off:off + 4]:
                lines.append(f"ctx_out +{off}: kernel {kc[off:off + 4].hex()} "
                             f"tcemu {tc[off:off + 4].hex()}")
    return "\n".join(lines)


def assert_same(prog: Program, packet: bytes, ctx: bytes | None = None, flags: int = 0, *,
                run_in: RunIn | None = None,
                vm_factory: Callable[[Program], Vm] | None = None) -> Outcome:
    """The kernel's outcome equals tcemu's on both tiers; returns the kernel's outcome."""
    kernel = kernel_outcome(prog, packet, ctx, flags, run_in)
    for tier in TIERS:
        vm = vm_factory(prog) if vm_factory is not None else None
        ours = tcemu_outcome(prog, packet, ctx, flags, tier, vm)
        if ours != kernel:
            pytest.fail(f"[{tier}] tcemu differs from the kernel\n{_explain(kernel, ours)}\n"
                        f"packet {packet.hex()}\nprogram:\n{prog.disasm()}", pytrace=False)
    return kernel


def run_case(case: Case, **kw: Any) -> Outcome:
    return assert_same(case.program(), case.packet, case.ctx, case.flags, **kw)


# --- compiled objects -------------------------------------------------------------------------


def _tcemu_maps(coll: Collection) -> MapState:
    """Every map of a tcemu load, read like :meth:`KernelObject.read_all` reads the kernel's."""
    out: MapState = {}
    for name, m in coll.maps.items():
        if isinstance(m, PerfEventArrayMap):
            out[name] = [f"cpu{r.cpu}:{r.raw.hex()}" for r in m.drain()]
        else:
            out[name] = {k.hex(): v.hex() for k, v in m.items()}
    return out


def assert_object_same(case: ObjCase, fs: BpfFs) -> None:
    """Load the object into the kernel (bpftool) and into tcemu (once per tier), run every
    packet on CPU 0 and compare the outcome and every map after each packet."""
    progs, maps = fs.fresh_dir(case.obj), fs.fresh_dir(case.obj + "_maps")
    load_with_bpftool(case.path, progs, maps)
    kobj = KernelObject.open(progs, maps)
    ncpus = possible_cpus()
    try:
        sides = {tier: load_object(case.path, env=Env(ncpus=ncpus, cpu=0)) for tier in TIERS}
        for step, packet in enumerate(case.packets):
            affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {0})
            try:
                r = kobj.run(case.prog, packet, None)
                kernel: Outcome = ("ok", r.retval, r.data_out.hex(), r.ctx_out.hex())
            except KernelError as err:
                kernel = ("errno", err.errno)
            finally:
                os.sched_setaffinity(0, affinity)
            kmaps = kobj.read_all()
            for tier, coll in sides.items():
                prog = coll.programs[case.prog]
                try:
                    t = prog.test_run(packet, tier=tier)
                    ours: Outcome = ("ok", t.retval, t.data_out.hex(), t.ctx_out.hex())
                except TestRunError as err:
                    ours = ("errno", err.errno)
                where = f"{case.obj}:{case.prog} [{tier}] packet {step}: {packet.hex()}"
                if ours != kernel:
                    pytest.fail(f"{where}\n{_explain(kernel, ours)}", pytrace=False)
                tmaps = _tcemu_maps(coll)
                for name in sorted(kmaps):
                    if tmaps.get(name) != kmaps[name]:
                        pytest.fail(f"{where}: map {name} differs\nkernel {kmaps[name]}\n"
                                    f"tcemu  {tmaps.get(name)}", pytrace=False)
    finally:
        kobj.close()
        remove_pins(progs, maps)


def unavailable(message: str) -> NoReturn:
    """Skip for a missing kernel facility, or fail when TCEMU_REQUIRE_KERNEL=1 (as CI sets)."""
    if os.environ.get("TCEMU_REQUIRE_KERNEL") == "1":
        pytest.fail(f"TCEMU_REQUIRE_KERNEL=1 but {message}")
    pytest.skip(message)


def bpffs_fixture() -> Iterator[BpfFs]:
    """A private bpffs for a module's object cases (use as a module-scoped fixture body)."""
    if shutil.which(BPFTOOL) is None or os.geteuid() != 0:
        unavailable("bpftool and root are needed to load objects into the kernel")
    fs = BpfFs()
    try:
        yield fs
    finally:
        fs.close()


def test_cases_assemble_and_start_with_ctx() -> None:
    """The harness itself: a case's program starts by saving the context in r6."""
    case = Case((*call("bpf_set_hash", "7", slot=0), "r0 = 0", "exit"), udp_frame())
    text = case.program().disasm()
    assert "r6 = r1" in text.splitlines()[0]
    assert "call bpf_set_hash#" in text
