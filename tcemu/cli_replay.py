"""``tcemu replay``: stream a pcap/pcapng through a device hook of a scenario's network or
of a single program, then report a verdict histogram, per-filter hit counts and the maps.

``--diff OTHER.o`` replays the same packets through a second program in lockstep and lists
every packet whose verdict or output bytes differ (an A/B check of two program versions).
A progress bar is shown on a terminal; ``--json`` prints one machine-readable report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tcemu.net import Net
    from tcemu.pcap import PacketRecord, PcapngWriter
    from tcemu.replay import PacketOutcome, ReplayStats
    from tcemu.trace import TraceEvent

__all__ = ["add_commands"]


def _network(args: argparse.Namespace, obj: str) -> Net:
    from tcemu.cli_prog import naming_object
    from tcemu.replay import single_program_net

    with naming_object(obj):
        net, _ = single_program_net(obj, args.sec, args.name, dev=args.dev, tier=args.tier)
    return net


def _scenario_network(args: argparse.Namespace) -> Net:
    from tcemu.scenario import load_scenario
    from tcemu.scenario.runner import run_scenario

    result = run_scenario(load_scenario(args.scenario), args.scenario, tier=args.tier,
                          play=False)
    assert result.net is not None
    return result.net


def _progress(records: Iterator[PacketRecord], path: str, enabled: bool,
              ) -> Iterator[PacketRecord]:
    """``records``, with a progress bar on standard error when ``enabled``."""
    return _with_bar(records, path) if enabled else records


def _with_bar(records: Iterator[PacketRecord], path: str) -> Iterator[PacketRecord]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    size = Path(path).stat().st_size
    columns = (TextColumn("replay"), BarColumn(), TextColumn("{task.completed:,.0f} B"),
               TransferSpeedColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("replay", total=size)
        done = 0
        for n, record in enumerate(records):
            done += len(record.data) + 16
            if n % 512 == 0:
                bar.update(task, completed=min(done, size))
            yield record


def _first_difference(a: PacketOutcome, b: PacketOutcome) -> str | None:
    from tcemu.trace import verdict_name

    if a.verdict != b.verdict:
        return (f"verdict {verdict_name(a.verdict) if a.verdict is not None else '-'} != "
                f"{verdict_name(b.verdict) if b.verdict is not None else '-'}")
    if len(a.output) != len(b.output):
        return f"{len(a.output)} output frame(s) != {len(b.output)}"
    for (where_a, how_a, data_a), (where_b, how_b, data_b) in zip(a.output, b.output,
                                                                  strict=True):
        if (where_a, how_a) != (where_b, how_b):
            return f"output {how_a} on {where_a} != {how_b} on {where_b}"
        if data_a != data_b:
            at = next((i for i, (x, y) in enumerate(zip(data_a, data_b, strict=False))
                       if x != y), min(len(data_a), len(data_b)))
            return f"output bytes differ from byte {at} ({len(data_a)} vs {len(data_b)} B)"
    return None


def _maps(net: Net) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for key, coll in net.collections.items():
        for name, m in coll.maps.items():
            rows = [{"key": k.hex(), "value": v.hex()} for k, v in m.items()]
            out[f"{key}:{name}"] = rows[:1000]
    return out


def _report(stats: ReplayStats, net: Net) -> dict[str, Any]:
    from tcemu.trace import verdict_name

    return {"packets": stats.packets, "bytes": stats.bytes,
            "verdicts": {verdict_name(v): n for v, n in sorted(stats.verdicts.items())},
            "filter_hits": dict(stats.filter_hits), "outputs": stats.outputs,
            "maps": _maps(net)}


def _print_report(report: dict[str, Any], title: str) -> None:
    print(f"{title}: {report['packets']} packets, {report['bytes']} bytes, "
          f"{report['outputs']} output frames")
    print("  verdicts:")
    for name, count in report["verdicts"].items():
        print(f"    {name:<22} {count}")
    print("  filter hits:")
    for name, count in report["filter_hits"].items():
        print(f"    {count:>8}  {name}")
    for name, rows in report["maps"].items():
        print(f"  map {name}: {len(rows)} entries")
        for row in rows[:20]:
            print(f"    {row['key']} -> {row['value']}")
        if len(rows) > 20:
            print(f"    ... {len(rows) - 20} more")


def _cmd_replay(args: argparse.Namespace) -> int:
    from tcemu.cli import UsageError, atomic_output, make_dir
    from tcemu.pcap import PcapngWriter, read_packets
    from tcemu.replay import replay
    from tcemu.trace import event_json, pipeline_lines

    if (args.obj is None) == (args.scenario is None):
        raise UsageError("replay: give exactly one of --obj or --scenario")
    if not Path(args.pcap).is_file():
        raise UsageError(f"replay: {args.pcap}: no such file")
    if args.diff and args.obj is None:
        raise UsageError("replay: --diff compares two objects; use it with --obj")
    direction = "egress" if args.egress else "ingress"
    net = _scenario_network(args) if args.scenario else _network(args, args.obj)
    other = _network(args, args.diff) if args.diff else None
    differences: list[dict[str, Any]] = []
    others: list[PacketOutcome] = []
    interfaces: dict[str, int] = {}

    def feed(records: Iterator[PacketRecord]) -> Iterator[PacketRecord]:
        for record in records:
            if other is not None:
                replay(other, [record], args.dev, netns=args.netns, direction=direction,
                       keep_time=False, on_packet=others.append)
            yield record

    def run(writer: PcapngWriter | None,
            tracing: Callable[[list[TraceEvent]], None] | None) -> ReplayStats:
        def on_packet(outcome: PacketOutcome) -> None:
            if writer is not None:
                _write_outcome(writer, interfaces, outcome)
            if other is not None:
                theirs = others.pop()
                why = _first_difference(outcome, theirs)
                if why is not None:
                    differences.append({"packet": outcome.index, "difference": why})

        records = _progress(read_packets(args.pcap), args.pcap,
                            sys.stderr.isatty() and not args.json)
        # without an output file or a second program, nothing needs an outcome per packet
        wanted = on_packet if writer is not None or other is not None else None
        return replay(net, feed(records) if other is not None else records, args.dev,
                      netns=args.netns, direction=direction,
                      keep_time=not args.no_time, on_packet=wanted, on_trace=tracing)

    with ExitStack() as outputs:
        trace_out: IO[str] | None = None
        if args.trace_jsonl == "-":
            trace_out = sys.stdout
        elif args.trace_jsonl:
            # Like -w: written whole or not at all.
            tmp = outputs.enter_context(atomic_output(Path(args.trace_jsonl)))
            trace_out = outputs.enter_context(tmp.open("w", encoding="utf-8"))
        pipeline: list[dict[str, object]] = []
        start: list[int] = []           # times are from the first traced event

        def on_trace(events: list[TraceEvent]) -> None:
            if not events:
                return
            if not start:
                start.append(events[0].time_ns)
            t0 = start[0]
            if trace_out is not None:
                trace_out.write("".join(json.dumps(event_json(e, t0)) + "\n" for e in events))
            if args.trace and args.json:
                pipeline.extend(event_json(e, t0) for e in events)
            elif args.trace:
                print("\n".join(pipeline_lines(events, t0)))

        tracing = on_trace if args.trace or trace_out is not None else None
        if args.write is None:
            stats = run(None, tracing)
        else:
            # Written whole or not at all: a corrupt packet halfway through the capture
            # leaves no half-written output.pcapng behind.
            tmp = outputs.enter_context(atomic_output(make_dir(args.write) / "output.pcapng"))
            writer = outputs.enter_context(PcapngWriter(tmp, comment="tcemu replay output"))
            stats = run(writer, tracing)
    report = _report(stats, net)
    if args.trace and args.json:
        report["pipeline"] = pipeline
    if other is not None:
        report["diff"] = {"against": args.diff, "differences": differences}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report, f"replay {args.pcap} -> {args.dev} {direction}")
        if other is not None:
            print(f"A/B against {args.diff}: {len(differences)} packet(s) differ")
            for row in differences[:100]:
                print(f"  packet {row['packet']}: {row['difference']}")
    return 1 if differences else 0


def _write_outcome(writer: PcapngWriter, interfaces: dict[str, int],
                   outcome: PacketOutcome) -> None:
    head, tail = _comment(outcome.verdict, outcome.hooks)
    for where, how, data in outcome.output:
        index = interfaces.get(where)
        if index is None:
            index = interfaces[where] = writer.add_interface(where)
        writer.write(index, outcome.timestamp_ns, data,
                     comment=f"packet {outcome.index}: {head}{how}{tail}")


@lru_cache(maxsize=4096)
def _comment(verdict: int | None, hooks: tuple[tuple[str, int], ...]) -> tuple[str, str]:
    """An output packet's comment around what the packet is: ``OK (`` and ``); filter
    -> verdict; ...`` (the same hooks and verdicts recur packet after packet)."""
    from tcemu.trace import verdict_name

    first = verdict_name(verdict) if verdict is not None else "no hook"
    filters = "; ".join(f"{label} -> {verdict_name(v)}" for label, v in hooks)
    return f"{first} (", f"); {filters}"


def add_commands(sub: Any) -> None:
    p = sub.add_parser("replay", help="stream a pcap/pcapng through a device's tc hook")
    p.add_argument("pcap", help="capture to replay (pcap or pcapng)")
    src = p.add_argument_group("what to replay through")
    src.add_argument("--obj", help="a clang-built BPF object (one device, clsact, da filter)")
    src.add_argument("--sec", help="the program's ELF section")
    src.add_argument("--name", help="the program's name, when the section holds several")
    src.add_argument("--scenario", help="a scenario file: replay into its network")
    p.add_argument("--dev", default="eth0", help="device whose hook sees the packets")
    p.add_argument("--netns", help="the device's namespace (scenarios)")
    hook = p.add_mutually_exclusive_group()
    hook.add_argument("--ingress", action="store_true", help="packets arrive (default)")
    hook.add_argument("--egress", action="store_true", help="packets are transmitted")
    p.add_argument("-w", "--write", metavar="DIR", help="write DIR/output.pcapng")
    p.add_argument("--diff", metavar="OTHER.o",
                   help="A/B: list packets whose verdict or output differs with OTHER.o")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--trace", action="store_true",
                   help="print each packet's path (device, hook, filter, program, verdict, "
                        "next device) as it is replayed; with --json, a 'pipeline' list")
    p.add_argument("--trace-jsonl", metavar="FILE",
                   help="write the per-packet trace as JSON lines to FILE ('-': stdout)")
    p.add_argument("--no-time", action="store_true",
                   help="do not follow the capture's timestamps on the virtual clock")
    p.add_argument("--tier", choices=("interp", "jit"), default="jit")
    p.set_defaults(func=_cmd_replay)
