"""Replaying a capture through a tc hook: every packet of a pcap/pcapng file goes through
a device's ingress or egress path on an emulated network, and the verdict, the programs
that ran and the bytes that came out are reported per packet.

The packets take the same path as any other (:mod:`tcemu.net`): ``eth_type_trans``, VLAN
untagging, tcx, the clsact filters, the verdict, redirects.  Replay differs only in
bookkeeping: after each packet the network's captures, deliveries and trace are read and
cleared, so memory stays flat however long the capture is.  Reading is streamed
(:func:`tcemu.pcap.read_packets`), never through Scapy.

:func:`single_program_net` builds the smallest network for ``tcemu replay --obj``: one
Ethernet device with a clsact qdisc and the program as a direct-action filter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tcemu.errors import TcemuError

if TYPE_CHECKING:
    from tcemu.bpf.collection import Collection
    from tcemu.bpf.vm import Tier
    from tcemu.net import Net
    from tcemu.netdev import NetDev
    from tcemu.pcap import PacketRecord
    from tcemu.skb import SkBuff

__all__ = ["PacketOutcome", "ReplayError", "ReplayStats", "replay", "single_program_net"]

DEVICE_MAC = "02:00:00:00:00:01"


class ReplayError(TcemuError):
    """A replay could not start (no such device, no hook on it, ...)."""


@dataclass(frozen=True)
class PacketOutcome:
    """What happened to one replayed packet."""

    index: int                               # 0-based position in the capture
    timestamp_ns: int
    verdict: int | None                      # the hook's verdict (None: no hook ran)
    hooks: tuple[tuple[str, int], ...]       # (device and deciding filter, hook verdict)
    # (netns/dev, what, bytes): the frame as the replayed hook left it ("after tc
    # ingress"/"after tc egress"), then frames transmitted ("out") or delivered to a host
    # ("deliver") anywhere because of it.
    output: tuple[tuple[str, str, bytes], ...]


@dataclass
class ReplayStats:
    packets: int = 0
    bytes: int = 0
    verdicts: Counter[int] = field(default_factory=Counter)
    filter_hits: Counter[str] = field(default_factory=Counter)
    outputs: int = 0


def single_program_net(obj: str | Path, section: str | None = None, name: str | None = None,
                       *, dev: str = "eth0", tier: Tier = "jit",
                       seed: int = 0) -> tuple[Net, Collection]:
    """One device ``dev`` (up, address 02:00:00:00:00:01) with clsact and the program as
    a direct-action filter on both hooks' blocks (only the replayed hook runs)."""
    from tcemu.net import Net
    from tcemu.netcmd import ObjectCache

    net = Net(seed=seed, tier=tier)
    net.link_add(dev, "eth", address=DEVICE_MAC)
    net.link_set(dev, up=True)
    net.qdisc_add(dev, "clsact")
    cache = ObjectCache(base_dir=Path.cwd())
    coll = cache.collection(net, obj)
    candidates = [p for p in coll.programs.values()
                  if (section is None or p.section == section)
                  and (name is None or p.name == name)]
    if len(candidates) != 1:
        listing = ", ".join(f"{p.name} [{p.section}]" for p in coll.programs.values())
        what = "no program matches" if not candidates else "several programs match"
        raise ReplayError(f"{what} in {obj} (give --sec and/or --name; programs: {listing})")
    program = candidates[0]
    for hook in ("ingress", "egress"):
        net.filter_add(dev, hook, "bpf", prio=1, prog=program, da=True,
                       name=f"{Path(obj).name}:{program.name}")
    return net, coll


def replay(net: Net, records: Iterable[PacketRecord], dev: str, *, netns: str | None = None,
           direction: str = "ingress", keep_time: bool = True,
           on_packet: Callable[[PacketOutcome], None] | None = None) -> ReplayStats:
    """Send every record through ``dev``'s ``direction`` hook; returns the totals.

    ``ingress``: the frame arrives on ``dev`` from its wire; ``egress``: ``dev``'s host
    transmits it.  With ``keep_time`` the virtual clock follows the capture's timestamps
    (relative to its first packet).
    """
    if direction not in ("ingress", "egress"):
        raise ReplayError(f"direction must be ingress or egress, not {direction!r}")
    device = net.dev(dev, netns)
    stats = ReplayStats()
    traced, net.trace.enabled = net.trace.enabled, False
    after_hook: list[bytes] = []
    hooks: list[tuple[str, int]] = []           # (the filter that decided, verdict)

    def observe(hook_dev: NetDev, skb: SkBuff, hook: str, verdict: int) -> None:
        hooks.append((f"{hook_dev.netns}/{hook_dev.name} {net.last_owner or hook}", verdict))
        if hook_dev is device and hook == direction and not after_hook:
            l2 = skb.head[len(skb.head) - skb.mac_len:] if hook == "ingress" and \
                skb.mac_len else b""
            after_hook.append(bytes(l2) + bytes(skb.data))

    net.hook_observers.append(observe)
    start, first = net.clock.now_ns(), None
    for index, record in enumerate(records):
        if keep_time:
            first = record.timestamp_ns if first is None else first
            due = start + max(record.timestamp_ns - first, 0)
            if due > net.clock.now_ns():
                net.advance(due - net.clock.now_ns())
        if direction == "ingress":
            net.receive(dev, record.data, netns=netns)
        else:
            net.send(dev, record.data, netns=netns)
        outcome = _collect(net, index, record.timestamp_ns, device.netns, device.name,
                           direction, hooks, after_hook[0] if after_hook else None)
        after_hook.clear()
        hooks.clear()
        stats.packets += 1
        stats.bytes += len(record.data)
        if outcome.verdict is not None:
            stats.verdicts[outcome.verdict] += 1
        for label, _ in outcome.hooks:
            stats.filter_hits[label] += 1
        stats.outputs += len(outcome.output)
        if on_packet is not None:
            on_packet(outcome)
    net.run()
    net.hook_observers.remove(observe)
    net.trace.enabled = traced
    return stats


def _collect(net: Net, index: int, timestamp: int, netns: str, dev: str, direction: str,
             hooks: list[tuple[str, int]], after_hook: bytes | None) -> PacketOutcome:
    """Read this packet's verdict, programs and output, then forget them."""
    where = f"{netns}/{dev}"
    verdict = next((v for label, v in hooks if label.startswith(where + " ")), None)
    output: list[tuple[str, str, bytes]] = []
    if after_hook is not None:
        output.append((where, f"after tc {direction}", after_hook))
    for frames in net.captures.values():
        output.extend((f"{frame.netns}/{frame.dev}", "out", frame.data)
                      for frame in frames if frame.direction == "out")
    for ns in net.namespaces.values():
        for device in ns.devices.values():
            if device.delivered:
                output.extend((f"{device.netns}/{device.name}", "deliver", frame)
                              for frame in net.delivered(device.name, netns=device.netns))
                device.delivered.clear()
    net.captures.clear()
    return PacketOutcome(index, timestamp, verdict, tuple(hooks), tuple(output))


def outcomes(net: Net, records: Iterable[PacketRecord], dev: str,
             **kwargs: object) -> Iterator[PacketOutcome]:
    """The outcomes of :func:`replay`, as a list built in memory (for small captures)."""
    found: list[PacketOutcome] = []
    replay(net, records, dev, on_packet=found.append, **kwargs)  # type: ignore[arg-type]
    return iter(found)
