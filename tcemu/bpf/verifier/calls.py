"""Calls and exits: helper calls against the registry, bpf-to-bpf calls, program exit.

Mirrors kernel/bpf/verifier.c ``check_helper_call`` / ``check_func_arg`` /
``check_mem_size_reg`` / ``check_map_func_compatibility``, ``check_func_call`` /
``prepare_func_exit`` (8 frames) and ``check_return_code`` / ``check_reference_leak``.
Helper signatures come from :data:`tcemu.bpf.helpers.REGISTRY`, availability per program
type from :data:`tcemu.bpf.helpers.AVAILABLE`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu.bpf import isa
from tcemu.bpf.helpers import AVAILABLE, REGISTRY, ArgType, HelperSpec, RetType
from tcemu.bpf.helpers.printk import check_format
from tcemu.bpf.ops import Call, CallX
from tcemu.bpf.uapi import HELPER_ARGC, HELPER_NAMES, BpfFunc, BpfMapType
from tcemu.bpf.verifier.checks import Reject, check_helper_mem
from tcemu.bpf.verifier.log import state_str
from tcemu.bpf.verifier.state import FuncState, MapInfo, RegState, RegType, StackSlot, s64

if TYPE_CHECKING:
    from tcemu.bpf.verifier.explore import Verifier

__all__ = ["MAX_CALL_FRAMES", "TRACE_PRINTK_BANNER", "check_call", "check_exit"]

_STARS = "*" * 58
_NOTICE = "**   NOTICE NOTICE NOTICE NOTICE NOTICE NOTICE NOTICE   **"
_BLANK = "**" + " " * 54 + "**"
TRACE_PRINTK_BANNER: tuple[str, ...] = (
    _STARS, _NOTICE, _BLANK,
    "** trace_printk() being used. Allocating extra memory.  **", _BLANK,
    "** This means that this is a DEBUG kernel and it is     **",
    "** unsafe for production use.                           **", _BLANK,
    "** If you see this message and you are not debugging    **",
    "** the kernel, report this immediately to your vendor!  **", _BLANK,
    _NOTICE, _STARS)
"""kernel/trace/trace.c ``trace_printk_init_buffers``: what dmesg shows (once per boot)."""

MAX_CALL_FRAMES = 8
BPF_MAX_VAR_SIZ = 1 << 29
_MEM_TYPES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
_MEM_REG_TYPES = (RegType.STACK, RegType.PKT, RegType.PKT_META, RegType.MAP_KEY,
                  RegType.MAP_VALUE, RegType.MEM)
_SIZE_ARGS = (ArgType.CONST_SIZE, ArgType.CONST_SIZE_OR_ZERO)
_MEM_ARGS = (ArgType.PTR_TO_MEM, ArgType.PTR_TO_UNINIT_MEM)

# check_map_func_compatibility: helpers that need one map type, and map types that
# allow only some helpers.
_F = BpfFunc
_M = BpfMapType
_HELPER_MAPS: dict[int, tuple[int, ...]] = {
    _F.tail_call: (_M.PROG_ARRAY,),
    _F.perf_event_output: (_M.PERF_EVENT_ARRAY,),
    _F.ringbuf_output: (_M.RINGBUF,),
    _F.ringbuf_reserve: (_M.RINGBUF,),
    _F.ringbuf_query: (_M.RINGBUF,),
    _F.map_push_elem: (_M.QUEUE, _M.STACK),
    _F.map_pop_elem: (_M.QUEUE, _M.STACK),
    _F.map_peek_elem: (_M.QUEUE, _M.STACK),
    _F.map_lookup_percpu_elem: (_M.PERCPU_ARRAY, _M.PERCPU_HASH, _M.LRU_PERCPU_HASH),
}
_MAP_HELPERS: dict[int, tuple[int, ...]] = {
    _M.PROG_ARRAY: (_F.tail_call,),
    _M.PERF_EVENT_ARRAY: (_F.perf_event_output, _F.perf_event_read,
                          _F.perf_event_read_value, _F.skb_output, _F.xdp_output),
    _M.RINGBUF: (_F.ringbuf_output, _F.ringbuf_reserve, _F.ringbuf_query),
    _M.QUEUE: (_F.map_peek_elem, _F.map_pop_elem, _F.map_push_elem),
    _M.STACK: (_F.map_peek_elem, _F.map_pop_elem, _F.map_push_elem),
    _M.ARRAY_OF_MAPS: (_F.map_lookup_elem,),
    _M.HASH_OF_MAPS: (_F.map_lookup_elem,),
}


# Helpers whose proto sets ``pkt_access``: only they may take packet pointers.
_PKT_ACCESS = frozenset({_F.map_lookup_elem, _F.map_update_elem, _F.map_delete_elem,
                         _F.map_push_elem, _F.map_pop_elem, _F.map_peek_elem, _F.csum_diff,
                         _F.sk_lookup_tcp, _F.sk_lookup_udp, _F.skc_lookup_tcp,
                         _F.tcp_check_syncookie, _F.tcp_gen_syncookie,
                         _F.map_lookup_percpu_elem})
# Memory arguments declared PTR_MAYBE_NULL (NULL allowed with a zero size).
_NULLABLE = frozenset({(int(_F.csum_diff), 1), (int(_F.csum_diff), 3), (int(_F.snprintf), 4),
                       (int(_F.trace_vprintk), 3), (int(_F.redirect_neigh), 2)})
# ARG_PTR_TO_FIXED_SIZE_MEM sizes where the registry's ArgType.PTR_TO_LONG (8) is wrong.
_FIXED_SIZE: dict[tuple[int, int], int] = {(int(_F.check_mtu), 3): 4}


# Socket lookups and release: the registry records them without a signature (tcemu's
# implementations find nothing); the verifier needs the kernel's.
_LOOKUP_ARGS = (ArgType.PTR_TO_CTX, ArgType.PTR_TO_MEM, ArgType.CONST_SIZE_OR_ZERO,
                ArgType.ANYTHING, ArgType.ANYTHING)
_SOCKET_RET = {int(_F.sk_lookup_tcp): RegType.SOCKET, int(_F.sk_lookup_udp): RegType.SOCKET,
               int(_F.skc_lookup_tcp): RegType.SOCK}
# Helpers taking ARG_PTR_TO_SOCK_COMMON and returning RET_PTR_TO_SOCKET_OR_NULL without a
# reference of their own; bpf_sk_fullsock is a cast (is_ptr_cast_function): its result
# shares the argument's reference.
_SOCK_TO_SOCKET = {int(_F.sk_fullsock): True, int(_F.get_listener_sock): False}


def _name(func_id: int) -> str:
    return f"{HELPER_NAMES.get(func_id, 'unknown')}#{func_id}"


def check_call(v: Verifier, op: Call | CallX) -> None:
    if isinstance(op, CallX):
        raise Reject(f"unknown opcode {op.insn.code:02x}")
    if op.kind == isa.PSEUDO_CALL:
        _call_subprog(v, op)
        return
    if op.kind == isa.PSEUDO_KFUNC_CALL:
        raise Reject("calling kernel function is not supported without CONFIG_DEBUG_INFO_BTF")
    _check_helper(v, op)
    v.print_state()
    v.insn_idx = op.pc + 1


class _Meta:
    def __init__(self) -> None:
        self.map: MapInfo | None = None
        self.mem_size = 0
        self.release_ref = 0
        self.func_subprog = -1
        self.const_key = -1


def _check_helper(v: Verifier, op: Call) -> None:
    func_id = op.imm
    if func_id not in HELPER_NAMES or func_id <= 0:
        raise Reject(f"invalid func {_name(func_id)}")
    if func_id not in AVAILABLE.get(v.prog_type, frozenset()):
        raise Reject(f"program of this type cannot use helper {_name(func_id)}")
    spec = REGISTRY.get(func_id)
    if spec is None:
        # KERNEL-DIFF: a helper tcemu does not implement has no signature to check here;
        # the arguments of its documented prototype are only required to be initialised.
        spec = HelperSpec(func_id, (ArgType.ANYTHING,) * HELPER_ARGC.get(func_id, 5))
    if func_id in _SOCKET_RET:
        spec = HelperSpec(func_id, _LOOKUP_ARGS)
    if func_id == _F.sk_release:
        spec = HelperSpec(func_id, ())
    if func_id in (_F.trace_printk, _F.trace_vprintk):
        # Fetching the proto allocates the trace_printk buffers: the kernel log (not the
        # verifier log) gets the debug-only banner.
        v.notices = TRACE_PRINTK_BANNER
    if spec.gpl_only and not v.gpl:
        raise Reject("cannot call GPL-restricted function from non-GPL compatible program")
    meta = _Meta()
    if func_id in (_F.spin_lock, _F.spin_unlock):
        _check_spin_lock(v, func_id == _F.spin_lock)
    for i, arg in enumerate(spec.args):
        _check_arg(v, spec, i + 1, arg, meta)
    if func_id == _F.tail_call and meta.map is not None and (
            meta.map.map_type != _M.PROG_ARRAY):
        raise Reject("expected prog array map for tail call")
    _check_map_compat(meta.map, func_id)
    if meta.func_subprog >= 0 and func_id in (_F.loop, _F.for_each_map_elem):
        _push_callback(v, op, func_id, meta)
    if func_id == _F.snprintf:
        _check_snprintf(v)
    if func_id == _F.sk_release:
        meta.release_ref = _check_sk_release(v)
    sock_ref = _check_sock_common(v) if func_id in _SOCK_TO_SOCKET else 0
    if meta.release_ref:
        _release(v, meta.release_ref)
    regs = v.regs
    for r in range(6):
        regs[r].mark_not_init()
        v.scratch_reg(r)
    if func_id in _SOCKET_RET:
        _acquire(v, regs[0], _SOCKET_RET[func_id])
    elif func_id in _SOCK_TO_SOCKET:
        regs[0].mark_ptr(RegType.SOCKET)
        regs[0].maybe_null = True
        regs[0].id = v.new_id()
        regs[0].ref_obj_id = sock_ref if _SOCK_TO_SOCKET[func_id] else 0
    else:
        _set_ret(v, spec, meta, regs[0])
    if func_id == _F.tail_call:
        v.tail_call_subprogs.add(v.cur.cur.subprog)
    if spec.changes_pkt_data:
        for reg in v.cur.all_regs():
            if reg.type in (RegType.PKT, RegType.PKT_META, RegType.PKT_END):
                reg.mark_unknown()


def _check_snprintf(v: Verifier) -> None:
    """``check_bpf_snprintf_call``: the constant format (a NUL-terminated string of a frozen
    read-only map) must pass ``bpf_bprintf_prepare`` with data_len / 8 arguments."""
    fmt_reg, len_reg = v.regs[3], v.regs[5]
    data_len = len_reg.var_off[0]
    if data_len % 8:
        raise Reject("")  # -EINVAL without a log line
    m = fmt_reg.map
    if m is None or m.rodata is None:
        return
    start = fmt_reg.off + fmt_reg.var_off[0]
    if not check_format(m.rodata[start:], data_len // 8):
        raise Reject("Invalid format string")


def _check_sock_common(v: Verifier) -> int:
    """ARG_PTR_TO_SOCK_COMMON in R1; the reference it carries (0 if none)."""
    reg = v.check_reg_src(1)
    if reg.is_pkt:
        raise Reject("helper access to the packet is not allowed")
    _expect(reg, 1, reg.type in (RegType.SOCK, RegType.SOCKET) and not reg.maybe_null,
            "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_")
    return reg.ref_obj_id


def _check_sk_release(v: Verifier) -> int:
    """R1 as :func:`_check_sock_common` checks it, and holding a reference to release."""
    ref = _check_sock_common(v)
    if not ref:
        raise Reject("R1 must be referenced when passed to release function")
    return ref


def _acquire(v: Verifier, r0: RegState, rtype: str) -> None:
    """A nullable pointer holding a reference (``acquire_reference``)."""
    r0.mark_ptr(rtype)
    r0.maybe_null = True
    v.new_id()
    r0.id = v.new_id()
    r0.ref_obj_id = r0.id
    v.cur.refs.append((r0.id, v.insn_idx))


def _check_spin_lock(v: Verifier, is_lock: bool) -> None:
    """``process_spin_lock``: the lock must be the value's ``struct bpf_spin_lock``; taking
    it records the held lock (``acquire_lock_state``: a reference named by the register's
    id), releasing it must name the same lock."""
    reg = v.check_reg_src(1)
    if reg.is_pkt:
        raise Reject("helper access to the packet is not allowed")
    _expect(reg, 1, reg.type == RegType.MAP_VALUE and not reg.maybe_null, "map_value, ptr_")
    if not reg.is_const():
        raise Reject("R1 doesn't have constant offset. bpf_spin_lock has to be at the "
                     "constant offset")
    m = reg.map
    assert m is not None
    if not m.btf:
        raise Reject(f"map '{m.name}' has to have BTF in order to use bpf_spin_lock")
    if m.spin_lock_off < 0:
        raise Reject(f"map '{m.name}' has no valid bpf_spin_lock")
    off = reg.var_off[0] + reg.off
    if off != m.spin_lock_off:
        raise Reject(f"off {off} doesn't point to 'struct bpf_spin_lock' that is at "
                     f"{m.spin_lock_off}")
    st = v.cur
    if is_lock:
        if st.lock is not None:
            raise Reject("Locking two bpf_spin_locks are not allowed")
        st.lock = (reg.id, m)
        st.refs.append((reg.id, v.insn_idx))
        return
    if st.lock is None:
        raise Reject("bpf_spin_unlock without taking a lock")
    if st.lock[0] != reg.id or st.lock[1] is not m:
        raise Reject("bpf_spin_unlock of different lock")
    st.refs = st.ptr_refs()
    st.lock = None


def _check_map_compat(m: MapInfo | None, func_id: int) -> None:
    if m is None:
        return
    needs = _HELPER_MAPS.get(func_id)
    allowed = _MAP_HELPERS.get(m.map_type)
    if (needs is not None and m.map_type not in needs) or (
            allowed is not None and func_id not in allowed):
        raise Reject(f"cannot pass map_type {m.map_type} into func {_name(func_id)}")


def _expect(reg: RegState, regno: int, ok: bool, expected: str) -> None:
    if not ok:
        raise Reject(f"R{regno} type={reg.type_str()} expected={expected}")


def _check_arg(v: Verifier, spec: HelperSpec, regno: int, arg: ArgType, meta: _Meta) -> None:
    reg = v.check_reg_src(regno)
    t = reg.type
    if arg is ArgType.ANYTHING:
        return
    if reg.is_pkt and spec.func_id not in _PKT_ACCESS:
        raise Reject("helper access to the packet is not allowed")
    if arg is ArgType.PTR_TO_CTX:
        _expect(reg, regno, t == RegType.CTX, "ctx")
        if reg.off < 0:
            raise Reject(f"negative offset ctx ptr R{regno} off={reg.off} disallowed")
        if reg.off:
            raise Reject(f"dereference of modified ctx ptr R{regno} off={reg.off} disallowed")
        return
    if arg is ArgType.CONST_MAP_PTR:
        _expect(reg, regno, t == RegType.MAP_PTR and not reg.maybe_null, "map_ptr")
        meta.map = reg.map
        return
    if arg in (ArgType.PTR_TO_MAP_KEY, ArgType.PTR_TO_MAP_VALUE):
        _expect(reg, regno, t in _MEM_REG_TYPES and not reg.maybe_null, _MEM_TYPES)
        if meta.map is None:
            raise Reject("invalid map_ptr to access map->key")
        size = meta.map.key_size if arg is ArgType.PTR_TO_MAP_KEY else meta.map.value_size
        check_helper_mem(v, regno, size, False, False)
        if arg is ArgType.PTR_TO_MAP_KEY:
            meta.const_key = _constant_map_key(v, reg, size)
        return
    if arg in _MEM_ARGS or arg is ArgType.PTR_TO_LONG:
        nullable = (spec.func_id, regno) in _NULLABLE
        ok = (t in _MEM_REG_TYPES and not reg.maybe_null) or (
            nullable and reg.is_scalar and reg.var_off == (0, 0))
        _expect(reg, regno, ok, _MEM_TYPES)
        if arg is ArgType.PTR_TO_LONG:
            size = _FIXED_SIZE.get((spec.func_id, regno), 8)
            check_helper_mem(v, regno, size, True, False)
        return
    if arg in _SIZE_ARGS:
        _expect(reg, regno, reg.is_scalar, "scalar")
        _check_mem_size(v, spec, regno, reg, arg is ArgType.CONST_SIZE_OR_ZERO)
        return
    if arg is ArgType.CONST_ALLOC_SIZE_OR_ZERO:
        _expect(reg, regno, reg.is_scalar, "scalar")
        if not reg.is_const():
            raise Reject(f"R{regno} is not a known constant'")
        meta.mem_size = reg.var_off[0]
        return
    if arg is ArgType.PTR_TO_ALLOC_MEM:
        _expect(reg, regno, t == RegType.MEM and reg.ringbuf and not reg.maybe_null,
                "ringbuf_mem")
        if reg.off:
            raise Reject(f"R{regno} must have zero offset when passed to release func")
        meta.release_ref = reg.ref_obj_id
        return
    if arg is ArgType.PTR_TO_FUNC:
        _expect(reg, regno, t == RegType.FUNC, "func")
        meta.func_subprog = reg.subprog
        return
    if arg is ArgType.PTR_TO_STACK_OR_NULL:
        _expect(reg, regno, t == RegType.STACK or (reg.is_scalar and reg.var_off == (0, 0)),
                "fp")
        return
    if arg is ArgType.PTR_TO_CONST_STR:
        _expect(reg, regno, t == RegType.MAP_VALUE and not reg.maybe_null, "map_value")
        m = reg.map
        if m is None or not (m.flags & 0x80 and m.frozen):
            raise Reject(f"R{regno} does not point to a readonly map'")
        return


def _check_mem_size(v: Verifier, spec: HelperSpec, regno: int, reg: RegState,
                    zero_ok: bool) -> None:
    """``check_mem_size_reg``: the size in ``regno`` bounds the memory in ``regno - 1``."""
    if reg.smin < 0:
        raise Reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
    if reg.umin == 0 and not zero_ok:
        raise Reject(f"R{regno} invalid zero-sized read: u64=[{reg.umin},{reg.umax}]")
    if reg.umax >= BPF_MAX_VAR_SIZ:
        raise Reject(f"R{regno} unbounded memory access, use 'var &= const' or "
                     "'if (var < const)'")
    write = spec.args[regno - 2] is ArgType.PTR_TO_UNINIT_MEM
    check_helper_mem(v, regno - 1, reg.umax, write, zero_ok)


def _constant_map_key(v: Verifier, key: RegState, key_size: int) -> int:
    """``get_constant_map_key``: the key's value when the stack holds a known constant."""
    if key.type != RegType.STACK or not key.is_const():
        return -1
    stack_off = key.off + s64(key.var_off[0])
    slot = -stack_off - 1
    spi, off = slot // 8, slot % 8
    frame = v.cur.frames[key.frameno]
    if spi >= len(frame.stack):
        return -1
    st = frame.stack[spi]
    types = st.slot_type
    zeros = 0
    i = off
    while i >= 0 and types[i] == StackSlot.ZERO:
        zeros += 1
        i -= 1
    if zeros >= key_size:
        return 0
    if not (st.is_spill() and st.spilled.is_scalar):
        return -1
    spills = 0
    i = off
    while i >= 0 and types[i] == StackSlot.SPILL:
        spills += 1
        i -= 1
    if spills != key_size or not st.spilled.is_const():
        return -1
    return st.spilled.var_off[0]


def _set_ret(v: Verifier, spec: HelperSpec, meta: _Meta, r0: RegState) -> None:
    ret = spec.ret
    if ret is RetType.VOID:
        return
    if ret is RetType.INTEGER:
        r0.mark_unknown()
        return
    if ret is RetType.PTR_TO_MAP_VALUE_OR_NULL:
        m = meta.map
        assert m is not None
        if m.map_type in (_M.ARRAY_OF_MAPS, _M.HASH_OF_MAPS):
            r0.mark_ptr(RegType.MAP_PTR)
            r0.map = m.inner
        else:
            r0.mark_ptr(RegType.MAP_VALUE)
            r0.map = m
        # Array lookups with a constant key in range cannot fail (can_elide_value_nullness).
        if not (spec.func_id == _F.map_lookup_elem
                and m.map_type in (_M.ARRAY, _M.PERCPU_ARRAY)
                and 0 <= meta.const_key < m.max_entries):
            r0.maybe_null = True
            r0.id = v.new_id()
        elif r0.type == RegType.MAP_VALUE and m.spin_lock_off >= 0:
            r0.id = v.new_id()   # the value may hold a lock: its id names the lock
        return
    # RET_PTR_TO_RINGBUF_MEM_OR_NULL: a reference the program must release.
    _acquire(v, r0, RegType.MEM)
    r0.ringbuf = True
    r0.mem_size = meta.mem_size


def _release(v: Verifier, ref: int) -> None:
    if not any(r[0] == ref for r in v.cur.refs):
        raise Reject(f"release kernel reference id={ref} that was not acquired")
    v.cur.refs = [r for r in v.cur.refs if r[0] != ref]
    for reg in v.cur.all_regs():
        if reg.ref_obj_id == ref:
            reg.mark_unknown()


def _push_callback(v: Verifier, op: Call, func_id: int, meta: _Meta) -> None:
    """``push_callback_call``: explore the callback as a call from this instruction.

    KERNEL-DIFF: the kernel returns from the callback to the helper call and verifies the
    call again with the caller's state after the callback (callbacks run an unknown number
    of times); tcemu explores the callback body once and ends that path at its exit."""
    st = v.cur
    if len(st.frames) >= MAX_CALL_FRAMES:
        raise Reject(f"the call stack of {len(st.frames) + 1} frames is too deep")
    target = meta.func_subprog
    sub = v.cfg.subprog_of[target]
    v.callees.setdefault(st.cur.subprog, set()).add(sub)
    branch = v.push_stack(target, op.pc)
    caller = branch.cur
    callee = FuncState(len(branch.frames), sub, op.pc)
    callee.callback_ret = True
    regs = callee.regs
    if func_id == _F.loop:
        regs[1].mark_unknown()
        regs[2] = caller.regs[3].copy()
    else:
        m = meta.map
        assert m is not None
        regs[1].mark_ptr(RegType.MAP_PTR)
        regs[1].map = m
        regs[2].mark_ptr(RegType.MAP_KEY)
        regs[2].map = m
        regs[3].mark_ptr(RegType.MAP_VALUE)
        regs[3].map = m
        regs[4] = caller.regs[3].copy()
    regs[10].mark_ptr(RegType.STACK)
    regs[10].frameno = callee.frameno
    branch.frames.append(callee)


# ---- bpf-to-bpf calls --------------------------------------------------------------------
def _call_subprog(v: Verifier, op: Call) -> None:
    st = v.cur
    if len(st.frames) >= MAX_CALL_FRAMES:
        raise Reject(f"the call stack of {len(st.frames) + 1} frames is too deep")
    target = op.target
    sub = v.cfg.subprog_of[target]
    v.callees.setdefault(st.cur.subprog, set()).add(sub)
    fn = v.globals.get(target)
    if fn is not None:
        from tcemu.bpf.verifier.globals import check_global_call
        check_global_call(v, fn)
        if target in v.pkt_changing:
            for reg in v.cur.all_regs():
                if reg.type in (RegType.PKT, RegType.PKT_META, RegType.PKT_END):
                    reg.mark_unknown()
        v.called_globals.add(target)
        v.print_state()
        v.insn_idx = op.pc + 1
        return
    static = v.statics.get(target)
    if static is not None and v.log.level:
        from tcemu.bpf.verifier.globals import static_arg_mismatch
        mismatch = static_arg_mismatch(v, static)
        if mismatch:
            v.log.write(mismatch + "\n")
    caller = st.cur
    callee = FuncState(len(st.frames), sub, op.pc)
    for r in range(1, 6):
        callee.regs[r] = caller.regs[r].copy()
    callee.regs[10].mark_ptr(RegType.STACK)
    callee.regs[10].frameno = callee.frameno
    for r in range(6):
        caller.regs[r].mark_not_init()
        v.scratch_reg(r)
    st.frames.append(callee)
    if v.log.level:
        v.log.write(f"caller:\n{state_str(caller, refs=st.refs)}\ncallee:\n"
                    f"{state_str(callee, refs=st.refs)}\n")
    v.mark_all_scratched()
    v.insn_idx = target


def check_exit(v: Verifier) -> bool:
    """Returns True when the exit returned to a caller frame (the path goes on)."""
    st = v.cur
    if len(st.frames) > 1 and st.cur.callback_ret:
        r0 = v.check_reg_src(0)
        if not r0.is_scalar:
            raise Reject("R0 not a scalar value")
        if r0.smin < 0 or r0.smax > 1:
            text = "".join([f" smin={r0.smin}" if r0.smin > -(1 << 63) else "",
                            f" smax={r0.smax}" if r0.smax < (1 << 63) - 1 else ""])
            raise Reject(f"At callback return the register R0 has"
                         f"{text or ' unknown scalar value'} should have been in [0, 1]")
        return False
    if len(st.frames) > 1:
        callee = st.frames[-1]
        r0 = callee.regs[0]
        if r0.type == RegType.STACK:
            raise Reject("cannot return stack pointer to the caller")
        st.frames.pop()
        caller = st.frames[-1]
        caller.regs[0] = r0.copy()
        if v.log.level:
            v.log.write(f"returning from callee:\n{state_str(callee, refs=st.refs)}\n"
                        f"to caller at {callee.callsite + 1}:\n"
                        f"{state_str(caller, refs=st.refs)}\n")
        v.clean_scratch()
        v.do_print_state = True
        v.insn_idx = callee.callsite + 1
        return True
    if st.cur.subprog:
        r0 = v.check_reg_src(0)
        if not r0.is_scalar:
            raise Reject("At subprogram exit the register R0 is not a scalar value "
                         f"({r0.type_str()})")
    if st.lock is not None:
        raise Reject("BPF_EXIT instruction in main prog cannot be used inside "
                     "bpf_spin_lock-ed region")
    if st.ptr_refs():
        ref, insn = st.ptr_refs()[0]
        raise Reject(f"Unreleased reference id={ref} alloc_insn={insn}\n"
                     "BPF_EXIT instruction in main prog would lead to reference leak")
    v.check_reg_src(0)
    return False
