"""BPF timers: ``bpf_timer_init/set_callback/start/cancel`` (``kernel/bpf/helpers.c``).

A ``struct bpf_timer`` lives in a map value; tcemu keys its state by the timer's virtual
address.  Timers fire only when the environment's virtual clock is advanced and
:func:`run_timers` is called (the scenario runner does this on every clock step), in order
of expiry and then of arming, so runs stay reproducible.  The callback ``cb(map, key,
value)`` runs on the interpreter like other callbacks.
"""

from __future__ import annotations

import errno as err
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf import memory as mem
from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import helper
from tcemu.bpf.interp import Interpreter
from tcemu.bpf.maps import map_from_handle
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm

if TYPE_CHECKING:
    from tcemu.bpf.env import Env
    from tcemu.bpf.program import Program

__all__ = ["run_timers"]

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME = 0, 1, 7
BPF_F_TIMER_ABS, BPF_F_TIMER_CPU_PIN = 1, 2


@dataclass
class _Timer:
    map_handle: int
    clock: int
    vm: Vm
    program: Program | None = None
    callback: int = 0
    expires: int | None = None
    seq: int = 0


def _timers(env: Env) -> dict[int, _Timer]:
    # Env keeps the table untyped: env.py sits below the helpers in the layering.
    return env.timers  # type: ignore[return-value]


@helper(F.timer_init, A.ANYTHING, A.CONST_MAP_PTR, A.ANYTHING)
def timer_init(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r3 not in (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME):
        return -err.EINVAL
    table = _timers(vm.env)
    if r1 in table:
        return -err.EBUSY
    table[r1] = _Timer(r2, r3, vm)
    return 0


@helper(F.timer_set_callback, A.ANYTHING, A.PTR_TO_FUNC)
def timer_set_callback(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    timer = _timers(vm.env).get(r1)
    if timer is None:
        return -err.EINVAL
    timer.callback, timer.program, timer.vm = r2, vm.state.program, vm
    return 0


@helper(F.timer_start, A.ANYTHING, A.ANYTHING, A.ANYTHING)
def timer_start(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    timer = _timers(vm.env).get(r1)
    if timer is None or not timer.callback or r3 & ~(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN):
        return -err.EINVAL
    now = vm.env.clock.now_ns()
    timer.expires = r2 if r3 & BPF_F_TIMER_ABS else now + r2
    timer.seq = max((t.seq for t in _timers(vm.env).values()), default=0) + 1
    return 0


@helper(F.timer_cancel, A.ANYTHING)
def timer_cancel(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    timer = _timers(vm.env).get(r1)
    if timer is None:
        return -err.EINVAL
    active = timer.expires is not None
    timer.expires = None
    return int(active)


def _key_of(vm: Vm, handle: int, address: int) -> tuple[bytes, int] | None:
    m = map_from_handle(vm.env, handle)
    if m is None:
        return None
    for key in list(m.keys()):
        value = m.vm_lookup(key)
        if value and value <= address < value + m.spec.value_size:
            return key, value
    return None


def run_timers(env: Env) -> int:
    """Fire every armed timer whose expiry has passed on the virtual clock; return how many."""
    fired = 0
    while True:
        now = env.clock.now_ns()
        due = [(t.expires, t.seq, addr) for addr, t in _timers(env).items()
               if t.expires is not None and t.expires <= now]
        if not due:
            return fired
        _, _, address = min(due)
        timer = _timers(env)[address]
        timer.expires = None
        found = _key_of(timer.vm, timer.map_handle, address)
        if found is None or timer.program is None:
            continue  # the element (and so the timer) is gone
        key, value = found
        vm = timer.vm
        runner = vm.runner(timer.program, "interp")
        assert isinstance(runner, Interpreter)
        key_addr = env.memory.add_region(bytes(key), "timer key")
        stack = env.memory.add_region(bytearray(mem.STACK_SIZE), "timer callback stack")
        try:
            slot = timer.program.subprog_entry(timer.callback & 0xFFFF_FFFF, -1)
            runner.call_at(slot, [timer.map_handle, key_addr, value], stack + mem.STACK_SIZE)
        finally:
            env.memory.release(key_addr)
            env.memory.release(stack)
            env.memory.quiesce()
        fired += 1
