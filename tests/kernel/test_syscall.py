"""Tests of the bpf(2) syscall layer (``tcemu.kernel.syscall``) against the running kernel."""

from __future__ import annotations

import errno
import os
import platform
import struct
import sys

import pytest

from tcemu import kernel
from tcemu.errors import KernelError
from tcemu.kernel import syscall

# Opcodes (include/uapi/linux/bpf.h, bpf_common.h): class | size/source | mode/op.
ALU64_ADD_K = 0x07
ALU64_MOV_K = 0xB7
ALU64_MOV_X = 0xBF
JMP_JEQ_K = 0x15
JMP_CALL = 0x85
JMP_EXIT = 0x95
LD_IMM64 = 0x18
LDX_MEM_W = 0x61
ST_MEM_W = 0x62
STX_MEM_W = 0x63

PSEUDO_MAP_FD = 1
HELPER_MAP_LOOKUP_ELEM = 1
HELPER_SKB_STORE_BYTES = 9
MAP_TYPE_HASH = 1
MAP_TYPE_ARRAY = 2

SKB_MARK = 8  # offsets in struct __sk_buff
SKB_IFINDEX = 40
SKB_CB0 = 48
SKB_WIRE_LEN = 160

# Ethernet (02:..:01 <- 02:..:02, IPv4) + a 20-byte IPv4 header 127.0.0.1 -> 127.0.0.1.
PACKET = bytes.fromhex("020000000001 020000000002 0800 4500001400000000401100007f0000017f000001")


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte struct bpf_insn."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ret_imm(value: int) -> bytes:
    """``r0 = value; exit``."""
    return insn(ALU64_MOV_K, dst=0, imm=value) + insn(JMP_EXIT)


def ctx_with(**fields: int) -> bytes:
    """A struct __sk_buff with the given u32 fields (offset names above) set."""
    ctx = bytearray(kernel.SK_BUFF_SIZE)
    offsets = {"mark": SKB_MARK, "cb0": SKB_CB0, "len": 0}
    for name, value in fields.items():
        struct.pack_into("<I", ctx, offsets[name], value)
    return bytes(ctx)


def u32_at(buf: bytes, offset: int) -> int:
    """The little-endian u32 at ``offset``."""
    value: int = struct.unpack_from("<I", buf, offset)[0]
    return value


# --- probe -----------------------------------------------------------------------------------


@pytest.mark.kernel
def test_probe_finds_the_kernel_usable() -> None:
    assert kernel.probe() is None


def test_probe_reports_a_foreign_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert kernel.probe() == "not Linux (platform 'darwin')"


def test_probe_reports_an_unknown_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "sparc64")
    reason = kernel.probe()
    assert reason is not None
    assert "sparc64" in reason


def test_probe_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cmd: int, attr: bytearray) -> int:
        raise OSError("no libc here")

    monkeypatch.setattr(syscall, "_sys_bpf", broken)
    reason = kernel.probe()
    assert reason is not None
    assert "no libc here" in reason


# --- BPF_PROG_LOAD ---------------------------------------------------------------------------


@pytest.mark.kernel
def test_load_keeps_the_verifier_log() -> None:
    with kernel.prog_load(ret_imm(2)) as prog:
        assert prog.fd >= 0
        assert "processed 2 insns" in prog.log


@pytest.mark.kernel
def test_load_without_log_level_has_an_empty_log() -> None:
    with kernel.prog_load(ret_imm(2), log_level=0) as prog:
        assert prog.log == ""


@pytest.mark.kernel
def test_load_grows_a_log_buffer_that_is_too_small() -> None:
    with kernel.prog_load(ret_imm(2), log_level=2, log_size=128) as prog:
        assert len(prog.log) > 128
        assert "0: R1=ctx() R10=fp0" in prog.log
        assert prog.log.rstrip().endswith("mark_read 0")


@pytest.mark.kernel
def test_verifier_rejection_carries_errno_and_log() -> None:
    with pytest.raises(KernelError) as caught:
        kernel.prog_load(insn(JMP_EXIT))
    err = caught.value
    assert err.errno == errno.EACCES
    assert "R0 !read_ok" in err.log
    assert str(err) == "load program: Permission denied (EACCES): R0 !read_ok"


def test_load_rejects_a_partial_instruction() -> None:
    with pytest.raises(KernelError, match="not a whole number") as caught:
        kernel.prog_load(ret_imm(0) + b"\x00")
    assert caught.value.errno == errno.EINVAL


def test_load_rejects_a_long_name() -> None:
    with pytest.raises(KernelError, match="longer than 15 bytes"):
        kernel.prog_load(ret_imm(0), prog_name="x" * 16)


@pytest.mark.kernel
def test_prog_fd_closes_once() -> None:
    prog = kernel.prog_load(ret_imm(0), prog_name="tcemu_close")
    with prog:
        assert not prog.closed
    assert prog.closed
    prog.close()
    with pytest.raises(KernelError, match="already closed") as caught:
        _ = prog.fd
    assert caught.value.errno == errno.EBADF


# --- BPF_PROG_TEST_RUN -----------------------------------------------------------------------


@pytest.mark.kernel
def test_trivial_program_returns_its_r0_and_the_packet() -> None:
    with kernel.prog_load(ret_imm(2)) as prog:
        result = kernel.test_run(prog.fd, PACKET)
    assert result.retval == 2
    assert result.errno == 0
    assert result.data_out == PACKET
    assert result.data_size_out == len(PACKET)


@pytest.mark.kernel
def test_ctx_out_without_ctx_in_starts_from_zero() -> None:
    with kernel.prog_load(ret_imm(0)) as prog:
        bare = kernel.test_run(prog.fd, PACKET)
        zeroed = kernel.test_run(prog.fd, PACKET, ctx=bytes(kernel.SK_BUFF_SIZE))
    assert bare.ctx_out == zeroed.ctx_out
    assert len(bare.ctx_out) == kernel.SK_BUFF_SIZE
    expected = bytearray(kernel.SK_BUFF_SIZE)
    struct.pack_into("<I", expected, SKB_IFINDEX, 1)  # lo
    struct.pack_into("<I", expected, SKB_WIRE_LEN, len(PACKET))
    assert bare.ctx_out == bytes(expected)


@pytest.mark.kernel
def test_no_ctx_out_when_not_requested() -> None:
    with kernel.prog_load(ret_imm(0)) as prog:
        result = kernel.test_run(prog.fd, PACKET, ctx_size_out=0)
    assert result.ctx_out == b""


@pytest.mark.kernel
def test_store_bytes_changes_data_out() -> None:
    program = b"".join(
        [
            insn(ST_MEM_W, dst=10, off=-8, imm=0x44332211),
            insn(ALU64_MOV_K, dst=2, imm=0),  # offset
            insn(ALU64_MOV_X, dst=3, src=10),
            insn(ALU64_ADD_K, dst=3, imm=-8),  # from
            insn(ALU64_MOV_K, dst=4, imm=4),  # len
            insn(ALU64_MOV_K, dst=5, imm=0),  # flags
            insn(JMP_CALL, imm=HELPER_SKB_STORE_BYTES),
            insn(JMP_EXIT),
        ]
    )
    with kernel.prog_load(program) as prog:
        result = kernel.test_run(prog.fd, PACKET)
    assert result.retval == 0
    assert result.data_out == b"\x11\x22\x33\x44" + PACKET[4:]


def _bump_mark_and_cb0() -> bytes:
    """mark += 1; cb[0] += 0x10; return 0."""
    return b"".join(
        [
            insn(LDX_MEM_W, dst=2, src=1, off=SKB_MARK),
            insn(ALU64_ADD_K, dst=2, imm=1),
            insn(STX_MEM_W, dst=1, src=2, off=SKB_MARK),
            insn(LDX_MEM_W, dst=3, src=1, off=SKB_CB0),
            insn(ALU64_ADD_K, dst=3, imm=0x10),
            insn(STX_MEM_W, dst=1, src=3, off=SKB_CB0),
            ret_imm(0),
        ]
    )


@pytest.mark.kernel
def test_ctx_round_trips_mark_and_cb() -> None:
    with kernel.prog_load(_bump_mark_and_cb0()) as prog:
        result = kernel.test_run(prog.fd, PACKET, ctx=ctx_with(mark=5, cb0=7))
    assert len(result.ctx_out) == kernel.SK_BUFF_SIZE
    assert u32_at(result.ctx_out, SKB_MARK) == 6
    assert u32_at(result.ctx_out, SKB_CB0) == 0x17


@pytest.mark.kernel
def test_repeat_runs_on_the_same_skb_and_times_it() -> None:
    with kernel.prog_load(_bump_mark_and_cb0()) as prog:
        result = kernel.test_run(prog.fd, PACKET, ctx=ctx_with(mark=5), repeat=100)
    assert isinstance(result.duration, int)
    assert result.duration >= 0
    assert u32_at(result.ctx_out, SKB_MARK) == 105


@pytest.mark.kernel
def test_forbidden_ctx_field_is_einval() -> None:
    with kernel.prog_load(ret_imm(0)) as prog, pytest.raises(KernelError) as caught:
        kernel.test_run(prog.fd, PACKET, ctx=ctx_with(len=1))
    assert caught.value.errno == errno.EINVAL
    assert str(caught.value) == "test-run program: Invalid argument (EINVAL)"


@pytest.mark.kernel
def test_truncated_output_is_enospc_in_the_result() -> None:
    with kernel.prog_load(ret_imm(2)) as prog:
        result = kernel.test_run(prog.fd, PACKET, data_size_out=16)
    assert result.errno == errno.ENOSPC
    assert result.retval == 2
    assert result.data_out == PACKET[:16]
    assert result.data_size_out == len(PACKET)
    assert result.ctx_out == b""  # the kernel skips ctx_out after truncating data


@pytest.mark.kernel
def test_short_ctx_out_buffer_is_enospc_with_a_truncated_ctx() -> None:
    with kernel.prog_load(ret_imm(0)) as prog:
        result = kernel.test_run(prog.fd, PACKET, ctx=ctx_with(mark=9), ctx_size_out=16)
    assert result.errno == errno.ENOSPC
    assert result.data_out == PACKET
    assert result.ctx_out == ctx_with(mark=9)[:16]


@pytest.mark.kernel
def test_run_on_a_closed_fd_is_ebadf() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(KernelError) as caught:
        kernel.test_run(fd, PACKET)
    assert caught.value.errno == errno.EBADF


# --- maps ------------------------------------------------------------------------------------


def _key(n: int) -> bytes:
    return struct.pack("<I", n)


@pytest.mark.kernel
def test_hash_map_round_trip() -> None:
    with kernel.map_create(MAP_TYPE_HASH, 4, 8, 16, name="tcemu_hash") as m:
        assert (m.key_size, m.value_size, m.max_entries) == (4, 8, 16)
        for n in (1, 2, 3):
            kernel.map_update(m.fd, _key(n), struct.pack("<Q", n * 100))
        assert kernel.map_lookup(m.fd, _key(2), 8) == struct.pack("<Q", 200)
        assert kernel.map_lookup(m.fd, _key(9), 8) is None

        keys, key = [], kernel.map_get_next_key(m.fd, None, 4)
        while key is not None:
            keys.append(key)
            key = kernel.map_get_next_key(m.fd, key, 4)
        assert sorted(keys) == [_key(1), _key(2), _key(3)]

        kernel.map_delete(m.fd, _key(2))
        assert kernel.map_lookup(m.fd, _key(2), 8) is None
        with pytest.raises(KernelError) as caught:
            kernel.map_delete(m.fd, _key(2))
        assert caught.value.errno == errno.ENOENT


@pytest.mark.kernel
def test_map_update_flags_are_enforced() -> None:
    with kernel.map_create(MAP_TYPE_HASH, 4, 4, 4) as m:
        kernel.map_update(m.fd, _key(1), _key(10), kernel.BPF_NOEXIST)
        with pytest.raises(KernelError, match=r"update map element: .*\(EEXIST\)"):
            kernel.map_update(m.fd, _key(1), _key(11), kernel.BPF_NOEXIST)
        with pytest.raises(KernelError) as caught:
            kernel.map_update(m.fd, _key(2), _key(20), kernel.BPF_EXIST)
        assert caught.value.errno == errno.ENOENT


@pytest.mark.kernel
def test_array_map_cannot_delete() -> None:
    with kernel.map_create(MAP_TYPE_ARRAY, 4, 4, 2) as m:
        assert kernel.map_lookup(m.fd, _key(1), 4) == bytes(4)
        with pytest.raises(KernelError) as caught:
            kernel.map_delete(m.fd, _key(0))
        assert caught.value.errno == errno.EINVAL


@pytest.mark.kernel
def test_bad_map_create_raises() -> None:
    with pytest.raises(KernelError, match=r"^create map: ") as caught:
        kernel.map_create(MAP_TYPE_ARRAY, 4, 4, 0)
    assert caught.value.errno == errno.EINVAL


@pytest.mark.kernel
def test_program_reads_a_map_through_a_pseudo_map_fd() -> None:
    with kernel.map_create(MAP_TYPE_ARRAY, 4, 4, 1) as m:
        kernel.map_update(m.fd, _key(0), _key(0x12345678))
        program = b"".join(
            [
                insn(ST_MEM_W, dst=10, off=-4, imm=0),  # key = 0
                insn(ALU64_MOV_X, dst=2, src=10),
                insn(ALU64_ADD_K, dst=2, imm=-4),
                insn(LD_IMM64, dst=1, src=PSEUDO_MAP_FD, imm=m.fd),
                insn(0),
                insn(JMP_CALL, imm=HELPER_MAP_LOOKUP_ELEM),
                insn(JMP_JEQ_K, dst=0, off=2, imm=0),
                insn(LDX_MEM_W, dst=0, src=0, off=0),
                insn(JMP_EXIT),
                ret_imm(0xFF),
            ]
        )
        with kernel.prog_load(program) as prog:
            result = kernel.test_run(prog.fd, PACKET)
    assert result.retval == 0x12345678
