"""Actions on the datapath: act_bpf (2.3, spec-derived: act_bpf is not built in the test
kernel), vlan, tunnel_key with a collect_md VXLAN device, skbedit."""

from __future__ import annotations

import pytest

from tcemu.act import ActBpf, Gact, Skbedit, TunnelKey, VlanAction
from tcemu.bpf.uapi import BpfProgType
from tests.datapath.topo import CB, MAC_A, MAC_B, cb, prog, udp_frame, veth_net


def _act(value: int) -> ActBpf:
    p = prog(f"r2 = *(u32 *)(r6 +{CB})", "r2 += 1", f"*(u32 *)(r6 +{CB}) = r2",
             "r2 = 0x99", "*(u32 *)(r6 +72) = r2", f"r0 = {value}", "exit")
    p.prog_type = BpfProgType.SCHED_ACT
    return ActBpf(program=p, name=f"ret{value}")


@pytest.mark.parametrize(("r0", "delivered", "runs"), [
    (0, True, 1),      # OK passes through
    (2, False, 1),     # SHOT
    (3, True, 2),      # PIPE: the next action (a second act_bpf) runs, then OK
    (-1, True, 2),     # UNSPEC: the configured default (pipe)
    (4, True, 1),      # STOLEN becomes UNSPEC: the filter does not match, packet goes on
    (8, True, 1),      # TRAP likewise
    (42, True, 1),
])
def test_act_bpf_verdict_mapping(r0: int, delivered: bool, runs: int) -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", kind="matchall", actions=[_act(r0), _act(0)])
    net.send("a/veth0", udp_frame())
    got = net.dev("b/veth1").delivered
    assert bool(got) == delivered
    if got:
        assert cb(got[0].cb, 0) == runs
        assert got[0].tc_index == 0      # tc_classid written by act_bpf is ignored


def test_vlan_action_push_and_pop() -> None:
    net = veth_net()
    net.qdisc_add("a/veth0", "clsact")
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("a/veth0", "egress", kind="matchall",
                   actions=[VlanAction(op="push", vlan_id=5, priority=3)])
    net.filter_add("b/veth1", "ingress", kind="matchall", actions=[VlanAction(op="pop")])
    frame = udp_frame()
    net.send("a/veth0", frame)
    tagged = frame[:12] + bytes.fromhex("81006005") + frame[12:]
    assert net.capture("a/veth0")[0].data == tagged
    skb, = net.dev("b/veth1").delivered
    assert not skb.vlan_present
    assert net.delivered("b/veth1") == [frame]


def test_skbedit_and_gact() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", kind="matchall",
                   actions=[Skbedit(mark=0x55, priority=6), Gact(action=0)])
    net.send("a/veth0", udp_frame())
    skb, = net.dev("b/veth1").delivered
    assert (skb.mark, skb.priority) == (0x55, 6)


def test_tunnel_key_set_feeds_a_collect_md_vxlan() -> None:
    net = veth_net()
    net.addr_add("a/veth0", "10.9.0.1/24")
    net.addr_add("b/veth1", "10.9.0.2/24")
    net.neigh_add("a/veth0", "10.9.0.2", MAC_B)
    net.link_add("vx0", "vxlan", netns="a", external=True, dstport=4789)
    net.link_add("vx1", "vxlan", netns="b", external=True, dstport=4789)
    net.link_set("a/vx0", up=True)
    net.link_set("b/vx1", up=True)
    net.qdisc_add("a/vx0", "clsact")
    net.filter_add("a/vx0", "egress", kind="matchall", actions=[
        TunnelKey(op="set", src_ip="10.9.0.1", dst_ip="10.9.0.2", key_id=77, dst_port=4789)])
    inner = udp_frame(dst=net.dev("b/vx1").address, src=MAC_A)
    net.send("a/vx0", inner)
    outer, = [c for c in net.capture("a/veth0") if c.direction == "out"]   # not b's ICMP
    assert outer.data[42:50] == bytes.fromhex("08000000 00004d00")
    assert net.delivered("b/vx1") == [inner]
    skb, = net.dev("b/vx1").delivered
    assert skb.tunnel is not None
    assert (skb.tunnel.tun_id, skb.tunnel.tp_dst) == (77, 4789)


def test_collect_md_without_metadata_drops() -> None:
    # gotcha 21
    net = veth_net()
    net.link_add("vx0", "vxlan", netns="a", external=True)
    net.link_set("a/vx0", up=True)
    assert net.dev("a/vx0").dstport == 8472      # type: ignore[attr-defined]
    net.send("a/vx0", udp_frame())
    assert net.capture("a/veth0") == []
    assert "without TX tunnel info" in net.trace.events[-1].detail
