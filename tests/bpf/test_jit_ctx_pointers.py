"""The translated tier computes ``skb->data``/``data_end``/``data_meta``/``len`` inline
(no context call): the same values as the interpreter's ``SkbContext.load``, also after a
helper resized the packet, and other context loads still go through the model."""

from __future__ import annotations

import pytest

from tcemu.bpf import assemble
from tcemu.bpf.helpers import helpers_for
from tcemu.bpf.jit import translate_source
from tcemu.bpf.testrun import SkbContext
from tcemu.bpf.uapi import BpfProgType
from tcemu.bpf.vm import Tier, Vm
from tcemu.skb import SkBuff

# One byte each of r0, from the lowest: data_end - data, the same after
# bpf_skb_change_tail(skb, len + 10, 0), data_meta - data (0), and skb->len after.
PROGRAM = """
    r6 = r1
    r2 = *(u32 *)(r6 +80)
    r3 = *(u32 *)(r6 +76)
    r2 -= r3
    r7 = r2
    r1 = r6
    r2 = *(u32 *)(r6 +0)
    r2 += 10
    r3 = 0
    call bpf_skb_change_tail
    r2 = *(u32 *)(r6 +80)
    r3 = *(u32 *)(r6 +76)
    r2 -= r3
    r2 <<= 8
    r7 |= r2
    r2 = *(u32 *)(r6 +140)
    r3 = *(u32 *)(r6 +76)
    r2 -= r3
    r2 <<= 16
    r7 |= r2
    r2 = *(u32 *)(r6 +0)
    r2 &= 255
    r2 <<= 24
    r7 |= r2
    r0 = r7
    exit
"""
FRAME = bytes.fromhex("020000000002020000000001080045000028000100004006") + bytes(40)


@pytest.mark.parametrize("tier", ["interp", "jit"])
def test_packet_pointers_follow_the_packet(tier: Tier) -> None:
    prog = assemble(PROGRAM)
    prog.prog_type = BpfProgType.SCHED_CLS
    vm = Vm(helpers=helpers_for(BpfProgType.SCHED_CLS))
    result = prog.test_run(FRAME, vm=vm, tier=tier)
    n = len(FRAME)
    assert n + 10 < 256
    assert result.retval == n | (n + 10) << 8 | (n + 10) << 24
    assert len(result.data_out) == n + 10


def test_translated_source_binds_only_the_pointers() -> None:
    prog = assemble(PROGRAM)
    vm = Vm(helpers=helpers_for(BpfProgType.SCHED_CLS))
    vm.ctx = SkbContext(SkBuff(bytearray(FRAME)), BpfProgType.SCHED_CLS)
    source = translate_source(vm, prog, prog.ctx_ops(vm.ctx))
    assert "CTXLD(80" not in source
    assert "CTXLD(76" not in source
    assert "CTXLD(140" not in source
    assert " PK = G[10]\n" in source        # the packet region, bound once
    assert "+ len(PK)" in source
    assert "CTXLD(0, 4)" not in source        # skb->len: the packet region's length
    assert "= len(PK)" in source
    mark = assemble("r0 = *(u32 *)(r1 +8)\nexit")       # skb->mark is the model's
    assert "CTXLD(8, 4)" in translate_source(vm, mark, mark.ctx_ops(vm.ctx))
