"""An Ethernet endpoint and the dummy device.

:class:`Eth` is a physical port with a tiny host behind it: what it transmits leaves on
its wire (to the linked :class:`Eth` if any, else into ``wire_out``), what arrives from the
wire is received (``Net.receive``).  It has a real queue (the kernel's default root qdisc
for such devices is ``pfifo_fast``) and finishes CHECKSUM_PARTIAL checksums on the wire,
as a NIC with checksum offload does.

:class:`Dummy` (``drivers/net/dummy.c``) consumes every packet it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tcemu.netdev.device import Datapath, NetDev
from tcemu.skb import skb_checksum_help

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["Dummy", "Eth"]


@dataclass(eq=False, repr=False)
class Eth(NetDev):
    peer: Eth | None = None
    wire_out: list[bytes] = field(default_factory=list)

    kind: ClassVar[str] = "eth"
    default_no_queue: ClassVar[bool] = False

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        skb_checksum_help(skb)  # the NIC finishes an offloaded checksum on the wire
        if self.peer is None:
            if not self.wire_out:
                dp.wired.add(self)
            self.wire_out.append(bytes(skb.data))
            return dp.consume(skb, self, "sent on the wire (no link)")
        if not self.peer.up:
            return dp.drop(skb, self, "link partner is down")
        wire = type(skb)(bytearray(skb.data), pkt_id=skb.pkt_id)
        dp.netif_rx(self.peer, wire)
        return dp.consume(skb, self, f"sent on the wire to {self.peer.qualified}")

    def links(self) -> list[NetDev]:
        return [self.peer] if self.peer is not None else []


@dataclass(eq=False, repr=False)
class Dummy(NetDev):
    kind: ClassVar[str] = "dummy"

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        return dp.consume(skb, self, "dummy device")
