"""The expectations of a scenario, checked against what a backend observed.

Both backends, the emulator (:mod:`tcemu.scenario.runner`) and the running kernel
(:mod:`tcemu.scenario.kernel`), play a scenario and then hand over an object implementing
:class:`Observations`: the frames every device's tap saw, the verdicts of the tc hooks
where the backend knows them, map look-ups, counters, trace_printk lines and the verifier's
verdict on every program.  :func:`evaluate` turns the scenario's ``expect`` list into one
:class:`Check` per expectation from those observations alone, so an expectation means the
same on both backends.

An observation a backend cannot make raises :class:`NotObservableError`; the check is then
reported as not evaluated (``Check.observable`` False, never a silent pass): e.g. the
kernel has no virtual clock, does not log each verdict, and shares one trace buffer with
the whole machine.

:func:`encode_bytes` is the one encoding of a scenario's map keys and values (integers
little-endian and sized to the field, hex strings, byte lists, ``ifindex:[NS/]DEV``), used
by the preloads and by the map checks of both backends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tcemu.errors import TcemuError
from tcemu.scenario import model as m
from tcemu.scenario.packet import build_packet

__all__ = [
    "Check",
    "Frame",
    "NotObservableError",
    "Observations",
    "ProgramVerdict",
    "VerdictEvent",
    "VerdictTotals",
    "encode_bytes",
    "evaluate",
    "frame_matches",
    "parse_verdict",
]


class NotObservableError(TcemuError):
    """This backend cannot observe what an expectation asks about (the reason says why)."""


@dataclass(frozen=True)
class Check:
    index: int
    kind: str
    passed: bool
    summary: str            # what was expected
    detail: str = ""        # what was found, when it differs (or why it was not evaluated)
    observable: bool = True  # False: this backend cannot observe it; not a pass nor a failure


@dataclass(frozen=True)
class Frame:
    """One frame a device's tap saw, as either backend records it."""

    netns: str
    dev: str
    direction: str          # "in" (before tc ingress) or "out" (after tc egress)
    data: bytes
    time_ns: int | None     # virtual time since the run's start; None on the kernel
    pkt: int | None = None  # the emulator's packet number (trace id)


@dataclass(frozen=True)
class VerdictEvent:
    """One run of a tc hook on a device and its verdict (``TC_ACT_*`` value)."""

    pkt: int
    verdict: int


@dataclass(frozen=True)
class VerdictTotals:
    """What a backend that does not log each verdict knows about one device's hooks:
    how many times tc ran there and how many of those were TC_ACT_SHOT."""

    runs: int
    shot: int
    source: str             # where the numbers come from (shown in the check)


@dataclass(frozen=True)
class ProgramVerdict:
    """The verifier's verdict on one program of the scenario."""

    accepted: bool
    error: str = ""         # the verifier's error line, when rejected
    log: str = ""


class Observations(Protocol):
    """What a backend saw during a run (see the module docstring)."""

    backend: str

    def frames(self, netns: str, dev: str) -> Sequence[Frame]:
        """Every frame of ``netns/dev``'s tap, in tap order."""
        ...

    def verdicts(self, netns: str, dev: str, hook: str
                 ) -> Sequence[VerdictEvent] | VerdictTotals:
        """The verdicts of ``hook`` (ingress/egress) on ``netns/dev``."""
        ...

    def packet_id(self, index: int) -> int:
        """The packet number of the ``index``-th frame the traffic sent (NotObservableError)."""
        ...

    def map_sizes(self, name: str, program: str | None) -> tuple[int, int]:
        """(key size, value size) of a map, named as in the scenario."""
        ...

    def map_lookup(self, name: str, program: str | None, key: bytes) -> bytes | None:
        """The value stored at ``key``, or None."""
        ...

    def ifindex(self, netns: str, dev: str) -> int:
        ...

    def counter(self, netns: str, dev: str, counter: str, qdisc: str | None) -> int:
        """A device statistic, or a qdisc statistic when ``qdisc`` names one."""
        ...

    def trace_lines(self) -> Sequence[str]:
        """The trace_printk lines of the run."""
        ...

    def program(self, name: str) -> ProgramVerdict | None:
        """The verifier's verdict on program ``name`` of the scenario."""
        ...


_VERDICT_NAMES = {"UNSPEC": -1, "OK": 0, "RECLASSIFY": 1, "SHOT": 2, "PIPE": 3, "STOLEN": 4,
                  "QUEUED": 5, "REPEAT": 6, "REDIRECT": 7, "TRAP": 8}
TC_ACT_SHOT = 2
TC_ACT_OK = 0


def parse_verdict(text: str) -> int:
    word = text.strip().upper().removeprefix("TC_ACT_")
    if word in _VERDICT_NAMES:
        return _VERDICT_NAMES[word]
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"unknown verdict {text!r} (TC_ACT_OK, TC_ACT_SHOT, ... or a "
                         "number)") from None


def encode_bytes(value: int | str | list[int], size: int,
                 ifindex: Callable[[str | None, str], int]) -> bytes:
    """A scenario's key or value as ``size`` bytes; ``ifindex(netns or None, dev)`` resolves
    ``ifindex:[NS/]DEV`` (4 bytes, little-endian, then zeros)."""
    if isinstance(value, int):
        # Negative numbers are two's complement (-1 is all ones); a number wider than the
        # field is an error rather than silently cut to its low bytes.
        if not -(1 << (8 * size - 1)) <= value < 1 << (8 * size):
            raise ValueError(f"{value} does not fit a {size}-byte field")
        return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    if isinstance(value, list):
        if len(value) > size:
            raise ValueError(f"{len(value)} bytes given for a {size}-byte field")
        return bytes(value).ljust(size, b"\0")
    if value.startswith("ifindex:"):
        ns, _, dev = value[8:].rpartition("/")
        return ifindex(ns or None, dev).to_bytes(4, "little").ljust(size, b"\0")
    raw = bytes.fromhex(value.replace(" ", "").removeprefix("0x"))
    if len(raw) > size:
        raise ValueError(f"{len(raw)} bytes given for a {size}-byte field")
    return raw.ljust(size, b"\0")


def evaluate(scenario: m.Scenario, obs: Observations) -> list[Check]:
    """One :class:`Check` per expectation of ``scenario``, in order."""
    checks = []
    for i, exp in enumerate(scenario.expect):
        kind = _kind(exp)
        try:
            checks.append(_check(i, exp, obs))
        except NotObservableError as why:
            checks.append(Check(i, kind, True, _summary(exp), f"not observable on "
                                f"{obs.backend}: {why}", observable=False))
        except (TcemuError, KeyError, ValueError) as err:
            checks.append(Check(i, kind, False, "could not be evaluated", str(err)))
    return checks


def _kind(exp: object) -> str:
    names: dict[type, str] = {
        m._Seen: "seen", m._NotSeen: "not_seen", m._Verdict: "verdict", m._Map: "map",
        m._Counter: "counter", m._Rejected: "rejected", m.TraceExpect: "trace_printk"}
    return names.get(type(exp), type(exp).__name__.strip("_").lower())


def _summary(exp: object) -> str:
    if isinstance(exp, m._Seen):
        return f"frame(s) {_describe(exp.seen)}"
    if isinstance(exp, m._NotSeen):
        return f"no frame {_describe(exp.not_seen)}"
    if isinstance(exp, m._Verdict):
        v = exp.verdict
        return f"{v.verdict} at {v.netns}/{v.dev} {v.hook}"
    if isinstance(exp, m._Counter):
        c = exp.counter
        return f"{c.netns}/{c.dev} {c.counter} == {c.value}"
    if isinstance(exp, m.TraceExpect):
        return f"trace_printk line(s) matching /{exp.trace_printk}/"
    return _kind(exp)


def _check(i: int, exp: object, obs: Observations) -> Check:
    if isinstance(exp, m._Seen | m._NotSeen):
        return _seen(i, exp, obs)
    if isinstance(exp, m._Verdict):
        return _verdict(i, exp.verdict, obs)
    if isinstance(exp, m._Map):
        return _map(i, exp.map, obs)
    if isinstance(exp, m._Counter):
        c = exp.counter
        got = obs.counter(c.netns, c.dev, c.counter, c.qdisc)
        return Check(i, "counter", got == c.value, _summary(exp),
                     "" if got == c.value else f"found {got}")
    if isinstance(exp, m._Rejected):
        return _rejected(i, exp.rejected, obs)
    assert isinstance(exp, m.TraceExpect)
    pattern = re.compile(exp.trace_printk)
    hits = [line for line in obs.trace_lines() if pattern.search(line)]
    ok = len(hits) == exp.count if exp.count is not None else bool(hits)
    want = f"{exp.count} " if exp.count is not None else ""
    return Check(i, "trace_printk", ok, f"{want}trace_printk line(s) matching "
                 f"/{exp.trace_printk}/", "" if ok else f"found {len(hits)}")


def _seen(i: int, exp: m._Seen | m._NotSeen, obs: Observations) -> Check:
    negative = isinstance(exp, m._NotSeen)
    match = exp.not_seen if isinstance(exp, m._NotSeen) else exp.seen
    frames = list(obs.frames(match.netns, match.dev))
    hits = [f for f in frames if frame_matches(f, match)]
    what = _describe(match)
    if negative:
        return Check(i, "not_seen", not hits, f"no frame {what}",
                     f"{len(hits)} seen, first: {hits[0].data.hex()}" if hits else "")
    ok = len(hits) == match.count if match.count is not None else bool(hits)
    detail = "" if ok else (f"{len(hits)} matching of {len(frames)} captured on "
                            f"{match.netns}/{match.dev}" + _closest(frames, match))
    count = f"{match.count} " if match.count is not None else ""
    if ok and match.times is not None:
        want = [m.parse_duration_ns(t) for t in match.times]
        got_times = [f.time_ns for f in hits]
        if any(t is None for t in got_times):
            # KERNEL-DIFF: the kernel runs on the wall clock; virtual timestamps have no
            # counterpart there, so only the matching and the count were checked.
            return Check(i, "seen", True, f"{count}frame(s) {what}", f"matched; timestamps "
                         f"{want} ns not observable on {obs.backend} (no virtual clock)",
                         observable=False)
        ok = got_times == want
        detail = "" if ok else f"timestamps {got_times} ns, expected {want} ns"
    return Check(i, "seen", ok, f"{count}frame(s) {what}", detail)


def _verdict(i: int, exp: m.VerdictExpect, obs: Observations) -> Check:
    from tcemu.trace import verdict_name

    want = parse_verdict(exp.verdict)
    count = f"{exp.count}x " if exp.count is not None else ""
    summary = f"{count}{verdict_name(want)} at {exp.netns}/{exp.dev} {exp.hook}"
    seen = obs.verdicts(exp.netns, exp.dev, exp.hook)
    if isinstance(seen, VerdictTotals):
        return _verdict_totals(i, exp, want, seen, summary)
    events = list(seen)
    if exp.packet is not None:
        pkt = obs.packet_id(exp.packet)
        events = [e for e in events if e.pkt == pkt]
    hits = [e for e in events if e.verdict == want]
    ok = len(hits) == exp.count if exp.count is not None else bool(hits)
    names = ", ".join(sorted({verdict_name(e.verdict) for e in events})) or "none"
    return Check(i, "verdict", ok, summary,
                 "" if ok else f"{len(hits)} of {len(events)}; verdicts seen: {names}")


def _verdict_totals(i: int, exp: m.VerdictExpect, want: int, seen: VerdictTotals,
                    summary: str) -> Check:
    """A verdict expectation against run/drop totals: SHOT is the drop count, OK the
    runs that were not dropped (it cannot be told apart from REDIRECT, STOLEN, ...)."""
    if exp.packet is not None:
        raise NotObservableError(f"per-packet verdicts ({seen.source} only counts)")
    if want == TC_ACT_SHOT:
        got, what = seen.shot, "dropped"
    elif want == TC_ACT_OK:
        got, what = seen.runs - seen.shot, "not dropped"
        summary += " (counted as runs not dropped)"
    else:
        raise NotObservableError(f"{exp.verdict} is not told apart from other verdicts "
                            f"({seen.source} counts runs and drops)")
    ok = got == exp.count if exp.count is not None else got > 0
    return Check(i, "verdict", ok, summary, "" if ok else
                 f"{got} {what} of {seen.runs} runs ({seen.source})")


def _map(i: int, exp: m.MapExpect, obs: Observations) -> Check:
    key_size, value_size = obs.map_sizes(exp.map, exp.program)

    def ifindex(ns: str | None, dev: str) -> int:
        return obs.ifindex(ns or "default", dev)

    key = encode_bytes(exp.key, key_size, ifindex)
    got = obs.map_lookup(exp.map, exp.program, key)
    summary = f"{exp.map}[{key.hex()}]"
    if exp.value is None:
        return Check(i, "map", got is None, f"{summary} absent",
                     f"present: {got.hex()}" if got is not None else "")
    want = encode_bytes(exp.value, value_size, ifindex)
    return Check(i, "map", got == want, f"{summary} == {want.hex()}",
                 "" if got == want else f"found {got.hex() if got else 'no entry'}")


def _rejected(i: int, exp: m.RejectExpect, obs: Observations) -> Check:
    info = obs.program(exp.program)
    if info is None:
        raise ValueError(f"unknown program {exp.program!r}")
    ok = not info.accepted and re.search(exp.message, info.error) is not None
    detail = ("" if ok else "the verifier accepted it" if info.accepted
              else f"its error was: {info.error}")
    return Check(i, "rejected", ok, f"the verifier rejects {exp.program} with "
                 f"/{exp.message}/", detail)


# --- frames -----------------------------------------------------------------------------------


def frame_matches(frame: Frame, match: m.PacketMatch) -> bool:
    """Whether ``frame`` is one that ``match`` describes (direction, bytes, fields)."""
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
        if not _same(getattr(layer, field_name), want):
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


def _closest(frames: list[Frame], match: m.PacketMatch) -> str:
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
