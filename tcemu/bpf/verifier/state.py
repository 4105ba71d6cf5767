"""Abstract state of the verifier: registers, stack slots, frames, whole states.

Mirrors ``struct bpf_reg_state``, ``struct bpf_stack_state``, ``struct bpf_func_state`` and
``struct bpf_verifier_state`` (include/linux/bpf_verifier.h) and the bounds bookkeeping of
kernel/bpf/verifier.c (``__update_reg_bounds``, ``__reg_deduce_bounds``,
``__reg_bound_offset``, ``reg_bounds_sync``).  Scalars carry a tnum and signed/unsigned
min/max for 64 and 32 bits; pointers carry a type, a fixed offset, a variable offset (the
same tnum and bounds) and type-specific data (packet range, map, memory size).
"""

from __future__ import annotations

from dataclasses import dataclass

from tcemu.bpf.verifier.tnum import (
    U32,
    U64,
    UNKNOWN,
    Tnum,
    t_clear_subreg,
    t_intersect,
    t_is_const,
    t_or,
    t_range,
    t_subreg,
)

__all__ = ["S32_MAX", "S32_MIN", "S64_MAX", "S64_MIN", "FuncState", "MapInfo", "RegState",
           "RegType", "StackSlot", "VState", "s32", "s64"]

S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1
S32_MIN = -(1 << 31)
S32_MAX = (1 << 31) - 1
MAX_BPF_STACK = 512
BPF_REG_SIZE = 8


def s64(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


class RegType:
    """``enum bpf_reg_type`` base types (the subset tc programs meet), as printed."""

    NOT_INIT = "not_init"
    SCALAR = "scalar"
    CTX = "ctx"
    MAP_PTR = "map_ptr"
    MAP_VALUE = "map_value"
    MAP_KEY = "map_key"
    STACK = "fp"
    PKT = "pkt"
    PKT_META = "pkt_meta"
    PKT_END = "pkt_end"
    MEM = "mem"
    FUNC = "func"
    SOCK = "sock_common"
    SOCKET = "sock"


@dataclass(frozen=True)
class MapInfo:
    """What the verifier knows of a map: ``struct bpf_map`` fields it reads."""

    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str = ""
    flags: int = 0
    frozen: bool = False
    inner: MapInfo | None = None
    rodata: bytes | None = None
    btf: bool = False          # created with BTF key/value types
    # Offset of the value's top-level ``struct bpf_spin_lock`` (the map's btf_record), -1
    # when the value has none.
    spin_lock_off: int = -1


class RegState:
    """One register (or spilled value): ``struct bpf_reg_state``."""

    __slots__ = ("add_const", "frameno", "id", "map", "maybe_null", "mem_size", "off", "range",
                 "ref_obj_id", "ringbuf", "s32_max", "s32_min", "smax", "smin", "subprog",
                 "type", "u32_max", "u32_min", "umax", "umin", "var_off")

    def __init__(self) -> None:
        self.type = RegType.NOT_INIT
        self.add_const = 0            # BPF_ADD_CONST32/64: a scalar linked as id + off
        self.maybe_null = False
        self.ringbuf = False
        self.off = 0
        self.range = 0
        self.id = 0
        self.ref_obj_id = 0
        self.map: MapInfo | None = None
        self.mem_size = 0
        self.frameno = 0
        self.subprog = 0
        self.var_off: Tnum = UNKNOWN
        self.smin = S64_MIN
        self.smax = S64_MAX
        self.umin = 0
        self.umax = U64
        self.s32_min = S32_MIN
        self.s32_max = S32_MAX
        self.u32_min = 0
        self.u32_max = U32

    def copy(self) -> RegState:
        r = RegState.__new__(RegState)
        r.assign(self)
        return r

    def assign(self, other: RegState) -> None:
        # Spelled out: this is the verifier's hottest function.
        self.add_const = other.add_const
        self.frameno = other.frameno
        self.id = other.id
        self.map = other.map
        self.maybe_null = other.maybe_null
        self.mem_size = other.mem_size
        self.off = other.off
        self.range = other.range
        self.ref_obj_id = other.ref_obj_id
        self.ringbuf = other.ringbuf
        self.s32_max = other.s32_max
        self.s32_min = other.s32_min
        self.smax = other.smax
        self.smin = other.smin
        self.subprog = other.subprog
        self.type = other.type
        self.u32_max = other.u32_max
        self.u32_min = other.u32_min
        self.umax = other.umax
        self.umin = other.umin
        self.var_off = other.var_off

    def key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in RegState.__slots__)

    # ---- type predicates ------------------------------------------------------------
    @property
    def is_scalar(self) -> bool:
        return self.type == RegType.SCALAR

    @property
    def is_pointer(self) -> bool:
        return self.type not in (RegType.SCALAR, RegType.NOT_INIT)

    @property
    def is_pkt(self) -> bool:
        return self.type in (RegType.PKT, RegType.PKT_META)

    def type_str(self) -> str:
        """``reg_type_str``: ``map_value_or_null``, ``ringbuf_mem``, ``fp``..."""
        if self.type == RegType.NOT_INIT:
            return "?"
        prefix = "ringbuf_" if self.ringbuf else ""
        return prefix + self.type + ("_or_null" if self.maybe_null else "")

    def is_const(self) -> bool:
        return t_is_const(self.var_off)

    # ---- constructors -----------------------------------------------------------------
    def mark_not_init(self) -> None:
        self.__init__()  # type: ignore[misc]

    def mark_unknown(self) -> None:
        """``__mark_reg_unknown``: a scalar about which nothing is known."""
        self.__init__()  # type: ignore[misc]
        self.type = RegType.SCALAR

    def mark_known(self, value: int) -> None:
        """``__mark_reg_known``: a scalar (or pointer offset) equal to ``value``."""
        v = value & U64
        self.id = 0
        self.ref_obj_id = 0
        self.off = 0
        self.add_const = 0
        self.var_off = (v, 0)
        self.smin = self.smax = s64(v)
        self.umin = self.umax = v
        lo = v & U32
        self.s32_min = self.s32_max = s32(lo)
        self.u32_min = self.u32_max = lo

    def mark_const_scalar(self, value: int) -> None:
        self.mark_unknown()
        self.mark_known(value)

    def mark_known_zero(self) -> None:
        self.mark_known(0)

    def mark_ptr(self, rtype: str) -> None:
        """A fresh pointer of ``rtype`` with zero offsets (``mark_reg_known_zero`` + type)."""
        self.__init__()  # type: ignore[misc]
        self.type = rtype
        self.mark_known(0)

    def mark32_known(self, value: int) -> None:
        v = value & U32
        self.var_off = (self.var_off[0] & ~U32 & U64 | v, self.var_off[1] & ~U32 & U64)
        self.s32_min = self.s32_max = s32(v)
        self.u32_min = self.u32_max = v

    def mark64_unbounded(self) -> None:
        self.smin, self.smax, self.umin, self.umax = S64_MIN, S64_MAX, 0, U64

    def mark32_unbounded(self) -> None:
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = S32_MIN, S32_MAX, 0, U32

    def unbounded(self) -> bool:
        return (self.smin == S64_MIN and self.smax == S64_MAX and self.umin == 0
                and self.umax == U64 and self.s32_min == S32_MIN and self.s32_max == S32_MAX
                and self.u32_min == 0 and self.u32_max == U32)

    # ---- bounds bookkeeping -----------------------------------------------------------
    def update32(self) -> None:
        v, m = self.var_off[0] & U32, self.var_off[1] & U32
        self.s32_min = max(self.s32_min, s32(v | (m & 0x80000000)))
        self.s32_max = min(self.s32_max, s32(v | (m & 0x7FFFFFFF)))
        self.u32_min = max(self.u32_min, v)
        self.u32_max = min(self.u32_max, v | m)

    def update64(self) -> None:
        v, m = self.var_off
        self.smin = max(self.smin, s64(v | (m & (1 << 63))))
        self.smax = min(self.smax, s64(v | (m & S64_MAX)))
        self.umin = max(self.umin, v)
        self.umax = min(self.umax, v | m)

    def update_bounds(self) -> None:
        self.update32()
        self.update64()

    def _deduce32(self) -> None:
        if self.umin >> 32 == self.umax >> 32:
            self.u32_min = max(self.u32_min, self.umin & U32)
            self.u32_max = min(self.u32_max, self.umax & U32)
            if s32(self.umin) <= s32(self.umax):
                self.s32_min = max(self.s32_min, s32(self.umin))
                self.s32_max = min(self.s32_max, s32(self.umax))
        if self.smin >> 32 == self.smax >> 32:
            self.u32_min = max(self.u32_min, self.smin & U32)
            self.u32_max = min(self.u32_max, self.smax & U32)
            if s32(self.smin) <= s32(self.smax):
                self.s32_min = max(self.s32_min, s32(self.smin))
                self.s32_max = min(self.s32_max, s32(self.smax))
        if (((self.umin >> 32) + 1) & U32 == (self.umax >> 32) & U32
                and s32(self.umin) < 0 and s32(self.umax) >= 0):
            self.s32_min = max(self.s32_min, s32(self.umin))
            self.s32_max = min(self.s32_max, s32(self.umax))
        if (((self.smin >> 32) + 1) & U32 == (self.smax >> 32) & U32
                and s32(self.smin) < 0 and s32(self.smax) >= 0):
            self.s32_min = max(self.s32_min, s32(self.smin))
            self.s32_max = min(self.s32_max, s32(self.smax))
        if s32(self.u32_min) <= s32(self.u32_max):
            self.s32_min = max(self.s32_min, s32(self.u32_min))
            self.s32_max = min(self.s32_max, s32(self.u32_max))
        if self.s32_min & U32 <= self.s32_max & U32:
            self.u32_min = max(self.s32_min & U32, self.u32_min)
            self.u32_max = min(self.s32_max & U32, self.u32_max)

    def _deduce64(self) -> None:
        if s64(self.umin) <= s64(self.umax):
            self.smin = max(self.smin, s64(self.umin))
            self.smax = min(self.smax, s64(self.umax))
        if self.smin & U64 <= self.smax & U64:
            self.umin = max(self.smin & U64, self.umin)
            self.umax = min(self.smax & U64, self.umax)
        elif self.umax < self.smin & U64:
            self.smin = s64(self.umin)
            self.umax = min(self.umax, self.smax & U64)
        elif self.smax & U64 < self.umin:
            self.smax = s64(self.umax)
            self.umin = max(self.umin, self.smin & U64)

    def _deduce_mixed(self) -> None:
        hi = ~U32 & U64
        self.umin = max(self.umin, (self.umin & hi) | self.u32_min)
        self.umax = min(self.umax, (self.umax & hi) | self.u32_max)
        self.smin = max(self.smin, s64((self.smin & hi) | self.u32_min))
        self.smax = min(self.smax, s64((self.smax & hi) | self.u32_max))
        if self.s32_min >= 0 and self.smin >= S32_MIN and self.smax <= S32_MAX:
            self.smin = self.umin = self.s32_min
            self.smax = self.umax = self.s32_max
            self.var_off = t_intersect(self.var_off, t_range(self.smin, self.smax))

    def deduce_bounds(self) -> None:
        self._deduce32()
        self._deduce64()
        self._deduce_mixed()

    def bound_offset(self) -> None:
        var64 = t_intersect(self.var_off, t_range(self.umin, self.umax))
        var32 = t_intersect(t_subreg(var64), t_range(self.u32_min, self.u32_max))
        self.var_off = t_or(t_clear_subreg(var64), var32)

    def sync(self) -> None:
        """``reg_bounds_sync``."""
        v, m = self.var_off
        if not m and self.umin <= v <= self.umax and self.smin <= s64(v) <= self.smax and (
                self.u32_min <= v & U32 <= self.u32_max
                and self.s32_min <= s32(v) <= self.s32_max):
            # A constant within its bounds: every bound collapses onto it.
            self.smin = self.smax = s64(v)
            self.umin = self.umax = v
            self.s32_min = self.s32_max = s32(v)
            self.u32_min = self.u32_max = v & U32
            return
        self.update_bounds()
        self.deduce_bounds()
        self.deduce_bounds()
        self.bound_offset()
        self.update_bounds()

    def assign_32_into_64(self) -> None:
        self.umin, self.umax = self.u32_min, self.u32_max
        if 0 <= self.s32_min <= S32_MAX and 0 <= self.s32_max <= S32_MAX:
            self.smin, self.smax = self.s32_min, self.s32_max
        else:
            self.smin, self.smax = 0, U32

    def zext_32_to_64(self) -> None:
        self.var_off = t_subreg(self.var_off)
        self.assign_32_into_64()

    def coerce_to_size(self, size: int) -> None:
        """``coerce_reg_to_size``: keep the low ``size`` bytes (a narrow load)."""
        mask = (1 << (size * 8)) - 1
        self.var_off = (self.var_off[0] & mask, self.var_off[1] & mask)
        if self.umin & ~mask == self.umax & ~mask:
            self.umin &= mask
            self.umax &= mask
        else:
            self.umin, self.umax = 0, mask
        self.smin, self.smax = self.umin, self.umax
        if size < 4:
            self.mark32_unbounded()
        self.sync()

    def range_within(self, cur: RegState) -> bool:
        return (self.umin <= cur.umin and cur.umax <= self.umax and self.smin <= cur.smin
                and cur.smax <= self.smax and self.u32_min <= cur.u32_min
                and cur.u32_max <= self.u32_max and self.s32_min <= cur.s32_min
                and cur.s32_max <= self.s32_max)


class StackSlot:
    """One 8-byte stack slot: ``slot_type[8]`` and the spilled register."""

    __slots__ = ("slot_type", "spilled")

    INVALID = "?"
    SPILL = "r"
    MISC = "m"
    ZERO = "0"

    def __init__(self) -> None:
        self.slot_type = ["?"] * BPF_REG_SIZE
        self.spilled = RegState()

    def copy(self) -> StackSlot:
        s = StackSlot.__new__(StackSlot)
        s.slot_type = list(self.slot_type)
        s.spilled = self.spilled.copy()
        return s

    def is_spill(self) -> bool:
        return self.slot_type[BPF_REG_SIZE - 1] == StackSlot.SPILL


class FuncState:
    """One call frame: ``struct bpf_func_state``."""

    __slots__ = ("callback_ret", "callsite", "frameno", "regs", "stack", "subprog")

    def __init__(self, frameno: int, subprog: int, callsite: int) -> None:
        self.frameno = frameno
        self.subprog = subprog
        self.callsite = callsite
        self.regs = [RegState() for _ in range(11)]
        self.stack: list[StackSlot] = []   # index spi: slot at fp-8*(spi+1)
        self.callback_ret: bool = False

    def copy(self) -> FuncState:
        f = FuncState.__new__(FuncState)
        f.frameno = self.frameno
        f.subprog = self.subprog
        f.callsite = self.callsite
        f.callback_ret = self.callback_ret
        f.regs = [r.copy() for r in self.regs]
        f.stack = [s.copy() for s in self.stack]
        return f

    def grow_stack(self, nslots: int) -> None:
        while len(self.stack) < nslots:
            self.stack.append(StackSlot())


class VState:
    """A whole verifier state (``struct bpf_verifier_state``): frames and references."""

    __slots__ = ("branches", "frames", "hit_cnt", "insn_idx", "lock", "miss_cnt", "parent",
                 "refs")

    def __init__(self) -> None:
        self.frames: list[FuncState] = []
        # (ref id, insn that acquired it), in acquisition order; a held bpf_spin_lock is
        # one of them (REF_TYPE_LOCK, the id of the map value register it was taken through)
        self.refs: list[tuple[int, int]] = []
        self.lock: tuple[int, MapInfo] | None = None   # the held lock: (id, map)
        self.parent: VState | None = None
        self.branches = 0
        self.insn_idx = 0
        self.hit_cnt = 0
        self.miss_cnt = 0

    def copy(self) -> VState:
        v = VState.__new__(VState)
        v.frames = [f.copy() for f in self.frames]
        v.refs = list(self.refs)
        v.lock = self.lock
        v.parent = self.parent
        v.branches = 0
        v.insn_idx = self.insn_idx
        v.hit_cnt = v.miss_cnt = 0
        return v

    @property
    def cur(self) -> FuncState:
        return self.frames[-1]

    def ptr_refs(self) -> list[tuple[int, int]]:
        """The references to pointers (REF_TYPE_PTR): every one but the held lock."""
        return [r for r in self.refs if self.lock is None or r[0] != self.lock[0]]

    def all_regs(self) -> list[RegState]:
        """Every register and spilled register of every frame (``bpf_for_each_reg_in_vstate``)."""
        out: list[RegState] = []
        for f in self.frames:
            out.extend(f.regs)
            out.extend(s.spilled for s in f.stack if s.is_spill())
        return out
