"""The instruction tracer: same results as the interpreter, and readable lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcemu.bpf import assemble
from tcemu.bpf.insntrace import InsnTracer
from tcemu.bpf.vm import Vm
from tcemu.conformance import CONFORMANCE_HELPERS
from tcemu.errors import BudgetExceeded, VmFault
from tests.bpf.test_conformance import POSITIVE, _program
from tests.dataformat import parse


@pytest.mark.parametrize("path", POSITIVE[::7], ids=lambda p: p.stem)
def test_traced_runs_match_the_interpreter(path: Path) -> None:
    vec = parse(path)
    program = _program(vec)
    plain = Vm(helpers=dict(CONFORMANCE_HELPERS)).run(program, memory=vec.memory())
    vm = Vm(helpers=dict(CONFORMANCE_HELPERS))
    vm.tracer = InsnTracer()
    traced = vm.run(program, memory=vec.memory())
    assert (traced.r0, traced.insns, traced.memory) == (plain.r0, plain.insns, plain.memory)
    assert len(vm.tracer.events) == plain.insns


def test_lines_show_registers_memory_and_calls() -> None:
    program = assemble("""
        r2 = 7
        *(u32 *)(r10 -8) = r2
        r3 = *(u32 *)(r10 -8)
        r0 = *(u8 *)(r1 +1)
        r0 += r3
        exit
    """)
    vm = Vm()
    vm.tracer = InsnTracer()
    assert vm.run(program, memory=b"\x01\x02").r0 == 9
    lines = vm.tracer.lines()
    assert lines[0].startswith("0: (b7) r2 = 7")
    assert lines[0].endswith("; R2=0x7")
    assert "store fp-8 (4 B) = 0x7" in lines[1]
    assert "load pkt+1 (1 B) = 0x2" in lines[3]
    assert lines[5] == "5: (95) exit"


def test_bpf_to_bpf_calls_are_indented_by_frame() -> None:
    program = assemble("""
        r1 = 5
        call sub
        exit
    sub:
        r0 = r1
        r0 *= 3
        exit
    """)
    vm = Vm()
    vm.tracer = InsnTracer()
    assert vm.run(program).r0 == 15
    depths = [event.depth for event in vm.tracer.events]
    assert depths == [0, 0, 1, 1, 1, 0]


def test_limit_keeps_counting() -> None:
    program = assemble("r0 = 0\nl:\nr0 += 1\nif r0 < 50 goto l\nexit")
    vm = Vm()
    vm.tracer = InsnTracer(limit=10)
    assert vm.run(program).r0 == 50
    assert len(vm.tracer.events) == 10
    assert vm.tracer.dropped == vm.counter[0] - 10
    assert vm.tracer.lines()[-1].startswith("... ")


def test_faults_and_budget_behave_as_untraced() -> None:
    vm = Vm(budget=20)
    vm.tracer = InsnTracer()
    with pytest.raises(BudgetExceeded):
        vm.run(assemble("l:\ngoto l\nexit"))
    vm = Vm()
    vm.tracer = InsnTracer()
    with pytest.raises(VmFault) as info:
        vm.run(assemble("r0 = *(u64 *)(r1 +64)\nexit"), memory=bytes(8))
    assert info.value.pc == 0


def test_json_lines() -> None:
    vm = Vm()
    vm.tracer = InsnTracer()
    vm.run(assemble("r0 = 1\nexit"))
    assert '"insn": "(b7) r0 = 1"' in vm.tracer.events[0].to_json()
