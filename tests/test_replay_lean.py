"""Replay's lean receive (``tcemu.replay._receive``: no event-loop round trip, and the
device's receive plan, ``tcemu.net.fastpath``) against the full ``Net.receive`` path, and
replay without ``on_packet`` against replay with it: same
outcomes, totals, maps, device counters and clock, packet for packet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tcemu import replay as replay_mod
from tcemu.net import Net
from tcemu.net.fastpath import IngressPlan
from tcemu.pcap import PacketRecord, read_packets
from tcemu.replay import PacketOutcome, ReplayStats, replay, single_program_net
from tcemu.skb import SkBuff

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = ROOT / "tests" / "testdata" / "objects"
PCAPS = ROOT / "pcaps"

# (object, section or None, program name or None): classifiers that pass, rewrite,
# resize, push/pop VLAN tags and redirect (to the device's own egress, its ingress, lo).
PROGRAMS = [
    ("flow_counter.bpf.o", "tc", None),
    ("pkt_rewrite.bpf.o", None, None),
    ("skb_resize.bpf.o", None, "vlan_push_pop"),
    ("skb_resize.bpf.o", None, "adjust_room"),
    ("redirect.bpf.o", None, "redirect_egress"),
    ("redirect.bpf.o", None, "clone_to_lo"),
    ("nat_rewrite.bpf.o", None, None),
    ("skb_ctx.bpf.o", None, None),
]
CAPTURES = ["mixed_flows.pcapng", "vlan.pcap", "vxlan.pcapng", "arp.pcap"]


def _records() -> list[PacketRecord]:
    records = [r for name in CAPTURES for r in read_packets(PCAPS / name)]
    # a runt frame and an empty one take the loop (their drops are events there)
    runt = PacketRecord(records[-1].timestamp_ns + 1000, bytes(10), 10, records[-1].interface)
    empty = PacketRecord(runt.timestamp_ns + 1000, b"", 0, runt.interface)
    return [*records, runt, empty]


def _state(net: Net) -> object:
    maps = _maps(net)
    devices = {f"{ns.name}/{d.name}": vars(d.stats).copy()
               for ns in net.namespaces.values() for d in ns.devices.values()}
    return maps, devices, net.clock.now_ns(), net.loop.pending()


def _maps(net: Net) -> object:
    return {f"{key}:{name}": list(m.items())
            for key, coll in net.collections.items() for name, m in coll.maps.items()}


def _play(build: Callable[[], Net], records: list[PacketRecord], dev: str, *, lean: bool,
          keep: bool, monkeypatch: pytest.MonkeyPatch,
          ) -> tuple[ReplayStats, list[tuple[PacketOutcome, object]], object]:
    """Replay; the outcomes (with every map after each packet) when ``keep``, the totals,
    and the state at the end."""
    net = build()
    seen: list[tuple[PacketOutcome, object]] = []

    def on_packet(outcome: PacketOutcome) -> None:
        seen.append((outcome, _maps(net)))
    taken = [0]
    receive = replay_mod._receive

    def counted(*args: object) -> bool:
        done = receive(*args)  # type: ignore[arg-type]
        taken[0] += done
        return done

    plan_arrive = IngressPlan.arrive

    def planned(plan: IngressPlan, frame: bytes) -> SkBuff | None:
        skb = plan_arrive(plan, frame)
        taken[0] += skb is not None
        return skb

    with monkeypatch.context() as m:
        m.setattr(replay_mod, "_receive", counted if lean else lambda *args: False)
        m.setattr(IngressPlan, "arrive", planned if lean else lambda *args: None)
        stats = replay(net, records, dev, on_packet=on_packet if keep else None)
    assert taken[0] == (len(records) - 2 if lean else 0)   # all but the two runts
    return stats, seen, _state(net)


@pytest.mark.parametrize(("obj", "sec", "name"), PROGRAMS)
def test_lean_receive_is_the_full_path(obj: str, sec: str | None, name: str | None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records()

    def build() -> Net:
        return single_program_net(OBJECTS / obj, sec, name)[0]

    full = _play(build, records, "eth0", lean=False, keep=True, monkeypatch=monkeypatch)
    lean = _play(build, records, "eth0", lean=True, keep=True, monkeypatch=monkeypatch)
    quiet = _play(build, records, "eth0", lean=True, keep=False, monkeypatch=monkeypatch)
    assert full[0].packets == len(records)
    assert lean[1] == full[1]
    assert lean[0] == full[0] == quiet[0]
    assert lean[2] == full[2] == quiet[2]
    assert quiet[1] == []


def test_lean_receive_on_a_scenario_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from tcemu.scenario import load_scenario
    from tcemu.scenario.runner import run_scenario

    scenario = ROOT / "scenarios" / "03-tailcall-dispatch.tcemu.yaml"

    def build() -> Net:
        result = run_scenario(load_scenario(str(scenario)), str(scenario), play=False)
        assert result.net is not None
        return result.net

    records = _records()
    full = _play(build, records, "eth1", lean=False, keep=True, monkeypatch=monkeypatch)
    lean = _play(build, records, "eth1", lean=True, keep=True, monkeypatch=monkeypatch)
    quiet = _play(build, records, "eth1", lean=True, keep=False, monkeypatch=monkeypatch)
    assert any(o.output for o, _ in full[1])
    assert lean[1] == full[1]
    assert lean[0] == full[0] == quiet[0]
    assert lean[2] == full[2] == quiet[2]


def test_lean_receive_declines_what_needs_the_loop() -> None:
    net, _ = single_program_net(OBJECTS / "flow_counter.bpf.o", "tc")
    net.trace.enabled = False                                     # as replay() has it
    device = net.dev("eth0")
    frame = next(iter(read_packets(PCAPS / "mixed_flows.pcapng"))).data
    assert replay_mod._receive(net, device, frame)
    assert not replay_mod._receive(net, device, frame[:13])       # runt: dropped in netif_rx
    net.loop.schedule(net.clock.now_ns(), lambda: None)           # something due now first
    assert not replay_mod._receive(net, device, frame)
    net.run()
    net.trace.enabled = True                                      # trace events on the loop
    assert not replay_mod._receive(net, device, frame)
    net.trace.enabled = False
    net.link_set("eth0", up=False)
    assert not replay_mod._receive(net, device, frame)
