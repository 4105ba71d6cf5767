"""Map helpers and tail calls (``kernel/bpf/helpers.c``, ``kernel/bpf/ringbuf.c``,
``kernel/trace/bpf_trace.c`` for perf output, ``kernel/bpf/core.c`` for tail calls).

A map argument is the handle an LD_IMM64 of the map loaded (``map_handle``); keys and
values are read from and written to program memory.  Failures are negative errnos, as the
kernel's helpers return them.
"""

from __future__ import annotations

import errno as err

from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import RetType as R
from tcemu.bpf.helpers import helper
from tcemu.bpf.jit.direct import MapCall, register
from tcemu.bpf.maps import MapBase, map_from_handle, ringbuf_of
from tcemu.bpf.maps.prog_array import ProgArrayMap
from tcemu.bpf.program import Program
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import MAX_TAIL_CALL_CNT, TailCall, Vm

__all__: list[str] = []

BPF_F_INDEX_MASK = 0xFFFF_FFFF
BPF_F_CTXLEN_MASK = 0xFFFFF << 32


def _map(vm: Vm, handle: int) -> MapBase:
    found = map_from_handle(vm.env, handle)
    if found is None:
        raise IndexError(f"{handle:#x} is not a map handle")
    return found


def _key(vm: Vm, m: MapBase, address: int) -> bytes:
    return vm.memory.read(address, m.spec.key_size)


@helper(F.map_lookup_elem, A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY,
        ret=R.PTR_TO_MAP_VALUE_OR_NULL)
def map_lookup_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = map_from_handle(vm.env, r1)
    if m is None:
        raise IndexError(f"{r1:#x} is not a map handle")
    return m.vm_lookup(vm.memory.read(r2, m.spec.key_size))


@helper(F.map_update_elem, A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY, A.PTR_TO_MAP_VALUE, A.ANYTHING)
def map_update_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(vm, r1)
    value = vm.memory.read(r3, m.spec.value_size)
    return m.vm_update(_key(vm, m, r2), value, r4)


@helper(F.map_delete_elem, A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY)
def map_delete_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(vm, r1)
    return m.vm_delete(_key(vm, m, r2))


# The translated tier calls these three as the map's methods when the map is a constant
# (tcemu.bpf.jit.direct): keep each helper exactly that call.
register(map_lookup_elem, MapCall("vm_lookup", ((2, "key"),), resolve=map_from_handle))
register(map_update_elem, MapCall("vm_update", ((2, "key"), (3, "value")), (4,), errno=True,
                                  resolve=map_from_handle))
register(map_delete_elem, MapCall("vm_delete", ((2, "key"),), errno=True, resolve=map_from_handle))


@helper(F.map_push_elem, A.CONST_MAP_PTR, A.PTR_TO_MAP_VALUE, A.ANYTHING)
def map_push_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(vm, r1)
    return m.vm_push(vm.memory.read(r2, m.spec.value_size), r3)


def _pop_or_peek(vm: Vm, handle: int, out: int, pop: bool) -> int:
    m = _map(vm, handle)
    rc, value = m.vm_pop() if pop else m.vm_peek()
    # queue_stack_map_get_elem: the value buffer is zeroed when there is nothing to get
    vm.memory.write(out, value if rc == 0 else bytes(m.spec.value_size))
    return rc


@helper(F.map_pop_elem, A.CONST_MAP_PTR, A.PTR_TO_UNINIT_MEM)
def map_pop_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _pop_or_peek(vm, r1, r2, True)


@helper(F.map_peek_elem, A.CONST_MAP_PTR, A.PTR_TO_UNINIT_MEM)
def map_peek_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _pop_or_peek(vm, r1, r2, False)


@helper(F.tail_call, A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING, ret=R.VOID)
def tail_call(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Jump to ``prog_array[index]``; on failure fall through (r0 is left unspecified)."""
    m = _map(vm, r2)
    index = r3 & 0xFFFF_FFFF
    if not isinstance(m, ProgArrayMap) or vm.state.tail_calls >= MAX_TAIL_CALL_CNT:
        return 0
    target = m.get_program(index)
    if target is None:
        return 0
    assert isinstance(target, Program)
    raise TailCall(target, r1)


@helper(F.ringbuf_output, A.CONST_MAP_PTR, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING)
def ringbuf_output(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(vm, r1).vm_output(vm.memory.read(r2, r3), r4)


@helper(F.ringbuf_reserve, A.CONST_MAP_PTR, A.CONST_ALLOC_SIZE_OR_ZERO, A.ANYTHING,
        ret=R.PTR_TO_ALLOC_MEM_OR_NULL)
def ringbuf_reserve(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(vm, r1).vm_reserve(r2, r3)


def _ring_of_sample(vm: Vm, sample: int) -> MapBase:
    ring = ringbuf_of(vm.env, sample)
    if ring is None:
        raise IndexError(f"{sample:#x} is not a ring buffer sample")
    return ring


@helper(F.ringbuf_submit, A.PTR_TO_ALLOC_MEM, A.ANYTHING, ret=R.VOID)
def ringbuf_submit(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _ring_of_sample(vm, r1).vm_submit(r1, r2)


@helper(F.ringbuf_discard, A.PTR_TO_ALLOC_MEM, A.ANYTHING, ret=R.VOID)
def ringbuf_discard(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _ring_of_sample(vm, r1).vm_discard(r1, r2)


@helper(F.ringbuf_query, A.CONST_MAP_PTR, A.ANYTHING)
def ringbuf_query(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(vm, r1).vm_query(r2)


@helper(F.perf_event_output, A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING, A.PTR_TO_MEM,
        A.CONST_SIZE_OR_ZERO, gpl_only=True)
def perf_event_output(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_skb_event_output``: the sample, then ``ctxlen`` bytes of the packet."""
    if r3 & ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK):
        return -err.EINVAL
    ctxlen = (r3 & BPF_F_CTXLEN_MASK) >> 32
    data = vm.memory.read(r4, r5)
    if ctxlen:
        from tcemu.bpf.helpers.skb import skb_of

        skb = skb_of(vm)
        if ctxlen > skb.len:
            return -err.EFAULT
        data += bytes(skb.data[:ctxlen])
    return _map(vm, r2).vm_output(data, r3 & BPF_F_INDEX_MASK)
