"""Carrier, found by the topology hunt (tests/testdata/hunt_topo/odd-frames, mirred-ns).

A veth has carrier only while both ends are up (drivers/net/veth.c ``veth_open``,
``veth_close``); without carrier ``dev_activate`` never replaces the noop qdisc, so a
transmission runs tc egress and is then dropped by ``noop_enqueue`` (NET_XMIT_CN) before
the taps (net/sched/sch_generic.c).  act_mirred refuses a target without carrier like a
down one (``tcf_mirred_act``).  A VLAN device follows its lower device's carrier.
"""

from __future__ import annotations

from tcemu.act import Mirred
from tcemu.net import Net
from tests.datapath.topo import MAC_A, MAC_B, prog, udp_frame

MAC_C, MAC_D = bytes.fromhex("020000000003"), bytes.fromhex("020000000004")


def _net() -> Net:
    """a/veth0 <-> b/veth1 (up), a/dn0 (up) <-> b/dn1 (down)."""
    net = Net(seed=0)
    net.netns("a")
    net.netns("b")
    net.link_add("veth0", "veth", netns="a", peer="veth1", peer_netns="b", address=MAC_A,
                 peer_address=MAC_B)
    net.link_add("dn0", "veth", netns="a", peer="dn1", peer_netns="b", address=MAC_C,
                 peer_address=MAC_D)
    for dev in ("a/veth0", "b/veth1", "a/dn0"):
        net.link_set(dev, up=True)
    return net


def test_no_carrier_while_the_peer_is_down() -> None:
    net = _net()
    dn0 = net.dev("a/dn0")
    assert dn0.up
    assert not dn0.carrier
    assert net.dev("a/veth0").carrier
    net.link_set("b/dn1", up=True)
    assert dn0.carrier
    assert net.dev("b/dn1").carrier


def test_transmission_runs_tc_egress_then_the_noop_qdisc_drops_it() -> None:
    net = _net()
    net.qdisc_add("a/dn0", "clsact")
    net.filter_add("a/dn0", "egress", prog=prog("r0 = 0", "exit"))
    net.trace.enabled = True
    net.send("a/dn0", udp_frame(dst=MAC_D, src=MAC_C))
    assert net.last_xmit == 2                      # NET_XMIT_CN from noop_enqueue
    assert net.capture("a/dn0") == []
    assert net.capture("b/dn1") == []
    stages = [e.stage for e in net.trace.events if e.dev == "dn0"]
    assert "prog" in stages
    assert stages[-1] == "drop", stages


def test_mirred_refuses_a_target_without_carrier() -> None:
    net = _net()
    net.qdisc_add("a/veth0", "clsact")
    net.filter_add("a/veth0", "egress", kind="matchall",
                   actions=[Mirred.make("dn0", redirect=True)])
    net.send("a/veth0", udp_frame())
    assert net.capture("a/dn0") == []
    assert net.capture("b/veth1") == []           # the redirect dropped it (SHOT)
