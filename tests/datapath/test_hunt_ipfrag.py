"""IPv4 fragmentation and reassembly, found by the topology hunt
(tests/testdata/hunt_topo/vxlan-fragments): a VXLAN datagram longer than the underlay's
MTU is fragmented by ``ip_do_fragment`` (payloads multiples of 8, MF on all but the last,
one id) and reassembled by ``ip_defrag`` on the receiving host before its VXLAN socket.
"""

from __future__ import annotations

import struct

from tcemu import csum
from tcemu.net import Net
from tcemu.net.ipfrag import IP_MF, FragQueues, ip_defrag, ip_fragment
from tcemu.netdev import Vxlan
from tcemu.skb import SkBuff
from tests.datapath.topo import udp_frame


def _datagram(payload_len: int, frag_off: int = 0, ident: int = 0x1234) -> bytes:
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, frag_off,
                               64, 17, 0, bytes([10, 1, 0, 1]), bytes([10, 1, 0, 2])))
    ip[10:12] = csum.fold(csum.partial(ip)).to_bytes(2, "little")
    return bytes(ip) + bytes(range(256)) * (payload_len // 256) + bytes(payload_len % 256)


def _skb(data: bytes) -> SkBuff:
    return SkBuff(bytearray(data), network_header=0)


def test_fragments_are_multiples_of_eight_with_mf_on_all_but_the_last() -> None:
    frags = ip_fragment(_skb(_datagram(1530)), 1500)
    assert frags is not None
    heads = [struct.unpack("!HHH", bytes(f.data[2:8])) for f in frags]
    assert heads == [(1500, 0x1234, IP_MF), (70, 0x1234, 1480 // 8)]
    for frag in frags:
        assert csum.fold(csum.partial(frag.data[:20])) in (0, 0xFFFF)


def test_df_set_cannot_be_fragmented() -> None:
    assert ip_fragment(_skb(_datagram(1530, frag_off=0x4000)), 1500) is None


def test_reassembly_in_any_order_rebuilds_the_datagram() -> None:
    whole = _datagram(1530)
    frags = ip_fragment(_skb(whole), 600)
    assert frags is not None
    queues = FragQueues()
    results = [ip_defrag(queues, f) for f in reversed(frags)]
    assert results == [False] * (len(frags) - 1) + [True]
    assert bytes(frags[0].data) == whole
    assert not queues.queues


def test_overlapping_fragments_discard_the_datagram() -> None:
    queues = FragQueues()
    first = _datagram(16, frag_off=IP_MF)
    overlap = _datagram(16, frag_off=1)
    assert not ip_defrag(queues, _skb(first))
    assert not ip_defrag(queues, _skb(overlap))
    assert not queues.queues


def test_vxlan_over_a_small_underlay_mtu_arrives_whole() -> None:
    net = Net(seed=0)
    net.netns("a")
    net.netns("b")
    net.link_add("ul0", "veth", netns="a", peer="ul1", peer_netns="b",
                 address=bytes.fromhex("020000000101"), peer_address=bytes.fromhex("020000000102"))
    for dev in ("a/ul0", "b/ul1"):
        net.link_set(dev, up=True)
    net.addr_add("a/ul0", "10.1.0.1/24")
    net.addr_add("b/ul1", "10.1.0.2/24")
    net.neigh_add("a/ul0", "10.1.0.2", bytes.fromhex("020000000102"))
    net.link_add("vxa", "vxlan", netns="a", vni=7, remote="10.1.0.2", dstport=4789)
    net.link_add("vxb", "vxlan", netns="b", vni=7, remote="10.1.0.1", dstport=4789,
                 address=bytes.fromhex("020000005b01"))
    net.link_set("a/vxa", up=True)
    net.link_set("b/vxb", up=True)
    inner = udp_frame(dst=bytes.fromhex("020000005b01"), payload=bytes(1472))
    assert len(inner) == 1514
    net.send("a/vxa", inner)
    assert [len(c.data) for c in net.capture("a/ul0")] == [1514, 84]
    assert [bytes(c.data) for c in net.capture("b/vxb")] == [inner]


def test_df_tunnel_output_over_the_mtu_sends_frag_needed_to_itself() -> None:
    """ip_fragment with DF set: icmp_send(ICMP_FRAG_NEEDED, mtu) about the outer
    datagram, to its source (this host), which leaves and arrives on lo."""
    net = Net(seed=0)
    net.netns("a")
    net.link_add("ul0", "veth", netns="a", peer="ul1", peer_netns="a")
    for dev in ("a/ul0", "a/ul1", "a/lo"):
        net.link_set(dev, up=True)
    net.addr_add("a/ul0", "10.1.0.1/24")
    net.link_add("vx0", "vxlan", netns="a", vni=7, remote="10.1.0.2", dstport=4789)
    vx0 = net.dev("a/vx0")
    assert isinstance(vx0, Vxlan)
    vx0.df = "set"
    net.link_set("a/vx0", up=True)
    net.send("a/vx0", udp_frame(payload=bytes(1472)))
    assert [c.direction for c in net.capture("a/ul0")] == []
    on_lo = [bytes(c.data) for c in net.capture("a/lo")]
    assert len(on_lo) == 2                               # out, then in
    ip = on_lo[0][14:]
    assert (ip[9], ip[12:16], ip[16:20]) == (1, bytes([10, 1, 0, 1]), bytes([10, 1, 0, 1]))
    assert ip[20:22] == b"\x03\x04"
    assert int.from_bytes(ip[26:28], "big") == 1500
    assert len(ip) == 576
