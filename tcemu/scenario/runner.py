"""Running a scenario on the emulator: build the network, load and verify the programs,
preload maps, play the traffic on the virtual clock, then check every expectation.

The result (:class:`ScenarioResult`) keeps what a report needs: one :class:`Check` per
expectation (passed or not, and why), the captures of every device, the per-packet
trace, the verifier's verdict on every program and the trace_printk lines.  Nothing here
prints; :mod:`tcemu.scenario.report` turns a result into text, JSON, JUnit XML and pcapng.

Objects are loaded once per path (``tcemu.netcmd.ObjectCache``), so the programs of one
object share its maps, whether a filter names them in ``tc`` strings or as structured
entries.  Every program is verified before anything is attached; a program the verifier
rejects can be the subject of a ``rejected`` expectation, and attaching one is an error.

The expectations are checked by :mod:`tcemu.scenario.checks` on
:class:`EmulatorObservations`, the same code that checks a run on the kernel
(:mod:`tcemu.scenario.kernel`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcemu.errors import TcemuError
from tcemu.netcmd import ObjectCache, run_command
from tcemu.scenario import model as m
from tcemu.scenario.checks import (
    Check,
    Frame,
    ProgramVerdict,
    VerdictEvent,
    encode_bytes,
    evaluate,
    parse_verdict,
)
from tcemu.scenario.packet import build_packet

if TYPE_CHECKING:
    from tcemu.bpf.insntrace import InsnTracer
    from tcemu.bpf.maps import MapBase
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Tier
    from tcemu.net import Net
    from tcemu.netdev import NetDev
    from tcemu.trace import TraceEvent

__all__ = ["Check", "EmulatorObservations", "ScenarioResult", "ScenarioRunError",
           "parse_verdict", "run_scenario"]


class ScenarioRunError(TcemuError):
    """A scenario could not be set up or played (a bad command, a missing object...)."""

    def __init__(self, message: str, *, where: str, path: str | None = None) -> None:
        self.where = where
        self.path = path
        self.reason = message
        super().__init__(f"{path + ': ' if path else ''}{where}: {message}")


@dataclass
class ProgramInfo:
    name: str
    program: Program | None
    accepted: bool
    log: str = ""
    error: str = ""


@dataclass
class ScenarioResult:
    name: str
    path: str
    checks: list[Check] = field(default_factory=list)
    programs: dict[str, ProgramInfo] = field(default_factory=dict)
    net: Net | None = None
    packets: list[int] = field(default_factory=list)   # trace packet ids, traffic order
    start_ns: int = 0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def trace_lines(self) -> list[str]:
        return list(self.net.env.trace_pipe) if self.net is not None else []


def run_scenario(scenario: m.Scenario, path: str | Path = "<scenario>", *,
                 tier: Tier = "jit", insn_tracer: InsnTracer | None = None,
                 play: bool = True) -> ScenarioResult:
    """Build and play ``scenario``; file names in it are relative to ``path``'s folder.
    With ``play=False`` only the network is built (for diagrams and inspection)."""
    from tcemu.net import Net

    base = Path(path).parent if str(path) != "<scenario>" else Path.cwd()
    net = Net(seed=scenario.seed, tier=tier)
    result = ScenarioResult(scenario.name, str(path), net=net, start_ns=net.clock.now_ns())
    player = _Player(scenario, net, ObjectCache(base_dir=base), result, insn_tracer)
    try:
        player.build()
        if play:
            player.play()
            player.check()
    except ScenarioRunError as err:
        if err.path is not None or str(path) == "<scenario>":
            raise
        raise ScenarioRunError(err.reason, where=err.where, path=str(path)) from err
    return result


class _Player:
    def __init__(self, scenario: m.Scenario, net: Net, objects: ObjectCache,
                 result: ScenarioResult, tracer: InsnTracer | None) -> None:
        self.s, self.net, self.objects, self.result = scenario, net, objects, result
        self.tracer = tracer
        self._where = ""

    # -- set-up ----------------------------------------------------------------------
    def _step(self, where: str, action: Callable[[], object]) -> None:
        self._where = where
        try:
            action()
        except ScenarioRunError:
            raise
        except TcemuError as err:
            raise ScenarioRunError(str(err), where=where) from err

    def build(self) -> None:
        for name in self.s.netns:
            self._step(f"netns {name}", lambda n=name: self.net.netns(n))  # type: ignore[misc]
        for i, link in enumerate(self.s.links):
            self._step(f"links[{i}]", lambda li=link: self._link(li))  # type: ignore[misc]
        for i, line in enumerate(self.s.setup):
            self._step(f"setup[{i}]", lambda ln=line: self._command(ln))  # type: ignore[misc]
        for name, spec in self.s.programs.items():
            self._step(f"programs.{name}",
                       lambda n=name, sp=spec: self._load(n, sp))  # type: ignore[misc]
        for i, item in enumerate(self.s.tc):
            self._step(f"tc[{i}]", lambda it=item: self._tc(it))  # type: ignore[misc]
        for i, entry in enumerate(self.s.maps):
            self._step(f"maps[{i}]", lambda e=entry: self._preload(e))  # type: ignore[misc]
        if self.tracer is not None:
            for info in self.result.programs.values():
                if info.program is not None:
                    self.net.vm_for(info.program).tracer = self.tracer

    def _link(self, link: m.LinkSpec | str) -> None:
        if isinstance(link, str):
            self._command(link if link.startswith("ip ") else f"ip {link}")
            return
        self.net.netns(link.netns)
        if link.peer_netns:
            self.net.netns(link.peer_netns)
        kwargs: dict[str, Any] = {}
        if link.kind in ("veth", "eth"):
            kwargs.update(peer=link.peer, peer_netns=link.peer_netns or link.netns,
                          peer_address=link.peer_address)
        elif link.kind == "vlan":
            kwargs.update(link=link.link, vlan_id=link.vlan_id, protocol=link.vlan_protocol)
        elif link.kind == "vxlan":
            kwargs.update(vni=link.vni, remote=link.remote, local=link.local,
                          dstport=link.dstport, external=link.external)
        self.net.link_add(link.name, link.kind, netns=link.netns, mtu=link.mtu,
                          address=link.address, **kwargs)
        if link.up:
            self.net.link_set(link.name, up=True, at=link.netns)
            if link.peer:
                self.net.link_set(link.peer, up=True, at=link.peer_netns or link.netns)
        for cidr in link.addresses:
            self.net.addr_add(link.name, cidr, netns=link.netns)

    def _command(self, line: str) -> None:
        words = line.split()
        tool = words[0] if words else ""
        if tool not in ("ip", "tc"):
            raise ScenarioRunError(f"commands start with 'ip' or 'tc', not {tool!r}",
                                   where=line)
        try:
            run_command(self.net, line, self.objects, tool=tool)
        except TcemuError as err:
            raise ScenarioRunError(f"'{line}': {err}", where=self._where) from err

    def _load(self, name: str, spec: m.ProgramSpec) -> None:
        from tcemu.bpf import assemble
        from tcemu.bpf.uapi import BpfProgType

        if spec.asm is not None:
            program = assemble(spec.asm, name=name)
            program.prog_type = BpfProgType[spec.prog_type.upper()]
        else:
            assert spec.object is not None
            section = spec.section or ("action" if spec.prog_type == "sched_act"
                                       else "classifier")
            program = self.objects.program(self.net, spec.object, section, spec.name,
                                           verify=False)
        self.result.programs[name] = _verify(name, program)

    def _program(self, name: str) -> Program:
        info = self.result.programs[name]
        if not info.accepted or info.program is None:
            raise ScenarioRunError(f"the verifier rejected it: {info.error}",
                                   where=f"program {name}")
        return info.program

    def _tc(self, item: m.QdiscSpec | m.FilterSpec | str) -> None:
        if isinstance(item, str):
            self._command(item if item.startswith("tc ") else f"tc {item}")
        elif isinstance(item, m.QdiscSpec):
            self.net.qdisc_add(item.dev, item.qdisc, parent=item.parent, handle=item.handle,
                               netns=item.netns, **item.params)
        else:
            program = self._program(item.program) if item.program is not None else None
            actions = [_parse_action(self.net, a, self.objects) for a in item.actions]
            self.net.filter_add(item.dev, item.hook, item.kind, prio=item.prio or None,
                                protocol=item.protocol, handle=item.handle, chain=item.chain,
                                prog=program, da=item.da, classid=item.classid,
                                actions=actions, name=item.program, netns=item.netns)

    def _map(self, name: str, program: str | None) -> MapBase:
        if program is not None:
            info = self.result.programs.get(program)
            for coll in self.objects.loaded.values():
                if info is not None and info.program in coll.programs.values():
                    if name not in coll.maps:
                        raise ScenarioRunError(f"no map {name!r} in the object of {program}",
                                               where="maps")
                    return coll.maps[name]
            raise ScenarioRunError(f"unknown program {program!r}", where="maps")
        try:
            return self.net.maps[name]
        except KeyError:
            known = ", ".join(sorted(self.net.maps)) or "none"
            raise ScenarioRunError(f"no map named {name!r} (maps: {known})",
                                   where="maps") from None

    def _preload(self, entry: m.MapEntry) -> None:
        target = self._map(entry.map, entry.program)
        key = self._bytes(entry.key, target.spec.key_size)
        value = self._bytes(entry.value, target.spec.value_size)
        target.update(key, value)

    def _bytes(self, value: int | str | list[int], size: int) -> bytes:
        try:
            return encode_bytes(value, size, lambda ns, dev: self.net.dev(dev, ns).ifindex)
        except ValueError as err:
            raise ScenarioRunError(str(err), where="maps") from err

    # -- traffic ---------------------------------------------------------------------
    def play(self) -> None:
        for i, step in enumerate(self.s.traffic):
            where = f"traffic[{i}]"
            if isinstance(step, m.Advance):
                self.net.advance(m.parse_duration_ns(step.advance))
            elif isinstance(step, m._Send):
                self._step(where, lambda st=step.send: self._send(st))  # type: ignore[misc]
            else:
                self._step(where, lambda st=step.replay: self._replay(st))  # type: ignore[misc]
        self.net.run()

    def _defaults(self, dev: NetDev) -> dict[str, str]:
        from tcemu.net.stack import mac_str

        out = {"Ether.src": mac_str(dev.address)}
        peer = getattr(dev, "peer", None)
        if peer is not None:
            out["Ether.dst"] = mac_str(peer.address)
        for addr in self.net.ns_of(dev).fib.addresses:
            if addr.ifindex == dev.ifindex:
                key = "IPv6.src" if addr.ip.version == 6 else "IP.src"
                out.setdefault(key, str(addr.ip))
        return out

    def _send(self, send: m.SendTraffic) -> None:
        dev = self.net.dev(send.dev, send.netns)
        frame = (bytes.fromhex(send.bytes.replace(" ", "")) if send.bytes is not None
                 else build_packet(send.packet or "", self._defaults(dev)))
        if send.size is not None:
            frame = frame.ljust(send.size, b"\0")
        classid = _classid(send.task_classid) if send.task_classid else None
        gap = m.parse_duration_ns(send.gap)
        for n in range(send.repeat):
            if send.direction == "out":
                pkt = self.net.send(send.dev, frame, netns=send.netns, classid=classid)
            else:
                pkt = self.net.receive(send.dev, frame, netns=send.netns)
            self.result.packets.append(pkt)
            if gap and n + 1 < send.repeat:
                self.net.advance(gap)

    def _replay(self, replay: m.PcapTraffic) -> None:
        from tcemu.pcap import DEFAULT_REMOTE_MAC, read_packets, to_ethernet

        path = self.objects.base_dir / replay.pcap
        first: int | None = None
        start = self.net.clock.now_ns()
        dev = self.net.dev(replay.dev, replay.netns)
        remote = getattr(getattr(dev, "peer", None), "address", None)   # a veth's peer
        macs = {"local_mac": dev.address,
                "remote_mac": remote if isinstance(remote, bytes) else DEFAULT_REMOTE_MAC}
        for record in read_packets(path):
            if replay.keep_time:
                first = record.timestamp_ns if first is None else first
                due = start + record.timestamp_ns - first
                if due > self.net.clock.now_ns():
                    self.net.advance(due - self.net.clock.now_ns())
            frame = to_ethernet(record, **macs)      # cooked/raw captures: an Ethernet frame
            if replay.direction == "out":
                pkt = self.net.send(replay.dev, frame, netns=replay.netns)
            else:
                pkt = self.net.receive(replay.dev, frame, netns=replay.netns)
            self.result.packets.append(pkt)

    # -- expectations ----------------------------------------------------------------
    def check(self) -> None:
        self.result.checks.extend(evaluate(self.s, EmulatorObservations(self)))


class EmulatorObservations:
    """:class:`tcemu.scenario.checks.Observations` of a run on the emulator."""

    backend = "the emulator"

    def __init__(self, player: _Player) -> None:
        self._player = player
        self._net = player.net
        self._result = player.result

    def frames(self, netns: str, dev: str) -> list[Frame]:
        start = self._result.start_ns
        return [Frame(c.netns, c.dev, c.direction, c.data, c.timestamp - start, c.pkt)
                for c in self._net.capture(dev, netns=netns)]

    def verdicts(self, netns: str, dev: str, hook: str) -> list[VerdictEvent]:
        return [VerdictEvent(e.pkt, e.verdict) for e in _verdicts(self._net.trace, netns, dev,
                                                                  hook)
                if e.verdict is not None]

    def packet_id(self, index: int) -> int:
        if index >= len(self._result.packets):
            raise ValueError(f"packet {index} was never sent "
                             f"({len(self._result.packets)} sent)")
        return self._result.packets[index]

    def map_sizes(self, name: str, program: str | None) -> tuple[int, int]:
        spec = self._player._map(name, program).spec
        return spec.key_size, spec.value_size

    def map_lookup(self, name: str, program: str | None, key: bytes) -> bytes | None:
        try:
            return self._player._map(name, program).lookup(key)
        except TcemuError:
            return None

    def ifindex(self, netns: str, dev: str) -> int:
        return self._net.dev(dev, netns).ifindex

    def counter(self, netns: str, dev: str, counter: str, qdisc: str | None) -> int:
        device = self._net.dev(dev, netns)
        if qdisc is None:
            source: object = device.stats
        else:
            handle = 0xFFFF_FFFF if qdisc == "root" else _classid(qdisc)
            source = (device.qdisc.stats if qdisc == "root" and device.qdisc is not None
                      else self._net._find_qdisc(device, handle).stats)
        value = getattr(source, counter, None) if not counter.startswith("_") else None
        if not isinstance(value, int):
            known = [name for name in dir(source) if not name.startswith("_")
                     and isinstance(getattr(source, name), int)]
            raise ValueError(f"no counter {counter!r} (counters: {', '.join(known)})")
        return value

    def trace_lines(self) -> list[str]:
        return self._result.trace_lines

    def program(self, name: str) -> ProgramVerdict | None:
        info = self._result.programs.get(name)
        if info is None:
            return None
        return ProgramVerdict(info.accepted, info.error, info.log)


def _verify(name: str, program: Program) -> ProgramInfo:
    try:
        from tcemu.bpf.verifier import VerifierError, verify
    except ImportError:   # pragma: no cover - the verifier ships with tcemu
        return ProgramInfo(name, program, True)
    try:
        outcome = verify(program)
    except VerifierError as err:
        return ProgramInfo(name, program, False, getattr(err, "log", ""),
                           getattr(err, "first_error", "") or str(err))
    return ProgramInfo(name, program, True, getattr(outcome, "log", ""))


def _classid(text: str) -> int:
    major, _, minor = text.partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def _parse_action(net: Net, text: str, objects: ObjectCache) -> Any:
    from tcemu.cmd import CommandError, model, parse
    from tcemu.netcmd import _action

    try:
        command = parse(f"tc filter add dev lo ingress matchall action {text}")
    except CommandError as err:
        raise ScenarioRunError(str(err), where=f"action {text!r}") from err
    assert isinstance(command, model.FilterAdd)
    return next(_action(net, a, objects) for a in command.filter.actions)


def _verdicts(trace: Iterable[TraceEvent], netns: str, dev: str,
              hook: str) -> Iterable[TraceEvent]:
    prefix = f"tc {hook}"
    for event in trace:
        if (event.stage == "verdict" and event.dev == dev and event.netns == netns
                and event.detail.startswith(prefix)):
            yield event
