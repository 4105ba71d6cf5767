"""Redirects: ``skb_do_redirect`` (``net/core/filter.c``), ``bpf_clone_redirect`` and
``tcf_mirred_forward`` (kernel-semantics.md sections 3.4 and 4.4).

``skb_do_redirect`` consumes the redirect info the last ``bpf_redirect*`` call recorded:

* egress (``__bpf_tx_skb``): recursion limit 8, tstamp cleared, the target's
  ``dev_queue_xmit`` (its tc egress runs);
* ingress (``BPF_F_INGRESS``, ``__bpf_rx_skb``): ``__dev_forward_skb`` without the MTU
  check (scrub across netns, priority 0, ``eth_type_trans`` on the target), then the
  target's receive path from the backlog;
* peer (``bpf_redirect_peer``, ingress only): the veth's peer in another netns, scrubbed
  without xnet; the receive path restarts there at once (-EAGAIN to the hook);
* neigh (``bpf_redirect_neigh`` without parameters): the L2 header is replaced from a route
  and neighbour lookup in the target's netns and the target transmits.

A missing target, a frame without a MAC header, or a peer redirect at egress drops.
"""

from __future__ import annotations

import errno as err
import ipaddress
from typing import TYPE_CHECKING

from tcemu.net import rx as _rx
from tcemu.net import tx as _tx
from tcemu.net.hooks import EAGAIN
from tcemu.net.stack import XMIT_RECURSION_LIMIT, set_dev
from tcemu.netdev import NetDev, Veth, dev_forward_skb
from tcemu.skb import ETH_HLEN, ETH_P_IP, ETH_P_IPV6, skb_scrub_packet

if TYPE_CHECKING:
    from tcemu.bpf.vm import Vm
    from tcemu.net.stack import Stack
    from tcemu.skb import SkBuff

__all__ = ["clone_redirect", "mirred_forward", "skb_do_redirect"]

BPF_F_INGRESS = 1
NET_XMIT_DROP = 1


def _target(st: Stack, skb: SkBuff, ifindex: int) -> NetDev | None:
    return st.ns_of(st.dev_of(skb)).by_index.get(ifindex)


def skb_do_redirect(st: Stack, skb: SkBuff) -> int:
    info, st.redirect_info = st.redirect_info, None
    here = skb.dev
    assert isinstance(here, NetDev)
    if info is None:
        st.event(skb, here, "drop", "TC_ACT_REDIRECT without bpf_redirect()")
        return -err.EINVAL
    kind, ifindex, flags = info
    target = _target(st, skb, ifindex)
    if target is None:
        st.event(skb, here, "drop", f"redirect to unknown ifindex {ifindex}")
        return -err.EINVAL
    if kind == "peer":
        return _redirect_peer(st, skb, here, target)
    if kind == "neigh":
        return _redirect_neigh(st, skb, here, target)
    return bpf_redirect(st, skb, here, target, bool(flags & BPF_F_INGRESS))


def bpf_redirect(st: Stack, skb: SkBuff, here: NetDev, target: NetDev, ingress: bool) -> int:
    """``__bpf_redirect_common`` (data at the mac header)."""
    if skb.mac_header >= skb.network_header or not skb.len:
        st.event(skb, here, "drop", "redirect of a frame without a MAC header")
        return -err.ERANGE
    direction = "ingress" if ingress else "egress"
    if st.trace.enabled:
        st.event(skb, here, "redirect", f"{direction} {target.qualified}")
    skb.redirected, skb.from_ingress = True, skb.tc_at_ingress
    if ingress:   # __bpf_rx_skb: NET_RX_SUCCESS or NET_RX_DROP
        return dev_forward_skb(st, target, skb, here, check_mtu=False)
    if st.xmit_depth > XMIT_RECURSION_LIMIT:
        st.event(skb, here, "drop", "redirect recursion limit")
        return -err.ENETDOWN
    if not skb.tstamp_type:
        skb.reset_rare("tstamp")                    # 0
    st.xmit_depth += 1         # dev_xmit_recursion_inc around dev_queue_xmit
    try:
        return st.dev_queue_xmit(target, skb)
    finally:
        st.xmit_depth -= 1


def _redirect_peer(st: Stack, skb: SkBuff, here: NetDev, target: NetDev) -> int:
    peer = target.peer if isinstance(target, Veth) else None
    if not skb.tc_at_ingress or peer is None or not peer.up or peer.netns == here.netns:
        st.event(skb, here, "drop", f"redirect_peer via {target.name} not possible")
        return -err.EINVAL
    if st.trace.enabled:
        st.event(skb, here, "redirect", f"peer {peer.qualified}")
    set_dev(skb, peer)
    peer.stats.rx(skb.len)          # dev_sw_netstats_rx_add (data pushed to the MAC header)
    skb_scrub_packet(skb, False)
    return -EAGAIN


def _redirect_neigh(st: Stack, skb: SkBuff, here: NetDev, target: NetDev) -> int:
    """``__bpf_redirect_neigh``: with a ``struct bpf_redir_neigh`` nexthop the neighbour
    of that address on the target; without, a route lookup in the target's netns."""
    if skb.mac_header >= skb.network_header or skb.data[0] & 1:
        st.event(skb, here, "drop", "redirect_neigh without unicast MAC header")
        return -err.ERANGE
    proto = skb.protocol
    l3 = bytes(skb.data[skb.network_header:])
    if proto == ETH_P_IP and len(l3) >= 20:
        dst: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(l3[16:20])
    elif proto == ETH_P_IPV6 and len(l3) >= 40:
        dst = ipaddress.IPv6Address(l3[24:40])
    else:
        st.event(skb, here, "drop", "redirect_neigh of a non-IP packet")
        return -err.EINVAL
    nexthop = _given_nexthop(st.redirect_nexthop)
    if st.redirect_nexthop and nexthop is None:
        st.event(skb, here, "drop", "redirect_neigh: bad nexthop family")
        return -err.EINVAL
    if nexthop is None:
        fib = st.ns_of(target).fib
        route = fib.lookup(dst, oif=target.ifindex)
        if route is None or route.ifindex != target.ifindex:
            st.event(skb, here, "drop", f"redirect_neigh: no route to {dst} via "
                     f"{target.name}")
            return -err.EINVAL
        nexthop = route.via or dst
    if st.trace.enabled:
        st.event(skb, here, "redirect", f"neigh {target.qualified} nexthop {nexthop}")
    del skb.data[:skb.network_header]
    skb.network_header = 0
    if skb.transport_header is not None:
        skb.transport_header = max(skb.transport_header - ETH_HLEN, 0)
    if not skb.tstamp_type:
        skb.reset_rare("tstamp")                    # 0
    rc = _tx.neigh_output(st, target, skb, nexthop, proto)
    return 0 if rc == 0 else -err.ENETDOWN


def _given_nexthop(raw: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of a ``struct bpf_redir_neigh`` (nh_family u32, then the address)."""
    if len(raw) < 20:
        return None
    family = int.from_bytes(raw[:4], "little")
    if family == 2:
        return ipaddress.IPv4Address(raw[4:8])
    if family == 10:
        return ipaddress.IPv6Address(raw[4:20])
    return None


def clone_redirect(st: Stack, vm: Vm, skb: SkBuff, ifindex: int, flags: int) -> int:
    """``bpf_clone_redirect``: send a clone now; the original goes on with the program."""
    here = st.dev_of(skb)
    target = _target(st, skb, ifindex)
    if target is None:
        return -err.EINVAL
    clone = skb.clone()
    clone.pkt_id = st.new_pkt_id()
    st.trace.emit(st.clock.now_ns(), clone.pkt_id, "clone", here.netns, here.name,
                  f"bpf_clone_redirect to {target.qualified}", parent=skb.pkt_id)
    saved = st.save_vm_state()
    try:
        rc = bpf_redirect(st, clone, here, target, bool(flags & BPF_F_INGRESS))
    finally:
        st.restore_vm_state(saved)
    return rc


def mirred_forward(st: Stack, skb: SkBuff, target_name: str, *, ingress: bool,
                   redirect: bool, at_ingress: bool) -> int:
    """``tcf_mirred_to_dev`` after the checks: put data where the target expects it and
    hand it over (``dev_queue_xmit``, ``netif_rx`` from egress, or the receive path now)."""
    here = skb.dev
    assert isinstance(here, NetDev)
    target = st.ns_of(here).get(target_name)
    if not redirect:
        skb.pkt_id = st.new_pkt_id()
    at_nh = skb.network_header == 0
    if at_nh != ingress:
        mac_len = skb.mac_len if at_ingress else skb.network_header
        if ingress:
            skb.pull(mac_len)
        else:
            skb.push(mac_len)
    skb.ingress_ifindex = here.ifindex
    set_dev(skb, target)
    if redirect or ingress:   # (to ingress, a mirror's copy is not a driver's frame either)
        skb.redirected, skb.from_ingress = True, at_ingress
    what = "redirect" if redirect else "mirror"
    if st.trace.enabled:
        st.event(skb, here, "redirect", f"mirred {what} {'ingress' if ingress else 'egress'} "
                 f"{target.qualified}")
    if not ingress:
        return st.dev_queue_xmit(target, skb)
    if not target.up:
        return st.drop(skb, target, "mirred target is down")
    if at_ingress:
        return _rx.receive_core(st, target, skb)
    st.loop.soon(lambda: _rx.receive_core(st, target, skb))
    return 0
