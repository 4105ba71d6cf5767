"""Device counters, found by the topology hunt (tests/testdata/hunt_topo/odd-frames,
whose counter expectations hold on the kernel too).

Drivers count what they pass on: ``veth_xmit`` adds tx packets/bytes only when the peer
took the frame (else ``priv->dropped``: tx_dropped), and ``__dev_forward_skb2`` counts
rx_dropped on the receiving device for a frame over its MTU; ``loopback_xmit`` counts
bytes after ``eth_type_trans`` pulled the Ethernet header, for rx and tx alike.
"""

from __future__ import annotations

from tests.datapath.topo import udp_frame, veth_net


def test_veth_counts_only_what_the_peer_took() -> None:
    net = veth_net()
    net.link_set("b/veth1", mtu=100)
    small, big = udp_frame(payload=bytes(50)), udp_frame(payload=bytes(200))
    net.send("a/veth0", small)
    net.send("a/veth0", big)
    a, b = net.dev("a/veth0").stats, net.dev("b/veth1").stats
    assert (a.tx_packets, a.tx_bytes, a.tx_dropped) == (1, len(small), 1)
    assert (b.rx_packets, b.rx_bytes, b.rx_dropped) == (1, len(small), 1)


def test_loopback_counts_without_the_ethernet_header() -> None:
    net = veth_net()
    net.link_set("a/lo", up=True)
    frame = bytes(12) + b"\x08\x00" + udp_frame()[14:]
    net.send("a/lo", frame)
    lo = net.dev("a/lo").stats
    assert (lo.tx_packets, lo.tx_bytes) == (1, len(frame) - 14)
    assert (lo.rx_packets, lo.rx_bytes) == (1, len(frame) - 14)
