"""The tutorial's pytest file (docs/tutorial.md, step 6): port_guard tested in Python.

Run it with ``pytest docs/tutorial``: pytest also collects ``port_guard.tcemu.yaml`` next to
it (tcemu's plugin), so the scenario is one more test.
"""

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tcemu.net import Net
from tcemu.pytest_plugin import assert_not_seen, assert_seen

HERE = Path(__file__).parent
CLIENT, SERVER = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _udp(dport: int) -> Ether:
    return (Ether(src=CLIENT, dst=SERVER) / IP(src="10.0.0.1", dst="10.0.0.2")
            / UDP(sport=40000, dport=dport) / b"payload")


def test_blocked_port_is_dropped_and_counted(tcemu_net: Net) -> None:
    net = tcemu_net
    net.ip(f"link add eth0 address {CLIENT} type veth peer name eth1 address {SERVER}")
    net.ip("link set eth0 up")
    net.ip("link set eth1 up")
    net.tc("qdisc add dev eth1 clsact")
    net.tc(f"filter add dev eth1 ingress bpf da obj {HERE / 'port_guard.bpf.o'} sec tc")
    blocked = net.maps["blocked"]
    blocked.update((53).to_bytes(2, "little"), bytes(8))

    net.send("eth0", _udp(53))
    net.send("eth0", _udp(123))

    # tcpdump on eth1 sees both (it runs before tc ingress) ...
    assert_seen(net, "eth1", _udp(53), direction="in")
    assert_seen(net, "eth1", _udp(123), direction="in")
    # ... but only the datagram to port 123 reaches the host
    delivered = net.delivered("eth1")
    assert [bytes(f)[36:38] for f in delivered] == [(123).to_bytes(2, "big")]
    assert blocked.lookup((53).to_bytes(2, "little")) == (1).to_bytes(8, "little")
    assert_not_seen(net, "eth0", _udp(53), direction="in")
