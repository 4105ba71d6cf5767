"""VXLAN devices (``drivers/net/vxlan/vxlan_core.c``), IPv4 underlay.

TX (``vxlan_xmit``/``vxlan_xmit_one``): in ``external`` (collect_md) mode the addressing
comes from the skb's TX tunnel metadata (none: the packet is silently dropped); otherwise
from the device (VNI, ``remote``, ``local``, ``dstport``, ttl, tos, df, ``[no]udpcsum``).
The outer headers are built bottom up (VXLAN 8 B with the I flag, UDP 8 B, IPv4 20 B) as
kernel-semantics.md sections 7.3 and 7.5 describe, the skb is scrubbed and handed to the
underlay's IPv4 output (route, neighbour, Ethernet header, the lower device's tc egress).
The UDP source port comes from the datapath's flow hash (``udp_flow_src_port``) and the
outer IP ID from its ID generator, both deterministic and injectable.

RX (``vxlan_rcv``, section 7.4): a UDP datagram for the device's port in its underlay
netns is decapsulated; in external mode a metadata dst with the outer addresses, ports,
tos, ttl and flags is attached; ``eth_type_trans`` runs on the VXLAN device.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from tcemu import csum
from tcemu.netdev.device import Datapath, NetDev
from tcemu.skb import (
    CHECKSUM_PARTIAL,
    ETH_HLEN,
    ETH_P_IP,
    ETH_P_IPV6,
    TunnelInfo,
    skb_scrub_packet,
)

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["VXLAN_DEFAULT_PORT", "Underlay", "Vxlan", "vxlan_decap"]

VXLAN_DEFAULT_PORT = 8472        # the module's default; IANA's 4789 must be configured
VXLAN_HLEN = 8 + 8               # VXLAN + UDP
VXLAN_HEADROOM = 20 + VXLAN_HLEN  # IPv4 outer
TUNNEL_CSUM, TUNNEL_KEY, TUNNEL_DONT_FRAGMENT = 0x01, 0x04, 0x100
IP_DF = 0x4000
DEFAULT_TTL = 64                 # net.ipv4.ip_default_ttl
PORT_MIN, PORT_MAX = 32768, 61000  # ip_local_port_range 32768..60999 (max exclusive)


class Underlay(Datapath, Protocol):
    """The IPv4 output and the injectable non-deterministic values a tunnel needs."""

    def ip_tunnel_output(self, netns: str, skb: SkBuff, daddr: bytes, saddr: bytes,
                         build: Callable[[SkBuff, bytes, int], None]) -> int:
        """Route to ``daddr``, call ``build(skb, saddr, ip_id)`` to add the IPv4 header,
        then the neighbour output on the chosen device."""

    def udp_src_port(self, skb: SkBuff, lo: int, hi: int) -> int:
        """``udp_flow_src_port`` from the flow hash of the inner frame."""

    def ip_ident(self, saddr: bytes, daddr: bytes, proto: int) -> int:
        """``__ip_select_ident``."""


def inner_dsfield(inner: SkBuff) -> int:
    """``ip_tunnel_get_dsfield``: the inner IPv4 TOS / IPv6 traffic class (0 otherwise)."""
    nh = ETH_HLEN
    if inner.protocol == ETH_P_IP and inner.len >= nh + 20:
        return inner.data[nh + 1]
    if inner.protocol == ETH_P_IPV6 and inner.len >= nh + 40:
        return (int.from_bytes(inner.data[nh:nh + 2], "big") >> 4) & 0xFF
    return 0


def inner_df(inner: SkBuff) -> bool:
    nh = ETH_HLEN
    return inner.protocol == ETH_P_IP and inner.len >= nh + 20 and \
        bool(int.from_bytes(inner.data[nh + 6:nh + 8], "big") & IP_DF)


def ecn_encapsulate(tos: int, inner: SkBuff) -> int:
    """``ip_tunnel_ecn_encap``: the outer ECN bits follow the inner packet (CE -> ECT(0))."""
    ecn = inner_dsfield(inner) & 3
    return (tos & ~3) | (2 if ecn == 3 else ecn)


@dataclass(eq=False, repr=False)
class Vxlan(NetDev):
    vni: int = 0
    remote: bytes | None = None
    local: bytes = bytes(4)
    dstport: int = VXLAN_DEFAULT_PORT
    external: bool = False
    ttl: int = 0
    tos: int = 0
    df: str = "unset"            # unset, set, inherit
    udpcsum: bool = True
    underlay: str = "default"    # the netns of the UDP socket (where it was created)
    srcport: tuple[int, int] | None = None   # UDP source port range [low, high)

    kind: ClassVar[str] = "vxlan"
    stats_l2: ClassVar[bool] = False

    def xmit(self, dp: Datapath, skb: SkBuff) -> int:
        under = cast("Underlay", dp)
        info = skb.tunnel
        if self.external:
            if info is None or not info.tx or info.ipv6:
                # vxlan_xmit frees it without touching the counters
                return under.drop(skb, self, "collect_md vxlan without TX tunnel info",
                                  count=False)
            vni, remote, local = info.tun_id & 0xFFFFFF, info.dst, info.src
            port = info.tp_dst or self.dstport
            ttl, tos = info.ttl, info.tos
            df = bool(info.flags & TUNNEL_DONT_FRAGMENT)
            udp_csum = bool(info.flags & TUNNEL_CSUM)
        else:
            if self.remote is None:
                return dp.drop(skb, self, "no vxlan fdb entry for the destination")
            vni, remote, local, port = self.vni, self.remote, self.local, self.dstport
            ttl, tos, udp_csum = self.ttl, self.tos, self.udpcsum
            if tos == 1:  # inherit
                tos = inner_dsfield(skb)
            df = self.df == "set" or (self.df == "inherit" and inner_df(skb))
        tos = ecn_encapsulate(tos, skb)
        lo, hi = self.srcport or (PORT_MIN, PORT_MAX)
        sport = under.udp_src_port(skb, lo, hi)
        inner_partial = skb.ip_summed == CHECKSUM_PARTIAL
        skb_scrub_packet(skb, self.netns != self.underlay)
        vxlan = struct.pack("!II", 0x0800_0000, (vni & 0xFFFFFF) << 8)
        skb.data[0:0] = bytes(8) + vxlan
        skb.mac_header = 0

        def build(out: SkBuff, saddr: bytes, ident: int) -> None:
            udp_len = out.len
            udp = bytearray(struct.pack("!HHHH", sport, port, udp_len, 0))
            out.data[0:8] = udp
            if udp_csum:
                _udp_set_csum(out, saddr, remote, udp_len, inner_partial)
            frag = IP_DF if df else 0
            iph = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + udp_len, ident,
                                        frag, ttl or DEFAULT_TTL, 17, 0, saddr, remote))
            iph[10:12] = csum.fold(csum.partial(iph)).to_bytes(2, "little")
            out.data[0:0] = iph
            out.network_header, out.transport_header = 0, 20
            out.protocol = ETH_P_IP

        rc = under.ip_tunnel_output(self.underlay, skb, remote, local, build)
        if rc not in (0, 2):
            self.stats.tx_dropped += 1       # iptunnel_xmit_stats with pkt_len 0
        return rc


def _udp_set_csum(skb: SkBuff, saddr: bytes, daddr: bytes, length: int,
                  inner_partial: bool) -> None:
    """``udp_set_csum`` on data starting at the UDP header."""
    pseudo = csum.partial(saddr + daddr + struct.pack("!BBH", 0, 17, length))
    if inner_partial and skb.transport_header is not None:
        # lco_csum: our headers plus the complement of the inner pseudo-header sum.
        start = skb.transport_header + 8 + 8 + 0  # inner offsets moved by the prepend
        inner_field = int.from_bytes(skb.data[start + skb.csum_offset:
                                              start + skb.csum_offset + 2], "little")
        partial = csum.partial(skb.data[:start], ~inner_field & 0xFFFF_FFFF)
        check = csum.fold(csum.add32(pseudo, partial)) or 0xFFFF
        skb.data[6:8] = check.to_bytes(2, "little")
        return
    skb.data[6:8] = (~csum.fold(pseudo) & 0xFFFF).to_bytes(2, "little")
    skb.ip_summed, skb.csum_offset = CHECKSUM_PARTIAL, 6
    skb.transport_header = 0


def vxlan_decap(dev: Vxlan, skb: SkBuff, outer: bytes) -> SkBuff | None:
    """``vxlan_rcv`` on data at the VXLAN header (after the UDP header); ``outer`` is the
    outer IPv4+UDP header.  Returns the inner frame's skb (data at its L2) or None: drop."""
    if skb.len < 8 + ETH_HLEN:
        return None
    flags, vni_word = struct.unpack_from("!II", skb.data, 0)
    if not flags & 0x0800_0000 or flags & ~0x0800_0000 or vni_word & 0xFF:
        return None
    vni = vni_word >> 8
    if not dev.external and vni != dev.vni:
        return None
    iph, udp = outer[:20], outer[20:28]
    del skb.data[:8]
    skb.head = b""
    if dev.external:
        tflags = TUNNEL_KEY
        if udp[6:8] != b"\0\0":
            tflags |= TUNNEL_CSUM
        if int.from_bytes(iph[6:8], "big") & IP_DF:
            tflags |= TUNNEL_DONT_FRAGMENT
        sport, dport = struct.unpack_from("!HH", udp, 0)
        skb.tunnel = TunnelInfo(vni, bytes(iph[12:16]), bytes(iph[16:20]), iph[1], iph[8],
                                0, tflags, False, tx=False, per_cpu=False, tp_src=sport,
                                tp_dst=dport)
    else:
        skb.tunnel = None
    return skb
