"""Network devices, and the division of labour of the datapath.

Naming: a device is ``<netns>/<name>`` (``default/veth0``); the init namespace is called
``default``.  A veth pair is written ``a<->b``.

Division of labour (stated once, here):

* a **NetDev** moves frames: its driver (:meth:`NetDev.xmit`, ``ndo_start_xmit``) takes an
  skb at L2 and hands it on (veth: to the peer's receive path; vlan: to the lower device
  with a hw-accel tag; vxlan: encapsulated, to the underlay's IPv4 output; eth: onto its
  wire; dummy: nowhere);
* a **Qdisc** (``tcemu.qdisc``) queues and schedules what a device transmits;
* a **classifier** (``tcemu.cls``) classifies: a chain of filters returns a verdict and a
  class id;
* an **action** (``tcemu.act``) decides and edits (drop, redirect, tag, set a mark);
* the **Net** (``tcemu.net``) delivers: the receive and transmit paths of ``net/core/dev.c``
  (taps, tc hooks, verdicts, redirects, VLAN and VXLAN receive, local delivery), namespaces,
  routes and neighbours, the event loop on the virtual clock.

:data:`NETDEV_KINDS` maps the ``ip link add ... type <kind>`` names to device classes.
"""

from __future__ import annotations

from tcemu.netdev.device import (
    ARPHRD_ETHER,
    ARPHRD_LOOPBACK,
    IFF_NO_QUEUE,
    Datapath,
    DevStats,
    Features,
    NetDev,
)
from tcemu.netdev.eth import Dummy, Eth
from tcemu.netdev.loopback import Loopback
from tcemu.netdev.veth import Veth, dev_forward_skb
from tcemu.netdev.vlan import Vlan
from tcemu.netdev.vxlan import VXLAN_DEFAULT_PORT, Underlay, Vxlan

__all__ = ["ARPHRD_ETHER", "ARPHRD_LOOPBACK", "IFF_NO_QUEUE", "NETDEV_KINDS",
           "VXLAN_DEFAULT_PORT", "Datapath", "DevStats", "Dummy", "Eth", "Features",
           "Loopback", "NetDev", "Underlay", "Veth", "Vlan", "Vxlan", "dev_forward_skb"]

NETDEV_KINDS: dict[str, type[NetDev]] = {
    "loopback": Loopback,
    "eth": Eth,
    "dummy": Dummy,
    "veth": Veth,
    "vlan": Vlan,
    "vxlan": Vxlan,
}
