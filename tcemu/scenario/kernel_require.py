"""What a scenario needs from the kernel, checked before the kernel backend builds it.

:func:`static_requirements` refuses what the backend does not model whatever the kernel;
:func:`require` probes, in scratch namespaces, every device kind and qdisc
(:meth:`tcemu.kernel.netns.KernelNet.require`), classifier kind (a filter on ``lo``) and
tc action kind (``tc actions add``) the scenario names.  Either raises
:class:`KernelUnavailableError`, which the CLI turns into exit status 3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tcemu.errors import KernelError, TcemuError
from tcemu.scenario import model as m

__all__ = ["ACTION_PROBE_NS", "EXIT_KERNEL_UNAVAILABLE", "KernelUnavailableError", "require",
           "static_requirements"]

EXIT_KERNEL_UNAVAILABLE = 3
"""``tcemu run --backend kernel`` / ``tcemu diff``: this kernel cannot run the scenario."""

ACTION_PROBE_NS = "tcemu_actprobe"   # where classifiers and actions are probed (not captured)


class KernelUnavailableError(TcemuError):
    """This machine's kernel (or the kernel backend) cannot run the scenario."""

    def __init__(self, reason: str, *, feature: str = "") -> None:
        self.reason = reason
        self.feature = feature
        super().__init__(reason)


def static_requirements(scenario: m.Scenario) -> None:
    """What the backend cannot do whatever the kernel: said before anything is created.

    Nothing at the moment: every part of the scenario format has a kernel counterpart;
    what a given kernel lacks is found by :func:`require`.
    """
    del scenario


def require(kn: Any, scenario: m.Scenario, ensure_ns: Callable[[str], str]) -> None:
    """Probe every device kind, qdisc, classifier and action the scenario names (in
    scratch namespaces): KernelUnavailableError naming the first one missing."""
    from tcemu.cmd import model as cm
    from tcemu.cmd import parse

    links: set[str] = set()
    qdiscs: set[str] = set()
    actions: set[str] = set()
    filters: set[str] = set()
    for link in scenario.links:
        if isinstance(link, m.LinkSpec):
            links.add("veth" if link.kind == "eth" else link.kind)
    lines = [*scenario.setup, *(x if x.startswith("ip ") else f"ip {x}"
                              for x in scenario.links if isinstance(x, str)),
             *(x if x.startswith("tc ") else f"tc {x}"
               for x in scenario.tc if isinstance(x, str))]
    for line in lines:
        try:
            cmd = parse(line)
        except TcemuError:
            continue        # reported with its place when the line is applied
        if isinstance(cmd, cm.LinkAdd):
            links.add(cmd.info.kind)
        elif isinstance(cmd, cm.QdiscAdd):
            qdiscs.add(cmd.qdisc.kind)
        elif isinstance(cmd, cm.FilterAdd):
            filters.add(cmd.filter.kind)
            actions.update(a.kind for a in cmd.filter.actions)
    for item in scenario.tc:
        if isinstance(item, m.QdiscSpec):
            qdiscs.add(item.qdisc)
        elif isinstance(item, m.FilterSpec):
            filters.add(item.kind)
            actions.update(a.split()[0] for a in item.actions if a.split())
    kn.require(links=sorted(links), qdiscs=sorted(qdiscs))
    if filters - {"bpf"}:
        _require_filters(kn, ensure_ns, sorted(filters - {"bpf"}))
    if actions:
        _require_actions(kn, ensure_ns, sorted(actions))


def _require_filters(kn: Any, ensure_ns: Callable[[str], str], kinds: list[str]) -> None:
    """Probe each classifier kind on ``lo`` of a namespace of its own."""
    samples = {"u32": ["u32", "match", "u32", "0", "0"]}
    ns = ensure_ns(ACTION_PROBE_NS)
    kn.qdisc(ns, "lo", "clsact")
    for prio, kind in enumerate(kinds, start=1):
        try:
            kn.tc(ns, "filter", "add", "dev", "lo", "ingress", "prio", str(prio),
                  *samples.get(kind, [kind]))
        except KernelError as err:
            raise KernelUnavailableError(f"tc classifier {kind!r} is missing "
                                         f"(cls_{kind}): {err}",
                                         feature=f"filter/{kind}") from err


def _require_actions(kn: Any, ensure_ns: Callable[[str], str], kinds: list[str]) -> None:
    """Probe each tc action kind in a namespace of its own (``tc actions add``)."""
    samples = {"bpf": ["bpf", "bytecode", "1,6 0 0 0"], "gact": ["gact", "pass"],
               "mirred": ["mirred", "egress", "redirect", "dev", "lo"],
               "vlan": ["vlan", "pop"], "skbedit": ["skbedit", "mark", "1"],
               "tunnel_key": ["tunnel_key", "unset"]}
    ns = ensure_ns(ACTION_PROBE_NS)
    for kind in kinds:
        try:
            kn.tc(ns, "actions", "add", "action", *samples.get(kind, [kind]))
        except KernelError as err:
            raise KernelUnavailableError(f"tc action {kind!r} is missing (act_{kind}): {err}",
                                         feature=f"action/{kind}") from err
        kn.tc(ns, "actions", "flush", "action", kind)
