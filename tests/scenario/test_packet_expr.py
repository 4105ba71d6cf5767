"""Scapy layer strings: built without eval, deterministic, hostile input refused."""

from __future__ import annotations

import pytest

from tcemu.scenario.packet import PacketExprError, build_packet, parse_packet


def test_layers_build_the_frame_scapy_would() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    frame = build_packet('Ether(dst="02:00:00:00:00:09")/IP(dst="10.0.0.2", ttl=7)'
                         '/UDP(dport=53)/b"hi"')
    want = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:09")
            / IP(src="10.0.0.1", dst="10.0.0.2", ttl=7) / UDP(dport=53) / b"hi")
    assert frame == bytes(want)


def test_unset_addresses_come_from_defaults_not_the_host() -> None:
    frame = build_packet("Ether()/IP(dst='192.0.2.1')",
                         {"Ether.src": "02:aa:00:00:00:01", "Ether.dst": "02:bb:00:00:00:02",
                          "IP.src": "198.51.100.7"})
    assert frame[:6] == bytes.fromhex("02bb00000002")
    assert frame[6:12] == bytes.fromhex("02aa00000001")
    assert frame[26:30] == bytes([198, 51, 100, 7])


@pytest.mark.parametrize(("text", "ethertype"), [
    ('IP(dst="10.0.0.2")/UDP(dport=53)', b"\x08\x00"),
    ('IPv6(dst="fd00::2")/UDP(dport=53)', b"\x86\xdd"),
    ('ARP(pdst="10.0.0.2")', b"\x08\x06"),
])
def test_a_network_layer_first_gets_the_ethernet_header(text: str, ethertype: bytes) -> None:
    """Like Scapy's send() of an L3 packet: devices are Ethernet devices, so the frame is
    Ether()/packet with the sending device's addresses (never the IP bytes as a frame)."""
    defaults = {"Ether.src": "02:aa:00:00:00:01", "Ether.dst": "02:bb:00:00:00:02"}
    frame = build_packet(text, defaults)
    assert frame == build_packet("Ether()/" + text, defaults)
    assert frame[:12] == bytes.fromhex("02bb00000002" "02aa00000001")
    assert frame[12:14] == ethertype


def test_nested_layers_and_vlan() -> None:
    frame = build_packet('Ether()/Dot1Q(vlan=5, prio=3)/IP()/UDP()/DNS(qd=DNSQR(qname="a.b"))')
    assert frame[12:14] == b"\x81\x00"
    assert int.from_bytes(frame[14:16], "big") == (3 << 13) | 5


@pytest.mark.parametrize(("text", "what"), [
    ('__import__("os").system("id")', "expected a layer"),
    ("IP(dst=x)", "literals or layers"),
    ("IP(dst=open('/etc/passwd').read())", "expected a layer"),
    ("IP(dsst=1)", "no field 'dsst'"),
    ("IP()+UDP()", "joined with '/'"),
    ("Foo()", "unknown layer 'Foo'"),
    ("IP(1)", "keyword arguments only"),
    ("IP(", "not a layer expression"),
    ("IP(**{'dst': 1})", "'**' is not allowed"),
    ("[IP() for _ in range(9)]", "expected a layer"),
    ("IP(dst='a'*3)", "literals or layers"),
    ("IP(dst='example.com')", "must be a literal IP address"),
    ("IPv6(src='host')", "must be a literal IP address"),
])
def test_hostile_or_wrong_expressions_are_refused(text: str, what: str) -> None:
    with pytest.raises(PacketExprError, match=what.replace("(", r"\(").replace("*", r"\*")):
        parse_packet(text)


def test_error_names_the_column() -> None:
    with pytest.raises(PacketExprError) as info:
        parse_packet('Ether()/IP(dst="1.2.3.4", bogus=1)')
    assert info.value.col == 26
