"""Virtual Ethernet pairs (``drivers/net/veth.c``).

``veth_xmit`` forwards the skb to the peer with ``__dev_forward_skb`` (the peer must be
up and the frame no longer than its MTU + L2 header + one VLAN tag), which scrubs it
(``skb_scrub_packet(skb, xnet)``: mark and tstamp only when the peer is in another
netns), sets priority 0 and runs ``eth_type_trans`` on the peer, then ``netif_rx``: the
peer receives it from the backlog (kernel-semantics.md section 3.4).  Carrier is on only
while both ends are up (``veth_open``/``veth_close``); without it the transmit path
drops at the noop qdisc, before the taps.  veth has VLAN and
checksum offload, so hw-accel tags and CHECKSUM_PARTIAL survive the crossing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.netdev.device import Datapath, NetDev
from tcemu.skb import VLAN_HLEN, skb_scrub_packet

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["Veth", "dev_forward_skb"]


def dev_forward_skb(dp: Datapath, dev: NetDev, skb: SkBuff, src: NetDev,
                    check_mtu: bool = True) -> int:
    """``__dev_forward_skb`` + ``netif_rx``: hand ``skb`` (data at L2) to ``dev``'s RX."""
    # is_skb_forwardable failing counts rx_dropped on the receiver (__dev_forward_skb2)
    # and tx_dropped on the sending veth (veth_xmit's priv->dropped)
    if not dev.up:
        dev.stats.rx_dropped += 1
        return dp.drop(skb, src, f"{dev.qualified} is down")
    limit = dev.mtu + dev.hard_header_len + VLAN_HLEN
    if check_mtu and skb.len > limit:
        dev.stats.rx_dropped += 1
        return dp.drop(skb, src, f"frame of {skb.len} bytes exceeds {dev.qualified} mtu")
    skb_scrub_packet(skb, dev.netns != src.netns)
    # KERNEL-DIFF: sockets are not modelled; the receiving side never sees the sender's
    # socket (skb->sk is NULL at veth RX, kernel-semantics.md section 1, measured).
    skb.reset_rare("priority", "has_sk", "sk_classid")          # 0, False, 0
    return dp.netif_rx(dev, skb)


@dataclass(eq=False, repr=False)
class Veth(NetDev):
    peer: Veth | None = None

    kind: ClassVar[str] = "veth"

    @property
    def carrier(self) -> bool:
        """veth_open/veth_close: carrier on both ends only while both are up."""
        return self.up and self.peer is not None and self.peer.up

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        if self.peer is None:
            return dp.drop(skb, self, "veth without peer")
        skb.redirected = False   # a driver's frame: the peer's rx counters take it
        return dev_forward_skb(dp, self.peer, skb, self)

    def links(self) -> list[NetDev]:
        return [self.peer] if self.peer is not None else []
