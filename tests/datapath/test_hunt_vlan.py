"""VLAN receive rules found by the topology hunt (tests/testdata/hunt_topo/vlan-tags).

``__netif_receive_skb_core`` (net/core/dev.c, ``check_vlan_id``): when no VLAN device
takes a hw-accel tag with VID 0 (802.1p) and the frame carries another tag inside, the
outer tag is dropped, the inner one untagged and looked up in turn; a VID-0 inner tag
is cleared as well and the frame is an ordinary one, a non-zero VID without a device
makes it OTHERHOST.
"""

from __future__ import annotations

import pytest

from tests.datapath.topo import MAC_A, MAC_B, udp_frame, veth_net


def _icmp_echo() -> bytes:
    """IPv4 10.0.0.1 -> 10.0.0.2, ICMP echo request, checksums filled in by scapy."""
    from scapy.layers.inet import ICMP, IP
    from scapy.packet import Raw

    return bytes(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(id=1, seq=1) / Raw(b"ping"))


def _tags(*vids: int) -> bytes:
    return b"".join(b"\x81\x00" + vid.to_bytes(2, "big") for vid in vids)


@pytest.mark.parametrize(("vids", "answered"), [((0,), True), ((0, 0), True),
                                                ((0, 7), False), ((7,), False),
                                                ((0, 0, 0), True)])
def test_vid0_tags_are_stripped_until_a_real_one(vids: tuple[int, ...],
                                                 answered: bool) -> None:
    net = veth_net()
    frame = MAC_B + MAC_A + _tags(*vids) + b"\x08\x00" + _icmp_echo()
    net.send("a/veth0", frame)
    replies = [c for c in net.capture("b/veth1") if c.direction == "out"]
    assert len(replies) == (1 if answered else 0)
    if answered:
        assert replies[0].data[12:14] == b"\x08\x00"        # the answer is untagged


def test_untagged_frames_are_unaffected() -> None:
    net = veth_net()
    net.send("a/veth0", udp_frame())
    assert [c.direction for c in net.capture("b/veth1")] == ["in", "out"]
