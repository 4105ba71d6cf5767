"""The receive path (``net/core/dev.c`` ``netif_rx``, ``__netif_receive_skb_core``,
``sch_handle_ingress``; kernel-semantics.md section 3.1).

A driver hands a frame at L2 to :func:`netif_rx`: ``eth_type_trans`` (pkt_type, protocol,
pull of the 14-byte header), then the backlog (the event loop) runs :func:`receive_core`:

1. ``skb_iif`` = the device, network header at data, ``mac_len``;
2. ``skb_vlan_untag`` for an 802.1Q/802.1ad protocol (one tag to hw-accel);
3. taps (the capture sees the frame before tc);
4. tc ingress: ``wire_len = len`` (L2 already pulled), ``tc_at_ingress``, tcx then the
   clsact/ingress filters, and the verdict (section 2.5); REDIRECT runs
   ``skb_do_redirect`` and a peer redirect restarts the path on the peer;
5. ``vlan_do_receive``: a hw-accel tag switches to the matching VLAN device (another
   round) or marks the frame OTHERHOST;
6. local delivery: VXLAN decapsulation for a UDP port of a VXLAN device, else the host
   stack's socket list; PACKET_OTHERHOST is dropped there.  An IPv4 datagram for a local
   address is then answered as by a kernel where nothing listens (ICMP errors, echo
   replies, TCP resets: :mod:`tcemu.net.icmp`).

KERNEL-DIFF: there is no IP layer beyond this: no forwarding, no sockets other than the
device's delivery list and VXLAN (every port is closed), no IPv6 answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu import csum
from tcemu.net.hooks import tc_ingress
from tcemu.net.icmp import ip_local_deliver
from tcemu.net.ipfrag import ip_defrag, is_fragment
from tcemu.net.stack import set_dev
from tcemu.netdev import NetDev, Vlan, Vxlan
from tcemu.netdev.vxlan import vxlan_decap
from tcemu.skb import (
    ETH_P_IP,
    VLAN_PROTOS,
    PktType,
    eth_type_trans,
    skb_scrub_packet,
    skb_vlan_untag,
)

if TYPE_CHECKING:
    from tcemu.net.stack import Stack
    from tcemu.skb import SkBuff

__all__ = ["after_tc_ingress", "netif_rx", "receive_core", "receive_rounds"]

NET_RX_SUCCESS, NET_RX_DROP = 0, 1
_HANDLED = frozenset({ETH_P_IP, 0x0806, 0x86DD})     # ip_rcv, arp_rcv, ipv6_rcv
_OTHERHOST = PktType.OTHERHOST


def netif_rx(st: Stack, dev: NetDev, skb: SkBuff) -> int:
    """A driver received ``skb`` (data at L2): ``eth_type_trans`` now, the rest from the
    backlog (a later event at the same time)."""
    if not dev.up:
        dev.stats.rx_dropped += 1
        st.event(skb, dev, "drop", "receiving device is down")
        return NET_RX_DROP
    set_dev(skb, dev)
    skb.tc_at_ingress = False
    if skb.len < 14:
        st.event(skb, dev, "drop", "runt frame")
        return NET_RX_DROP
    eth_type_trans(skb, dev.address, dev.broadcast)
    if st.trace.enabled:
        st.event(skb, dev, "rx", f"{skb.len + 14} bytes, protocol {skb.protocol:#06x}, "
                 f"pkt_type {PktType(skb.pkt_type).name}")
    st.loop.soon(lambda: receive_core(st, dev, skb))
    return NET_RX_SUCCESS


def receive_core(st: Stack, dev: NetDev, skb: SkBuff, *, tap: bool = True) -> int:
    """``__netif_receive_skb_core`` on data after the L2 header.  ``tap=False`` skips the
    capture of the first round only (replay, which forgets captures anyway)."""
    # the driver's rx counters (veth: the peer's tx; lo and vxlan from the network
    # header); frames redirected or mirrored to ingress are not a driver's
    if not skb.redirected:          # dev.stats.rx(), inline
        stats = dev.stats
        stats.rx_packets += 1
        stats.rx_bytes += len(skb.data) - (skb.mac_header if dev.stats_l2 else 0)
    return receive_rounds(st, dev, skb, tap=tap)


def receive_rounds(st: Stack, dev: NetDev, skb: SkBuff, *, tap: bool = True) -> int:
    """The rounds of ``__netif_receive_skb_core`` (another one for a VLAN device or a
    peer a tc ingress program redirected to), after the driver's counters."""
    while True:
        skb.dev = dev                   # set_dev
        skb.ifindex = skb.ingress_ifindex = dev.ifindex
        skb.network_header = 0
        if skb.transport_header is None:
            skb.transport_header = 0
        skb.mac_len = -skb.mac_header
        if skb.protocol in VLAN_PROTOS and not skb_vlan_untag(skb):
            st.event(skb, dev, "drop", "truncated VLAN header")
            return NET_RX_DROP
        cap = st.tap(dev, skb, "in") if tap else None
        tap = True                      # later rounds (another device) are captured
        outcome, verdict = tc_ingress(st, dev, skb)
        if verdict is not None and cap is not None:
            cap.verdict, cap.tc = verdict, st.hook_detail
        after = after_tc_ingress(st, dev, skb, outcome, verdict)
        if isinstance(after, int):
            return after
        dev = after


def after_tc_ingress(st: Stack, dev: NetDev, skb: SkBuff, outcome: str,
                     verdict: int | None) -> int | NetDev:
    """What follows tc ingress (``tc_ingress``'s outcome): NET_RX_* when the packet's
    path ends here, or the device whose round comes next (a peer redirect, a VLAN)."""
    if outcome == "done":
        return NET_RX_SUCCESS
    if outcome == "another":
        assert isinstance(skb.dev, NetDev)
        return skb.dev
    skb.redirected = False
    # tc ingress and a VLAN tag hand the frame to the taps first (pt_prev flushed)
    served = verdict is not None
    if skb.vlan_proto or skb.vlan_tci:          # skb_vlan_tag_present
        served = True
        upper = vlan_do_receive(st, dev, skb)
        if upper is not None:
            return upper
    return deliver(st, dev, skb, served)


def vlan_do_receive(st: Stack, dev: NetDev, skb: SkBuff) -> NetDev | None:
    """``vlan_do_receive``: the VLAN device for the hw-accel tag, or None (tag cleared;
    a non-zero VID with no device makes the frame OTHERHOST).  A VID-0 (802.1p) tag over
    another tag is stripped and the inner tag looked up in turn (``check_vlan_id`` in
    ``__netif_receive_skb_core``)."""
    while True:
        vid = skb.vlan_tci & 0xFFF
        upper = dev.vlans.get((skb.vlan_proto, vid))
        if upper is not None and upper.up:
            break
        if vid:
            skb.pkt_type = PktType.OTHERHOST
        skb.vlan_proto = skb.vlan_tci = 0
        if vid or skb.protocol not in VLAN_PROTOS or not skb_vlan_untag(skb):
            return None
    mac = skb.head[-14:-8] if len(skb.head) >= 14 else b""
    if skb.pkt_type == PktType.OTHERHOST and mac == upper.address:
        skb.pkt_type = PktType.HOST
    if isinstance(upper, Vlan):
        prio = upper.ingress_qos_map.get(skb.vlan_tci >> 13, 0)
        if prio != skb.priority:                # (a rarely set field: see _SkbRare)
            skb.priority = prio
    upper.stats.rx(len(skb.data))            # vlan_do_receive: from the network header
    if st.trace.enabled:
        st.event(skb, dev, "vlan", f"vid {vid} -> {upper.name}")
    skb.vlan_proto = skb.vlan_tci = 0
    return upper


def deliver(st: Stack, dev: NetDev, skb: SkBuff, served: bool = False) -> int:
    """Protocol handlers: VXLAN's UDP socket, else the host; OTHERHOST is dropped.

    A protocol without a handler (IPv4, ARP and IPv6 have one) counts rx_dropped when
    no tap is left to take the frame (``served``: the taps got it before tc ingress or
    the VLAN code; tcemu's devices are always tapped, as the kernel backend's are)."""
    if served and skb.protocol not in _HANDLED:
        dev.stats.rx_dropped += 1
    if skb.pkt_type == _OTHERHOST:
        if st.trace.enabled:
            st.event(skb, dev, "drop", "PACKET_OTHERHOST (not for this host)")
        return NET_RX_DROP
    if skb.protocol == ETH_P_IP and not _defragmented(st, dev, skb):
        return NET_RX_SUCCESS
    vxlan = _vxlan_socket(st, dev, skb)
    if vxlan is not None:
        return vxlan_rcv(st, vxlan, skb)
    if not dev.delivered:
        st.delivered_to.add(dev)        # (replay forgets deliveries packet by packet)
    dev.delivered.append(skb)
    st.event(skb, dev, "deliver", "to the host stack")
    ip_local_deliver(st, dev, skb)
    return NET_RX_SUCCESS


def _defragmented(st: Stack, dev: NetDev, skb: SkBuff) -> bool:
    """``ip_local_deliver``'s ``ip_defrag``: False when ``skb`` is a fragment of a local
    datagram that is not complete yet (queued).  Other frames pass untouched."""
    data = skb.data
    if len(data) < 20 or data[0] >> 4 != 4 or not is_fragment(data) \
            or csum.fold(csum.partial(data[:(data[0] & 0xF) * 4])) not in (0, 0xFFFF):
        return True
    ns = st.ns_of(dev)
    if not ns.fib.is_local_packed(bytes(data[16:20])):
        return True
    if ip_defrag(ns.frags, skb):
        st.event(skb, dev, "deliver", f"ip_defrag: datagram of {skb.len} bytes reassembled")
        return True
    st.event(skb, dev, "deliver", "ip_defrag: fragment queued for reassembly")
    return False


def _vxlan_socket(st: Stack, dev: NetDev, skb: SkBuff) -> Vxlan | None:
    """The VXLAN device whose UDP socket (in this netns) takes this datagram."""
    data = skb.data
    if skb.protocol != ETH_P_IP or len(data) < 28 or data[0] >> 4 != 4 or data[9] != 17:
        return None
    ihl = (data[0] & 0xF) * 4
    if len(data) < ihl + 8:
        return None
    dport = data[ihl + 2] << 8 | data[ihl + 3]
    sockets = [cand for ns in st.namespaces.values() for cand in ns.vxlans()
               if cand.underlay == dev.netns and cand.dstport == dport and cand.up]
    if not sockets or not st.ns_of(dev).fib.is_local_packed(bytes(data[16:20])):
        return None
    vni = int.from_bytes(data[ihl + 12:ihl + 15], "big") if len(data) >= ihl + 16 else -1
    # One socket per port takes every datagram to it (vxlan_rcv): a VNI no device of
    # the socket serves is dropped there, never answered as a closed port.
    found: Vxlan | None = None
    for cand in sockets:
        if not cand.external and cand.vni == vni:
            return cand
        if found is None or (cand.external and not found.external):
            found = cand
    return found


def ecn_decapsulate(outer_tos: int, inner: SkBuff) -> bool:
    """``IP_ECN_decapsulate`` on the inner frame (data at its L2): an outer CE marks an
    ECT inner packet CE (IPv4 checksum updated); on a Not-ECT inner packet it drops."""
    if outer_tos & 3 != 3:
        return True
    proto = int.from_bytes(inner.data[12:14], "big")
    if proto == ETH_P_IP and inner.len >= 34:
        tos = inner.data[15]
        if tos & 3 == 0:
            return False
        if tos & 3 != 3:
            from tcemu import csum

            old = int.from_bytes(inner.data[14:16], "big")
            new = old | 3
            check = int.from_bytes(inner.data[24:26], "little")
            fixed = csum.replace2(check, int.from_bytes(old.to_bytes(2, "big"), "little"),
                                  int.from_bytes(new.to_bytes(2, "big"), "little"))
            inner.data[15] = tos | 3
            inner.data[24:26] = fixed.to_bytes(2, "little")
        return True
    if proto == 0x86DD and inner.len >= 54:
        word = int.from_bytes(inner.data[14:16], "big")
        if (word >> 4) & 3 == 0:
            return False
        inner.data[14:16] = (word | 0x30).to_bytes(2, "big")
    return True


def vxlan_rcv(st: Stack, vx: Vxlan, skb: SkBuff) -> int:
    """``vxlan_rcv``: strip the outer headers, attach RX metadata, receive on ``vx``."""
    data = skb.data
    ihl = (data[0] & 0xF) * 4
    outer = bytes(data[:20]) + bytes(data[ihl:ihl + 8])
    vni = int.from_bytes(data[ihl + 12:ihl + 15], "big")
    del skb.data[:ihl + 8]
    # iptunnel_pull_header: scrub (xnet), no hash, no VLAN tag, queue 0, PACKET_HOST
    skb_scrub_packet(skb, vx.netns != vx.underlay)
    skb.clear_hash()
    skb.vlan_proto, skb.vlan_tci = 0, 0
    skb.reset_rare("queue_mapping")                 # 0
    skb.ip_summed = 0
    inner = vxlan_decap(vx, skb, outer)
    if inner is None:
        st.event(skb, vx, "drop", "bad VXLAN header or VNI")
        return NET_RX_DROP
    if bytes(inner.data[6:12]) == vx.address:
        st.event(skb, vx, "drop", "VXLAN loop (source MAC is the device's)")
        return NET_RX_DROP
    if not ecn_decapsulate(outer[1], inner):
        st.event(skb, vx, "drop", "outer CE on a non-ECT inner packet")
        return NET_RX_DROP
    inner.mac_header, inner.network_header, inner.transport_header = 0, 14, None
    inner.mac_len = 0
    if st.trace.enabled:
        st.event(inner, vx, "decap", f"vni {vni}")
    return netif_rx(st, vx, inner)
