"""The translated tier's segments: large subprograms cut into lazily compiled functions.

Segmentation only kicks in above ``translate.SPLIT`` instructions, so most vectors never
see it; here the threshold is lowered (1 cuts at nearly every block boundary) and the
conformance vectors, seeded branchy programs, faults and budgets are checked against the
interpreter.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcemu.bpf import Vm, assemble
from tcemu.bpf.jit import translate, translate_source
from tcemu.bpf.jit.runner import CODE_CACHE, Translated
from tcemu.bpf.vm import Tier
from tcemu.conformance import CONFORMANCE_HELPERS
from tcemu.errors import BudgetExceeded, TcemuError, VmFault
from tests.bpf import test_vm as vm_tests
from tests.bpf.test_conformance import POSITIVE, UBPF, UBPF_API_ONLY, _run
from tests.bpf.ubpf_helpers import UBPF_HELPERS
from tests.dataformat import parse

PACKET = bytes((i * 37 + 11) & 0xFF for i in range(64))


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cut every subprogram as finely as possible; no cached code of other settings."""
    monkeypatch.setattr(translate, "SPLIT", 1)
    CODE_CACHE.clear()
    yield
    CODE_CACHE.clear()


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.stem)
def test_bpf_conformance_segmented(path: Path) -> None:
    vec = parse(path)
    assert _run(vec, "jit", dict(CONFORMANCE_HELPERS)) == vec.result()


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("path", UBPF, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ubpf_segmented(path: Path) -> None:
    vec = parse(path)
    if path.stem in UBPF_API_ONLY or (vec.result() is None and not vec.expects_error):
        return              # API-only vectors and assembler vectors: nothing runs
    if vec.expects_error:
        with pytest.raises(TcemuError):
            _run(vec, "jit", dict(UBPF_HELPERS))
        return
    assert _run(vec, "jit", dict(UBPF_HELPERS)) == vec.result()


# ---- seeded branchy programs ------------------------------------------------------------
_SCALARS = (0, 2, 3, 4, 5, 8)


def _alu(rng: random.Random, out: list[str]) -> None:
    dst, src = rng.choice(_SCALARS), rng.choice(_SCALARS)
    op = rng.choice(("+=", "-=", "*=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "/=", "%=", "="))
    r = rng.choice("rw")
    if op in ("<<=", ">>=", "s>>="):
        out.append(f"{r}{dst} {op} {rng.randrange(1, 32)}")
    elif rng.random() < 0.5:
        out.append(f"{r}{dst} {op} {r}{src}")
    elif rng.random() < 0.1:
        out.append(f"r{dst} = {rng.getrandbits(64):#x} ll")
    else:
        out.append(f"{r}{dst} {op} {rng.randrange(-500, 500) or 7}")


def _straight(rng: random.Random, out: list[str], count: int, fault: bool) -> None:
    for _ in range(count):
        pick = rng.random()
        if pick < 0.15:
            size = rng.choice((1, 2, 4, 8))
            limit = 80 if fault else 64 - size + 1
            out.append(f"r{rng.choice(_SCALARS)} = *(u{8 * size} *)(r6 +{rng.randrange(limit)})")
        elif pick < 0.3:
            off = -8 * rng.randrange(1, 9)
            if rng.random() < 0.5:
                out.append(f"*(u64 *)(r10 {off}) = r{rng.choice(_SCALARS)}")
            else:
                out.append(f"r{rng.choice(_SCALARS)} = *(u64 *)(r10 {off})")
        else:
            _alu(rng, out)


def _program(seed: int, fault: bool = False) -> str:
    rng = random.Random(seed)
    out = ["r6 = r1", *(f"r{r} = {r}" for r in (0, 2, 3, 4, 5, 8)),
           *(f"*(u64 *)(r10 -{8 * s}) = r0" for s in range(1, 9))]
    for labels in range(40):
        kind = rng.choice(("straight", "skip", "diamond", "loop", "call"))
        if kind == "straight":
            _straight(rng, out, rng.randrange(2, 8), fault)
        elif kind == "skip":
            out.append(f"if r{rng.choice(_SCALARS)} > {rng.randrange(256)} goto s{labels}")
            _straight(rng, out, rng.randrange(1, 6), fault)
            out.append(f"s{labels}:")
        elif kind == "diamond":
            out.append(f"if w{rng.choice(_SCALARS)} s< w{rng.choice(_SCALARS)} goto e{labels}")
            _straight(rng, out, rng.randrange(1, 5), fault)
            out.append(f"goto j{labels}")
            out.append(f"e{labels}:")
            _straight(rng, out, rng.randrange(1, 5), fault)
            out.append(f"j{labels}:")
        elif kind == "loop":
            out.append(f"r9 = {rng.randrange(1, 6)}")
            out.append(f"l{labels}:")
            _straight(rng, out, rng.randrange(2, 6), fault)
            out.append("r9 -= 1")
            out.append(f"if r9 != 0 goto l{labels}")
        else:
            out += ["r1 = r0", "call f", "r2 = r0", "r3 = r8", "r4 = r0", "r5 = r8"]
    out += ["exit", "f:", "r0 = r1", "r0 *= 3", "if r0 > 99 goto big", "r0 += 1", "exit",
            "big:", "r0 >>= 1", "exit"]
    return "\n".join(out)


def _outcome(text: str, tier: Tier, budget: int = 1 << 24) -> object:
    try:
        result = assemble(text).execute(PACKET, tier, budget=budget)
    except VmFault as fault:
        return ("fault", fault.pc, fault.addr, fault.access)
    except BudgetExceeded:
        return "budget"
    return (result.r0, result.insns, result.memory)


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("seed", range(12))
def test_branchy_programs_agree_with_the_interpreter(seed: int) -> None:
    text = _program(seed, fault=seed % 3 == 2)
    expected = _outcome(text, "interp")
    assert _outcome(text, "jit") == expected
    if isinstance(expected, tuple) and expected[0] != "fault":
        insns = expected[1]
        assert isinstance(insns, int)
        for budget in (insns - 1, insns // 2, insns // 5):
            assert _outcome(text, "jit", budget) == _outcome(text, "interp", budget)


@pytest.mark.usefixtures("split")
def test_segments_compile_on_first_entry_and_are_shared() -> None:
    text = _program(3)
    prog = assemble(text)
    vm = Vm()
    runner = vm.runner(prog, "jit")
    assert isinstance(runner, Translated)
    heads = runner.compiled.heads
    assert len(heads) > 10
    assert not runner.compiled.segments            # nothing compiled before a run
    expected = vm.run(prog, memory=PACKET, tier="interp").r0
    assert vm.run(prog, memory=PACKET, tier="jit").r0 == expected
    entered = set(runner.compiled.segments)
    assert entered
    assert entered <= set(heads)
    # Another Vm binds the cached segments instead of translating them again.
    vm2 = Vm()
    again = vm2.runner(prog, "jit")
    assert isinstance(again, Translated)
    assert again.compiled is runner.compiled
    assert vm2.run(prog, memory=PACKET, tier="jit").r0 == expected
    assert set(runner.compiled.segments) == entered


@pytest.mark.usefixtures("split")
def test_whole_source_has_every_segment() -> None:
    prog = assemble(_program(5))
    source = translate_source(Vm(), prog)
    runner = Vm().runner(prog, "jit")
    assert isinstance(runner, Translated)
    for pc in runner.compiled.heads:
        assert f"def seg_{pc}(" in source
    compile(source, "<whole>", "exec")


def test_only_large_subprograms_are_segmented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(translate, "SPLIT", 256)
    CODE_CACHE.clear()
    small = Vm().runner(assemble(_program(1)), "jit")
    assert isinstance(small, Translated)
    assert not small.compiled.heads
    body = "\n".join(f"r0 += {i}\nif r0 > {1000 + i} goto out{i}\nr0 ^= 3\nout{i}:"
                     for i in range(translate.SPLIT))
    large = assemble(f"r0 = 0\n{body}\nexit")
    runner = Vm().runner(large, "jit")
    assert isinstance(runner, Translated)
    assert len(runner.compiled.heads) > 1
    assert large.run(tier="jit") == large.run(tier="interp")


@pytest.mark.usefixtures("split")
def test_later_segments_use_the_values_the_cache_key_holds() -> None:
    # Two loads of the same bytes whose map references resolve to the same value share
    # compiled code; a segment first entered by the second must not ask the first load's
    # resolver (its map may be gone).
    text = """
        if r2 == 4 goto other
        r0 = map[fd:3]
        r0 += 1
        exit
    other:
        r0 = map[fd:3]
        r0 += 2
        exit
    """
    first, second = assemble(text), assemble(text)
    first.map_resolver = lambda op: 0x1000
    second.map_resolver = lambda op: 0x1000
    assert Vm().run(first, memory=b"12345", tier="jit").r0 == 0x1001

    def gone(op: object) -> int:
        raise AssertionError("the first load's resolver was asked again")
    first.map_resolver = gone
    vm = Vm()
    runner = vm.runner(second, "jit")
    assert isinstance(runner, Translated)
    assert runner.compiled.segments                 # shared with the first load
    assert vm.run(second, memory=b"1234", tier="jit").r0 == 0x1002


# The execution tests of test_vm.py (faults, budgets, calls, helpers, nested runs, loops
# over the packet, r10 written) again, with every subprogram cut.
_JIT_TESTS = ["test_budget", "test_instruction_count_is_exact",
              "test_bpf_to_bpf_calls_keep_callee_saved_and_stack", "test_call_depth_limit",
              "test_callx_to_subprogram", "test_helpers_and_program_exit",
              "test_negative_helper_return_is_u64", "test_tail_call_hook",
              "test_ld_ind_truncates_offset_to_s32",
              "test_ld_abs_failure_inside_subprogram_returns_from_it",
              "test_budget_is_exact_on_straight_line_code",
              "test_budget_is_exact_in_loops_and_calls"]
_BOTH_TIERS_TESTS = ["test_counted_loop_that_wraps_is_not_counted",
                     "test_loop_base_near_the_end_of_a_region_crosses_into_the_next",
                     "test_fault_inside_a_counted_loop_is_exact",
                     "test_budget_reached_inside_a_loop_before_its_fault",
                     "test_writing_r10_is_honoured",
                     "test_stack_accesses_out_of_the_frame_fault_exactly",
                     "test_fused_load_and_swap_faults_at_the_load",
                     "test_forwarded_and_dead_values_keep_faults_exact",
                     "test_helpers_see_exact_counts_and_can_stop_a_loop",
                     "test_nested_runs_keep_the_outer_count",
                     "test_translations_are_shared_between_vms_but_bound_to_each",
                     "test_many_early_exits_do_not_nest_without_bound",
                     "test_byte_loop_over_a_short_packet_faults_where_the_bytes_end",
                     "test_crossing_branches_diamonds_and_loops_through_the_dispatcher"]


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("name", _JIT_TESTS)
def test_vm_tests_on_segments(name: str) -> None:
    getattr(vm_tests, name)("jit")


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("name", _BOTH_TIERS_TESTS)
def test_vm_tests_comparing_tiers_on_segments(name: str) -> None:
    getattr(vm_tests, name)()
