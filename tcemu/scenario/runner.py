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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcemu.errors import TcemuError
from tcemu.netcmd import ObjectCache, run_command
from tcemu.scenario import model as m
from tcemu.scenario.packet import build_packet

if TYPE_CHECKING:
    from tcemu.bpf.insntrace import InsnTracer
    from tcemu.bpf.maps import MapBase
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Tier
    from tcemu.net import Net
    from tcemu.net.stack import Captured
    from tcemu.netdev import NetDev
    from tcemu.trace import TraceEvent

__all__ = ["Check", "ScenarioResult", "ScenarioRunError", "run_scenario"]


class ScenarioRunError(TcemuError):
    """A scenario could not be set up or played (a bad command, a missing object...)."""

    def __init__(self, message: str, *, where: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Check:
    index: int
    kind: str
    passed: bool
    summary: str            # what was expected
    detail: str = ""        # what was found, when it differs


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


_VERDICT_NAMES = {"UNSPEC": -1, "OK": 0, "RECLASSIFY": 1, "SHOT": 2, "PIPE": 3, "STOLEN": 4,
                  "QUEUED": 5, "REPEAT": 6, "REDIRECT": 7, "TRAP": 8}


def parse_verdict(text: str) -> int:
    word = text.strip().upper().removeprefix("TC_ACT_")
    if word in _VERDICT_NAMES:
        return _VERDICT_NAMES[word]
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"unknown verdict {text!r} (TC_ACT_OK, TC_ACT_SHOT, ... or a "
                         "number)") from None


def run_scenario(scenario: m.Scenario, path: str | Path = "<scenario>", *,
                 tier: Tier = "jit", insn_tracer: InsnTracer | None = None) -> ScenarioResult:
    """Build and play ``scenario``; file names in it are relative to ``path``'s folder."""
    from tcemu.net import Net

    base = Path(path).parent if str(path) != "<scenario>" else Path.cwd()
    net = Net(seed=scenario.seed, tier=tier)
    result = ScenarioResult(scenario.name, str(path), net=net, start_ns=net.clock.now_ns())
    player = _Player(scenario, net, ObjectCache(base_dir=base), result, insn_tracer)
    player.build()
    player.play()
    player.check()
    return result


class _Player:
    def __init__(self, scenario: m.Scenario, net: Net, objects: ObjectCache,
                 result: ScenarioResult, tracer: InsnTracer | None) -> None:
        self.s, self.net, self.objects, self.result = scenario, net, objects, result
        self.tracer = tracer

    # -- set-up ----------------------------------------------------------------------
    def _step(self, where: str, action: Callable[[], object]) -> None:
        try:
            action()
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
        run_command(self.net, line, self.objects, tool=tool)

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
            program = self.objects.program(self.net, spec.object, section, spec.name)
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
        if isinstance(value, int):
            return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        if isinstance(value, list):
            return bytes(value).ljust(size, b"\0")
        if value.startswith("ifindex:"):
            ns, _, dev = value[8:].rpartition("/")
            ifindex = self.net.dev(dev, ns or None).ifindex
            return ifindex.to_bytes(4, "little").ljust(size, b"\0")
        raw = bytes.fromhex(value.replace(" ", "").removeprefix("0x"))
        if len(raw) > size:
            raise ScenarioRunError(f"{len(raw)} bytes given for a {size}-byte field",
                                   where="maps")
        return raw.ljust(size, b"\0")

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
        from tcemu.pcap import read_packets

        path = self.objects.base_dir / replay.pcap
        first: int | None = None
        start = self.net.clock.now_ns()
        for record in read_packets(path):
            if replay.keep_time:
                first = record.timestamp_ns if first is None else first
                due = start + record.timestamp_ns - first
                if due > self.net.clock.now_ns():
                    self.net.advance(due - self.net.clock.now_ns())
            if replay.direction == "out":
                pkt = self.net.send(replay.dev, record.data, netns=replay.netns)
            else:
                pkt = self.net.receive(replay.dev, record.data, netns=replay.netns)
            self.result.packets.append(pkt)

    # -- expectations ----------------------------------------------------------------
    def check(self) -> None:
        for i, exp in enumerate(self.s.expect):
            try:
                self.result.checks.append(self._check(i, exp))
            except (TcemuError, KeyError, ValueError) as err:
                self.result.checks.append(Check(i, type(exp).__name__.strip("_").lower(),
                                                False, "could not be evaluated", str(err)))

    def _check(self, i: int, exp: object) -> Check:
        if isinstance(exp, m._Seen | m._NotSeen):
            return self._seen(i, exp)
        if isinstance(exp, m._Verdict):
            return self._verdict(i, exp.verdict)
        if isinstance(exp, m._Map):
            return self._map_check(i, exp.map)
        if isinstance(exp, m._Counter):
            return self._counter(i, exp.counter)
        if isinstance(exp, m._Rejected):
            return self._rejected(i, exp.rejected)
        assert isinstance(exp, m.TraceExpect)
        pattern = re.compile(exp.trace_printk)
        hits = [line for line in self.result.trace_lines if pattern.search(line)]
        ok = len(hits) == exp.count if exp.count is not None else bool(hits)
        want = f"{exp.count} " if exp.count is not None else ""
        return Check(i, "trace_printk", ok, f"{want}trace_printk line(s) matching "
                     f"/{exp.trace_printk}/", "" if ok else f"found {len(hits)}")

    def _seen(self, i: int, exp: m._Seen | m._NotSeen) -> Check:
        negative = isinstance(exp, m._NotSeen)
        match = exp.not_seen if isinstance(exp, m._NotSeen) else exp.seen
        frames = self.net.capture(match.dev, netns=match.netns)
        hits = [c for c in frames if _matches(c, match)]
        what = _describe(match)
        if negative:
            return Check(i, "not_seen", not hits, f"no frame {what}",
                         f"{len(hits)} seen, first: {hits[0].data.hex()}" if hits else "")
        ok = len(hits) == match.count if match.count is not None else bool(hits)
        detail = "" if ok else (f"{len(hits)} matching of {len(frames)} captured on "
                                f"{match.netns}/{match.dev}" + _closest(frames, match))
        if ok and match.times is not None:
            got = [c.timestamp - self.result.start_ns for c in hits]
            want = [m.parse_duration_ns(t) for t in match.times]
            ok = got == want
            detail = "" if ok else f"timestamps {got} ns, expected {want} ns"
        count = f"{match.count} " if match.count is not None else ""
        return Check(i, "seen", ok, f"{count}frame(s) {what}", detail)

    def _verdict(self, i: int, exp: m.VerdictExpect) -> Check:
        want = parse_verdict(exp.verdict)
        events = list(_verdicts(self.net.trace, exp.netns, exp.dev, exp.hook))
        if exp.packet is not None:
            if exp.packet >= len(self.result.packets):
                raise ValueError(f"packet {exp.packet} was never sent "
                                 f"({len(self.result.packets)} sent)")
            pkt = self.result.packets[exp.packet]
            events = [e for e in events if e.pkt == pkt]
        hits = [e for e in events if e.verdict == want]
        from tcemu.trace import verdict_name

        ok = len(hits) == exp.count if exp.count is not None else bool(hits)
        seen = ", ".join(sorted({verdict_name(e.verdict) for e in events
                                 if e.verdict is not None})) or "none"
        count = f"{exp.count}x " if exp.count is not None else ""
        return Check(i, "verdict", ok, f"{count}{verdict_name(want)} at {exp.netns}/{exp.dev} "
                     f"{exp.hook}", "" if ok else f"{len(hits)} of {len(events)}; verdicts "
                     f"seen: {seen}")

    def _map_check(self, i: int, exp: m.MapExpect) -> Check:
        target = self._map(exp.map, exp.program)
        key = self._bytes(exp.key, target.spec.key_size)
        try:
            got: bytes | None = target.lookup(key)
        except TcemuError:
            got = None
        summary = f"{exp.map}[{key.hex()}]"
        if exp.value is None:
            return Check(i, "map", got is None, f"{summary} absent",
                         f"present: {got.hex()}" if got is not None else "")
        want = self._bytes(exp.value, target.spec.value_size)
        return Check(i, "map", got == want, f"{summary} == {want.hex()}",
                     "" if got == want else f"found {got.hex() if got else 'no entry'}")

    def _counter(self, i: int, exp: m.CounterExpect) -> Check:
        dev = self.net.dev(exp.dev, exp.netns)
        if exp.qdisc is None:
            source: object = dev.stats
        else:
            handle = 0xFFFF_FFFF if exp.qdisc == "root" else _classid(exp.qdisc)
            source = (dev.qdisc.stats if exp.qdisc == "root" and dev.qdisc is not None
                      else self.net._find_qdisc(dev, handle).stats)
        got = getattr(source, exp.counter)
        return Check(i, "counter", got == exp.value, f"{exp.netns}/{exp.dev} {exp.counter} == "
                     f"{exp.value}", "" if got == exp.value else f"found {got}")

    def _rejected(self, i: int, exp: m.RejectExpect) -> Check:
        info = self.result.programs.get(exp.program)
        if info is None:
            raise ValueError(f"unknown program {exp.program!r}")
        ok = not info.accepted and re.search(exp.message, info.error) is not None
        detail = ("" if ok else "the verifier accepted it" if info.accepted
                  else f"its error was: {info.error}")
        return Check(i, "rejected", ok, f"the verifier rejects {exp.program} with "
                     f"/{exp.message}/", detail)


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


def _matches(frame: Captured, match: m.PacketMatch) -> bool:
    if match.direction not in ("any", frame.direction):
        return False
    data = frame.data
    if match.bytes is not None and data != bytes.fromhex(match.bytes.replace(" ", "")):
        return False
    if match.packet is not None and data != build_packet(match.packet):
        return False
    if match.contains is not None and bytes.fromhex(match.contains.replace(" ", "")) not in data:
        return False
    return not match.fields or _field_values_match(data, match.fields)


def _field_values_match(data: bytes, fields: dict[str, int | str]) -> bool:
    from tcemu.scenario.packet import _layer_class, dissect

    packet = dissect(data)
    for path, want in fields.items():
        layer_name, _, field_name = path.partition(".")
        try:
            layer = packet.getlayer(_layer_class(layer_name))
        except KeyError:
            return False
        if layer is None or not hasattr(layer, field_name):
            return False
        got = getattr(layer, field_name)
        if not _same(got, want):
            return False
    return True


def _same(got: object, want: int | str) -> bool:
    if isinstance(want, int) and isinstance(got, int):
        return got == want
    if isinstance(got, bytes) and isinstance(want, str):
        return got == want.encode() or got.hex() == want.replace(" ", "").lower()
    return str(got).lower() == str(want).lower()


def _describe(match: m.PacketMatch) -> str:
    parts = [f"{match.direction} " if match.direction != "any" else "",
             f"on {match.netns}/{match.dev}"]
    if match.fields:
        parts.append(" with " + ", ".join(f"{k}={v}" for k, v in match.fields.items()))
    if match.contains:
        parts.append(f" containing {match.contains}")
    if match.bytes or match.packet:
        parts.append(" with exact bytes")
    return "".join(parts)


def _closest(frames: list[Captured], match: m.PacketMatch) -> str:
    if not frames:
        return ""
    if match.packet is not None or match.bytes is not None:
        want = (build_packet(match.packet) if match.packet is not None
                else bytes.fromhex((match.bytes or "").replace(" ", "")))
        best = min(frames, key=lambda c: sum(a != b for a, b in zip(c.data, want, strict=False))
                   + abs(len(c.data) - len(want)))
        diff = [n for n, (a, b) in enumerate(zip(best.data, want, strict=False)) if a != b]
        return f"; closest differs at byte(s) {diff[:8]}: {best.data.hex()}"
    return f"; first: {frames[0].direction} {frames[0].data.hex()}"
