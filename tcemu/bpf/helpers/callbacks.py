"""Helpers that call back into the program: ``bpf_loop`` and ``bpf_for_each_map_elem``
(``kernel/bpf/bpf_iter.c``, ``kernel/bpf/helpers.c``).

The callback is a subprogram whose address the program loaded with ``BPF_PSEUDO_FUNC``.
It runs on the interpreter, on a stack of its own, whatever tier runs the caller (the
results are the same); its instructions are not added to the run's instruction count.
"""

from __future__ import annotations

import errno as err

from tcemu.bpf import memory as mem
from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import helper
from tcemu.bpf.interp import Interpreter
from tcemu.bpf.maps import map_from_handle
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm
from tcemu.errors import ExecutionError

__all__: list[str] = []

BPF_MAX_LOOPS = 1 << 23


def _callback(vm: Vm, address: int, args: list[int]) -> int:
    program = vm.state.program
    if program is None or address >> 32 != mem.CODE_RID:
        raise ExecutionError(f"callback {address:#x} is not a function address", pc=-1)
    slot = program.subprog_entry(address & 0xFFFF_FFFF, -1)
    runner = vm.runner(program, "interp")
    assert isinstance(runner, Interpreter)
    stack = vm.memory.add_region(bytearray(mem.STACK_SIZE), "callback stack")
    try:
        return runner.call_at(slot, args, stack + mem.STACK_SIZE) & 0xFFFF_FFFF_FFFF_FFFF
    finally:
        vm.memory.release(stack)


@helper(F.loop, A.ANYTHING, A.PTR_TO_FUNC, A.PTR_TO_STACK_OR_NULL, A.ANYTHING)
def loop(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_loop(nr_loops, callback, ctx, flags)``: callback(i, ctx) until it returns 1.

    With flags 0 the verifier replaces the call by the loop of ``inline_bpf_loop()``
    (``kernel/bpf/verifier.c``), which differs from the helper in two ways: the limit is
    compared with all 64 bits of r1, and -E2BIG is set with a 32-bit move, so r0 is
    0xfffffff9 rather than the helper's sign-extended -7.
    """
    if r4:
        return -err.EINVAL
    # KERNEL-DIFF: the kernel inlines a call site when the verifier proved its flags to be
    # the constant 0 and its callback the same on every path; tcemu decides by the flags'
    # run-time value (the same for every program passing a literal 0).
    if r1 > BPF_MAX_LOOPS:
        return -err.E2BIG & 0xFFFF_FFFF
    nr = r1
    for i in range(nr):
        if _callback(vm, r2, [i, r3]):
            return i + 1
    return nr


@helper(F.for_each_map_elem, A.CONST_MAP_PTR, A.PTR_TO_FUNC, A.PTR_TO_STACK_OR_NULL,
        A.ANYTHING)
def for_each_map_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """callback(map, &key, &value, ctx) per element until it returns 1; elements visited."""
    if r4:
        return -err.EINVAL
    m = map_from_handle(vm.env, r1)
    if m is None:
        raise IndexError(f"{r1:#x} is not a map handle")
    visited = 0
    for key in list(m.keys()):
        value = m.vm_iter_value(key)
        if not value:
            continue  # deleted by an earlier callback
        key_addr = vm.memory.add_region(bytes(key), "for_each_map_elem key")
        try:
            stop = _callback(vm, r2, [r1, key_addr, value, r3])
        finally:
            vm.memory.release(key_addr)
        visited += 1
        if stop:
            break
    return visited
