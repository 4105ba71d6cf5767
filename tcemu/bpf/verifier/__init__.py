"""The eBPF verifier: kernel-compatible verdicts and the kernel's verification log.

``verify(program)`` checks a :class:`~tcemu.bpf.program.Program` as ``bpf_check()`` in
kernel/bpf/verifier.c does for a privileged loader (root: CAP_BPF, CAP_PERFMON, so
back-edges are explored as bounded loops, uninitialised stack may be read, pointers may be
compared and spilled) and returns a :class:`VerifyResult` with the log and statistics, or
raises :class:`VerifierError` carrying the kernel-style log, the first error line and the
instruction index.

Layout: ``cfg`` (check_subprogs/check_cfg, liveness), ``tnum`` and ``state`` (abstract
values), ``scalar`` and ``alu`` (ALU and branch range rules), ``checks`` (loads and
stores), ``calls`` (helpers, bpf-to-bpf calls, exit), ``globals`` (global functions),
``explore`` (do_check), ``branches`` (conditional jumps), ``prune`` (state equivalence),
``log`` (printing).

What tcemu does **not** check compared with the kernel (see docs/verifier.md):

* unprivileged mode (pointer leaks, speculative-execution sanitation, ``allow_uninit_stack``
  off) -- ``privileged=False`` only turns back-edges into errors;
* precision tracking: a static over-approximation decides which scalars are compared
  when pruning (``cfg.precision``), so ``processed N insns`` can differ from the kernel's;
* callbacks (``bpf_loop``, ``bpf_for_each_map_elem``, timers): the callback body is not
  explored;
* BTF-typed pointers, kfuncs, dynptrs, iterators, arenas; of spin locks only
  ``bpf_spin_lock`` in a map value (the lock found in the value's BTF struct).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import NoReturn

from tcemu.bpf import isa
from tcemu.bpf.helpers import REGISTRY, _load_modules
from tcemu.bpf.maps import MapBase
from tcemu.bpf.ops import LdImm64
from tcemu.bpf.program import Program
from tcemu.bpf.uapi import BpfMapType, BpfProgType
from tcemu.bpf.verifier.cfg import CfgError, check_cfg, live_regs_table, precision
from tcemu.bpf.verifier.checks import Reject, Restart
from tcemu.bpf.verifier.explore import Stats, Verifier
from tcemu.bpf.verifier.globals import entry_state, find_globals, find_statics
from tcemu.bpf.verifier.log import Log
from tcemu.bpf.verifier.state import FuncState, MapInfo, RegType, VState
from tcemu.errors import LoadError, ValidationError

__all__ = ["MapInfo", "VerifierError", "VerifyResult", "map_info", "verify"]

MAX_BPF_STACK = 512


class VerifierError(LoadError):
    """The verifier rejected a program (``BPF_PROG_LOAD`` fails with the log)."""

    def __init__(self, first_error: str, *, log: str, insn_index: int | None) -> None:
        self.first_error = first_error
        self.log = log
        self.insn_index = insn_index
        where = f"insn {insn_index}: " if insn_index is not None else ""
        super().__init__(f"verify program: {where}{first_error}")

    def format_log(self, *, first: int | None = None, last: int | None = None) -> str:
        lines = self.log.splitlines()
        if first is not None:
            lines = lines[:first]
        if last is not None:
            lines = lines[-last:]
        return "\n".join(lines)


@dataclass(frozen=True)
class VerifyResult:
    """An accepted program: the log (as the kernel would fill the buffer) and statistics."""

    log: str
    stats: Stats
    stack_depth: tuple[int, ...]
    max_pkt_offset: int
    notices: tuple[str, ...] = ()
    """Kernel-log (dmesg) lines the load causes: the trace_printk banner."""


def map_info(m: MapBase) -> MapInfo:
    """The verifier's view of a live tcemu map."""
    spec = m.spec
    frozen = bool(getattr(m, "frozen", False))
    rodata: bytes | None = None
    if frozen and spec.flags & 0x80 and spec.type == BpfMapType.ARRAY:
        rodata = bytes(m.lookup(b"\0\0\0\0"))
    inner = None
    if spec.inner is not None:
        inner = MapInfo(int(spec.inner.type), spec.inner.key_size, spec.inner.value_size,
                        spec.inner.max_entries, spec.inner.name[:15], spec.inner.flags)
    return MapInfo(int(spec.type), spec.key_size, spec.value_size, spec.max_entries,
                   spec.name[:15], spec.flags, frozen, inner, rodata)


def _default_maps(program: Program) -> Callable[[LdImm64], MapInfo]:
    def resolve(op: LdImm64) -> MapInfo:
        from tcemu.bpf.maps import map_from_handle

        resolver, vm = program.map_resolver, program.vm
        if resolver is None or vm is None:
            raise Reject(f"fd {op.imm} is not pointing to valid bpf_map")
        try:
            handle = resolver(LdImm64(op.pc, op.insn, op.dst, isa.PSEUDO_MAP_IDX, op.imm, 0))
        except LoadError as err:
            raise Reject(f"fd {op.imm} is not pointing to valid bpf_map") from err
        live = map_from_handle(vm.env, handle)
        if live is None:
            raise Reject(f"fd {op.imm} is not pointing to valid bpf_map")
        info = map_info(live)
        return replace(info, btf=program.btf is not None,
                       spin_lock_off=_spin_lock_off(program, live.spec.name))
    return resolve


def _spin_lock_off(program: Program, map_name: str) -> int:
    """Where the map's value (a BTF struct) has its ``struct bpf_spin_lock`` member, as
    ``btf_parse_fields`` records it in the map's btf_record; -1 if it has none."""
    from tcemu.bpf.btf import BtfError
    from tcemu.bpf.btf.types import Struct

    btf = program.btf
    if btf is None or map_name not in btf.map_names():
        return -1
    try:
        value_type = btf.map_def(map_name).value_type
    except BtfError:
        return -1
    if value_type is None:
        return -1
    value = btf[btf.resolve(value_type)]
    if not isinstance(value, Struct):
        return -1
    for member in value.members:
        mtype = btf[btf.resolve(member.type)]
        if isinstance(mtype, Struct) and mtype.name == "bpf_spin_lock":
            return member.bit_offset // 8
    return -1


def _line_info(program: Program) -> Callable[[int], str | None]:
    btf, origins = program.btf, program.origins
    cache: dict[int, str | None] = {}

    def linfo(idx: int) -> str | None:
        if btf is None or idx >= len(origins):
            return None
        if idx not in cache:
            section, index = origins[idx]
            line = btf.line_for(section, index)
            cache[idx] = None if line is None or not line.line else (
                f"{line.line.lstrip()} @ {os.path.basename(line.file_name)}:{line.line_num}")
        return cache[idx]
    return linfo


def verify(program: Program, prog_type: BpfProgType | None = None, log_level: int = 1, *,
           maps: Mapping[int, MapInfo] | Callable[[LdImm64], MapInfo] | None = None,
           privileged: bool = True, gpl: bool | None = None, btf: bool | None = None,
           strict_alignment: bool = False) -> VerifyResult:
    """Verify ``program`` as the kernel would; raise :class:`VerifierError` if rejected.

    ``maps`` resolves LD_IMM64 map references: a mapping from the instruction's ``imm``
    (map fd or index) to :class:`MapInfo`, or a callable; by default the program's loaded
    collection is asked.  ``log_level`` 1 keeps the failing path, 2 every state.
    ``btf`` says whether the load carries BTF func info (default: the program has BTF);
    ``strict_alignment`` is ``BPF_F_STRICT_ALIGNMENT``.
    """
    _load_modules()
    ptype = program.prog_type if prog_type is None else prog_type
    log = Log(log_level)
    resolver = _resolver(program, maps)
    try:
        rows = isa.validate(program.insns)
    except ValidationError as err:
        # KERNEL-DIFF: the kernel finds most of these while walking the program, so its
        # log shows the path that led there; tcemu checks the structure up front.
        raise VerifierError(err.reason, log=f"{err.reason}\n{Stats().line()}\n",
                            insn_index=err.index) from None
    ops = program.ops if program.rows is not None else _decode(program, rows)
    subprogs = isa.subprog_starts(program.insns, rows)
    try:
        _resolve_pseudo_ldimm64(ops, resolver)
    except Reject as err:
        text = f"{err.message}\n{Stats().line()}\n"
        raise VerifierError(err.message, log=text, insn_index=err.idx) from None
    nargs = {hid: len(spec.args) for hid, spec in REGISTRY.items()}
    has_btf = program.btf is not None if btf is None else btf
    if log_level > 1:
        for i, start in enumerate(subprogs):
            log.write(f"func#{i} @{start}\n")
    try:
        if not has_btf:
            _check_abnormal_return(ops, subprogs)
        cfg = check_cfg(ops, subprogs, privileged, nargs)
    except CfgError as err:
        text = f"{log.text()}{err.message}\n{Stats().line()}\n"
        raise VerifierError(err.message, log=text, insn_index=err.idx) from None
    if log_level > 1:
        texts = _insn_texts(program)
        log.write("\n".join(live_regs_table(ops, cfg.live, texts)) + "\n")
    gpl_ok = program.gpl_compatible if gpl is None else gpl
    globals_ = find_globals(program, subprogs)
    statics = find_statics(program, subprogs)
    pkt_changing = _pkt_changing(ops, subprogs)
    linfo = _line_info(program)
    pos = log.end_pos
    demand: frozenset[int] = frozenset()
    while True:
        # Which scalars are compared precisely when pruning depends on the insns that
        # use a scalar for a decision; a new one found on the way means starting over.
        log.reset(pos)
        cfg.precise = precision(ops, cfg.subprog_of, demand)
        v = Verifier(ops, list(program.insns), ptype, cfg, log, resolver, gpl_ok, linfo)
        v.has_btf = has_btf
        v.globals = globals_
        v.statics = statics
        v.pkt_changing = pkt_changing
        v.strict_alignment = strict_alignment
        v.demand = demand
        try:
            end = _run(v, pos, log_level)
        except Restart as again:
            demand = demand | {again.pc}
            continue
        except Reject as err:
            _reject(v, err, log, log_level)
        break
    if log_level == 1:
        log.reset(end)
    log.write(v.stats.line() + "\n")
    return VerifyResult(log.text(), v.stats, tuple(v.stack_depth), v.max_pkt_offset,
                        v.notices)


def _insn_texts(program: Program) -> list[str]:
    from tcemu.bpf.disasm import format_insn
    from tcemu.bpf.verifier.explore import kernel_imm

    insns = program.insns
    return [format_insn(insn, insns[pc + 1] if pc + 1 < len(insns) else None,
                        namer=kernel_imm) for pc, insn in enumerate(insns)]


def _run(v: Verifier, pos: int, log_level: int) -> int:
    """``do_check_main``, then ``do_check_subprogs`` for the called global functions,
    then ``check_max_stack_depth``; where a level-1 log is cut back to on success: after
    the ``is safe`` line of the last global function (each one's check resets the log)."""
    log = v.log
    v.do_check(_main_state())
    end = pos
    if log_level == 1:
        log.reset(pos)
    done: set[int] = set()
    while v.called_globals - done:
        start = min(v.called_globals - done)
        done.add(start)
        fn = v.globals[start]
        log.write(f"Validating {fn.name}() func#{fn.index}...\n")
        v.do_check(entry_state(v, fn, start))
        if log_level == 1:
            log.reset(pos)
        if log_level:
            log.write(f"Func#{fn.index} ('{fn.name}') is safe for any args that match its "
                      "prototype\n")
            end = log.end_pos
    _check_stack_depth(v)
    return end


def _reject(v: Verifier, err: Reject, log: Log, log_level: int) -> NoReturn:
    log.level = max(log.level, 1) if log_level else 0
    # The kernel prints this one without its newline (record_func_map).
    end = "" if err.message == "expected prog array map for tail call" else "\n"
    log.write(err.message + end)
    first = err.message.splitlines()[0]
    log.write(v.stats.line() + "\n")
    text = log.text() if log_level else err.message + "\n"
    raise VerifierError(first, log=text, insn_index=v.insn_idx) from None


def _resolve_pseudo_ldimm64(ops: list, resolver: Callable[[LdImm64], MapInfo],  # type: ignore[type-arg]
                            ) -> None:
    """``resolve_pseudo_ldimm64``: map references and opcodes the kernel refuses up front."""
    from tcemu.bpf.ops import CallX
    for pc, op in enumerate(ops):
        try:
            if isinstance(op, CallX):
                raise Reject(f"unknown opcode {op.insn.code:02x}")
            if not isinstance(op, LdImm64) or op.pseudo not in _MAP_PSEUDOS:
                continue
            info = resolver(op)
            if op.pseudo in (isa.PSEUDO_MAP_VALUE, isa.PSEUDO_MAP_IDX_VALUE):
                if info.map_type != BpfMapType.ARRAY:
                    raise Reject("no direct value access support for this map type")
                if op.imm2 & 0xFFFFFFFF >= info.value_size:
                    raise Reject(f"invalid access to map value pointer, value_size="
                                 f"{info.value_size} off={op.imm2 & 0xFFFFFFFF}")
        except Reject as err:
            err.idx = pc
            raise


_MAP_PSEUDOS = (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_VALUE,
                isa.PSEUDO_MAP_IDX_VALUE)


def _pkt_changing(ops: list, subprogs: list[int]) -> set[int]:  # type: ignore[type-arg]
    """Entry slots of subprograms that (directly or through calls) may move packet data."""
    from tcemu.bpf.ops import Call
    starts = sorted(subprogs)
    owner = {s: s for s in starts}
    direct: set[int] = set()
    calls: dict[int, set[int]] = {s: set() for s in starts}
    for pc, op in enumerate(ops):
        if not isinstance(op, Call):
            continue
        sub = max(s for s in starts if s <= pc)
        if op.kind == isa.PSEUDO_CALL:
            calls[owner[sub]].add(op.target)
        elif op.kind == 0:
            spec = REGISTRY.get(op.imm)
            if spec is not None and spec.changes_pkt_data:
                direct.add(sub)
    changed = True
    while changed:
        changed = False
        for s, callees in calls.items():
            if s not in direct and callees & direct:
                direct.add(s)
                changed = True
    return direct


def _check_abnormal_return(ops: list, subprogs: list[int]) -> None:  # type: ignore[type-arg]
    """``check_abnormal_return``: without BTF, subprograms may not tail call or LD_ABS."""
    from tcemu.bpf.ops import Call, LdPacket
    starts = sorted(subprogs)
    for pc, op in enumerate(ops):
        sub = max(i for i, s in enumerate(starts) if s <= pc)
        if sub == 0 or op is None:
            continue
        if isinstance(op, LdPacket):
            raise CfgError("LD_ABS is not allowed in subprogs without BTF", pc)
        if isinstance(op, Call) and op.kind == 0 and op.imm == 12:
            raise CfgError("tail_call is not allowed in subprogs without BTF", pc)


def _decode(program: Program, rows: list[isa.OpInfo | None]) -> list:  # type: ignore[type-arg]
    from tcemu.bpf.ops import decode
    return decode(program.insns, rows)


def _resolver(program: Program, maps: Mapping[int, MapInfo] | Callable[[LdImm64], MapInfo]
              | None) -> Callable[[LdImm64], MapInfo]:
    if maps is None:
        return _default_maps(program)
    if callable(maps):
        return maps
    table = dict(maps)

    def lookup(op: LdImm64) -> MapInfo:
        info = table.get(op.imm)
        if info is None:
            raise Reject(f"fd {op.imm} is not pointing to valid bpf_map")
        return info
    return lookup


def _main_state() -> VState:
    st = VState()
    frame = FuncState(0, 0, -1)
    frame.regs[1].mark_ptr(RegType.CTX)
    frame.regs[10].mark_ptr(RegType.STACK)
    st.frames.append(frame)
    st.branches = 1
    return st


def _round(depth: int) -> int:
    # The JIT's granularity (round_up_stack_depth with jit_requested).
    return -(-depth // 16) * 16


def _check_stack_depth(v: Verifier) -> None:
    """``check_max_stack_depth``: the deepest chain of frames fits in 512 bytes."""
    def walk(sub: int, depth: int, frames: int, seen: tuple[int, ...]) -> None:
        depth += _round(v.stack_depth[sub])
        if depth > MAX_BPF_STACK:
            raise Reject(f"combined stack size of {frames} calls is {depth}. Too large")
        for callee in sorted(v.callees.get(sub, ())):
            if callee in seen:
                continue
            if callee in v.tail_call_subprogs and depth > 256:
                raise Reject("tail_calls are not allowed when call stack of previous "
                             f"frames is {depth} bytes. Too large")
            walk(callee, depth, frames + 1, (*seen, callee))
    walk(0, 0, 1, (0,))
