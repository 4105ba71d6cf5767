"""VXLAN receive rules found by the topology hunt (tests/testdata/hunt_topo).

kernel-semantics.md §7: a datapath to a VXLAN device's UDP port belongs to that port's
socket (``vxlan_rcv`` in drivers/net/vxlan/vxlan_core.c) whatever the VNI; a VNI no device
of the socket serves is dropped there (``vxlan_vs_find_vni`` fails), never handed to the
UDP layer, so the host does not answer it with ICMP port unreachable.
"""

from __future__ import annotations

import struct

from tcemu.net import Net
from tests.datapath.topo import udp_frame

MAC_UL0, MAC_UL1 = bytes.fromhex("020000000101"), bytes.fromhex("020000000102")


def _vxlan_frame(vni: int) -> bytes:
    inner = udp_frame(dst=bytes.fromhex("020000005a01"), src=bytes.fromhex("020000005b01"),
                      saddr=bytes([192, 168, 5, 2]), daddr=bytes([192, 168, 5, 1]))
    payload = struct.pack("!II", 0x0800_0000, vni << 8) + inner
    return udp_frame(dst=MAC_UL0, src=MAC_UL1, saddr=bytes([10, 1, 0, 2]),
                     daddr=bytes([10, 1, 0, 1]), sport=40000, dport=4789, payload=payload)


def _net() -> Net:
    net = Net(seed=0)
    net.netns("a")
    net.netns("b")
    net.link_add("ul0", "veth", netns="a", peer="ul1", peer_netns="b", address=MAC_UL0,
                 peer_address=MAC_UL1)
    net.link_set("a/ul0", up=True)
    net.link_set("b/ul1", up=True)
    net.addr_add("a/ul0", "10.1.0.1/24")
    net.addr_add("b/ul1", "10.1.0.2/24")
    net.neigh_add("a/ul0", "10.1.0.2", MAC_UL1)
    net.link_add("vxf", "vxlan", netns="a", vni=100, remote="10.1.0.2", local="10.1.0.1",
                 dstport=4789, address=bytes.fromhex("020000005a01"))
    net.link_set("a/vxf", up=True)
    return net


def test_unknown_vni_is_dropped_by_the_vxlan_socket_not_answered() -> None:
    net = _net()
    net.send("b/ul1", _vxlan_frame(200))
    net.run()
    assert [c.direction for c in net.capture("a/ul0")] == ["in"]
    assert net.capture("a/vxf") == []
    assert net.delivered("a/ul0") == []


def test_known_vni_still_reaches_the_device() -> None:
    net = _net()
    net.send("b/ul1", _vxlan_frame(100))
    net.run()
    assert [c.direction for c in net.capture("a/vxf")] == ["in"]


def test_a_down_vxlan_device_has_no_socket() -> None:
    """With the device down its socket is closed: the datagram goes to UDP, which answers
    port unreachable (icmp_send from __udp4_lib_rcv)."""
    net = _net()
    net.link_set("a/vxf", up=False)
    net.send("b/ul1", _vxlan_frame(200))
    net.run()
    out = [c for c in net.capture("a/ul0") if c.direction == "out"]
    assert len(out) == 1
    assert out[0].data[34:36] == b"\x03\x03"    # ICMP type 3 code 3


def test_tos_inherit_from_an_ip_link_line_copies_the_inner_dsfield() -> None:
    """iplink_vxlan.c sends ``tos inherit`` as IFLA_VXLAN_TOS 1, which vxlan_xmit_one
    reads as "take the inner packet's dsfield" (ip_tunnel_get_dsfield)."""
    net = _net()
    net.ip("-n b link add vxb address 02:00:00:00:5b:01 type vxlan id 7 remote 10.1.0.1 "
           "dstport 4789 tos inherit")
    net.ip("-n b link set vxb up")
    net.ip("-n b neigh add 10.1.0.1 lladdr 02:00:00:00:01:01 dev ul1")
    net.send("b/vxb", udp_frame(dst=bytes.fromhex("020000005a01"),
                                src=bytes.fromhex("020000005b01"), tos=0xB8))
    net.run()
    out = [c for c in net.capture("b/ul1") if c.direction == "out"]
    assert len(out) == 1
    assert out[0].data[15] == 0xB8


def test_one_vni_per_port_and_mode() -> None:
    """vxlan_dev_configure refuses a second device with the same VNI, port and mode."""
    import pytest

    from tcemu.errors import NetError

    net = _net()
    with pytest.raises(NetError, match="VNI already exists"):
        net.link_add("vxg", "vxlan", netns="a", vni=100, remote="10.1.0.9", dstport=4789)
    net.link_add("vxh", "vxlan", netns="a", vni=100, remote="10.1.0.9", dstport=4790)


def test_collect_md_and_fixed_cannot_share_a_port() -> None:
    """vxlan_open -> vxlan_sock_add: a socket is shared only by devices of one receive
    mode; binding the port again fails with EADDRINUSE."""
    import pytest

    from tcemu.errors import NetError

    net = _net()                                   # a/vxf: fixed VNI 100, port 4789, up
    net.link_add("vxe", "vxlan", netns="a", external=True, dstport=4789)
    with pytest.raises(NetError, match="Address already in use") as info:
        net.link_set("a/vxe", up=True)
    assert info.value.errno == 98
    net.link_set("a/vxf", up=False)
    net.link_set("a/vxe", up=True)
