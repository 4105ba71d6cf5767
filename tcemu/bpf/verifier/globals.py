"""Global (BTF ``linkage=global``) functions: verified once, on their own, from their BTF.

Mirrors kernel/bpf/verifier.c and btf.c: ``btf_prepare_func_args`` turns the prototype
into argument kinds (a scalar for integers and enums, the context for a pointer to the
program type's context struct, nullable memory of the pointee's size for other pointers);
at a call ``btf_check_subprog_call`` checks the caller's registers against them, the call
returns an unknown scalar (``Func#N ('name') is global and assumed valid.``); after the
main program each called global function is verified from a state built from the same
kinds (``Validating name() func#N...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf.btf import BtfError
from tcemu.bpf.btf.types import Enum, Func, FuncProto, Int, Ptr, Struct
from tcemu.bpf.verifier.checks import Reject, check_helper_mem
from tcemu.bpf.verifier.state import FuncState, RegState, RegType, VState

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.bpf.verifier.explore import Verifier

__all__ = ["GlobalFunc", "check_global_call", "entry_state", "find_globals", "find_statics",
           "static_arg_mismatch"]

_CTX_STRUCTS = {"__sk_buff"}


@dataclass(frozen=True)
class GlobalFunc:
    index: int                                  # subprogram number (func#N)
    name: str
    # ("scalar"|"ctx"|"mem", mem size); (why, -1) for a pointer btf_prepare_func_args
    # refuses
    args: tuple[tuple[str, int], ...]


def _arg_kind(program: Program, type_id: int) -> tuple[str, int]:
    btf = program.btf
    assert btf is not None
    t = btf[btf.resolve(type_id)]
    if isinstance(t, Int | Enum):
        return ("scalar", 0)
    if isinstance(t, Ptr):
        target_id = btf.resolve(t.type)
        target = btf[target_id]
        if isinstance(target, Struct) and target.name in _CTX_STRUCTS:
            return ("ctx", 0)
        try:
            return ("mem", btf.size_of(target_id))
        except BtfError:
            # btf_resolve_size fails (void *, a forward declaration, a function):
            # btf_prepare_func_args refuses the prototype at the first call.
            kind = "UNKNOWN" if target_id == 0 else target.kind.name
            return (f"('{kind} {getattr(target, 'name', '')}') size cannot be determined: -22",
                    -1)
    return ("scalar", 0)


def _functions(program: Program, subprogs: list[int],
               ) -> Iterator[tuple[int, int, Func, FuncProto]]:
    """(index, entry slot, BTF FUNC, its prototype) of every non-main subprogram the
    program's BTF describes."""
    btf = program.btf
    if btf is None or len(program.origins) < len(program.insns):
        return
    for index, start in enumerate(subprogs):
        if index == 0:
            continue
        section, insn = program.origins[start]
        info = btf.func_for(section, insn)
        func = btf[info.type_id] if info is not None else None
        if not isinstance(func, Func):
            continue
        proto = btf[func.proto]
        if isinstance(proto, FuncProto):
            yield index, start, func, proto


def find_globals(program: Program, subprogs: list[int]) -> dict[int, GlobalFunc]:
    """Subprogram entry slot -> its description, for every global non-main function."""
    return {start: GlobalFunc(index, func.name,
                              tuple(_arg_kind(program, p.type) for p in proto.params))
            for index, start, func, proto in _functions(program, subprogs)
            if int(func.linkage) == 1}


def find_statics(program: Program, subprogs: list[int]) -> dict[int, GlobalFunc]:
    """Subprogram entry slot -> the arguments its BTF prototype declares, for every static
    function: "scalar" (integers, enums), "ctx", or "any" (other pointers and types, which
    ``btf_check_func_arg_match`` does not check for a static function)."""
    btf = program.btf
    out: dict[int, GlobalFunc] = {}
    for index, start, func, proto in _functions(program, subprogs):
        if int(func.linkage) == 1 or btf is None:
            continue
        args = []
        for param in proto.params:
            kind, _ = _arg_kind(program, param.type)
            t = btf[btf.resolve(param.type)]
            args.append((kind if kind == "ctx" or isinstance(t, Int | Enum) else "any", 0))
        out[start] = GlobalFunc(index, func.name, tuple(args))
    return out


def static_arg_mismatch(v: Verifier, fn: GlobalFunc) -> str | None:
    """``btf_check_subprog_call`` for a static function: the first register that does not
    match the prototype (compilers drop or change static functions' arguments, so the
    kernel only logs it and marks the BTF unreliable)."""
    regs = v.regs
    for i, (kind, _) in enumerate(fn.args):
        reg = regs[i + 1]
        if kind == "scalar" and not reg.is_scalar:
            return f"R{i + 1} is not a scalar"
        if kind == "ctx" and reg.type != RegType.CTX:
            return f"arg#{i} expects pointer to ctx"
    return None


def check_global_call(v: Verifier, fn: GlobalFunc) -> None:
    """``btf_check_subprog_call`` plus the global-call part of ``check_func_call``."""
    regs = v.regs
    try:
        for i, (kind, size) in enumerate(fn.args):
            if size < 0:
                raise Reject(f"arg#{i} reference type{kind}")
        for i, (kind, size) in enumerate(fn.args):
            regno = i + 1
            reg = v.check_reg_src(regno)
            if kind == "scalar" and not reg.is_scalar:
                raise Reject(f"R{regno} is not a scalar")
            if kind == "ctx" and reg.type != RegType.CTX:
                raise Reject(f"arg#{i} expects pointer to ctx")
            if kind == "mem" and not (reg.is_scalar and reg.var_off == (0, 0)):
                check_helper_mem(v, regno, size, False, False)
    except Reject as err:
        raise Reject(f"{err.message}\nCaller passes invalid args into func#{fn.index} "
                     f"('{fn.name}')") from None
    if v.log.level:
        v.log.write(f"Func#{fn.index} ('{fn.name}') is global and assumed valid.\n")
    for r in range(6):
        regs[r].mark_not_init()
        v.scratch_reg(r)
    regs[0].mark_unknown()


def entry_state(v: Verifier, fn: GlobalFunc, start: int) -> VState:
    """The state a global function is verified from (``btf_prepare_func_args``)."""
    st = VState()
    frame = FuncState(0, fn.index, -1)
    for i, (kind, size) in enumerate(fn.args):
        reg = frame.regs[i + 1]
        if kind == "ctx":
            reg.mark_ptr(RegType.CTX)
        elif kind == "mem":
            reg.mark_ptr(RegType.MEM)
            reg.mem_size = size
            reg.maybe_null = True
            reg.id = v.new_id()
        else:
            reg.mark_unknown()
    frame.regs[10].mark_ptr(RegType.STACK)
    st.frames.append(frame)
    st.branches = 1
    st.insn_idx = start
    return st


_ = RegState
