"""Capture I/O speed: packets/s reading and writing the 100k-packet replay workload.

    python bench/pcap_bench.py [--quick] [--samples N] [--json out.json]

The workload is pcaps/workload.py's (100,000 Ethernet/IPv4 TCP/UDP frames, IMIX sizes,
generated once into pcaps/.cache/).  Its pcapng copies, one plain and one with a comment
and direction flags on every packet (as tcemu's per-device captures have), are written
next to it by tcemu's writer.  Figures, each the median of independent interleaved
samples of a whole pass over the file (file in the page cache):

* ``read.dpkt.pcap``: the floor, a bare ``dpkt.pcap.Reader`` loop counting packets;
* ``read.tcemu.pcap``: ``tcemu.pcap.read_packets`` over the same file, counting records;
* ``read.dpkt.pcapng`` / ``read.tcemu.pcapng``: the same over the pcapng copy;
* ``read.tcemu.pcapng_comments``: tcemu over the commented copy (options parsed);
* ``write.tcemu.pcap`` / ``write.tcemu.pcapng_comments``: the writers, to a file.

Correctness is checked before timing: every reader must see the same packet count and
the same bytes.  Nothing is asserted about a time.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import dpkt  # type: ignore[import-untyped]
from bench_util import Stats, machine_info, measure_interleaved, now_ns

from tcemu.pcap import Direction, PcapngWriter, PcapWriter, read_packets

ROOT = Path(__file__).resolve().parent.parent


def _load_workload() -> ModuleType:
    """pcaps/workload.py (pcaps/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("pcaps_workload",
                                                  ROOT / "pcaps" / "workload.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load pcaps/workload.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


workload = _load_workload()

COMMENT = "hook=ingress filter=bpf/prio1 verdict=TC_ACT_OK"


def _pcapng_copy(src: Path, dst: Path, *, comments: bool) -> Path:
    if not dst.exists():
        tmp = dst.with_suffix(f".tmp{os.getpid()}")
        with PcapngWriter(tmp) as w:
            dev = w.add_interface("eth0")
            for rec in read_packets(src):
                w.write(dev, rec.timestamp_ns, rec.data,
                        comment=COMMENT if comments else None,
                        direction=Direction.INBOUND if comments else None)
        os.replace(tmp, dst)
    return dst


def _digest_tcemu(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for rec in read_packets(path):
        h.update(rec.data)
        n += 1
    return n, h.hexdigest()


def _digest_dpkt(path: Path, reader: Callable[..., object]) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    with path.open("rb") as f:
        for _ts, buf in reader(f):  # type: ignore[attr-defined]
            h.update(buf)
            n += 1
    return n, h.hexdigest()


def _rate(count: int, loop: Callable[[], int]) -> Callable[[], float]:
    def sample() -> float:
        start = now_ns()
        seen = loop()
        elapsed = now_ns() - start
        if seen != count:
            raise AssertionError(f"saw {seen} packets, expected {count}")
        return count * 1e9 / elapsed
    return sample


def _dpkt_loop(path: Path, reader: Callable[..., object]) -> Callable[[], int]:
    def loop() -> int:
        n = 0
        with path.open("rb") as f:
            for _ts, _buf in reader(f):  # type: ignore[attr-defined]
                n += 1
        return n
    return loop


def _tcemu_loop(path: Path) -> Callable[[], int]:
    def loop() -> int:
        n = 0
        for _rec in read_packets(path):
            n += 1
        return n
    return loop


def _write_loops(packets: list[tuple[int, bytes]], out: Path
                 ) -> dict[str, Callable[[], int]]:
    def pcap() -> int:
        with PcapWriter(out / "w.pcap") as w:
            for ts, data in packets:
                w.write(ts, data)
        return len(packets)

    def pcapng() -> int:
        with PcapngWriter(out / "w.pcapng") as w:
            dev = w.add_interface("eth0")
            for ts, data in packets:
                w.write(dev, ts, data, comment=COMMENT, direction=Direction.INBOUND)
        return len(packets)

    return {"write.tcemu.pcap": pcap, "write.tcemu.pcapng_comments": pcapng}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 samples")
    parser.add_argument("--samples", type=int, help="samples per figure (default 7)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    samples = args.samples or (3 if args.quick else 7)

    pcap: Path = workload.workload_path()
    ng = _pcapng_copy(pcap, pcap.with_suffix(".pcapng"), comments=False)
    ngc = _pcapng_copy(pcap, pcap.with_name(pcap.stem + "-comments.pcapng"), comments=True)
    count, digest = _digest_tcemu(pcap)
    checks = {"tcemu pcapng": _digest_tcemu(ng), "tcemu pcapng+comments": _digest_tcemu(ngc),
              "dpkt pcap": _digest_dpkt(pcap, dpkt.pcap.Reader),
              "dpkt pcapng": _digest_dpkt(ng, dpkt.pcapng.Reader)}
    for name, got in checks.items():
        if got != (count, digest):
            raise AssertionError(f"{name} read {got}, tcemu pcap read {(count, digest)}")

    packets = [(r.timestamp_ns, r.data) for r in read_packets(pcap)]
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "read.dpkt.pcap": _rate(count, _dpkt_loop(pcap, dpkt.pcap.Reader)),
            "read.tcemu.pcap": _rate(count, _tcemu_loop(pcap)),
            "read.dpkt.pcapng": _rate(count, _dpkt_loop(ng, dpkt.pcapng.Reader)),
            "read.tcemu.pcapng": _rate(count, _tcemu_loop(ng)),
            "read.tcemu.pcapng_comments": _rate(count, _tcemu_loop(ngc)),
        }
        cases.update({name: _rate(count, loop)
                      for name, loop in _write_loops(packets, Path(tmp)).items()})
        results: dict[str, Stats] = measure_interleaved(cases, samples)

    machine = machine_info()
    print(f"# capture I/O, {count} packets ({pcap.name}), median of {samples} samples\n")
    print("| figure | packets/s (median) | min | max | vs dpkt pcap |")
    print("|---|---:|---:|---:|---:|")
    floor = results["read.dpkt.pcap"].median
    for name, stats in results.items():
        print(f"| `{name}` | {stats.median:,.0f} | {stats.min:,.0f} | {stats.max:,.0f} "
              f"| {stats.median / floor:.2f}x |")
    print(f"\n{machine.get('cpu_model')}, {machine.get('python')}, "
          f"tcemu {machine.get('tcemu_commit')}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": machine, "config": {"samples": samples, "packets": count,
                                                      "workload": pcap.name},
                       "results": {k: {"unit": "packets/s", **v.as_dict()}
                                   for k, v in results.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
