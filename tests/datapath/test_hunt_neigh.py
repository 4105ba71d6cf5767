"""Neighbours of IFF_NOARP devices, found by the topology hunt
(tests/testdata/hunt_topo/redirect-edges).

Both kernel harnesses bring every device up with IFF_NOARP, and tcemu models every device
so (tcemu/net/tx.py ``neigh_ha``): a neighbour without a permanent entry is created in
``NUD_NOARP`` state with the device's own address (``arp_constructor`` in
net/ipv4/arp.c), so ``bpf_redirect_neigh`` towards an unknown neighbour sends the frame
with the output device's MAC as destination instead of dropping it; the receiver sees it
as PACKET_OTHERHOST.
"""

from __future__ import annotations

from tcemu.net import Net
from tests.datapath.topo import MAC_A, MAC_B, prog, udp_frame

MAC_F0, MAC_F1 = bytes.fromhex("020000000201"), bytes.fromhex("020000000202")


def _net() -> Net:
    net = Net(seed=0)
    for ns in ("h", "x", "y"):
        net.netns(ns)
    net.link_add("e0", "veth", netns="h", peer="e1", peer_netns="x", address=MAC_A,
                 peer_address=MAC_B)
    net.link_add("f0", "veth", netns="h", peer="f1", peer_netns="y", address=MAC_F0,
                 peer_address=MAC_F1)
    for dev in ("h/e0", "x/e1", "h/f0", "y/f1"):
        net.link_set(dev, up=True)
    net.addr_add("h/e0", "10.0.0.1/24")
    net.addr_add("h/f0", "10.0.1.1/24")
    return net


def _redirect_neigh_to_f0(net: Net) -> None:
    f0 = net.dev("h/f0").ifindex
    net.qdisc_add("h/e0", "clsact")
    net.filter_add("h/e0", "egress", prog=prog(f"r1 = {f0}", "r2 = 0", "r3 = 0", "r4 = 0",
                                               "call bpf_redirect_neigh", "exit"))


def test_redirect_neigh_without_an_entry_uses_the_devices_own_address() -> None:
    net = _net()
    _redirect_neigh_to_f0(net)
    net.send("h/e0", udp_frame(daddr=bytes([10, 0, 1, 5])))
    out = [c for c in net.capture("h/f0") if c.direction == "out"]
    assert len(out) == 1
    assert out[0].data[:12] == MAC_F0 + MAC_F0
    assert len(net.capture("y/f1")) == 1


def test_redirect_neigh_with_an_entry_uses_it() -> None:
    net = _net()
    _redirect_neigh_to_f0(net)
    net.neigh_add("h/f0", "10.0.1.6", MAC_F1)
    net.send("h/e0", udp_frame(daddr=bytes([10, 0, 1, 6])))
    out = [c for c in net.capture("h/f0") if c.direction == "out"]
    assert [c.data[:12] for c in out] == [MAC_F1 + MAC_F0]
