"""A device's receive path laid out for its tc configuration: what replay runs per packet.

Python pays for every call and every lookup, and a packet received on a device with a
clsact qdisc takes about a dozen calls between the wire and the verdict (``netif_rx``,
``receive_core``, ``tc_ingress``, ``run_hook``, ``tcf_classify``, ``cls_bpf_classify``,
``run_program``...), each re-reading configuration that did not change since the last
packet.  An :class:`IngressPlan` reads the configuration once: the device's ingress block
as a flat list of its direct-action cls_bpf filters in classification order, and runs
the same steps as those functions, in the same order, inline.  Everything after the
verdict (redirect, drop, delivery, VLAN devices, another round on a peer) is the general
code's (:func:`tcemu.net.hooks.ingress_verdict`, :func:`tcemu.net.rx.after_tc_ingress`).

A plan exists only where it is exact:

* the ingress block's chain 0 holds only cls_bpf filters, all direct-action (a
  direct-action program cannot reach another chain: GOTO_CHAIN is not among its
  verdicts), and no tcx program is attached;
* per packet: the device is up, the trace is off, nothing else is due on the event
  loop, the frame has an Ethernet header that is not an 802.1Q/802.1ad tag (untagging
  is the general path's), and no program is running (the plan is for the top level).

Otherwise :meth:`IngressPlan.arrive` makes no skb (and :meth:`IngressPlan.receive` does
nothing), and the packet takes the general path.  A plan is rebuilt when the network's tc
configuration changes (``TcNet.tc_generation``); a filter whose program or the network's
tier changed in place is bound again at its next run.  ``tests/datapath/test_fastpath.py``
holds the two paths equal packet for packet: verdicts, bytes, every skb field after the
hook, maps and device counters.

This is a second copy of the receive path's first steps, by design: every statement here
names the general function it stands for, and the differential test fails on a slip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu.bpf.testrun import SkbContext
from tcemu.cls.bpf import DA_DECIDES, BpfFilter, owner
from tcemu.cls.chain import ETH_P_ALL
from tcemu.net.hooks import INGRESS_ENDS, clsact_block, ingress_verdict
from tcemu.net.rx import after_tc_ingress, deliver, receive_rounds
from tcemu.net.stack import RunSlot, probe_transport
from tcemu.qdisc.base import TC_ACT_OK, TC_ACT_UNSPEC
from tcemu.skb import ETH_HLEN, ETH_P_IP, VLAN_PROTOS, PktType, SkBuff, eth_protocol, skb_maker

if TYPE_CHECKING:
    from tcemu.cls.chain import TcfProto
    from tcemu.net.tc import TcNet
    from tcemu.netdev import NetDev

__all__ = ["IngressPlan", "ingress_plan"]

_HOST, _BROADCAST, _MULTICAST, _OTHERHOST = (PktType.HOST, PktType.BROADCAST, PktType.MULTICAST,
                                             PktType.OTHERHOST)


class IngressPlan:
    """One device's receive path up to and including its tc ingress hook.

    :meth:`receive` is the whole of it for one frame; replay, which counts verdicts
    itself, calls its parts: :meth:`arrive`, :meth:`hook` and
    :meth:`finish`, with the hook observers called in between."""

    __slots__ = ("clsact", "dev", "exact", "filters", "generation", "st")

    def __init__(self, st: TcNet, dev: NetDev,
                 filters: list[tuple[TcfProto, BpfFilter]] | None) -> None:
        self.st = st
        self.dev = dev
        self.clsact = dev.clsact
        self.generation = st.tc_generation
        self.exact = filters is not None          # False: every packet takes the general path
        self.filters = tuple((tp, f, RunSlot(SkbContext(SkBuff(bytearray()), f.program.prog_type)))
                             for tp, f in filters or ())

    def receive(self, frame: bytes) -> bool:
        """``Net.receive(dev, frame)`` with the event loop run: True when done here,
        False (nothing done) when the packet must take the general path."""
        skb = self.arrive(frame)
        if skb is None:
            return False
        st, dev = self.st, self.dev
        verdict = self.hook(skb)
        for observe in st.hook_observers:
            observe(dev, skb, "ingress", verdict)
        self.finish(skb, verdict)
        return True

    def arrive(self, frame: bytes) -> SkBuff | None:
        """The skb of ``frame`` received on the device as cls_bpf runs the first program
        on it, or None (nothing done) when the plan is not exact for this frame now (see
        the module's description): what ``new_skb``, ``eth_type_trans`` (the 14-byte
        pull), ``__netif_receive_skb_core`` (counters, first round) and
        ``sch_handle_ingress`` make of it, with the MAC header pushed back, built in that
        state rather than pulled and pushed again."""
        st, dev = self.st, self.dev
        queue = st.loop.queue
        size = len(frame)
        if not self.exact or (queue and queue[0].at <= st.clock.now_ns()) or \
                st.trace.enabled or not dev.up or size < ETH_HLEN:
            return None
        ethertype = frame[12] << 8 | frame[13]
        if ethertype in VLAN_PROTOS or st.env.in_datapath or dev.tcx["ingress"]:
            return None
        # eth_type_trans: pkt_type against the device, the protocol
        if frame[0] & 1:
            pkt_type = _BROADCAST if frame.startswith(dev.broadcast) else _MULTICAST
        elif not frame.startswith(dev.address):
            pkt_type = _OTHERHOST
        else:
            pkt_type = _HOST
        protocol = ethertype if ethertype >= 0x0600 else eth_protocol(frame)
        # the headers as the skb arrives at the program: MAC at data (mac_header 0, the
        # default), network after it (ETH_HLEN, the default), the transport header probed
        # by new_skb, or the network header where the receive path found none
        # (probe_transport's IPv4 case inline: a version 4 header of 20 bytes or more)
        if not (ethertype == ETH_P_IP and size >= 34 and (vihl := frame[14]) >> 4 == 4
                and 34 <= (transport := ETH_HLEN + (vihl & 0xF) * 4) <= size):
            transport = probe_transport(frame, ethertype, ETH_HLEN) or ETH_HLEN
        stats = dev.stats                       # the driver's counters
        stats.rx_packets += 1
        stats.rx_bytes += size if dev.stats_l2 else size - ETH_HLEN
        st.pkt_ids += 1                         # Stack.new_pkt_id
        # wire_len: sch_handle_ingress's, with L2 pulled
        return _received(bytearray(frame), st.pkt_ids, dev, dev.ifindex, dev.ifindex,
                         pkt_type, protocol, transport, ETH_HLEN, size - ETH_HLEN, True)

    def hook(self, skb: SkBuff) -> int:
        """``tc_run`` on the skb :meth:`arrive` made: tcf_classify over the filters (each
        program run as ``Stack.run_program`` runs it, at the top level), the header pulled
        back, ``tc_index``; the verdict.  The hook observers are the caller's."""
        st = self.st
        env = st.env
        st.last_owner = ""
        verdict, classid = TC_ACT_UNSPEC, None
        pushed = True               # the skb is as cls_bpf pushes it for the first filter
        for tp, f, slot in self.filters:
            if tp.protocol != ETH_P_ALL:
                wanted = skb.vlan_proto if skb.vlan_proto or skb.vlan_tci else skb.protocol
                if tp.protocol != wanted:
                    continue
            skb.tc_classid = f.classid & 0xFFFF
            if pushed:
                pushed = False
            else:
                skb.push(skb.mac_len)
            # Stack.run_program at depth 0, inline
            run, vm = slot.run, slot.vm
            if slot.program is not f.program or run is None or slot.tier != st.tier:
                vm = st.bind_slot(slot, f.program)   # (first run; a filter or tier changed)
                run = slot.run
                assert run is not None
            assert vm is not None
            slot.model.skb = skb
            env.in_datapath = 1
            try:
                r0 = run(skb.data) & 0xFFFF_FFFF
            finally:
                env.in_datapath = 0
            state = vm.state
            if state.redirect is not None:
                st.redirect_info, state.redirect = state.redirect, None
            if r0 >> 31:
                r0 -= 1 << 32
            if skb.tstamp_type and not skb.tstamp:
                skb.tstamp_type = 0
            st.last_owner = f.owner_label or owner(tp, f)
            # back in cls_bpf_classify
            skb.pull(skb.mac_len)
            classid = (f.classid & 0xFFFF_0000) | skb.tc_classid      # TC_H_MAJ
            if r0 in DA_DECIDES:            # cls_bpf_exec_opcode
                verdict = r0
                break
        if pushed:
            skb.pull(ETH_HLEN)
        if verdict == TC_ACT_OK and classid is not None:
            skb.tc_index = classid & 0xFFFF
        st.hook_args = ("ingress", st.last_owner, verdict)
        return verdict

    def finish(self, skb: SkBuff, verdict: int) -> None:
        """What follows the hook (after its observers): the verdict's consequences, then
        the events the packet left due on the loop."""
        st = self.st
        if verdict in INGRESS_ENDS or skb.vlan_proto or skb.vlan_tci:
            outcome, verdict = ingress_verdict(st, self.dev, skb, verdict)
            after = after_tc_ingress(st, self.dev, skb, outcome, verdict)
            if not isinstance(after, int):
                receive_rounds(st, after, skb)
        else:           # ingress_verdict "continue", after_tc_ingress without a VLAN tag
            skb.redirected = False
            deliver(st, self.dev, skb, True)
        queue = st.loop.queue
        if queue:
            st.loop.run_until(st.clock.now_ns())


_received = skb_maker("pkt_id", "dev", "ifindex", "ingress_ifindex", "pkt_type", "protocol",
                      "transport_header", "mac_len", "wire_len", "tc_at_ingress")


def ingress_plan(st: TcNet, dev: NetDev) -> IngressPlan:
    """The plan of ``dev``'s receive path for the tc configuration of now (one that is
    not ``exact`` where only the general path is: see the module's description)."""
    plan = st.ingress_plans.get(dev)
    if plan is not None and plan.generation == st.tc_generation and \
            plan.clsact is dev.clsact:
        return plan
    plan = st.ingress_plans[dev] = IngressPlan(st, dev, _da_filters(dev))
    return plan


def _da_filters(dev: NetDev) -> list[tuple[TcfProto, BpfFilter]] | None:
    """The (tcf_proto, filter) pairs of the ingress block in classification order when
    all are direct-action cls_bpf filters and no tcx program is attached, else None."""
    block = clsact_block(dev, "ingress")
    if block is None or dev.tcx["ingress"]:
        return None
    chain = block.chains.get(0)
    filters: list[tuple[TcfProto, BpfFilter]] = []
    for tp in chain.protos if chain is not None else ():
        for f in tp.filters:
            if tp.kind != "bpf" or not isinstance(f, BpfFilter) or not f.da:
                return None
            filters.append((tp, f))
    return filters
