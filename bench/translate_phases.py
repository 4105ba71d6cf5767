"""Where the translated tier's time goes on the generated 4,000-instruction program.

    python bench/translate_phases.py [--samples N]

Splits what ``bench/run.py`` reports as ``translate.jit`` (ready to run) and
``translate.jit_all`` (everything translated) into phases, each timed on its own with the
code cache empty: the runner's pre-pass (load-time checks, cache key), the whole-program
analyses (use/def sets, blocks, liveness, the structural plan, the small subprograms and
the drivers of segmented ones: ``Translator.prepare``), ``compile()`` of that part, then
the generation and the ``compile()`` of every segment.  Medians of independent samples,
interleaved; nothing is asserted about a time.  Uses the translator's internals, so it
measures this commit only (``run.py`` is the suite that compares commits).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench_programs import FNV_PACKET, generated_source
from bench_util import machine_info, measure_interleaved, now_ns

from tcemu.bpf import Program, Vm, assemble
from tcemu.bpf.jit.runner import CODE_CACHE
from tcemu.bpf.jit.translate import Translator
from tcemu.bpf.ops import Call, CtxLoad, CtxStore, LdImm64


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args(argv)
    for key, value in machine_info().items():
        print(f"{key:>18}: {value}")
    raw = assemble(generated_source("ours")).to_bytes()

    def decoded() -> Program:
        prog = Program.from_bytes(raw)
        prog.ops  # noqa: B018 - decoding is not the translator's
        prog.subprogs  # noqa: B018
        return prog

    def prepass() -> float:
        prog, vm = decoded(), Vm()
        start = now_ns()
        resolved: dict[int, int] = {}
        ctx = []
        for op in prog.ops:
            if isinstance(op, LdImm64):
                resolved[op.pc] = vm.resolve_ldimm64(prog, op)
            elif isinstance(op, Call):
                vm.check_call(op)
            elif isinstance(op, CtxLoad | CtxStore):
                ctx.append(op)
        CODE_CACHE.get((prog.to_bytes(), tuple(ctx), tuple(resolved.values())))
        return (now_ns() - start) / 1e6

    phases: dict[str, list[float]] = {}

    def split() -> float:
        """One pass through every phase, recording each; returns the total."""
        prog, vm = decoded(), Vm()
        t0 = now_ns()
        tr = Translator(vm, prog, prog.ops)
        heads = tr.prepare()
        t1 = now_ns()
        compile("\n".join(tr.out.lines) + "\n", "<main>", "exec")
        t2 = now_ns()
        outs = [tr.segment(pc) for pc in heads]
        t3 = now_ns()
        for out in outs:
            compile("\n".join(out.lines) + "\n", "<seg>", "exec")
        t4 = now_ns()
        for name, (a, b) in {"prepare": (t0, t1), "compile_main": (t1, t2),
                             "segments_source": (t2, t3), "segments_compile": (t3, t4)}.items():
            phases.setdefault(name, []).append((b - a) / 1e6)
        return (t4 - t0) / 1e6

    def runner() -> float:
        prog, vm = decoded(), Vm()
        CODE_CACHE.clear()
        start = now_ns()
        vm.runner(prog, "jit")
        return (now_ns() - start) / 1e6

    def first_run() -> float:
        prog, vm = decoded(), Vm()
        CODE_CACHE.clear()
        start = now_ns()
        vm.run(prog, memory=FNV_PACKET, tier="jit")
        return (now_ns() - start) / 1e6

    cases: dict[str, Callable[[], float]] = {"prepass": prepass, "phases_total": split,
                                             "runner": runner, "first_run_decoded": first_run}
    stats = measure_interleaved(cases, args.samples)
    tr = Translator(Vm(), decoded(), decoded().ops)
    heads = tr.prepare()
    print(f"\n{len(heads)} segments; main part {len(tr.out.lines)} lines")
    print("| phase | ms (median) | min | max |\n|---|---:|---:|---:|")
    for name, samples in phases.items():
        ordered = sorted(samples)
        print(f"| {name} | {ordered[len(ordered) // 2]:.2f} | {ordered[0]:.2f} | "
              f"{ordered[-1]:.2f} |")
    for name, st in stats.items():
        print(f"| {name} | {st.median:.2f} | {st.min:.2f} | {st.max:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
