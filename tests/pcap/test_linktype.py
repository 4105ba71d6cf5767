"""to_ethernet: cooked, raw and loopback captures become the frames a device would see."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Ether

from tcemu.pcap import (
    DEFAULT_LOCAL_MAC,
    DEFAULT_REMOTE_MAC,
    Interface,
    LinkType,
    PacketRecord,
    PcapError,
    to_ethernet,
)

V4 = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2))
V4_MCAST = bytes(IP(src="10.0.0.1", dst="239.129.2.3") / ICMP())
V4_BCAST = bytes(IP(src="10.0.0.1", dst="255.255.255.255") / ICMP())
V6_MCAST = bytes(IPv6(src="fe80::1", dst="ff02::1:ff00:1234"))
ARP_REQ = bytes(ARP(op=1, hwsrc="02:aa:00:00:00:01", psrc="10.0.0.1", pdst="10.0.0.2",
                    hwdst="00:00:00:00:00:00"))
PEER = bytes.fromhex("02aa00000001")
LOCAL = bytes.fromhex("02bb00000002")


def _rec(linktype: int, data: bytes, *, fcs_len: int = 0) -> PacketRecord:
    return PacketRecord(0, data, len(data), Interface(index=0, linktype=linktype,
                                                      snaplen=0, name="any",
                                                      fcs_len=fcs_len))


def _eth(dst: bytes, src: bytes, proto: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", proto) + payload


@pytest.mark.parametrize(("linktype", "l3", "dst", "proto"), [
    (LinkType.RAW, V4, DEFAULT_LOCAL_MAC, 0x0800),
    (LinkType.IPV4, V4_MCAST, bytes.fromhex("01005e010203"), 0x0800),
    (LinkType.RAW, V4_BCAST, b"\xff" * 6, 0x0800),
    (LinkType.IPV6, V6_MCAST, bytes.fromhex("3333ff001234"), 0x86DD),
])
def test_raw_ip(linktype: int, l3: bytes, dst: bytes, proto: int) -> None:
    assert to_ethernet(_rec(linktype, l3)) == _eth(dst, DEFAULT_REMOTE_MAC, proto, l3)


@pytest.mark.parametrize(("pkttype", "l3", "dst"), [
    (0, V4, LOCAL), (1, ARP_REQ, b"\xff" * 6), (2, V4_MCAST, bytes.fromhex("01005e010203")),
    (3, V4, DEFAULT_REMOTE_MAC)])
def test_linux_sll_inbound(pkttype: int, l3: bytes, dst: bytes) -> None:
    proto = 0x0806 if l3 is ARP_REQ else 0x0800
    sll = bytes(CookedLinux(pkttype=pkttype, lladdrtype=1, lladdrlen=6, src=PEER + b"\0\0",
                            proto=proto)) + l3
    assert to_ethernet(_rec(LinkType.LINUX_SLL, sll), local_mac=LOCAL) == _eth(
        dst, PEER, proto, l3)


def test_linux_sll2_outgoing() -> None:
    sll2 = bytes(CookedLinuxV2(proto=0x0800, ifindex=3, lladdrtype=1, pkttype=4,
                               lladdrlen=6, src=LOCAL + b"\0\0")) + V4
    assert len(sll2) == 20 + len(V4)
    assert to_ethernet(_rec(LinkType.LINUX_SLL2, sll2), local_mac=LOCAL) == _eth(
        DEFAULT_REMOTE_MAC, LOCAL, 0x0800, V4)


def test_sll_of_a_device_without_mac_addresses_uses_the_defaults() -> None:
    sll = bytes(CookedLinux(pkttype=0, lladdrtype=65534, lladdrlen=0, proto=0x86DD)) + V6_MCAST
    assert to_ethernet(_rec(LinkType.LINUX_SLL, sll)) == _eth(
        DEFAULT_LOCAL_MAC, DEFAULT_REMOTE_MAC, 0x86DD, V6_MCAST)


@pytest.mark.parametrize(("linktype", "head"), [
    (LinkType.NULL, struct.pack("<I", 2)), (LinkType.NULL, struct.pack(">I", 2)),
    (LinkType.LOOP, struct.pack(">I", 2))])
def test_bsd_loopback(linktype: int, head: bytes) -> None:
    assert to_ethernet(_rec(linktype, head + V4)) == _eth(
        DEFAULT_LOCAL_MAC, DEFAULT_REMOTE_MAC, 0x0800, V4)


def test_ethernet_passes_through_and_loses_its_fcs() -> None:
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / V4)
    assert to_ethernet(_rec(LinkType.ETHERNET, frame)) == frame
    assert to_ethernet(_rec(LinkType.ETHERNET, frame + b"FCS!", fcs_len=4)) == frame


@pytest.mark.parametrize(("linktype", "data", "reason"), [
    (LinkType.IEEE802_11, b"\x08\x00" * 20, "link type IEEE802_11: cannot be replayed"),
    (147, b"x" * 20, "link type 147: cannot be replayed"),
    (LinkType.RAW, b"\x50" + bytes(19), "link type RAW: raw packet of IP version 5"),
    (LinkType.RAW, b"", "link type RAW: raw packet of IP version 0"),
    (LinkType.LINUX_SLL, bytes(CookedLinux(proto=0x0004)) + b"llc",
     "SLL protocol 0x0004 is not an EtherType"),
    (LinkType.LINUX_SLL2, b"\x08\x00", "shorter than its link-layer header"),
    (LinkType.NULL, struct.pack("<I", 7) + V4, "address family 7 is neither IPv4 nor IPv6"),
])
def test_refused(linktype: int, data: bytes, reason: str) -> None:
    with pytest.raises(PcapError, match=reason) as info:
        to_ethernet(_rec(linktype, data))
    assert str(info.value).startswith("map capture 'any': ")
