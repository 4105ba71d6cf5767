"""Topology diagrams of an emulated network, in Mermaid and Graphviz DOT.

Unlike a drawing of links alone, a diagram shows the tc datapath: every namespace is a
box of devices; each device lists its root qdisc tree and its clsact/ingress hooks with
their filters (prio, kind, program, direct-action) and actions; edges join veth peers,
VLAN devices to their lower device and VXLAN devices to the namespace whose underlay
carries them.  The model is read from a built :class:`tcemu.net.Net` (for example the
network of a scenario run), so what is drawn is what runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tcemu.net import Net
    from tcemu.netdev import NetDev

__all__ = ["Diagram", "diagram", "to_dot", "to_mermaid"]


@dataclass
class DevBox:
    ident: str
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Diagram:
    """Namespaces → device boxes, plus edges (a, b, label)."""

    namespaces: dict[str, list[DevBox]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)


def _ident(dev: NetDev) -> str:
    return "d_" + "".join(ch if ch.isalnum() else "_" for ch in f"{dev.netns}_{dev.name}")


def _qdisc_lines(qdisc: object, depth: int = 0) -> Iterator[str]:
    handle = getattr(qdisc, "handle", 0)
    kind = getattr(qdisc, "kind", type(qdisc).__name__)
    yield f"{'  ' * depth}qdisc {kind} {handle >> 16:x}:"
    from tcemu.cls.chain import Block

    block = getattr(qdisc, "classify", None)
    if isinstance(block, Block):
        yield from (f"{'  ' * (depth + 1)}{line}"
                    for line in _filter_lines(block, f"filter {handle >> 16:x}:"))
    classes = getattr(qdisc, "classes", None)
    if isinstance(classes, dict):
        for classid in sorted(classes):
            yield f"{'  ' * (depth + 1)}class {classid >> 16:x}:{classid & 0xFFFF:x}"
    children = getattr(qdisc, "children", None)
    if callable(children):
        for child in children():
            yield from _qdisc_lines(child, depth + 1)


def _filter_lines(block: object, hook: str) -> Iterator[str]:
    filters = getattr(block, "filters", None)
    if not callable(filters):
        return
    for chain, tp, flt in filters():
        where = f" chain {chain}" if chain else ""
        yield f"{hook}{where} prio {tp.prio}: {flt.describe()}"
        for action in getattr(flt, "actions", []):
            name = getattr(action, "name", "") or ""
            yield f"  action {action.kind} {name}".rstrip()


def _box(dev: NetDev) -> DevBox:
    mac = ":".join(f"{b:02x}" for b in dev.address)
    box = DevBox(_ident(dev), f"{dev.name} ({type(dev).__name__.lower()}, ifindex "
                 f"{dev.ifindex}) {mac}")
    if dev.qdisc is not None:
        box.lines.extend(_qdisc_lines(dev.qdisc))
    if dev.clsact is not None:
        box.lines.append(f"qdisc {getattr(dev.clsact, 'kind', 'clsact')}")
        for hook in ("ingress", "egress"):
            box.lines.extend(_filter_lines(getattr(dev.clsact, hook, None), hook))
    for hook, programs in getattr(dev, "tcx", {}).items():
        box.lines.extend(f"tcx {hook}: {p.name}" for p in programs)
    return box


def diagram(net: Net) -> Diagram:
    """Read the namespaces, devices, tc state and links of ``net``."""
    out = Diagram()
    seen: set[tuple[str, str]] = set()
    for ns_name, ns in net.namespaces.items():
        boxes = out.namespaces.setdefault(ns_name, [])
        for dev in ns.devices.values():
            if dev.name == "lo" and dev.qdisc is None and dev.clsact is None:
                continue
            boxes.append(_box(dev))
            peer = getattr(dev, "peer", None)
            if peer is not None:
                pair = tuple(sorted((_ident(dev), _ident(peer))))
                if pair not in seen:
                    seen.add((pair[0], pair[1]))
                    out.edges.append((pair[0], pair[1], "veth"))
            lower = getattr(dev, "lower", None)
            if lower is not None:
                out.edges.append((_ident(dev), _ident(lower),
                                  f"vlan {getattr(dev, 'vlan_id', '')}"))
            underlay = getattr(dev, "underlay", None)
            if underlay is not None and getattr(type(dev), "__name__", "") == "Vxlan":
                vni = "external" if getattr(dev, "external", False) else \
                    f"vni {getattr(dev, 'vni', 0)}"
                out.edges.append((_ident(dev), f"ns_{_safe(underlay)}",
                                  f"vxlan {vni} udp/{getattr(dev, 'dstport', '')}"))
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _quote_mermaid(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(d: Diagram) -> str:
    lines = ["flowchart LR"]
    for ns, boxes in d.namespaces.items():
        if not boxes:
            continue
        lines.append(f'  subgraph ns_{_safe(ns)}["netns {_quote_mermaid(ns)}"]')
        for box in boxes:
            body = "<br/>".join(_quote_mermaid(x) for x in [f"<b>{box.title}</b>", *box.lines])
            lines.append(f'    {box.ident}["{body}"]')
        lines.append("  end")
    for a, b, label in d.edges:
        lines.append(f"  {a} ---|{_quote_mermaid(label)}| {b}")
    return "\n".join(lines) + "\n"


def _quote_dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(d: Diagram) -> str:
    lines = ["graph tcemu {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    for ns, boxes in d.namespaces.items():
        if not boxes:
            continue
        lines.append(f"  subgraph cluster_{_safe(ns)} {{")
        lines.append(f'    label="netns {_quote_dot(ns)}";')
        lines.append(f'    ns_{_safe(ns)} [shape=point, style=invis];')
        for box in boxes:
            body = "\\l".join(_quote_dot(x) for x in [box.title, *box.lines]) + "\\l"
            lines.append(f'    {box.ident} [label="{body}"];')
        lines.append("  }")
    for a, b, label in d.edges:
        lines.append(f'  {a} -- {b} [label="{_quote_dot(label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
