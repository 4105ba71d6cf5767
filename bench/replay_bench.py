"""Replay speed: packets/s through clsact ingress and a 5-tuple hash-map classifier.

    python bench/replay_bench.py [--quick] [--samples N] [--packets N] [--json out.json]
    python bench/replay_bench.py --breakdown [--quick] [--tier jit|interp]

The workload is pcaps/workload.py's 100,000-packet capture with 200 flows (IMIX sizes), so
that every flow fits the classifier's map.  The classifier is
tests/testdata/objects/flow_counter.bpf.o (a 256-entry HASH map keyed by the IPv4 5-tuple,
atomic counters), attached as a direct-action filter on clsact ingress of one
emulated device; every packet takes the datapath's receive path (eth_type_trans, taps,
tc ingress, verdict, delivery) exactly as in a scenario.  Figures, each the median of
independent samples of a whole pass:

* ``read.dpkt``: the floor, a bare ``dpkt.pcap.Reader`` loop over the same file;
* ``read.tcemu``: tcemu's streaming reader alone;
* ``replay.jit`` / ``replay.interp``: ``tcemu.replay.replay`` on each execution tier;
* ``floor.jit``: the least work a packet costs in this design (read, skb, eth_type_trans,
  the compiled program's entry on the translated tier; no hook, chain, verdict, delivery
  or bookkeeping): what replay would come down to if everything else cost nothing.

The map is checked after every pass (one packet counted per packet replayed).  Nothing is
asserted about a time.

``--breakdown`` splits a replay of the same packets into stages, timed inside the replay
itself (wrappers around the functions of each stage; each adds its exclusive time, less
the wrapped calls under it and the wrappers' own cost calibrated on a no-op), µs per
packet, median of the samples:

* ``read``: the streaming reader, timed on its own (``read.dpkt`` beside it, the floor);
* ``skb``: ``tcemu.net.fastpath.IngressPlan.arrive`` (the skb as the device's receive
  plan builds it), or ``Stack.new_skb`` and ``eth_type_trans`` on the general path;
* ``hook``: the plan's ``IngressPlan.hook`` (or ``tc_ingress`` on the general path) less
  what it calls below: the filters, cls_bpf, the program run set up, the MAC header
  pulled back, the verdict;
* ``run setup``: ``Vm.datapath_run``'s closure (and ``Stack.run_program`` /
  ``Vm.run_datapath`` on the general path) less the runner: context, packet region,
  stacks;
* ``program``: the compiled runner less the helpers and context loads it calls;
* ``helpers`` / ``ctx loads``: the helper calls and ``struct __sk_buff`` loads that call
  the context model (the translated tier computes ``data``/``data_end``/``len`` inline,
  and calls map helpers on a constant map as the map's methods: those count under
  ``program``, and are left unwrapped here so that the instrumented replay takes the same
  path as the plain one);
* ``rx + replay``: the rest of ``replay`` (what follows the verdict, delivery, counting).

The instrumented stages add up to more than an uninstrumented replay of the same packets
(printed beside them): the wrappers disturb what they time beyond their calibrated cost.
The stages are also shown scaled to the uninstrumented total.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dpkt  # type: ignore[import-untyped]
from bench_util import Stats, gc_paused, machine_info, measure_interleaved, now_ns
from pcap_bench import workload

from tcemu.bpf.jit.direct import DIRECT
from tcemu.bpf.memory import CTX_RID, MEM_RID, STACK_RID0, STACK_SIZE, addr
from tcemu.bpf.testrun import SkbContext
from tcemu.net.fastpath import ingress_plan
from tcemu.pcap import read_packets
from tcemu.replay import replay, single_program_net
from tcemu.skb import ETH_HLEN, SkBuff

if TYPE_CHECKING:
    from tcemu.net import Net
    from tcemu.pcap import PacketRecord

ROOT = Path(__file__).resolve().parent.parent
OBJECT = ROOT / "tests" / "testdata" / "objects" / "flow_counter.bpf.o"
CTX_ADDR = addr(CTX_RID)        # r1 of a program run with a context (tcemu.bpf.vm)


def _dpkt(path: Path, limit: int) -> float:
    start = now_ns()
    with path.open("rb") as f:
        n = sum(1 for _ in itertools.islice(dpkt.pcap.Reader(f), limit))
    return n / ((now_ns() - start) / 1e9)


def _reader(path: Path, limit: int) -> float:
    start = now_ns()
    n = sum(1 for _ in itertools.islice(read_packets(path), limit))
    return n / ((now_ns() - start) / 1e9)


def _replay(path: Path, limit: int, tier: str) -> float:
    net, coll = single_program_net(OBJECT, "tc", tier=tier)  # type: ignore[arg-type]
    start = now_ns()
    stats = replay(net, itertools.islice(read_packets(path), limit), "eth0")
    elapsed = now_ns() - start
    counted = sum(int.from_bytes(v[:8], "little") for _, v in coll.maps["flows"].items())
    other = sum(int.from_bytes(v, "little") for _, v in coll.maps["other"].items())
    if stats.packets != limit or counted + other != limit:
        raise AssertionError(f"replay counted {counted}+{other} of {limit} packets")
    return stats.packets / (elapsed / 1e9)


def _floor(path: Path, limit: int) -> float:
    """The least work a packet costs in this design: read, the skb as the receive plan
    builds it for the first program (``IngressPlan.arrive``: ``new_skb``,
    ``eth_type_trans``, the first round, the MAC header pushed), the context and packet
    region aimed at the skb, the compiled program's entry called, the header pulled.  No
    tc hook, cls_bpf, verdict, delivery or replay bookkeeping: what replay could come
    down to if all of those cost nothing."""
    net, coll = single_program_net(OBJECT, "tc", tier="jit")
    replay(net, itertools.islice(read_packets(path), 1), "eth0")   # compiles the program
    program = coll.programs["flow_counter"]
    vm = net.vm_for(program)
    plan = ingress_plan(net, net.dev("eth0"))
    net.trace.enabled = False           # (as replay has it; the plan declines a trace)
    model = SkbContext(SkBuff(bytearray(64)), program.prog_type)
    vm.ctx = model
    entry = vm.runner(program, "jit").entry
    regions, counter, memory = vm.memory.regions, vm.counter, vm.memory
    memory.packet = model               # the context model is the packet view too
    start = now_ns()
    for record in itertools.islice(read_packets(path), limit):
        skb = plan.arrive(record.data)
        assert skb is not None
        model.skb = skb
        regions[MEM_RID] = skb.data
        regions[STACK_RID0] = bytearray(STACK_SIZE)
        counter[0] = 0
        entry(CTX_ADDR, 0, 0, 0, 0, 0)
        skb.pull(ETH_HLEN)
    elapsed = now_ns() - start
    counted = sum(int.from_bytes(v[:8], "little") for _, v in coll.maps["flows"].items())
    other = sum(int.from_bytes(v, "little") for _, v in coll.maps["other"].items())
    if counted + other != limit + 1:
        raise AssertionError(f"the floor loop counted {counted}+{other} of {limit + 1}")
    return limit / (elapsed / 1e9)


class _Probe:
    """Times chosen functions *inside* a replay: each wrapped call adds its exclusive time
    (its own interval less the wrapped calls under it) to its stage; the wrappers' own
    cost, calibrated on a no-op, is taken out of every enclosing interval."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self._stack = [0]
        self.outside = 0          # ns a wrapped call costs outside its measured interval
        self.inside = 0           # ns of clock reading inside it

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` timed into ``stage`` (calibrate first: the overheads are bound here)."""
        stack, spent, calls = self._stack, self.spent, self.calls
        inside, outside, clock = self.inside, self.outside, now_ns
        spent.setdefault(stage, 0)
        calls.setdefault(stage, 0)

        def call(*args: Any) -> Any:
            stack.append(0)
            t0 = clock()
            result = fn(*args)
            t1 = clock()
            interval = t1 - t0
            spent[stage] += interval - stack.pop() - inside
            stack[-1] += interval + outside
            calls[stage] += 1
            return result
        return call

    def calibrate(self) -> None:
        def noop() -> None:
            return None

        reps = 200_000
        probe = _Probe()
        wrapped = probe.wrap("noop", noop)
        best_bare = best_wrapped = best_inside = float("inf")
        for _ in range(5):
            start = now_ns()
            for _ in range(reps):
                noop()
            best_bare = min(best_bare, now_ns() - start)
            probe.spent["noop"] = 0
            start = now_ns()
            for _ in range(reps):
                wrapped()
            best_wrapped = min(best_wrapped, now_ns() - start)
            best_inside = min(best_inside, probe.spent["noop"])
        self.inside = max(int(best_inside / reps), 0)
        self.outside = max(int((best_wrapped - best_bare) / reps) - self.inside, 0)

    def reset(self) -> int:
        """Forget the counts; returns the top-level wrapped time (with overheads)."""
        top = self._stack[0]
        for stage in self.spent:
            self.spent[stage] = self.calls[stage] = 0
        self._stack[:] = [0]
        return top


STAGES = ("skb", "hook", "run setup", "program", "helpers", "ctx loads")


def breakdown(path: Path, limit: int, tier: str, samples: int) -> dict[str, Stats]:
    """µs per packet of each stage of a replay (see the module docstring)."""
    import tcemu.net.fastpath as fastpath_mod
    import tcemu.net.rx as rx_mod
    import tcemu.replay as replay_mod

    records = list(itertools.islice(read_packets(path), limit))
    n = len(records)
    floor = measure_interleaved({"read.dpkt (floor)": lambda: 1e6 / _dpkt(path, limit),
                                 "read": lambda: 1e6 / _reader(path, limit)}, samples)

    plain_net, _ = single_program_net(OBJECT, "tc", tier=tier)  # type: ignore[arg-type]
    replay(plain_net, iter(records), "eth0")
    plain_us: list[float] = []

    net, coll = single_program_net(OBJECT, "tc", tier=tier)  # type: ignore[arg-type]
    program = next(iter(coll.programs.values()))
    probe = _Probe()
    probe.calibrate()
    vm = net.vm_for(program)        # wrapped before its first run binds them
    for helper_id, fn in list(vm.helpers.items()):
        if fn not in DIRECT:    # (the translated tier calls these as map methods: "program")
            vm.helpers[helper_id] = probe.wrap("helpers", fn)
    vm.ctx_load = probe.wrap("ctx loads", vm.ctx_load)  # type: ignore[method-assign]
    net.run_program = probe.wrap("run setup", net.run_program)  # type: ignore[method-assign]
    net.new_skb = probe.wrap("skb", net.new_skb)  # type: ignore[method-assign]
    patched: list[tuple[Any, str, Any]] = []
    for module in (replay_mod, rx_mod, fastpath_mod):
        for name, stage in (("tc_ingress", "hook"), ("eth_type_trans", "skb")):
            if hasattr(module, name):
                patched.append((module, name, getattr(module, name)))
                setattr(module, name, probe.wrap(stage, getattr(module, name)))
    plan_class = fastpath_mod.IngressPlan
    for name, stage in (("receive", "hook"), ("hook", "hook"), ("arrive", "skb")):
        patched.append((plan_class, name, getattr(plan_class, name)))
        setattr(plan_class, name, probe.wrap(stage, getattr(plan_class, name)))
    vm.run_datapath = probe.wrap("run setup", vm.run_datapath)  # type: ignore[method-assign]
    make_run = vm.datapath_run

    def wrapped_run(*args: Any) -> Callable[[bytearray], int]:
        return probe.wrap("run setup", make_run(*args))
    vm.datapath_run = wrapped_run  # type: ignore[method-assign,assignment]
    try:
        replay(net, iter(records), "eth0")           # compiles the program: then wrap it
        for runner in {id(r): r for r in vm._compiled.values()}.values():
            runner.call = probe.wrap("program", runner.call)  # type: ignore[method-assign]
            runner.entry = probe.wrap("program", runner.entry)
        # bind the runs again (receive plans, the per-depth slots) with the wrapped runner
        net.tc_generation += 1
        net._run_views.clear()
        replay(net, iter(records), "eth0")
        values: dict[str, list[float]] = {name: [] for name in (*STAGES, "rx + replay")}
        for _ in range(samples):       # uninstrumented and instrumented samples in turn
            with gc_paused():
                plain_us.append(_replay_us(plain_net, records))
            probe.reset()
            with gc_paused():
                start = now_ns()
                replay(net, iter(records), "eth0")
                total = now_ns() - start
            top = probe._stack[0]
            for stage in STAGES:
                values[stage].append(probe.spent[stage] / n / 1000)
            values["rx + replay"].append((total - top) / n / 1000)
            calls = dict(probe.calls)
    finally:
        for module, name, original in patched:
            setattr(module, name, original)
    stages = {name: Stats(tuple(v)) for name, v in values.items()}
    plain = Stats(tuple(plain_us))
    med = {name: st.median for name, st in {**floor, **stages}.items()}
    summed = sum(med[name] for name in (*STAGES, "rx + replay"))
    print(f"# replay breakdown ({tier}), {n} packets of {path.name}, "
          f"median of {samples} samples\n")
    print(f"per packet: {calls.get('helpers', 0) / n:.2f} helper calls, "
          f"{calls.get('ctx loads', 0) / n:.2f} context-load calls, "
          f"{calls.get('program', 0) / n:.2f} program runs; wrapper cost "
          f"{probe.inside + probe.outside} ns a call, taken out\n")
    # The wrappers disturb what they time beyond their calibrated cost (caches, a bigger
    # frame stack): the stages are also shown scaled to the uninstrumented replay.
    scale = plain.median / summed
    print("| stage | µs/packet (instrumented) | scaled to the uninstrumented replay |")
    print("|---|---:|---:|")
    for name in ("read.dpkt (floor)", "read"):
        print(f"| {name} | {med[name]:.2f} | |")
    for name in (*STAGES, "rx + replay"):
        print(f"| {name} | {med[name]:.2f} | {med[name] * scale:.2f} |")
    print(f"| **replay, stages summed** | **{summed:.2f}** | {plain.median:.2f} |")
    print(f"| replay, not instrumented | {plain.median:.2f} | |")
    whole = med["read"] + plain.median
    print(f"\nread + replay (not instrumented): {whole:.2f} µs/packet = "
          f"{1e6 / whole:,.0f} packets/s")
    return {**floor, **stages, "replay (not instrumented)": plain}


def _replay_us(net: Net, records: list[PacketRecord]) -> float:
    start = now_ns()
    replay(net, iter(records), "eth0")
    return (now_ns() - start) / len(records) / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 samples of 10,000 packets")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--json", help="also write the samples here")
    parser.add_argument("--breakdown", action="store_true",
                        help="µs per packet of each stage instead of the packets/s table")
    parser.add_argument("--tier", choices=("jit", "interp"), default="jit",
                        help="the tier of --breakdown")
    args = parser.parse_args(argv)
    samples, limit = (3, 10_000) if args.quick else (args.samples, args.packets)
    path = workload.workload_path(n_flows=200)
    if args.breakdown:
        _footer(args.json, limit, breakdown(path, limit, args.tier, samples))
        return 0
    cases = {
        "read.dpkt": lambda: _dpkt(path, limit),
        "read.tcemu": lambda: _reader(path, limit),
        "replay.jit": lambda: _replay(path, limit, "jit"),
        "replay.interp": lambda: _replay(path, limit, "interp"),
        "floor.jit": lambda: _floor(path, limit),
    }
    results: dict[str, Stats] = measure_interleaved(cases, samples)
    floor = results["read.dpkt"].median
    print(f"# replay, {limit} packets of {path.name}, median of {samples} samples\n")
    print("| figure | packets/s (median) | min | max | vs dpkt read loop |")
    print("|---|---:|---:|---:|---:|")
    for name, stats in results.items():
        print(f"| `{name}` | {stats.median:,.0f} | {stats.min:,.0f} | {stats.max:,.0f} | "
              f"{stats.median / floor:.2f}x |")
    _footer(args.json, limit, results)
    return 0


def _footer(json_path: str | None, limit: int, results: dict[str, Stats]) -> None:
    info = machine_info()
    dirty = info.get("tcemu_uncommitted", "none")
    print(f"\n{info.get('cpu_model')}, {info.get('cpus')} CPUs, {info.get('python')}, "
          f"load {info.get('loadavg_at_start', '?')}, tcemu {info.get('tcemu_commit', '?')}"
          + ("" if dirty == "none" else f" (uncommitted: {dirty})"))
    if json_path:
        Path(json_path).write_text(json.dumps(
            {"machine": info, "packets": limit,
             "results": {k: v.as_dict() for k, v in results.items()}}, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
