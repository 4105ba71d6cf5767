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
