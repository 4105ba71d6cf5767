"""The translated tier on acyclic, branchy code: regions in topological order without the
dispatcher loop, small exit blocks copied into their jumps, and packet pointers whose
range places an access in the packet region (``PK[...]``, the region bound once as ``PK``).

Every program is compared with the interpreter (r0, instruction count, memory, fault
pc/address/access, budget exhaustion) at the full budget and at smaller ones.
"""

from __future__ import annotations

import random

import pytest

from tcemu.bpf import Vm, assemble
from tcemu.bpf.helpers import helpers_for
from tcemu.bpf.jit import translate_source
from tcemu.bpf.testrun import SkbContext
from tcemu.bpf.uapi import BpfProgType
from tcemu.bpf.vm import Tier
from tcemu.errors import BudgetExceeded, VmFault
from tcemu.skb import SkBuff

PACKET = bytes((i * 37 + 11) & 0xFF for i in range(64))
FRAME = bytes.fromhex("020000000002020000000001080045000028000100004006") + bytes(40)
_SCALARS = (0, 2, 3, 4, 5, 8)




def _straight(rng: random.Random, out: list[str], count: int, packet: str, fault: bool) -> None:
    """ALU, stack and packet traffic (``packet``: the register holding the packet)."""
    for _ in range(count):
        pick = rng.random()
        dst, src = rng.choice(_SCALARS), rng.choice(_SCALARS)
        if pick < 0.2:
            size = rng.choice((1, 2, 4, 8))
            limit = 80 if fault else 64 - size + 1
            out.append(f"r{dst} = *(u{8 * size} *)({packet} +{rng.randrange(limit)})")
        elif pick < 0.3:
            out.append(f"*(u64 *)(r10 -{8 * rng.randrange(1, 9)}) = r{src}")
        elif pick < 0.4:
            out.append(f"r{dst} = *(u64 *)(r10 -{8 * rng.randrange(1, 9)})")
        elif pick < 0.45:
            kind = rng.choice(("be", "le", "bswap"))
            out.append(f"r{dst} = {kind}{rng.choice((16, 32, 64))} r{dst}")
        else:
            op = rng.choice(("+=", "-=", "*=", "|=", "&=", "^=", "<<=", ">>=", "="))
            r = rng.choice("rw")
            if op in ("<<=", ">>="):
                out.append(f"{r}{dst} {op} {rng.randrange(1, 32)}")
            elif rng.random() < 0.5:
                out.append(f"{r}{dst} {op} {r}{src}")
            else:
                out.append(f"{r}{dst} {op} {rng.randrange(-500, 500) or 7}")


def _dag(seed: int, *, packet: str = "r6", fault: bool = False, size: int = 22) -> list[str]:
    """Blocks of an acyclic CFG laid out in a random order (so that some jumps go
    backwards in the text without closing a cycle), with shared join and exit blocks."""
    rng = random.Random(seed)
    count = rng.randrange(6, size)
    layout = [0, *rng.sample(range(1, count), count - 1)]
    out: list[str] = []
    for pos, topo in enumerate(layout):
        out.append(f"b{topo}:")
        later = list(range(topo + 1, count))
        if not later or rng.random() < 0.15:        # a small exit block
            if rng.random() < 0.5:
                out.append(f"r0 = {rng.randrange(3)}")
            else:
                _straight(rng, out, 1, packet, fault)
            out.append("exit")
            continue
        _straight(rng, out, rng.randrange(1, 6), packet, fault)
        for _ in range(rng.randrange(0, 3)):
            cond = rng.choice((">", "<", "==", "!=", "s>", "&"))
            reg = rng.choice(_SCALARS)
            out.append(f"if r{reg} {cond} {rng.randrange(256)} goto b{rng.choice(later)}")
        nxt = layout[pos + 1] if pos + 1 < len(layout) else None
        if nxt is None or nxt <= topo or rng.random() < 0.3:
            out.append(f"goto b{rng.choice(later)}")
    return out


def _raw_program(seed: int, fault: bool = False, size: int = 22) -> str:
    head = ["r6 = r1", *(f"r{r} = {r}" for r in _SCALARS),
            *(f"*(u64 *)(r10 -{8 * s}) = r0" for s in range(1, 9))]
    return "\n".join(head + _dag(seed, fault=fault, size=size))


def _outcome(text: str, tier: Tier, budget: int = 1 << 24) -> object:
    try:
        result = assemble(text).execute(PACKET, tier, budget=budget)
    except VmFault as fault:
        return ("fault", fault.pc, fault.addr, fault.access, fault.region)
    except BudgetExceeded:
        return "budget"
    return (result.r0, result.insns, result.memory)


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize(("seed", "size"), [*((s, 22) for s in range(24)),
                                            *((s, 80) for s in range(100, 112))])
def test_acyclic_programs_agree_with_the_interpreter(seed: int, size: int) -> None:
    text = _raw_program(seed, fault=seed % 4 == 3, size=size)
    expected = _outcome(text, "interp")
    assert _outcome(text, "jit") == expected
    if isinstance(expected, tuple) and expected[0] != "fault":
        insns = expected[1]
        assert isinstance(insns, int)
        for budget in (insns - 1, insns // 2, insns // 5, 3):
            assert _outcome(text, "jit", budget) == _outcome(text, "interp", budget)


# ---- programs on an skb: data and data_end loaded from the context ----------------------
def _skb_program(seed: int, fault: bool) -> str:
    """Bounds-checked packet parsing: data + K > data_end goes to a shared exit."""
    rng = random.Random(1000 + seed)
    lines = ["r6 = *(u32 *)(r1 +76)", "r7 = *(u32 *)(r1 +80)",
             *(f"r{r} = {r}" for r in _SCALARS),
             *(f"*(u64 *)(r10 -{8 * s}) = r0" for s in range(1, 9)),
             "r2 = r6", f"r2 += {rng.choice((14, 34, 64, 80))}", "if r2 > r7 goto drop",
             "r9 = r6", f"r9 += {rng.randrange(0, 20)}"]
    lines += _dag(seed, packet=rng.choice(("r6", "r9")), fault=fault)
    lines += ["drop:", "r0 = 2", "exit"]
    return "\n".join(lines)


def _skb_outcome(text: str, tier: Tier, budget: int = 1 << 24) -> object:
    prog = assemble(text)
    prog.prog_type = BpfProgType.SCHED_CLS
    vm = Vm(helpers=helpers_for(BpfProgType.SCHED_CLS), budget=budget)
    try:
        result = prog.test_run(FRAME, vm=vm, tier=tier)
    except VmFault as fault:
        return ("fault", fault.pc, fault.addr, fault.access, fault.region)
    except BudgetExceeded:
        return "budget"
    return (result.retval, result.insns, result.data_out)


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("seed", range(16))
def test_packet_programs_agree_with_the_interpreter(seed: int) -> None:
    text = _skb_program(seed, fault=seed % 4 == 1)
    expected = _skb_outcome(text, "interp")
    assert _skb_outcome(text, "jit") == expected
    if isinstance(expected, tuple) and expected[0] != "fault":
        insns = expected[1]
        assert isinstance(insns, int)
        for budget in (insns - 1, insns // 2, 4):
            assert _skb_outcome(text, "jit", budget) == _skb_outcome(text, "interp", budget)


# ---- the shape of the code -------------------------------------------------------------
PARSER = """
    r2 = *(u32 *)(r1 +76)
    r3 = *(u32 *)(r1 +80)
    r4 = r2
    r4 += 14
    if r4 > r3 goto drop
    r5 = *(u16 *)(r2 +12)
    if r5 == 8 goto ip
    if r5 == 0x81 goto vlan
    goto drop
vlan:
    r4 = r2
    r4 += 18
    if r4 > r3 goto drop
    r5 = *(u16 *)(r2 +16)
    if r5 != 8 goto drop
    r2 += 4
ip:
    r4 = r2
    r4 += 34
    if r4 > r3 goto drop
    r0 = *(u8 *)(r2 +23)
    if r0 == 6 goto tcp
    r0 = 1
    exit
tcp:
    r0 = *(u8 *)(r2 +47)
    if r0 == 0 goto drop
    r0 = 0
    exit
drop:
    r0 = 2
    exit
"""


def _parser_source() -> str:
    prog = assemble(PARSER)
    vm = Vm(helpers=helpers_for(BpfProgType.SCHED_CLS))
    vm.ctx = SkbContext(SkBuff(bytearray(FRAME)), BpfProgType.SCHED_CLS)
    return translate_source(vm, prog, prog.ctx_ops(vm.ctx))


def test_acyclic_code_has_no_dispatcher_loop_and_copies_small_exits() -> None:
    source = _parser_source()
    assert "if n > BUDGET: raise OVER(b)" not in source
    assert "continue" not in source
    assert source.count("return 2") >= 3          # the drop exit, copied into its jumps
    assert "PK[" in source                        # accesses in the packet region
    assert "G[(a :=" not in source


FRAMES = (FRAME, FRAME[:12] + b"\x08\x06\x00\x01",
          FRAME[:12] + b"\x81\x00" + FRAME[14:], FRAME[:47] + b"\x01" + FRAME[48:],
          FRAME[:12] + b"\x81\x00\x00\x01\x08\x00" + FRAME[12:],
          FRAME[:23] + b"\x11" + FRAME[24:])


def test_parser_paths_agree_with_the_interpreter() -> None:
    prog = assemble(PARSER)
    prog.prog_type = BpfProgType.SCHED_CLS
    got: dict[str, list[tuple[int, int]]] = {"interp": [], "jit": []}
    for tier in ("interp", "jit"):
        for frame in FRAMES:
            vm = Vm(helpers=helpers_for(BpfProgType.SCHED_CLS))
            result = prog.test_run(frame, vm=vm, tier=tier)
            got[tier].append((result.retval, result.insns))
    assert got["jit"] == got["interp"]
    assert [r for r, _ in got["jit"]] == [2, 2, 2, 0, 1, 1]


# ---- address forms -----------------------------------------------------------------------
@pytest.mark.parametrize("base", [0xFFFF_FFFF_FFFF_FFF0, 0xFFFF_FFFF_0000_0000, 0x10, 0])
@pytest.mark.parametrize("access", ["r0 = *(u32 *)(r1 +32)", "*(u32 *)(r1 +32) = r0",
                                    "r0 = *(u8 *)(r1 +20)", "r0 = *(u32 *)(r1 -8)",
                                    "lock *(u64 *)(r1 +32) += r0",
                                    "lock *(u32 *)(r1 +0) |= r0"])
def test_addresses_that_wrap_fault_alike(base: int, access: str) -> None:
    """A positive offset is added without the 64-bit mask: past 2**64 the region index is
    past the table instead of wrapping into region 0; both are the same fault."""
    text = f"r1 = {base:#x} ll\nr0 = 7\n{access}\nr0 = 1\nexit"
    expected = _outcome(text, "interp")
    assert expected[0] == "fault"  # type: ignore[index]
    assert _outcome(text, "jit") == expected


def test_dead_stack_loads_are_not_emitted_unless_they_can_fault() -> None:
    text = "\n".join(["*(u64 *)(r10 -8) = r1", "r2 = *(u64 *)(r10 -8)",
                      "r3 = *(u64 *)(r10 +8)", "r0 = 1", "exit"])
    source = translate_source(Vm(), assemble(text))
    assert "P8(S, 504, r1)" in source              # the store
    assert "U8(S, 504)" not in source              # the dead in-frame load
    assert "U8(S, 520)" in source                  # the load past the frame still faults
    assert _outcome(text, "jit") == _outcome(text, "interp")


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("seed", [2, 8, 9, 18, 23, 27, 28, 33, 42, 43, 48, 49])
def test_faults_and_budgets_meet_alike(seed: int) -> None:
    """Around a fault, a budget short of it or past it must give what the interpreter
    gives: the count at each faulting op is exact even where blocks share one count."""
    text = _raw_program(seed, fault=True)
    assert _outcome(text, "interp")[0] == "fault"  # type: ignore[index]
    for budget in range(1, 90, 2):
        assert _outcome(text, "jit", budget) == _outcome(text, "interp", budget), budget


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("seed", [9, 16, 27, 33, 37, 42])
def test_packet_faults_and_budgets_meet_alike(seed: int) -> None:
    text = _skb_program(seed, True)
    assert _skb_outcome(text, "interp")[0] == "fault"  # type: ignore[index]
    for budget in range(1, 90, 2):
        assert _skb_outcome(text, "jit", budget) == _skb_outcome(text, "interp", budget), budget
