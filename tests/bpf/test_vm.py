"""Execution on both tiers: faults, budget, calls, helpers, LD_ABS and the hooks."""

from __future__ import annotations

import pytest

from tcemu.bpf import Program, ProgramExit, TailCall, Vm, assemble
from tcemu.bpf.memory import CTX_RID, MEM_RID, STACK_SIZE, addr
from tcemu.bpf.vm import Tier
from tcemu.errors import (
    BudgetExceeded,
    CallDepthExceeded,
    ExecutionError,
    HelperError,
    LoadError,
    UnsupportedError,
    ValidationError,
    VmFault,
)

TIERS: list[Tier] = ["interp", "jit"]
tiers = pytest.mark.parametrize("tier", TIERS)


@tiers
@pytest.mark.parametrize(("text", "pc", "access", "address", "reason"), [
    ("r0 = *(u32 *)(r1 +2)\nexit", 0, "read", addr(MEM_RID, 2), "out of bounds of packet"),
    ("r0 = 0\n*(u8 *)(r10 +0) = 1\nexit", 1, "write", addr(1, STACK_SIZE),
     "out of bounds of stack frame 0"),
    ("r2 = 0\nr0 = *(u8 *)(r2 +0)\nexit", 1, "read", 0, "null or scalar pointer"),
    ("r2 = 0x7700000000\nr0 = *(u64 *)(r2 +8)\nexit", 2, "read", 0x7700000008,
     "address is not mapped"),
    ("r0 = 0\nr2 = r10\nr2 += -513\n*(u64 *)(r2 +0) = r0\nexit", 3, "write",
     addr(1, STACK_SIZE) - 513, "address is not mapped"),
    ("r0 = 0\nr2 = 0x0\nlock *(u64 *)(r2 +0) += r0\nexit", 3, "write", 0,
     "null or scalar pointer"),
    ("r0 = 0\nr2 = func[f]\nr0 = *(u8 *)(r2 +0)\nexit\nf:\nr0 = 0\nexit", 3, "read", addr(12, 5),
     "code is not accessible"),
])
def test_faults_are_typed_and_identical(tier: Tier, text: str, pc: int, access: str,
                                        address: int, reason: str) -> None:
    prog = assemble(text)
    with pytest.raises(VmFault, match=reason) as info:
        prog.run(b"\x01\x02\x03\x04", tier)
    fault = info.value
    assert (fault.pc, fault.access, fault.addr) == (pc, access, address)
    assert fault.insn == prog.insns[pc]
    assert f"pc {pc}" in str(fault)


@tiers
def test_budget(tier: Tier) -> None:
    prog = assemble("r0 = 0\nloop:\nr0 += 1\ngoto loop")
    with pytest.raises(BudgetExceeded, match="budget of 1000"):
        prog.run(tier=tier, budget=1000)


@tiers
def test_instruction_count_is_exact(tier: Tier) -> None:
    prog = assemble("r0 = 0\nr1 = 10\nloop:\nr0 += r1\nr1 += -1\nif r1 != 0 goto loop\nexit")
    result = prog.execute(tier=tier)
    assert (result.r0, result.insns) == (55, 2 + 3 * 10 + 1)


@tiers
def test_bpf_to_bpf_calls_keep_callee_saved_and_stack(tier: Tier) -> None:
    prog = assemble("""
        r6 = 6
        r0 = 1
        *(u64 *)(r10 -8) = r0
        r1 = 5
        call square
        r2 = *(u64 *)(r10 -8)     ; our frame's stack is untouched by the callee
        r0 += r2
        r0 += r6
        exit
    square:
        r6 = 0                    ; clobbers its own r6 only
        r2 = 99
        *(u64 *)(r10 -8) = r2     ; its own frame
        r0 = r1
        r0 *= r1
        exit
    """)
    assert prog.run(tier=tier) == 25 + 1 + 6


@tiers
def test_call_depth_limit(tier: Tier) -> None:
    # Each level calls the next: 8 frames are allowed, the 9th is rejected.
    def chain(depth: int) -> Program:
        lines = [f"call f{1}", "exit"] + [
            line for level in range(1, depth) for line in
            (f"f{level}:", f"call f{level + 1}" if level + 1 < depth else "r0 = 7", "exit")]
        return assemble("r0 = 0\n" + "\n".join(lines).replace("call f1\nexit", "call f1\nexit", 1))

    assert chain(8).run(tier=tier) == 7
    with pytest.raises(CallDepthExceeded, match="9 frames is too deep"):
        chain(9).run(tier=tier)


@tiers
def test_callx_to_subprogram(tier: Tier) -> None:
    prog = assemble("r2 = func[fn]\ncallx r2\nexit\nfn:\nr0 = 9\nexit")
    assert prog.run(tier=tier) == 9


@tiers
def test_helpers_and_program_exit(tier: Tier) -> None:
    def add(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return r1 + r2 + r3 + r4 + r5

    def stop(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        raise ProgramExit(77)

    prog = assemble("r1 = 1\nr2 = 2\nr3 = 3\nr4 = 4\nr5 = 5\ncall 1\nexit")
    result = prog.execute(tier=tier, helpers={1: add})
    assert (result.r0, result.insns) == (15, 7)
    stopped = assemble("call 1\nr0 = 1\nexit").execute(tier=tier, helpers={1: stop})
    assert (stopped.r0, stopped.insns) == (77, 1)


@tiers
def test_negative_helper_return_is_u64(tier: Tier) -> None:
    def fail(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return -22

    assert assemble("call 1\nexit").run(tier=tier, helpers={1: fail}) == (1 << 64) - 22


@tiers
def test_tail_call_hook(tier: Tier) -> None:
    target = assemble("r0 = r1\nexit")

    def tail(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        raise TailCall(target, r1)

    vm = Vm(helpers={12: tail})
    result = vm.execute(assemble("call 12\nr0 = 1\nexit"), tier, addr(CTX_RID))
    assert (result.r0, result.tail_calls, result.insns) == (addr(CTX_RID), 1, 3)


def test_missing_helper_fails_at_load_naming_it() -> None:
    with pytest.raises(HelperError, match=r"bpf_map_lookup_elem#1 is not available") as info:
        assemble("call bpf_map_lookup_elem\nexit").run()
    assert info.value.helper_id == 1


@tiers
def test_unsupported_features_fail_clearly(tier: Tier) -> None:
    with pytest.raises(UnsupportedError, match="kfunc call"):
        assemble("call kfunc#100\nr0 = 0\nexit").run(tier=tier)
    with pytest.raises(UnsupportedError, match="BTF id"):
        assemble("r1 = btf_id[5]\nr0 = 0\nexit").run(tier=tier)
    with pytest.raises(LoadError, match="no maps are attached"):
        assemble("r1 = map[fd:3]\nr0 = 0\nexit").run(tier=tier)


@tiers
def test_callx_to_missing_helper(tier: Tier) -> None:
    with pytest.raises(ExecutionError, match="not available"):
        assemble("r2 = 9\ncallx r2\nexit").run(tier=tier)


def test_uninitialised_register_is_rejected() -> None:
    with pytest.raises(ValidationError, match="R0 !read_ok"):
        assemble("exit").run()
    with pytest.raises(ValidationError, match="R3 !read_ok") as info:
        assemble("r0 = 0\nif r0 == 0 goto out\nr3 = 1\nout:\nr0 = r3\nexit").run()
    assert info.value.index == 3
    with pytest.raises(ValidationError, match="R1 !read_ok"):  # clobbered by the call
        assemble("call 1\nr0 = r1\nexit").run(helpers={1: lambda *a: 0})


# LD_ABS / LD_IND with the kernel's skb semantics: data at the mac header, network header at
# 14, 64 bytes of zero headroom, failures end the program with r0 = 0.
PACKET = bytes(range(1, 41))
SKF_NET_OFF, SKF_LL_OFF = -0x100000, -0x200000


@tiers
@pytest.mark.parametrize(("load", "expected"), [
    ("r0 = *(u8 *)skb[0]", 0x01),
    ("r0 = *(u16 *)skb[12]", 0x0D0E),
    ("r0 = *(u32 *)skb[36]", 0x25262728),
    ("r0 = *(u32 *)skb[37]", 0),                      # past the end: program returns 0
    (f"r0 = *(u8 *)skb[{SKF_NET_OFF}]", 15),          # network header
    (f"r0 = *(u16 *)skb[{SKF_NET_OFF + 24}]", 0x2728),
    (f"r0 = *(u16 *)skb[{SKF_NET_OFF + 25}]", 0),     # one byte short
    # Below SKF_NET_OFF the kernel switches to the mac-header base (bpf_internal_load_
    # pointer_neg_helper), so "network header - 14" is far past the end, not the mac header.
    (f"r0 = *(u16 *)skb[{SKF_NET_OFF - 14}]", 0),
    (f"r0 = *(u8 *)skb[{SKF_LL_OFF + 3}]", 4),
    (f"r0 = *(u8 *)skb[{SKF_LL_OFF - 1}]", 0),
    ("r0 = *(u8 *)skb[-4096]", 0),                    # SKF_AD_OFF: not in eBPF
])
def test_ld_abs(tier: Tier, load: str, expected: int) -> None:
    prog = assemble(f"r6 = r1\n{load}\nr0 += 0\nexit")
    assert prog.run(PACKET, tier) == expected


@tiers
def test_ld_ind_truncates_offset_to_s32(tier: Tier) -> None:
    prog = assemble("r6 = r1\nr7 = 0x100000002\nr0 = *(u8 *)skb[r7 + 1]\nexit")
    assert prog.run(PACKET, tier) == 4


@tiers
def test_ld_abs_failure_inside_subprogram_returns_from_it(tier: Tier) -> None:
    prog = assemble("call f\nr0 += 100\nexit\nf:\nr6 = r1\nr0 = *(u8 *)skb[99]\nexit")
    assert prog.run(PACKET, tier) == 100


@pytest.mark.parametrize("text", [
    "r1 = 1\ncall f\nr1 = r0\ncall f\nexit\nf:\nr0 = r1\nr0 += 1\nexit",
    "r2 = func[f]\nr1 = 1\ncallx r2\nr1 = r0\nr2 = func[f]\ncallx r2\nexit\nf:\nr0 = r1\nexit",
])
def test_both_tiers_count_the_same_across_calls(text: str) -> None:
    prog = assemble(text)
    assert prog.execute(tier="interp") == prog.execute(tier="jit")


# ---- the tiers' optimisations: every case runs on both tiers and must agree exactly --------
# (masks dropped by value ranges, forwarded and dead registers, the stack frame and loop
# regions hoisted, counted loops, load + byte swap fused, block closures, the code cache)

M64 = (1 << 64) - 1
PACKET64 = bytes((i * 37 + 11) & 0xFF for i in range(64))


def both(prog: Program, memory: bytes = b"", **kwargs: object) -> tuple[int, int, bytes]:
    """Run on both tiers; they must agree on r0, the count and the memory after."""
    results = {tier: prog.execute(memory, tier, **kwargs) for tier in TIERS}  # type: ignore[arg-type]
    interp, jit = results["interp"], results["jit"]
    assert (interp.r0, interp.insns, interp.memory) == (jit.r0, jit.insns, jit.memory)
    return interp.r0, interp.insns, interp.memory


def faults(prog: Program, memory: bytes = b"", **kwargs: object) -> VmFault:
    """Run on both tiers; both must fault identically (pc, insn, address, access, text)."""
    seen = []
    for tier in TIERS:
        with pytest.raises(VmFault) as info:
            prog.execute(memory, tier, **kwargs)  # type: ignore[arg-type]
        fault = info.value
        seen.append((fault.pc, fault.insn, fault.addr, fault.access, str(fault)))
    assert seen[0] == seen[1]
    return info.value


@pytest.mark.parametrize(("text", "expected"), [
    ("r0 = -1\nr0 += 1\nexit", 0),                               # u64 wrap-around
    ("r0 = 0xffffffffffffffff ll\nr0 *= r0\nexit", 1),
    ("r0 = 0xffffffff ll\nw0 += 1\nexit", 0),                    # u32 wrap-around
    ("r0 = 5\nr1 = 7\nr0 -= r1\nexit", M64 - 1),                 # a small negative result
    ("w0 = 5\nw1 = 7\nw0 -= w1\nexit", 0xFFFFFFFE),
    ("r0 = 0x7fffffff\nr0 <<= 33\nexit", (0x7FFFFFFF << 33) & M64),
    ("r0 = 255\nr0 &= 0xff\nr0 += 0x7fffffff\nr0 += 0x7fffffff\nexit", 255 + 2 * 0x7FFFFFFF),
    ("r1 = 0xffffffffffffff00 ll\nr0 = r1\nr0 >>= 60\nr0 += 0x7ffffff0\nexit", 15 + 0x7FFFFFF0),
    ("r0 = 0x8000000000000000 ll\nr0 s>>= 63\nexit", M64),
    ("w0 = -1\nr0 += 1\nexit", 1 << 32),                         # w0 = -1 is a u32
    ("r0 = 3\nif r0 s> -1 goto pc+1\nr0 = 0\nexit", 3),
    ("r0 = -3\nif w0 s< 0 goto pc+1\nr0 = 0\nexit", M64 - 2),
])
def test_masks_dropped_only_when_provably_useless(text: str, expected: int) -> None:
    assert both(assemble(text))[0] == expected


def test_counted_loop_that_wraps_is_not_counted() -> None:
    # r9 starts 3 below 2**64: "r9 += 1; if r9 != 0" runs 3 times, through the wrap.
    prog = assemble("r0 = 0\nr9 = -3\nloop:\nr0 += 1\nr9 += 1\nif r9 != 0 goto loop\nexit")
    assert both(prog)[:2] == (3, 2 + 3 * 3 + 1)


@pytest.mark.parametrize(("start", "cond", "step", "bound"), [
    (0, "<", 1, 64), (5, "!=", 1, 64), (0, "<=", 1, 63), (64, "!=", -1, 0),
    (64, ">", -1, 0), (64, ">=", -1, 1), (63, "<", 1, 64), (70, "<", 1, 64),
])
def test_counted_loops_over_the_packet(start: int, cond: str, step: int, bound: int) -> None:
    prog = assemble(f"""
        r0 = 0
        r6 = r1
        r9 = {start}
    loop:
        r3 = r6
        r3 += r9
        r4 = *(u8 *)(r3 -{1 if step < 0 else 0})
        r0 += r4
        r0 *= 3
        r9 += {step}
        if r9 {cond} {bound} goto loop
        exit
    """)
    r0, v = 0, start
    while True:
        index = v - (1 if step < 0 else 0)
        if index >= len(PACKET64):      # the first access is past the end: both fault there
            assert faults(prog, PACKET64).addr == addr(MEM_RID, index)
            return
        r0 = ((r0 + PACKET64[index]) * 3) & M64
        v += step
        if not {"<": v < bound, "!=": v != bound, "<=": v <= bound, ">": v > bound,
                ">=": v >= bound}[cond]:
            break
    assert both(prog, PACKET64)[0] == r0


def test_loop_base_near_the_end_of_a_region_crosses_into_the_next() -> None:
    # r6 = the last 2 bytes of region 9 (ctx, unmapped here): r6 + 2.. is the packet itself,
    # so a hoisted "region + offset" would be wrong; the guard must send it the slow way.
    prog = assemble("""
        r0 = 0
        r6 = 0x9fffffffe ll
        r9 = 2
    loop:
        r3 = r6
        r3 += r9
        r4 = *(u8 *)(r3 +0)
        r0 += r4
        r9 += 1
        if r9 < 10 goto loop
        exit
    """)
    assert both(prog, PACKET64)[0] == sum(PACKET64[:8])


def test_fault_inside_a_counted_loop_is_exact() -> None:
    prog = assemble("""
        r0 = 0
        r6 = r1
        r9 = 0
    loop:
        r3 = r6
        r3 += r9
        r4 = *(u16 *)(r3 +60)
        r0 ^= r4
        r9 += 1
        if r9 < 10 goto loop
        exit
    """)
    fault = faults(prog, PACKET64)
    assert (fault.pc, fault.addr, fault.access) == (5, addr(MEM_RID, 63), "read")
    assert "out of bounds of packet (size 64)" in str(fault)


def test_budget_reached_inside_a_loop_before_its_fault() -> None:
    # The load faults in iteration 4 (r9 = 3), as insn 3 + 3 * 6 + 3 = 24: with a budget of
    # 23 it is never reached (BudgetExceeded on both tiers), with 24 it faults.
    text = """
        r0 = 0
        r6 = r1
        r9 = 0
    loop:
        r3 = r6
        r3 += r9
        r4 = *(u32 *)(r3 +58)
        r0 ^= r4
        r9 += 1
        if r9 < 10 goto loop
        exit
    """
    for tier in TIERS:
        with pytest.raises(BudgetExceeded):
            assemble(text).execute(PACKET64, tier, budget=23)
    assert faults(assemble(text), PACKET64, budget=24).pc == 5


@tiers
def test_budget_is_exact_on_straight_line_code(tier: Tier) -> None:
    prog = assemble("r0 = 1\nr0 += 2\nr0 *= 3\nr0 -= 4\nexit")
    assert prog.execute(tier=tier, budget=5).insns == 5
    with pytest.raises(BudgetExceeded):
        prog.execute(tier=tier, budget=4)
    fault = assemble("r0 = 0\nr0 += 1\nr1 = 0\nr0 = *(u8 *)(r1 +0)\nexit")
    with pytest.raises(VmFault):
        fault.execute(tier=tier, budget=4)
    with pytest.raises(BudgetExceeded):
        fault.execute(tier=tier, budget=3)


@tiers
def test_budget_is_exact_in_loops_and_calls(tier: Tier) -> None:
    prog = assemble("""
        r0 = 0
        r9 = 0
    loop:
        r1 = r0
        call f
        r9 += 1
        if r9 < 5 goto loop
        exit
    f:
        r0 = r1
        r0 += 2
        exit
    """)
    insns = prog.execute(tier=tier).insns
    assert insns == 2 + 5 * 7 + 1
    assert prog.execute(tier=tier, budget=insns).insns == insns
    with pytest.raises(BudgetExceeded):
        prog.execute(tier=tier, budget=insns - 1)


def test_writing_r10_is_honoured() -> None:
    # r10 is read-only for the verifier, not for the structural validator: stack accesses
    # through a rewritten r10 must go where r10 points, in the caller and in a callee.
    prog = assemble("""
        r10 = r1
        *(u8 *)(r10 +3) = 0x55
        r10 += 8
        r6 = *(u32 *)(r10 -8)
        call f
        r0 += r6
        *(u8 *)(r10 -7) = r0
        exit
    f:
        r2 = r10
        r10 = r1
        *(u8 *)(r10 +0) = 0x66
        r10 = r2
        r0 = 9
        *(u64 *)(r10 -8) = r0
        r0 = *(u64 *)(r10 -8)
        exit
    """)
    r0, _, memory = both(prog, PACKET64)
    assert r0 == 9 + int.from_bytes(bytes([PACKET64[0], PACKET64[1], PACKET64[2], 0x55]),
                                    "little")
    assert memory[:4] == bytes([0x66, r0 & 0xFF, PACKET64[2], 0x55])


def test_stack_accesses_out_of_the_frame_fault_exactly() -> None:
    for off, size in ((0, 1), (-4, 8), (-513, 1), (-600, 8)):
        fault = faults(assemble(f"r0 = 0\n*(u{8 * size} *)(r10 {off:+d}) = r0\nexit"))
        assert (fault.pc, fault.addr, fault.access) == (1, addr(1) + STACK_SIZE + off, "write")


@pytest.mark.parametrize(("load", "expected"), [
    ("r0 = *(u16 *)(r1 +2)\nr0 = be16 r0", 0x0304),
    ("r0 = *(u32 *)(r1 +0)\nr0 = be32 r0", 0x01020304),
    ("r0 = *(u64 *)(r1 +0)\nr0 = bswap64 r0", 0x0102030405060708),
    ("r0 = *(u16 *)(r1 +2)\nr0 = le16 r0", 0x0403),
    ("r0 = *(u32 *)(r1 +0)\nr0 = be16 r0", 0x0102),               # be16 of a u32: not fused
    ("r0 = *(s16 *)(r1 +6)\nr0 = be16 r0", 0x0708),                # signed: not fused
])
def test_load_and_byte_swap(load: str, expected: int) -> None:
    assert both(assemble(f"{load}\nexit"), bytes(range(1, 9)))[0] == expected


def test_fused_load_and_swap_faults_at_the_load() -> None:
    fault = faults(assemble("r0 = *(u32 *)(r1 +6)\nr0 = be32 r0\nexit"), bytes(8))
    assert (fault.pc, fault.addr) == (0, addr(MEM_RID, 6))


def test_forwarded_and_dead_values_keep_faults_exact() -> None:
    # r3 is never stored (its only reader is the load), the load's result is dead.
    fault = faults(assemble("r3 = r1\nr3 += 100\nr4 = *(u8 *)(r3 +1)\nr0 = 0\nexit"), bytes(8))
    assert (fault.pc, fault.addr) == (2, addr(MEM_RID, 101))
    fault = faults(assemble("r3 = r1\nr3 += 7\nr0 = *(u8 *)(r3 +1)\nr0 += 1\nexit"), bytes(8))
    assert (fault.pc, fault.addr) == (2, addr(MEM_RID, 8))
    # a dead load that faults on the fall-through of a branch to the next instruction
    fault = faults(assemble("r0 = 0\nr2 = *(u8 *)(r1 +9)\nif r2 > 3 goto pc+0\nexit"), bytes(8))
    assert fault.pc == 1


def test_fault_inside_an_interpreter_block_closure() -> None:
    # The loop body is one closure on the interpreter: the fault names the op inside it.
    prog = assemble("""
        r0 = 0
        r9 = 0
    loop:
        r0 += r9
        r2 = r10
        r2 += r0
        *(u8 *)(r2 -200) = 1
        r9 += 1
        if r9 < 100 goto loop
        exit
    """)
    fault = faults(prog)               # when r0 = 0 + 1 + ... + 20 = 210
    assert (fault.pc, fault.addr) == (5, addr(1) + STACK_SIZE + 210 - 200)
    both(assemble("r0 = 0\nr9 = 0\nloop:\nr0 += r9\nr9 += 1\nif r9 < 100 goto loop\nexit"))


def test_helpers_see_exact_counts_and_can_stop_a_loop() -> None:
    seen: dict[str, list[int]] = {"interp": [], "jit": []}

    def note(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        if r1 == 4:
            raise ProgramExit(r1 * 100)
        return r1

    prog = assemble("""
        r6 = 0
    loop:
        r1 = r6
        call 1
        r6 += 1
        if r6 < 10 goto loop
        r0 = 0
        exit
    """)
    for tier in TIERS:
        result = prog.execute(tier=tier, helpers={1: note})
        seen[tier] = [result.r0, result.insns]
    assert seen["interp"] == seen["jit"] == [400, 1 + 4 * 4 + 2]


def test_nested_runs_keep_the_outer_count() -> None:
    inner = assemble("r0 = 0\nr9 = 0\nloop:\nr0 += r9\nr9 += 1\nif r9 < 50 goto loop\nexit")
    counts = {}
    for tier in TIERS:
        def run_inner(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int,
                      tier: Tier = tier) -> int:
            return vm.execute(inner, tier, 0).r0

        prog = assemble("r6 = 0\nloop:\ncall 1\nr6 += 1\nif r6 < 3 goto loop\nexit")
        result = Vm(helpers={1: run_inner}).execute(prog, tier, 0)
        counts[tier] = (result.r0, result.insns)
    assert counts["interp"] == counts["jit"] == (sum(range(50)), 1 + 3 * 3 + 1)


def test_translations_are_shared_between_vms_but_bound_to_each() -> None:
    prog = assemble("r1 = 5\ncall 1\nexit")
    first = Vm(helpers={1: lambda vm, *args: args[0] + 1})
    second = Vm(helpers={1: lambda vm, *args: args[0] * 10})
    assert first.run(prog, tier="jit").r0 == 6
    assert second.run(assemble("r1 = 5\ncall 1\nexit"), tier="jit").r0 == 50
    with pytest.raises(HelperError):
        Vm().run(assemble("r1 = 5\ncall 1\nexit"), tier="jit")


def test_many_early_exits_do_not_nest_without_bound() -> None:
    # Each "if ... goto drop" wraps the rest of the program in one more if on the jit;
    # past a depth limit (Python allows 100 indentation levels) it dispatches instead.
    lines = ["r0 = 0", "r2 = 1"]
    for i in range(300):
        lines += [f"if r2 == {i + 1000} goto drop", "r0 += 1"]
    text = "\n".join([*lines, "exit", "drop:", "r0 = 99", "exit"])
    assert both(assemble(text))[:2] == (300, 2 + 300 * 2 + 1)
    assert both(assemble(text.replace("r2 = 1", "r2 = 1200")))[0] == 99


def test_byte_loop_over_a_short_packet_faults_where_the_bytes_end() -> None:
    # The loop would run over the bytes themselves, but only after the entry has checked
    # that all of them exist; with 60 bytes it takes the checked loop and faults at 60.
    text = """
        w0 = 7
        r6 = r1
        r9 = 0
    loop:
        r3 = r6
        r3 += r9
        r4 = *(u8 *)(r3 +0)
        w0 ^= w4
        w0 *= 16777619
        r9 += 1
        if r9 < 64 goto loop
        exit
    """
    h = 7
    for byte in PACKET64:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    assert both(assemble(text), PACKET64)[:2] == (h, 3 + 64 * 7 + 1)
    fault = faults(assemble(text), PACKET64[:60])
    assert (fault.pc, fault.addr) == (5, addr(MEM_RID, 60))


def test_crossing_branches_diamonds_and_loops_through_the_dispatcher() -> None:
    prog = assemble("""
        r0 = 0
        r6 = 0
    outer:
        if r6 > 5 goto mid             ; crosses the diamond below
        r0 += 1
        if r6 & 1 goto odd
        r0 += 10
        goto join
    odd:
        r0 += 100
    mid:
        r0 += 1000
    join:
        r6 += 1
        if r6 < 9 goto outer           ; a loop of several blocks
        if r0 == 0 goto out
        r0 *= 3
    out:
        exit
    """)
    r0 = 0
    for r6 in range(9):
        if r6 <= 5:
            r0 += 1
            r0 += 100 + 1000 if r6 & 1 else 10
        else:
            r0 += 1000
    assert both(prog)[0] == r0 * 3


@tiers
def test_tail_call_in_a_subprogram_returns_to_its_caller(tier: Tier) -> None:
    """A tail call made in a subprogram replaces that subprogram only (the x86-64 JIT's
    frame handling): the target's r0 is the call's result, and the caller goes on."""
    target = assemble("r0 = 40\nexit")

    def tail(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        raise TailCall(target, r1)

    vm = Vm(helpers={12: tail})
    prog = assemble("call pc+2\nr0 += 2\nexit\ncall 12\nr0 = 7\nexit")
    result = vm.execute(prog, tier, addr(CTX_RID))
    # main: call, r0 += 2, exit; subprogram: call 12; target: r0 = 40, exit
    assert (result.r0, result.tail_calls, result.insns) == (42, 1, 6)
