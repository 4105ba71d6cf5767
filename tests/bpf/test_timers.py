"""BPF timers on the virtual clock: armed by a program, fired by ``run_timers``."""

from __future__ import annotations

from tcemu.bpf import Program, assemble
from tcemu.bpf.env import Env
from tcemu.bpf.helpers import helpers_for
from tcemu.bpf.helpers.timers import run_timers
from tcemu.bpf.maps import MapBase, MapSpec, create_map, map_handle
from tcemu.bpf.ops import LdImm64
from tcemu.bpf.uapi import BpfMapType, BpfProgType
from tcemu.bpf.vm import Vm

ARM = """
    r6 = r1
    r1 = 0
    *(u32 *)(r10 -4) = r1
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem
    if r0 == 0x0 goto out
    r7 = r0
    r1 = r7
    r2 = map[idx:0]
    r3 = 1
    call bpf_timer_init
    *(u32 *)(r7 +24) = r0
    r1 = r7
    r2 = func[cb]
    call bpf_timer_set_callback
    r1 = r7
    r2 = {delay}
    r3 = 0
    call bpf_timer_start
    {cancel}
out:
    r0 = 0
    exit
cb:
    r1 = *(u64 *)(r3 +16)
    r1 += 1
    *(u64 *)(r3 +16) = r1
    r0 = 0
    exit
"""
FRAME = bytes.fromhex("020000000002020000000001080045000028000100004006") + bytes(40)


def _setup(delay: int, cancel: bool = False) -> tuple[Env, Vm, Program, MapBase]:
    env = Env()
    timers = create_map(MapSpec("timers", BpfMapType.ARRAY, 4, 32, 1), env)
    cancel_text = "r1 = r7\ncall bpf_timer_cancel\n*(u32 *)(r7 +28) = r0" if cancel else ""
    prog = assemble(ARM.format(delay=delay, cancel=cancel_text))

    def resolve(op: LdImm64) -> int:
        return map_handle(timers)

    prog.map_resolver = resolve
    vm = Vm(env, helpers=helpers_for(BpfProgType.SCHED_CLS))
    return env, vm, prog, timers


def _counter(timers: MapBase) -> tuple[int, int, int]:
    value = timers.lookup(bytes(4))
    return (int.from_bytes(value[16:24], "little"), int.from_bytes(value[24:28], "little"),
            int.from_bytes(value[28:32], "little"))


def test_timer_fires_when_the_clock_passes_its_expiry() -> None:
    env, vm, prog, timers = _setup(1000)
    assert prog.test_run(FRAME, vm=vm).retval == 0
    assert _counter(timers) == (0, 0, 0)
    env.clock.advance(999)
    assert run_timers(env) == 0
    env.clock.advance(1)
    assert run_timers(env) == 1
    assert _counter(timers)[0] == 1
    assert run_timers(env) == 0          # one shot
    prog.test_run(FRAME, vm=vm)
    assert _counter(timers)[1] == (-16) & 0xFFFF_FFFF  # second init: -EBUSY
    env.clock.advance(1000)
    assert run_timers(env) == 1
    assert _counter(timers)[0] == 2


def test_cancel_returns_whether_it_was_armed() -> None:
    env, vm, prog, timers = _setup(1000, cancel=True)
    prog.test_run(FRAME, vm=vm)
    assert _counter(timers)[2] == 1
    env.clock.advance(5000)
    assert run_timers(env) == 0
    assert _counter(timers)[0] == 0
