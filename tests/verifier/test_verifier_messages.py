"""verify() on hand-written programs: verdicts and the kernel's error lines.

Each expected line is the one the 6.18 kernel prints for the same program (loaded as root,
SCHED_CLS, GPL); ``test_verifier_kernel.py`` checks a selection against the running kernel.
"""

from __future__ import annotations

import pytest

from tcemu.bpf import asm
from tcemu.bpf.uapi import BpfMapType
from tcemu.bpf.verifier import MapInfo, VerifierError, verify

HASH = MapInfo(int(BpfMapType.HASH), 4, 8, 16, "hmap")
RINGBUF = MapInfo(int(BpfMapType.RINGBUF), 0, 0, 4096, "rb")
MAPS = {0: HASH, 1: RINGBUF}

PKT = """r2 = *(u32 *)(r1 +76)
r3 = *(u32 *)(r1 +80)
r4 = r2
r4 += 14
if r4 > r3 goto pc+2
"""

LOOKUP = """r1 = 0
*(u32 *)(r10 -4) = r1
r2 = r10
r2 += -4
r1 = map[fd:0]
call bpf_map_lookup_elem
"""

REJECTS = [
    ("uninit_reg", "r0 = r2\nexit", "R2 !read_ok"),
    ("uninit_r0", "exit", "R0 !read_ok"),
    ("scalar_deref", "r0 = 0\nr0 = *(u32 *)(r0 +0)\nexit", "R0 invalid mem access 'scalar'"),
    ("ctx_bad_off", "r0 = *(u32 *)(r1 +2)\nexit", "invalid bpf_context access off=2 size=4"),
    ("ctx_write_ro", "r2 = 1\n*(u32 *)(r1 +0) = r2\nr0 = 0\nexit",
     "invalid bpf_context access off=0 size=4"),
    ("ctx_modified", "r1 += 4\nr0 = *(u32 *)(r1 +0)\nexit",
     "dereference of modified ctx ptr R1 off=4 disallowed"),
    ("pkt_no_check", "r2 = *(u32 *)(r1 +76)\nr0 = *(u8 *)(r2 +0)\nexit",
     "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)"),
    ("pkt_beyond", PKT + "r0 = *(u8 *)(r2 +14)\nr0 = 0\nexit",
     "invalid access to packet, off=14 size=1, R2(id=0,off=14,r=14)"),
    ("pkt_end_arith", "r3 = *(u32 *)(r1 +80)\nr3 += 1\nr0 = 0\nexit",
     "R3 pointer arithmetic on pkt_end prohibited"),
    ("back_edge_loop", "r0 = 0\nif r0 == 0 goto pc-1\nexit",
     "infinite loop detected at insn 1"),
    ("unreachable", "r0 = 0\nexit\nr0 = 1\nexit", "unreachable insn 2"),
    ("fall_off", "r0 = 0", "last insn is not an exit or jmp"),
    ("fp_write", "r10 = 0\nr0 = 0\nexit", "frame pointer is read only"),
    ("stack_oob", "r0 = 0\n*(u64 *)(r10 -520) = r0\nexit",
     "invalid write to stack R10 off=-520 size=8"),
    ("stack_misaligned", "r0 = 0\n*(u32 *)(r10 -6) = r0\nexit",
     "misaligned stack access off 0+0+-6 size 4"),
    ("div_zero_imm", "r0 = 1\nr0 /= 0\nexit", "div by zero"),
    ("bad_shift", "r0 = 1\nr0 <<= 64\nexit", "invalid shift 64"),
    ("helper_ctx", "r1 = 0\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall bpf_skb_load_bytes\n"
     "r0 = 0\nexit", "R1 type=scalar expected=ctx"),
    ("helper_map", "r1 = 0\nr2 = r10\nr2 += -8\ncall bpf_map_lookup_elem\nr0 = 0\nexit",
     "R1 type=scalar expected=map_ptr"),
    ("helper_size_zero", "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 0\ncall bpf_skb_load_bytes\n"
     "r0 = 0\nexit", "R4 invalid zero-sized read: u64=[0,0]"),
    ("helper_stack_too_small", "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 16\n"
     "call bpf_skb_load_bytes\nr0 = 0\nexit", "invalid write to stack R3 off=-8 size=16"),
    ("null_deref", LOOKUP + "r0 = *(u32 *)(r0 +0)\nexit",
     "R0 invalid mem access 'map_value_or_null'"),
    ("map_value_oob", LOOKUP + "if r0 == 0 goto pc+1\nr0 = *(u64 *)(r0 +4)\nr0 = 0\nexit",
     "invalid access to map value, value_size=8 off=4 size=8"),
    ("ringbuf_leak", "r1 = map[fd:1]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve\nr0 = 0\nexit",
     "Unreleased reference id=2 alloc_insn=4"),
    ("ptr_bitwise", "r1 &= 7\nr0 = 0\nexit", "R1 bitwise operator &= on pointer prohibited"),
    ("ptr32", "w1 += 7\nr0 = 0\nexit", "R1 32-bit pointer arithmetic prohibited"),
    ("unknown_helper", "call 200000\nexit", "invalid func unknown#200000"),
    ("call_depth", "call pc+1\nexit\ncall pc-1\nexit", "the call stack of 9 frames is too deep"),
]

ACCEPTS = [
    ("return_zero", "r0 = 0\nexit"),
    ("pkt_checked", "r0 = 0\n" + PKT + "r0 = *(u8 *)(r2 +13)\nr0 = 0\nexit"),
    ("null_checked", LOOKUP + "if r0 == 0 goto pc+1\nr0 = *(u64 *)(r0 +0)\nr0 = 0\nexit"),
    ("bounded_loop", "r0 = 0\nr1 = 0\nr1 += 1\nr0 += r1\nif r1 < 100 goto pc-3\nexit"),
    ("uninit_stack_read_as_root", "r0 = *(u64 *)(r10 -8)\nexit"),
    ("spill_fill_ctx", "*(u64 *)(r10 -8) = r1\nr2 = *(u64 *)(r10 -8)\n"
     "r0 = *(u32 *)(r2 +0)\nexit"),
    ("masked_index", LOOKUP + "if r0 == 0 goto pc+5\nr1 = *(u64 *)(r0 +0)\nr1 &= 7\n"
     "r0 += r1\nr0 = *(u8 *)(r0 +0)\nr0 = 0\nexit"),
    ("ringbuf_submit", "r1 = map[fd:1]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve\n"
     "if r0 == 0 goto pc+3\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_submit\nr0 = 0\nexit"),
    ("subprog_call", "r1 = 1\ncall pc+2\nr0 = 0\nexit\nr0 = r1\nexit"),
]


@pytest.mark.parametrize(("name", "text", "message"), REJECTS, ids=[r[0] for r in REJECTS])
def test_rejected_with_kernel_message(name: str, text: str, message: str) -> None:
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(text, validate=False), maps=MAPS)
    assert info.value.first_error == message
    assert message in info.value.log
    assert "processed " in info.value.log.splitlines()[-1]


@pytest.mark.parametrize(("name", "text"), ACCEPTS, ids=[a[0] for a in ACCEPTS])
def test_accepted(name: str, text: str) -> None:
    result = verify(asm.assemble(text, validate=False), maps=MAPS)
    assert result.log.startswith("processed ")
    assert result.stats.insn_processed >= len(text.splitlines()) - 3


def test_level1_log_is_the_failing_path() -> None:
    # Captured from the 6.18 kernel for this program (BPF_PROG_LOAD, log_level 1).
    text = PKT.replace("goto pc+2", "goto pc+1") + "r0 = *(u8 *)(r2 +20)\nr0 = 0\nexit"
    expected = """0: R1=ctx() R10=fp0
0: (61) r2 = *(u32 *)(r1 +76)         ; R1=ctx() R2=pkt(r=0)
1: (61) r3 = *(u32 *)(r1 +80)         ; R1=ctx() R3=pkt_end()
2: (bf) r4 = r2                       ; R2=pkt(r=0) R4=pkt(r=0)
3: (07) r4 += 14                      ; R4=pkt(off=14,r=0)
4: (2d) if r4 > r3 goto pc+1          ; R3=pkt_end() R4=pkt(off=14,r=14)
5: (71) r0 = *(u8 *)(r2 +20)
invalid access to packet, off=20 size=1, R2(id=0,off=20,r=14)
R2 offset is outside of the packet
processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(text))
    assert info.value.log == expected
    assert info.value.insn_index == 5


def test_level1_after_a_branch_keeps_only_the_failing_path() -> None:
    # The kernel resets the log to where the branch was pushed, in mid-line.
    text = "r0 = *(u32 *)(r1 +0)\nif r0 > 5 goto pc+2\nr0 = 0\nexit\nr0 = *(u32 *)(r0 +0)\nexit"
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(text))
    lines = info.value.log.splitlines()
    assert lines[2] == ("1: (25) if r0 > 0x5 goto pc+2 4: R0=scalar(smin=umin=umin32=6,"
                        "smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R1=ctx() R10=fp0")
    assert lines[3:5] == ["4: (61) r0 = *(u32 *)(r0 +0)", "R0 invalid mem access 'scalar'"]


def test_level2_shows_every_path() -> None:
    text = "r0 = *(u32 *)(r1 +0)\nif r0 > 5 goto pc+1\nr0 = 0\nexit"
    result = verify(asm.assemble(text), log_level=2)
    assert result.log.startswith("func#0 @0\nLive regs before insn:\n"
                                 "      0: .1........ (61) r0 = *(u32 *)(r1 +0)\n")
    assert "\nfrom 1 to 3: " in result.log
    walk = result.log.split("\n0: R1=ctx() R10=fp0\n", 1)[1]
    assert walk.count("(95) exit") == 2


def test_gpl_only_helper_needs_gpl() -> None:
    prog = asm.assemble("r1 = r10\nr1 += -8\nr2 = 8\ncall bpf_trace_printk\nr0 = 0\nexit")
    with pytest.raises(VerifierError) as info:
        verify(prog, gpl=False)
    assert info.value.first_error == ("cannot call GPL-restricted function from non-GPL "
                                      "compatible program")
    verify(prog)  # GPL by default


def test_combined_stack_too_large() -> None:
    text = ("r0 = 0\n*(u64 *)(r10 -320) = r0\ncall pc+2\nr0 = 0\nexit\n"
            "r0 = 0\n*(u64 *)(r10 -320) = r0\nexit")
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(text))
    assert info.value.first_error == "combined stack size of 2 calls is 640. Too large"


def test_too_many_insns() -> None:
    # Level 0 keeps the run cheap; the limit is the kernel's 1M processed insns.
    text = "r0 = 0\nr1 = 0\nr1 += 1\nr0 += r1\nif r1 < 400000 goto pc-3\nexit"
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(text), log_level=0)
    assert info.value.first_error == "BPF program is too large. Processed 1000001 insn"


def test_trace_printk_banner_goes_to_the_kernel_log() -> None:
    prog = asm.assemble("r1 = 0\n*(u64 *)(r10 -8) = r1\nr1 = r10\nr1 += -8\nr2 = 8\n"
                        "call bpf_trace_printk\nr0 = 0\nexit")
    result = verify(prog)
    assert "NOTICE" not in result.log          # the verifier log has no banner
    assert result.notices[1] == "**   NOTICE NOTICE NOTICE NOTICE NOTICE NOTICE NOTICE   **"
    assert "trace_printk() being used" in result.notices[3]
    assert verify(asm.assemble("r0 = 0\nexit")).notices == ()


def test_unprivileged_back_edge() -> None:
    prog = asm.assemble("r0 = 0\nr0 += 1\nif r0 < 4 goto pc-2\nexit")
    verify(prog)
    with pytest.raises(VerifierError) as info:
        verify(prog, privileged=False)
    assert info.value.first_error == "back-edge from insn 2 to 1"


DIAMONDS = """call bpf_get_prandom_u32
r6 = r0
r7 = 0
if r6 & 1 goto pc+1
r7 |= 1
if r6 & 2 goto pc+1
r7 |= 2
if r6 & 4 goto pc+1
r7 |= 4
if r6 & 8 goto pc+1
r7 |= 8
if r6 & 16 goto pc+1
r7 |= 16
if r6 & 32 goto pc+1
r7 |= 32
if r6 & 64 goto pc+1
r7 |= 64
if r6 & 128 goto pc+1
r7 |= 128
if r6 & 256 goto pc+1
r7 |= 256
if r6 & 512 goto pc+1
r7 |= 512
if r6 & 1024 goto pc+1
r7 |= 1024
if r6 & 2048 goto pc+1
r7 |= 2048
if r6 & 4096 goto pc+1
r7 |= 4096
if r6 & 8192 goto pc+1
r7 |= 8192
if r6 & 16384 goto pc+1
r7 |= 16384
if r6 & 32768 goto pc+1
r7 |= 32768
if r6 & 65536 goto pc+1
r7 |= 65536
if r6 & 131072 goto pc+1
r7 |= 131072
r0 = r7
exit"""

DECIDED_LATER = """call bpf_get_prandom_u32
r6 = r0
r7 = 8
r8 = 1
r8 += 1
r8 += 1
r8 += 1
if r6 & 1 goto pc+1
r7 = 0
r8 += 1
r8 += 1
r8 += 1
r8 += 1
r8 += 1
if r6 & 2 goto pc+0
if r6 & 4 goto pc+0
if r7 > 4 goto pc+2
r0 = 0
exit
r0 = *(u8 *)(r9 +0)
exit"""


def test_imprecise_scalars_do_not_split_states() -> None:
    # 18 diamonds, each setting a flag bit: 2**18 paths unless states that differ only in
    # a scalar no decision depends on are pruned, as the kernel does (it accepts this
    # after 125 insns).
    result = verify(asm.assemble(DIAMONDS), log_level=0)
    assert result.stats.insn_processed < 1000


def test_a_scalar_decided_on_later_is_compared_precisely() -> None:
    # r7 is 8 or 0 at the checkpoints of insns 14/15; insn 16 decides on it, so the
    # state with r7 = 8 must not be pruned by the one with r7 = 0 (the kernel rejects).
    with pytest.raises(VerifierError) as info:
        verify(asm.assemble(DECIDED_LATER), log_level=0)
    assert info.value.first_error == "R9 !read_ok"
