"""The keyword API: objects loaded through filters, maps by name, filter deletion, the
per-packet trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcemu.errors import NetError
from tcemu.qdisc import HtbQdisc
from tests.datapath.topo import cb, prog, udp_frame, veth_net

OBJ = Path(__file__).resolve().parent / "bpf" / "datapath.bpf.o"


def test_filter_from_object_and_maps_by_name() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", obj=OBJ, sec="tc")
    cfg = net.maps["cfg"]
    cfg.update((2).to_bytes(4, "little"), (2).to_bytes(4, "little"))   # verdict SHOT
    net.send("a/veth0", udp_frame(payload=bytes(100)))
    assert net.delivered("b/veth1") == []
    net.qdisc_add("a/veth0", "clsact")
    net.filter_add("a/veth0", "egress", obj=OBJ, sec="tc")   # a second instance
    with pytest.raises(NetError, match="several loaded objects"):
        net.maps["cfg"]
    assert net.maps["datapath.bpf.o#2:cfg"] is not cfg
    assert net.maps["datapath.bpf.o:cfg"] is cfg


def test_missing_section_is_named() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    with pytest.raises(NetError, match="section 'nope' not found"):
        net.filter_add("b/veth1", "ingress", obj=OBJ, sec="nope")
    with pytest.raises(NetError, match="Parent Qdisc doesn't exists"):
        net.filter_add("a/veth0", "egress", prog=prog("r0 = 0", "exit"))


def test_filter_del_and_show() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    f1 = net.filter_add("b/veth1", "ingress", prio=1, prog=prog("r0 = 2", "exit"))
    f2 = net.filter_add("b/veth1", "ingress", prio=1, prog=prog("r0 = -1", "exit"))
    assert [f for _, _, f in net.filters("b/veth1", "ingress")] == [f2, f1]
    net.filter_del("b/veth1", "ingress", prio=1, handle=f1.handle)
    net.send("a/veth0", udp_frame())
    assert len(net.delivered("b/veth1")) == 1
    net.qdisc_del("b/veth1", "clsact")
    with pytest.raises(NetError):
        net.filters("b/veth1", "ingress")


def test_trace_follows_the_packet() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", prio=1,
                   prog=prog("r2 = 1", "*(u32 *)(r6 +48) = r2", "r0 = 0", "exit", name="p"))
    pkt = net.send("a/veth0", udp_frame())
    stages = [(e.stage, e.dev) for e in net.trace.of(pkt)]
    assert stages == [("send", "veth0"), ("xmit", "veth0"), ("tap", "veth0"),
                      ("rx", "veth1"), ("tap", "veth1"), ("tc", "veth1"), ("prog", "veth1"),
                      ("verdict", "veth1"), ("deliver", "veth1")]
    verdict = next(e for e in net.trace.of(pkt) if e.stage == "verdict")
    assert verdict.verdict == 0
    assert "TC_ACT_OK" in str(verdict)
    assert cb(net.dev("b/veth1").delivered[0].cb, 0) == 1
    assert net.capture("b/veth1")[0].verdict == 0


def test_netlink_parent_values_and_htb_classes() -> None:
    # The parser hands parents as netlink values: ffff:fff2 is clsact's ingress.
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", 0xFFFF_FFF2, prog=prog("r0 = 2", "exit"))
    net.send("a/veth0", udp_frame())
    assert net.delivered("b/veth1") == []
    net.qdisc_add("a/veth0", "htb", handle="1:", default=0x20)
    net.class_add("a/veth0", "1:", "1:10", rate=1_000_000)
    net.class_add("a/veth0", "1:", "1:20", rate=1_000_000)
    net.filter_add("a/veth0", 0x1_0000, classid="1:", prog=prog(
        "r2 = 0x10", "*(u32 *)(r6 +72) = r2", "r0 = 0", "exit"))
    net.send("a/veth0", udp_frame())
    net.run()
    qdisc = net.dev("a/veth0").qdisc
    assert isinstance(qdisc, HtbQdisc)
    leaves = [qdisc.find(c) for c in (0x1_0010, 0x1_0020)]
    assert [cl.leaf.stats.packets for cl in leaves if cl and cl.leaf] == [1, 0]


def test_pinned_program() -> None:
    net = veth_net()
    p = prog("r0 = 2", "exit")
    net.env.pins["/sys/fs/bpf/tc/drop"] = p
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "ingress", pinned="/sys/fs/bpf/tc/drop")
    net.send("a/veth0", udp_frame())
    assert net.delivered("b/veth1") == []
    with pytest.raises(NetError, match="no program pinned"):
        net.filter_add("b/veth1", "ingress", pinned="/sys/fs/bpf/nope")


def test_ip_deletes_and_rename() -> None:
    net = veth_net()
    net.addr_del("a/veth0", "10.0.0.1/24")
    with pytest.raises(NetError, match="Cannot assign"):
        net.addr_del("a/veth0", "10.0.0.1/24")
    net.route_add("10.7.0.0/16", dev="veth0", netns="a")
    net.route_del("10.7.0.0/16", netns="a")
    with pytest.raises(NetError, match="No such process"):
        net.route_del("10.7.0.0/16", netns="a")
    net.neigh_add("a/veth0", "10.0.0.2", "02:00:00:00:00:02")
    net.neigh_del("a/veth0", "10.0.0.2")
    net.link_set("a/veth0", rename="eth9")
    assert net.dev("a/eth9").ifindex == 2
    net.netns_del("b")
    assert "b" not in net.namespaces
    assert "eth9" not in net.namespaces["a"].devices    # the veth went with its peer


def test_last_xmit_and_clear() -> None:
    # 2.5: a drop at tc egress makes dev_queue_xmit return NET_XMIT_DROP (ENOBUFS for
    # AF_PACKET); STOLEN is a success.
    net = veth_net()
    net.qdisc_add("a/veth0", "clsact")
    net.filter_add("a/veth0", "egress", prio=1, prog=prog("r0 = 2", "exit"))
    net.send("a/veth0", udp_frame())
    assert net.last_xmit == 1
    net.filter_del("a/veth0", "egress", prio=1)
    net.filter_add("a/veth0", "egress", prio=1, prog=prog("r0 = 4", "exit"))
    net.send("a/veth0", udp_frame())
    assert net.last_xmit == 0
    net.clear()
    assert len(net.trace) == 0
    assert net.capture("a/veth0") == []


def test_test_run_of_a_program_in_the_network() -> None:
    # BPF_PROG_TEST_RUN runs on lo of the caller's netns: bpf_clone_redirect to lo really
    # sends (9.4), and the network's event loop delivers it.
    from tcemu.bpf import assemble

    net = veth_net()
    p = assemble("r6 = r1\nr1 = r6\nr2 = 1\nr3 = 0\ncall bpf_clone_redirect\nexit")
    result = p.test_run(udp_frame(dst=bytes(6)), vm=net.vm_for(p))
    assert result.retval == 0
    net.run()
    assert [c.direction for c in net.capture("lo")] == ["out", "in"]
