"""IPv4 options at the local stack, found by the topology hunt
(tests/testdata/hunt_topo/ip-options): ``ip_options_compile`` accepts NOP/EOL, router
alert and option types without meaning to it, and ``ip_options_echo`` has nothing of
those to send back, so the datagram is answered as one without options; a malformed
option is answered with ICMP parameter problem (type 12) pointing at it.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, IPOption
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tests.datapath.topo import MAC_A, MAC_B, veth_net


def _frame(option: bytes) -> bytes:
    return bytes(Ether(src=MAC_A, dst=MAC_B)
                 / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption(option)])
                 / ICMP(id=1, seq=1) / Raw(b"ping"))


@pytest.mark.parametrize("option", [b"\x01\x01\x01\x00", b"\x94\x04\x00\x00",
                                    b"\x1e\x04\xaa\xbb"], ids=["nop", "router-alert", "other"])
def test_answered_without_options(option: bytes) -> None:
    net = veth_net()
    net.send("a/veth0", _frame(option))
    out = [Ether(c.data) for c in net.capture("b/veth1") if c.direction == "out"]
    assert len(out) == 1
    assert (out[0][IP].ihl, out[0][ICMP].type) == (5, 0)


@pytest.mark.parametrize(("option", "pointer"), [(b"\x01\x44\x09\x05", 21),
                                                 (b"\x94\x02\x01\x00", 21)])
def test_malformed_option_is_a_parameter_problem(option: bytes, pointer: int) -> None:
    net = veth_net()
    net.send("a/veth0", _frame(option))
    out = [Ether(c.data) for c in net.capture("b/veth1") if c.direction == "out"]
    assert len(out) == 1
    icmp = bytes(out[0][ICMP])
    assert (icmp[0], icmp[1], icmp[4]) == (12, 0, pointer)
