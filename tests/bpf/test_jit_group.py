"""Writes through one base register merged into one struct read and one struct write by
the translated tier (``tcemu.bpf.jit.group``), compared with the interpreter.

Seeded blocks of plain stores (1, 2, 4, 8 bytes, immediate or register) and atomics
without fetch (add, or, and, xor; 32 and 64 bits) through two map values, mixed with what
may sit between a group's members (ALU ops that rewrite the registers a member reads, or
the base itself, 64-bit immediates) and with what must end a group (a load through the
base, a fetching atomic): r0, every register folded into it, the instruction count, both
maps' contents, and for the seeds that write out of bounds (offsets past the value,
before it, or a base moved off it) the fault's pc, address, access and region.
"""

from __future__ import annotations

import random

import pytest

from tcemu.bpf import Program, assemble
from tcemu.bpf.env import Env
from tcemu.bpf.helpers import helpers_for
from tcemu.bpf.jit import translate_source
from tcemu.bpf.maps import MapBase, MapSpec, create_map, map_handle
from tcemu.bpf.ops import Atomic, LdImm64, Store
from tcemu.bpf.uapi import BpfMapType, BpfProgType
from tcemu.bpf.vm import Tier, Vm
from tcemu.errors import VmFault

# (type, key size, value size, entries): an array's values share one region, a hash
# value is a region of its own
MAPS = [(BpfMapType.ARRAY, 4, 32, 2), (BpfMapType.HASH, 4, 24, 4)]
SIZES = {8: "u8", 16: "u16", 32: "u32", 64: "u64"}
PROLOGUE = """
    *(u32 *)(r10 -4) = 0
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem
    r7 = r0
    r1 = map[idx:1]
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem
    r8 = r0
    r1 = 0x12345678
    r2 = -3
    r3 = 0x7fffffffffffffff ll
    r4 = 1
    r5 = 0x55
    r9 = 0x99
    if r7 == 0 goto out
    if r8 == 0 goto out
"""
EPILOGUE = """
out:
    r0 = r1
    r0 ^= r2
    r0 += r3
    r0 ^= r4
    exit
"""


def _write(rng: random.Random, base: str, value: int, fault: bool) -> str:
    bits = rng.choice((8, 16, 32, 64)) if rng.random() < 0.4 else rng.choice((32, 64))
    size = bits // 8
    if fault and rng.random() < 0.15:
        off = rng.choice((value - size + 1, rng.randrange(value - size + 1, value + 8),
                          -rng.randrange(1, 9)))
    else:
        off = rng.randrange(0, value - size + 1)
        if rng.random() < 0.7:
            off -= off % size                       # (mostly aligned, as compilers do)
    where = f"*({SIZES[bits]} *)(r{base} {off:+d})"
    src = rng.choice(("r1", "r2", "r3", "r4", "r5", "r9"))
    pick = rng.random()
    if pick < 0.3:
        return f"{where} = {rng.randrange(-5, 300)}"
    if pick < 0.5:
        return f"{where} = {src}"
    if bits < 32:
        return f"{where} = {src}"
    return f"lock {where} {rng.choice(('+=', '+=', '|=', '&=', '^='))} {src}"


def _program(seed: int) -> str:
    rng = random.Random(seed)
    fault = seed % 4 == 0
    out = []
    for _ in range(rng.randrange(4, 16)):
        base, value = rng.choice((("7", 32), ("8", 24), ("8", 24)))
        pick = rng.random()
        if pick < 0.55:
            out.append(_write(rng, base, value, fault))
        elif pick < 0.8:
            # pure: the sources (r5 and r9 are read by nothing after the block: their
            # values stay pending, pasted into their readers)
            reg, other = rng.sample(("r1", "r2", "r3", "r4", "r5", "r9", "r5", "r9"), 2)
            out.append(rng.choice((f"{reg} += {rng.randrange(1, 99)}", f"{reg} *= 3",
                                   f"{reg} = {rng.randrange(1 << 20)}", f"{reg} ^= {other}",
                                   f"{reg} = {other}", f"{reg} += {other}",
                                   f"{reg} = 0x1122334455667788 ll")))
        elif pick < 0.87:                    # the base moves (within its value, or off it)
            step = rng.choice((8, 4) if not fault else (8, 4, 64))
            out.append(f"r{base} += {step}" if rng.random() < 0.5 else f"r{base} = r{base}")
            out.append(f"r{base} += -{step}" if rng.random() < 0.7 or not fault else "r1 += 0")
        elif pick < 0.94:                    # a load through the base ends a group
            out.append(f"r{rng.randrange(1, 5)} = *(u32 *)(r{base} +{rng.randrange(0, 5) * 4})")
        else:                                # so does an atomic that fetches
            out.append(f"r{rng.randrange(1, 5)} = atomic64_fetch_add((u64 *)(r{base} +8), "
                       f"r{rng.randrange(1, 5)})")
    return "r6 = r1\n" + PROLOGUE + "\n".join(f"    {line}" for line in out) + EPILOGUE


def _setup(text: str) -> tuple[Vm, Program, list[MapBase]]:
    env = Env()
    maps = [create_map(MapSpec(f"m{i}", kind, key, value, entries), env)
            for i, (kind, key, value, entries) in enumerate(MAPS)]
    maps[0].update(bytes(4), bytes(range(32)))
    maps[1].update(bytes(4), bytes(range(100, 124)))
    prog = assemble(text)

    def resolve(op: LdImm64) -> int:
        return map_handle(maps[op.imm])

    prog.map_resolver = resolve
    return Vm(env, helpers=helpers_for(BpfProgType.SCHED_CLS)), prog, maps


def _outcome(text: str, tier: Tier) -> tuple[object, list[list[tuple[bytes, bytes]]]]:
    vm, prog, maps = _setup(text)
    try:
        result = vm.run(prog, memory=bytes(16), tier=tier)
        end: object = (result.r0, result.insns)
    except VmFault as fault:
        end = ("fault", fault.pc, fault.addr, fault.access, fault.region)
    return end, [sorted(m.items()) for m in maps]


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("seed", range(120))
def test_groups_agree_with_the_interpreter(seed: int) -> None:
    text = _program(seed)
    assert _outcome(text, "jit") == _outcome(text, "interp")


def _source(body: str) -> str:
    vm, prog, _ = _setup("r6 = r1\n" + PROLOGUE + body + EPILOGUE)
    return translate_source(vm, prog)


def test_the_counter_pattern_is_one_group() -> None:
    """flow_counter's update of a found value: two adds and an or, a context-like value
    computed between them, one group with the untouched bytes 16..19 kept."""
    source = _source("""
    lock *(u64 *)(r8 +0) += r4
    r1 = 77
    lock *(u64 *)(r8 +8) += r1
    lock *(u32 *)(r8 +20) |= r2
""")
    assert "FU_QQ4sI(g8, o8)" in source
    assert "FP_QQ4sI(g8, o8, " in source
    assert source.count("P8(") == 2            # the fallback
    assert source.count("P4(") == 1


@pytest.mark.parametrize(("body", "grouped"), [
    # a load through the base between them: two single writes
    ("*(u32 *)(r8 +0) = 1\nr1 = *(u32 *)(r8 +4)\n*(u32 *)(r8 +8) = 2", False),
    # the base moves between them
    ("*(u32 *)(r8 +0) = 1\nr8 += 4\n*(u32 *)(r8 +8) = 2", False),
    # the same bytes twice: the second must see the first
    ("lock *(u32 *)(r8 +0) += r1\nlock *(u32 *)(r8 +0) += r1", False),
    # a negative offset is never a member
    ("*(u32 *)(r8 -4) = 1\n*(u32 *)(r8 +0) = 2", False),
    # the frame has its own (zero runs, no faults)
    ("*(u32 *)(r10 -8) = 1\n*(u32 *)(r10 -12) = 2", False),
    # a source rewritten after its store: what is open is written before the rewrite
    ("*(u32 *)(r8 +0) = r1\nr1 = 5\n*(u32 *)(r8 +4) = r1", False),
    ("*(u32 *)(r8 +0) = r1\n*(u32 *)(r8 +4) = 7\nr1 = 5\n*(u32 *)(r8 +8) = r1", True),
    ("*(u8 *)(r7 +3) = r2\n*(u16 *)(r7 +0) = 9\n*(u64 *)(r7 +8) = r3", True),
    # r9's value is the local r3, whose new value (r4's) is pending: when r4 changes, r3
    # is written, so r9's value cannot wait in a group
    ("r9 = r3\nr3 = r4\n*(u32 *)(r8 +0) = r9\n*(u32 *)(r8 +4) = 7\nr4 += 1", False),
    # one byte past the value: the guard fails, the members go one by one and the
    # second faults after the first is written
    ("*(u32 *)(r8 +0) = 1\n*(u32 *)(r8 +21) = 2", True),
])
def test_what_makes_a_group(body: str, grouped: bool) -> None:
    text = "\n".join(f"    {line}" for line in body.split("\n")) + "\n"
    assert ("FU_" in _source(text)) == grouped
    full = "r6 = r1\n" + PROLOGUE + text + EPILOGUE
    assert _outcome(full, "jit") == _outcome(full, "interp")


@pytest.mark.parametrize("first", ["*(u32 *)(r8 +0) = 1", "lock *(u64 *)(r8 +0) += r1"])
def test_a_read_only_value_faults_at_the_first_member(first: str) -> None:
    """The merged write fails where the first member's would: same pc, same report."""
    text = "r6 = r1\n" + PROLOGUE + f"    {first}\n    *(u32 *)(r8 +8) = 2\n" + EPILOGUE
    outcomes = []
    for tier in ("interp", "jit"):
        vm, prog, _ = _setup(text)
        vm.run(prog, memory=bytes(16), tier=tier)      # the first run: regions exist
        regions = vm.memory.regions
        for rid, region in enumerate(regions):
            if isinstance(region, bytearray) and len(region) == 24:
                regions[rid] = bytes(region)            # the hash value, read-only
        with pytest.raises(VmFault) as info:
            vm.run(prog, memory=bytes(16), tier=tier)
        outcomes.append((info.value.pc, info.value.access, info.value.region))
    assert outcomes[0] == outcomes[1]
    _, prog, _ = _setup(text)
    assert outcomes[0][0] == next(op.pc for op in prog.ops
                                  if isinstance(op, Store | Atomic) and op.dst == 8)
