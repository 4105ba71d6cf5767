"""What the kernel backend observed: :class:`tcemu.scenario.checks.Observations` of a run
on the kernel (see :mod:`tcemu.scenario.kernel` for what is and is not observable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tcemu.scenario.checks import Frame, NotObservableError, ProgramVerdict, VerdictTotals

__all__ = ["SHAPING_QDISCS", "KernelObservations"]

SHAPING_QDISCS = frozenset({"htb", "tbf", "netem", "hfsc", "cake", "fq", "fq_codel"})


def tc_json(kn: Any, ns: str, *args: str) -> list[dict[str, Any]]:
    """``tc -s -j ARGS`` in ``ns``, parsed."""
    return list(json.loads(kn.tc(ns, "-s", "-j", *args) or "[]"))


class KernelObservations:
    """:class:`tcemu.scenario.checks.Observations` of a run on the kernel."""

    backend = "the kernel"

    def __init__(self, player: Any, frames: list[Frame]) -> None:
        self._p = player
        self._frames = frames

    def frames(self, netns: str, dev: str) -> list[Frame]:
        return [f for f in self._frames if f.netns == netns and f.dev == dev]

    def verdicts(self, netns: str, dev: str, hook: str) -> VerdictTotals:
        hooks = self._p.hooks.get((netns, dev), set())
        if hook not in hooks:
            return VerdictTotals(0, 0, "no filter at that hook")
        if len(hooks) > 1:
            raise NotObservableError("both hooks of the device have filters and share the "
                                     "clsact counters")
        for entry in tc_json(self._p.kn, netns, "qdisc", "show", "dev", dev):
            if entry.get("kind") in ("clsact", "ingress"):
                return VerdictTotals(int(entry.get("packets", 0)), int(entry.get("drops", 0)),
                                     f"tc -s qdisc show dev {dev} ({entry['kind']})")
        raise NotObservableError(f"no clsact or ingress qdisc on {netns}/{dev}")

    def packet_id(self, index: int) -> int:
        raise NotObservableError("the kernel does not number packets")

    def map_sizes(self, name: str, program: str | None) -> tuple[int, int]:
        _, key_size, value_size = self._p._map_fd(name, program)
        return key_size, value_size

    def map_lookup(self, name: str, program: str | None, key: bytes) -> bytes | None:
        from tcemu.kernel.syscall import map_lookup

        fd, _, value_size = self._p._map_fd(name, program)
        return map_lookup(fd, key, value_size)

    def ifindex(self, netns: str, dev: str) -> int:
        return int(self._p.ifindex(netns, dev))

    def counter(self, netns: str, dev: str, counter: str, qdisc: str | None) -> int:
        if (netns, dev) in self._p.injected and counter.startswith("tx_"):
            raise NotObservableError(f"{netns}/{dev} sent the frames the kernel backend made "
                                     "arrive on its veth peer; its tx counters count them")
        if qdisc is None:
            shown = json.loads(self._p.kn.ip(netns, "-s", "-j", "link", "show", "dev", dev))
            stats = shown[0].get("stats64") or shown[0].get("stats") or {}
            side, _, name = counter.partition("_")
            if side not in ("rx", "tx") or name not in stats.get(side, {}):
                raise ValueError(f"unknown device counter {counter!r}")
            return int(stats[side][name])
        for entry in tc_json(self._p.kn, netns, "qdisc", "show", "dev", dev):
            is_it = entry.get("root") if qdisc == "root" else entry.get("handle") == qdisc
            if is_it:
                if entry.get("kind") in SHAPING_QDISCS and counter not in ("packets",
                                                                           "bytes"):
                    raise NotObservableError(f"{entry['kind']} {counter} depends on the wall "
                                             "clock on the kernel (packets and bytes sent "
                                             "are compared once the queue drained)")
                if counter not in entry:
                    raise ValueError(f"qdisc {qdisc} has no counter {counter!r}")
                return int(entry[counter])
        raise ValueError(f"no qdisc {qdisc} on {netns}/{dev}")

    def trace_lines(self) -> Sequence[str]:
        raise NotObservableError("trace_printk goes to the machine's one trace buffer, "
                                 "shared with every other program")

    def program(self, name: str) -> ProgramVerdict | None:
        found = self._p.programs.get(name)
        return found[2] if found is not None else None
