"""tcemu diff without a kernel: field-level frame comparison, the ignore list, the
comparison of two runs, exit codes; and the kernel backend's run on this kernel."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from tcemu.cli import main
from tcemu.kernel.libbpf import error_lines
from tcemu.scenario import load_scenario, parse_scenario
from tcemu.scenario.checks import Frame, VerdictTotals
from tcemu.scenario.diff import (
    DEFAULT_NONDETERMINISTIC,
    compare,
    emulator_frames,
    emulator_maps,
    field_diffs,
)
from tcemu.scenario.kernel import KernelRun, KernelUnavailableError
from tcemu.scenario.loader import ScenarioError
from tcemu.scenario.packet import build_packet
from tcemu.scenario.runner import run_scenario

ROOT = Path(__file__).parents[2]
VLAN = ROOT / "scenarios" / "01-vlan-push-pop.tcemu.yaml"
PLAIN = 'Ether()/IP(src="10.0.0.1", dst="10.0.0.2", ttl=64)/UDP(sport=1, dport=2)/b"x"'
VXLAN = ('Ether()/IP(src="10.1.0.1", dst="10.1.0.2", id={id})/UDP(sport={sport}, dport=4789)'
         '/VXLAN(vni=42)/Ether()/IP(src="192.168.0.1", dst="192.168.0.2")'
         '/UDP(sport={inner}, dport=7)/b"hi"')


def test_field_diff_names_layer_field_and_both_values() -> None:
    a = build_packet(PLAIN)
    b = build_packet(PLAIN.replace("ttl=64", "ttl=63"))
    diffs = field_diffs(a, b, [])
    assert diffs[0] == "IP.ttl 64 != 63"
    assert any(d.startswith("IP.chksum ") for d in diffs)
    assert field_diffs(a, a, []) == []


def test_outer_vxlan_fields_are_ignored_by_default_but_not_the_inner_ones() -> None:
    a = build_packet(VXLAN.format(id=1, sport=40000, inner=5000))
    b = build_packet(VXLAN.format(id=7, sport=51234, inner=5000))
    assert field_diffs(a, b, list(DEFAULT_NONDETERMINISTIC)) == []
    assert "UDP.sport 40000 != 51234" in field_diffs(a, b, [])
    c = build_packet(VXLAN.format(id=1, sport=40000, inner=5001))
    assert field_diffs(a, c, list(DEFAULT_NONDETERMINISTIC))[0] == "UDP[1].sport 5000 != 5001"
    # an occurrence index picks one layer
    assert field_diffs(a, c, ["UDP[1].sport", "UDP[1].chksum"]) == []


def test_different_layers_are_reported_as_such() -> None:
    a = build_packet(PLAIN)
    b = build_packet('Ether()/Dot1Q(vlan=5)/IP(src="10.0.0.1", dst="10.0.0.2")/UDP()/b"x"')
    assert field_diffs(a, b, []) == ["layers Ether/IP/UDP/Raw != Ether/Dot1Q/IP/UDP/Raw"]


def test_nondeterministic_paths_are_validated() -> None:
    text = "name: x\nnondeterministic: [IP.id, 'UDP[0].sport', 'outer:IP.chksum']\n"
    assert parse_scenario(text).nondeterministic == ["IP.id", "UDP[0].sport",
                                                     "outer:IP.chksum"]
    with pytest.raises(ScenarioError, match="not a field path"):
        parse_scenario("name: x\nnondeterministic: [ip id]\n")
    schema = json.loads((ROOT / "scenarios" / "schema.json").read_text())
    assert "nondeterministic" in schema["properties"]


def _twin(result: object, *, change: int | None = None, drop_map: bool = False) -> KernelRun:
    """A kernel run built from an emulator run's observations (optionally altered)."""
    frames = [dataclasses.replace(f, time_ns=None, pkt=None) for f in emulator_frames(result)]
    if change is not None:
        data = bytearray(frames[change].data)
        data[-1] ^= 0xFF
        frames[change] = dataclasses.replace(frames[change], data=bytes(data))
    maps = emulator_maps(result)
    if drop_map:
        maps["vlan.bpf.o:per_vlan"] = {}
    run = KernelRun(result, frames=frames, maps=maps)  # type: ignore[arg-type]
    run.verdicts = {("switch", "veth1", "ingress"): VerdictTotals(1, 0, "test"),
                    ("host", "veth0", "egress"): VerdictTotals(1, 0, "test")}
    return run


def test_compare_equal_runs_and_each_kind_of_difference() -> None:
    scenario = load_scenario(VLAN)
    emulator = run_scenario(scenario, VLAN)
    same = compare(scenario, str(VLAN), emulator, _twin(emulator))
    assert same.equal, same
    assert same.compared == {"frames": 2, "verdict hooks": 2, "maps": 2, "programs": 2}

    report = compare(scenario, str(VLAN), emulator, _twin(emulator, change=1, drop_map=True))
    assert not report.equal
    [frame] = report.frames
    assert (frame.netns, frame.dev, frame.direction, frame.status) == (
        "switch", "veth1", "in", "differs")
    assert frame.fields[0].startswith("Padding.load") or "UDP" in frame.fields[0] \
        or frame.fields[0].startswith("Raw.load"), frame.fields
    [entry] = report.maps
    assert (entry.map, entry.key, entry.kernel) == ("vlan.bpf.o:per_vlan", "64000000", None)

    missing = _twin(emulator)
    missing.frames = missing.frames[:1]
    report = compare(scenario, str(VLAN), emulator, missing)
    assert [(f.dev, f.status) for f in report.frames] == [("veth1", "only on the emulator")]


def test_verifier_verdicts_are_compared() -> None:
    from tcemu.scenario.runner import ProgramInfo

    scenario = load_scenario(VLAN)
    emulator = run_scenario(scenario, VLAN)
    twin = _twin(emulator)
    twin.result = dataclasses.replace(emulator, programs=dict(emulator.programs))
    twin.result.programs["pop"] = ProgramInfo("pop", None, False, "0: (b7) r0 = 0\n"
                                              "R0 !read_ok\nprocessed 1 insns\n", "x")
    [diff] = compare(scenario, str(VLAN), emulator, twin).programs
    assert (diff.program, diff.emulator, diff.kernel) == ("pop", "accepted",
                                                          "rejected: R0 !read_ok")


def test_verdict_totals_are_compared() -> None:
    scenario = load_scenario(VLAN)
    emulator = run_scenario(scenario, VLAN)
    twin = _twin(emulator)
    twin.verdicts[("switch", "veth1", "ingress")] = VerdictTotals(1, 1, "test")
    [diff] = compare(scenario, str(VLAN), emulator, twin).verdicts
    assert (diff.emulator, diff.kernel) == ({"runs": 1, "shot": 0}, {"runs": 1, "shot": 1})


def test_cli_exit_3_when_the_kernel_cannot_run_it(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def unavailable(*args: object, **kwargs: object) -> KernelRun:
        raise KernelUnavailableError("no act_bpf here", feature="action/bpf")

    monkeypatch.setattr("tcemu.scenario.kernel.run_kernel", unavailable)
    assert main(["diff", str(VLAN)]) == 3
    assert "cannot run this scenario here: no act_bpf here" in capsys.readouterr().err
    assert main(["run", "--backend", "kernel", str(VLAN)]) == 3
    assert main(["diff", "--json", str(VLAN)]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["feature"] == "action/bpf"


def test_verifier_error_lines_are_every_line_after_the_last_instruction() -> None:
    log = ("0: R1=ctx() R10=fp0\n0: (61) r1 = *(u32 *)(r1 +76)     ; R1=pkt(r=0)\n"
           "1: (71) r1 = *(u8 *)(r1 +23)\n"
           "invalid access to packet, off=23 size=1, R1(id=0,off=23,r=0)\n"
           "R1 offset is outside of the packet\n"
           "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0\n")
    assert error_lines(log) == ("invalid access to packet, off=23 size=1, R1(id=0,off=23,r=0)"
                                "\nR1 offset is outside of the packet")


@pytest.mark.kernel
def test_kernel_run_reports_the_kernels_own_verifier_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "scenarios" / "09-verifier-rejects.tcemu.yaml"
    assert main(["run", "--backend", "kernel", "--json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "kernel"
    assert "R1 offset is outside of the packet" in report["programs"]["unchecked"]["error"]
    assert report["programs"]["checked"]["accepted"] is True
    shot = [c for c in report["checks"] if "SHOT" in c["expected"]]
    assert shot
    assert shot[0]["passed"]
    assert shot[0]["observable"]


@pytest.mark.kernel
def test_kernel_run_marks_what_it_cannot_observe(capsys: pytest.CaptureFixture[str]) -> None:
    text = VLAN.read_text().replace(
        "expect:\n", "expect:\n  - trace_printk: 'anything'\n"
                     "  - verdict: {dev: veth1, netns: switch, hook: ingress, "
                     "verdict: TC_ACT_OK, packet: 0}\n")
    path = VLAN.parent / ".test-kernel-observable.tcemu.yaml"
    path.write_text(text)
    try:
        assert main(["run", "--backend", "kernel", "--json", str(path)]) == 0
    finally:
        path.unlink()
    report = json.loads(capsys.readouterr().out)
    assert report["not_observable"] == [0, 1]
    assert "trace buffer" in report["checks"][0]["found"]


@pytest.mark.kernel
def test_diff_cli_on_a_shipped_scenario(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    assert main(["diff", str(VLAN)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("EQUAL vlan-push-pop")
    lesson = ROOT / "scenarios" / "02-vxlan-collect-md.tcemu.yaml"
    assert main(["diff", "--json", str(lesson)]) == 0    # b's ICMP error on both backends
    assert json.loads(capsys.readouterr().out)["equal"] is True
    # Without the default ignore list the outer VXLAN source port and IPv4 id differ.
    (tmp_path / "programs").symlink_to(lesson.parent / "programs")
    strict = tmp_path / lesson.name
    strict.write_text(lesson.read_text() + "nondeterministic: []\n")
    assert main(["diff", "--json", str(strict)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["equal"] is False
    assert {f["status"] for f in report["frames"]} == {"differs"}


def test_frame_is_backend_neutral() -> None:
    frame = Frame("a", "eth0", "in", b"\x00" * 14, None)
    assert frame.pkt is None
    assert frame.time_ns is None


_PATHS_SCENARIO = """
name: kernel-paths
netns: [a, b]
links:
  - {{name: v0, kind: veth, netns: a, address: "02:00:00:00:00:0a", peer: v1, peer_netns: b,
     peer_address: "02:00:00:00:00:0b", addresses: [10.0.0.100/24]}}
  - ip -n a link add p0 address 02:00:00:00:01:01 type veth peer name p1 address 02:00:00:00:01:02
setup:
  - ip -n a addr add 10.0.1.1/24 dev p0
  - ip -n a link set p0 up
  - ip -n a link set p1 up
programs:
  parse: {{object: {root}/scenarios/programs/ldabs.bpf.o, section: tc}}
tc:
  - {{dev: v0, netns: a, qdisc: clsact}}
  - {{dev: v0, netns: a, hook: ingress, program: parse}}
traffic:
  - replay: {{pcap: {root}/pcaps/dns.pcapng, dev: v0, netns: a, direction: in}}
  - send: {{dev: p0, netns: a,
            packet: 'Ether(dst="02:00:00:00:01:02")/IP(dst="10.0.1.9")/TCP(dport=22)'}}
  - advance: 1ms
expect:
  - seen: {{dev: v0, netns: a, direction: in, fields: {{UDP.dport: 53}}, count: 6}}
  - seen: {{dev: p1, netns: a, direction: in, fields: {{TCP.dport: 22, IP.src: 10.0.1.1}}}}
  - map: {{map: protos, key: 17, value: 10}}
  - counter: {{dev: v0, netns: a, counter: rx_packets, value: 12}}
  - counter: {{dev: v1, netns: b, counter: tx_packets, value: 12}}
  - verdict: {{dev: v0, netns: a, hook: ingress, verdict: TC_ACT_OK, count: 12}}
"""


@pytest.mark.kernel
def test_receive_through_the_peer_pcap_replay_and_ip_lines_agree(tmp_path: Path) -> None:
    from tcemu.scenario.diff import diff_scenario

    path = tmp_path / "paths.tcemu.yaml"
    path.write_text(_PATHS_SCENARIO.format(root=ROOT))
    scenario = load_scenario(path)
    emulator = run_scenario(scenario, path)
    assert [c.index for c in emulator.checks if not c.passed] == [4]  # no tx on the peer
    report = diff_scenario(scenario, path)
    assert report.equal, "\n".join(str(f) for f in report.frames)
    assert report.compared["frames"] == 14
    assert not report.notes


def _leftovers() -> list[str]:
    from tcemu.kernel.netns_thread import NETNS_RUN_DIR

    mine = f"tcemu-run-{os.getpid()}-"
    names = [p.name for p in NETNS_RUN_DIR.glob(f"{mine}*")] if NETNS_RUN_DIR.exists() else []
    mounts = Path("/proc/self/mounts").read_text()
    return names + [line for line in mounts.splitlines() if "tcemu-netcls-" in line]


@pytest.mark.kernel
def test_kernel_run_tears_down_after_success_and_after_a_refused_command(
        tmp_path: Path) -> None:
    from tcemu.scenario.kernel import run_kernel
    from tcemu.scenario.runner import ScenarioRunError

    netcls = ROOT / "scenarios" / "05-netcls-egress-policy.tcemu.yaml"
    assert run_kernel(load_scenario(netcls), netcls).result.passed
    assert _leftovers() == []
    bad = tmp_path / "bad.tcemu.yaml"
    bad.write_text(VLAN.read_text().replace(
        "programs:", "setup:\n  - ip -n host route add 10.9.0.0/16 via 10.200.0.1\nprograms:"))
    with pytest.raises(ScenarioRunError, match=r"setup\[0\]: the kernel refused it"):
        run_kernel(load_scenario(bad), bad)
    assert _leftovers() == []


def test_not_root_is_exit_3_with_the_reason(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["run", "--backend", "kernel", str(VLAN)]) == 3
    err = capsys.readouterr().err
    assert "cannot run this scenario here" in err
    assert "root" in err or "bpf" in err


_MIRRED_SCENARIO = """
name: bpf-then-mirred
links:
  - {{name: eth0, kind: veth, address: "02:00:00:00:00:01", peer: eth1,
     peer_address: "02:00:00:00:00:02"}}
  - {{name: mon0, kind: veth, address: "02:00:00:00:00:11", peer: mon1,
     peer_address: "02:00:00:00:00:12"}}
tc:
  - tc qdisc add dev eth1 clsact
  - tc filter add dev eth1 ingress bpf obj {root}/scenarios/programs/ldabs.bpf.o sec tc
    action mirred egress redirect dev mon0
maps:
  - {{map: protos, key: 6, value: 40}}
traffic:
  - send: {{dev: eth0, packet: 'Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2")/UDP(dport=9)',
           repeat: 2}}
  - send: {{dev: eth0, packet: 'Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2")/TCP(dport=9)'}}
expect:
  - not_seen: {{dev: mon1}}      # classic mode: the program's 0 is "no match", no action
  - map: {{map: protos, key: 6, value: 41}}    # the preload reached tc's program
"""


@pytest.mark.kernel
def test_a_tc_line_with_an_action_shares_the_objects_maps(tmp_path: Path) -> None:
    from tcemu.scenario.diff import diff_scenario

    path = tmp_path / "mirred.tcemu.yaml"
    path.write_text(_MIRRED_SCENARIO.format(root=ROOT))
    scenario = load_scenario(path)
    assert run_scenario(scenario, path).passed
    from tcemu.scenario.kernel import run_kernel

    assert run_kernel(scenario, path).result.passed
    report = diff_scenario(scenario, path)
    assert report.equal, report
    assert report.compared["maps"] == 2
    assert report.notes == []


_ASM_SCENARIO = """
name: asm
links:
  - {name: eth0, kind: veth, address: "02:00:00:00:00:01", peer: eth1,
     peer_address: "02:00:00:00:00:02"}
programs:
  drop: {asm: "r0 = 2\\nexit"}
  bad: {asm: "r0 = r2\\nexit"}
tc:
  - tc qdisc add dev eth1 clsact
  - {dev: eth1, hook: ingress, program: drop}
traffic:
  - send: {dev: eth0, packet: 'Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2")/UDP()',
           repeat: 2}
expect:
  - verdict: {dev: eth1, hook: ingress, verdict: TC_ACT_SHOT, count: 2}
  - rejected: {program: bad, message: "R2 !read_ok"}
"""


@pytest.mark.kernel
def test_inline_asm_programs_are_judged_by_the_kernels_verifier(tmp_path: Path) -> None:
    from tcemu.scenario.diff import diff_scenario
    from tcemu.scenario.kernel import run_kernel

    path = tmp_path / "asm.tcemu.yaml"
    path.write_text(_ASM_SCENARIO)
    scenario = load_scenario(path)
    run = run_kernel(scenario, path)
    assert run.result.passed
    assert run.result.programs["bad"].error == "R2 !read_ok"
    assert diff_scenario(scenario, path).equal


@pytest.mark.kernel
def test_a_missing_device_kind_is_exit_3(tmp_path: Path) -> None:
    from tcemu.errors import KernelError
    from tcemu.kernel.netns import KernelNet

    missing = ""
    with KernelNet(prefix="tcemu-t-") as kn:
        try:
            kn.require(links=["vlan"])
        except KernelError as err:
            missing = err.missing_feature or ""
    if not missing:
        pytest.skip("this kernel has 8021q: no missing device kind to test here")
    assert missing == "link/vlan"
    path = tmp_path / "vlan.tcemu.yaml"
    path.write_text(_ASM_SCENARIO.replace(
        "programs:", "  - {name: vl0, kind: vlan, link: eth0, vlan_id: 5}\nprograms:"))
    assert main(["diff", str(path)]) == 3


_STRUCTURED_SCENARIO = """
name: structured-filters
links:
  - {{name: eth0, kind: veth, address: "02:00:00:00:00:01", peer: eth1,
     peer_address: "02:00:00:00:00:02"}}
  - {{name: mon0, kind: veth, address: "02:00:00:00:00:11", peer: mon1,
     peer_address: "02:00:00:00:00:12"}}
programs:
  steer: {{object: {root}/scenarios/programs/classid.bpf.o, section: tc}}
  mirror: {{object: {root}/scenarios/programs/mirror.bpf.o, section: tc}}
tc:
  - {{dev: eth0, qdisc: htb, handle: "1:", params: {{default: 20}}}}
  - "tc class add dev eth0 parent 1: classid 1:10 htb rate 100mbit"
  - "tc class add dev eth0 parent 1: classid 1:20 htb rate 100mbit"
  - {{dev: eth0, hook: "1:", program: steer, classid: "1:"}}
  - {{dev: eth1, qdisc: clsact}}
  - {{dev: eth1, hook: ingress, program: mirror, da: false, protocol: ip,
     actions: ["mirred egress mirror dev mon0"]}}
maps:
  - {{map: config, program: mirror, key: 0, value: "ifindex:mon0"}}
traffic:
  - send: {{dev: eth0, packet: 'Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2")/UDP()',
           repeat: 2}}
expect:
  - counter: {{dev: eth0, qdisc: "1:", counter: packets, value: 2}}
  - counter: {{dev: eth0, qdisc: "1:", counter: overlimits, value: 0}}
  - map: {{map: results, program: mirror, key: 0, value: 2}}
"""


@pytest.mark.kernel
def test_structured_filters_with_parents_and_actions(tmp_path: Path) -> None:
    from tcemu.scenario.diff import diff_scenario
    from tcemu.scenario.kernel import run_kernel

    path = tmp_path / "structured.tcemu.yaml"
    path.write_text(_STRUCTURED_SCENARIO.format(root=ROOT))
    scenario = load_scenario(path)
    checks = run_kernel(scenario, path).result.checks
    assert [(c.passed, c.observable) for c in checks] == [(True, True), (True, False),
                                                          (True, True)]
    report = diff_scenario(scenario, path)
    assert report.equal, report
    assert report.compared["maps"] == 2


_COOKED_SCENARIO = """
name: cooked-captures
netns: [a, b]
links:
  - {{name: v0, kind: veth, netns: a, address: "02:00:00:00:00:01", peer: v1, peer_netns: b,
     peer_address: "02:00:00:00:00:02", addresses: [10.0.0.1/24]}}
traffic:
  - replay: {{pcap: {root}/pcaps/linux_sll.pcap, dev: v0, netns: a, direction: in}}
  - replay: {{pcap: {root}/pcaps/linktypes.pcapng, dev: v0, netns: a, direction: in}}
expect:
  - seen: {{dev: v0, netns: a, direction: in, count: 7, fields: {{Ether.type: 0x0800}}}}
"""


@pytest.mark.kernel
def test_cooked_and_raw_captures_replay_alike_on_both_backends(tmp_path: Path) -> None:
    """SLL, SLL2 and RAW records become the same Ethernet frames on both backends."""
    from tcemu.scenario.diff import diff_scenario

    path = tmp_path / "cooked.tcemu.yaml"
    path.write_text(_COOKED_SCENARIO.format(root=ROOT))
    scenario = load_scenario(path)
    emulator = run_scenario(scenario, path)
    assert emulator.passed, [c.detail for c in emulator.checks if not c.passed]
    report = diff_scenario(scenario, path)
    assert report.equal, "\n".join(str(f) for f in report.frames)
    assert report.compared["frames"] >= 10
