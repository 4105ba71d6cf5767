"""The loopback device (``drivers/net/loopback.c``): what is sent comes back in.

``loopback_xmit`` hands the skb straight back to the receive path of ``lo``; ``lo`` has an
all-zero MAC address and broadcast address, MTU 65536, and no queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.netdev.device import ARPHRD_LOOPBACK, Datapath, NetDev

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["Loopback"]


@dataclass(eq=False, repr=False)
class Loopback(NetDev):
    kind: ClassVar[str] = "loopback"
    stats_l2: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.mtu, self.broadcast, self.type = 65536, bytes(6), ARPHRD_LOOPBACK

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        return dp.netif_rx(self, skb)
