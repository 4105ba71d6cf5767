"""tcemu replay: packets through a hook, totals, outputs, A/B diffs, flat memory."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pcaps.workload import generate
from tcemu.cli import main
from tcemu.pcap import PacketRecord, read_packets
from tcemu.replay import PacketOutcome, ReplayError, replay, single_program_net

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = ROOT / "tests" / "testdata" / "objects"
MIXED = ROOT / "pcaps" / "mixed_flows.pcapng"


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("w") / "w.pcap", count=3000, n_flows=64)


def test_every_packet_runs_the_program_and_maps_count_flows(workload: Path) -> None:
    net, coll = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    seen: list[PacketOutcome] = []
    stats = replay(net, read_packets(workload), "eth0", on_packet=seen.append)
    assert stats.packets == 3000 == len(seen)
    assert sum(stats.verdicts.values()) == 3000
    assert sum(stats.filter_hits.values()) == 3000
    flows = coll.maps["flows"]
    packets = sum(int.from_bytes(v[:8], "little") for _, v in flows.items())
    assert packets == 3000 - int.from_bytes(coll.maps["other"].lookup(bytes(4)), "little")
    assert [o.index for o in seen] == list(range(3000))


def test_outputs_are_the_bytes_after_the_hook() -> None:
    net, _ = single_program_net(OBJECTS / "pkt_rewrite.bpf.o")
    seen: list[PacketOutcome] = []
    replay(net, read_packets(MIXED), "eth0", on_packet=seen.append)
    inputs = [r.data for r in read_packets(MIXED)]
    after = [o.output[0] for o in seen]
    assert all(where == "default/eth0" and what == "after tc ingress" for where, what, _ in after)
    assert any(data != frame for (_, _, data), frame in zip(after, inputs, strict=True))


def test_egress_replay_transmits(workload: Path) -> None:
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    seen: list[PacketOutcome] = []
    replay(net, read_packets(workload), "eth0", direction="egress", on_packet=seen.append)
    assert all(any(what == "out" for _, what, _ in o.output) for o in seen[:50])


def test_bad_selection_and_direction() -> None:
    with pytest.raises(ReplayError, match="no program matches"):
        single_program_net(OBJECTS / "flow_counter.bpf.o", "nope")
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    with pytest.raises(ReplayError, match="ingress or egress"):
        replay(net, [], "eth0", direction="sideways")


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_memory_stays_flat(workload: Path, direction: str) -> None:
    """Replay keeps nothing per packet: the peak does not grow with the packet count, in
    either direction (egress frames leave on the device's wire).  (The readers' own
    flatness is tested in tests/pcap with a large file.)"""
    recorded = list(read_packets(workload))[:200]
    frames = [r.data for r in recorded]
    iface = recorded[0].interface

    def records(n: int) -> Iterator[PacketRecord]:
        for i in range(n):
            data = frames[i % len(frames)]
            yield PacketRecord(1_000 * i, data, len(data), iface)

    def peak(n: int) -> int:
        net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
        replay(net, records(300), "eth0", direction=direction)   # warm caches and maps
        tracemalloc.start()
        replay(net, records(n), "eth0", direction=direction)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(4000) < peak(500) + 64 * 1024


def test_cli_report_output_and_json(tmp_path: Path, workload: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    obj = str(OBJECTS / "flow_counter.bpf.o")
    assert main(["replay", "--obj", obj, "--sec", "tc", str(workload), "-w", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3000 packets" in out
    assert "TC_ACT_OK" in out
    assert "map flow_counter.bpf.o:flows" in out
    written = list(read_packets(tmp_path / "output.pcapng"))
    assert len(written) == 3000
    assert main(["replay", "--obj", obj, "--sec", "tc", str(workload), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packets"] == 3000
    assert report["verdicts"] == {"TC_ACT_OK": 3000}


def test_cli_ab_diff(capsys: pytest.CaptureFixture[str]) -> None:
    same = str(OBJECTS / "pkt_rewrite.bpf.o")
    assert main(["replay", "--obj", same, "--diff", same, str(MIXED)]) == 0
    assert "0 packet(s) differ" in capsys.readouterr().out
    other = str(OBJECTS / "flow_counter.bpf.o")
    assert main(["replay", "--obj", same, "--diff", other, "--sec", "tc", str(MIXED),
                 "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["diff"]["differences"]
    assert "output bytes differ" in report["diff"]["differences"][0]["difference"]


@pytest.mark.parametrize(("argv", "message"), [
    (["replay", "nope.pcap", "--obj", "x.o"], "no such file"),
    (["replay", str(MIXED)], "exactly one of --obj or --scenario"),
    (["replay", str(MIXED), "--scenario", "s.yaml", "--diff", "x.o"], "use it with --obj"),
])
def test_cli_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_scenario_network(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = ROOT / "scenarios" / "03-tailcall-dispatch.tcemu.yaml"
    assert main(["replay", "--scenario", str(scenario), "--dev", "eth1", str(MIXED)]) == 0
    assert "27 packets" in capsys.readouterr().out


def _flow_keys(coll: object) -> set[tuple[str, str, int]]:
    from ipaddress import IPv4Address

    flows = coll.maps["flows"]  # type: ignore[attr-defined]
    return {(str(IPv4Address(k[0:4])), str(IPv4Address(k[4:8])), k[12]) for k, _ in flows.items()}


@pytest.mark.parametrize("capture", ["linux_sll.pcap", "linktypes.pcapng"])
def test_cooked_and_raw_captures_arrive_as_ethernet(capture: str) -> None:
    """``tcpdump -i any`` (SLL/SLL2) and tun (RAW) captures have no Ethernet header: replay
    writes one (tcemu.pcap.to_ethernet), so the program parses the packets they hold."""
    net, coll = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    seen: list[PacketOutcome] = []
    replay(net, read_packets(ROOT / "pcaps" / capture), "eth0", on_packet=seen.append)
    keys = _flow_keys(coll)
    # the ICMP echo pair and the UDP datagram to 239.1.2.3 are IPv4 flows; ARP is not IPv4
    assert ("10.0.0.1", "10.0.0.2", 1) in keys
    assert ("10.0.0.2", "10.0.0.1", 1) in keys
    assert ("10.0.0.2", "239.1.2.3", 17) in keys
    assert int.from_bytes(coll.maps["other"].lookup(bytes(4)), "little") >= 1   # the ARP
    frames = [o.output[0][2] for o in seen if o.output]
    assert all(len(f) >= 14 and f[12:14] in (b"\x08\x00", b"\x08\x06", b"\x86\xdd")
               for f in frames)


def test_unreplayable_link_type_is_a_typed_error(tmp_path: Path) -> None:
    from tcemu.pcap import PcapError, PcapWriter

    path = tmp_path / "wifi.pcap"
    with PcapWriter(path, linktype=105) as w:                 # IEEE 802.11
        w.write(0, b"\x08\x00" + bytes(30))
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    with pytest.raises(PcapError, match=r"IEEE802_11: cannot be replayed"):
        replay(net, read_packets(path), "eth0")


def test_trace_follows_each_packet() -> None:
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    net.trace.emit(0, 99, "send", "default", "eth0", "before the replay")
    per_packet: list[list[str]] = []
    replay(net, read_packets(MIXED), "eth0",
           on_trace=lambda events: per_packet.append([e.stage for e in events]))
    assert len(per_packet) == 27
    assert all(stages[:2] == ["wire", "rx"] and "prog" in stages and "verdict" in stages
               for stages in per_packet)
    assert [e.detail for e in net.trace] == ["before the replay"]   # kept, nothing added
    assert net.trace.enabled                                       # as it was


def test_cli_trace_text_json_and_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = str(OBJECTS / "flow_counter.bpf.o")
    jsonl = tmp_path / "trace.jsonl"
    assert main(["replay", "--obj", obj, "--sec", "tc", str(MIXED), "--trace",
                 "--trace-jsonl", str(jsonl)]) == 0
    out = capsys.readouterr().out
    assert out.count("packet #") == 27
    assert "flow_counter (" in out
    assert "=> TC_ACT_OK" in out
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {e["stage"] for e in events} >= {"wire", "rx", "tc", "prog", "verdict"}
    assert events[0]["time_ns"] == 0
    assert len({e["pkt"] for e in events}) == 27
    assert main(["replay", "--obj", obj, "--sec", "tc", str(MIXED), "--trace", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [e["stage"] for e in report["pipeline"]] == [e["stage"] for e in events]


def test_after_hook_bytes_keep_an_offloaded_vlan_tag() -> None:
    """At tc ingress the tag is metadata (skb_vlan_untag ran first); the frame replay
    reports as the hook left it carries the tag again, as it would leave the device."""
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    seen: list[PacketOutcome] = []
    vlan = ROOT / "pcaps" / "vlan.pcap"
    replay(net, read_packets(vlan), "eth0", on_packet=seen.append)
    inputs = [r.data for r in read_packets(vlan)]
    after = [o.output[0][2] for o in seen]
    assert after == inputs                 # flow_counter changes no byte, tags included


@pytest.mark.parametrize("traced", [False, True])
def test_a_failing_capture_leaves_the_network_as_it_was(traced: bool) -> None:
    """A capture that fails halfway (a corrupt record, a reader error) ends the replay
    with its error; the network keeps no observer of the replay and its trace flag."""
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    net.trace.enabled = traced
    observers = list(net.hook_observers)
    good = list(read_packets(MIXED))

    def records() -> Iterator[PacketRecord]:
        yield from good[:3]
        raise OSError("the capture's disk went away")

    with pytest.raises(OSError, match="went away"):
        replay(net, records(), "eth0", on_trace=(lambda events: None) if not traced else None)
    assert net.hook_observers == observers
    assert net.trace.enabled is traced
    assert replay(net, good, "eth0").packets == len(good)       # and it replays again
