"""VLAN devices (section 6.3, expectations from the spec: no 8021q module on the test
kernel), qdiscs on the datapath's clock, tcx, and helpers that need the network
(fib_lookup, get_cgroup_classid, get_route_realm, check_mtu)."""

from __future__ import annotations

from tcemu.net import Net
from tests.datapath.topo import (
    IFINDEX,
    INGRESS_IFINDEX,
    LEN,
    MAC_B,
    TC_CLASSID,
    VLAN_PRESENT,
    VLAN_TCI,
    cb,
    prog,
    ret,
    store_cb,
    udp_frame,
    veth_net,
)

RECORD = [*store_cb(0, VLAN_PRESENT), *store_cb(1, VLAN_TCI), *store_cb(2, LEN),
          *store_cb(3, INGRESS_IFINDEX), *store_cb(4, IFINDEX), "r0 = -1", "exit"]


def _vlan_net() -> Net:
    net = veth_net()
    net.link_add("v10", "vlan", netns="a", link="veth0", vlan_id=10)
    net.link_add("v10", "vlan", netns="b", link="veth1", vlan_id=10)
    net.link_set("a/v10", up=True)
    net.link_set("b/v10", up=True)
    return net


def test_vlan_tx_puts_the_tag_in_hw_accel() -> None:
    # 6.3 TX: the lower device's tc egress sees vlan_present=1 and untagged data; the
    # capture shows the tag in the bytes (libpcap); the peer's RX untags it again.
    net = _vlan_net()
    net.qdisc_add("a/veth0", "clsact")
    net.filter_add("a/veth0", "egress", prog=prog(*RECORD))
    frame = udp_frame()
    net.send("a/v10", frame)
    tagged = frame[:12] + bytes.fromhex("8100000a") + frame[12:]
    # b's host answers the closed port with an ICMP error (tcemu/net/icmp.py): not shown
    assert [c.data for c in net.capture("a/veth0") if c.direction == "out"] == [tagged]
    assert [c.data for c in net.capture("a/v10")] == [frame]
    assert [c.data for c in net.capture("b/veth1") if c.direction == "in"] == [tagged]
    assert [c.data for c in net.capture("b/v10")] == [frame]
    skb, = net.dev("b/v10").delivered
    assert [cb(skb.cb, i) for i in range(3)] == [1, 10, len(frame)]


def test_vlan_rx_another_round() -> None:
    # 6.3 RX: the real device's tc ingress sees the hw-accel tag; the vlan device's tc
    # ingress sees untagged data, vlan_present=0, ingress_ifindex = the vlan device.
    net = _vlan_net()
    for dev in ("b/veth1", "b/v10"):
        net.qdisc_add(dev, "clsact")
    net.filter_add("b/veth1", "ingress", prog=prog(*RECORD))
    net.send("a/v10", udp_frame())
    skb, = net.dev("b/v10").delivered
    assert (cb(skb.cb, 0), cb(skb.cb, 1), cb(skb.cb, 3)) == (1, 10, net.dev("b/veth1").ifindex)
    net.filter_add("b/v10", "ingress", prog=prog(*RECORD))
    net.send("a/v10", udp_frame())
    skb = net.dev("b/v10").delivered[-1]
    v10 = net.dev("b/v10").ifindex
    assert [cb(skb.cb, i) for i in (0, 1, 3, 4)] == [0, 0, v10, v10]
    assert (skb.vlan_proto, skb.vlan_tci) == (0, 0)


def test_vlan_unknown_vid_is_otherhost() -> None:
    net = veth_net()
    frame = udp_frame()
    net.send("a/veth0", frame[:12] + bytes.fromhex("81000063") + frame[12:])
    assert net.delivered("b/veth1") == []
    assert net.trace.events[-1].detail.startswith("PACKET_OTHERHOST")
    net.send("a/veth0", frame[:12] + bytes.fromhex("81000000") + frame[12:])   # VID 0
    assert len(net.delivered("b/veth1")) == 1


def test_qinq_device() -> None:
    net = veth_net()
    net.link_add("s20", "vlan", netns="a", link="veth0", vlan_id=20, protocol="802.1ad")
    net.link_add("s20", "vlan", netns="b", link="veth1", vlan_id=20, protocol="802.1ad")
    net.link_set("a/s20", up=True)
    net.link_set("b/s20", up=True)
    frame = udp_frame()
    net.send("a/s20", frame)
    assert net.capture("a/veth0")[0].data == frame[:12] + bytes.fromhex("88a80014") + \
        frame[12:]
    assert net.delivered("b/s20") == [frame]


def test_tx_vlan_offload_off_writes_the_tag_before_the_tap() -> None:
    net = _vlan_net()
    net.dev("a/veth0").features.tx_vlan_offload = False
    net.send("a/v10", udp_frame())
    skb, = net.dev("b/v10").delivered     # untagged by the peer's skb_vlan_untag
    assert net.capture("b/veth1")[0].data[12:16] == bytes.fromhex("8100000a")
    assert skb.len == len(udp_frame()) - 14


def test_netem_delay_on_the_virtual_clock() -> None:
    net = veth_net()
    net.qdisc_add("a/veth0", "netem", delay=2_000_000)
    start = net.clock.now_ns()
    net.send("a/veth0", udp_frame())
    assert net.capture("a/veth0") == []
    net.advance(1_000_000)
    assert net.capture("a/veth0") == []
    net.run()
    out, = [c for c in net.capture("a/veth0") if c.direction == "out"]   # not b's ICMP
    inn, = [c for c in net.capture("b/veth1") if c.direction == "in"]
    assert out.timestamp == inn.timestamp == start + 2_000_000


def test_prio_qdisc_classified_by_bpf() -> None:
    # A da program's class: TC_H_MAJ(classid) | tc_classid picks the prio band (2.5).
    net = veth_net()
    net.qdisc_add("a/veth0", "prio", handle="1:")
    net.filter_add("a/veth0", "1:", classid="1:", prog=prog(
        "r2 = 3", f"*(u32 *)(r6 +{TC_CLASSID}) = r2", "r0 = 0", "exit"))
    net.send("a/veth0", udp_frame())
    assert len(net.delivered("b/veth1")) == 1
    qdisc = net.dev("a/veth0").qdisc
    assert qdisc is not None
    assert qdisc.stats.packets == 1


def test_tcx_runs_before_clsact() -> None:
    # 2.4: tcx PASS copies tc_classid to tc_index and skips clsact; NEXT (-1) runs it.
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", prog=ret(2))
    net.tcx_attach("b/veth1", "ingress", prog(
        "r2 = 0x42", f"*(u32 *)(r6 +{TC_CLASSID}) = r2", "r0 = 0", "exit"))
    net.send("a/veth0", udp_frame())
    skb, = net.dev("b/veth1").delivered
    assert skb.tc_index == 0x42
    net2 = veth_net()
    net2.qdisc_add("b/veth1", "clsact")
    net2.filter_add("b/veth1", "ingress", prog=ret(2))
    net2.tcx_attach("b/veth1", "ingress", ret(42))     # any other value: NEXT
    net2.send("a/veth0", udp_frame())
    assert net2.dev("b/veth1").delivered == []


def _fib_prog(flags: int) -> list[str]:
    """bpf_fib_lookup on a stack struct: family AF_INET, ifindex 2, dst 10.1.0.9; cb[0] =
    result, cb[1] = ifindex out, cb[2] = dmac[0..1] | dmac[2..3] << 16."""
    dst = int.from_bytes(bytes([10, 1, 0, 9]), "little")
    return ["r1 = 0", *[f"*(u64 *)(r10 -{8 * i}) = r1" for i in range(1, 9)],
            "r1 = 2", "*(u8 *)(r10 -64) = r1", "r1 = 2", "*(u32 *)(r10 -56) = r1",
            f"r1 = {dst}", "*(u32 *)(r10 -32) = r1",
            "r1 = r6", "r2 = r10", "r2 += -64", "r3 = 64", f"r4 = {flags}",
            "call bpf_fib_lookup", f"*(u32 *)(r6 +{48}) = r0",
            "r1 = *(u32 *)(r10 -56)", f"*(u32 *)(r6 +{52}) = r1",
            "r1 = *(u16 *)(r10 -6)", "r2 = *(u16 *)(r10 -4)", "r2 <<= 16", "r1 |= r2",
            f"*(u32 *)(r6 +{56}) = r1", "r0 = -1", "exit"]


def test_fib_lookup() -> None:
    net = veth_net()
    net.qdisc_add("a/veth0", "clsact")
    net.filter_add("a/veth0", "egress", prog=prog(*_fib_prog(0)))
    net.send("a/veth0", udp_frame())
    assert cb(net.dev("b/veth1").delivered[-1].cb, 0) == 5        # FWD_DISABLED
    net.sysctl_forwarding("a")
    net.send("a/veth0", udp_frame())
    assert cb(net.dev("b/veth1").delivered[-1].cb, 0) == 4        # no route: NOT_FWDED
    net.route_add("10.1.0.0/16", via="10.0.0.2", netns="a")
    net.send("a/veth0", udp_frame())
    assert cb(net.dev("b/veth1").delivered[-1].cb, 0) == 7        # NO_NEIGH
    net.neigh_add("a/veth0", "10.0.0.2", MAC_B)
    net.send("a/veth0", udp_frame())
    skb = net.dev("b/veth1").delivered[-1]
    assert [cb(skb.cb, i) for i in range(3)] == [0, 2, int.from_bytes(MAC_B[:4], "little")]
    net.route_add("10.1.0.9/32", type="blackhole", netns="a")
    net.send("a/veth0", udp_frame())
    assert cb(net.dev("b/veth1").delivered[-1].cb, 0) == 1        # BLACKHOLE
    net.route_add("10.1.0.9/32", type="unreachable", netns="a", table=254, metric=1)
    net.route_del("10.1.0.9/32", netns="a")                      # the blackhole goes
    net.send("a/veth0", udp_frame())
    assert cb(net.dev("b/veth1").delivered[-1].cb, 0) == 2        # UNREACHABLE


def test_cgroup_classid_route_realm_and_mtu() -> None:
    # Section 8: at a tc hook the socket's classid (0 without a socket); get_route_realm
    # is 0 without a route attached; check_mtu reports the device MTU.
    net = veth_net()
    net.link_set("a/veth0", mtu=1400)
    net.qdisc_add("a/veth0", "clsact")
    net.filter_add("a/veth0", "egress", prog=prog(
        "r1 = r6", "call bpf_get_cgroup_classid", f"*(u32 *)(r6 +{48}) = r0",
        "r1 = r6", "call bpf_get_route_realm", f"*(u32 *)(r6 +{52}) = r0",
        "r1 = 0", "*(u32 *)(r10 -4) = r1", "r1 = r6", "r2 = 0", "r3 = r10", "r3 += -4",
        "r4 = 0", "r5 = 0", "call bpf_check_mtu", f"*(u32 *)(r6 +{56}) = r0",
        "r1 = *(u32 *)(r10 -4)", f"*(u32 *)(r6 +{60}) = r1", "r0 = -1", "exit"))
    net.send("a/veth0", udp_frame(), classid=0x100001)
    net.send("a/veth0", udp_frame())
    first, second = net.dev("b/veth1").delivered
    assert [cb(first.cb, i) for i in range(4)] == [0x100001, 0, 0, 1400]
    assert cb(second.cb, 0) == 0
    assert first.has_sk is False


def test_fib_lookup_ipv6_through_the_env_hook() -> None:
    from tcemu.net.fib import fib_lookup
    from tcemu.skb import SkBuff

    net = veth_net()
    net.sysctl_forwarding("a")
    net.addr_add("a/veth0", "fd00::1/64")
    net.neigh_add("a/veth0", "fd00::2", MAC_B)
    skb = SkBuff(bytearray(64))
    skb.dev = net.dev("a/veth0")
    params = bytearray(64)
    params[0] = 10
    params[8:12] = (2).to_bytes(4, "little")
    params[32:48] = bytes.fromhex("fd000000000000000000000000000002")
    assert fib_lookup(net, skb, params, 16) == 0                   # BPF_FIB_LOOKUP_SRC
    assert params[16:32] == bytes.fromhex("fd000000000000000000000000000001")
    assert params[58:64] == MAC_B
    params[32:48] = bytes.fromhex("fd010000000000000000000000000002")
    assert fib_lookup(net, skb, params, 0) == 4                     # no route: NOT_FWDED
