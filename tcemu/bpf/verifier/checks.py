"""Per-instruction memory rules: loads and stores through every pointer type.

Mirrors kernel/bpf/verifier.c ``check_mem_access`` and what it calls:
``check_ctx_access`` (through the one ``struct __sk_buff`` table,
:func:`tcemu.skb.check_ctx_access`),
``check_packet_access``, ``check_map_access``, ``check_mem_region_access``,
``check_stack_access_within_bounds``, ``check_stack_write_fixed_off`` and
``check_stack_read_fixed_off``, for a privileged (CAP_BPF + CAP_PERFMON) loader:
uninitialised stack may be read and pointers may be spilled and compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu.bpf.uapi import BpfMapType
from tcemu.bpf.verifier.state import (
    BPF_REG_SIZE,
    MAX_BPF_STACK,
    FuncState,
    RegState,
    RegType,
    StackSlot,
)
from tcemu.bpf.verifier.tnum import U64, t_add, t_const, t_is_const, t_str
from tcemu.skb import check_ctx_access

if TYPE_CHECKING:
    from tcemu.bpf.verifier.explore import Verifier

__all__ = ["BPF_MAX_VAR_OFF", "Reject", "check_helper_mem", "check_mem_access"]

BPF_MAX_VAR_OFF = 1 << 29
BPF_F_RDONLY_PROG = 0x80
_CTX_POINTERS = {"data": RegType.PKT, "data_end": RegType.PKT_END,
                 "data_meta": RegType.PKT_META}


class Restart(Exception):  # noqa: N818 - control flow, not a failure
    """A path used a scalar for a decision at an insn not yet known to demand precision:
    the exploration starts over with it (see ``cfg.precision``)."""

    def __init__(self, pc: int) -> None:
        super().__init__(pc)
        self.pc = pc


class Reject(Exception):  # noqa: N818 - the kernel's verdict, not a failure
    """The verifier rejects the program with ``message`` (the kernel's log line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.idx: int | None = None


def _mem_region(reg: RegState, regno: int, off: int, size: int, mem_size: int,
                zero_ok: bool) -> None:
    """``__check_mem_access``."""
    size_ok = size > 0 or (size == 0 and zero_ok)
    if off >= 0 and size_ok and off + size <= mem_size:
        return
    if reg.type == RegType.MAP_VALUE:
        raise Reject(f"invalid access to map value, value_size={mem_size} off={off} "
                     f"size={size}")
    if reg.type == RegType.MAP_KEY:
        raise Reject(f"invalid access to map key, key_size={mem_size} off={off} size={size}")
    if reg.is_pkt or reg.type == RegType.PKT_END:
        raise Reject(f"invalid access to packet, off={off} size={size}, "
                     f"R{regno}(id={reg.id},off={off},r={mem_size})")
    raise Reject(f"invalid access to memory, mem_size={mem_size} off={off} size={size}")


def check_mem_region(reg: RegState, regno: int, off: int, size: int, mem_size: int,
                     zero_ok: bool) -> None:
    """``check_mem_region_access``: a fixed offset plus the register's variable part."""
    if reg.smin < 0 and (reg.smin == -(1 << 63) or off + reg.smin < 0
                         or not -(1 << 31) <= off + reg.smin < (1 << 31)):
        raise Reject(f"R{regno} min value is negative, either use unsigned index or do a "
                     "if (index >=0) check.")
    try:
        _mem_region(reg, regno, reg.smin + off, size, mem_size, zero_ok)
    except Reject as err:
        raise Reject(f"{err.message}\nR{regno} min value is outside of the allowed memory "
                     "range") from None
    if reg.umax >= BPF_MAX_VAR_OFF:
        raise Reject(f"R{regno} unbounded memory access, make sure to bounds check any "
                     "such access")
    try:
        _mem_region(reg, regno, reg.umax + off, size, mem_size, zero_ok)
    except Reject as err:
        raise Reject(f"{err.message}\nR{regno} max value is outside of the allowed memory "
                     "range") from None


def check_packet(reg: RegState, regno: int, off: int, size: int, zero_ok: bool) -> None:
    if reg.smin < 0:
        raise Reject(f"R{regno} min value is negative, either use unsigned index or do a "
                     "if (index >=0) check.")
    try:
        if reg.range < 0:
            raise Reject("")
        _mem_region(reg, regno, off, size, reg.range, zero_ok)
    except Reject as err:
        v_err = Reject(f"R{regno} offset is outside of the packet")
        v_err.message = (err.message + "\n" if err.message else "") + v_err.message
        raise v_err from None


def _stack_bounds(reg: RegState, regno: int, off: int, size: int, kind: str) -> tuple[int, int]:
    """``check_stack_access_within_bounds``: the accessed [min, max) fp offsets."""
    if t_is_const(reg.var_off):
        from tcemu.bpf.verifier.state import s64
        lo = s64(reg.var_off[0]) + off
        hi = lo + size
    else:
        if reg.smax >= BPF_MAX_VAR_OFF or reg.smin <= -BPF_MAX_VAR_OFF:
            raise Reject(f"invalid unbounded variable-offset{kind} stack R{regno}")
        lo = reg.smin + off
        hi = reg.smax + off + size
    if lo < -MAX_BPF_STACK or hi > 0 or size < 0:
        if t_is_const(reg.var_off):
            raise Reject(f"invalid{kind} stack R{regno} off={off} size={size}")
        raise Reject(f"invalid variable-offset{kind} stack R{regno} "
                     f"var_off={t_str(reg.var_off)} off={off} size={size}")
    return lo, hi


def _stack_frame(v: Verifier, reg: RegState) -> FuncState:
    return v.cur.frames[reg.frameno]


def _stack_write(v: Verifier, frame: FuncState, off: int, size: int,
                 value: RegState | None, imm: int | None) -> None:
    """``check_stack_write_fixed_off``."""
    slot = -off - 1
    spi = slot // BPF_REG_SIZE
    frame.grow_stack(spi + 1)
    st = frame.stack[spi]
    v.scratch_slot(spi)
    aligned = off % BPF_REG_SIZE == 0
    if value is not None and aligned and value.is_scalar:
        fits = value.umax.bit_length() <= 8 * size
        if fits:
            v.assign_scalar_id(value)
        _save_spill(st, value, size)
        if not fits:
            st.spilled.id = 0
        return
    if value is None and imm is not None and aligned:
        fake = RegState()
        fake.mark_const_scalar(imm)
        _save_spill(st, fake, size)
        return
    if value is not None and value.is_pointer:
        if size != BPF_REG_SIZE:
            raise Reject("invalid size of register spill")
        if frame is not v.cur.cur and value.type == RegType.STACK:
            raise Reject("cannot spill pointers to stack into stack frame of the caller")
        _save_spill(st, value, size)
        return
    kind = StackSlot.MISC
    st.spilled = RegState()
    if st.is_spill() or StackSlot.SPILL in st.slot_type:
        st.slot_type = [StackSlot.MISC if t == StackSlot.SPILL else t for t in st.slot_type]
    if (value is not None and value.is_scalar and value.var_off == (0, 0)) or (
            value is None and imm == 0):
        kind = StackSlot.ZERO
    for i in range(size):
        st.slot_type[(slot - i) % BPF_REG_SIZE] = kind


def _save_spill(st: StackSlot, reg: RegState, size: int) -> None:
    st.spilled = reg.copy()
    for i in range(BPF_REG_SIZE, BPF_REG_SIZE - size, -1):
        st.slot_type[i - 1] = StackSlot.SPILL
    for i in range(BPF_REG_SIZE - size, 0, -1):
        if st.slot_type[i - 1] == StackSlot.SPILL:
            st.slot_type[i - 1] = StackSlot.MISC


def _stack_read(v: Verifier, frame: FuncState, off: int, size: int, dst: RegState | None,
                ) -> None:
    """``check_stack_read_fixed_off``."""
    slot = -off - 1
    spi = slot // BPF_REG_SIZE
    v.scratch_slot(spi)
    st = frame.stack[spi] if spi < len(frame.stack) else StackSlot()
    types = st.slot_type
    if st.is_spill():
        spill_size = 1
        i = BPF_REG_SIZE - 1
        while i > 0 and types[i - 1] == StackSlot.SPILL:
            spill_size += 1
            i -= 1
        reg = st.spilled
        if size != BPF_REG_SIZE or spill_size != BPF_REG_SIZE:
            if not reg.is_scalar:
                raise Reject("invalid size of register fill")
            if dst is None:
                return
            if size <= spill_size and off % BPF_REG_SIZE == 0:
                width = reg.umax.bit_length()
                if size == 4 and spill_size == 4 and width <= 32:
                    # The slot gets an id, so the filled register stays linked to it.
                    v.assign_scalar_id(reg)
                dst.assign(reg)
                if width > size * 8:
                    dst.id = 0   # a narrowing fill breaks the link
                return
            zeros = spills = 0
            for i in range(size):
                t = types[(slot - i) % BPF_REG_SIZE]
                spills += t == StackSlot.SPILL
                zeros += t == StackSlot.ZERO
            if (spills == size and reg.var_off == (0, 0)) or zeros == size:
                dst.mark_const_scalar(0)
            else:
                dst.mark_unknown()
            return
        if dst is not None:
            dst.assign(reg)
        return
    if dst is not None:
        zeros = sum(types[(slot - i) % BPF_REG_SIZE] == StackSlot.ZERO for i in range(size))
        if zeros == size:
            dst.mark_const_scalar(0)
        else:
            dst.mark_unknown()


def _check_stack(v: Verifier, reg: RegState, regno: int, off: int, size: int, write: bool,
                 value: RegState | None, imm: int | None, dst: RegState | None) -> None:
    lo, hi = _stack_bounds(reg, regno, off, size, " write to" if write else " read from")
    frame = _stack_frame(v, reg)
    v.note_stack_depth(frame, -lo)
    if not t_is_const(reg.var_off):
        _var_stack(v, frame, lo, hi, write, dst)
        return
    if write:
        _stack_write(v, frame, lo, size, value, imm)
    else:
        _stack_read(v, frame, lo, size, dst)


def _var_stack(v: Verifier, frame: FuncState, lo: int, hi: int, write: bool,
               dst: RegState | None) -> None:
    frame.grow_stack((-lo + 7) // 8)
    for off in range(lo, hi):
        slot = -off - 1
        st = frame.stack[slot // 8]
        if write:
            if st.is_spill():
                st.slot_type = [StackSlot.MISC if t == StackSlot.SPILL else t
                                for t in st.slot_type]
                st.spilled = RegState()
            st.slot_type[slot % 8] = StackSlot.MISC
    if dst is not None:
        dst.mark_unknown()


def _map_value(v: Verifier, reg: RegState, regno: int, off: int, size: int, write: bool,
               dst: RegState | None) -> None:
    m = reg.map
    assert m is not None
    if write and m.flags & BPF_F_RDONLY_PROG:
        raise Reject(f"write into map forbidden, value_size={m.value_size} off={off} "
                     f"size={size}")
    check_mem_region(reg, regno, off, size, m.value_size, False)
    if dst is None:
        return
    if m.frozen and m.flags & BPF_F_RDONLY_PROG and t_is_const(reg.var_off) and m.rodata:
        start = reg.var_off[0] + off
        data = m.rodata[start:start + size]
        if len(data) == size:
            dst.mark_const_scalar(int.from_bytes(data, "little"))
            return
    dst.mark_unknown()


def _ctx(v: Verifier, reg: RegState, regno: int, off: int, size: int, write: bool,
         dst: RegState | None) -> None:
    if reg.off < 0:
        raise Reject(f"negative offset ctx ptr R{regno} off={reg.off} disallowed")
    if reg.off:
        raise Reject(f"dereference of modified ctx ptr R{regno} off={reg.off} disallowed")
    if not t_is_const(reg.var_off) or reg.var_off[0]:
        raise Reject(f"variable ctx access var_off={t_str(reg.var_off)} disallowed")
    fld = check_ctx_access(off, size, write, v.prog_type)
    if fld is None:
        v.linfo()
        raise Reject(f"invalid bpf_context access off={off} size={size}")
    if dst is None:
        return
    kind = _CTX_POINTERS.get(fld.name) if fld.kind == "pointer" else None
    if kind is not None:
        dst.mark_ptr(kind)
    elif fld.kind == "sk":
        dst.mark_ptr(RegType.SOCK)
        dst.maybe_null = True
        dst.id = v.new_id()
    else:
        dst.mark_unknown()


def check_mem_access(v: Verifier, regno: int, off: int, size: int, write: bool,
                     value: RegState | None = None, imm: int | None = None,
                     dst: RegState | None = None, signed: bool = False,
                     strict: bool = False) -> None:
    """``check_mem_access`` for a load (``dst`` gets the value) or a store."""
    reg = v.cur.cur.regs[regno]
    _check_alignment(v, reg, off, size, strict)
    off += reg.off
    rtype = reg.type
    if rtype == RegType.MAP_VALUE and not reg.maybe_null:
        _map_value(v, reg, regno, off, size, write, dst)
    elif rtype == RegType.MAP_KEY:
        if write:
            raise Reject(f"write to change key R{regno} not allowed")
        assert reg.map is not None
        check_mem_region(reg, regno, off, size, reg.map.key_size, False)
        if dst is not None:
            dst.mark_unknown()
    elif rtype == RegType.MEM and not reg.maybe_null:
        check_mem_region(reg, regno, off, size, reg.mem_size, False)
        if dst is not None:
            dst.mark_unknown()
    elif rtype == RegType.CTX:
        _ctx(v, reg, regno, off - reg.off, size, write, dst)
    elif rtype == RegType.STACK:
        _check_stack(v, reg, regno, off, size, write, value, imm, dst)
    elif rtype in (RegType.PKT, RegType.PKT_META):
        if write and not v.may_write_pkt():
            raise Reject("cannot write into packet")
        check_packet(reg, regno, off, size, False)
        v.note_pkt_access(off + reg.umax + size - 1)
        if dst is not None:
            dst.mark_unknown()
    elif rtype in (RegType.SOCK, RegType.SOCKET) and not reg.maybe_null:
        if write:
            raise Reject(f"R{regno} cannot write into {reg.type_str()}")
        if reg.smin < 0:
            raise Reject(f"R{regno} min value is negative, either use unsigned index or do "
                         "a if (index >=0) check.")
        if not _sock_ok(off, size, rtype == RegType.SOCK):
            raise Reject(f"R{regno} invalid {reg.type_str()} access off={off} size={size}")
        if dst is not None:
            dst.mark_unknown()
    elif rtype == RegType.MAP_PTR and not reg.maybe_null:
        _map_ptr_access(reg, regno, off, write)
        if dst is not None:
            dst.mark_unknown()
    else:
        raise Reject(f"R{regno} invalid mem access '{reg.type_str()}'")
    if dst is not None and size < 8 and dst.is_scalar:
        if signed:
            _sign_extend(dst, size)
        else:
            dst.coerce_to_size(size)


_ALIGN_DESC = {RegType.MAP_KEY: "key ", RegType.MAP_VALUE: "value ", RegType.CTX: "context ",
               RegType.STACK: "stack ", RegType.SOCK: "sock_common "}


def _tnum_text(t: tuple[int, int]) -> str:
    return str(t[0]) if t_is_const(t) else t_str(t)


def _check_alignment(v: Verifier, reg: RegState, off: int, size: int, once: bool) -> None:
    """``check_ptr_alignment``: stack always, everything else under strict alignment."""
    strict = v.strict_alignment or once or reg.type == RegType.STACK
    if not strict or size == 1:
        return
    if reg.is_pkt:
        total = t_add(reg.var_off, t_const(2 + reg.off + off))
        if (total[0] | total[1]) & (size - 1):
            raise Reject(f"misaligned packet access off 2+{_tnum_text(reg.var_off)}"
                         f"+{reg.off}+{off} size {size}")
        return
    total = t_add(reg.var_off, t_const(reg.off + off))
    if (total[0] | total[1]) & (size - 1):
        desc = _ALIGN_DESC.get(reg.type, "")
        raise Reject(f"misaligned {desc}access off {_tnum_text(reg.var_off)}+{reg.off}"
                     f"+{off} size {size}")


# struct bpf_sock: offsets of the u32 fields that allow narrow loads
_SOCK_NARROW = {4, 8, 12, 24, 28, 32, 36, 40, 44, 52, 56, 60, 64, 68, 72, 76}
_SOCK_SIZE = 80


def _sock_ok(off: int, size: int, common: bool) -> bool:
    """``bpf_sock_is_valid_access`` / ``bpf_sock_common_is_valid_access`` (net/core/filter.c):
    sock_common has no type, protocol, mark or priority."""
    if (common and 8 <= off < 24) or off < 0 or off >= _SOCK_SIZE or off % size:
        return False
    if 48 <= off < 50:                       # dst_port: __be16 (or the u32 around it)
        return (size == 4 and off == 48) or (size in (1, 2) and off + size <= 50)
    if 50 <= off < 52:
        return False
    base = off & ~3
    if base in _SOCK_NARROW:
        return size in (1, 2, 4)
    return size == 4


# The struct behind each map type's ops->map_btf_id.
_MAP_STRUCTS = {BpfMapType.HASH: "bpf_htab", BpfMapType.PERCPU_HASH: "bpf_htab",
                BpfMapType.LRU_HASH: "bpf_htab", BpfMapType.LRU_PERCPU_HASH: "bpf_htab",
                BpfMapType.HASH_OF_MAPS: "bpf_htab", BpfMapType.RINGBUF: "bpf_ringbuf_map",
                BpfMapType.LPM_TRIE: "lpm_trie", BpfMapType.QUEUE: "bpf_queue_stack",
                BpfMapType.STACK: "bpf_queue_stack"}


def _map_ptr_access(reg: RegState, regno: int, off: int, write: bool) -> None:
    """``check_ptr_to_map_access``.

    KERNEL-DIFF: the kernel then checks the access against the map's struct in the
    kernel's own BTF (``btf_struct_access``: members, pointer members); tcemu has no
    kernel BTF, so any in-struct read gives an unknown scalar."""
    assert reg.map is not None
    tname = _MAP_STRUCTS.get(BpfMapType(reg.map.map_type), "bpf_array")
    if off < 0:
        raise Reject(f"R{regno} is {tname} invalid negative access: off={off}")
    if write:
        raise Reject(f"only read from {tname} is supported")


def _sign_extend(r: RegState, size: int) -> None:
    """``coerce_reg_to_size_sx`` (kept simple: constants stay exact, else the type range)."""
    bits = size * 8
    if r.is_const():
        v = r.var_off[0] & ((1 << bits) - 1)
        if v >> (bits - 1):
            v -= 1 << bits
        r.mark_const_scalar(v)
        return
    top = 1 << (bits - 1)
    if r.umax < top:
        r.coerce_to_size(size)
        return
    r.mark_unknown()
    r.smin, r.smax = -top, top - 1
    r.s32_min, r.s32_max = -top, top - 1
    r.sync()


def check_helper_mem(v: Verifier, regno: int, size: int, write: bool, zero_ok: bool) -> None:
    """``check_helper_mem_access``: ``size`` bytes at the pointer in ``regno``."""
    reg = v.cur.cur.regs[regno]
    rtype = reg.type
    if rtype in (RegType.PKT, RegType.PKT_META):
        check_packet(reg, regno, reg.off, size, zero_ok)
        if write and not v.may_write_pkt():
            raise Reject("cannot write into packet")
        return
    if rtype == RegType.MAP_VALUE:
        m = reg.map
        assert m is not None
        if write and m.flags & BPF_F_RDONLY_PROG:
            raise Reject(f"write into map forbidden, value_size={m.value_size} "
                         f"off={reg.off} size={size}")
        check_mem_region(reg, regno, reg.off, size, m.value_size, zero_ok)
        return
    if rtype == RegType.MAP_KEY:
        assert reg.map is not None
        check_mem_region(reg, regno, reg.off, size, reg.map.key_size, zero_ok)
        return
    if rtype == RegType.MEM:
        check_mem_region(reg, regno, reg.off, size, reg.mem_size, zero_ok)
        return
    if rtype == RegType.STACK:
        if size == 0 and zero_ok:
            return
        lo, hi = _stack_bounds(reg, regno, reg.off, size, " write to" if write else " read from")
        frame = _stack_frame(v, reg)
        v.note_stack_depth(frame, -lo)
        if write:
            _var_stack(v, frame, lo, hi, True, None)
            if t_is_const(reg.var_off):
                # check_helper_call writes a raw-mode buffer byte by byte through
                # check_mem_access: each fixed-offset slot is scratched (printed).
                for spi in range((-hi) // BPF_REG_SIZE, (-lo + 7) // BPF_REG_SIZE):
                    v.scratch_slot(spi)
        return
    if zero_ok and size == 0 and reg.is_scalar and reg.var_off == (0, 0):
        return
    raise Reject(f"R{regno} type={reg.type_str()} expected=fp")


_ = U64
