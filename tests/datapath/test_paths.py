"""RX and TX paths, taps and what survives a veth crossing (kernel-semantics.md 3.1-3.4)."""

from __future__ import annotations

from tcemu.skb import PktType
from tests.datapath.topo import (
    IFINDEX,
    INGRESS_IFINDEX,
    LEN,
    MAC_A,
    MAC_B,
    MARK,
    PKT_TYPE,
    PRIORITY,
    WIRE_LEN,
    cb,
    prog,
    store_cb,
    udp_frame,
    veth_net,
)


def test_veth_delivers_and_both_ends_capture() -> None:
    net = veth_net()
    frame = udp_frame()
    pkt = net.send("a/veth0", frame)
    # b's host answers the closed port (tcemu/net/icmp.py): keep this packet's frames
    out, = [c for c in net.capture("a/veth0") if c.pkt == pkt]
    inn, = [c for c in net.capture("b/veth1") if c.pkt == pkt]
    assert (out.direction, out.data, out.pkt) == ("out", frame, pkt)
    assert (inn.direction, inn.data) == ("in", frame)
    assert net.delivered("b/veth1") == [frame]
    assert net.trace.stages(pkt) == ["send veth0", "xmit veth0", "tap veth0", "rx veth1",
                                     "tap veth1", "deliver veth1"]


def test_otherhost_is_captured_then_dropped() -> None:
    # 3.1 step 9: ip_rcv drops PACKET_OTHERHOST; the tap saw it before.
    net = veth_net()
    net.send("a/veth0", udp_frame(dst=bytes.fromhex("02aabbccddee")))
    assert len(net.capture("b/veth1")) == 1
    assert net.delivered("b/veth1") == []
    assert net.trace.events[-1].stage == "drop"


def test_broadcast_pkt_type() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", prog=prog(*store_cb(0, PKT_TYPE), "r0 = -1", "exit"))
    net.send("a/veth0", udp_frame(dst=b"\xff" * 6))
    skb, = net.dev("b/veth1").delivered
    assert cb(skb.cb, 0) == PktType.BROADCAST


def test_ingress_and_egress_fields() -> None:
    # 3.3 and the table of section 1: len includes L2 at both hooks; wire_len is len at
    # egress and len - mac_len at ingress; ingress_ifindex is 0 for local traffic.
    net = veth_net()
    for dev, _parent in (("a/veth0", "egress"), ("b/veth1", "ingress")):
        net.qdisc_add(dev, "clsact")
    fields = [*store_cb(0, LEN), *store_cb(1, WIRE_LEN), *store_cb(2, IFINDEX),
              *store_cb(3, INGRESS_IFINDEX)]
    net.filter_add("a/veth0", "egress", prog=prog(*fields, "r0 = -1", "exit"))
    frame = udp_frame()
    net.send("a/veth0", frame)
    skb, = net.dev("b/veth1").delivered
    # cb survives the veth crossing (section 3.4): these are the egress values.
    assert [cb(skb.cb, i) for i in range(4)] == [len(frame), len(frame), 2, 0]
    net.filter_add("b/veth1", "ingress", prog=prog(*fields, "r0 = -1", "exit"))
    net.send("a/veth0", frame)
    skb = net.dev("b/veth1").delivered[-1]
    assert [cb(skb.cb, i) for i in range(4)] == [len(frame), len(frame) - 14, 2, 2]


def test_scrub_across_netns_and_priority() -> None:
    # 3.4: veth to another netns: mark 0, priority 0; same netns keeps the mark.
    for same, mark in ((False, 0), (True, 7)):
        net = veth_net(same_netns=same)
        peer = "default/veth1" if same else "b/veth1"
        src = "default/veth0" if same else "a/veth0"
        net.qdisc_add(peer, "clsact")
        net.filter_add(peer, "ingress", prog=prog(*store_cb(0, MARK), *store_cb(1, PRIORITY),
                                                  "r0 = -1", "exit"))
        net.send(src, udp_frame(), mark=7, priority=5)
        skb, = net.dev(peer).delivered
        assert (cb(skb.cb, 0), cb(skb.cb, 1)) == (mark, 0)


def test_down_peer_drops() -> None:
    net = veth_net()
    net.link_set("b/veth1", up=False)
    net.send("a/veth0", udp_frame())
    assert net.capture("b/veth1") == []
    assert net.trace.events[-1].stage == "drop"


def test_eth_wire_and_checksum_offload() -> None:
    net = veth_net()
    net.link_add("eth0", "eth", peer="eth1", address=MAC_A, peer_address=MAC_B)
    net.link_set("eth0", up=True)
    net.link_set("eth1", up=True)
    frame = udp_frame()
    net.send("eth0", frame)
    net.run()
    assert net.delivered("eth1") == [frame]
    net.link_add("eth2", "eth")
    net.link_set("eth2", up=True)
    net.send("eth2", frame)
    assert net.dev("eth2").wire_out == [frame]       # type: ignore[attr-defined]
    net.receive("eth2", udp_frame(dst=net.dev("eth2").address))
    assert len(net.delivered("eth2")) == 1
    net.clear()                                       # a long run forgets the wire too
    assert net.dev("eth2").wire_out == []             # type: ignore[attr-defined]
    assert net.delivered("eth2") == []
    net.send("eth2", frame)
    assert net.dev("eth2").wire_out == [frame]       # type: ignore[attr-defined]


def test_loopback() -> None:
    net = veth_net()
    frame = udp_frame(dst=bytes(6), src=bytes(6))
    net.send("lo", frame)
    assert [c.direction for c in net.capture("lo")] == ["out", "in"]
    assert net.delivered("lo") == [frame]
