"""Structured per-packet events of the datapath, for tests, the CLI and teaching.

Every stage a packet passes through records one :class:`TraceEvent`: which packet
(``pkt``, a number the network gives each skb; clones get their own and name their
parent), when (virtual ns), where (netns, device), what stage (``stage``, one of
:data:`STAGES`) and a short detail (the hook, the filter, the program, the verdict, the
next device).  Events are appended in the order the emulated kernel performs the work,
so a packet's path reads top to bottom:
``xmit veth0 -> tc egress veth0 -> filter bpf prio 1 -> verdict TC_ACT_REDIRECT ->
redirect ingress veth2 -> rx veth2 ...``.

There is no kernel counterpart (the closest are the ``skb:*`` and ``net:*`` tracepoints).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["STAGES", "Trace", "TraceEvent", "verdict_name"]

STAGES = frozenset({
    "send", "wire", "rx", "tap", "tc", "filter", "prog", "action", "verdict", "qdisc",
    "xmit", "redirect", "clone", "deliver", "drop", "encap", "decap", "vlan",
})

_VERDICTS = {-1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT",
             3: "TC_ACT_PIPE", 4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT",
             7: "TC_ACT_REDIRECT", 8: "TC_ACT_TRAP"}


def verdict_name(verdict: int) -> str:
    """``TC_ACT_*`` name of a verdict (JUMP and GOTO_CHAIN with their argument)."""
    if verdict in _VERDICTS:
        return _VERDICTS[verdict]
    opcode = verdict & 0xF000_0000
    if opcode == 1 << 28:
        return f"TC_ACT_JUMP {verdict & 0x0FFF_FFFF}"
    if opcode == 2 << 28:
        return f"TC_ACT_GOTO_CHAIN {verdict & 0x0FFF_FFFF}"
    return str(verdict)


@dataclass(frozen=True)
class TraceEvent:
    """One step of one packet."""

    seq: int
    time_ns: int
    pkt: int
    stage: str
    netns: str
    dev: str
    detail: str = ""
    verdict: int | None = None
    parent: int | None = None     # the packet a clone was made from

    def __str__(self) -> str:
        where = f"{self.netns}/{self.dev}" if self.dev else self.netns
        text = f"{self.time_ns:>12} #{self.pkt:<4} {self.stage:<8} {where}"
        if self.detail:
            text += f" {self.detail}"
        if self.verdict is not None:
            text += f" -> {verdict_name(self.verdict)}"
        return text


@dataclass
class Trace:
    """The event log of one network; ``enabled=False`` stops recording."""

    events: list[TraceEvent] = field(default_factory=list)
    enabled: bool = True

    def emit(self, time_ns: int, pkt: int, stage: str, netns: str, dev: str,
             detail: str = "", *, verdict: int | None = None,
             parent: int | None = None) -> None:
        if self.enabled:
            assert stage in STAGES, stage
            self.events.append(TraceEvent(len(self.events), time_ns, pkt, stage, netns, dev,
                                          detail, verdict, parent))

    def of(self, pkt: int) -> list[TraceEvent]:
        """The events of one packet."""
        return [e for e in self.events if e.pkt == pkt]

    def stages(self, pkt: int | None = None) -> list[str]:
        """``stage dev`` strings, for compact assertions."""
        return [f"{e.stage} {e.dev}".strip() for e in self.events
                if pkt is None or e.pkt == pkt]

    def clear(self) -> None:
        self.events.clear()

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def format(self) -> str:
        return "\n".join(str(e) for e in self.events)


def event_line(event: TraceEvent, start_ns: int = 0) -> str:
    """One event as a line of the per-packet pipeline trace (time relative to
    ``start_ns``, in microseconds)."""
    where = f"{event.netns}/{event.dev}" if event.dev else event.netns
    verdict = f" => {verdict_name(event.verdict)}" if event.verdict is not None else ""
    parent = f" (clone of #{event.parent})" if event.parent is not None else ""
    t = (event.time_ns - start_ns) / 1000
    return f"  {t:>10.3f}us {event.stage:<8} {where:<16} {event.detail}{verdict}{parent}"


def pipeline_lines(events: Iterable[TraceEvent], start_ns: int = 0) -> list[str]:
    """Each packet's path, grouped by packet (``packet #N`` and its events)."""
    by_pkt: dict[int, list[str]] = {}
    for event in events:
        by_pkt.setdefault(event.pkt, []).append(event_line(event, start_ns))
    lines: list[str] = []
    for pkt in sorted(by_pkt):
        lines.append(f"packet #{pkt}")
        lines.extend(by_pkt[pkt])
    return lines


def event_json(event: TraceEvent, start_ns: int = 0) -> dict[str, object]:
    """One event as a JSON object (``--trace-jsonl``, the ``pipeline`` of ``--json``)."""
    return {"seq": event.seq, "time_ns": event.time_ns - start_ns, "pkt": event.pkt,
            "stage": event.stage, "netns": event.netns, "dev": event.dev,
            "detail": event.detail, "verdict": event.verdict, "parent": event.parent}
