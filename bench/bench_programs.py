"""The programs the suite runs: the FNV-1a loop and a generated ~4,000-instruction program.

Both exist in two variants that differ only in a short straight-line *prologue* that puts
the packet's start in r6 and its end in r7:

* ``ours``: tcemu runs a program with r1 = the raw memory (the packet) and r2 = its length,
  so the prologue is ``r6 = r1; r7 = r1; r7 += r2`` (3 insns);
* ``kernel``: a SCHED_CLS program gets r1 = ``struct __sk_buff *``, and direct packet access
  reads ``data`` (offset 76) and ``data_end`` (offset 80): ``r6 = *(u32 *)(r1 +76);
  r7 = *(u32 *)(r1 +80)`` (2 insns).

Everything after the prologue is the same text, hence the same bytecode (jumps are
pc-relative); :func:`shared_suffix` checks that.  The body starts with the bounds check
``if r6 + 64 > r7 goto drop`` the verifier needs before any packet load, which our VM runs
too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["FNV_OFFSET", "FNV_PACKET", "FNV_PRIME", "FNV_ROUNDS", "PACKET_LEN", "PROLOGUES",
           "fnv1a_rounds", "fnv_source", "generated_source", "shared_suffix"]

PACKET_LEN = 64
FNV_ROUNDS = 256
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
# A deterministic 64-byte "packet": every byte value differs from its neighbours.
FNV_PACKET = bytes((i * 37 + 11) & 0xFF for i in range(PACKET_LEN))

PROLOGUES: dict[str, tuple[str, ...]] = {
    "ours": ("r6 = r1", "r7 = r1", "r7 += r2"),
    "kernel": ("r6 = *(u32 *)(r1 +76)", "r7 = *(u32 *)(r1 +80)"),
}


def _s32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def fnv_source(variant: str, rounds: int = FNV_ROUNDS) -> str:
    """FNV-1a 32-bit over the 64 packet bytes, ``rounds`` times (the hash carries over).

    Per byte the inner loop runs 7 insns (address, load, xor, multiply, count, test); the
    outer loop adds 3 per round.  Kernel-syntax text for :func:`tcemu.bpf.assemble`.
    """
    body = f"""
    r3 = r6
    r3 += {PACKET_LEN}
    if r3 > r7 goto drop
    w0 = {_s32(FNV_OFFSET)}
    r8 = 0
round:
    r9 = 0
byte:
    r3 = r6
    r3 += r9
    r4 = *(u8 *)(r3 +0)
    w0 ^= w4
    w0 *= {FNV_PRIME}
    r9 += 1
    if r9 < {PACKET_LEN} goto byte
    r8 += 1
    if r8 < {rounds} goto round
    exit
drop:
    r0 = 0
    exit
"""
    return "\n".join(PROLOGUES[variant]) + body


def fnv1a_rounds(data: bytes, rounds: int = FNV_ROUNDS) -> int:
    """The pure-Python floor: the same hash written the way a Python programmer would."""
    h = FNV_OFFSET
    for _ in range(rounds):
        for byte in data:
            h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def shared_suffix(ours: bytes, kernel: bytes) -> bool:
    """Whether the two encodings are identical after their prologues."""
    skip_ours, skip_kernel = 8 * len(PROLOGUES["ours"]), 8 * len(PROLOGUES["kernel"])
    return ours[skip_ours:] == kernel[skip_kernel:]


# ---- the generated program ------------------------------------------------------------------
# Register roles, chosen so the kernel verifier accepts the program: r6 = packet start and
# r7 = packet end (pointers: never ALU operands), r9 = the loop counter, r10 = the frame
# pointer; r0-r5 and r8 are scalars every chunk may use.

_SCALARS = (0, 1, 2, 3, 4, 5, 8)
_CALLEE_SCALARS = (0, 1, 2, 3, 4, 5)
_STACK_SLOTS = 8                      # u64 slots at r10-8 .. r10-64, initialised up front
_ALU_OPS = ("+=", "-=", "*=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "/=", "%=", "=")
_ALU_WEIGHTS = (8, 4, 3, 3, 3, 4, 2, 2, 1, 1, 1, 5)
_CONDS = ("==", "!=", ">", ">=", "<", "<=", "&", "s>", "s<", "s>=", "s<=")


@dataclass
class _Gen:
    rng: random.Random
    lines: list[str]
    slots: int = 0
    labels: int = 0

    def put(self, text: str, slots: int = 1) -> None:
        self.lines.append("    " + text)
        self.slots += slots

    def label(self, name: str) -> None:
        self.lines.append(f"{name}:")

    def fresh(self, kind: str) -> str:
        self.labels += 1
        return f"{kind}_{self.labels}"

    def alu(self, regs: tuple[int, ...]) -> None:
        rng = self.rng
        op = rng.choices(_ALU_OPS, _ALU_WEIGHTS)[0]
        wide = rng.random() < 0.6
        r = "r" if wide else "w"
        bits = 64 if wide else 32
        dst = rng.choice(regs)
        if rng.random() < 0.08 and wide:
            self.put(f"r{dst} = {rng.getrandbits(64):#x} ll", 2)        # LD_IMM64
        elif rng.random() < 0.05:
            self.put(f"r{dst} = -r{dst}" if wide else f"w{dst} = -w{dst}")
        elif op in ("<<=", ">>=", "s>>="):
            self.put(f"{r}{dst} {op} {rng.randrange(1, bits)}")
        elif rng.random() < 0.5:
            self.put(f"{r}{dst} {op} {r}{rng.choice(regs)}")
        elif op in ("/=", "%="):                      # the verifier rejects a constant 0
            self.put(f"{r}{dst} {op} {rng.randrange(2, 1000)}")
        else:
            self.put(f"{r}{dst} {op} {rng.randrange(-(1 << 15), 1 << 15)}")

    def packet_load(self) -> None:
        rng = self.rng
        size = rng.choice((1, 2, 4))
        dst = rng.choice(_SCALARS)
        self.put(f"r{dst} = *(u{8 * size} *)(r6 +{rng.randrange(0, PACKET_LEN - size + 1)})")
        if size > 1 and rng.random() < 0.5:
            self.put(f"r{dst} = be{8 * size} r{dst}")

    def stack_access(self) -> None:
        rng = self.rng
        off = -8 * rng.randrange(1, _STACK_SLOTS + 1)
        if rng.random() < 0.5:
            self.put(f"*(u64 *)(r10 {off}) = r{rng.choice(_SCALARS)}")
        else:
            self.put(f"r{rng.choice(_SCALARS)} = *(u64 *)(r10 {off})")

    def straight(self, count: int) -> None:
        """``count`` insns of the common mix: mostly ALU, some packet and stack traffic."""
        while count > 0:
            pick = self.rng.random()
            before = self.slots
            if pick < 0.15:
                self.packet_load()
            elif pick < 0.3:
                self.stack_access()
            else:
                self.alu(_SCALARS)
            count -= self.slots - before

    def condition(self) -> str:
        rng = self.rng
        wide = rng.random() < 0.7
        r = "r" if wide else "w"
        a = rng.choice(_SCALARS)
        rhs = f"{r}{rng.choice(_SCALARS)}" if rng.random() < 0.4 else str(rng.randrange(256))
        return f"if {r}{a} {rng.choice(_CONDS)} {rhs}"

    def chunk(self, subprogs: list[str]) -> None:
        rng = self.rng
        kind = rng.choices(("straight", "skip", "diamond", "loop", "call"), (4, 3, 2, 1, 1))[0]
        if kind == "straight":
            self.straight(rng.randrange(3, 16))
        elif kind == "skip":                             # if (cond) { ... } as a forward jump
            end = self.fresh("skip")
            self.put(f"{self.condition()} goto {end}")
            self.straight(rng.randrange(2, 10))
            self.label(end)
        elif kind == "diamond":                          # if (cond) { A } else { B }
            other, end = self.fresh("else"), self.fresh("join")
            self.put(f"{self.condition()} goto {other}")
            self.straight(rng.randrange(2, 8))
            self.put(f"goto {end}")
            self.label(other)
            self.straight(rng.randrange(2, 8))
            self.label(end)
        elif kind == "loop":                             # a small counted loop
            top = self.fresh("loop")
            self.put(f"r9 = {rng.randrange(2, 9)}")
            self.label(top)
            self.straight(rng.randrange(4, 12))
            self.put("r9 -= 1")
            self.put(f"if r9 != 0 goto {top}")
        else:                                            # a bpf-to-bpf call
            self.put(f"call {rng.choice(subprogs)}")
            # r1-r5 are undefined after a call (the verifier marks them unreadable).
            for reg in range(1, 6):
                self.put(f"r{reg} = r{rng.choice((0, 8))}")

    def subprog(self, name: str, size: int) -> None:
        self.label(name)
        self.put("r0 = r1")
        target = self.slots + size - 2
        while self.slots < target:
            self.alu(_CALLEE_SCALARS)
        self.put("exit")


def generated_source(variant: str, size: int = 4000, seed: int = 4000) -> str:
    """A program of exactly ``size`` slots for ``variant`` "ours" (the kernel's is 1 shorter).

    The mix a compiler emits for a packet parser: straight-line 64/32-bit ALU (some of them
    64-bit constants, LD_IMM64), packet loads with byte swaps, stack spills and fills,
    forward branches (if and if/else), small counted loops, and calls to four subprograms.
    Deterministic for a given seed.  The kernel verifier accepts the "kernel" variant.
    """
    rng = random.Random(seed)
    names = [f"sub_{i}" for i in range(4)]
    subs = _Gen(rng, [])
    for name in names:
        subs.subprog(name, rng.randrange(30, 60))
    main = _Gen(rng, [])
    for line in PROLOGUES["ours"]:
        main.put(line)
    main.put("r3 = r6")
    main.put(f"r3 += {PACKET_LEN}")
    main.put("if r3 > r7 goto drop")
    for reg in (*_SCALARS, 9):
        main.put(f"r{reg} = 0")
    for slot in range(1, _STACK_SLOTS + 1):
        main.put(f"*(u64 *)(r10 -{8 * slot}) = r0")
    tail = 1 + 2 + subs.slots                          # exit, the drop block, the subprograms
    while main.slots + tail < size - 40:
        main.chunk(names)
    while main.slots + tail < size:
        main.alu(_SCALARS)
        if main.slots + tail > size:                   # an LD_IMM64 overshot by one slot
            main.lines.pop()
            main.slots -= 2
    main.put("exit")
    main.label("drop")
    main.put("r0 = 0")
    main.put("exit")
    assert main.slots + subs.slots == size
    prologue = "\n".join(PROLOGUES[variant])
    body = main.lines[len(PROLOGUES["ours"]):]
    return prologue + "\n" + "\n".join(body + subs.lines) + "\n"
