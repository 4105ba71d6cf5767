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
* ``replay.jit`` / ``replay.interp``: ``tcemu.replay.replay`` on each execution tier.

The map is checked after every pass (one packet counted per packet replayed).  Nothing is
asserted about a time.

``--breakdown`` splits the replay of the same packets into stages, each timed as its own
loop over inputs prepared beforehand (µs per packet, median of the samples):

* ``read``: the streaming reader (``read.dpkt`` beside it is the floor);
* ``skb``: ``Stack.new_skb`` and ``eth_type_trans``, what ``netif_rx`` does first;
* ``program``: the program's own code: the compiled runner called directly on a ready
  context, less the helpers and context loads it calls (timed inside it by wrappers whose
  own clock-reading cost is measured and subtracted);
* ``helpers`` / ``ctx loads``: the helper calls and ``struct __sk_buff`` loads of a run;
* ``run setup``: ``Stack.run_program`` less the runner call (context, packet view,
  stacks, result);
* ``hook``: ``tc_ingress`` less ``run_program`` (chain, cls_bpf, verdict, observers);
* ``rx + replay``: the whole ``replay`` less all of the above (``Net.receive``, the event
  loop, taps, delivery, the per-packet outcome).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dpkt  # type: ignore[import-untyped]
from bench_util import Stats, gc_paused, machine_info, measure_interleaved, now_ns
from pcap_bench import workload

from tcemu.bpf import memory as mem
from tcemu.bpf.testrun import SkbContext
from tcemu.bpf.vm import Vm
from tcemu.net.hooks import tc_ingress
from tcemu.pcap import read_packets
from tcemu.replay import replay, single_program_net
from tcemu.skb import eth_type_trans

if TYPE_CHECKING:
    from tcemu.net import Net
    from tcemu.pcap import PacketRecord
    from tcemu.skb import SkBuff

ROOT = Path(__file__).resolve().parent.parent
OBJECT = ROOT / "tests" / "testdata" / "objects" / "flow_counter.bpf.o"


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


def _timed(fn: Callable[[], object], n: int) -> float:
    """µs per packet of one call of ``fn`` over ``n`` packets."""
    start = now_ns()
    fn()
    return (now_ns() - start) / n / 1000


def _clock_cost() -> float:
    """µs one ``now_ns() - now_ns()`` interval adds to a wrapped call (measured)."""
    def noop() -> None:
        return None

    total = [0]

    def wrapped() -> None:
        t0 = now_ns()
        noop()
        total[0] += now_ns() - t0

    reps = 100_000
    start = now_ns()
    for _ in range(reps):
        noop()
    bare = now_ns() - start
    for _ in range(reps):
        wrapped()
    return max(total[0] - bare, 0) / reps / 1000


def breakdown(path: Path, limit: int, tier: str, samples: int) -> dict[str, Stats]:
    """µs per packet of each stage of a replay (see the module docstring)."""
    records = list(itertools.islice(read_packets(path), limit))
    frames = [r.data for r in records]
    n = len(frames)
    net, coll = single_program_net(OBJECT, "tc", tier=tier)  # type: ignore[arg-type]
    dev = net.dev("eth0")
    program = next(iter(coll.programs.values()))
    replay(net, iter(records), "eth0")        # warm: compiled, every flow in the map

    def ready() -> list[SkBuff]:
        skbs = [net.new_skb(f, dev) for f in frames]
        for skb in skbs:
            eth_type_trans(skb, dev.address, dev.broadcast)
            skb.tc_at_ingress = True
        return skbs

    def build() -> None:
        for f in frames:
            eth_type_trans(net.new_skb(f, dev), dev.address, dev.broadcast)

    hooked = ready()                      # data after L2, as tc_ingress gets it
    pushed = ready()                      # L2 pushed back, as the classifier runs it
    for skb in pushed:
        skb.push(skb.mac_len or 14)

    # A second Vm on the same environment whose helpers and ctx loads are timed.
    spent = {"helpers": 0, "ctx": 0}
    calls = {"helpers": 0, "ctx": 0}

    def timing(kind: str, fn: Callable[..., int]) -> Callable[..., int]:
        def call(*args: int) -> int:
            t0 = now_ns()
            r = fn(*args)
            spent[kind] += now_ns() - t0
            calls[kind] += 1
            return r
        return call

    vm = net.vm_for(program)
    probe = Vm(net.env, helpers={k: timing("helpers", f) for k, f in vm.helpers.items()})
    probe.ctx_load = timing("ctx", probe.ctx_load)  # type: ignore[method-assign]
    probe.ctx = SkbContext(pushed[0], program.prog_type)
    runner = probe.runner(program, tier)  # type: ignore[arg-type]
    vm.ctx = SkbContext(pushed[0], program.prog_type)
    plain = vm.runner(program, tier)  # type: ignore[arg-type]
    ctx_addr = mem.addr(mem.CTX_RID)
    regions = net.env.memory.regions

    def run_direct(r: object, model_vm: Vm) -> None:
        call = r.call  # type: ignore[attr-defined]
        for skb in pushed:
            model_vm.ctx = SkbContext(skb, program.prog_type)
            regions[mem.MEM_RID] = skb.data
            call(ctx_addr, 0, 0, 0, 0)

    def probed() -> None:
        for key in spent:
            spent[key] = calls[key] = 0
        run_direct(runner, probe)

    cases: dict[str, Callable[[], float]] = {
        "read.dpkt": lambda: 1e6 / _dpkt(path, limit),
        "read": lambda: 1e6 / _reader(path, limit),
        "skb": lambda: _timed(build, n),
        "runner": lambda: _timed(lambda: run_direct(plain, vm), n),
        "run_program": lambda: _timed(
            lambda: [net.run_program(program, skb, "bench") for skb in pushed], n),
        "tc_ingress": lambda: _timed(lambda: [tc_ingress(net, dev, skb) for skb in hooked], n),
        "replay": lambda: 1e6 / _replay_on(net, records),
    }
    raw = measure_interleaved(cases, samples)
    clock = _clock_cost()
    helper_us, ctx_us = [], []
    for _ in range(samples):
        with gc_paused():
            probed()
        helper_us.append((spent["helpers"] / 1000 - clock * calls["helpers"]) / n)
        ctx_us.append((spent["ctx"] / 1000 - clock * calls["ctx"]) / n)
    med = {k: v.median for k, v in raw.items()}
    helpers, ctx = statistics.median(helper_us), statistics.median(ctx_us)
    stages = {
        "read.dpkt (floor)": med["read.dpkt"],
        "read": med["read"],
        "skb": med["skb"],
        "program": med["runner"] - helpers - ctx,
        "helpers": helpers,
        "ctx loads": ctx,
        "run setup": med["run_program"] - med["runner"],
        "hook": med["tc_ingress"] - med["run_program"],
        "rx + replay": med["replay"] - med["tc_ingress"] - med["skb"],
        "replay (total, without read)": med["replay"],
    }
    print(f"# replay breakdown ({tier}), {n} packets of {path.name}, "
          f"median of {samples} samples\n")
    print(f"helper calls per packet {calls['helpers'] / n:.2f}, ctx loads per packet "
          f"{calls['ctx'] / n:.2f}, clock cost per wrapped call {clock * 1000:.0f} ns\n")
    print("| stage | µs/packet |")
    print("|---|---:|")
    for name, value in stages.items():
        print(f"| {name} | {value:.2f} |")
    total = med["read"] + med["replay"]
    print(f"\nread + replay: {total:.2f} µs/packet = {1e6 / total:,.0f} packets/s")
    return {k: Stats((v,)) for k, v in stages.items()}


def _replay_on(net: Net, records: list[PacketRecord]) -> float:
    start = now_ns()
    stats = replay(net, iter(records), "eth0")
    return stats.packets / ((now_ns() - start) / 1e9)


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
