"""Namespaces, ifindex allocation and device state (issue 5, netdevs)."""

from __future__ import annotations

import pytest

from tcemu.errors import NetError
from tcemu.net import Net


def test_lo_is_ifindex_1_in_every_netns() -> None:
    net = Net()
    net.netns("a")
    assert net.dev("default/lo").ifindex == 1
    assert net.dev("a/lo").ifindex == 1
    assert net.dev("lo").up
    assert not net.dev("a/lo").up


def test_veth_peer_is_registered_first() -> None:
    # veth_newlink registers the peer before the device: `ip link add veth0 type veth peer
    # name veth1` gives veth1 ifindex 2 and veth0 ifindex 3.
    net = Net()
    net.link_add("veth0", "veth", peer="veth1")
    assert net.dev("veth1").ifindex == 2
    assert net.dev("veth0").ifindex == 3


def test_ifindex_is_never_reused() -> None:
    net = Net()
    net.link_add("d0", "dummy")
    net.link_add("d1", "dummy")
    net.link_del("d1")
    assert net.link_add("d2", "dummy").ifindex == 4


def test_move_keeps_ifindex_unless_taken() -> None:
    net = Net()
    net.netns("a")
    net.link_add("x", "dummy", netns="a")          # a: lo 1, x 2
    moved = net.link_add("veth0", "veth", peer="veth1")  # default: veth1 2, veth0 3
    net.link_set("veth0", netns="a")
    assert moved.netns == "a"
    assert moved.ifindex == 3
    net.link_set("veth1", netns="a")               # 2 is taken in a: a new index
    assert net.dev("a/veth1").ifindex == 4
    assert not net.dev("a/veth1").up               # moving closes the device


def test_noqueue_and_default_qdiscs() -> None:
    net = Net()
    veth = net.link_add("veth0", "veth", peer="veth1")
    eth = net.link_add("eth0", "eth")
    assert veth.no_queue
    assert veth.qdisc is None
    assert not eth.no_queue
    assert eth.qdisc is not None
    assert eth.qdisc.kind == "pfifo_fast"


def test_errors_name_the_problem() -> None:
    net = Net()
    with pytest.raises(NetError, match='Cannot find device "nope"'):
        net.link_set("nope", up=True)
    with pytest.raises(NetError, match="Unknown device type"):
        net.link_add("x", "bogus")
    net.link_add("d", "dummy")
    with pytest.raises(NetError, match="File exists"):
        net.link_add("d", "dummy")
    with pytest.raises(NetError, match="Network is down"):
        net.send("d", bytes(14))


def test_macs_are_seeded() -> None:
    a = Net(seed=7).link_add("d", "dummy").address
    b = Net(seed=7).link_add("d", "dummy").address
    c = Net(seed=8).link_add("d", "dummy").address
    assert a == b != c
    assert a[0] & 2
    assert not a[0] & 1
