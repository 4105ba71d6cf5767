"""The eBPF instruction set, differentially: the running kernel against both tcemu tiers.

Every test builds one program, runs it on the kernel (``BPF_PROG_TYPE_SCHED_CLS`` under
``BPF_PROG_TEST_RUN``) and on tcemu's ``interp`` and ``jit`` tiers, and requires the same
64-bit r0 everywhere.  The kernel reports only the low 32 bits of r0, so each program is
built twice, once ending with ``r0 >>= 32`` (see :mod:`oracle`, "why two builds").

1. **bpf_conformance vectors** (``tests/corpus/bpf_conformance/tests``).  A vector expects
   r1 = its memory and r2 = the memory's length; in a SCHED_CLS program r1 is the
   ``struct __sk_buff``.  The vector's body is run unchanged behind a prologue
   (:func:`conformance_builds`) that

   * puts the memory in the packet: ``r2 = skb->data``, ``r3 = skb->data_end`` and the
     bounds check ``if r2 + len <= r3`` the verifier needs for direct packet access; then
     ``r1 = r2`` and ``r2 = len``.  The packet (not the stack) holds the memory because the
     verifier insists on aligned stack accesses (``misaligned stack access``) but allows
     unaligned packet accesses, and several vectors load/store at odd offsets;
   * zeroes r0 and r3-r9, the state tcemu's raw run starts from (the verifier would refuse
     to read an unset register; no vector relies on it, but the state is then the same);
   * jumps over a two-slot epilogue ``[r0 >>= 32;] exit``: each ``exit`` of the vector's
     main function is replaced by a ``goto`` (a backward jump) to that epilogue.  Only
     instructions are prepended and no instruction changes size, so every relative jump and
     call offset of the body stays valid, and exits of bpf-to-bpf callees are untouched.

   tcemu runs the same bytes except the first two instructions, which become ``r2 = r1``
   (the raw memory tcemu passes in r1) and ``r3 = -1`` (so the bounds check passes):
   tcemu has no ``struct __sk_buff`` in a raw run.  On top, the unwrapped vector must give
   its expected result on both tiers.  Vectors the verifier refuses are listed in
   :data:`REJECTED` with the verifier's reason; a test asserts that the kernel still
   refuses each of them with exactly that reason, so the table cannot rot.

2. **Random straight-line and forward-branching programs** (hypothesis,
   :func:`alu_programs`): every ALU/ALU64 operation, JMP/JMP32 conditional forward jumps,
   ``goto``/``gotol``, stack stores and loads of every size (incl. sign-extending loads),
   stack atomics and LD_IMM64.  All of r0-r9 and the 64 bytes of stack the program uses
   are initialised first, r10 is never written, every jump goes forward, shifts by an
   immediate stay below the operand width and no division is by an immediate zero: the
   verifier accepts every program.  A fold section mixes r1..r9 and the eight stack slots
   into r0 (``r0 = r0 * odd ^ x`` for each, a bijection in each input), so the 64-bit r0
   compared through the two builds depends on every register and stack bit.

3. **Legacy packet loads** (:func:`packet_programs`): LD_ABS/LD_IND of 1, 2 and 4 bytes at
   in-range, boundary, out-of-range, ``SKF_NET_OFF + k`` and ``SKF_LL_OFF + k`` offsets,
   with index registers whose high 32 bits are garbage (the kernel truncates ``src + imm``
   to an s32).  A failing load ends the program with r0 = 0.  The results are folded into
   r9 like above.  The kernel gets the packet as ``data_in``; tcemu as raw memory, which
   its LD_ABS view treats like the skb test_run builds (data at the MAC header, network
   header at 14).  ``r6 = r1`` is the verifier's requirement (ctx in r6); tcemu does not
   read r6.  With that layout no offset can reach the 64 bytes of headroom in front of
   the data: ``SKF_LL_OFF + k`` and ``SKF_NET_OFF + k`` address data bytes for k >= 0, and
   a k < 0 lands in the range of the other base (or below ``SKF_LL_OFF``), far outside the
   packet, so such loads fail -- on the kernel and in tcemu alike.

No program depends on r1 being the ctx except through ``r6 = r1`` and the two conformance
prologue instructions named above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcemu.bpf import assemble
from tcemu.conformance import CONFORMANCE_HELPERS
from tests.dataformat import Vector, parse

from . import oracle
from .oracle import (
    ABS,
    ADD,
    ALU,
    ALU64,
    AND,
    ARSH,
    ATOMIC,
    CALL,
    CMPXCHG,
    DIV,
    DW,
    END,
    EXIT,
    FETCH,
    IMM,
    IND,
    JA,
    JEQ,
    JGE,
    JGT,
    JLE,
    JLT,
    JMP,
    JMP32,
    JNE,
    JSET,
    JSGE,
    JSGT,
    JSLE,
    JSLT,
    LD,
    LDX,
    LSH,
    M64,
    MEM,
    MEMSX,
    MOD,
    MOV,
    MUL,
    NEG,
    OR,
    PSEUDO_CALL,
    PSEUDO_FUNC,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    RSH,
    SIZE_CODE,
    ST,
    STX,
    SUB,
    TO_BE,
    TO_LE,
    XCHG,
    XOR,
    Builds,
    W,
    insn,
    ld_imm64,
)

K, X = oracle.K, oracle.X
HIGH_BUILD = oracle.HIGH_HALF + oracle.EXIT_INSN
LOW_BUILD = oracle.EXIT_INSN

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# 1. bpf_conformance vectors

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "bpf_conformance" / "tests"
VECTORS: dict[str, Path] = {path.stem: path for path in sorted(CORPUS.glob("*.data"))}

_SHIFT = ("the verifier refuses a shift by an immediate >= the operand width (check_alu_op); "
          "the -reg twin of the vector runs the masked count on the kernel")
REJECTED: dict[str, tuple[str, str]] = {
    # vector: (the verifier's error line for the wrapped vector, why it does not matter)
    "arsh32-imm-high": ("invalid shift 48", _SHIFT),
    "arsh32-imm-neg": ("invalid shift -16", _SHIFT),
    "arsh64-imm-high": ("invalid shift 124", _SHIFT),
    "arsh64-imm-neg": ("invalid shift -4", _SHIFT),
    "lsh32-imm-high": ("invalid shift 60", _SHIFT),
    "lsh32-imm-neg": ("invalid shift -4", _SHIFT),
    "lsh64-imm-high": ("invalid shift 68", _SHIFT),
    "lsh64-imm-neg": ("invalid shift -60", _SHIFT),
    "rsh32-imm-high": ("invalid shift 40", _SHIFT),
    "rsh32-imm-neg": ("invalid shift -24", _SHIFT),
    "rsh64-imm-high": ("invalid shift 68", _SHIFT),
    "rsh64-imm-neg": ("invalid shift -60", _SHIFT),
    "callx": ("unknown opcode 8d",
              "callx (BPF_JMP | BPF_CALL | BPF_X) is a uBPF/bpf_conformance extension"),
}
RUNNABLE = [name for name in VECTORS if name not in REJECTED]
"""Vectors compared on the kernel (300 of the 313 vendored ones at the time of writing).

``call_unwind_fail`` is among them: it calls helper 5, which is the conformance suite's
``unwind`` in tcemu's plugin and ``bpf_ktime_get_ns`` in the kernel; the vector discards
the helper's result (unwind does not stop on r1 = -1), so the ISA around it is comparable.
"""

SKB_DATA, SKB_DATA_END = 76, 80  # offsets in struct __sk_buff
SENTINEL = 0x7FFF0BAD  # r0 if the packet is shorter than the memory (never: we pass it in)


def _body(vector: Vector) -> bytes:
    raw = vector.raw()
    return raw if raw is not None else assemble(vector.sections["asm"]).to_bytes()


def main_exits(body: bytes) -> list[int]:
    """Slots of the ``exit`` instructions of the entry function (before the first callee)."""
    slots = [oracle.SLOT.unpack_from(body, pos) for pos in range(0, len(body), 8)]
    starts: set[int] = set()
    idx = 0
    exits: list[int] = []
    while idx < len(slots):
        code, regs, _off, imm = slots[idx]
        src = regs >> 4
        if code == JMP | EXIT:
            exits.append(idx)
        elif code == JMP | CALL and src == PSEUDO_CALL:
            starts.add(idx + imm + 1)
        elif code == LD | IMM | DW:
            if src == PSEUDO_FUNC:
                starts.add(idx + imm + 1)
            idx += 1
        idx += 1
    end = min(starts, default=len(slots))
    return [slot for slot in exits if slot < end]


def _wrap(body: bytes, length: int, *, high: bool, for_kernel: bool) -> bytes:
    if for_kernel:
        head = insn(LDX | MEM | W, R2, R1, SKB_DATA)
        head += insn(LDX | MEM | W, R3, R1, SKB_DATA_END)
    else:
        head = insn(ALU64 | MOV | X, R2, R1) + insn(ALU64 | MOV | K, R3, 0, 0, -1)
    pre = head + insn(ALU64 | MOV | X, R4, R2) + insn(ALU64 | ADD | K, R4, 0, 0, length)
    pre += insn(JMP | JLE | X, R4, R3, 2) + insn(ALU64 | MOV | K, R0, 0, 0, SENTINEL)
    pre += oracle.EXIT_INSN
    pre += insn(ALU64 | MOV | X, R1, R2) + insn(ALU64 | MOV | K, R2, 0, 0, length)
    for reg in (R0, R3, R4, R5, R6, R7, R8, R9):
        pre += insn(ALU64 | MOV | K, reg)
    epilogue = HIGH_BUILD if high else LOW_BUILD
    pre += insn(JMP | JA, off=len(epilogue) // 8)
    epilogue_at = len(pre) // 8
    pre += epilogue
    base = len(pre) // 8
    out = bytearray(body)
    for slot in main_exits(body):
        out[8 * slot:8 * slot + 8] = insn(JMP | JA, off=epilogue_at - (base + slot) - 1)
    return pre + bytes(out)


def conformance_builds(vector: Vector, *, for_kernel: bool) -> Builds:
    """The kernel's (or tcemu's) two builds of a wrapped vector (see the module docstring)."""
    body, length = _body(vector), len(vector.memory())
    return Builds(_wrap(body, length, high=False, for_kernel=for_kernel),
                  _wrap(body, length, high=True, for_kernel=for_kernel))


def conformance_packet(memory: bytes) -> bytes:
    """The vector's memory, zero-padded to the 14 bytes test_run needs at least."""
    return memory + bytes(max(0, 14 - len(memory)))


def _expected(vector: Vector) -> int:
    result = vector.result()
    assert result is not None, f"{vector.name}: no -- result section"
    return result & M64


def _raw_results(vector: Vector) -> dict[str, oracle.Value]:
    return {tier: oracle.tcemu_r0(_body(vector), vector.memory(), tier, CONFORMANCE_HELPERS)
            for tier in oracle.TIERS}


def test_conformance_tables_match_the_corpus() -> None:
    assert len(VECTORS) > 300, f"only {len(VECTORS)} vectors found in {CORPUS}"
    assert set(REJECTED) <= set(VECTORS), set(REJECTED) - set(VECTORS)
    for name, path in VECTORS.items():
        assert _body(parse(path)), name


@pytest.mark.kernel
@pytest.mark.parametrize("name", RUNNABLE)
def test_conformance_vector_kernel_equals_tiers(name: str) -> None:
    vector = parse(VECTORS[name])
    expected = _expected(vector)
    memory = vector.memory()
    kernel_builds = conformance_builds(vector, for_kernel=True)
    outcome = oracle.compare(kernel_builds, conformance_builds(vector, for_kernel=False),
                             packet=conformance_packet(memory), memory=memory,
                             helpers=CONFORMANCE_HELPERS)
    unwrapped = [f"{tier} (unwrapped vector) r0 {value!r} != expected {expected:#x}"
                 for tier, value in _raw_results(vector).items() if value != expected]
    problems = outcome.problems(expected) + unwrapped
    assert not problems, outcome.report(kernel_builds.low, expected, note="\n".join(unwrapped))


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(REJECTED))
def test_conformance_vector_rejected_by_the_kernel(name: str) -> None:
    vector = parse(VECTORS[name])
    reason, _why = REJECTED[name]
    err = oracle.kernel_rejection(conformance_builds(vector, for_kernel=True).low)
    assert err is not None, f"the kernel now accepts {name}: move it out of REJECTED"
    assert oracle.verifier_reason(err.log) == reason, err.log
    expected = _expected(vector)
    assert _raw_results(vector) == dict.fromkeys(oracle.TIERS, expected)


# ---------------------------------------------------------------------------------------------
# Shared generators

MIX = 0x5BD1E995  # odd: multiplying by it is a bijection modulo 2**64

INTERESTING64 = (
    0, 1, 2, 3, 7, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
    0xFFFF_FFFF, 0x1_0000_0000, 0x1_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
    M64, M64 - 1, 0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_7FFF_FFFF, 0x8000_0000_FFFF_FFFF,
    0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210,
)
INTERESTING32 = (0, 1, -1, 2, -2, 3, 7, 31, 32, 63, 64, 0x7F, -0x80, 0xFF, 0x7FFF, -0x8000,
                 0xFFFF, 0x7FFF_FFFF, -0x8000_0000, 0x5555_5555, -0x5555_5556)

values64 = st.one_of(st.sampled_from(INTERESTING64), st.integers(0, M64),
                     st.integers(-300, 300).map(lambda v: v & M64))
imm32 = st.one_of(st.sampled_from(INTERESTING32), st.integers(-(1 << 31), (1 << 31) - 1))
nonzero_imm32 = imm32.filter(lambda v: v != 0)
gp_regs = st.integers(R0, R9)


@dataclass(frozen=True)
class Jump:
    """A forward jump over ``skip`` of the following items; laid out by :func:`layout`.

    An ``exact`` skip is used as is; any other is reduced modulo the number of items left,
    so a generator can draw it before it knows how many items follow.
    """

    code: int
    dst: int = 0
    src: int = 0
    imm: int = 0
    skip: int = 0
    exact: bool = False


Item = bytes | Jump


def layout(items: Sequence[Item]) -> bytes:
    """Encode ``items``; a jump's target is the start of the item ``skip`` items later
    (or the end of the sequence)."""
    starts = [0]
    for item in items:
        starts.append(starts[-1] + (1 if isinstance(item, Jump) else len(item) // 8))
    out = b""
    for idx, item in enumerate(items):
        if not isinstance(item, Jump):
            out += item
            continue
        skip = item.skip if item.exact else item.skip % (len(items) - idx)
        rel = starts[idx + 1 + skip] - starts[idx] - 1
        if item.code == JMP32 | JA:
            out += insn(item.code, imm=rel)
        else:
            out += insn(item.code, item.dst, item.src, rel, item.imm)
    return out


def _mix(acc: int, value_reg: int) -> bytes:
    """``acc = acc * MIX ^ value_reg``."""
    return insn(ALU64 | MUL | K, acc, 0, 0, MIX) + insn(ALU64 | XOR | X, acc, value_reg)


def _two_builds(prefix: bytes, body: bytes, fold: bytes) -> Builds:
    code = prefix + body + fold
    return Builds(code + LOW_BUILD, code + HIGH_BUILD)


# ---------------------------------------------------------------------------------------------
# 2. random ALU / JMP / stack / atomic programs

STACK_AREA = 64  # bytes below r10 the program uses: fp-64 .. fp-1, initialised first
DUMMY_PACKET = bytes(12) + b"\x88\xb5" + bytes(50)  # EtherType 0x88b5 (local experimental)

# (opcode, offset field): the two signed ops are DIV/MOD with off 1 (cpu v4).
ALU_OPS = ((ADD, 0), (SUB, 0), (MUL, 0), (DIV, 0), (DIV, 1), (OR, 0), (AND, 0), (LSH, 0),
           (RSH, 0), (NEG, 0), (MOD, 0), (MOD, 1), (XOR, 0), (MOV, 0), (ARSH, 0), (MOV, -1))
COND_OPS = (JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE)
ATOMIC_OPS = (ADD, OR, AND, XOR, ADD | FETCH, OR | FETCH, AND | FETCH, XOR | FETCH, XCHG,
              CMPXCHG)


@st.composite
def alu_insn(draw: st.DrawFn) -> bytes:
    """One ALU or ALU64 operation (MOV with off -1 stands for movsx)."""
    cls = draw(st.sampled_from((ALU, ALU64)))
    width = 64 if cls == ALU64 else 32
    op, off = draw(st.sampled_from(ALU_OPS))
    dst = draw(gp_regs)
    if op == NEG:
        return insn(cls | NEG, dst)
    if off == -1:
        return insn(cls | MOV | X, dst, draw(gp_regs),
                    draw(st.sampled_from((8, 16, 32) if width == 64 else (8, 16))))
    if draw(st.booleans()):
        src = draw(gp_regs)
        prefix = b""
        if op in (DIV, MOD) and draw(st.integers(0, 3)) == 0:
            # a divisor of 0 or -1 (in the operand width), set just before the division
            prefix = insn(cls | MOV | K, src, 0, 0, draw(st.sampled_from((0, -1, 1))))
        return prefix + insn(cls | op | X, dst, src, off)
    if op in (LSH, RSH, ARSH):
        imm = draw(st.integers(0, width - 1))
    elif op in (DIV, MOD):
        imm = draw(nonzero_imm32)
    else:
        imm = draw(imm32)
    return insn(cls | op | K, dst, 0, off, imm)


@st.composite
def endian_insn(draw: st.DrawFn) -> bytes:
    """le16/32/64, be16/32/64 (ALU) or bswap16/32/64 (ALU64)."""
    code = draw(st.sampled_from((ALU | END | TO_LE, ALU | END | TO_BE, ALU64 | END | TO_LE)))
    return insn(code, draw(gp_regs), 0, 0, draw(st.sampled_from((16, 32, 64))))


def _stack_off(draw: st.DrawFn, size: int) -> int:
    return -STACK_AREA + size * draw(st.integers(0, STACK_AREA // size - 1))


@st.composite
def store_insn(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from((1, 2, 4, 8)))
    off = _stack_off(draw, size)
    if draw(st.booleans()):
        return insn(STX | MEM | SIZE_CODE[size], R10, draw(gp_regs), off)
    return insn(ST | MEM | SIZE_CODE[size], R10, 0, off, draw(imm32))


@st.composite
def load_insn(draw: st.DrawFn) -> bytes:
    signed = draw(st.booleans())
    size = draw(st.sampled_from((1, 2, 4) if signed else (1, 2, 4, 8)))
    mode = MEMSX if signed else MEM
    return insn(LDX | mode | SIZE_CODE[size], draw(gp_regs), R10, _stack_off(draw, size))


@st.composite
def atomic_insn(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from((4, 8)))
    return insn(STX | ATOMIC | SIZE_CODE[size], R10, draw(gp_regs), _stack_off(draw, size),
                draw(st.sampled_from(ATOMIC_OPS)))


@st.composite
def cond_jump(draw: st.DrawFn, skip: int, exact: bool = False) -> Jump:
    cls = draw(st.sampled_from((JMP, JMP32)))
    op = draw(st.sampled_from(COND_OPS))
    if draw(st.booleans()):
        return Jump(cls | op | X, draw(gp_regs), draw(gp_regs), 0, skip, exact)
    return Jump(cls | op | K, draw(gp_regs), 0, draw(imm32), skip, exact)


SIMPLE = (("alu", 4), ("endian", 1), ("store", 1), ("load", 1), ("atomic", 2), ("lddw", 1))


@st.composite
def simple_insn(draw: st.DrawFn) -> bytes:
    """One instruction that is not a jump (LD_IMM64: two slots)."""
    kind = draw(st.sampled_from([name for name, weight in SIMPLE for _ in range(weight)]))
    strategy = {"alu": alu_insn(), "endian": endian_insn(), "store": store_insn(),
                "load": load_insn(), "atomic": atomic_insn(),
                "lddw": st.builds(ld_imm64, gp_regs, values64)}[kind]
    return draw(strategy)


@st.composite
def body_items(draw: st.DrawFn) -> list[Item]:
    """Simple instructions, conditional jumps to any later item, and if/else diamonds.

    The verifier refuses unreachable instructions, so an unconditional ``goto`` (``ja`` or
    ``gotol``) only appears as the end of the then-branch of a diamond
    ``if c goto else; then...; goto end; else...; end:``, whose else-branch the
    conditional jump reaches.
    """
    items: list[Item] = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(("simple",) * 6 + ("jump",) * 2 + ("diamond",)))
        if kind == "simple":
            items.append(draw(simple_insn()))
        elif kind == "jump":
            items.append(draw(cond_jump(draw(st.integers(0, 63)))))
        else:
            then = draw(st.lists(simple_insn(), max_size=4))
            other = draw(st.lists(simple_insn(), max_size=4))
            goto = draw(st.sampled_from((JMP | JA, JMP32 | JA)))
            items += [draw(cond_jump(len(then) + 1, exact=True)), *then,
                      Jump(goto, skip=len(other), exact=True), *other]
    return items


@dataclass(frozen=True)
class Generated:
    """A generated program: its two builds and what tcemu gets as memory."""

    builds: Builds
    packet: bytes
    memory: bytes


@st.composite
def alu_programs(draw: st.DrawFn) -> Generated:
    """Init r0-r9 and the stack area, a random body, then fold everything into r0."""
    prefix = b"".join(ld_imm64(reg, draw(values64)) for reg in range(R0, R10))
    for slot in range(STACK_AREA // 8):  # fp-8 .. fp-64 from r1 .. r8
        prefix += insn(STX | MEM | DW, R10, R1 + slot, -8 * (slot + 1))
    items = draw(body_items())
    fold = b"".join(_mix(R0, reg) for reg in range(R1, R10))
    for slot in range(STACK_AREA // 8):
        fold += insn(LDX | MEM | DW, R1, R10, -8 * (slot + 1)) + _mix(R0, R1)
    return Generated(_two_builds(prefix, layout(items), fold), DUMMY_PACKET, b"")


@pytest.mark.kernel
@settings(SETTINGS, max_examples=1000)
@given(alu_programs())
def test_random_alu_jmp_stack_atomic_programs(program: Generated) -> None:
    outcome = oracle.compare(program.builds, packet=program.packet, memory=program.memory)
    assert not outcome.problems(), outcome.report(program.builds.low)


# ---------------------------------------------------------------------------------------------
# 3. LD_ABS / LD_IND

SKF_NET_OFF, SKF_LL_OFF = -0x100000, -0x200000
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    """14..128 random bytes; an IPv4/IPv6 EtherType only with the header test_run wants."""
    data = bytearray(draw(st.binary(min_size=14, max_size=128)))
    ethertype = int.from_bytes(data[12:14], "big")
    if (ethertype == 0x0800 and len(data) < 34) or (ethertype == 0x86DD and len(data) < 54):
        data[12:14] = b"\x88\xb5"
    return bytes(data)


def offsets(length: int, size: int) -> st.SearchStrategy[int]:
    """Effective offsets (s32) of a ``size``-byte legacy load from a ``length``-byte packet.

    Seven in eight are loads that succeed (from the start of the data, the network header
    ``SKF_NET_OFF + k`` or the MAC header ``SKF_LL_OFF + k``), so that most programs get
    past several loads; the rest probe the boundaries and far-out offsets.
    """
    valid = [st.integers(0, length - size), st.integers(0, length - size).map(
        lambda k: SKF_LL_OFF + k)]
    if length - 14 >= size:
        valid.append(st.integers(0, length - 14 - size).map(lambda k: SKF_NET_OFF + k))
    edgy = st.one_of(
        st.integers(length - size - 2, length + 2),       # across the end of the data
        st.integers(SKF_NET_OFF - 4, SKF_NET_OFF + 2),
        st.integers(length - 14 - size - 2, length - 14 + 2).map(lambda k: SKF_NET_OFF + k),
        st.integers(SKF_LL_OFF - 4, SKF_LL_OFF + 2),
        st.integers(length - size - 2, length + 2).map(lambda k: SKF_LL_OFF + k),
        st.integers(-70, -1),                             # negative, not an SKF base
        st.sampled_from((S32_MIN, S32_MAX, SKF_LL_OFF - 1, SKF_NET_OFF - 1, 1 << 16)),
        st.integers(S32_MIN, S32_MAX),
    )
    return st.sampled_from((True,) * 7 + (False,)).flatmap(
        lambda ok: st.one_of(valid) if ok else edgy)


@st.composite
def packet_programs(draw: st.DrawFn) -> Generated:
    """``r6 = r1``, loads folded into r9, ``r0 = r9``; r7/r8 are the index registers."""
    packet = draw(packets())
    prefix = insn(ALU64 | MOV | X, R6, R1)
    prefix += b"".join(ld_imm64(reg, draw(values64)) for reg in (R0, R7, R8, R9))
    body = b""
    for _ in range(draw(st.integers(1, 8))):
        size = draw(st.sampled_from((1, 2, 4)))
        target = draw(offsets(len(packet), size))
        if draw(st.booleans()):
            body += insn(LD | ABS | SIZE_CODE[size], 0, 0, 0, target)
        else:
            src = draw(st.sampled_from((R7, R8, R0)))
            imm = draw(st.one_of(st.sampled_from((0, 1, -1, 14)), st.integers(S32_MIN, S32_MAX)))
            if src != R0 or draw(st.booleans()):
                # src + imm truncated to an s32 is ``target``, whatever the high bits
                high = draw(st.sampled_from((0, M64 >> 32, 1, 0x8000_0000))) << 32
                body += ld_imm64(src, (target - imm + high) & M64)
            body += insn(LD | IND | SIZE_CODE[size], 0, src, 0, imm)
        body += _mix(R9, R0)
    fold = insn(ALU64 | MOV | X, R0, R9)
    return Generated(_two_builds(prefix, body, fold), packet, packet)


@pytest.mark.kernel
@settings(SETTINGS, max_examples=600)
@given(packet_programs())
def test_random_ld_abs_ld_ind_programs(program: Generated) -> None:
    outcome = oracle.compare(program.builds, packet=program.packet, memory=program.memory)
    note = f"packet ({len(program.packet)} bytes): {program.packet.hex()}"
    assert not outcome.problems(), outcome.report(program.builds.low, note=note)
