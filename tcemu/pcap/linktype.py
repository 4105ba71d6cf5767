"""Turning captured packets of other link types into Ethernet frames for replay.

tcemu's devices are Ethernet devices: a tc hook sees an skb whose mac header is 14 bytes
(``eth_type_trans`` in ``net/ethernet/eth.c``).  Captures taken with ``tcpdump -i any``
(Linux cooked SLL/SLL2), on tun devices (RAW, IPV4/IPV6) or on BSD loopback (NULL/LOOP)
have no Ethernet header, so :func:`to_ethernet` writes one: the EtherType from the
capture, the source MAC from it where it has one, and a destination MAC chosen so that
``eth_type_trans`` gives the packet the ``pkt_type`` the capture recorded (host,
broadcast, multicast, other host).  Link types that carry no EtherType-framed payload
(802.11, radiotap, ...) are refused with a :class:`PcapError`.
"""

from __future__ import annotations

import struct

from tcemu.pcap.common import LinkType, PacketRecord, PcapError, linktype_name

__all__ = ["DEFAULT_LOCAL_MAC", "DEFAULT_REMOTE_MAC", "ETHERNET_LINKTYPES", "to_ethernet"]

# Locally administered unicast addresses: "this device" and "the peer".
DEFAULT_LOCAL_MAC = bytes.fromhex("020000000001")
DEFAULT_REMOTE_MAC = bytes.fromhex("020000000002")
ETHERNET_LINKTYPES = frozenset({LinkType.ETHERNET, LinkType.RAW, LinkType.IPV4,
                                LinkType.IPV6, LinkType.LINUX_SLL, LinkType.LINUX_SLL2,
                                LinkType.NULL, LinkType.LOOP})

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_802_3_MIN = 0x0600
ARPHRD_ETHER = 1
_BROADCAST = b"\xff" * 6
# include/uapi/linux/if_packet.h
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)
# BSD address families of the NULL/LOOP header: AF_INET, and AF_INET6 as each BSD numbers it
_BSD_AF = {2: ETH_P_IP, 24: ETH_P_IPV6, 28: ETH_P_IPV6, 30: ETH_P_IPV6}


def _ip_dst_mac(proto: int, l3: bytes, default: bytes) -> bytes:
    """The multicast/broadcast MAC an IP destination maps to (RFC 1112, RFC 2464)."""
    if proto == ETH_P_IP and len(l3) >= 20:
        dst = l3[16:20]
        if dst == b"\xff\xff\xff\xff":
            return _BROADCAST
        if dst[0] & 0xF0 == 0xE0:
            return b"\x01\x00\x5e" + bytes([dst[1] & 0x7F]) + dst[2:4]
    elif proto == ETH_P_IPV6 and len(l3) >= 40 and l3[24] == 0xFF:
        return b"\x33\x33" + l3[36:40]
    return default


def _ip_version_proto(l3: bytes, what: str) -> int:
    version = l3[0] >> 4 if l3 else 0
    if version == 4:
        return ETH_P_IP
    if version == 6:
        return ETH_P_IPV6
    raise PcapError(f"{what} packet of IP version {version}", path="", verb="map")


def _cooked(pkt_type: int, arphrd: int, addr: bytes, proto: int, l3: bytes, local: bytes,
            remote: bytes, what: str) -> bytes:
    if proto < ETH_P_802_3_MIN:
        raise PcapError(f"{what} protocol {proto:#06x} is not an EtherType", path="",
                        verb="map")
    peer = addr[:6] if arphrd == ARPHRD_ETHER and len(addr) >= 6 else None
    if pkt_type == PACKET_OUTGOING:
        return _ip_dst_mac(proto, l3, remote) + (peer or local) + struct.pack("!H", proto)
    if pkt_type == PACKET_BROADCAST:
        dst = _BROADCAST
    elif pkt_type == PACKET_MULTICAST:
        dst = _ip_dst_mac(proto, l3, b"\x01\x00\x00\x00\x00\x00")
    elif pkt_type == PACKET_OTHERHOST:
        dst = remote if remote != local else local[:5] + bytes([local[5] ^ 1])
    else:
        dst = local
    return dst + (peer or remote) + struct.pack("!H", proto)


def to_ethernet(record: PacketRecord, *, local_mac: bytes = DEFAULT_LOCAL_MAC,
                remote_mac: bytes = DEFAULT_REMOTE_MAC) -> bytes:
    """The packet as an Ethernet II frame (FCS removed), as a device's rx path would see it.

    ``local_mac`` is the receiving device's address, ``remote_mac`` the peer's where the
    capture does not say.  Ethernet packets come back unchanged but for the FCS.
    """
    iface = record.interface
    data = record.data
    lt = iface.linktype
    if iface.fcs_len and record.orig_len == len(data):
        data = data[:-iface.fcs_len]
    if lt == LinkType.ETHERNET:
        return data
    try:
        return _header(lt, data, local_mac, remote_mac) + _payload(lt, data)
    except PcapError as err:
        raise PcapError(f"link type {linktype_name(lt)}: {err.reason}",
                        path=iface.name or f"interface {iface.index}", verb="map") from None
    except (struct.error, IndexError):
        raise PcapError(f"link type {linktype_name(lt)}: packet of {len(data)} bytes is "
                        "shorter than its link-layer header",
                        path=iface.name or f"interface {iface.index}", verb="map") from None


_HDR_LEN = {LinkType.RAW: 0, LinkType.IPV4: 0, LinkType.IPV6: 0, LinkType.LINUX_SLL: 16,
            LinkType.LINUX_SLL2: 20, LinkType.NULL: 4, LinkType.LOOP: 4}


def _payload(lt: int, data: bytes) -> bytes:
    return data[_HDR_LEN[LinkType(lt)]:]


def _header(lt: int, data: bytes, local: bytes, remote: bytes) -> bytes:
    if lt in (LinkType.RAW, LinkType.IPV4, LinkType.IPV6):
        proto = _ip_version_proto(data, "raw")
        return _ip_dst_mac(proto, data, local) + remote + struct.pack("!H", proto)
    if lt == LinkType.LINUX_SLL:
        pkt_type, arphrd, alen = struct.unpack_from("!HHH", data)
        addr = data[6:6 + min(alen, 8)]
        proto = struct.unpack_from("!H", data, 14)[0]
        return _cooked(pkt_type, arphrd, addr, proto, data[16:], local, remote, "SLL")
    if lt == LinkType.LINUX_SLL2:
        proto, _res, _ifindex, arphrd, pkt_type, alen = struct.unpack_from("!HHIHBB", data)
        addr = data[12:12 + min(alen, 8)]
        return _cooked(pkt_type, arphrd, addr, proto, data[20:], local, remote, "SLL2")
    if lt in (LinkType.NULL, LinkType.LOOP):
        head = data[:4]
        if len(head) < 4:
            raise IndexError
        # Network order for LOOP, the writer's order for NULL: the family is the small one.
        family = min(struct.unpack("<I", head)[0], struct.unpack(">I", head)[0])
        if family not in _BSD_AF:
            raise PcapError(f"address family {family} is neither IPv4 nor IPv6", path="",
                            verb="map")
        proto = _BSD_AF[family]
        return _ip_dst_mac(proto, data[4:], local) + remote + struct.pack("!H", proto)
    raise PcapError("cannot be replayed on an Ethernet device (tcemu maps ETHERNET, RAW, "
                    "IPV4, IPV6, LINUX_SLL, LINUX_SLL2, NULL and LOOP)", path="", verb="map")
