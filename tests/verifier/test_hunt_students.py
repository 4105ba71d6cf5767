"""Verifier hunt: the mistakes people make while learning tc/BPF, against the kernel.

Each object of ``tests/testdata/hunt_verifier`` (clang-19, one ``SEC("tc")`` program) is
verified by tcemu and compared with the kernel's verdict and first error line, recorded
below from Linux 6.18 as libbpf loads the object (``bpf_object__load``, log level 1).
The kernel tests load every object again through libbpf and compare the verdict, the
error line and, where cheap, the whole level-1 log (map addresses and names and the
statistics line normalised, see ``_normalise``).

``Collection.load`` refuses calls to helpers tcemu cannot run or that the licence forbids
before the verifier sees them; these tests bypass that check (``check_calls``) so that
they measure the verifier itself, which must say what ``kernel/bpf/verifier.c`` says.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

from tcemu.bpf import collection
from tcemu.bpf.collection import load_object
from tcemu.bpf.verifier import VerifierError, verify
from tests.verifier.corpus import first_error

HUNT_DIR = Path(__file__).resolve().parent.parent / "testdata" / "hunt_verifier"

# Program -> the kernel's first error line (None: accepted), recorded on 6.18 with
# libbpf (the kernel tests below re-check every entry).
KERNEL: dict[str, str | None] = {
    "atomic_ctx": "BPF_ATOMIC stores into R1 ctx is not allowed",
    "atomic_pkt": "BPF_ATOMIC stores into R1 pkt is not allowed",
    "bpf_loop_bad_ret": "At callback return the register R0 has smin=2 smax=2 should have "
                        "been in [0, 1]",
    "bpf_loop_ok": None,
    "ctx_cb_var_index": "variable ctx access var_off=(0x0; 0xc) disallowed",
    "ctx_misaligned": "invalid bpf_context access off=9 size=2",
    "ctx_narrow_ok": None,
    "ctx_write_data": "R2 32-bit pointer arithmetic prohibited",
    "ctx_write_ifindex": "invalid bpf_context access off=40 size=4",
    "ctx_write_len": "invalid bpf_context access off=0 size=4",
    "ctx_write_ok": "invalid bpf_context access off=8 size=8",
    "for_each_bad_ret": "At callback return the register R0 has smin=-1 smax=-1 should "
                        "have been in [0, 1]",
    "for_each_ok": None,
    "global_func_ctx_ok": None,
    "global_func_null_arg": "R1 invalid mem access 'mem_or_null'",
    "global_func_pkt_args": "arg#0 reference type('UNKNOWN ') size cannot be "
                            "determined: -22",
    "global_funcs_two": None,
    "helper_current_comm": None,
    "helper_gpl_only": "cannot call GPL-restricted function from non-GPL compatible program",
    "helper_null_value": "R3 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, "
                         "ringbuf_mem, buf, trusted_ptr_",
    "helper_perf_read": None,
    "helper_pkt_as_ctx": "helper access to the packet is not allowed",
    "helper_size_ihl": "R4 invalid zero-sized read: u64=[0,60]",
    "helper_size_signed": "R4 invalid zero-sized read: u64=[0,4294967295]",
    "helper_size_too_big": "invalid write to stack R3 off=-64 size=128",
    "helper_size_unbounded": "R4 invalid zero-sized read: u64=[0,4294967295]",
    "helper_size_zero": "R4 invalid zero-sized read: u64=[0,63]",
    "helper_tracing_only": "program of this type cannot use helper bpf_override_return#58",
    "loop_bounded": None,
    "loop_spin_wait": "infinite loop detected at insn 0",
    "loop_unbounded": "The sequence of 8193 jumps is too complex.",
    "map_div_clamp": "math between map_value pointer and register with unbounded min value "
                     "is not allowed",
    "map_index_le": "invalid access to map value, value_size=128 off=128 size=8",
    "map_key_pkt_ok": None,
    "map_key_pkt_unchecked": "invalid access to packet, off=26 size=4, "
                             "R2(id=0,off=26,r=14)",
    "map_key_short": "invalid read from stack R2 off=-2 size=4",
    "map_no_null": "R0 invalid mem access 'map_value_or_null'",
    "map_rodata_write": "write into map forbidden, value_size=4 off=0 size=4",
    "map_store_pkt_ptr": None,
    "map_update_short_value": None,
    "map_value_oob": "invalid access to map value, value_size=8 off=8 size=8",
    "map_var_index": "math between map_value pointer and register with unbounded min value "
                     "is not allowed",
    "map_var_mask": None,
    "nested_static_bad": "invalid access to packet, off=23 size=1, R1(id=0,off=23,r=0)",
    "pkt_end_deref": "R1 invalid mem access 'pkt_end'",
    "pkt_check_after": "invalid access to packet, off=23 size=1, R3(id=0,off=23,r=0)",
    "pkt_ihl_nocheck": "invalid access to packet, off=16 size=2, R2(id=1,off=16,r=0)",
    "pkt_ihl_ok": None,
    "pkt_len_masked": None,
    "pkt_len_unbounded": "invalid access to packet, off=0 size=1, R1(id=1,off=0,r=0)",
    "pkt_meta_ok": None,
    "pkt_no_check": "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)",
    "pkt_off_by_one": "invalid access to packet, off=13 size=1, R1(id=0,off=13,r=13)",
    "pkt_other_ptr": "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)",
    "pkt_spilled_stale": "R6 invalid mem access 'scalar'",
    "pkt_stale_after_helper": "R6 invalid mem access 'scalar'",
    "pkt_u16_offset": "invalid access to packet, off=0 size=1, R1(id=1,off=0,r=0)",
    "ret_pointer": None,
    "ringbuf_double_submit": "R1 type=scalar expected=ringbuf_mem",
    "ringbuf_leak": "Unreleased reference id=2 alloc_insn=5",
    "ringbuf_no_null": "R0 invalid mem access 'ringbuf_mem_or_null'",
    "ringbuf_output_unbounded": "R3 unbounded memory access, use 'var &= const' or "
                                "'if (var < const)'",
    "ringbuf_use_after_submit": "R7 invalid mem access 'scalar'",
    "sk_no_null": "R1 invalid mem access 'sock_common_or_null'",
    "spin_lock_call": "function calls are not allowed while holding a lock",
    "spin_lock_leak": "BPF_EXIT instruction in main prog cannot be used inside "
                      "bpf_spin_lock-ed region",
    "spin_lock_no_field": "map 'counters' has no valid bpf_spin_lock",
    "spin_lock_ok": None,
    "spin_lock_wrong_field": "off 0 doesn't point to 'struct bpf_spin_lock' that is at 8",
    "spin_unlock_other": "bpf_spin_unlock of different lock",
    "static_func_pkt_ok": None,
    "subprog_ret_ptr": None,
    "stack_key_padding": None,
    "stack_partial_buf": None,
    "stack_too_deep": "combined stack size of 3 calls is 640. Too large",
    "stack_uninit_read": None,
    "stack_var_index": "invalid variable-offset write to stack R2 var_off=(0x0; 0x1f) off=-16 "
                       "size=1",
    "store_from_pkt": "helper access to the packet is not allowed",
    "tail_call_hash": "expected prog array map for tail call",
    "tail_call_ok": None,
}

# Known disagreements of tcemu's verifier (strict xfails: a fix makes them fail loudly).
XFAIL: dict[str, str] = {}

# Whole level-1 logs that differ on purpose (docs/verifier.md), or for a known reason.
LOG_XFAIL: dict[str, str] = {
    "bpf_loop_bad_ret": "KERNEL-DIFF: callbacks are explored once (the kernel runs the "
                        "callback body again until its state converges)",
    "for_each_bad_ret": "KERNEL-DIFF: callbacks are explored once (the kernel runs the "
                        "callback body again until its state converges)",
}
# Logs too long to compare cheaply (over 100,000 lines; their error line is compared above).
LOG_TOO_LONG: set[str] = set()


def _params(names: list[str], xfail: dict[str, str]) -> list[object]:
    return [pytest.param(n, marks=[pytest.mark.xfail(strict=True, reason=xfail[n])]
                         if n in xfail else []) for n in names]


@pytest.fixture
def no_load_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``Collection.load`` through helpers tcemu cannot run (the verifier decides)."""
    monkeypatch.setattr(collection, "check_calls", lambda *args, **kwargs: None)


def _tcemu(name: str, level: int = 1) -> tuple[bool, str]:
    coll = load_object(HUNT_DIR / f"{name}.bpf.o")
    (prog,) = coll.programs.values()
    try:
        return True, verify(prog, log_level=level).log
    except VerifierError as err:
        return False, err.log


@pytest.mark.parametrize("name", _params(sorted(KERNEL), XFAIL))
@pytest.mark.usefixtures("no_load_check")
def test_tcemu_gives_the_kernels_verdict(name: str) -> None:
    accepted, log = _tcemu(name, level=0 if name == "loop_unbounded" else 1)
    want = KERNEL[name]
    assert accepted == (want is None), log[-2000:]
    if want is not None:
        assert first_error(log) == want


def test_every_hunt_program_has_a_case() -> None:
    sources = {p.stem for p in HUNT_DIR.glob("*.c")}
    objects = {p.name.removesuffix(".bpf.o") for p in HUNT_DIR.glob("*.bpf.o")}
    assert sources == objects == set(KERNEL)
    readme = (HUNT_DIR / "README.md").read_text()
    assert all(f"`{n}`" in readme for n in KERNEL)
    accepted = [n for n, e in KERNEL.items() if e is None]
    assert len(KERNEL) >= 25
    assert 10 <= len(accepted) <= len(KERNEL) - 25


# --- the kernel, through libbpf -------------------------------------------------------------

_LOG_SIZE = 16 << 20


def _libbpf() -> ctypes.CDLL:
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    vp = ctypes.c_void_p
    lib.libbpf_set_print.argtypes, lib.libbpf_set_print.restype = [vp], vp
    lib.bpf_object__open_file.argtypes, lib.bpf_object__open_file.restype = [
        ctypes.c_char_p, vp], vp
    lib.bpf_object__next_program.argtypes, lib.bpf_object__next_program.restype = [vp, vp], vp
    lib.bpf_program__set_log_buf.argtypes = [vp, ctypes.c_char_p, ctypes.c_size_t]
    lib.bpf_program__set_log_level.argtypes = [vp, ctypes.c_uint32]
    lib.bpf_object__load.argtypes = [vp]
    lib.bpf_object__close.argtypes = [vp]
    lib.libbpf_set_print(None)
    return lib


def kernel_load(path: Path, level: int = 1) -> tuple[bool, str]:
    """Load the object's only program as libbpf does; (accepted, verifier log)."""
    try:
        lib = _libbpf()
    except OSError as err:
        pytest.skip(f"libbpf.so.1 not available: {err}")
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    assert obj, f"libbpf cannot open {path}"
    try:
        prog = lib.bpf_object__next_program(obj, None)
        buf = ctypes.create_string_buffer(_LOG_SIZE)
        lib.bpf_program__set_log_buf(prog, buf, _LOG_SIZE)
        lib.bpf_program__set_log_level(prog, level)
        rc = lib.bpf_object__load(obj)
    finally:
        lib.bpf_object__close(obj)
    return rc == 0, buf.value.decode()


_MAP_ADDR = re.compile(r"= (0xffff[0-9a-f]+|map\[(fd|idx):\d+\](\[0\]\+\d+)?)")
_MAP_NAME = re.compile(r"map=[^,)]*")
_PAD = re.compile(r" +;")
_STATS = re.compile(r"processed (\d+) insns .*")


def _normalise(log: str) -> str:
    """Map addresses (tcemu prints the LD_IMM64's index), map names (libbpf names internal
    maps after the object, ``map_roda.rodata``) and the statistics line."""
    log = _MAP_ADDR.sub("= MAP", log)
    log = _MAP_NAME.sub("map=M", log)
    log = _STATS.sub("processed", log)
    return _PAD.sub(" ;", log)


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(KERNEL))
def test_kernel_verdict_is_recorded(name: str) -> None:
    accepted, log = kernel_load(HUNT_DIR / f"{name}.bpf.o")
    assert (None if accepted else first_error(log)) == KERNEL[name], log[-2000:]


@pytest.mark.kernel
@pytest.mark.parametrize("name", _params(sorted(set(KERNEL) - LOG_TOO_LONG),
                                         {**XFAIL, **LOG_XFAIL}))
@pytest.mark.usefixtures("no_load_check")
def test_level1_log_is_the_kernels(name: str) -> None:
    _, klog = kernel_load(HUNT_DIR / f"{name}.bpf.o")
    _, tlog = _tcemu(name)
    assert _normalise(tlog) == _normalise(klog)


# --- byte swaps (found through pkt_u16_offset): BPF_END keeps what is known of the value --

ENDIAN = {
    "be16_u16": "r2 = *(u16 *)(r1 +0)\nr2 = be16 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
    "be32_u32": "r2 = *(u32 *)(r1 +0)\nr2 = be32 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
    "be64_u32": "r2 = *(u32 *)(r1 +0)\nr2 = be64 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
    "be16_and": "r2 = *(u32 *)(r1 +0)\nr2 &= 0x0f01\nr2 = be16 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
    "be32_or": "r2 = *(u32 *)(r1 +0)\nr2 |= -16\nr2 = be32 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
    "le64_u32": "r2 = *(u32 *)(r1 +0)\nr2 = le64 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
    "bswap16": "r2 = *(u32 *)(r1 +0)\nr2 &= 0xff\nr2 = bswap16 r2\nr0 = *(u8 *)(r2 +0)\nexit\n",
}
# The state after the swap, as 6.18 prints it.
ENDIAN_STATE = {
    "be16_u16": "R2=scalar(smin=smin32=0,smax=umax=smax32=umax32=0xffff,var_off=(0x0; 0xffff))",
    "le64_u32": "R2=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))",
    "bswap16": "R2=scalar(smin=smin32=0,smax=umax=smax32=umax32=0xff00,var_off=(0x0; 0xff00))",
}


def _asm_log(text: str) -> str:
    from tcemu.bpf import asm

    try:
        return verify(asm.assemble(text, validate=False), log_level=1).log
    except VerifierError as err:
        return err.log


@pytest.mark.parametrize("name", sorted(ENDIAN_STATE))
def test_byte_swap_state(name: str) -> None:
    line = next(ln for ln in _asm_log(ENDIAN[name]).splitlines()
                if " = be" in ln or " = le" in ln or " = bswap" in ln)
    assert line.split("; ", 1)[1].strip() == ENDIAN_STATE[name]


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(ENDIAN))
def test_byte_swap_log_is_the_kernels(name: str) -> None:
    from tcemu.bpf import asm
    from tcemu.errors import KernelError
    from tcemu.kernel.syscall import prog_load

    prog = asm.assemble(ENDIAN[name], validate=False)
    try:
        with prog_load(prog.to_bytes(), log_level=1):
            klog = ""
    except KernelError as err:
        klog = err.log
    assert klog, "the kernel refuses every one of these programs (R2 is a scalar)"
    assert _asm_log(ENDIAN[name]) == klog


# --- narrow fills (found through pkt_u16_offset at -O0): a 4-byte fill of a 4-byte spill of a
# value that fits 32 bits stays linked to the slot (check_stack_read_fixed_off) --------------

FILLS = {
    "fill32_linked": "r2 = *(u16 *)(r1 +0)\n*(u32 *)(r10 -8) = r2\nr3 = *(u32 *)(r10 -8)\n"
                     "r0 = *(u8 *)(r3 +0)\nexit\n",
    "fill16_of_32": "r2 = *(u32 *)(r1 +0)\n*(u32 *)(r10 -8) = r2\nr3 = *(u16 *)(r10 -8)\n"
                    "r0 = *(u8 *)(r3 +0)\nexit\n",
    "fill16_small": "r2 = *(u8 *)(r1 +0)\n*(u32 *)(r10 -8) = r2\nr3 = *(u16 *)(r10 -8)\n"
                    "r0 = *(u8 *)(r3 +0)\nexit\n",
}


def test_narrow_fill_keeps_the_link() -> None:
    line = next(ln for ln in _asm_log(FILLS["fill32_linked"]).splitlines()
                if ln.startswith("2:"))
    assert "R3=scalar(id=1," in line


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(FILLS))
def test_narrow_fill_log_is_the_kernels(name: str) -> None:
    from tcemu.bpf import asm
    from tcemu.errors import KernelError
    from tcemu.kernel.syscall import prog_load

    prog = asm.assemble(FILLS[name], validate=False)
    try:
        with prog_load(prog.to_bytes(), log_level=1):
            klog = ""
    except KernelError as err:
        klog = err.log
    assert klog, "the kernel refuses every one of these programs (R3 is a scalar)"
    assert _asm_log(FILLS[name]) == klog
