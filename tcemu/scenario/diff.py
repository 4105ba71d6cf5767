"""``tcemu diff``: one scenario on the emulator and on the kernel, every difference listed.

Both backends play the scenario (:func:`tcemu.scenario.runner.run_scenario`,
:func:`tcemu.scenario.kernel.run_kernel`); :func:`compare` then lines up what they saw:

* **frames**: per device and direction, the n-th frame of one side against the n-th of the
  other (a device's tap order is exact on both; with a shaping qdisc in the scenario the
  order is wall-clock on the kernel, so both lists are sorted by bytes first), decoded
  with scapy and compared field by field (``IP.ttl 64 != 63``); a frame only one side
  has is a difference of its own;
* **verdicts**, where both know them: the emulator logs every verdict, the kernel's clsact
  qdisc counts runs and TC_ACT_SHOT drops of a device whose filters sit on one hook
  (see :mod:`tcemu.scenario.kernel`), so runs and drops are compared there;
* **maps**: every entry of every map of the scenario's objects (program arrays and other
  maps of kernel object ids excluded);
* **programs**: the verifier's verdict on each, and its error lines when both reject;
* **expectations** both backends could observe and judged differently.

Fields that are not deterministic on the kernel are ignored (kernel-semantics.md §10.22):
:data:`DEFAULT_NONDETERMINISTIC`, or the scenario's own ``nondeterministic`` list, which
replaces it.  A path is ``Layer.field`` (every layer of that name), ``Layer[N].field`` (the
N-th, 0 the outermost), ``outer:Layer.field`` (only layers before a VXLAN header, and
the IPv4 header of a later fragment of a UDP datagram, whose first fragment has it) or
``icmp:Layer.field`` (only layers before an ICMP header: the IPv4 header of an ICMP
message the host sent, or of a later fragment of one).
Timestamps are never compared (the kernel has no virtual clock), nor is ``skb->hash``,
which no capture shows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tcemu.scenario import model as m
from tcemu.scenario.checks import TC_ACT_SHOT, Check, Frame

__all__ = ["DEFAULT_NONDETERMINISTIC", "DiffReport", "FrameDiff", "MapDiff", "ProgramDiff",
           "VerdictDiff",
           "compare", "diff_scenario", "emulator_frames", "emulator_maps", "field_diffs",
           "render_diff"]

DEFAULT_NONDETERMINISTIC: tuple[str, ...] = (
    "outer:UDP.sport",      # udp_flow_src_port: a hash of the inner flow (§7.3, §10.22)
    "outer:IP.id",          # the outer IPv4 id of an encapsulated frame (§10.22)
    "outer:IP.chksum",      # follows from the id
    "outer:UDP.chksum",     # follows from the source port once complete (LCO, §10.17)
    "icmp:IP.id",           # __ip_select_ident of an ICMP error or echo reply (random)
    "icmp:IP.chksum",       # follows from the id
)

_PATH = re.compile(r"^(outer:|icmp:)?([A-Za-z][A-Za-z0-9_]*)(?:\[(\d+)\])?"
                   r"\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class FrameDiff:
    netns: str
    dev: str
    direction: str
    index: int              # the n-th frame of that device and direction
    status: str             # "differs", "only on the emulator", "only on the kernel"
    fields: list[str]
    emulator: str | None    # hex
    kernel: str | None


@dataclass(frozen=True)
class VerdictDiff:
    netns: str
    dev: str
    hook: str
    emulator: dict[str, int]
    kernel: dict[str, int]


@dataclass(frozen=True)
class MapDiff:
    map: str
    key: str
    emulator: str | None
    kernel: str | None


@dataclass(frozen=True)
class ProgramDiff:
    program: str
    emulator: str           # "accepted", or "rejected: <the verifier's error lines>"
    kernel: str


@dataclass(frozen=True)
class CheckDiff:
    index: int
    kind: str
    summary: str
    emulator: str
    kernel: str


@dataclass
class DiffReport:
    scenario: str
    path: str
    ignored: list[str]
    frames: list[FrameDiff] = field(default_factory=list)
    verdicts: list[VerdictDiff] = field(default_factory=list)
    maps: list[MapDiff] = field(default_factory=list)
    programs: list[ProgramDiff] = field(default_factory=list)
    checks: list[CheckDiff] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.frames or self.verdicts or self.maps or self.programs
                    or self.checks)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["equal"] = self.equal
        return out


# --- the two sides ------------------------------------------------------------------------------


def emulator_frames(result: Any) -> list[Frame]:
    """Every frame of an emulator run, ordered by virtual time."""
    net = result.net
    if net is None:
        return []
    captured = sorted((c for cs in net.captures.values() for c in cs),
                      key=lambda c: (c.timestamp, c.pkt))
    return [Frame(c.netns, c.dev, c.direction, c.data, c.timestamp - result.start_ns, c.pkt)
            for c in captured]


_ID_MAP_TYPES = frozenset({3, 12, 13, 15, 17, 18, 24})   # prog/map/perf arrays, sockmaps...


def emulator_maps(result: Any) -> dict[str, dict[bytes, bytes]]:
    """Every entry of every map of an emulator run, as ``object:map``."""
    out: dict[str, dict[bytes, bytes]] = {}
    net = result.net
    if net is None:
        return out
    for key, coll in net.collections.items():
        obj = str(key).split("#")[0]
        for name, bpf_map in coll.maps.items():
            if int(bpf_map.spec.type) in _ID_MAP_TYPES:
                continue
            out[f"{obj}:{name}"] = dict(bpf_map.items())
    return out


def _emulator_verdicts(result: Any) -> dict[tuple[str, str, str], dict[str, int]]:
    out: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: {"runs": 0,
                                                                          "shot": 0})
    if result.net is None:
        return out
    for event in result.net.trace:
        if event.stage != "verdict" or event.verdict is None:
            continue
        for hook in ("ingress", "egress"):
            if event.detail.startswith(f"tc {hook}") and \
                    _hook_has_filters(result.net, event.netns, event.dev, hook):
                counts = out[(event.netns, event.dev, hook)]
                counts["runs"] += 1
                counts["shot"] += event.verdict == TC_ACT_SHOT
    return out


def _hook_has_filters(net: Any, ns: str, dev: str, hook: str) -> bool:
    """Whether a hook has programs or filters: the kernel's clsact counts a packet only
    then (no filter, no ``mini_Qdisc``), e.g. not the host's ICMP reply leaving a device
    whose filters are all at ingress."""
    from tcemu.errors import TcemuError

    try:
        device = net.dev(f"{ns}/{dev}")
        return bool(device.tcx[hook]) or bool(net.filters(f"{ns}/{dev}", hook))
    except TcemuError:
        return True


# --- field-level comparison -------------------------------------------------------------------


@dataclass(frozen=True)
class _Ignore:
    outer: bool
    icmp: bool
    layer: str
    index: int | None
    field: str


def _parse_ignores(paths: list[str]) -> list[_Ignore]:
    out = []
    for path in paths:
        match = _PATH.match(path)
        if match is None:
            raise ValueError(f"nondeterministic: {path!r} is not Layer.field, "
                             "Layer[N].field, outer:Layer.field or icmp:Layer.field")
        index = int(match.group(3)) if match.group(3) is not None else None
        scope = match.group(1)
        out.append(_Ignore(scope == "outer:", scope == "icmp:", match.group(2), index,
                           match.group(4)))
    return out


def _layers(data: bytes) -> list[tuple[str, int, bool, dict[str, Any]]]:
    """(layer name, occurrence, before a VXLAN header, {field: value}) per layer."""
    from tcemu.scenario.packet import dissect

    out = []
    seen: dict[str, int] = defaultdict(int)
    outer = True
    layer = dissect(data)
    while layer is not None and type(layer).__name__ != "NoPayload":
        name = type(layer).__name__
        if name == "VXLAN":
            outer = False
        values = {f.name: layer.getfieldval(f.name) for f in layer.fields_desc}
        out.append((name, seen[name], outer and name != "VXLAN", values))
        seen[name] += 1
        layer = layer.payload
    if all(x[2] for x in out):      # no VXLAN header: nothing is "outer"
        # ... but the IPv4 header of a later fragment of a UDP (tunnel) datagram is the
        # outer header its first fragment shows before the VXLAN header
        first = out[1] if len(out) > 1 and out[1][0] == "IP" else None
        later = first is not None and first[3].get("frag") and first[3].get("proto") == 17
        out = [(name, n, bool(later) and at == 1, values)
               for at, (name, n, _, values) in enumerate(out)]
    return out


def _ignored(rules: list[_Ignore], name: str, occurrence: int, outer: bool,
             field_name: str, before_icmp: bool = False) -> bool:
    return any(r.layer == name and r.field == field_name
               and (r.index is None or r.index == occurrence) and (not r.outer or outer)
               and (not r.icmp or before_icmp)
               for r in rules)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 32 else f"{value[:32].hex()}..({len(value)} B)"
    return repr(value) if isinstance(value, str) else str(value)


def field_diffs(emulator: bytes, kernel: bytes, ignore: list[str]) -> list[str]:
    """``Layer.field emulator != kernel`` for every field that differs and is not ignored."""
    rules = _parse_ignores(ignore)
    if emulator == kernel:
        return []
    a, b = _layers(emulator), _layers(kernel)
    if [x[0] for x in a] != [x[0] for x in b]:
        return ["layers " + "/".join(x[0] for x in a) + " != " + "/".join(x[0] for x in b)]
    out = []
    names = [x[0] for x in a]
    icmp_at = names.index("ICMP") if "ICMP" in names else 0
    if not icmp_at and names[1:2] == ["IP"] and a[1][3].get("frag") and \
            a[1][3].get("proto") == 1:
        icmp_at = 2             # a later fragment of an ICMP message: its IPv4 header
    for at, ((name, occurrence, outer, fields_a), (_, _, _, fields_b)) in enumerate(
            zip(a, b, strict=True)):
        label = f"{name}[{occurrence}]" if occurrence else name
        for key, value in fields_a.items():
            other = fields_b.get(key)
            if value != other and not _ignored(rules, name, occurrence, outer, key,
                                               at < icmp_at):
                if isinstance(value, bytes | bytearray) and name in ("Raw", "Padding"):
                    continue  # reported below by the lengths and bytes of the layer
                out.append(f"{label}.{key} {_show(value)} != {_show(other)}")
        if name in ("Raw", "Padding") and fields_a != fields_b:
            load_a, load_b = fields_a.get("load", b""), fields_b.get("load", b"")
            out.append(f"{label}.load {_show(load_a)} != {_show(load_b)}")
    return out


# --- the comparison ---------------------------------------------------------------------------


def compare(scenario: m.Scenario, path: str, emulator: Any, kernel: Any) -> DiffReport:
    """Line up an emulator result and a :class:`tcemu.scenario.kernel.KernelRun`."""
    ignore = list(scenario.nondeterministic if scenario.nondeterministic is not None
                  else DEFAULT_NONDETERMINISTIC)
    report = DiffReport(scenario.name, path, ignore, notes=list(kernel.notes))
    ordered = not kernel.shaping
    if not ordered:
        report.notes.append("frames compared without their order: a shaping qdisc ("
                            + ", ".join(kernel.shaping) + ") releases them by the wall "
                            "clock on the kernel and by the virtual clock on the emulator")
    _compare_frames(report, emulator_frames(emulator), kernel.frames, ignore,
                    ordered=ordered)
    _compare_verdicts(report, emulator, kernel)
    _compare_maps(report, emulator_maps(emulator), kernel.maps)
    _compare_programs(report, emulator.programs, kernel.result.programs)
    _compare_checks(report, emulator.checks, kernel.result.checks)
    return report


def _compare_frames(report: DiffReport, emu: list[Frame], ker: list[Frame],
                    ignore: list[str], *, ordered: bool = True) -> None:
    by_dev: dict[tuple[str, str, str], tuple[list[Frame], list[Frame]]] = {}
    for side, frames in ((0, emu), (1, ker)):
        for frame in frames:
            by_dev.setdefault((frame.netns, frame.dev, frame.direction), ([], []))[side] \
                .append(frame)
    report.compared["frames"] = max(len(emu), len(ker))
    for (ns, dev, direction), (mine, theirs) in sorted(by_dev.items()):
        a, b = mine, theirs
        if not ordered:
            a, b = sorted(mine, key=lambda f: f.data), sorted(theirs, key=lambda f: f.data)
        for n in range(max(len(a), len(b))):
            fa = a[n] if n < len(a) else None
            fb = b[n] if n < len(b) else None
            if fa is None or fb is None:
                present = fa or fb
                assert present is not None
                status = "only on the emulator" if fb is None else "only on the kernel"
                layers = "/".join(x[0] for x in _layers(present.data))
                report.frames.append(FrameDiff(ns, dev, direction, n, status, [layers],
                                               fa.data.hex() if fa else None,
                                               fb.data.hex() if fb else None))
                continue
            diffs = field_diffs(fa.data, fb.data, ignore)
            if diffs:
                report.frames.append(FrameDiff(ns, dev, direction, n, "differs", diffs,
                                               fa.data.hex(), fb.data.hex()))


def _compare_verdicts(report: DiffReport, emulator: Any, kernel: Any) -> None:
    from tcemu.scenario.checks import VerdictTotals

    emu = _emulator_verdicts(emulator)
    compared = 0
    for (ns, dev, hook), counts in sorted(emu.items()):
        seen = kernel.verdicts.get((ns, dev, hook), VerdictTotals(0, 0, "no filter"))
        if isinstance(seen, str):
            report.notes.append(f"verdicts at {ns}/{dev} {hook} not compared: {seen}")
            continue
        compared += 1
        theirs = {"runs": seen.runs, "shot": seen.shot}
        if theirs != counts:
            report.verdicts.append(VerdictDiff(ns, dev, hook, dict(counts), theirs))
    report.compared["verdict hooks"] = compared


def _compare_maps(report: DiffReport, emu: dict[str, dict[bytes, bytes]],
                  ker: dict[str, dict[bytes, bytes]]) -> None:
    report.compared["maps"] = len(set(emu) & set(ker))
    for name in sorted(set(emu) | set(ker)):
        if name not in emu or name not in ker:
            side = "emulator" if name in emu else "kernel"
            report.notes.append(f"map {name} exists only on the {side}; not compared")
            continue
        a, b = emu[name], ker[name]
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key), b.get(key)
            if va != vb:
                report.maps.append(MapDiff(name, key.hex(), va.hex() if va is not None
                                           else None, vb.hex() if vb is not None else None))


def _verifier_verdict(info: Any) -> str:
    from tcemu.kernel.libbpf import error_lines

    if info.accepted:
        return "accepted"
    return "rejected: " + (error_lines(info.log) or info.error)


def _compare_programs(report: DiffReport, emu: dict[str, Any], ker: dict[str, Any]) -> None:
    """The verifier's verdict on every program, and its error lines when both reject."""
    report.compared["programs"] = len(set(emu) & set(ker))
    for name in sorted(set(emu) & set(ker)):
        mine, theirs = _verifier_verdict(emu[name]), _verifier_verdict(ker[name])
        if mine != theirs:
            report.programs.append(ProgramDiff(name, mine, theirs))


def _compare_checks(report: DiffReport, emu: list[Check], ker: list[Check]) -> None:
    for a, b in zip(emu, ker, strict=False):
        if not b.observable or not a.observable or a.passed == b.passed:
            continue
        report.checks.append(CheckDiff(a.index, a.kind, a.summary,
                                       "pass" if a.passed else f"fail: {a.detail}",
                                       "pass" if b.passed else f"fail: {b.detail}"))


def diff_scenario(scenario: m.Scenario, path: str | Path) -> DiffReport:
    """Run ``scenario`` on both backends and compare (KernelUnavailableError if the kernel
    cannot run it)."""
    from tcemu.scenario.kernel import run_kernel
    from tcemu.scenario.runner import run_scenario

    kernel = run_kernel(scenario, path)
    emulator = run_scenario(scenario, path)
    return compare(scenario, str(path), emulator, kernel)


def render_diff(report: DiffReport) -> list[str]:
    """The report as text lines: a table of differences per kind."""
    head = "EQUAL" if report.equal else "DIFFERENT"
    counts = ", ".join(f"{v} {k}" for k, v in report.compared.items())
    lines = [f"{head} {report.scenario} ({report.path}): compared {counts}",
             f"  ignored fields: {', '.join(report.ignored) or 'none'}"]
    if report.frames:
        lines.append("  frames (device dir #n: emulator != kernel)")
        for f in report.frames:
            where = f"{f.netns}/{f.dev} {f.direction} #{f.index}"
            if f.status != "differs":
                lines.append(f"    {where:<24} {f.status}: {f.fields[0]} "
                             f"{f.emulator or f.kernel}")
                continue
            lines.append(f"    {where:<24} {f.fields[0]}")
            lines.extend(f"    {'':<24} {d}" for d in f.fields[1:])
    if report.verdicts:
        lines.append("  verdicts (runs / TC_ACT_SHOT: emulator != kernel)")
        for v in report.verdicts:
            lines.append(f"    {v.netns}/{v.dev} {v.hook:<8} runs {v.emulator['runs']} "
                         f"!= {v.kernel['runs']}, shot {v.emulator['shot']} != "
                         f"{v.kernel['shot']}")
    if report.maps:
        lines.append("  maps (map[key]: emulator != kernel)")
        for d in report.maps:
            lines.append(f"    {d.map}[{d.key}] {d.emulator or 'absent'} != "
                         f"{d.kernel or 'absent'}")
    if report.programs:
        lines.append("  verifier (emulator != kernel)")
        for p in report.programs:
            lines.append(f"    {p.program}: {p.emulator!r} != {p.kernel!r}")
    if report.checks:
        lines.append("  expectations judged differently")
        for c in report.checks:
            lines.append(f"    #{c.index} {c.kind}: {c.summary}: emulator {c.emulator}; "
                         f"kernel {c.kernel}")
    lines.extend(f"  note: {n}" for n in report.notes)
    return lines
