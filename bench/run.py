"""tcemu's benchmark suite: eBPF execution speed per tier and translation time.

    python bench/run.py [--quick] [--json out.json] [--samples N] [--no-kernel]

Measures, in one process and one run (see bench/README.md and BENCHMARKS.md):

1. ns per executed eBPF instruction on FNV-1a (64 packet bytes x 256 rounds), for the
   ``interp`` and ``jit`` tiers (steady state: one Vm, program compiled by a warm-up run)
   and for the running kernel through BPF_PROG_TEST_RUN (SCHED_CLS, JIT as configured);
   the results of all three are checked to agree with a Python reference before timing;
2. the setup time of each tier for a generated 4,000-instruction program: the translated
   tier's ``Translated`` runner with its process-wide code cache emptied (large subprograms
   are cut into segments compiled on first entry, so this is the time until the program
   can run), the same plus every segment compiled (all the translation there is: what an
   eager translation would cost), the whole source's generation and ``compile()`` on their
   own, the runner when the cache holds the program (a reload, another Vm), the
   interpreter's ``vm.runner(prog, "interp")``, the first run from raw bytes on each tier
   (which on the translated tier includes compiling the segments it enters), and for
   reference the kernel's load;
3. baselines: the kernel (item 1) and the same hash as an idiomatic pure-Python loop;
4. for context, the fixed cost of one run (a 2-insn program) and the steady-state speed of
   both tiers and the kernel on the generated program (branchy code, calls).

Every figure is a median over independent samples, with min and max; nothing is asserted
about a time.  Targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from bench_programs import (
    FNV_PACKET,
    FNV_ROUNDS,
    PACKET_LEN,
    PROLOGUES,
    fnv1a_rounds,
    fnv_source,
    generated_source,
    shared_suffix,
)
from bench_util import Stats, machine_info, measure, measure_interleaved, now_ns

import tcemu.bpf.vm as vm_module
from tcemu import kernel
from tcemu.bpf import Program, Vm, assemble
from tcemu.bpf.jit import translate_source
from tcemu.bpf.vm import Tier
from tcemu.errors import KernelError

TIERS: tuple[Tier, ...] = ("interp", "jit")
TARGETS = {  # from the issue: reported against, never asserted
    "fnv.jit.ns_per_insn": 15.0,
    "fnv.interp.ns_per_insn": 80.0,
    "translate.jit.ms": 20.0,
}
SCHED_CLS = 3


def _load(insns: bytes) -> kernel.ProgFd:
    """Load without a verifier log (a log slows the verifier down); on failure, load again
    with one so that the error carries it."""
    try:
        return kernel.prog_load(insns, prog_type=SCHED_CLS, log_level=0)
    except KernelError:
        return kernel.prog_load(insns, prog_type=SCHED_CLS)


@dataclass(frozen=True)
class Config:
    samples: int
    interp_runs: int        # FNV runs per interp sample (one run is ~115k insns)
    jit_runs: int
    python_runs: int
    generated_runs: int     # runs of the generated program per sample (~6.6k insns each)
    kernel_repeat: int      # BPF_PROG_TEST_RUN repeat per kernel sample
    kernel_load_samples: int
    use_kernel: bool

    @classmethod
    def make(cls, quick: bool, samples: int | None, use_kernel: bool) -> Config:
        if quick:
            return cls(samples or 3, 1, 1, 2, 5, 200, 1, use_kernel)
        return cls(samples or 7, 5, 10, 20, 20, 2000, 3, use_kernel)


@dataclass
class Row:
    name: str
    unit: str
    stats: Stats
    note: str = ""

    @property
    def target(self) -> float | None:
        return TARGETS.get(self.name)


@dataclass
class Report:
    machine: dict[str, str]
    config: Config
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, name: str, unit: str, stats: Stats, note: str = "") -> None:
        self.rows.append(Row(name, unit, stats, note))
        target = TARGETS.get(name)
        verdict = "" if target is None else (
            f"  target <= {target:g}: {'met' if stats.median <= target else 'NOT met'}")
        print(f"  {name:<32} {stats.median:>12.3f} {unit:<8} (min {stats.min:.3f}, "
              f"max {stats.max:.3f}){verdict}", flush=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        print(f"  WARNING: {text}", flush=True)

    def as_dict(self) -> dict[str, object]:
        results: dict[str, object] = {}
        for row in self.rows:
            entry: dict[str, object] = {"unit": row.unit, **row.stats.as_dict()}
            if row.note:
                entry["note"] = row.note
            if row.target is not None:
                entry["target"] = row.target
                entry["met"] = row.stats.median <= row.target
            results[row.name] = entry
        return {"machine": self.machine, "config": vars(self.config), "facts": self.facts,
                "results": results, "warnings": self.warnings}


# ---- 1 and 3: FNV-1a, ns per executed instruction --------------------------------------------


def bench_fnv(report: Report) -> None:
    cfg = report.config
    print(f"FNV-1a over {PACKET_LEN} bytes x {FNV_ROUNDS} rounds", flush=True)
    ours, kern = assemble(fnv_source("ours")), assemble(fnv_source("kernel"))
    assert shared_suffix(ours.to_bytes(), kern.to_bytes()), "the variants differ past the prologue"
    expected = fnv1a_rounds(FNV_PACKET)

    # Correctness first: each tier's r0 and the instruction count it reports.
    vm = Vm()
    counts: dict[str, int] = {}
    for tier in TIERS:
        result = vm.run(ours, memory=FNV_PACKET, tier=tier)     # also compiles: the warm-up
        assert result.r0 == expected, f"{tier}: r0 {result.r0:#x} != {expected:#x}"
        counts[tier] = result.insns
    assert counts["interp"] == counts["jit"], f"tiers count differently: {counts}"
    insns = counts["interp"]
    # The kernel variant executes the same instructions except its 2-insn prologue.
    kernel_insns = insns - len(PROLOGUES["ours"]) + len(PROLOGUES["kernel"])
    report.facts["fnv"] = {"hash": f"{expected:#010x}", "program_insns": len(ours),
                           "executed_insns_ours": insns, "executed_insns_kernel": kernel_insns,
                           "bytes_hashed": PACKET_LEN * FNV_ROUNDS}

    def tier_sample(tier: Tier, runs: int) -> Callable[[], float]:
        def sample() -> float:
            start = now_ns()
            for _ in range(runs):
                vm.run(ours, memory=FNV_PACKET, tier=tier)
            return (now_ns() - start) / (runs * insns)
        return sample

    def python_sample() -> float:
        start = now_ns()
        for _ in range(cfg.python_runs):
            fnv1a_rounds(FNV_PACKET)
        return (now_ns() - start) / (cfg.python_runs * insns)

    cases = {"interp": tier_sample("interp", cfg.interp_runs),
             "jit": tier_sample("jit", cfg.jit_runs), "python": python_sample}
    notes = {"interp": f"{cfg.interp_runs} run(s) of {insns} insns per sample",
             "jit": f"{cfg.jit_runs} run(s) of {insns} insns per sample",
             "python": "idiomatic Python FNV loop: its time / the eBPF program's insn count",
             "kernel": f"test_run repeat={cfg.kernel_repeat}: mean duration / {kernel_insns}"}

    reason = kernel.probe() if cfg.use_kernel else "disabled by --no-kernel"
    with contextlib.ExitStack() as stack:
        if reason is None:
            # With the default log level, to keep the verifier's "processed N insns" line.
            fd = stack.enter_context(kernel.prog_load(kern.to_bytes(), prog_type=SCHED_CLS))
            processed = [ln for ln in fd.log.splitlines() if ln.startswith("processed")]
            report.facts["fnv_verifier"] = processed[0] if processed else fd.log[-200:]
            retval = kernel.test_run(fd.fd, FNV_PACKET).retval
            assert retval == expected, f"kernel: retval {retval:#x} != {expected:#x}"

            def kernel_sample() -> float:
                result = kernel.test_run(fd.fd, FNV_PACKET, repeat=cfg.kernel_repeat)
                assert result.retval == expected
                return result.duration / kernel_insns
            cases["kernel"] = kernel_sample
        else:
            report.warn(f"kernel baseline skipped: {reason}")
            report.facts["kernel"] = f"skipped: {reason}"
        print(f"  r0 = {expected:#010x} on every tier; {insns} insns executed per run "
              "(measuring, samples interleaved)", flush=True)
        stats = measure_interleaved(cases, cfg.samples)
    for name, st in stats.items():
        report.add(f"fnv.{name}.ns_per_insn", "ns/insn", st, notes[name])
    bench_overhead(report, vm, reason is None)


def bench_overhead(report: Report, vm: Vm, use_kernel: bool) -> None:
    """The fixed cost of one run, measured with ``r0 = 0; exit``: context for the above."""
    cfg = report.config
    trivial = assemble("r0 = 0\nexit")
    runs = 2000
    cases: dict[str, Callable[[], float]] = {}
    for tier in TIERS:
        def sample(tier: Tier = tier) -> float:
            start = now_ns()
            for _ in range(runs):
                vm.run(trivial, memory=FNV_PACKET, tier=tier)
            return (now_ns() - start) / runs / 1000
        cases[tier] = sample
    with contextlib.ExitStack() as stack:
        if use_kernel:
            fd = stack.enter_context(_load(trivial.to_bytes()))

            def kernel_sample() -> float:
                return kernel.test_run(fd.fd, FNV_PACKET, repeat=cfg.kernel_repeat).duration / 1e3
            cases["kernel"] = kernel_sample
        stats = measure_interleaved(cases, cfg.samples)
    for name, st in stats.items():
        how = "test_run duration" if name == "kernel" else "vm.run"
        report.add(f"overhead.{name}.us_per_run", "us/run", st,
                   f"{how} of a 2-insn program on the 64-byte packet")


# ---- 2: setup / translation time of a 4,000-insn program -------------------------------------


def _clear_code_cache() -> None:
    """Empty the translated tier's process-wide code cache (commits that have one)."""
    try:
        from tcemu.bpf.jit.runner import CODE_CACHE
    except ImportError:
        return
    CODE_CACHE.clear()


def _decoded(raw: bytes) -> Program:
    prog = Program.from_bytes(raw)
    prog.ops  # noqa: B018 - the decode is cached on the Program; do it outside the timing
    prog.subprogs  # noqa: B018
    return prog


def _compile_all(runner: object) -> int:
    """Compile every segment a lazily translated runner has not compiled yet (commits
    without segments compile everything up front); returns how many there are."""
    compiled = getattr(runner, "compiled", None)
    heads: tuple[int, ...] = getattr(compiled, "heads", ())
    for pc in heads:
        compiled.segment(pc)  # type: ignore[union-attr]
    return len(heads)


def _ms(fn: Callable[[], object]) -> float:
    start = now_ns()
    fn()
    return (now_ns() - start) / 1e6


def bench_translate(report: Report) -> None:
    cfg = report.config
    text = generated_source("ours")
    start = now_ns()
    prog = assemble(text)
    assemble_ms = (now_ns() - start) / 1e6
    raw = prog.to_bytes()
    print(f"setup of a generated {len(prog)}-insn program "
          f"({len(prog.subprogs)} subprograms)", flush=True)

    results: dict[str, tuple[int, int]] = {}
    for tier in TIERS:
        result = Vm().run(_decoded(raw), memory=FNV_PACKET, tier=tier)
        results[tier] = (result.r0, result.insns)
    assert results["interp"][0] == results["jit"][0], f"tiers disagree on r0: {results}"
    if results["interp"][1] != results["jit"][1]:
        report.warn(f"the tiers count executed insns differently on the generated program "
                    f"(interp {results['interp'][1]}, jit {results['jit'][1]}); it has "
                    "bpf-to-bpf calls")
    source = translate_source(Vm(), prog)
    _clear_code_cache()
    probe, probe_prog = Vm(), _decoded(raw)
    probe.run(probe_prog, memory=FNV_PACKET, tier="jit")
    probe_runner = probe.runner(probe_prog, "jit")
    entered = len(getattr(getattr(probe_runner, "compiled", None), "segments", {}))
    facts: dict[str, object] = {"insns": len(prog), "subprograms": len(prog.subprogs),
                                "jit_segments": _compile_all(probe_runner),
                                "jit_segments_entered_by_one_run": entered,
                                "r0": f"{results['interp'][0]:#x}",
                                "executed_insns": {t: results[t][1] for t in TIERS},
                                "assemble_ms_once": assemble_ms,
                                "jit_source_lines": source.count("\n"),
                                "jit_source_bytes": len(source)}
    report.facts["generated"] = facts

    def first_run(tier: Tier) -> Callable[[], float]:
        def sample() -> float:
            _clear_code_cache()
            return _ms(lambda: Vm().run(Program.from_bytes(raw), memory=FNV_PACKET, tier=tier))
        return sample

    def interp_setup() -> float:
        prog, vm = _decoded(raw), Vm()
        return _ms(lambda: vm.runner(prog, "interp"))

    def jit_setup() -> float:
        # vm.runner builds the Translated runner (Translated(vm, prog) at fa22644; its
        # signature is evolving, the runner call is the stable way to it).  Cold: the
        # process-wide cache of translations (if this commit has one) is emptied first.
        prog, vm = _decoded(raw), Vm()
        _clear_code_cache()
        return _ms(lambda: vm.runner(prog, "jit"))

    def jit_all() -> float:
        # Everything translated: the runner and then every segment, cache emptied.
        prog, vm = _decoded(raw), Vm()
        _clear_code_cache()
        return _ms(lambda: _compile_all(vm.runner(prog, "jit")))

    def jit_cached() -> float:
        # The same program bytes again, on a fresh Vm and Program: what a second netdev or
        # a reload pays when translations are cached (untimed first load fills the cache).
        Vm().runner(_decoded(raw), "jit")
        prog, vm = _decoded(raw), Vm()
        return _ms(lambda: vm.runner(prog, "jit"))

    def jit_source() -> float:
        prog = _decoded(raw)
        return _ms(lambda: translate_source(Vm(), prog))

    cases: dict[str, Callable[[], float]] = {
        "decode": lambda: _ms(lambda: _decoded(raw)),
        "jit": jit_setup,
        "jit_all": jit_all,
        "jit_cached": jit_cached,
        "jit_source": jit_source,
        "jit_compile": lambda: _ms(lambda: compile(source, "<bench>", "exec")),
        "interp": interp_setup,
    }
    notes = {
        "decode": "Program.from_bytes + decode (cached on the Program; both tiers need it)",
        "jit": "vm.runner(prog, 'jit') on a fresh Vm, translation cache emptied: ready to "
               "run (large subprograms: drivers compiled, segments on first entry)",
        "jit_all": "the same, then every segment generated and compiled: the whole "
                   "translation",
        "jit_cached": "the same when the same program bytes were translated before "
                      "(process-wide cache of compiled code, bound to the new Vm)",
        "jit_source": "translate_source: the Python text of everything (one piece)",
        "jit_compile": "compile() of that text (one piece)",
        "interp": "vm.runner(prog, 'interp') on a fresh Vm, closure factories cached",
        "interp_cold": "the same with the interpreter's closure-factory cache emptied",
        "first_run_interp": "bytes -> Program -> Vm().run(): everything a first run costs",
        "first_run_jit": "the same on the jit tier (includes compiling the segments the "
                         "run enters)",
    }
    clear = getattr(getattr(vm_module, "_factory", None), "cache_clear", None)
    if callable(clear):
        def interp_cold() -> float:
            clear()
            return interp_setup()
        cases["interp_cold"] = interp_cold
    cases["first_run_interp"] = first_run("interp")
    cases["first_run_jit"] = first_run("jit")
    for name, st in measure_interleaved(cases, cfg.samples).items():
        report.add(f"translate.{name}.ms", "ms", st, notes[name])

    reason = kernel.probe() if cfg.use_kernel else "disabled by --no-kernel"
    if reason is not None:
        report.warn(f"kernel load reference skipped: {reason}")
        return
    kern = assemble(generated_source("kernel")).to_bytes()
    with _load(kern) as fd:
        retval = kernel.test_run(fd.fd, FNV_PACKET).retval
    assert retval == results["interp"][0] & 0xFFFFFFFF, f"kernel retval {retval:#x} differs"

    def load_sample() -> float:
        start = now_ns()
        fd = kernel.prog_load(kern, prog_type=SCHED_CLS, log_level=0)
        elapsed = (now_ns() - start) / 1e6
        fd.close()
        return elapsed
    report.add("translate.kernel_load.ms", "ms",
               measure(load_sample, cfg.kernel_load_samples, warmup=0),
               "BPF_PROG_LOAD of the kernel variant: verifier + kernel JIT (reference)")


def bench_generated(report: Report) -> None:
    """Steady-state speed on the generated program: branchy code, short blocks, calls.

    FNV is one tight loop, the best case of the translated tier; this is the opposite
    shape (about 7 insns per basic block).  ns/insn uses the interpreter's count of
    executed insns for both tiers (see the warning about the translated tier's count).
    """
    cfg = report.config
    prog = assemble(generated_source("ours"))
    vm = Vm()
    insns = vm.run(prog, memory=FNV_PACKET, tier="interp").insns
    vm.run(prog, memory=FNV_PACKET, tier="jit")
    runs = cfg.generated_runs
    print(f"steady state on the generated program ({insns} insns executed per run)", flush=True)

    def tier_sample(tier: Tier) -> Callable[[], float]:
        def sample() -> float:
            start = now_ns()
            for _ in range(runs):
                vm.run(prog, memory=FNV_PACKET, tier=tier)
            return (now_ns() - start) / (runs * insns)
        return sample

    cases: dict[str, Callable[[], float]] = {tier: tier_sample(tier) for tier in TIERS}
    reason = kernel.probe() if cfg.use_kernel else "disabled by --no-kernel"
    with contextlib.ExitStack() as stack:
        if reason is None:
            kern = assemble(generated_source("kernel")).to_bytes()
            fd = stack.enter_context(_load(kern))
            kernel_insns = insns - len(PROLOGUES["ours"]) + len(PROLOGUES["kernel"])

            def kernel_sample() -> float:
                duration = kernel.test_run(fd.fd, FNV_PACKET, repeat=cfg.kernel_repeat).duration
                return duration / kernel_insns
            cases["kernel"] = kernel_sample
        stats = measure_interleaved(cases, cfg.samples)
    for name, st in stats.items():
        report.add(f"generated.{name}.ns_per_insn", "ns/insn", st,
                   f"{insns} insns per run (the interpreter's count)")


# ---- the report ------------------------------------------------------------------------------


def print_table(report: Report) -> None:
    print("\n| metric | unit | median | min | max | target | met |")
    print("|---|---|---:|---:|---:|---:|---|")
    for row in report.rows:
        target = row.target
        met = "" if target is None else ("yes" if row.stats.median <= target else "**no**")
        shown = "" if target is None else f"<= {target:g}"
        print(f"| {row.name} | {row.unit} | {row.stats.median:.3f} | {row.stats.min:.3f} | "
              f"{row.stats.max:.3f} | {shown} | {met} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="tcemu benchmarks: ns per eBPF insn per tier, translation time, baselines")
    parser.add_argument("--quick", action="store_true", help="3 samples, fewer runs each")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--samples", type=int, help="samples per figure (default 7, quick 3)")
    parser.add_argument("--no-kernel", action="store_true", help="skip the kernel baselines")
    args = parser.parse_args(argv)
    if args.samples is not None and args.samples < 1:
        parser.error("--samples must be at least 1")
    report = Report(machine_info(), Config.make(args.quick, args.samples, not args.no_kernel))
    for key, value in report.machine.items():
        print(f"{key:>18}: {value}")
    bench_fnv(report)
    bench_translate(report)
    bench_generated(report)
    print_table(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.as_dict(), f, indent=2)
            f.write("\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
