"""Running scenarios on the emulator: the shipped lessons pass, and every kind of
expectation really fails when the network does not do what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcemu.cli import main
from tcemu.pcap import read_packets
from tcemu.scenario import parse_scenario
from tcemu.scenario.runner import ScenarioResult, ScenarioRunError, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.tcemu.yaml"))
LESSON = ROOT / "scenarios" / "03-tailcall-dispatch.tcemu.yaml"


def _run(text: str, tier: str = "jit") -> ScenarioResult:
    path = ROOT / "scenarios" / "inline.tcemu.yaml"   # so programs/ resolves
    return run_scenario(parse_scenario(text, str(path)), path, tier=tier)  # type: ignore[arg-type]


def test_there_are_at_least_ten_lessons() -> None:
    assert len(SHIPPED) >= 10


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_pass(path: Path) -> None:
    from tcemu.scenario import load_scenario

    result = run_scenario(load_scenario(path), path)
    failed = [c for c in result.checks if not c.passed]
    assert not failed, failed
    assert result.checks


def test_tiers_agree() -> None:
    text = LESSON.read_text()
    for tier in ("interp", "jit"):
        result = _run(text, tier)
        assert result.passed, [c for c in result.checks if not c.passed]


VETH = """\
name: t
links:
  - {name: eth0, kind: veth, address: "02:00:00:00:00:01", peer: eth1,
     peer_address: "02:00:00:00:00:02"}
programs:
  parser: {object: programs/tailcall.bpf.o, section: tc, name: packet_parser}
tc:
  - tc qdisc add dev eth1 clsact
  - {dev: eth1, hook: ingress, program: parser}
traffic:
  - send: {dev: eth0, packet: 'Ether()/IP(dst="10.0.0.2")/UDP(dport=53)'}
expect:
"""


@pytest.mark.parametrize("expectation", [
    "  - map: {map: ports, key: 0x110035, value: 2}",
    "  - map: {map: ports, key: 0x110036, value: 1}",
    "  - map: {map: other, key: 17, value: 1}",
    "  - seen: {dev: eth1, direction: out, fields: {UDP.dport: 53}}",
    "  - seen: {dev: eth1, direction: in, fields: {UDP.dport: 54}}",
    "  - seen: {dev: eth1, fields: {UDP.dport: 53}, count: 2}",
    "  - seen: {dev: eth1, contains: 'deadbeef'}",
    "  - not_seen: {dev: eth1, fields: {UDP.dport: 53}}",
    "  - verdict: {dev: eth1, hook: ingress, verdict: TC_ACT_SHOT}",
    "  - verdict: {dev: eth1, hook: egress, verdict: TC_ACT_OK}",
    "  - trace_printk: 'never printed'",
    "  - counter: {dev: eth1, counter: rx_packets, value: 7}",
    "  - rejected: {program: parser, message: 'anything'}",
])
def test_false_expectations_fail(expectation: str) -> None:
    result = _run(VETH + expectation + "\n")
    assert not result.passed
    assert result.checks[0].detail or result.checks[0].kind == "not_seen"


@pytest.mark.parametrize("expectation", [
    "  - map: {map: ports, key: 0x110035, value: 1}",
    "  - map: {map: ports, key: 0x110036, value: null}",
    "  - seen: {dev: eth1, direction: in, fields: {UDP.dport: 53, IP.dst: 10.0.0.2}, count: 1}",
    "  - seen: {dev: eth0, direction: out, times: [0]}",
    "  - not_seen: {dev: eth1, direction: out}",
    "  - verdict: {dev: eth1, hook: ingress, verdict: OK, packet: 0, count: 1}",
    "  - counter: {dev: eth1, counter: rx_packets, value: 1}",
])
def test_true_expectations_pass(expectation: str) -> None:
    result = _run(VETH + expectation + "\n")
    assert result.passed, result.checks


@pytest.mark.parametrize(("change", "where", "message"), [
    (("tc qdisc add dev eth1 clsact", "tc qdisc add dev eth9 clsact"), "tc[0]", "eth9"),
    (("programs/tailcall.bpf.o", "programs/nope.bpf.o"), "programs.parser", "nope.bpf.o"),
    (("name: packet_parser", "name: nope"), "programs.parser", "nope"),
    (("tc qdisc add dev eth1 clsact", "tc qdisc add dev eth1 klsact"), "tc[0]", "klsact"),
])
def test_setup_errors_say_where(change: tuple[str, str], where: str, message: str) -> None:
    with pytest.raises(ScenarioRunError) as info:
        _run(VETH.replace(*change) + "  - map: {map: ports, key: 1, value: 1}\n")
    assert info.value.where == where
    assert message in str(info.value)


def test_attaching_a_rejected_program_is_an_error() -> None:
    text = VETH.replace("programs/tailcall.bpf.o, section: tc, name: packet_parser",
                        "programs/unsafe.bpf.o, section: tc, name: unchecked")
    with pytest.raises(ScenarioRunError, match="verifier rejected"):
        _run(text + "  - map: {map: ports, key: 1, value: 1}\n")


def test_map_values_can_name_an_ifindex() -> None:
    text = (ROOT / "scenarios" / "04-clone-redirect-mirror.tcemu.yaml").read_text()
    result = _run(text)
    assert result.net is not None
    config = result.net.maps["config"]
    assert config.lookup(bytes(4)) == result.net.dev("mon0").ifindex.to_bytes(4, "little")


def test_cli_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(LESSON), "-w", str(tmp_path), "--junit",
                 str(tmp_path / "junit.xml")]) == 0
    out = capsys.readouterr().out
    assert "PASS tailcall-dispatch" in out
    assert "✓ map:" in out
    frames = list(read_packets(tmp_path / "03-tailcall-dispatch.pcapng"))
    assert len(frames) == 8                      # 4 out on eth0, 4 in on eth1
    assert "<testcase" in (tmp_path / "junit.xml").read_text()
    assert main(["run", str(LESSON), "--json", "--trace"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert {e["stage"] for e in report["pipeline"]} >= {"send", "tc", "prog", "verdict"}
    # the trace names every program a tail call reached, in order
    progs = [e["detail"] for e in report["pipeline"] if e["stage"] == "prog"]
    assert sum("packet_parser -> tail call -> parse_udp (" in d for d in progs) == 2
    assert sum("packet_parser -> tail call -> parse_tcp (" in d for d in progs) == 1
    assert sum(": packet_parser (" in d for d in progs) == 1     # ICMP: no tail call


def test_cli_run_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = tmp_path / "f.tcemu.yaml"
    failing.write_text(LESSON.read_text().replace("value: 2}", "value: 3}").replace(
        "programs/", f"{ROOT}/scenarios/programs/"))
    assert main(["run", str(failing)]) == 1
    assert "✗ map" in capsys.readouterr().out
    broken = tmp_path / "b.tcemu.yaml"
    broken.write_text("name: [")
    assert main(["run", str(broken)]) == 2
    unsetup = tmp_path / "u.tcemu.yaml"
    unsetup.write_text(failing.read_text().replace("dev eth1 clsact", "dev eth7 clsact"))
    assert main(["run", str(unsetup)]) == 2
    assert "tc[0]" in capsys.readouterr().err


def test_instruction_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(LESSON), "--trace-insns"]) == 0
    out = capsys.readouterr().out
    assert "call bpf_tail_call#12" in out
    assert "load pkt+23 (1 B)" in out


def test_net_takes_ip_and_tc_command_lines() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from tcemu.errors import NetError
    from tcemu.net import Net

    net = Net()
    net.ip("link add veth0 address 02:00:00:00:00:01 type veth peer name veth1 "
           "address 02:00:00:00:00:02")
    net.ip("ip link set veth0 up")
    net.ip("link set veth1 up")
    net.tc("qdisc add dev veth1 clsact")
    net.tc(f"filter add dev veth1 ingress bpf da obj "
           f"{ROOT}/tests/testdata/objects/flow_counter.bpf.o sec tc")
    net.send("veth0", Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP())
    assert len(net.maps["flows"]) == 1
    with pytest.raises(NetError, match='Cannot find device "veth9"'):
        net.tc("qdisc add dev veth9 clsact")
    with pytest.raises(NetError, match="Unknown device type"):
        net.ip("link add x type bogus")


def test_trace_as_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    assert main(["run", str(LESSON), "--trace-jsonl", str(out), "--trace-insns", "--json"]) == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    stages = {e["stage"] for e in events}
    assert {"send", "tc", "prog", "verdict", "insn"} <= stages
    assert all(e["scenario"] == "tailcall-dispatch" for e in events)
    assert any(e.get("insn", "").startswith("(85) call bpf_tail_call#12") for e in events)


def test_filters_from_objects_are_verified_first() -> None:
    from tcemu.errors import NetError
    from tcemu.net import Net

    net = Net()
    net.ip("link add veth0 type veth peer name veth1")
    net.tc("qdisc add dev veth0 clsact")
    unsafe = ROOT / "scenarios" / "programs" / "unsafe.bpf.o"
    with pytest.raises(NetError, match="the verifier rejected it: invalid access to packet"):
        net.tc(f"filter add dev veth0 ingress bpf da obj {unsafe} sec tc")
    with pytest.raises(NetError, match="verifier rejected"):
        net.filter_add("veth0", "egress", obj=unsafe, sec="tc")


def test_replayed_cooked_capture_arrives_as_ethernet(tmp_path: Path) -> None:
    """A ``tcpdump -i any`` capture (LINUX_SLL) in a scenario's traffic: each packet is
    replayed as the Ethernet frame the device would receive (tcemu.pcap.to_ethernet)."""
    text = f"""
name: cooked
links:
  - {{name: eth0, kind: veth, address: "02:00:00:00:00:01", peer: eth1,
     peer_address: "02:00:00:00:00:02"}}
traffic:
  - replay: {{pcap: {ROOT}/pcaps/linux_sll.pcap, dev: eth1, direction: in}}
expect:
  - seen: {{dev: eth1, direction: in, count: 3, fields: {{Ether.type: 0x0800}}}}
  - seen: {{dev: eth1, direction: in, count: 1, fields: {{ARP.pdst: 10.0.0.1}}}}
  - seen: {{dev: eth1, direction: in, count: 1, fields: {{Ether.dst: "01:00:5e:01:02:03"}}}}
"""
    path = tmp_path / "cooked.tcemu.yaml"
    result = run_scenario(parse_scenario(text, str(path)), path)
    assert result.passed, [c.detail for c in result.checks if not c.passed]
