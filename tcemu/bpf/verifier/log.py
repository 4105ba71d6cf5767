"""The verifier log, written as kernel/bpf/log.c and verifier.c write it.

``Log`` is the ``struct bpf_verifier_log`` buffer: text can be reset to an earlier
position (``bpf_vlog_reset``) so that, at log level 1, only the path that failed remains.
``reg_str`` and ``state_str`` follow ``print_reg_state`` / ``print_verifier_state``
(``R1=ctx() R10=fp0``, ``R0=scalar(smin=smin32=0,smax=umax=...,var_off=(0x0; 0xff))``).
"""

from __future__ import annotations

import io

from tcemu.bpf.verifier.state import (
    S32_MAX,
    S32_MIN,
    S64_MAX,
    S64_MIN,
    FuncState,
    RegState,
    RegType,
    StackSlot,
    s64,
)
from tcemu.bpf.verifier.tnum import U32, U64, t_is_const, t_is_unknown, t_str

__all__ = ["Log", "reg_str", "state_str"]

BPF_LOG_ALIGNMENT = 40
BPF_LOG_MIN_ALIGNMENT = 8


def snum(v: int) -> str:
    """``verbose_snum``: decimal within s16, hex otherwise."""
    v = s64(v)
    return str(v) if -32768 <= v <= 32767 else f"{v & U64:#x}"


def unum(v: int) -> str:
    return str(v) if v <= 0xFFFF else f"{v:#x}"


def _ranges(r: RegState) -> list[str]:
    """``print_scalar_ranges``: equal bounds share one value (``smax=umax=255``)."""
    s32min = r.s32_min if -32768 <= r.s32_min <= 32767 else r.s32_min & U32
    s32max = r.s32_max if -32768 <= r.s32_max <= 32767 else r.s32_max & U32
    names = ["smin", "smax", "umin", "umax", "smin32", "smax32", "umin32", "umax32"]
    vals = [r.smin & U64, r.smax & U64, r.umin, r.umax, s32min & U64, s32max & U64,
            r.u32_min, r.u32_max]
    omit = [r.smin == S64_MIN, r.smax == S64_MAX, r.umin == 0, r.umax == U64,
            r.s32_min == S32_MIN, r.s32_max == S32_MAX, r.u32_min == 0, r.u32_max == U32]
    out: list[str] = []
    for i, name in enumerate(names):
        if omit[i]:
            continue
        neg1 = name[0] == "s" and s64(vals[i]) < 0
        text = f"{name}="
        for j in range(i + 2, len(names), 2):
            if omit[j] or vals[j] != vals[i]:
                continue
            if (names[j][0] == "s" and s64(vals[j]) < 0) != neg1:
                continue
            omit[j] = True
            text += f"{names[j]}="
        text += snum(vals[i]) if name[0] == "s" else unum(vals[i])
        out.append(text)
    return out


def reg_str(r: RegState, frameno: int) -> str:
    """``print_reg_state``."""
    if r.type == RegType.SCALAR and t_is_const(r.var_off):
        return snum(r.var_off[0])
    text = r.type_str()
    if r.type == RegType.STACK:
        if r.frameno != frameno:
            text += f"[{r.frameno}]"
        if t_is_const(r.var_off):
            return text + snum(r.var_off[0] + r.off)
    parts: list[str] = []
    if r.id:
        parts.append(f"id={r.id}" + (f"{r.off:+d}" if r.add_const else ""))
    if r.ref_obj_id:
        parts.append(f"ref_obj_id={r.ref_obj_id}")
    if r.type in (RegType.MAP_PTR, RegType.MAP_VALUE, RegType.MAP_KEY) and r.map is not None:
        if r.map.name:
            parts.append(f"map={r.map.name}")
        parts.append(f"ks={r.map.key_size},vs={r.map.value_size}")
    if r.type != RegType.SCALAR and r.off:
        parts.append(f"off={snum(r.off)}")
    if r.is_pkt:
        parts.append(f"r={unum(r.range & U64)}")
    if r.type == RegType.MEM:
        parts.append(f"sz={unum(r.mem_size)}")
    if t_is_const(r.var_off):
        if r.var_off[0]:
            parts.append(f"imm={snum(r.var_off[0])}")
    else:
        parts.extend(_ranges(r))
        if not t_is_unknown(r.var_off):
            parts.append(f"var_off={t_str(r.var_off)}")
    return f"{text}({','.join(parts)})"


def state_str(f: FuncState, regs: set[int] | None = None,
              slots: set[int] | None = None, refs: list[tuple[int, int]] | None = None) -> str:
    """``print_verifier_state``: `` R1=ctx() R10=fp0 fp-8=mmmmmmmm`` (with the leading space)."""
    out = [f" frame{f.frameno}:"] if f.frameno else []
    for i, r in enumerate(f.regs):
        if r.type == RegType.NOT_INIT or (regs is not None and i not in regs):
            continue
        out.append(f" R{i}={reg_str(r, f.frameno)}")
    for spi, slot in enumerate(f.stack):
        if slots is not None and spi not in slots:
            continue
        types = "".join(slot.slot_type)
        if all(t == StackSlot.INVALID for t in types):
            continue
        off = -(spi + 1) * 8
        if slot.is_spill():
            cut = types.index(StackSlot.SPILL)
            out.append(f" fp{off}={types[:cut]}{reg_str(slot.spilled, f.frameno)}")
        else:
            out.append(f" fp{off}={types}")
    if refs:
        out.append(" refs=" + ",".join(str(r[0]) for r in refs))
    if f.callback_ret:
        out.append(" cb")
    return "".join(out)


class Log:
    """The log buffer with the kernel's reset and alignment rules."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.buf = io.StringIO()
        self.prev_log_pos = 0
        self.prev_insn_print_pos = 0

    @property
    def end_pos(self) -> int:
        return self.buf.tell()

    def write(self, text: str) -> None:
        if self.level:
            self.buf.write(text)

    def reset(self, pos: int) -> None:
        if pos <= self.end_pos:
            self.buf.seek(pos)
            self.buf.truncate()

    def insn_line(self, idx: int, text: str) -> None:
        self.prev_log_pos = self.end_pos
        self.write(f"{idx}: {text}\n")
        self.prev_insn_print_pos = self.end_pos - self.prev_log_pos
        self.prev_log_pos = self.end_pos

    def insn_state(self, idx: int, text: str) -> None:
        """``print_insn_state``: append ``; state`` to the insn line just printed, or start
        an ``idx:`` line."""
        if self.prev_log_pos and self.prev_log_pos == self.end_pos:
            self.reset(self.prev_log_pos - 1)
            pos = self.prev_insn_print_pos
            width = -(-max(pos + BPF_LOG_MIN_ALIGNMENT // 2, BPF_LOG_ALIGNMENT)
                      // BPF_LOG_MIN_ALIGNMENT) * BPF_LOG_MIN_ALIGNMENT - pos - 1
            self.write(" " * width + ";" + text + "\n")
        else:
            self.write(f"{idx}:{text}\n")

    def text(self) -> str:
        return self.buf.getvalue()
