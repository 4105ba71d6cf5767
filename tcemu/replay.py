"""Replaying a capture through a tc hook: every packet of a pcap/pcapng file goes through
a device's ingress or egress path on an emulated network, and the verdict, the programs
that ran and the bytes that came out are reported per packet.

The packets take the same path as any other (:mod:`tcemu.net`): ``eth_type_trans``, VLAN
untagging, tcx, the clsact filters, the verdict, redirects.  Replay differs only in
bookkeeping: after each packet the network's captures, deliveries and trace are read and
cleared, so memory stays flat however long the capture is.  Reading is streamed
(:func:`tcemu.pcap.read_packets`), never through Scapy.

For speed, an ingress packet skips what replay would throw away (:func:`_receive`): the
event-loop round trip when nothing else is due, and the capture of the frame on the
replayed device; everything else is the datapath's own code.  ``tests/test_replay_lean.py``
holds this path equal to ``Net.receive``.

:func:`single_program_net` builds the smallest network for ``tcemu replay --obj``: one
Ethernet device with a clsact qdisc and the program as a direct-action filter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from tcemu.errors import TcemuError
from tcemu.net.fastpath import ingress_plan
from tcemu.net.rx import receive_core
from tcemu.net.stack import with_hwaccel_tag
from tcemu.netdev import NetDev
from tcemu.pcap import LinkType, to_ethernet
from tcemu.skb import ETH_HLEN, eth_type_trans

if TYPE_CHECKING:
    from tcemu.bpf.collection import Collection
    from tcemu.bpf.vm import Tier
    from tcemu.net import Net
    from tcemu.pcap import Interface, PacketRecord
    from tcemu.skb import SkBuff
    from tcemu.trace import TraceEvent

__all__ = ["PacketOutcome", "ReplayError", "ReplayStats", "replay", "single_program_net"]

DEVICE_MAC = "02:00:00:00:00:01"


class ReplayError(TcemuError):
    """A replay could not start (no such device, no hook on it, ...)."""


@dataclass(slots=True)
class PacketOutcome:
    """What happened to one replayed packet (a value: read it, do not change it; not
    frozen, since a frozen dataclass takes four times as long to make, once a packet)."""

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
        wanted = " and ".join(x for x in (f"section {section!r}" if section else "",
                                          f"name {name!r}" if name else "") if x)
        what = (f"no program matches {wanted or 'the selection'}" if not candidates
                else "several programs match")
        raise ReplayError(f"{what} in {obj} (give --sec and/or --name; programs: {listing})")
    from tcemu.netcmd import verified

    program = verified(candidates[0])      # as tc would load it: the verifier first
    for hook in ("ingress", "egress"):
        net.filter_add(dev, hook, "bpf", prio=1, prog=program, da=True,
                       name=f"{Path(obj).name}:{program.name}")
    return net, coll


def replay(net: Net, records: Iterable[PacketRecord], dev: str, *, netns: str | None = None,
           direction: str = "ingress", keep_time: bool = True,
           on_packet: Callable[[PacketOutcome], None] | None = None,
           on_trace: Callable[[list[TraceEvent]], None] | None = None) -> ReplayStats:
    """Send every record through ``dev``'s ``direction`` hook; returns the totals.

    ``ingress``: the frame arrives on ``dev`` from its wire; ``egress``: ``dev``'s host
    transmits it.  With ``keep_time`` the virtual clock follows the capture's timestamps
    (relative to its first packet).  Without ``on_packet`` no :class:`PacketOutcome` is
    built: the totals are counted from the same places, without copying any bytes.

    ``on_trace`` receives, after each packet, the pipeline trace events it caused (device,
    hook, filter, program, verdict, next device; :mod:`tcemu.trace`); without it nothing
    is traced.  Tracing takes every packet through ``Net.receive``/``Net.send``.

    Packets of captures without an Ethernet header (``tcpdump -i any`` cooked SLL/SLL2,
    tun RAW/IPV4/IPV6, BSD NULL/LOOP) and Ethernet packets with an FCS are turned into the
    Ethernet frame the device would receive (:func:`tcemu.pcap.to_ethernet`, with ``dev``'s
    address as the local one); other link types raise :class:`tcemu.pcap.PcapError`.
    """
    if direction not in ("ingress", "egress"):
        raise ReplayError(f"direction must be ingress or egress, not {direction!r}")
    device = net.dev(dev, netns)
    stats = ReplayStats()
    traced, net.trace.enabled = net.trace.enabled, on_trace is not None
    events = net.trace.events
    mark = len(events)                          # events from before the replay stay
    after_bytes: list[bytes] = []                # the bytes the replayed hook left, copied
    seen: list[tuple[NetDev, str, int]] = []    # with on_packet: (device, owner, verdict)
    hits: dict[tuple[NetDev, str], int] = {}    # (device, owner) -> hooks run (filter_hits)
    # per packet: the first verdict on the replayed device, and whether its replayed hook
    # ran (the skb it left is this packet's first output)
    first: int | None = None
    hooked = False
    where = f"{device.netns}/{device.name}"
    after = f"after tc {direction}"
    labels: dict[tuple[NetDev, str], str] = {}  # (device, owner) -> its label, made once
    keep = on_packet is not None

    def observe(hook_dev: NetDev, skb: SkBuff, hook: str, verdict: int) -> None:
        nonlocal first, hooked
        owner = net.last_owner or hook
        key = (hook_dev, owner)
        hits[key] = hits.get(key, 0) + 1
        if keep:
            seen.append((hook_dev, owner, verdict))
        elif hook_dev is device and first is None:
            first = verdict
        if hook_dev is device and hook == direction and not hooked:
            hooked = True
            if keep:
                l2 = skb.head[len(skb.head) - skb.mac_len:] if hook == "ingress" and \
                    skb.mac_len else b""
                after_bytes.append(with_hwaccel_tag(bytes(l2) + bytes(skb.data), skb))

    net.hook_observers.append(observe)
    observers, alone = net.hook_observers, [observe]
    local_mac = device.address
    interface: Interface | None = None  # the last record's interface ...
    native = True                       # ... holds Ethernet frames without an FCS
    clock, loop = net.clock, net.loop
    start, shift = clock.now_ns(), None   # shift: capture time -> virtual time
    verdicts: dict[int, int] = {}               # counted here, into stats.verdicts at the end
    planned: dict[str, int] = {}                # owner -> the plan's hooks run (filter hits)
    ingress = direction == "ingress"
    plan = ingress_plan(net, device) if ingress else None
    packets = size = outputs = 0
    try:                 # the observer and the trace flag are put back whatever happens
        try:
            for record in records:
                if record.interface is not interface:
                    interface = record.interface
                    native = interface.linktype == LinkType.ETHERNET and not interface.fcs_len
                data = record.data if native else to_ethernet(record, local_mac=local_mac)
                if keep_time:
                    if shift is None:
                        shift = start - record.timestamp_ns
                    due = record.timestamp_ns + shift
                    if not loop.queue:           # what advance() comes to with nothing queued
                        clock.advance_to(due)
                    elif due > clock.now_ns():
                        net.advance(due - clock.now_ns())
                if plan is not None:
                    if plan.generation != net.tc_generation or plan.clsact is not device.clsact:
                        plan = ingress_plan(net, device)      # the configuration changed
                    skb = plan.arrive(data)
                    if skb is not None:
                        # IngressPlan.receive, with replay's own observer inline when it is
                        # the only one (the plan's hook is the packet's first)
                        verdict = plan.hook(skb)
                        if keep or observers != alone:
                            for observe_hook in observers:
                                observe_hook(device, skb, "ingress", verdict)
                        else:
                            owner = net.last_owner or "ingress"
                            planned[owner] = planned.get(owner, 0) + 1
                            first, hooked = verdict, True
                        plan.finish(skb, verdict)
                    elif not _receive(net, device, data):
                        net.receive(dev, data, netns=netns)
                else:
                    net.send(dev, data, netns=netns)
                packets += 1
                size += len(data)
                if on_packet is None:
                    if first is not None:
                        verdicts[first] = verdicts.get(first, 0) + 1
                        first = None
                    if hooked:
                        outputs += 1
                        hooked = False
                    if net.captures or net.delivered_to:
                        outputs += _forget(net)
                else:
                    outcome = _collect(
                        net, packets - 1, record.timestamp_ns, where, after,
                        [(_label(labels, d, o), v) for d, o, v in seen],
                        next((v for d, _, v in seen if d is device), None),
                        after_bytes[0] if after_bytes else None)
                    if outcome.verdict is not None:
                        verdicts[outcome.verdict] = verdicts.get(outcome.verdict, 0) + 1
                    outputs += len(outcome.output)
                    hooked = False
                    after_bytes.clear()
                    seen.clear()
                if on_trace is not None:
                    on_trace(events[mark:])
                    del events[mark:]
                if on_packet is not None:
                    on_packet(outcome)                   # last, as before: it may send packets
        finally:
            stats.packets, stats.bytes, stats.outputs = packets, size, outputs
            merged = {(device, owner): count for owner, count in planned.items()}
            for key, count in hits.items():          # (the replayed device's hooks first)
                merged[key] = merged.get(key, 0) + count
            for (d, o), count in merged.items():
                stats.filter_hits[_label(labels, d, o)] += count
            stats.verdicts.update(verdicts)
        net.run()
        if on_trace is not None and len(events) > mark:     # what was still queued
            on_trace(events[mark:])
            del events[mark:]
    finally:
        net.hook_observers.remove(observe)
        net.trace.enabled = traced
    return stats


def _label(labels: dict[tuple[NetDev, str], str], dev: NetDev, owner: str) -> str:
    """How replay names a hook that ran: ``netns/dev filter prio 1 bpf ...`` (made once
    per device and owner, kept in ``labels``)."""
    text = labels.get((dev, owner))
    if text is None:
        text = labels[(dev, owner)] = f"{dev.netns}/{dev.name} {owner}"
    return text


def _receive(net: Net, device: NetDev, frame: bytes) -> bool:
    """``Net.receive(device, frame)`` for replay's common case: no event-loop round trip,
    and no capture of the frame on the replayed device (replay forgets captures after
    each packet and reports only transmitted ones).  False, with nothing done, when the
    packet must take the full path.

    ``Net.receive`` builds the skb, ``netif_rx`` runs ``eth_type_trans`` and queues
    ``receive_core`` on the backlog, and the loop runs it at once: with nothing else due
    by now, running it here is the same, event for event.  Down devices, runt frames and
    a trace that is on take the loop (their events and drops are there).
    """
    loop = net.loop
    if loop.queue:
        now = net.clock.now_ns()
        due = loop.next_time()
        if due is not None and due <= now:
            return False
    if net.trace.enabled or not device.up or len(frame) < ETH_HLEN:
        return False
    skb = net.new_skb(frame, device)
    # netif_rx (tcemu/net/rx.py) for an up device and a frame of at least ETH_HLEN bytes
    skb.tc_at_ingress = False
    eth_type_trans(skb, device.address, device.broadcast)
    receive_core(net, device, skb, tap=False)
    if loop.queue:
        loop.run_until(net.clock.now_ns())
    return True


def _forget(net: Net) -> int:
    """What :func:`_collect` does without an outcome: count this packet's output frames,
    then forget them."""
    count = 0
    captures = net.captures
    if captures:
        for frames in captures.values():
            count += sum(1 for frame in frames if frame.direction == "out")
        captures.clear()
    if net.wired:                       # (frames on a wire are captured "out" too)
        net.forget_wires()
    delivered_to = net.delivered_to
    if delivered_to:
        for device in delivered_to:
            count += len(device.delivered)
            device.delivered.clear()
        delivered_to.clear()
    return count


def _collect(net: Net, index: int, timestamp: int, where: str, after: str,
             hooks: list[tuple[str, int]], verdict: int | None,
             after_hook: bytes | None) -> PacketOutcome:
    """Read this packet's output, then forget it.  ``after`` names the frame the
    replayed hook left (``after tc ingress``)."""
    output: list[tuple[str, str, bytes]] = []
    if after_hook is not None:
        output.append((where, after, after_hook))
    for frames in net.captures.values():
        output.extend((_where(frame.netns, frame.dev), "out", frame.data)
                      for frame in frames if frame.direction == "out")
    if net.delivered_to:                # (in namespace and device order)
        for ns in net.namespaces.values():
            for device in ns.devices.values():
                if device.delivered:
                    output.extend((_where(device.netns, device.name), "deliver", frame)
                                  for frame in net.delivered(device.name, netns=device.netns))
                    device.delivered.clear()
        net.delivered_to.clear()
    net.captures.clear()
    if net.wired:
        net.forget_wires()
    return PacketOutcome(index, timestamp, verdict, tuple(hooks), tuple(output))


@cache
def _where(netns: str, dev: str) -> str:
    """``netns/dev``, as outcomes name a device (one string per device, not per frame)."""
    return f"{netns}/{dev}"


def outcomes(net: Net, records: Iterable[PacketRecord], dev: str,
             **kwargs: object) -> Iterator[PacketOutcome]:
    """The outcomes of :func:`replay`, as a list built in memory (for small captures)."""
    found: list[PacketOutcome] = []
    replay(net, records, dev, on_packet=found.append, **kwargs)  # type: ignore[arg-type]
    return iter(found)
