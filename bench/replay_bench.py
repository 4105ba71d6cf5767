"""Replay speed: packets/s through clsact ingress and a 5-tuple hash-map classifier.

    python bench/replay_bench.py [--quick] [--samples N] [--packets N] [--json out.json]

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
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
from bench_util import Stats, machine_info, measure_interleaved, now_ns
from pcap_bench import workload

from tcemu.pcap import read_packets
from tcemu.replay import replay, single_program_net

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 samples of 10,000 packets")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--json", help="also write the samples here")
    args = parser.parse_args(argv)
    samples, limit = (3, 10_000) if args.quick else (args.samples, args.packets)
    path = workload.workload_path(n_flows=200)
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
    info = machine_info()
    print(f"\n{info.get('cpu_model')}, {info.get('cpus')} CPUs, {info.get('python')}, "
          f"load {info.get('loadavg_at_start', '?')}, tcemu {info.get('commit', '?')}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": info, "packets": limit,
             "results": {k: v.as_dict() for k, v in results.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
