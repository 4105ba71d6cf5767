"""The verifier corpus: its shape, and that it is still a true record of the kernel.

The kernel test loads every case (own and adapted PREVAIL) once into the running kernel and
requires the recorded verdict and error line (``corpus.first_error``).  When a kernel update
changes a verdict, re-record with ``python -m tests.verifier.kernel_oracle record`` (and
``record-prevail``), read the diff, and explain any change in the commit.

The other tests need no kernel: the corpus is big enough, covers every check issue 4 lists,
every case assembles and becomes a tcemu Program, and the error-line rule behaves.
"""

from __future__ import annotations

import collections

import pytest

from tcemu.bpf import isa
from tcemu.bpf.env import Env
from tcemu.bpf.maps import map_from_handle
from tcemu.bpf.ops import LdImm64
from tcemu.bpf.uapi import BpfMapType, BpfProgType
from tcemu.errors import LoadError
from tests.verifier.corpus import Case, build_program, first_error, load_cases, load_own_cases
from tests.verifier.kernel_oracle import kernel_verdict
from tests.verifier.prevail_cases import PREVAIL_DIR, adapt_all, skipped_cases

CASES = load_cases()
_MAP_PSEUDOS = (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_VALUE)

# Every check of issue 4 ("What it checks"), as the `covers` values that exercise it.  A
# check is covered when at least one own case's `covers` equals or starts with one of them.
REQUIRED_COVERS: dict[str, tuple[str, ...]] = {
    "CFG: unreachable instruction": ("cfg.unreachable",),
    "CFG: jump out of range": ("cfg.jump_out_of_range",),
    "CFG: falling off the end": ("cfg.fall_off_end",),
    "CFG: bounded loops accepted": ("cfg.bounded_loop",),
    "CFG: loops the kernel rejects": ("cfg.infinite_loop",),
    "1M processed-instruction limit": ("limits.complexity",),
    "register initialisation": ("uninit.register", "uninit.r0_at_exit"),
    "caller-saved registers after calls": ("uninit.caller_saved",),
    "pointer type ctx": ("pointers.ctx", "ctx.read"),
    "pointer type packet": ("packet.range",),
    "pointer type packet_end": ("packet.pkt_end",),
    "pointer type packet_meta": ("packet.meta",),
    "pointer type map_ptr": ("pointers.map_ptr",),
    "pointer type map_value": ("pointers.map_value",),
    "pointer type map_value_or_null": ("pointers.map_value_or_null",),
    "pointer type stack": ("stack.init", "stack.spill_pointer"),
    "pointer type scalar": ("pointers.scalar_deref",),
    "pointer type ringbuf memory": ("pointers.ringbuf_mem",),
    "scalar bounds: tnum": ("scalars.tnum",),
    "scalar bounds: signed": ("scalars.signed_bounds",),
    "scalar bounds: unsigned": ("scalars.unsigned_bounds",),
    "scalar bounds: 32-bit": ("scalars.bounds32",),
    "packet range from data_end compares": ("packet.range",),
    "null checks on map lookups": ("pointers.null_check",),
    "stack: uninitialised reads": ("stack.uninit_read",),
    "stack: spills and fills": ("stack.spill_pointer", "stack.spill_scalar"),
    "stack: partial overwrite": ("stack.partial_overwrite",),
    "ctx: read sets per program type": ("ctx.read_type", "ctx.read_denied"),
    "ctx: mark/tc_index writable from tc only": ("ctx.write_tc_only",),
    "ctx: cb[] writable from both": ("ctx.write_cb",),
    "ctx: narrow loads": ("ctx.narrow_load",),
    "helper argument types": ("helpers.arg_type",),
    "helper map key and value sizes": ("helpers.key_size", "helpers.value_size"),
    "helper constant sizes": ("helpers.const_size",),
    "helper uninitialised memory": ("helpers.uninit_mem", "uninit.helper_arg"),
    "helpers per program type": ("helpers.prog_type",),
    "GPL-only helpers and the licence": ("license.gpl_only",),
    "trace_printk": ("helpers.trace_printk",),
    "bpf-to-bpf calls and frames": ("calls.bpf2bpf", "calls.frames"),
    "combined stack of 512 bytes": ("calls.stack_depth",),
    "tail calls": ("tailcall.",),
    "pointer arithmetic prohibitions": ("pointers.ptr_plus_ptr", "pointers.forbidden_alu",
                                        "pointers.ptr_minus_ptr", "pointers.ctx_modified"),
    "pointer leaks (as root)": ("pointers.leak",),
    "division by zero": ("alu.div_by_zero",),
    "misaligned access": ("alignment.", "stack.alignment", "packet.alignment"),
    "return values": ("retval.",),
}


@pytest.mark.kernel
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_verdict_is_recorded(case: Case) -> None:
    verdict = kernel_verdict(case)
    got = (verdict.accepted, verdict.error)
    want = (case.expect_accepted, case.expect_error)
    assert got == want, f"{case.id} ({case.path}): kernel says {got}, recorded {want}\n" + (
        "\n".join(verdict.log.splitlines()[-12:]))


LEVEL2 = [c for c in load_own_cases()
          if not c.expect_accepted and not (c.expect_error or "").startswith("BPF program is too")]


@pytest.mark.kernel
@pytest.mark.parametrize("case", LEVEL2, ids=[c.id for c in LEVEL2])
def test_error_line_is_the_same_at_log_level_2(case: Case) -> None:
    verdict = kernel_verdict(case, log_level=2)
    assert (verdict.accepted, verdict.error) == (False, case.expect_error)


def test_own_corpus_size_and_balance() -> None:
    own = load_own_cases()
    assert len(own) >= 150
    accepted = sum(c.expect_accepted for c in own)
    assert 0.35 <= accepted / len(own) <= 0.65, f"{accepted} of {len(own)} accepted"
    rejected_errors = {c.expect_error for c in own if not c.expect_accepted}
    assert len(rejected_errors) >= 100, "rejects should target many distinct messages"


def test_every_issue_check_is_covered() -> None:
    covers = [c.covers for c in load_own_cases()]
    missing = [check for check, prefixes in REQUIRED_COVERS.items()
               if not any(cov.startswith(prefixes) for cov in covers)]
    assert not missing, f"checks without a case: {missing}"


def test_program_types_both_ways() -> None:
    seen = {(c.prog_type, c.expect_accepted) for c in load_own_cases()}
    for prog_type in (BpfProgType.SCHED_CLS, BpfProgType.SCHED_ACT, BpfProgType.SOCKET_FILTER):
        assert (prog_type, True) in seen
    assert (BpfProgType.SOCKET_FILTER, False) in seen
    assert (BpfProgType.SCHED_CLS, False) in seen


def test_expectations_are_well_formed() -> None:
    ids = collections.Counter(c.id for c in CASES)
    assert not [i for i, n in ids.items() if n > 1]
    for case in CASES:
        assert case.insns, case.id
        assert len(case.insns) % 8 == 0, case.id
        if case.expect_accepted:
            assert case.expect_error is None, case.id
        else:
            assert case.expect_error, f"{case.id}: a rejection records its error line"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_builds_a_tcemu_program(case: Case) -> None:
    env = Env()
    prog = build_program(case, env)
    assert prog.to_bytes() == case.insns
    assert prog.prog_type == case.prog_type
    assert prog.license == case.license
    assert prog.map_resolver is not None
    assert prog.vm is not None
    assert prog.vm.env is env
    for pc, insn in enumerate(prog.insns[:-1]):   # every map reference resolves in env
        if insn.code != isa.LD | isa.IMM | isa.DW or insn.src not in _MAP_PSEUDOS:
            continue
        op = LdImm64(pc, insn, insn.dst, insn.src, insn.imm, prog.insns[pc + 1].imm)
        if insn.src == isa.PSEUDO_MAP_VALUE and case.maps[insn.imm].type != BpfMapType.ARRAY:
            with pytest.raises(LoadError, match="no direct value access"):
                prog.map_resolver(op)
            continue
        address = prog.map_resolver(op)
        if insn.src == isa.PSEUDO_MAP_FD:
            live = map_from_handle(env, address)
            assert live is not None
            want = case.maps[insn.imm]
            assert (live.spec.type, live.spec.key_size, live.spec.value_size,
                    live.spec.max_entries) == (want.type, want.key_size, want.value_size,
                                               want.max_entries)
        else:
            region = env.memory.regions[address >> 32]   # the map value, in env's memory
            assert (address & 0xFFFF_FFFF) <= len(region)


def test_prevail_every_case_adapted_or_skipped_with_reason() -> None:
    adapted, skipped = adapt_all()
    assert len(adapted) >= 500
    assert all(s.reason for s in skipped)
    prevail = [c for c in CASES if not c.own]
    assert len(prevail) == len(adapted)
    documents = sum(text.count("\ntest-case:") + text.startswith("test-case:")
                    for text in (p.read_text() for p in PREVAIL_DIR.glob("*.yaml")))
    assert len(adapted) + len(skipped_cases()) == documents == 802


@pytest.mark.parametrize(("log", "error"), [
    ("", None),
    ("processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0\n", None),
    ("0: R1=ctx() R10=fp0\n0: (bf) r0 = r2\nR2 !read_ok\nprocessed 1 insns (limit 1000000)\n",
     "R2 !read_ok"),
    ("unreachable insn 2\nprocessed 0 insns (limit 1000000) max_states_per_insn 0\n",
     "unreachable insn 2"),
    ("1: (05) goto pc-1\ninfinite loop detected at insn 1\ncur state: R0=0 R10=fp0\n"
     "old state: R0=0 R10=fp0\nprocessed 9 insns (limit 1000000)\n",
     "infinite loop detected at insn 1"),
    ("6: (69) r0 = *(u16 *)(r2 +12)\ninvalid access to packet, off=12 size=2, "
     "R2(id=0,off=12,r=0)\nR2 offset is outside of the packet\nprocessed 6 insns (limit 1)\n",
     "invalid access to packet, off=12 size=2, R2(id=0,off=12,r=0)"),
    ("3: (85) call bpf_tail_call#12\nexpected prog array map for tail callprocessed 3 insns "
     "(limit 1000000) max_states_per_insn 0\n", "expected prog array map for tail call"),
    ("5: (85) call bpf_map_lookup_elem#1\n; if (x) @ prog.c:12\n"
     "R1 type=scalar expected=map_ptr\nverification time 12 usec\nstack depth 8\n",
     "R1 type=scalar expected=map_ptr"),
])
def test_first_error(log: str, error: str | None) -> None:
    assert first_error(log) == error
