"""Generic helpers: time, randomness, CPU, the current task, trace_printk.

``kernel/bpf/helpers.c`` and ``kernel/trace/bpf_trace.c``.  Time comes from the
environment's :class:`~tcemu.clock.VirtualClock`, randomness from its seeded PRNG, the task
from ``Env.task``: nothing here reads the host.
"""

from __future__ import annotations

import errno as err

from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import helper
from tcemu.bpf.helpers.printk import format_printk
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm

__all__: list[str] = []


@helper(F.ktime_get_ns)
def ktime_get_ns(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.clock.now_ns()


@helper(F.ktime_get_coarse_ns)
def ktime_get_coarse_ns(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.clock.now_ns()


@helper(F.ktime_get_boot_ns)
def ktime_get_boot_ns(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.clock.now_ns() + vm.env.clock.boot_offset_ns


@helper(F.ktime_get_tai_ns)
def ktime_get_tai_ns(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.clock.now_ns() + vm.env.clock.tai_offset_ns


@helper(F.get_prandom_u32)
def get_prandom_u32(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.prandom_u32()


@helper(F.get_smp_processor_id)
def get_smp_processor_id(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.cpu


@helper(F.get_numa_node_id)
def get_numa_node_id(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 0


@helper(F.get_current_pid_tgid)
def get_current_pid_tgid(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return (vm.env.task.tgid << 32) | vm.env.task.pid


@helper(F.get_current_uid_gid)
def get_current_uid_gid(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return (vm.env.task.gid << 32) | vm.env.task.uid


@helper(F.get_current_comm, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE)
def get_current_comm(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    comm = vm.env.task.comm.encode()[:15]
    vm.memory.write(r1, (comm[:max(r2 - 1, 0)] + bytes(r2))[:r2])
    return 0


@helper(F.trace_printk, A.PTR_TO_MEM, A.CONST_SIZE, gpl_only=True)
def trace_printk(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    fmt = vm.memory.read(r1, r2)
    text = format_printk(vm, fmt, (r3, r4, r5))
    if text is None:
        return -err.EINVAL
    vm.env.trace_pipe.append(text)
    return len(text.encode("latin-1", "replace"))


@helper(F.trace_vprintk, A.PTR_TO_MEM, A.CONST_SIZE, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO,
        gpl_only=True)
def trace_vprintk(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_trace_vprintk(fmt, fmt_size, args, data_len)``: up to 12 u64 arguments."""
    if r4 % 8 or r4 > 8 * 12 or (r4 and not r3):
        return -err.EINVAL
    raw = vm.memory.read(r3, r4) if r4 else b""
    args = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
    text = format_printk(vm, vm.memory.read(r1, r2), args, max_args=len(args))
    if text is None:
        return -err.EINVAL
    vm.env.trace_pipe.append(text)
    return len(text.encode("latin-1", "replace"))
