"""The emulated kernel of one network: namespaces, event loop, captures, program runs.

:class:`Stack` is what devices, classifiers and actions talk to (it implements the
``Datapath``/``Underlay`` protocols of :mod:`tcemu.netdev` and ``TcExec`` of
:mod:`tcemu.act`).  The receive and transmit paths themselves are in :mod:`tcemu.net.rx`
and :mod:`tcemu.net.tx`, redirects in :mod:`tcemu.net.redirect`; the user-facing keyword
API is :class:`tcemu.net.Net`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from tcemu.bpf import memory as mem
from tcemu.bpf.testrun import SkbContext
from tcemu.bpf.vm import Tier, Vm
from tcemu.clock import VirtualClock
from tcemu.errors import NetError
from tcemu.net.env import NetEnv
from tcemu.net.events import EventLoop
from tcemu.net.netns import Netns
from tcemu.netdev import Eth, Loopback, NetDev
from tcemu.skb import ETH_HLEN, VLAN_PROTOS, SkBuff, skb_flow_hash
from tcemu.trace import Trace

if TYPE_CHECKING:
    from tcemu.bpf.program import Program

__all__ = ["Captured", "RunSlot", "Stack"]

NET_XMIT_SUCCESS, NET_XMIT_DROP = 0, 1
TSTAMP_TYPE_OFFSET = 180
XMIT_RECURSION_LIMIT = 8


@dataclass
class Captured:
    """One frame as tcpdump on a device shows it (hw-accel VLAN tag in the bytes)."""

    data: bytes
    direction: str              # "in" (received, before tc ingress) or "out" (after egress)
    timestamp: int              # virtual ns
    dev: str
    netns: str
    pkt: int                    # the packet's number in the trace
    tc: str = ""                # what tc did on this device (filled in after the hook)
    verdict: int | None = None

    def __bytes__(self) -> bytes:
        return self.data


@dataclass(slots=True, eq=False)
class RunSlot:
    """What running a tc program reuses from packet to packet: the context model (the
    packet view too) re-aimed at each skb, the program last run with its VM and its
    inline run (the model knows whether the program reads ``tstamp_type``).
    ``run_program`` keeps one per nesting depth, a receive plan one per filter."""

    model: SkbContext            # (also the run's packet view: memory.PacketHeaders)
    program: Program | None = None
    vm: Vm | None = None
    run: Callable[[bytearray], int] | None = None     # vm.datapath_run of the above
    tier: str = ""                                     # ... on this tier


class Stack:
    """The datapath state shared by every namespace of one network."""

    def __init__(self, seed: int = 0, *, tier: Tier = "interp",
                 clock: VirtualClock | None = None) -> None:
        self.seed = seed
        self.tier: Tier = tier
        self.env = NetEnv(seed=seed, clock=clock if clock is not None else VirtualClock())
        self.env.stack = self
        self.clock = self.env.clock
        self.loop = EventLoop(self.clock)
        self.trace = Trace()
        self.namespaces: dict[str, Netns] = {}
        self.captures: dict[int, list[Captured]] = {}      # by id(dev)
        self.delivered_to: set[NetDev] = set()   # devices whose delivered list was empty
        self.wired: set[Eth] = set()             # devices whose wire_out was empty
        self.redirect_info: tuple[str, int, int] | None = None
        self.redirect_nexthop = b""                          # struct bpf_redir_neigh
        self.xmit_depth = 0
        self.last_xmit = 0                                   # NET_XMIT_* of the last send
        self.last_owner = ""                                 # the filter that ran last
        self.hook_args: tuple[str, str, int] | None = None   # the last hook (hook_detail)
        self.pkt_ids = 0                                     # the last packet number given
        self._vms: dict[int, Vm] = {}
        self._run_views: list[RunSlot] = []     # by nesting depth, see run_program
        self._mac_rng = random.Random(seed ^ 0x6D6163)
        self._id_rng = random.Random(seed ^ 0x697069)
        self.ip_id_fn: Callable[[bytes, bytes, int], int] = self._default_ip_id
        self.flow_hash_fn: Callable[[SkBuff], int] = self._default_flow_hash
        self.qdisc_timers: dict[int, int] = {}              # id(dev) -> scheduled time
        # Called after every tc hook with (dev, skb, "ingress"/"egress", verdict); the
        # skb is at L2 for egress and after the L2 header for ingress (mac_len pulled).
        self.hook_observers: list[Callable[[NetDev, SkBuff, str, int], None]] = []
        self.netns_add("default")

    # -- namespaces and devices ------------------------------------------------------
    def netns_add(self, name: str) -> Netns:
        if name in self.namespaces:
            raise NetError(f'Cannot create namespace "{name}": File exists', errno=17)
        ns = Netns(name)
        self.namespaces[name] = ns
        lo = Loopback("lo", address=bytes(6), up=name == "default")
        ns.attach(lo)
        return ns

    def ns(self, name: str) -> Netns:
        ns = self.namespaces.get(name)
        if ns is None:
            raise NetError(f'Cannot open network namespace "{name}": No such file or '
                           "directory", errno=2)
        return ns

    def ns_of(self, dev: NetDev) -> Netns:
        return self.namespaces[dev.netns]

    def dev_of(self, skb: SkBuff) -> NetDev:
        """``skb->dev``; an skb outside the datapath (``BPF_PROG_TEST_RUN`` of a program
        loaded into this network) is on ``lo`` of ``default``, the caller's netns."""
        dev = skb.dev
        if isinstance(dev, NetDev):
            return dev
        return self.namespaces["default"].by_index[1]

    def random_mac(self) -> bytes:
        """``eth_hw_addr_random``: a locally administered unicast address (seeded)."""
        raw = bytearray(self._mac_rng.getrandbits(8) for _ in range(6))
        raw[0] = (raw[0] & 0xFE) | 0x02
        return bytes(raw)

    def new_pkt_id(self) -> int:
        self.pkt_ids += 1
        return self.pkt_ids

    def new_skb(self, frame: bytes, dev: NetDev) -> SkBuff:
        self.pkt_ids += 1
        skb = SkBuff(bytearray(frame))  # (keywords against 46 fields cost more than stores)
        skb.pkt_id, skb.dev, skb.ifindex = self.pkt_ids, dev, dev.ifindex
        size = len(frame)
        if size >= ETH_HLEN:   # packet_parse_headers: dev_parse_header_protocol
            skb.protocol = proto = frame[12] << 8 | frame[13]
            if proto == 0x0800:       # probe_transport for the common case, inline
                skb.network_header = ETH_HLEN
                if size >= 34 and frame[14] >> 4 == 4:
                    ihl = (frame[14] & 0xF) * 4
                    if ihl >= 20 and size >= ETH_HLEN + ihl:
                        skb.transport_header = ETH_HLEN + ihl
                return skb
            at = 12   # and the network header after in-payload VLAN tags
            while proto in VLAN_PROTOS and size >= at + 6:
                at += 4
                proto = frame[at] << 8 | frame[at + 1]
            skb.network_header = at + 2
            skb.transport_header = probe_transport(frame, proto, at + 2)
        else:
            skb.network_header = 0
        return skb

    @property
    def hook_detail(self) -> str:
        """What the last tc hook did, as captures and the trace say it (made when read)."""
        args = self.hook_args
        return _hooks.hook_detail(*args) if args is not None else ""

    # -- trace and capture ---------------------------------------------------------
    def note(self, skb: SkBuff, stage: str, detail: str, verdict: int | None = None) -> None:
        if not self.trace.enabled:
            return
        dev = skb.dev
        name, ns = (dev.name, dev.netns) if isinstance(dev, NetDev) else ("", "")
        self.trace.emit(self.clock.now_ns(), skb.pkt_id, stage, ns, name, detail,
                        verdict=verdict)

    def event(self, skb: SkBuff, dev: NetDev, stage: str, detail: str = "",
              verdict: int | None = None) -> None:
        if not self.trace.enabled:
            return
        self.trace.emit(self.clock.now_ns(), skb.pkt_id, stage, dev.netns, dev.name,
                        detail, verdict=verdict)

    def tap(self, dev: NetDev, skb: SkBuff, direction: str) -> Captured:
        """``dev_queue_xmit_nit`` / ``deliver_skb`` to AF_PACKET: record the frame."""
        if direction == "in":
            frame = skb.head[len(skb.head) - skb.mac_len:] + bytes(skb.data) \
                if skb.mac_len else bytes(skb.data)
        else:
            frame = bytes(skb.data)
        frame = with_hwaccel_tag(frame, skb)
        cap = Captured(frame, direction, self.clock.now_ns(), dev.name, dev.netns,
                       skb.pkt_id)
        self.captures.setdefault(id(dev), []).append(cap)
        if self.trace.enabled:
            self.event(skb, dev, "tap", f"{direction} {len(frame)} bytes")
        return cap

    def drop(self, skb: SkBuff, dev: NetDev, reason: str, *, count: bool = True) -> int:
        if count:
            dev.stats.tx_dropped += 1
        self.event(skb, dev, "drop", reason)
        return NET_XMIT_DROP

    def consume(self, skb: SkBuff, dev: NetDev, reason: str) -> int:
        self.event(skb, dev, "xmit", reason)
        return NET_XMIT_SUCCESS

    # -- paths (implemented in rx.py / tx.py) ---------------------------------------
    def netif_rx(self, dev: NetDev, skb: SkBuff) -> int:
        return _rx.netif_rx(self, dev, skb)

    def dev_queue_xmit(self, dev: NetDev, skb: SkBuff) -> int:
        return _tx.dev_queue_xmit(self, dev, skb)

    def clone_redirect(self, vm: Vm, skb: SkBuff, ifindex: int, flags: int) -> int:
        """``bpf_clone_redirect`` (:func:`tcemu.net.redirect.clone_redirect`)."""
        return _redirect.clone_redirect(self, vm, skb, ifindex, flags)

    def fib_lookup(self, skb: SkBuff, params: bytearray, flags: int) -> int:
        """``bpf_fib_lookup`` (:func:`tcemu.net.fib.fib_lookup`)."""
        return _fib.fib_lookup(self, skb, params, flags)

    def ip_tunnel_output(self, netns: str, skb: SkBuff, daddr: bytes, saddr: bytes,
                         build: Callable[[SkBuff, bytes, int], None]) -> int:
        return _tx.ip_tunnel_output(self, netns, skb, daddr, saddr, build)

    def udp_src_port(self, skb: SkBuff, lo: int, hi: int) -> int:
        """``udp_flow_src_port``: scale the inner flow hash into [lo, hi)."""
        if not (skb.sw_hash or skb.l4_hash):       # skb_get_hash computes and keeps one
            skb.set_sw_hash(self.flow_hash_fn(skb), True)
        h = skb.hash
        if not h:
            h = int.from_bytes(skb.data[:12].ljust(12, b"\0")[:4], "big") or 1
        h = (h ^ (h << 16)) & 0xFFFF_FFFF
        return ((h * (hi - lo)) >> 32) + lo

    def ip_ident(self, saddr: bytes, daddr: bytes, proto: int) -> int:
        return self.ip_id_fn(saddr, daddr, proto) & 0xFFFF

    def _default_ip_id(self, saddr: bytes, daddr: bytes, proto: int) -> int:
        # KERNEL-DIFF: __ip_select_ident hashes with a per-boot random key; tcemu draws
        # from a PRNG seeded by the network's seed.
        return self._id_rng.getrandbits(16)

    def _default_flow_hash(self, skb: SkBuff) -> int:
        return skb_flow_hash(skb, self.seed)

    # -- programs -----------------------------------------------------------------
    def vm_for(self, program: Program) -> Vm:
        if program.vm is not None and program.vm.env is self.env:
            return program.vm
        vm = self._vms.get(id(program))
        if vm is None:
            vm = Vm(self.env, helpers=program.default_helpers())
            self._vms[id(program)] = vm
        return vm

    def run_program(self, program: Program, skb: SkBuff, owner: str) -> int:
        """Run a tc program on ``skb`` as it stands (the caller pushes/pulls mac_len)."""
        env = self.env
        # One context and packet view per nesting depth (a helper that transmits runs the
        # programs on the way inside this run), re-aimed at this skb for this run.
        depth = env.in_datapath
        views = self._run_views
        if depth == len(views):
            views.append(RunSlot(SkbContext(skb, program.prog_type)))
        slot = views[depth]
        model, vm, run = slot.model, slot.vm, slot.run
        if slot.program is not program or vm is None or run is None or slot.tier != self.tier:
            vm = self.bind_slot(slot, program)
            model, run = slot.model, slot.run
            assert run is not None
        model.skb = skb
        env.in_datapath = depth + 1
        try:
            r0 = run(skb.data) & 0xFFFF_FFFF
        finally:
            env.in_datapath = depth
        state = vm.state
        if state.redirect is not None:
            self.redirect_info, state.redirect = state.redirect, None
        if r0 >> 31:
            r0 -= 1 << 32
        if skb.tstamp_type and not skb.tstamp:
            skb.tstamp_type = 0
        self.last_owner = owner
        if self.trace.enabled:
            chain = vm.last_chain
            names = " -> tail call -> ".join(p.name or "prog" for p in chain) \
                if chain else program.name or "prog"
            self.note(skb, "prog", f"{owner}: {names} ({vm.counter[0]} insns)", r0)
        return r0

    def bind_slot(self, slot: RunSlot, program: Program) -> Vm:
        """Aim ``slot`` at ``program`` on this network's tier (its VM, a context model of
        its type, whether it reads ``tstamp_type``, the inline run)."""
        vm = slot.vm = self.vm_for(program)
        if slot.model.prog_type is not program.prog_type:
            slot.model = SkbContext(slot.model.skb, program.prog_type)
        slot.program = program
        slot.model.tstamp_type_access = TSTAMP_TYPE_OFFSET in program.ctx_reads(slot.model)
        slot.run, slot.tier = vm.datapath_run(program, slot.model, slot.model, self.tier), \
            self.tier
        return vm

    def forget_wires(self) -> None:
        """Forget the frames unlinked Ethernet devices put on their wires (``wire_out``)."""
        for dev in self.wired:
            dev.wire_out.clear()
        self.wired.clear()

    def save_vm_state(self) -> tuple[object, ...]:
        """The shared memory a nested program run may clobber (stacks, ctx, packet)."""
        memory = self.env.memory
        return memory.regions[mem.STACK_RID0:mem.MAPS_RID], memory.packet

    def restore_vm_state(self, saved: tuple[object, ...]) -> None:
        memory = self.env.memory
        regions, packet = saved
        assert isinstance(regions, list)
        memory.regions[mem.STACK_RID0:mem.MAPS_RID] = regions
        memory.packet = cast("mem.PacketHeaders | None", packet)

    # -- actions' view (TcExec) -------------------------------------------------------
    def has_device(self, skb: SkBuff, target: str) -> bool:
        dev = skb.dev
        ns = self.ns_of(dev) if isinstance(dev, NetDev) else self.ns("default")
        found = ns.devices.get(target)
        return found is not None and found.carrier      # tcf_mirred_act: up and carrier

    def mirred(self, skb: SkBuff, target: str, *, ingress: bool, redirect: bool,
               at_ingress: bool) -> int:
        return _redirect.mirred_forward(self, skb, target, ingress=ingress,
                                        redirect=redirect, at_ingress=at_ingress)


def probe_transport(frame: bytes, proto: int, nh: int) -> int | None:
    """``skb_probe_transport_header`` (the flow dissector's transport offset) for IPv4
    and IPv6; None where the dissector finds none.

    KERNEL-DIFF: IPv6 extension headers are not walked.
    """
    if proto == 0x0800 and len(frame) >= nh + 20 and frame[nh] >> 4 == 4:
        ihl = (frame[nh] & 0xF) * 4
        return nh + ihl if ihl >= 20 and len(frame) >= nh + ihl else None
    if proto == 0x86DD and len(frame) >= nh + 40 and frame[nh] >> 4 == 6:
        return nh + 40
    return None


def with_hwaccel_tag(frame: bytes, skb: SkBuff) -> bytes:
    """``frame`` as it would be on the wire (and as AF_PACKET shows it): a
    hardware-accelerated VLAN tag of ``skb`` written back after the MAC addresses."""
    if (skb.vlan_proto or skb.vlan_tci) and len(frame) >= 12:
        tag = skb.vlan_proto.to_bytes(2, "big") + skb.vlan_tci.to_bytes(2, "big")
        return frame[:12] + tag + frame[12:]
    return frame


def set_dev(skb: SkBuff, dev: NetDev) -> None:
    skb.dev = dev
    skb.ifindex = dev.ifindex



def mac_str(mac: bytes) -> str:
    """``aa:bb:cc:dd:ee:ff`` (used by the scenario runner)."""
    return ":".join(f"{b:02x}" for b in mac)


# The datapath functions Stack's methods hand over to live in modules that import this
# one: bound once, here, after everything they import from it is defined (an import
# statement inside a method costs ~0.6 µs per call, per packet on these paths).
from tcemu.net import fib as _fib  # noqa: E402
from tcemu.net import hooks as _hooks  # noqa: E402
from tcemu.net import redirect as _redirect  # noqa: E402
from tcemu.net import rx as _rx  # noqa: E402
from tcemu.net import tx as _tx  # noqa: E402
