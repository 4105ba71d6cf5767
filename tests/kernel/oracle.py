"""Machinery of the kernel-differential ISA tests (``test_isa_differential.py``).

Three pieces, kept apart from tcemu's own encoder and decoder so that the generated test
programs do not depend on the code under test to be built:

* a raw ``struct bpf_insn`` encoder (:func:`insn`, :func:`ld_imm64`) with the uapi opcode
  constants of ``include/uapi/linux/bpf.h`` / ``bpf_common.h``;
* the kernel side: load as ``BPF_PROG_TYPE_SCHED_CLS`` and run once with
  ``BPF_PROG_TEST_RUN`` (:func:`kernel_retval`), or collect the verifier's reason for a
  rejection (:func:`kernel_rejection`);
* :func:`compare`, which runs the two *builds* of one test program on the kernel and on
  both tcemu tiers and says whether all agree.

Why two builds.  ``BPF_PROG_TEST_RUN`` reports only the low 32 bits of r0 (``attr.test.retval``
is a u32).  Every test program is therefore built twice from the same instructions: the
*low* build ends as written, the *high* build executes ``r0 >>= 32`` immediately before its
final ``exit`` (:data:`HIGH_HALF`).  Both builds compute the same r0 up to that point (the
programs are deterministic and the shift is the only difference), so the kernel's 64-bit
r0 is ``retval(low) | retval(high) << 32``.  tcemu returns all 64 bits of r0, so its low
build must equal the reassembled kernel value and its high build must equal that value
shifted right by 32.  An early exit the builds do not control (a failing LD_ABS/LD_IND
returns 0 from the whole program) gives 0 in both builds, which is again consistent.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from tcemu.bpf import Program
from tcemu.bpf.disasm import format_program
from tcemu.bpf.isa import decode_bytes
from tcemu.bpf.vm import HelperFn, Tier, Vm
from tcemu.errors import KernelError, TcemuError
from tcemu.kernel import ProgFd, prog_load, test_run

__all__ = [  # plus the uapi opcode and register constants below
    "EXIT_INSN",
    "HIGH_HALF",
    "SLOT",
    "TIERS",
    "Builds",
    "Outcome",
    "Value",
    "compare",
    "disassemble",
    "insn",
    "kernel_rejection",
    "kernel_retval",
    "ld_imm64",
    "tcemu_r0",
    "verifier_reason",
]

# --- uapi opcode pieces (include/uapi/linux/bpf_common.h, bpf.h) ----------------------------

LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE_CODE = {1: B, 2: H, 4: W, 8: DW}
IMM, ABS, IND, MEM, MEMSX, ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0
K, X = 0x00, 0x08
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
NEG, MOD, XOR, MOV, ARSH, END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
TO_LE, TO_BE = 0x00, 0x08
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
CALL, EXIT, JLT, JLE, JSLT, JSLE = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
FETCH, XCHG, CMPXCHG = 0x01, 0xE0 | 0x01, 0xF0 | 0x01
PSEUDO_CALL, PSEUDO_FUNC = 1, 4

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
M32 = 0xFFFF_FFFF
M64 = 0xFFFF_FFFF_FFFF_FFFF

SLOT = struct.Struct("<BBhi")


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte ``struct bpf_insn`` (little-endian); ``imm`` may be given unsigned."""
    if imm > 0x7FFF_FFFF:
        imm -= 1 << 32
    return SLOT.pack(code, (src << 4) | dst, off, imm)


def ld_imm64(dst: int, value: int, src: int = 0) -> bytes:
    """The two slots of ``dst = value ll`` (BPF_LD | BPF_IMM | BPF_DW)."""
    value &= M64
    return insn(LD | IMM | DW, dst, src, 0, value & M32) + insn(0, 0, 0, 0, value >> 32)


EXIT_INSN = insn(JMP | EXIT)
HIGH_HALF = insn(ALU64 | RSH | K, R0, 0, 0, 32)
"""``r0 >>= 32``: what the high build executes before its final exit."""

TIERS: tuple[Tier, ...] = ("interp", "jit")


def disassemble(code: bytes) -> str:
    """The program in the kernel's syntax (tcemu's printer), for failure messages."""
    try:
        return "\n".join(format_program(decode_bytes(code)))
    except TcemuError as err:  # a printer bug must not hide the real failure
        return f"<cannot print: {err}> {code.hex()}"


# --- the kernel side -------------------------------------------------------------------------

_STATS = ("processed ", "verification time", "stack depth", "func#", "mark_precise")


def verifier_reason(log: str) -> str:
    """The verifier's error line: the last log line that is not a statistics line."""
    for line in reversed(log.splitlines()):
        text = line.strip()
        if text and not text.startswith(_STATS):
            return text
    return ""


def _load(code: bytes) -> ProgFd:
    """Load as SCHED_CLS; without a log first (fast), with one only to explain a rejection."""
    try:
        return prog_load(code, log_level=0)
    except KernelError:
        pass
    return prog_load(code, log_level=1, log_size=1 << 20)


def kernel_retval(code: bytes, packet: bytes) -> int:
    """Load ``code`` as SCHED_CLS and test-run it once on ``packet``; the u32 retval.

    A verifier rejection raises KernelError whose message ends with the verifier's reason.
    """
    with _load(code) as prog:
        return test_run(prog.fd, packet).retval


def kernel_rejection(code: bytes) -> KernelError | None:
    """The KernelError (with the verifier log) if the kernel refuses ``code``, else None."""
    try:
        prog = prog_load(code, log_level=1, log_size=1 << 20)
    except KernelError as err:
        return err
    prog.close()
    return None


# --- tcemu and the comparison ----------------------------------------------------------------

Value = int | str
"""A 64-bit r0, or the text of the error that prevented one."""


@dataclass(frozen=True)
class Builds:
    """The low and high builds of one test program (see the module docstring)."""

    low: bytes
    high: bytes


def tcemu_r0(code: bytes, memory: bytes, tier: Tier,
             helpers: Mapping[int, HelperFn] | None = None) -> Value:
    """r0 of one run of ``code`` on ``tier`` with r1 = ``memory`` (also the packet)."""
    try:
        return Vm(helpers=helpers).run(Program.from_bytes(code), memory=memory, tier=tier).r0
    except TcemuError as err:
        return f"{type(err).__name__}: {err}"


def _show(value: Value) -> str:
    return f"{value:#x}" if isinstance(value, int) else value


@dataclass
class Outcome:
    """What the kernel and the two tiers computed for the two builds of one program."""

    kernel: Value
    tiers: dict[str, tuple[Value, Value]] = field(default_factory=dict)

    def problems(self, expected: int | None = None) -> list[str]:
        """Every disagreement, as text; empty when kernel == interp == jit (== expected)."""
        out: list[str] = []
        if isinstance(self.kernel, str):
            return [f"kernel: {self.kernel}"]
        if expected is not None and self.kernel != expected:
            out.append(f"kernel r0 {self.kernel:#x} != expected {expected:#x}")
        for tier, (low, high) in self.tiers.items():
            if low != self.kernel:
                out.append(f"{tier} r0 {_show(low)} != kernel {self.kernel:#x}")
            if high != self.kernel >> 32:
                out.append(f"{tier} r0 >> 32 {_show(high)} != kernel {self.kernel >> 32:#x}")
        return out

    def report(self, code: bytes, expected: int | None = None, note: str = "") -> str:
        """A failure message: the problems, every result and the program text."""
        lines = [*self.problems(expected), f"kernel: {_show(self.kernel)}"]
        lines += [f"{tier}: low {_show(low)}, high {_show(high)}"
                  for tier, (low, high) in self.tiers.items()]
        if note:
            lines.append(note)
        lines += ["program (low build):", disassemble(code)]
        return "\n".join(lines)


def compare(kernel: Builds, tcemu: Builds | None = None, *, packet: bytes, memory: bytes,
            helpers: Mapping[int, HelperFn] | None = None) -> Outcome:
    """Run ``kernel`` on the kernel (data_in ``packet``) and ``tcemu`` (default: the same
    bytes) on both tiers (memory ``memory``)."""
    try:
        value: Value = (kernel_retval(kernel.low, packet)
                        | kernel_retval(kernel.high, packet) << 32)
    except KernelError as err:
        value = f"{err} (errno {err.errno})"
    ours = tcemu or kernel
    outcome = Outcome(value)
    for tier in TIERS:
        outcome.tiers[tier] = (tcemu_r0(ours.low, memory, tier, helpers),
                               tcemu_r0(ours.high, memory, tier, helpers))
    return outcome
