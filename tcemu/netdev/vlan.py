"""802.1Q / 802.1ad VLAN sub-devices (``net/8021q/vlan_dev.c``, ``vlan_core.c``).

TX (``vlan_dev_hard_start_xmit`` with the default REORDER_HDR): the frame stays untagged,
the tag ``(protocol, vid | egress_qos_map[priority])`` goes into hw-accel and the skb is
queued on the lower device, whose tc egress sees ``vlan_present=1``.  RX
(``vlan_do_receive``): after the lower device's tc ingress, a hw-accel tag matching
``(protocol, vid)`` switches the skb to this device for another round of the receive path
(kernel-semantics.md section 6.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tcemu.netdev.device import Datapath, NetDev

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["Vlan"]


@dataclass(eq=False, repr=False)
class Vlan(NetDev):
    lower: NetDev | None = None
    vlan_id: int = 0
    protocol: int = 0x8100
    egress_qos_map: dict[int, int] = field(default_factory=dict)   # priority -> PCP
    ingress_qos_map: dict[int, int] = field(default_factory=dict)  # PCP -> priority

    kind: ClassVar[str] = "vlan"

    @property
    def carrier(self) -> bool:
        """The lower device's (``netif_stacked_transfer_operstate``)."""
        return self.up and self.lower is not None and self.lower.carrier

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        lower = self.lower
        if lower is None:
            return dp.drop(skb, self, "vlan without lower device")
        pcp = self.egress_qos_map.get(skb.priority & 15, 0)
        # A tag already in hw-accel (stacked VLAN devices) is written into the payload
        # first, so the new tag becomes the outer one.
        if skb.vlan_present:
            from tcemu.skb import vlan_insert_tag

            vlan_insert_tag(skb, skb.vlan_proto, skb.vlan_tci)
            skb.protocol = skb.vlan_proto
        skb.vlan_proto, skb.vlan_tci = self.protocol, (pcp << 13) | self.vlan_id
        return dp.dev_queue_xmit(lower, skb)

    def links(self) -> list[NetDev]:
        return [self.lower] if self.lower is not None else []
