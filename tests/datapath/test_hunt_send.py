"""Frames the host sends (Net.send, an AF_PACKET send), found by the topology hunt.

net/packet/af_packet.c ``packet_snd`` refuses with EMSGSIZE a frame longer than the
device's MTU plus its hard header (14 bytes), allowing 4 bytes more only for an
802.1Q-tagged frame on an Ethernet device (``packet_extra_vlan_len_allowed``).
"""

from __future__ import annotations

import pytest

from tcemu.errors import NetError
from tests.datapath.topo import udp_frame, veth_net


def _tagged(frame: bytes, tpid: bytes = b"\x81\x00") -> bytes:
    return frame[:12] + tpid + b"\x00\x03" + frame[12:]


def test_frames_up_to_mtu_plus_header_are_sent() -> None:
    net = veth_net()
    net.link_set("a/veth0", mtu=100)
    net.send("a/veth0", udp_frame(payload=b"x" * 72))                 # 114 bytes
    net.send("a/veth0", _tagged(udp_frame(payload=b"x" * 72)))        # 118, 802.1Q
    assert [len(c.data) for c in net.capture("a/veth0")][:2] == [114, 118]


@pytest.mark.parametrize("frame", [udp_frame(payload=b"x" * 73),
                                   _tagged(udp_frame(payload=b"x" * 73)),
                                   _tagged(udp_frame(payload=b"x" * 72), b"\x88\xa8")],
                         ids=["untagged", "802.1Q", "802.1ad"])
def test_longer_frames_are_refused_with_emsgsize(frame: bytes) -> None:
    net = veth_net()
    net.link_set("a/veth0", mtu=100)
    with pytest.raises(NetError, match="Message too long") as info:
        net.send("a/veth0", frame)
    assert info.value.errno == 90
    assert net.capture("a/veth0") == []
