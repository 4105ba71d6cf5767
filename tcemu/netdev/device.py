"""The net device: identity, state, features and hooks (``struct net_device``,
``include/linux/netdevice.h``).

A :class:`NetDev` knows its name, ifindex, MAC address, MTU, up/down state, flags
(``IFF_NO_QUEUE``), offload features, the network namespace it lives in, its tc state
(root qdisc, clsact/ingress qdisc, tcx programs) and the VLAN devices stacked on it.
Subclasses implement only the driver: :meth:`NetDev.xmit` (``ndo_start_xmit``).  Moving
packets between devices is the network's job (:mod:`tcemu.net`), reached through the
:class:`Datapath` protocol so that this package does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from tcemu.bpf.program import Program
    from tcemu.netdev.eth import Eth
    from tcemu.qdisc.base import Qdisc
    from tcemu.skb import SkBuff

__all__ = ["ARPHRD_ETHER", "ARPHRD_LOOPBACK", "IFF_NO_QUEUE", "Datapath", "DevStats",
           "Features", "NetDev"]

IFF_NO_QUEUE = 1 << 21          # include/linux/netdevice.h priv flag
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
NET_XMIT_SUCCESS, NET_XMIT_DROP = 0, 1


class Datapath(Protocol):
    """What a driver may ask of the network (implemented by ``tcemu.net.Stack``)."""

    # devices that put frames on a wire of their own (``Eth.wire_out``), registered when
    # it was empty, so that a long run can forget them (``Net.clear``, replay)
    wired: set[Eth]

    def netif_rx(self, dev: NetDev, skb: SkBuff) -> int:
        """A driver received ``skb`` (data at L2): eth_type_trans, then the backlog."""

    def dev_queue_xmit(self, dev: NetDev, skb: SkBuff) -> int:
        """Transmit ``skb`` (data at L2) through ``dev``'s tc egress, qdisc and driver."""

    def drop(self, skb: SkBuff, dev: NetDev, reason: str, *, count: bool = True) -> int:
        """Free ``skb`` as dropped (recorded in the trace, counted in ``dev``'s
        tx_dropped unless ``count`` is False); returns NET_XMIT_DROP."""

    def consume(self, skb: SkBuff, dev: NetDev, reason: str) -> int:
        """Free ``skb`` as consumed (not an error); returns NET_XMIT_SUCCESS."""


@dataclass
class Features:
    """``netdev_features_t`` bits the datapath looks at."""

    # NETIF_F_HW_VLAN_CTAG_RX / STAG_RX: the driver moves the tag to hw-accel; without it
    # the core's skb_vlan_untag does the same before the taps, so nothing visible differs.
    rx_vlan_offload: bool = True
    tx_vlan_offload: bool = True    # NETIF_F_HW_VLAN_CTAG_TX / STAG_TX
    tx_csum: bool = True            # NETIF_F_HW_CSUM (CHECKSUM_PARTIAL left unfinished)


@dataclass
class DevStats:
    """``ip -s link`` counters."""

    rx_packets: int = 0
    rx_bytes: int = 0
    rx_dropped: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    tx_dropped: int = 0

    def rx(self, nbytes: int) -> None:
        """A frame the driver received (its rx counters; ``dev_sw_netstats_rx_add``)."""
        self.rx_packets += 1
        self.rx_bytes += nbytes


@dataclass(eq=False, repr=False)
class NetDev:
    """One device.  ``netns`` is the name of its namespace; ``ifindex`` is per netns."""

    name: str
    address: bytes = bytes(6)
    mtu: int = 1500
    ifindex: int = 0
    netns: str = "default"
    up: bool = False
    priv_flags: int = 0
    features: Features = field(default_factory=Features)
    qdisc: Qdisc | None = None                    # root qdisc (None: noqueue)
    clsact: object | None = None                  # tcemu.qdisc.clsact.Clsact
    tcx: dict[str, list[Program]] = field(default_factory=lambda: {"ingress": [],
                                                                   "egress": []})
    vlans: dict[tuple[int, int], NetDev] = field(default_factory=dict)  # (proto, vid)
    stats: DevStats = field(default_factory=DevStats)
    delivered: list[SkBuff] = field(default_factory=list)  # the host stack's socket
    hard_header_len: int = 14
    broadcast: bytes = b"\xff" * 6
    type: int = ARPHRD_ETHER

    kind: ClassVar[str] = "dev"
    default_no_queue: ClassVar[bool] = True
    # whether the driver's byte counters include the Ethernet header (loopback_xmit and
    # the tunnels count from the network header)
    stats_l2: ClassVar[bool] = True

    @property
    def no_queue(self) -> bool:
        return bool(self.priv_flags & IFF_NO_QUEUE)

    @property
    def qualified(self) -> str:
        return f"{self.netns}/{self.name}"

    @property
    def carrier(self) -> bool:
        """``netif_carrier_ok`` of a running device (without it the TX queues hold the
        noop qdisc: ``dev_activate`` waits for carrier).  On by default."""
        return self.up

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        """``ndo_start_xmit``: the driver takes the skb (data at L2)."""
        raise NotImplementedError

    def links(self) -> list[NetDev]:
        """Devices this one is tied to (peer, lower device), for netns moves and deletes."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.qualified} ifindex {self.ifindex}>"
