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


def test_frames_redirected_to_ingress_are_not_a_drivers() -> None:
    """bpf_redirect(BPF_F_INGRESS) hands the frame to the target's receive path without
    its driver: the target's rx counters stay (veth: they are the peer's tx ones)."""
    from tests.datapath.topo import prog

    net = veth_net()
    net.link_add("x0", "veth", netns="b", peer="x1", peer_netns="b")
    net.link_set("b/x0", up=True)
    net.link_set("b/x1", up=True)
    x0 = net.dev("b/x0").ifindex
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress",
                   prog=prog(f"r1 = {x0}", "r2 = 1", "call bpf_redirect", "exit"))
    net.send("a/veth0", udp_frame())
    assert [c.direction for c in net.capture("b/x0")] == ["in"]
    assert net.dev("b/x0").stats.rx_packets == 0
    assert net.dev("b/veth1").stats.rx_packets == 1


def test_a_protocol_without_handler_counts_rx_dropped_after_tc_ingress() -> None:
    """__netif_receive_skb_core: no ptype for the protocol and no tap left (tc ingress
    handed it to the taps first): dev_core_stats_rx_dropped_inc."""
    from tests.datapath.topo import prog

    net = veth_net()
    frame = udp_frame()[:12] + b"\x88\xb5" + bytes(46)
    net.send("a/veth0", frame)
    assert net.dev("b/veth1").stats.rx_dropped == 0        # the (always open) tap took it
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", prog=prog("r0 = 0", "exit"))
    net.send("a/veth0", frame)
    net.send("a/veth0", udp_frame())                        # IPv4 has a handler
    assert net.dev("b/veth1").stats.rx_dropped == 1
