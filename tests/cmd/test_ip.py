"""``ip`` command lines → command objects (tables), and typed refusals."""

from __future__ import annotations

import ipaddress

import pytest

from tcemu.cmd import CommandError, UnsupportedCommandError, parse, parse_ip
from tcemu.cmd import model as m

A = ipaddress.ip_address
I = ipaddress.ip_interface  # noqa: E741
N = ipaddress.ip_network

CASES: list[tuple[str, m.Command]] = [
    ("ip link add veth0 type veth peer name veth1",
     m.LinkAdd(name="veth0", info=m.VethInfo(peer=m.VethPeer(name="veth1")))),
    ("ip l a veth0 type veth peer veth1",
     m.LinkAdd(name="veth0", info=m.VethInfo(peer=m.VethPeer(name="veth1")))),
    ("ip link add dev veth0 type veth",
     m.LinkAdd(name="veth0", info=m.VethInfo())),
    ("ip link add name veth0 type veth peer",
     m.LinkAdd(name="veth0", info=m.VethInfo(peer=m.VethPeer()))),
    ("ip link add veth0 type veth peer name veth1 netns ns2 address 2:0:0:0:0:9 mtu 1400",
     m.LinkAdd(name="veth0", info=m.VethInfo(peer=m.VethPeer(
         name="veth1", netns="ns2", address="02:00:00:00:00:09", mtu=1400)))),
    ("ip link add v7 mtu 1400 address 02:00:00:00:00:07 up type veth",
     m.LinkAdd(name="v7", mtu=1400, address="02:00:00:00:00:07", up=True,
               info=m.VethInfo())),
    ("ip link add veth0 netns ns1 type veth",
     m.LinkAdd(name="veth0", netns="ns1", info=m.VethInfo())),
    ("ip link add link eth0 eth0.10 type vlan id 10",
     m.LinkAdd(name="eth0.10", link="eth0", info=m.VlanInfo(id=10))),
    ("ip link add link eth0 name v100 type vlan protocol 802.1ad id 0x64",
     m.LinkAdd(name="v100", link="eth0", info=m.VlanInfo(id=100, protocol=0x88A8))),
    ("ip li add vx0 type vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dstport 4789 dev eth0 "
     "ttl 64 tos 10 nolearning udpcsum",
     m.LinkAdd(name="vx0", info=m.VxlanInfo(
         vni=42, remote=A("10.0.0.2"), local=A("10.0.0.1"), dstport=4789, dev="eth0",
         ttl=64, tos=0x10, learning=False, udpcsum=True))),
    ("ip link add vx1 type vxlan external dstport 4789",
     m.LinkAdd(name="vx1", info=m.VxlanInfo(external=True, dstport=4789))),
    ("ip link add vx3 type vxlan i 7 r 10.0.0.2 lo 10.0.0.1 d eth0 dst 4789 t 9 noudp le",
     m.LinkAdd(name="vx3", info=m.VxlanInfo(
         vni=7, remote=A("10.0.0.2"), local=A("10.0.0.1"), dev="eth0", dstport=4789, ttl=9,
         udpcsum=False, learning=True))),
    ("ip link add vx4 type vxlan ext no", m.LinkAdd(name="vx4", info=m.VxlanInfo(
        external=True, learning=False))),
    ("ip link add vx2 type vxlan vni 0x10 noudpcsum learning",
     m.LinkAdd(name="vx2", info=m.VxlanInfo(vni=16, udpcsum=False, learning=True))),
    ("ip link add d0 type dummy", m.LinkAdd(name="d0", info=m.DummyInfo())),
    ("ip link set dev veth0 up", m.LinkSet(dev="veth0", up=True)),
    ("ip link set veth0 down mtu 1400", m.LinkSet(dev="veth0", up=False, mtu=1400)),
    ("ip link set veth0 address 02:00:00:00:00:01 name veth9 netns ns1",
     m.LinkSet(dev="veth0", address="02:00:00:00:00:01", name="veth9", netns="ns1")),
    ("ip link change veth0 up", m.LinkSet(dev="veth0", up=True)),
    ("ip link del veth0", m.LinkDel(dev="veth0")),
    ("ip l d dev veth0", m.LinkDel(dev="veth0")),
    ("ip link", m.IpShow(object="link")),
    ("ip l", m.IpShow(object="link")),
    ("ip link show dev veth0", m.IpShow(object="link", dev="veth0")),
    ("ip addr add 10.0.0.1/24 dev veth0", m.AddrAdd(address=I("10.0.0.1/24"), dev="veth0")),
    ("ip a a 10.0.0.1 dev veth0", m.AddrAdd(address=I("10.0.0.1/32"), dev="veth0")),
    ("ip address add dev veth0 local 10.0.0.6/24",
     m.AddrAdd(address=I("10.0.0.6/24"), dev="veth0")),
    ("ip addr add fd00::1/64 dev veth0", m.AddrAdd(address=I("fd00::1/64"), dev="veth0")),
    ("ip addr add 10.0.0.3/24 dev veth0 dev veth1",
     m.AddrAdd(address=I("10.0.0.3/24"), dev="veth1")),
    ("ip addr del 10.0.0.3/24 dev veth1", m.AddrDel(address=I("10.0.0.3/24"), dev="veth1")),
    ("ip a", m.IpShow(object="address")),
    ("ip addr show veth0", m.IpShow(object="address", dev="veth0")),
    ("ip route add 10.1.0.0/16 via 10.0.0.254 dev veth0",
     m.RouteAdd(dst=N("10.1.0.0/16"), via=A("10.0.0.254"), dev="veth0")),
    ("ip r a default via 10.0.0.1", m.RouteAdd(dst=N("0.0.0.0/0"), via=A("10.0.0.1"))),
    ("ip -6 route add default via fe80::1 dev eth0",
     m.RouteAdd(dst=N("::/0"), via=A("fe80::1"), dev="eth0")),
    ("ip route add default via fe80::1 dev eth0",
     m.RouteAdd(dst=N("::/0"), via=A("fe80::1"), dev="eth0")),
    ("ip route add to 10.3.0.0/16 dev veth0 src 10.0.0.1 realm 5",
     m.RouteAdd(dst=N("10.3.0.0/16"), dev="veth0", src=A("10.0.0.1"), realm=5)),
    ("ip route add 10.4.0.0/16 dev veth0 rea 2/3",
     m.RouteAdd(dst=N("10.4.0.0/16"), dev="veth0", realm=(2 << 16) | 3)),
    ("ip route add 10.4.0.0/16 dev veth0 realm 65536",
     m.RouteAdd(dst=N("10.4.0.0/16"), dev="veth0", realm=1 << 16)),
    ("ip route add 10.4.0.0/16 dev veth0 realm cosmos/0x10",
     m.RouteAdd(dst=N("10.4.0.0/16"), dev="veth0", realm=16)),
    ("ip route add unicast 10.4.0.0/16 oif veth0", m.RouteAdd(dst=N("10.4.0.0/16"), dev="veth0")),
    ("ip route add 10.0.0.7 dev veth0", m.RouteAdd(dst=N("10.0.0.7/32"), dev="veth0")),
    ("ip route del 10.4.0.0/16", m.RouteDel(dst=N("10.4.0.0/16"))),
    ("ip r", m.IpShow(object="route")),
    ("ip route show dev veth0", m.IpShow(object="route", dev="veth0")),
    ("ip neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev veth0",
     m.NeighAdd(address=A("10.0.0.9"), lladdr="02:00:00:00:00:09", dev="veth0")),
    ("ip n a 10.0.0.13 lla 2:0:0:0:0:9 dev veth0 nud reachable",
     m.NeighAdd(address=A("10.0.0.13"), lladdr="02:00:00:00:00:09", dev="veth0", nud=0x02)),
    ("ip neighbour add to fd00::2 lladdr 02:00:00:00:00:09 dev veth0 nud noarp",
     m.NeighAdd(address=A("fd00::2"), lladdr="02:00:00:00:00:09", dev="veth0", nud=0x40)),
    ("ip neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev veth0 nud perm",
     m.NeighAdd(address=A("10.0.0.9"), lladdr="02:00:00:00:00:09", dev="veth0")),
    ("ip neigh del 10.0.0.9 dev veth0", m.NeighDel(address=A("10.0.0.9"), dev="veth0")),
    ("ip netns add ns1", m.NetnsAdd(name="ns1")),
    ("ip netns del ns1", m.NetnsDel(name="ns1")),
    ("ip netns", m.IpShow(object="netns")),
    ("ip net list", m.IpShow(object="netns")),
    ("ip -n ns1 link set veth0 up", m.LinkSet(ns="ns1", dev="veth0", up=True)),
    ("ip -netns ns1 addr add 10.0.0.1/24 dev veth0",
     m.AddrAdd(ns="ns1", address=I("10.0.0.1/24"), dev="veth0")),
    ("ip --netns ns1 -d -s link", m.IpShow(ns="ns1", object="link")),
    ("ip netns exec ns1 ip link set lo up", m.LinkSet(ns="ns1", dev="lo", up=True)),
    ("ip netns exec ns1 tc qdisc add dev veth1 clsact",
     m.QdiscAdd(ns="ns1", dev="veth1", parent=m.TC_H_INGRESS, handle=0xFFFF0000,
                qdisc=m.ClsactQdisc())),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parse(line: str, expected: m.Command) -> None:
    assert parse(line) == expected


def test_leading_ip_is_optional_and_words_may_be_a_list() -> None:
    want = m.LinkSet(dev="veth0", up=True)
    assert parse_ip("link set veth0 up") == want
    assert parse_ip(["link", "set", "veth0", "up"]) == want
    assert parse_ip("ip link set veth0 up", ns="ns1") == m.LinkSet(ns="ns1", dev="veth0",
                                                                   up=True)


def test_abbreviation_surprises_follow_iproute2() -> None:
    # "t" abbreviates "txqueuelen", which comes before "type" in iplink_parse().
    with pytest.raises(CommandError, match='Invalid "txqueuelen" value'):
        parse("ip link add x t veth")
    # "n" is "neighbor" (listed before "netns"); "net" is "netns".
    assert parse("ip n") == m.IpShow(object="neigh")
    assert parse("ip net") == m.IpShow(object="netns")


ERRORS = [
    # Kernel refusals that ip reports (the kernel's extack text).
    ("ip link add link eth0 v1 type vlan", "Error: 8021q: VLAN id not specified."),
    ("ip link add link eth0 v1 type vlan id 4095", "Error: 8021q: Invalid VLAN id."),
    ("ip link add v1 type vlan id 5", "Error: 8021q: link not specified."),
    ("ip link add link eth0 v1 type vlan id 5 protocol ip",
     "Error: 8021q: VLAN protocol not supported."),
    ("ip link add name-with-very-long-name type veth",
     "Error: Attribute failed policy validation."),
    ("ip link add v1 address 02:00 type veth", "RTNETLINK answers: Invalid argument"),
    ("ip route add 10.20.0.0/16", "RTNETLINK answers: No such device"),
    ("ip addr add dev veth0", "RTNETLINK answers: Operation not supported"),
    ("ip netns exec ns1", "No command specified"),
    ("ip neigh add 10.0.0.1 lladdr 0g dev eth0", "Error: Invalid link address."),
    ("ip link add x type dummy foo",
     'Garbage instead of arguments "foo ...". Try "ip link help".'),
    ("ip -n", 'Cannot open network namespace "(null)": No such file or directory'),
    ("ip", "Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }"),
]


@pytest.mark.parametrize(("line", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_refused(line: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(line)
    assert str(info.value) == message
    assert not isinstance(info.value, UnsupportedCommandError)


UNSUPPORTED = [
    "ip rule add from all lookup 100", "ip link add br0 type bridge",
    "ip link set veth0 promisc on", "ip link set veth0 master br0",
    "ip route add 10.0.0.0/8 via 1.1.1.1 table 5", "ip route add blackhole 10.0.0.0/8",
    "ip addr add 10.0.0.1/24 brd + dev eth0", "ip link add type veth",
    "ip link add vx type vxlan id 1 group 239.1.1.1", "ip netns exec ns1 ping 1.1.1.1",
    "ip route flush table main", "ip -all netns exec ip link", "ip -batch cmds.txt",
]


@pytest.mark.parametrize("line", UNSUPPORTED)
def test_unsupported_is_typed(line: str) -> None:
    with pytest.raises(UnsupportedCommandError, match="tcemu"):
        parse(line)


def test_error_carries_the_word_at_fault() -> None:
    with pytest.raises(CommandError) as info:
        parse("ip link add d5 mtu abc type veth")
    assert info.value.words[info.value.index or 0] == "abc"
    assert info.value.tool == "ip"
