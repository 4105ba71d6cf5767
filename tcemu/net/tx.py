"""The transmit path (``net/core/dev.c`` ``__dev_queue_xmit``; kernel-semantics.md 3.2).

1. mac header at data, ``tc_at_ingress = 0``, ``wire_len = len``;
2. tc egress (tcx, then clsact egress; no push/pull) and its verdict;
3. TX queue selection overwrites ``queue_mapping`` (single queue: 0);
4. the root qdisc (enqueue, then dequeue while packets may leave; a timer for later) or,
   on a ``noqueue`` device, straight on with the recursion limit of 8;
5. ``validate_xmit_skb``: a hw-accel VLAN tag goes into the payload on a device without
   VLAN TX offload, a CHECKSUM_PARTIAL checksum is finished on one without checksum
   offload;
6. taps (the capture sees post-egress bytes), then the driver.

A device without carrier (a veth whose peer is down) has the noop qdisc: after tc
egress the packet is dropped with NET_XMIT_CN, before the taps.

Also the IPv4 output a tunnel uses (route, source address, IPv4 fragmentation when the
route's MTU is exceeded, neighbour, Ethernet header).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from tcemu.net.hooks import tc_egress
from tcemu.net.ipfrag import ip_fragment
from tcemu.net.stack import XMIT_RECURSION_LIMIT, set_dev
from tcemu.skb import ETH_HLEN, ETH_P_IP, skb_checksum_help, vlan_hwaccel_push_inside

if TYPE_CHECKING:
    from tcemu.net.stack import Stack
    from tcemu.netdev import NetDev
    from tcemu.route import IpAddr
    from tcemu.skb import SkBuff

__all__ = ["dev_queue_xmit", "ip_tunnel_output", "neigh_ha", "neigh_output", "xmit_one"]

NET_XMIT_SUCCESS, NET_XMIT_DROP, NET_XMIT_CN = 0, 1, 2
ENETDOWN = 100


def dev_queue_xmit(st: Stack, dev: NetDev, skb: SkBuff) -> int:
    if not dev.up:
        return st.drop(skb, dev, "transmitting device is down")
    set_dev(skb, dev)
    skb.mac_header = 0
    skb.tc_at_ingress = False
    skb.wire_len = skb.len
    if st.trace.enabled:
        st.event(skb, dev, "xmit", f"{skb.len} bytes")
    go_on, rc, verdict = tc_egress(st, dev, skb)
    if not go_on:
        return rc
    detail = st.hook_detail if verdict is not None else ""
    if not dev.carrier:
        # dev_deactivate put the noop qdisc on every TX queue (KERNEL-DIFF: at once; the
        # kernel's linkwatch may take up to a second after the carrier went off)
        st.drop(skb, dev, "no carrier: the noop qdisc drops")
        return NET_XMIT_CN
    skb.reset_rare("queue_mapping")                 # 0
    qdisc = dev.qdisc
    if qdisc is not None and not getattr(qdisc, "bypass", False):
        rc = qdisc.enqueue(skb, st.clock.now_ns())
        if st.trace.enabled:
            st.event(skb, dev, "qdisc", f"enqueue {qdisc.kind} -> {rc}")
        skb.tc_seen = (verdict, detail) if verdict is not None else None
        qdisc_run(st, dev)
        return rc
    if st.xmit_depth > XMIT_RECURSION_LIMIT:
        return st.drop(skb, dev, "dead loop on virtual device (xmit recursion limit)")
    return xmit_one(st, dev, skb, verdict, detail)


def qdisc_run(st: Stack, dev: NetDev) -> None:
    """Dequeue what may leave now; arm a timer for what may leave later."""
    qdisc = dev.qdisc
    if qdisc is None:
        return
    now = st.clock.now_ns()
    while True:
        skb = qdisc.dequeue(now)
        if skb is None:
            break
        if st.trace.enabled:
            st.event(skb, dev, "qdisc", f"dequeue {qdisc.kind}")
        seen, skb.tc_seen = skb.tc_seen, None
        xmit_one(st, dev, skb, *(seen or (None, "")))
    when = qdisc.next_event(now)
    if when is not None and st.qdisc_timers.get(id(dev)) != when:
        st.qdisc_timers[id(dev)] = when

        def fire() -> None:
            if st.qdisc_timers.get(id(dev)) == when:
                del st.qdisc_timers[id(dev)]
            qdisc_run(st, dev)

        st.loop.schedule(when, fire)


def xmit_one(st: Stack, dev: NetDev, skb: SkBuff, verdict: int | None,
             detail: str = "") -> int:
    """``validate_xmit_skb``, the taps, then the driver."""
    if skb.vlan_present and not dev.features.tx_vlan_offload:
        vlan_hwaccel_push_inside(skb)
    if not dev.features.tx_csum:
        skb_checksum_help(skb)
    cap = st.tap(dev, skb, "out")
    if verdict is not None:
        cap.verdict, cap.tc = verdict, detail
    # drivers count what they passed on (veth_xmit, loopback_xmit, vlan, iptunnel_xmit
    # stats); loopback and the tunnels count from the network header (stats_l2)
    length = skb.len if dev.stats_l2 else skb.len - ETH_HLEN
    st.xmit_depth += 1
    try:
        rc = dev.xmit(st, skb)
    finally:
        st.xmit_depth -= 1
    if rc in (NET_XMIT_SUCCESS, NET_XMIT_CN):
        dev.stats.tx_packets += 1
        dev.stats.tx_bytes += length
    return rc


def neigh_ha(st: Stack, dev: NetDev, nexthop: IpAddr) -> bytes:
    """The neighbour's link-layer address: a permanent entry, else the device's own
    address, as ``arp_constructor``/``ndisc_constructor`` give an ``IFF_NOARP`` (or
    loopback) device's entries (``NUD_NOARP``).

    KERNEL-DIFF: tcemu has no ARP/ND and every device behaves as ``IFF_NOARP``, as both
    kernel harnesses deploy them; a kernel device doing ARP would queue the packet and
    send a request instead."""
    mac = st.ns_of(dev).fib.neigh(dev.ifindex, nexthop)
    return mac if mac is not None else dev.address


def neigh_output(st: Stack, dev: NetDev, skb: SkBuff, nexthop: IpAddr,
                 protocol: int) -> int:
    """``neigh_output``: the Ethernet header from the neighbour (data at L3)."""
    mac = neigh_ha(st, dev, nexthop)
    skb.data[0:0] = mac + dev.address + protocol.to_bytes(2, "big")
    skb.network_header += 14
    if skb.transport_header is not None:
        skb.transport_header += 14
    skb.mac_header = 0
    skb.protocol = protocol
    return dev_queue_xmit(st, dev, skb)


def ip_tunnel_output(st: Stack, netns: str, skb: SkBuff, daddr: bytes, saddr: bytes,
                     build: Callable[[SkBuff, bytes, int], None]) -> int:
    """Route ``daddr`` in ``netns``, let ``build`` add the outer IPv4 header, then send."""
    ns = st.ns(netns)
    dst = ipaddress.IPv4Address(daddr)
    route = ns.fib.lookup(dst)
    sender = skb.dev
    if route is None or route.type not in {"unicast", "local"} \
            or route.ifindex is None:
        st.note(skb, "drop", f"no route to {dst} in netns {netns}")
        return NET_XMIT_DROP
    out = ns.by_index[route.ifindex]
    src = saddr if any(saddr) else None
    if src is None:
        pref = ns.fib.prefsrc(route, dst)
        if pref is None:
            st.note(skb, "drop", f"no source address for {dst} in netns {netns}")
            return NET_XMIT_DROP
        src = pref.packed
    build(skb, src, st.ip_ident(src, daddr, 17))
    skb.realm = route.realm
    if sender is not None and st.trace.enabled:
        st.note(skb, "encap", f"IPv4 {ipaddress.IPv4Address(src)} -> {dst} via {out.name}")
    nexthop = route.via or dst
    if skb.len <= out.mtu:
        return neigh_output(st, out, skb, nexthop, ETH_P_IP)
    # ip_finish_output: longer than the route's MTU -> ip_fragment
    frags = ip_fragment(skb, out.mtu)
    if frags is None:
        # DF set: ICMP fragmentation needed to the source, this host (over lo)
        from tcemu.net.icmp import icmp_frag_needed

        st.note(skb, "drop", f"{skb.len} bytes over the MTU of {out.name} with DF set")
        icmp_frag_needed(st, out, skb, out.mtu)
        return NET_XMIT_DROP
    rc = NET_XMIT_SUCCESS
    for frag in frags:
        rc = neigh_output(st, out, frag, nexthop, ETH_P_IP)
    return rc
