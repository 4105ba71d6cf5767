"""Where the time goes: hand-written variants of the FNV program, one change at a time.

    python bench/headroom.py [--quick]

Not a benchmark of tcemu as shipped (that is run.py) but the evidence behind the analysis
in BENCHMARKS.md.  Every variant executes the FNV-1a program of run.py with the same
semantics (the same r0, the same instruction count, the budget still enforced unless the
variant says otherwise) and reports ns per eBPF instruction of that program:

* ``J*``: the translated tier's loop nest as ``tcemu.bpf.jit`` emitted it at two commits
  (J0, J1; J1 is what run.py measured at fa22644), then with one code-generation
  improvement added at a time (J2..J5), one change of address encoding (J1'), and as it
  emits it now (J6, after the optimisation work described in BENCHMARKS.md);
* ``I*``: the interpreter's closure threading today (I0 is tcemu itself), the cost of its
  dispatch alone (I1: a program of ``goto +0``), and one closure per basic block (I2);
* ``T*``: how the translated tier's ``compile()`` time grows with the program size.

The hand-written J variants assume facts a translator would have to prove (named in each
docstring); they measure what the change is worth, not that it is always legal.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench_programs import FNV_PACKET, FNV_PRIME, fnv1a_rounds, fnv_source, generated_source
from bench_util import measure_interleaved, now_ns

from tcemu.bpf import Vm, assemble
from tcemu.bpf.jit import translate_source
from tcemu.bpf.vm import Tier

M64 = 0xFFFFFFFFFFFFFFFF
BUDGET = 1 << 24
ROOT = Path(__file__).resolve().parent.parent
BASE = 1 << 32                          # tcemu's address of the packet: region 1, offset 0
G: list[bytearray] = [bytearray(), bytearray(FNV_PACKET)]
PROGRAM_INSNS = 3 + 5 + 256 * (1 + 64 * 7 + 2) + 1   # executed by the ours variant: 115465

Variant = Callable[[int], tuple[int, int]]   # (r6 = packet address) -> (r0, insns)


def _over(pc: int) -> Exception:
    return RuntimeError(f"budget exhausted at {pc}")


def j0_at_18e398a(r6: int) -> tuple[int, int]:
    """The loop nest as the translated tier emitted it at commit 18e398a."""
    n, r0, r8 = 8, 2166136261, 0
    while True:
        n += 1
        r9 = 0
        while True:
            n += 7
            if n > BUDGET:
                raise _over(9)
            r3 = r6
            r3 = (r3 + r9) & 0xFFFFFFFFFFFFFFFF
            r4 = G[r3 >> 32][r3 & 0xFFFFFFFF]
            r0 = (r0 ^ r4) & 0xFFFFFFFF
            r0 = (r0 * 16777619) & 0xFFFFFFFF
            r9 = (r9 + 1) & 0xFFFFFFFFFFFFFFFF
            if not (r9 < 64):
                break
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


def j1_at_fa22644(r6: int) -> tuple[int, int]:
    """As emitted at commit fa22644: the copy folded into the add, xor and multiply sharing
    one mask, and the budget enforced by a ``for`` over the iterations left."""
    n, r0, r8 = 8, 2166136261, 0
    while True:
        n += 1
        r9 = 0
        for _i in range((BUDGET - n) // 7):
            r3 = (r6 + r9) & 0xFFFFFFFFFFFFFFFF
            r4 = G[r3 >> 32][r3 & 0xFFFFFFFF]
            r0 = ((r0 ^ r4) * 16777619) & 0xFFFFFFFF
            r9 = (r9 + 1) & 0xFFFFFFFFFFFFFFFF
            if r9 >= 64:
                break
        else:
            raise _over(9)
        n += 7 * (_i + 1)
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


def j2_ranges(r6: int) -> tuple[int, int]:
    """+ no 64-bit masks where value ranges exclude a wrap: ``r9 + 1`` with r9 < 64 and
    ``r6 + r9`` (a packet address plus a value < 64).  Needs a range analysis."""
    n, r0, r8 = 8, 2166136261, 0
    while True:
        n += 1
        r9 = 0
        for _i in range((BUDGET - n) // 7):
            r3 = r6 + r9
            r4 = G[r3 >> 32][r3 & 0xFFFFFFFF]
            r0 = ((r0 ^ r4) * 16777619) & 0xFFFFFFFF
            r9 = r9 + 1
            if r9 >= 64:
                break
        else:
            raise _over(9)
        n += 7 * (_i + 1)
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


def j3_hoisted_region(r6: int) -> tuple[int, int]:
    """+ the region lookup hoisted out of the loop: ``g = G[r6 >> 32]``, ``g[o + r9]``.

    Needs r6 loop-invariant and ``(r6 & M32) + r9`` never carrying into the region bits
    (r9 < 64 here).  r3 is still written: it is live-out in general.
    """
    n, r0, r8 = 8, 2166136261, 0
    g, o = G[r6 >> 32], r6 & 0xFFFFFFFF
    while True:
        n += 1
        r9 = 0
        for _i in range((BUDGET - n) // 7):
            r3 = r6 + r9  # noqa: F841 - a register write, kept
            r4 = g[o + r9]
            r0 = ((r0 ^ r4) * 16777619) & 0xFFFFFFFF
            r9 = r9 + 1
            if r9 >= 64:
                break
        else:
            raise _over(9)
        n += 7 * (_i + 1)
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


def j4_dead_address(r6: int) -> tuple[int, int]:
    """+ r3 and r4 not kept in the loop: both are dead (written before any read on every
    path and not observable at exit); r3 is set once after the loop for exactness."""
    n, r0, r8 = 8, 2166136261, 0
    g, o = G[r6 >> 32], r6 & 0xFFFFFFFF
    while True:
        n += 1
        r9 = 0
        for _i in range((BUDGET - n) // 7):
            r0 = ((r0 ^ g[o + r9]) * 16777619) & 0xFFFFFFFF
            r9 = r9 + 1
            if r9 >= 64:
                break
        else:
            raise _over(9)
        n += 7 * (_i + 1)
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


def j5_counted_loop(r6: int) -> tuple[int, int]:
    """+ the loop recognised as counted: ``for`` over the packet offsets themselves.

    Needs a proof that r9 starts at 0, only ``r9 += 1`` writes it, the exit test is
    ``r9 < 64``, nothing leaves the loop early, and the 64 bytes are in bounds (checked
    once at entry; else the translator falls back to the checked loop).  The nearest a
    translator can get to the idiomatic loop while keeping the eBPF registers.
    """
    n, r0, r8 = 8, 2166136261, 0
    g, o = G[r6 >> 32], r6 & 0xFFFFFFFF
    if o + 64 > len(g):
        raise IndexError("the fault path: fall back to the checked loop")
    while True:
        n += 1 + 7 * 64
        if n > BUDGET:
            raise _over(9)
        for i in range(o, o + 64):
            r0 = ((r0 ^ g[i]) * 16777619) & 0xFFFFFFFF
        r9 = 64  # noqa: F841 - the register after the loop, as the eBPF code leaves it
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


def j6_as_emitted_now(r6: int) -> tuple[int, int]:
    """As the translated tier emits it after the optimisation work (see BENCHMARKS.md): the
    round loop through the dispatcher, the byte loop counted (its trip count and the
    budget checked once at entry), the packet region hoisted behind a guard, and the loop
    over the packet's bytes themselves (no access can fault once the guard has passed).
    The fallback (the checked loop) is not taken here and is left out."""
    n, r0, r8, b = 8, 2166136261, 0, 2
    while True:
        if n > BUDGET:
            raise _over(b)
        if b == 2:
            n += 1
            r9 = 0
            _v0 = r9
            if (n + 7 * (64 - _v0) <= BUDGET and r6 >> 32 < len(G)
                    and r6 & 0xFFFFFFFF <= 4294967232
                    and (r6 & 0xFFFFFFFF) + 64 <= len(G[r6 >> 32])):
                _g6 = G[r6 >> 32]
                _o6 = r6 & 0xFFFFFFFF
                for _b in _g6[_o6 + _v0:_o6 + 64]:
                    r0 = (((r0 ^ _b) * 16777619) & 0xFFFFFFFF)
                n += 7 * (64 - _v0)
            else:
                raise RuntimeError("the fallback is not part of this variant")
            n += 2
            r8 = ((r8 + 1) & 0xFFFFFFFFFFFFFFFF)
            if r8 < 256:
                b = 2
                continue
            return r0, n + 1


def j1_small_addresses(r6: int) -> tuple[int, int]:
    """J1 with addresses encoded as ``region << 20 | offset``: every value stays < 2**30.

    CPython 3.11 has fast paths for single-"digit" ints (< 2**30); tcemu's addresses are
    ``region << 32 | offset`` and so always take the multi-digit paths.  Run with r6 = 1 << 20.
    """
    n, r0, r8 = 8, 2166136261, 0
    while True:
        n += 1
        r9 = 0
        for _i in range((BUDGET - n) // 7):
            r3 = (r6 + r9) & 0xFFFFFFFFFFFFFFFF
            r4 = G[r3 >> 20][r3 & 0xFFFFF]
            r0 = ((r0 ^ r4) * 16777619) & 0xFFFFFFFF
            r9 = (r9 + 1) & 0xFFFFFFFFFFFFFFFF
            if r9 >= 64:
                break
        else:
            raise _over(9)
        n += 7 * (_i + 1)
        n += 2
        r8 = (r8 + 1) & 0xFFFFFFFFFFFFFFFF
        if r8 < 256:
            continue
        return r0, n + 1


# ---- interpreter variants -------------------------------------------------------------------


def i2_block_closures(r6: int) -> tuple[int, int]:
    """One closure per basic block (a "superinstruction" per block), same register list.

    The dispatch loop calls a block, which returns (next block, its length); the body is the
    interpreter's per-op template text, concatenated.
    """
    def inner(R: list[int]) -> int:  # noqa: N803 - the interpreter's spelling
        R[3] = R[6]
        R[3] = (R[3] + R[9]) & M64
        a = R[3]
        R[4] = G[a >> 32][a & 0xFFFFFFFF]
        R[0] = (R[0] ^ R[4]) & 0xFFFFFFFF
        R[0] = (R[0] * FNV_PRIME) & 0xFFFFFFFF
        R[9] = (R[9] + 1) & M64
        return 9 if R[9] < 64 else 16

    def round_end(R: list[int]) -> int:  # noqa: N803
        R[8] = (R[8] + 1) & M64
        return 8 if R[8] < 256 else 18

    def round_start(R: list[int]) -> int:  # noqa: N803
        R[9] = 0
        return 9

    def leave(R: list[int]) -> int:  # noqa: N803
        raise StopIteration

    blocks: dict[int, tuple[Callable[[list[int]], int], int]] = {
        8: (round_start, 1), 9: (inner, 7), 16: (round_end, 2), 18: (leave, 1)}
    code = [blocks.get(pc, (leave, 0)) for pc in range(19)]
    regs = [2166136261, 0, 0, 0, 0, 0, r6, 0, 0, 0, 0]
    pc, n = 8, 8
    try:
        while n <= BUDGET:
            fn, size = code[pc]
            n += size
            pc = fn(regs)
    except StopIteration:
        return regs[0], n
    raise _over(pc)


# ---- measurement ----------------------------------------------------------------------------


def _per_insn(fn: Variant, r6: int, runs: int) -> Callable[[], float]:
    def sample() -> float:
        start = now_ns()
        for _ in range(runs):
            fn(r6)
        return (now_ns() - start) / (runs * PROGRAM_INSNS)
    return sample


def _tcemu_per_insn(source: str, tier: Tier, runs: int) -> Callable[[], float]:
    prog, vm = assemble(source), Vm()
    insns = vm.run(prog, tier=tier).insns

    def sample() -> float:
        start = now_ns()
        for _ in range(runs):
            vm.run(prog, tier=tier)
        return (now_ns() - start) / (runs * insns)
    return sample


# ---- statement costs in the translated tier's style ------------------------------------------
# (name, statement as jit.py emits it at fa22644 or an alternative, registers' values)
_SMALL = {"r0": 12345, "r1": 678, "r2": 3, "r3": BASE + 5, "r10": (3 << 32) + 512}
_WIDE = {**_SMALL, "r0": 0xDEADBEEFCAFEF00D, "r1": 0x0123456789ABCDEF}
STATEMENTS: list[tuple[str, str, dict[str, int]]] = [
    ("copy: r0 = r1", "r0 = r1", _SMALL),
    ("add64, values < 2**30", "r0 = (r0 + r1) & 0xFFFFFFFFFFFFFFFF", _SMALL),
    ("add64, values < 2**30, no mask", "r0 = r0 + r1", _SMALL),
    ("add64, 64-bit values", "r0 = (r0 + r1) & 0xFFFFFFFFFFFFFFFF", _WIDE),
    ("mul64, 64-bit values", "r0 = (r0 * r1) & 0xFFFFFFFFFFFFFFFF", _WIDE),
    ("xor32 as emitted at fa22644", "r0 = (r0 ^ r1) & 0xFFFFFFFF", _SMALL),
    ("xor32, no mask", "r0 = r0 ^ r1", _SMALL),
    ("div64 by a constant as emitted at fa22644", "r2 = (r0 // 291 if 291 else 0)", _WIDE),
    ("signed compare as emitted at fa22644", "if s32(r0) > 26:\n    pass", _SMALL),
    ("signed compare inline", "if ((r0 & 0xFFFFFFFF) ^ 0x80000000) > 0x8000001A:\n    pass",
     _SMALL),
    ("packet u8 load as emitted at fa22644", "r4 = G[r3 >> 32][r3 & 0xFFFFFFFF]", _SMALL),
    ("packet u8 load, region hoisted", "r4 = g[o + 5]", _SMALL),
    ("u16 load + be16 as emitted at fa22644",
     "r4 = U2(G[r3 >> 32], r3 & 0xFFFFFFFF)[0]\nr4 = bswap(r4, 2)", _SMALL),
    ("u16 load + be16 with inline shifts",
     "r4 = U2(G[r3 >> 32], r3 & 0xFFFFFFFF)[0]\nr4 = ((r4 & 0xFF) << 8) | (r4 >> 8)", _SMALL),
    ("u16 load + be16 fused: one '>H' unpack",
     "r4 = U2BE(G[r3 >> 32], r3 & 0xFFFFFFFF)[0]", _SMALL),
    ("stack store as emitted at fa22644",
     "a = (r10 + -8) & 0xFFFFFFFFFFFFFFFF\n"
     "P8(G[a >> 32], a & 0xFFFFFFFF, r0 & 0xffffffffffffffff)", _SMALL),
    ("stack store, frame hoisted", "P8(stk, 504, r0)", _SMALL),
]


def _statement_cases(number: int) -> list[tuple[str, Callable[[], float], str]]:
    """One case per statement: ns per execution, the cost of an empty loop subtracted."""
    import struct

    from tcemu.bpf import semantics

    regions: list[bytearray] = [bytearray(), bytearray(FNV_PACKET), bytearray(), bytearray(512)]
    cases: list[tuple[str, Callable[[], float], str]] = []
    for name, stmt, regs in STATEMENTS:
        env: dict[str, object] = dict(semantics.ENV)
        env.update(regs, G=regions, g=regions[1], o=0, stk=regions[3],
                   U2=struct.Struct("<H").unpack_from, U2BE=struct.Struct(">H").unpack_from,
                   P8=struct.Struct("<Q").pack_into)
        names = ", ".join(regs)
        body = "\n".join("        " + line for line in stmt.split("\n"))
        src = (f"def loop({names}):\n    for _ in range({number}):\n{body}\n"
               f"def empty({names}):\n    for _ in range({number}):\n        pass\n")
        exec(compile(src, f"<stmt {name}>", "exec"), env)
        loop, empty = env["loop"], env["empty"]
        assert callable(loop)
        assert callable(empty)
        values = list(regs.values())

        def sample(loop: Callable[..., None] = loop, empty: Callable[..., None] = empty,
                   values: list[int] = values) -> float:
            start = now_ns()
            loop(*values)
            mid = now_ns()
            empty(*values)
            return (2 * mid - start - now_ns()) / number
        cases.append((f"S {name}", sample, "ns/stmt"))
    return cases


# ---- a branchy, helper-calling classifier: flow_counter's generated entry -----------------
FLOW_COUNTER = ROOT / "tests" / "testdata" / "objects" / "flow_counter.bpf.o"


def _flow_counter_entry(packets: int, repeat: int) -> Callable[[], float]:
    """ns per call of ``flow_counter``'s generated entry (``sub_0``), on the replay
    workload's packets as the datapath hands them over (clsact ingress of one device):
    each call the datapath makes is preceded by ``repeat`` timed calls of the entry with
    the same registers, context and packet.  Helpers and context loads that call the
    model are included; the datapath around the program is not."""
    import importlib.util
    import itertools

    from tcemu.bpf.jit.runner import Translated
    from tcemu.pcap import read_packets
    from tcemu.replay import replay, single_program_net

    spec = importlib.util.spec_from_file_location("pcaps_workload",
                                                  ROOT / "pcaps" / "workload.py")
    assert spec is not None
    assert spec.loader is not None
    workload = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = workload
    spec.loader.exec_module(workload)
    records = list(itertools.islice(read_packets(workload.workload_path()), 200 + packets))
    net, _ = single_program_net(FLOW_COUNTER, "tc", tier="jit")
    replay(net, records[:200], "eth0")        # translated, map filled
    real_call = Translated.call
    spent = [0, 0]

    def timed_call(self: Translated, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        entry = self.entry
        start = now_ns()
        for _ in range(repeat):
            entry(r1, r2, r3, r4, r5, 0)
        spent[0] += now_ns() - start
        spent[1] += repeat
        return real_call(self, r1, r2, r3, r4, r5)

    def sample() -> float:
        spent[:] = [0, 0]
        Translated.call = timed_call  # type: ignore[method-assign]
        try:
            replay(net, records[200:], "eth0")
        finally:
            Translated.call = real_call  # type: ignore[method-assign]
        return spent[0] / spent[1]
    return sample


def _show(cases: list[tuple[str, Callable[[], float], str]], samples: int) -> None:
    stats = measure_interleaved({name: fn for name, fn, _ in cases}, samples)
    print("| variant | median | min | max | unit |\n|---|---:|---:|---:|---|")
    for name, _, unit in cases:
        st = stats[name]
        print(f"| {name} | {st.median:.2f} | {st.min:.2f} | {st.max:.2f} | {unit} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hand-written variants behind BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--flow", action="store_true",
                        help="only flow_counter's generated entry on real packets")
    args = parser.parse_args(argv)
    samples, runs = (3, 1) if args.quick else (7, 3)
    if args.flow:
        _show([("F flow_counter generated entry, per call (helpers included)",
                _flow_counter_entry(300, 10), "ns/call")], 3 if args.quick else 9)
        return 0
    expected = fnv1a_rounds(FNV_PACKET)
    cases: list[tuple[str, Callable[[], float], str]] = []

    tiers: tuple[Tier, ...] = ("interp", "jit")
    prog, vm = assemble(fnv_source("ours")), Vm()
    for tier in tiers:
        def tier_sample(tier: Tier = tier) -> float:
            start = now_ns()
            for _ in range(runs):
                vm.run(prog, memory=FNV_PACKET, tier=tier)
            return (now_ns() - start) / (runs * PROGRAM_INSNS)
        cases.append((f"tcemu {tier} tier (as in run.py)", tier_sample, "ns/insn"))

    variants: list[tuple[str, Variant, int]] = [
        ("J0 jit loop as emitted at 18e398a", j0_at_18e398a, BASE),
        ("J1 jit loop as emitted at fa22644", j1_at_fa22644, BASE),
        ("J2 J1 + no masks that ranges make redundant", j2_ranges, BASE),
        ("J3 J2 + region lookup hoisted", j3_hoisted_region, BASE),
        ("J4 J3 + dead registers not kept", j4_dead_address, BASE),
        ("J5 J4 + counted loop over the offsets", j5_counted_loop, BASE),
        ("J6 jit loop as emitted now (bytes iterated)", j6_as_emitted_now, BASE),
        ("J1' J1 with addresses < 2**30", j1_small_addresses, 1 << 20),
        ("I2 interp: one closure per basic block", i2_block_closures, BASE),
    ]
    for name, fn, r6 in variants:
        r0, insns = fn(r6)
        assert (r0, insns) == (expected, PROGRAM_INSNS), (name, r0, insns)
        cases.append((name, _per_insn(fn, r6, runs), "ns/insn"))
    cases.append(("Python floor (idiomatic loop)",
                  _per_insn(lambda _: (fnv1a_rounds(FNV_PACKET), 0), 0, runs), "ns/insn"))

    gotos = ("r1 = 2000\ntop:\n" + "goto pc+0\n" * 50
             + "r1 -= 1\nif r1 != 0 goto top\nr0 = 0\nexit\n")
    for tier in tiers:
        cases.append((f"I1 {tier}: 'goto pc+0' chain (dispatch alone)",
                      _tcemu_per_insn(gotos, tier, 1), "ns/insn"))

    sources = [(f"T compile() of the jit source for {size} insns", translate_source(
        Vm(), assemble(generated_source("ours", size=size)))) for size in (1000, 2000, 4000, 8000)]
    full = sources[2][1]
    sources += [
        ("T the 4000-insn source with 4-space indentation (it is emitted with 1)",
         re.sub(r"^( +)", lambda m: "    " * len(m.group(1)), full, flags=re.MULTILINE)),
        ("T the 4000-insn source without any mask (volume only: not valid code)",
         re.sub(r" & 0x[fF]{8}(?:[fF]{8})?\b", "", full)),
    ]
    for name, source in sources:
        def compile_sample(source: str = source) -> float:
            start = now_ns()
            compile(source, "<headroom>", "exec")
            return (now_ns() - start) / 1e6
        cases.append((f"{name} ({source.count(chr(10))} lines, {len(source) // 1024} KiB)",
                      compile_sample, "ms"))
    cases += _statement_cases(20_000 if args.quick else 100_000)
    _show(cases, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
