"""Path exploration: the main loop of the verifier and the per-instruction rules.

Mirrors kernel/bpf/verifier.c ``do_check`` (one state per path, branches pushed on a
stack, 1M processed-instruction limit), ``is_state_visited`` / ``states_equal`` /
``regsafe`` (pruning against fully explored states, infinite-loop detection against states
still on the current path), ``check_alu_op`` / ``adjust_ptr_min_max_vals``,
``check_cond_jmp_op`` with ``find_good_pkt_pointers`` and ``mark_ptr_or_null_regs``, and
``check_ld_imm`` / ``check_ld_abs``.  Calls and exits are in :mod:`.calls`, loads and
stores in :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tcemu.bpf import isa
from tcemu.bpf.disasm import format_insn
from tcemu.bpf.ops import (
    Alu,
    Atomic,
    Call,
    CallX,
    Cond,
    Endian,
    Exit,
    Jump,
    LdImm64,
    LdPacket,
    Load,
    Op,
    Store,
)
from tcemu.bpf.uapi import BpfFunc, BpfProgType
from tcemu.bpf.verifier.alu import check_alu
from tcemu.bpf.verifier.branches import (
    branch_taken_any,
    mark_ptr_or_null,
    match_pkt_pointers,
    sync_linked,
)
from tcemu.bpf.verifier.cfg import CfgInfo
from tcemu.bpf.verifier.checks import Reject, Restart, check_mem_access
from tcemu.bpf.verifier.globals import GlobalFunc
from tcemu.bpf.verifier.log import Log, state_str
from tcemu.bpf.verifier.prune import states_equal
from tcemu.bpf.verifier.scalar import sane, set_min_max
from tcemu.bpf.verifier.state import (
    S64_MAX,
    FuncState,
    MapInfo,
    RegState,
    RegType,
    VState,
)
from tcemu.bpf.verifier.tnum import t_is_const

__all__ = ["COMPLEXITY_LIMIT_INSNS", "Stats", "Verifier"]

COMPLEXITY_LIMIT_INSNS = 1_000_000
COMPLEXITY_LIMIT_JMP_SEQ = 8192


@dataclass
class Stats:
    insn_processed: int = 0
    max_states_per_insn: int = 0
    total_states: int = 0
    peak_states: int = 0
    mark_read: int = 0

    def line(self) -> str:
        return (f"processed {self.insn_processed} insns (limit {COMPLEXITY_LIMIT_INSNS}) "
                f"max_states_per_insn {self.max_states_per_insn} total_states "
                f"{self.total_states} peak_states {self.peak_states} mark_read {self.mark_read}")


class _Pending:
    __slots__ = ("insn", "log_pos", "prev", "st")

    def __init__(self, st: VState, insn: int, prev: int, log_pos: int) -> None:
        self.st = st
        self.insn = insn
        self.prev = prev
        self.log_pos = log_pos


class Verifier:
    """``struct bpf_verifier_env`` for one program."""

    def __init__(self, ops: list[Op | None], insns: list[isa.Insn], prog_type: BpfProgType,
                 cfg: CfgInfo, log: Log, maps: Callable[[LdImm64], MapInfo],
                 gpl: bool, linfo: Callable[[int], str | None]) -> None:
        self.ops = ops
        self.insns = insns
        self.prog_type = prog_type
        self.cfg = cfg
        self.log = log
        self.maps = maps
        self.gpl = gpl
        self._linfo = linfo
        self.prev_linfo: str | None = None
        self.stats = Stats()
        self.id_gen = 0
        self.explored: dict[int, list[VState]] = {}
        self.pending: list[_Pending] = []
        self.cur = VState()
        self.insn_idx = 0
        self.prev_insn_idx = -1
        self.scratched_regs: set[int] = set()
        self.scratched_slots: set[int] = set()
        self.all_scratched = True
        self.jmps_processed = 0
        self.prev_jmps_processed = 0
        self.prev_insn_processed = 0
        self.stack_depth = [0] * len(cfg.subprogs)
        self.callees: dict[int, set[int]] = {}
        self.tail_call_subprogs: set[int] = set()
        self.max_pkt_offset = 0
        self.do_print_state = False
        self.cur_states = 0
        self.has_btf = False
        self.demand: frozenset[int] = frozenset()
        self.notices: tuple[str, ...] = ()
        self.globals: dict[int, GlobalFunc] = {}
        self.statics: dict[int, GlobalFunc] = {}   # static functions' BTF prototypes
        self.called_globals: set[int] = set()
        self.pkt_changing: set[int] = set()
        self.strict_alignment = False

    # ---- small services used by checks/calls ------------------------------------------
    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    def assign_scalar_id(self, reg: RegState) -> None:
        """``assign_scalar_id_before_mov``."""
        if reg.is_scalar and reg.add_const:
            # Only one ``rX += const`` link is tracked: a copy of a linked register
            # starts a new link.
            reg.id = reg.off = reg.add_const = 0
        if reg.is_scalar and not reg.id and not t_is_const(reg.var_off):
            reg.id = self.new_id()

    def scratch_reg(self, regno: int) -> None:
        self.scratched_regs.add(regno)

    def scratch_slot(self, spi: int) -> None:
        self.scratched_slots.add(spi)

    def note_stack_depth(self, frame: FuncState, depth: int) -> None:
        sub = frame.subprog
        self.stack_depth[sub] = max(self.stack_depth[sub], depth)

    def note_pkt_access(self, end: int) -> None:
        self.max_pkt_offset = max(self.max_pkt_offset, end)

    def may_write_pkt(self) -> bool:
        return self.prog_type in (BpfProgType.SCHED_CLS, BpfProgType.SCHED_ACT)

    def linfo(self, idx: int | None = None) -> None:
        """``verbose_linfo``: print the source line of ``idx`` if it changed."""
        if not self.log.level:
            return
        line = self._linfo(self.insn_idx if idx is None else idx)
        if line is None or line == self.prev_linfo:
            return
        self.log.write(f"; {line}\n")
        self.prev_linfo = line

    @property
    def regs(self) -> list[RegState]:
        return self.cur.cur.regs

    def check_reg_src(self, regno: int) -> RegState:
        self.scratch_reg(regno)
        reg = self.regs[regno]
        if reg.type == RegType.NOT_INIT:
            raise Reject(f"R{regno} !read_ok")
        return reg

    def check_reg_dst(self, regno: int, mark: bool = True) -> RegState:
        if regno == 10:
            raise Reject("frame pointer is read only")
        self.scratch_reg(regno)
        reg = self.regs[regno]
        if mark:
            reg.mark_unknown()
        return reg

    def print_state(self, frame: FuncState | None = None) -> None:
        """``print_insn_state`` with the scratched registers and slots."""
        if not self.log.level:
            return
        f = frame if frame is not None else self.cur.cur
        if self.all_scratched:
            text = state_str(f, refs=self.cur.refs)
        else:
            if not self.scratched_regs and not self.scratched_slots:
                return
            text = state_str(f, self.scratched_regs, self.scratched_slots, self.cur.refs)
        self.log.insn_state(self.insn_idx, text)
        self.clean_scratch()

    def clean_scratch(self) -> None:
        self.scratched_regs = set()
        self.scratched_slots = set()
        self.all_scratched = False

    def mark_all_scratched(self) -> None:
        self.all_scratched = True

    # ---- the main loop ----------------------------------------------------------------
    def do_check(self, init: VState) -> None:
        from tcemu.bpf.verifier.calls import check_call, check_exit

        self.cur = init
        self.insn_idx = init.insn_idx
        self.mark_all_scratched()
        n = len(self.ops)
        while True:
            idx = self.insn_idx
            if idx >= n or self.ops[idx] is None:
                raise Reject(f"invalid insn idx {idx} insn_cnt {n}")
            op = self.ops[idx]
            assert op is not None
            self.stats.insn_processed += 1
            if self.stats.insn_processed > COMPLEXITY_LIMIT_INSNS:
                raise Reject(f"BPF program is too large. Processed "
                             f"{self.stats.insn_processed} insn")
            self.cur.insn_idx = idx
            if idx in self.cfg.prune and self.is_state_visited(idx):
                if self.log.level:
                    if self.do_print_state and self.log.level > 1:
                        self.log.write(f"\nfrom {self.prev_insn_idx} to {idx}: safe\n")
                    else:
                        self.log.write(f"{idx}: safe\n")
                if not self.path_done():
                    return
                continue
            if self.log.level > 1 and self.do_print_state:
                self.log.write(f"\nfrom {self.prev_insn_idx} to {idx}:"
                               f"{state_str(self.cur.cur, refs=self.cur.refs)}\n")
                self.do_print_state = False
                self.clean_scratch()
            if self.log.level:
                if self.all_scratched or self.scratched_regs or self.scratched_slots:
                    self.print_state()
                self.linfo(idx)
                nxt = self.insns[idx + 1] if isinstance(op, LdImm64) else None
                self.log.insn_line(idx, format_insn(self.insns[idx], nxt,
                                                    namer=kernel_imm))
            self.prev_insn_idx = idx
            if isinstance(op, Jump | Call | CallX | Exit):
                self.jmps_processed += 1
            if isinstance(op, Exit):
                if check_exit(self):
                    continue
                if not self.path_done():
                    return
                continue
            if isinstance(op, Call | CallX):
                # Under a bpf_spin_lock only bpf_spin_unlock and bpf-to-bpf calls
                # (do_check_insn); kfuncs allowed there (kfunc_spin_allowed) are not modelled.
                if self.cur.lock is not None and isinstance(op, Call) and (
                        op.kind == isa.PSEUDO_KFUNC_CALL
                        or (op.kind != isa.PSEUDO_CALL and op.imm != BpfFunc.spin_unlock)):
                    raise Reject("function calls are not allowed while holding a lock")
                check_call(self, op)
                continue
            self.step(op)

    def path_done(self) -> bool:
        """``process_bpf_exit``: finish this path and pop the next; False when none left."""
        self.mark_all_scratched()
        self.update_branch_counts(self.cur.parent)
        if not self.pending:
            return False
        p = self.pending.pop()
        if self.log.level == 1:
            self.log.reset(p.log_pos)
        self.cur = p.st
        self.insn_idx = p.insn
        self.prev_insn_idx = p.prev
        self.do_print_state = True
        self.cur_states -= 0
        return True

    def update_branch_counts(self, st: VState | None) -> None:
        while st is not None:
            st.branches -= 1
            if st.branches > 0:
                break
            st = st.parent

    def push_stack(self, insn: int, prev: int) -> VState:
        st = self.cur.copy()
        st.insn_idx = insn
        if st.parent is not None:
            st.parent.branches += 1
        self.pending.append(_Pending(st, insn, prev, self.log.end_pos))
        if len(self.pending) > COMPLEXITY_LIMIT_JMP_SEQ:
            raise Reject(f"The sequence of {len(self.pending)} jumps is too complex.")
        return st

    # ---- pruning -----------------------------------------------------------------------
    def is_state_visited(self, idx: int) -> bool:
        states = self.explored.setdefault(idx, [])
        add = (self.jmps_processed - self.prev_jmps_processed >= 2
               and self.stats.insn_processed - self.prev_insn_processed >= 8)
        live = self.cfg.live[idx]
        keep: list[VState] = []
        hit = False
        for pos, old in enumerate(states):
            if old.branches:
                if states_equal(old, self.cur, live, exact=True):
                    self.linfo(idx)
                    # KERNEL-DIFF: the kernel marks precise scalars of the old state "P".
                    raise Reject(f"infinite loop detected at insn {idx}\n"
                                 f"cur state:{state_str(self.cur.cur, refs=self.cur.refs)}\n"
                                 f"old state:{state_str(old.frames[-1])}")
                if (self.jmps_processed - self.prev_jmps_processed < 20
                        and self.stats.insn_processed - self.prev_insn_processed < 100):
                    add = False
            elif states_equal(old, self.cur, live, exact=False,
                              precise=self.cfg.precise[idx]):
                old.hit_cnt += 1
                keep.extend(states[pos:])
                hit = True
                break
            old.miss_cnt += 1
            # As the kernel does: a state that keeps missing is dropped from the list.
            if old.miss_cnt <= old.hit_cnt * 3 + 3:
                keep.append(old)
        states[:] = keep
        if hit:
            return True
        if not add:
            return False
        self.prev_jmps_processed = self.jmps_processed
        self.prev_insn_processed = self.stats.insn_processed
        new = self.cur.copy()
        new.branches = 1
        new.parent = self.cur.parent
        new.insn_idx = idx
        self.cur.parent = new
        states.append(new)
        self.stats.total_states += 1
        self.cur_states += 1
        self.stats.peak_states = max(self.stats.peak_states, self.cur_states)
        self.stats.max_states_per_insn = max(self.stats.max_states_per_insn, len(states) - 1)
        return False

    # ---- one instruction -----------------------------------------------------------------
    def step(self, op: Op) -> None:
        nxt = op.pc + 1
        if isinstance(op, Alu):
            check_alu(self, op)
        elif isinstance(op, Endian):
            self._endian(op)
        elif isinstance(op, Load):
            self.check_reg_src(op.src)
            dst = RegState()
            self.check_reg_dst(op.dst, mark=False)
            check_mem_access(self, op.src, op.off, op.size, False, dst=dst, signed=op.signed)
            self.regs[op.dst].assign(dst)
        elif isinstance(op, Store):
            self._store(op)
        elif isinstance(op, Atomic):
            self._atomic(op)
        elif isinstance(op, LdImm64):
            self._ld_imm64(op)
            nxt = op.pc + 2
        elif isinstance(op, LdPacket):
            self._ld_abs(op)
        elif isinstance(op, Jump):
            nxt = op.target if op.cond is None else self.check_cond_jmp(op)
        self.insn_idx = nxt

    def _endian(self, op: Endian) -> None:
        reg = self.check_reg_src(op.dst)
        old = reg.copy()
        self.check_reg_dst(op.dst)
        if not old.is_scalar:
            return
        nbytes = op.bits // 8
        if old.is_const():
            val = old.var_off[0] & ((1 << op.bits) - 1)
            if op.kind != "le":
                val = int.from_bytes(val.to_bytes(nbytes, "little"), "big")
            reg.mark_const_scalar(val)
        elif op.kind == "le":
            # No swap on this little-endian target: a truncation (le64: the value itself).
            reg.assign(old)
            reg.id = 0
            if op.bits < 64:
                reg.coerce_to_size(nbytes)
        else:
            # A swapping BPF_END (to_be on this little-endian target, or BPF_ALU64 bswap):
            # the tnum's low bytes swapped (tnum_bswap16/32/64), the bounds derived from it.
            mask = (1 << op.bits) - 1

            def swap(x: int) -> int:
                return int.from_bytes((x & mask).to_bytes(nbytes, "little"), "big")

            reg.mark_unknown()
            reg.var_off = (swap(old.var_off[0]), swap(old.var_off[1]))
            reg.sync()

    def _store(self, op: Store) -> None:
        if op.src is not None:
            value = self.check_reg_src(op.src)
            self.check_reg_src(op.dst)
            check_mem_access(self, op.dst, op.off, op.size, True, value=value)
            return
        self.check_reg_src(op.dst)
        check_mem_access(self, op.dst, op.off, op.size, True, imm=op.imm)

    def _atomic(self, op: Atomic) -> None:
        self.check_reg_src(op.src)
        reg = self.check_reg_src(op.dst)
        if op.op == isa.CMPXCHG:
            self.check_reg_src(0)
        if reg.type in (RegType.CTX, RegType.PKT, RegType.PKT_META):
            raise Reject(f"BPF_ATOMIC stores into R{op.dst} {reg.type_str()} is not allowed")
        dst = RegState()
        check_mem_access(self, op.dst, op.off, op.size, False, dst=dst, strict=True)
        check_mem_access(self, op.dst, op.off, op.size, True, value=RegState(), strict=True)
        load = 0 if op.op == isa.CMPXCHG else op.src if op.fetch or op.op == isa.XCHG else -1
        if load >= 0:
            r = self.check_reg_dst(load)
            r.mark_unknown()
            if op.size == 4:
                r.coerce_to_size(4)

    def _ld_imm64(self, op: LdImm64) -> None:
        dst = self.check_reg_dst(op.dst)
        if op.pseudo == 0:
            dst.mark_const_scalar(op.value)
            return
        if op.pseudo == isa.PSEUDO_FUNC:
            if not self.has_btf:
                raise Reject("missing btf func_info")
            dst.mark_ptr(RegType.FUNC)
            dst.subprog = op.pc + op.imm + 1
            return
        info = self.maps(op)
        if op.pseudo in (isa.PSEUDO_MAP_VALUE, isa.PSEUDO_MAP_IDX_VALUE):
            dst.mark_ptr(RegType.MAP_VALUE)
            dst.map = info
            dst.off = op.imm2
        else:
            dst.mark_ptr(RegType.MAP_PTR)
            dst.map = info

    def _ld_abs(self, op: LdPacket) -> None:
        if self.prog_type not in (BpfProgType.SCHED_CLS, BpfProgType.SCHED_ACT,
                                  BpfProgType.SOCKET_FILTER):
            raise Reject("BPF_LD_[ABS|IND] instructions not allowed for this program type")
        ctx = self.check_reg_src(6)
        if self.cur.lock is not None:
            raise Reject("BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region")
        if op.src is not None:
            self.check_reg_src(op.src)
        if ctx.type != RegType.CTX:
            raise Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb")
        for r in range(6):
            self.regs[r].mark_not_init()
            self.scratch_reg(r)
        self.regs[0].mark_unknown()

    # ---- conditional jumps ---------------------------------------------------------------
    def check_cond_jmp(self, op: Jump) -> int:
        dst = self.check_reg_src(op.dst)
        if op.src is not None:
            src = self.check_reg_src(op.src)
        else:
            src = RegState()
            src.mark_const_scalar(op.imm)
        jmp32 = not op.is64
        cond = op.cond
        assert cond is not None
        fall, target = op.pc + 1, op.target
        pred = branch_taken_any(dst, src, cond, jmp32)
        # mark_chain_precision on the registers (not the immediate) of a decided branch.
        if (pred >= 0 and (dst.is_scalar or (op.src is not None and src.is_scalar))
                and op.pc not in self.demand):
            raise Restart(op.pc)
        if pred >= 0:
            self.print_state()
            return target if pred == 1 else fall
        other = self.push_stack(target, op.pc)
        oregs = other.cur.regs
        if op.src is not None:
            set_min_max(oregs[op.dst], oregs[op.src], dst, src, cond, jmp32)
        else:
            fake_t = src.copy()
            set_min_max(oregs[op.dst], fake_t, dst, src, cond, jmp32)
        if op.src is not None and src.is_scalar and src.id:
            sync_linked(self.cur, src)
            sync_linked(other, oregs[op.src])
        if dst.is_scalar and dst.id:
            sync_linked(self.cur, dst)
            sync_linked(other, oregs[op.dst])
        if (not jmp32 and op.src is None and op.imm == 0 and cond in (Cond.JEQ, Cond.JNE)
                and dst.maybe_null):
            rid = dst.id
            mark_ptr_or_null(self.cur, rid, cond is Cond.JNE)
            mark_ptr_or_null(other, rid, cond is Cond.JEQ)
        elif op.src is not None and not jmp32:
            match_pkt_pointers(cond, dst, src, self.cur, other, op)
        if not (sane(dst) and sane(src)):
            # This branch cannot happen: let the pushed one run alone.
            pass
        self.print_state()
        return fall


def kernel_imm(insn: isa.Insn, value: int) -> str:
    # KERNEL-DIFF: the kernel prints the map's kernel address for map LD_IMM64s; we print
    # the fd/index form of tcemu.bpf.disasm.  Callbacks print as their raw immediate.
    from tcemu.bpf.disasm import _ldimm64_name
    if insn.src == isa.PSEUDO_FUNC:
        return f"{value:#x}"
    return _ldimm64_name(insn, value)


_ = (S64_MAX, MapInfo)
