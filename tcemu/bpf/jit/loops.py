"""Loops of the translated tier: a block that jumps back to itself.

A loop whose trip count is exact at entry (``v <cond> K`` with ``v += 1`` or ``-= 1`` its
only write, :func:`induction`) runs as a Python ``for`` over ``range``, guarded by one
test at entry that the budget covers every iteration and that the regions its accesses
index stay in bounds; its accesses index the regions directly and, where they read bytes
in order and write nothing, the loop runs over the bytes themselves (:func:`_reduce`).
Otherwise (or when the guard fails) the loop checks the budget every iteration
(:func:`checked`).  :class:`~tcemu.bpf.jit.translate.Translator` calls :func:`loop`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tcemu.bpf import semantics as sem
from tcemu.bpf.jit.cfg import Block
from tcemu.bpf.jit.facts import State, loop_invariant, refine
from tcemu.bpf.jit.out import Out
from tcemu.bpf.jit.values import M32S, Fast
from tcemu.bpf.ops import (
    Alu,
    AluOp,
    Atomic,
    Call,
    CallX,
    Cond,
    CtxStore,
    Jump,
    LdPacket,
    Op,
    Store,
)

if TYPE_CHECKING:
    from tcemu.bpf.jit.translate import Translator

__all__ = ["loop"]


def _reduce(fast: Out, var: int, need: dict[int, tuple[int, int]], loop_range: str,
            writes: bool) -> tuple[str, str | None]:
    """The ``for`` header of a counted loop, and one more entry condition if it needs one.

    When the induction register is only read as the index of accesses to one hoisted region
    (``_oB + rV``), the loop runs over the offsets themselves (``_x`` = ``_oB + rV``).  When,
    moreover, those are its only accesses, they read single bytes in increasing order and
    nothing is written, the loop runs over the bytes (``_b``), once the entry has checked
    that all of them are in the region (so none of them can fault).
    """
    word = re.compile(rf"\br{var}\b")
    text = "\n".join(fast.lines)
    reads = len(word.findall(text))
    for base in need:
        pattern = f"_o{base} + r{var}"
        if not reads or text.count(pattern) != reads:
            continue
        fast.lines = [line.replace(pattern, "_x") for line in fast.lines]
        value = f"(_x - _o{base})"
        fast.info = {line: (pc, None if expr is None else word.sub(value, expr),
                            word.sub(value, count))
                     for line, (pc, expr, count) in fast.info.items()}
        bounds = loop_range[len("range("):-1].split(", ")
        byte = f"_g{base}[_x]"
        if (len(bounds) == 2 and not writes and text.count("_x") == 0
                and sum(line.count("_x") for line in fast.lines)
                == sum(line.count(byte) for line in fast.lines)
                and all(byte in fast.lines[line - 1] for line in fast.info)):
            fast.lines = [line.replace(byte, "_b") for line in fast.lines]
            fast.info = {}
            end = f"_o{base} + {bounds[1]}"
            return (f"_b in _g{base}[_o{base} + {bounds[0]}:{end}]",
                    f"(r{base} & {M32S}) + {bounds[1]} <= len(G[r{base} >> 32])")
        shifted = [f"_o{base} + {bound}" for bound in bounds[:2]] + bounds[2:]
        return f"_x in range({', '.join(shifted)})", None
    return f"r{var} in {loop_range}", None


def loop(tr: Translator, blk: Block, body: list[Op], tail: Jump, entry: State, ind: int) -> None:
    """A block that loops onto itself: a counted ``for`` when the trip count is known
    at entry (guarded, with the checked loop as the fallback), else a checked loop."""
    written = 0
    for op in body:
        written |= tr.use_defs[op.pc][1]
        if isinstance(op, Call | CallX):
            written |= 0b111111
    head = loop_invariant(entry, body, tail, written)
    calls = any(isinstance(op, Call | CallX | LdPacket) for op in body)
    plan = None if calls else induction(tr, body, tail, head)
    if plan is None:
        checked(tr, blk, body, tail, head, ind, calls)
        return
    gen, out = tr.gen, tr.out
    var, at, step, trips, loop_range, final = plan
    size = len(blk.ops)
    fast = Out()
    gen.fast = Fast(var, at, step, 0x7FF & ~written & ~(1 << var), {})
    index = f"(r{var} - _v0)" if step > 0 else f"(_v0 - r{var})"
    gen.count = lambda i: f"n + {index} * {size} + {i + 1}"
    gen.start(fast, ind + 2, blk.ops, head, blk.live_out)
    i = 0
    while i < len(body):
        i += gen.op(body[i], i)
    gen.finish()
    need, gen.fast = gen.fast.need, None
    if not fast.lines:
        fast.put(ind + 2, "pass")
    writes = any(isinstance(op, Store | Atomic | CtxStore) for op in body)
    header, extra = _reduce(fast, var, need, loop_range, writes)
    guard = [f"n + {size} * ({trips}) <= BUDGET"]
    for base, (lo, hi) in sorted(need.items()):
        guard += [f"r{base} >> 32 < len(G)", f"r{base} & {M32S} <= {sem.M32 - hi}"]
        if lo < 0:
            guard.append(f"r{base} & {M32S} >= {-lo}")
    if extra is not None:
        guard.append(extra)
    out.put(ind, f"_v0 = r{var}")
    out.put(ind, f"if {' and '.join(guard)}:")
    for base in sorted(need):
        out.put(ind + 1, f"_g{base} = G[r{base} >> 32]")
        out.put(ind + 1, f"_o{base} = r{base} & {M32S}")
    out.put(ind + 1, f"for {header}:")
    out.splice(fast)
    out.put(ind + 1, f"n += {size} * ({trips})")
    assert blk.fall is not None
    if tr.blocks[blk.fall].live_in >> var & 1:
        out.put(ind + 1, f"r{var} = {final}")
    out.put(ind, "else:")
    checked(tr, blk, body, tail, head, ind + 1, calls)

def induction(tr: Translator, body: list[Op], tail: Jump, head: State,
              ) -> tuple[int, int, int, str, str, int] | None:
    """A loop whose test is ``v <cond> K`` and whose only write of v is ``v += 1`` (or
    ``-= 1``), when the invariant bounds v so that the count of iterations is exact:
    (v, index of the step, step, trips, range of v's values in the body, v after)."""
    cond = tail.cond
    if cond is None or tail.src is not None or not tail.is64 or tail.dst == 10:
        return None
    var = tail.dst
    steps = [i for i, op in enumerate(body) if tr.use_defs[op.pc][1] >> var & 1]
    if len(steps) != 1:
        return None
    op = body[steps[0]]
    if not (isinstance(op, Alu) and op.is64 and op.src is None
            and op.op in (AluOp.ADD, AluOp.SUB) and op.imm in (1, -1)):
        return None
    step = op.imm if op.op is AluOp.ADD else -op.imm
    k = tail.imm & sem.M64
    lo, hi = head[var]
    if step > 0:
        if cond in (Cond.JLT, Cond.JNE) and hi < k:
            return var, steps[0], step, f"{k} - _v0", f"range(_v0, {k})", k
        if cond is Cond.JLE and hi <= k < sem.M64:
            return var, steps[0], step, f"{k + 1} - _v0", f"range(_v0, {k + 1})", k + 1
        return None
    if cond in (Cond.JNE, Cond.JGT) and lo > k:
        return var, steps[0], step, f"_v0 - {k}", f"range(_v0, {k}, -1)", k
    if cond is Cond.JGE and 1 <= k <= lo:
        return var, steps[0], step, f"_v0 - {k - 1}", f"range(_v0, {k - 1}, -1)", k - 1
    return None

def checked(tr: Translator, blk: Block, body: list[Op], tail: Jump, head: State, ind: int,
            calls: bool) -> None:
    """The loop with the budget checked every iteration (``for`` over the iterations
    the budget allows, or ``while`` with an exact count when the body calls out)."""
    gen, out = tr.gen, tr.out
    size = len(blk.ops)
    counted = not calls
    if counted:
        out.put(ind, f"for _i in range((BUDGET - n) // {size} + 1):")
        gen.count = lambda i: f"n + _i * {size} + {i + 1}"
    else:
        out.put(ind, "while True:")
        gen.count = gen._count
    gen.start(out, ind + 1, blk.ops, head, blk.live_out)
    if not counted:
        out.put(ind + 1, f"n += {size}")
    i = 0
    while i < len(body):
        i += gen.op(body[i], i)
    gen.finish()
    if tail.cond is not None:
        text, info = gen.cond(tail, negate=True)
        out.put(ind + 1, f"if {text}: break", info)
    elif counted and out.lines[-1].startswith(f"{' ' * ind}for "):
        out.put(ind + 1, "pass")
    if counted:
        out.put(ind, "else:")
        out.put(ind + 1, f"raise OVER({blk.start})")
        if tail.cond is not None:
            out.put(ind, f"n += {size} * (_i + 1)")
    else:
        out.put(ind + 1, f"if n > BUDGET: raise OVER({blk.start})")
    gen.count = gen._count
    if blk.fall is not None:
        tr.edges[(blk.index, blk.fall)] = refine(gen.st, tail, False)
