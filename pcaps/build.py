"""Build tcemu's sample captures: scapy makes the frames, tcemu.pcap writes the files.

    python pcaps/build.py              # rebuild every capture in pcaps/
    python pcaps/build.py --out DIR    # build into DIR instead
    python pcaps/build.py --check      # exit 1 if a committed capture differs from a rebuild

Every field that scapy would otherwise fill from the host (MAC and IP addresses from the
routing table, random ids) is given explicitly and timestamps come from a counter, so a
rebuild gives identical bytes on any machine.  pcaps/README.md documents each capture.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from tcemu.pcap import Direction, LinkType, PcapngWriter, PcapWriter

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000_000_000_000          # 2023-11-14 22:13:20 UTC
STEP = 1_000_000                        # 1 ms between packets

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
MAC_VTEP1, MAC_VTEP2 = "02:00:00:00:01:01", "02:00:00:00:01:02"
IP_A, IP_B, IP_DNS = "10.0.0.1", "10.0.0.2", "10.0.0.53"
IP6_A, IP6_B, IP6_DNS = "fd00::1", "fd00::2", "fd00::53"
IN, OUT = Direction.INBOUND, Direction.OUTBOUND
BCAST = "ff:ff:ff:ff:ff:ff"


class Clock:
    """Deterministic capture time: STEP ns per packet from T0."""

    def __init__(self) -> None:
        self.now = T0

    def tick(self) -> int:
        self.now += STEP
        return self.now


def a_to_b(l3: Packet) -> Packet:
    return Ether(src=MAC_A, dst=MAC_B) / l3


def b_to_a(l3: Packet) -> Packet:
    return Ether(src=MAC_B, dst=MAC_A) / l3


# --- mixed_flows.pcapng ---------------------------------------------------------------

def _tcp_flow(ip: Callable[[bool], Packet], sport: int, dport: int, request: bytes,
              reply: bytes, *, close_with_rst: bool = False) -> list[tuple[Packet, str]]:
    """A whole TCP conversation seen from A: handshake, one request, one reply, close."""
    def seg(out: bool, flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        tcp = (TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=64240)
               if out else
               TCP(sport=dport, dport=sport, flags=flags, seq=seq, ack=ack, window=65160))
        frame = (a_to_b if out else b_to_a)(ip(out) / tcp)
        return frame / data if data else frame

    a, b = 1000, 5000
    flow = [(seg(True, "S", a, 0), "syn"), (seg(False, "SA", b, a + 1), "syn-ack"),
            (seg(True, "A", a + 1, b + 1), "ack"),
            (seg(True, "PA", a + 1, b + 1, request), "request"),
            (seg(False, "PA", b + 1, a + 1 + len(request), reply), "reply")]
    a += 1 + len(request)
    b += 1 + len(reply)
    if close_with_rst:
        return [*flow, (seg(True, "R", a, 0), "rst")]
    return [*flow, (seg(True, "A", a, b), "ack"), (seg(True, "FA", a, b), "fin"),
            (seg(False, "FA", b, a + 1), "fin"), (seg(True, "A", a + 1, b + 1), "ack")]


def mixed_flows(path: Path) -> None:
    def v4(out: bool) -> Packet:
        return IP(src=IP_A, dst=IP_B, id=1) if out else IP(src=IP_B, dst=IP_A, id=1)

    def v6(out: bool) -> Packet:
        return IPv6(src=IP6_A, dst=IP6_B) if out else IPv6(src=IP6_B, dst=IP6_A)

    packets: list[tuple[Packet, str]] = []
    packets += [(f, "tcp4 " + c) for f, c in _tcp_flow(
        v4, 40000, 80, b"GET / HTTP/1.1\r\nHost: b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]
    packets += [(a_to_b(v4(True) / UDP(sport=41000, dport=41001) / Raw(bytes([i]) * 32)),
                 f"udp4 datagram {i}") for i in range(3)]
    packets.append((b_to_a(v4(False) / UDP(sport=41001, dport=41000) / Raw(b"ack")),
                    "udp4 reply"))
    for seq in (1, 2):
        packets.append((a_to_b(v4(True) / ICMP(type=8, id=0x77, seq=seq) / Raw(b"ping")),
                        f"icmp echo request {seq}"))
        packets.append((b_to_a(v4(False) / ICMP(type=0, id=0x77, seq=seq) / Raw(b"ping")),
                        f"icmp echo reply {seq}"))
    packets += [(f, "tcp6 " + c) for f, c in _tcp_flow(
        v6, 40001, 443, b"\x16\x03\x01hello", b"\x16\x03\x03hi", close_with_rst=True)]
    packets += [(a_to_b(v6(True) / UDP(sport=41002, dport=41001) / Raw(bytes([i]) * 48)),
                 f"udp6 datagram {i}") for i in range(2)]
    packets.append((a_to_b(v6(True) / ICMPv6EchoRequest(id=0x66, seq=1, data=b"ping6")),
                    "icmp6 echo request"))
    packets.append((b_to_a(v6(False) / ICMPv6EchoReply(id=0x66, seq=1, data=b"ping6")),
                    "icmp6 echo reply"))
    clock = Clock()
    with PcapngWriter(path, comment="tcemu sample: mixed IPv4/IPv6 TCP, UDP, ICMP") as w:
        eth0 = w.add_interface("eth0", description="host A (10.0.0.1, fd00::1)")
        for frame, comment in packets:
            out = frame.src == MAC_A
            w.write(eth0, clock.tick(), bytes(frame), comment=comment,
                    direction=OUT if out else IN)


# --- vlan.pcap ------------------------------------------------------------------------

def vlan(path: Path) -> None:
    frames = [
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=10) / IP(src=IP_A, dst=IP_B) / ICMP(id=1),
        Ether(src=MAC_B, dst=MAC_A) / Dot1Q(vlan=10) / IP(src=IP_B, dst=IP_A) / ICMP(
            type=0, id=1),
        Ether(src=MAC_A, dst=BCAST) / Dot1Q(vlan=10) / ARP(
            op=1, hwsrc=MAC_A, psrc=IP_A, hwdst="00:00:00:00:00:00", pdst=IP_B),
        Ether(src=MAC_B, dst=MAC_A) / Dot1Q(vlan=10) / ARP(
            op=2, hwsrc=MAC_B, psrc=IP_B, hwdst=MAC_A, pdst=IP_A),
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=20) / IP(src="10.0.20.1", dst="10.0.20.2")
        / UDP(sport=41000, dport=41001) / Raw(b"vlan20"),
        Ether(src=MAC_B, dst=MAC_A) / Dot1Q(vlan=20) / IP(src="10.0.20.2", dst="10.0.20.1")
        / UDP(sport=41001, dport=41000) / Raw(b"vlan20"),
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=30, prio=5)
        / IP(src="10.0.30.1", dst="10.0.30.2", tos=0xB8) / TCP(sport=40000, dport=5060),
        Ether(src=MAC_A, dst=MAC_B) / Dot1AD(vlan=100) / Dot1Q(vlan=10)
        / IP(src=IP_A, dst=IP_B) / UDP(sport=41000, dport=41001) / Raw(b"802.1ad qinq"),
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=200) / Dot1Q(vlan=10)
        / IP(src=IP_A, dst=IP_B) / UDP(sport=41000, dport=41001) / Raw(b"802.1q qinq"),
        Ether(src=MAC_A, dst=MAC_B) / IP(src=IP_A, dst=IP_B) / UDP(sport=41000, dport=41001)
        / Raw(b"untagged"),
    ]
    clock = Clock()
    with PcapWriter(path) as w:
        for frame in frames:
            w.write(clock.tick(), bytes(frame))


# --- vxlan.pcapng ---------------------------------------------------------------------

def _vxlan(vni: int, inner: Packet, sport: int, *, v6: bool = False) -> Packet:
    # Linux vxlan: no UDP checksum over IPv4 (udpcsum off), a real one over IPv6
    outer: Packet = (IPv6(src="fd00:1::1", dst="fd00:1::2") / UDP(sport=sport, dport=4789)
                     if v6 else
                     IP(src="192.168.1.1", dst="192.168.1.2", flags="DF", id=0)
                     / UDP(sport=sport, dport=4789, chksum=0))
    return Ether(src=MAC_VTEP1, dst=MAC_VTEP2) / outer / VXLAN(vni=vni, flags=0x08) / inner


def vxlan(path: Path) -> None:
    arp_req = Ether(src=MAC_A, dst=BCAST) / ARP(
        op=1, hwsrc=MAC_A, psrc=IP_A, hwdst="00:00:00:00:00:00", pdst=IP_B)
    arp_rep = Ether(src=MAC_B, dst=MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc=IP_B, hwdst=MAC_A,
                                                 pdst=IP_A)
    ping = a_to_b(IP(src=IP_A, dst=IP_B, id=1) / ICMP(id=9, seq=1) / Raw(b"over vxlan"))
    pong = b_to_a(IP(src=IP_B, dst=IP_A, id=1) / ICMP(type=0, id=9, seq=1)
                  / Raw(b"over vxlan"))
    vni100 = [(arp_req, "arp request"), (arp_rep, "arp reply"), (ping, "icmp echo request"),
              (pong, "icmp echo reply")]
    vni200 = [(a_to_b(IP(src="10.2.0.1", dst="10.2.0.2") / TCP(sport=40000, dport=22)),
               "tcp syn"),
              (b_to_a(IP(src="10.2.0.2", dst="10.2.0.1") / TCP(sport=22, dport=40000,
                                                               flags="SA", ack=1)),
               "tcp syn-ack")]
    clock = Clock()
    with PcapngWriter(path, comment="tcemu sample: VXLAN underlay and decapsulated view") as w:
        eth0 = w.add_interface("eth0", description="underlay, VTEP 192.168.1.1")
        vx100 = w.add_interface("vxlan100", description="VNI 100, decapsulated")
        for i, (inner, what) in enumerate(vni100):
            w.write(eth0, clock.tick(), bytes(_vxlan(100, inner, 49152 + i)),
                    comment=f"vni=100 inner={what}")
            w.write(vx100, clock.tick(), bytes(inner), comment=f"decapsulated {what}")
        for i, (inner, what) in enumerate(vni200):
            w.write(eth0, clock.tick(), bytes(_vxlan(200, inner, 50000 + i)),
                    comment=f"vni=200 inner={what}")
        inner6 = a_to_b(IP(src=IP_A, dst=IP_B) / UDP(sport=41000, dport=41001)
                        / Raw(b"v6 underlay"))
        w.write(eth0, clock.tick(), bytes(_vxlan(300, inner6, 51000, v6=True)),
                comment="vni=300 over IPv6 inner=udp")


# --- arp.pcap -------------------------------------------------------------------------

def arp(path: Path) -> None:
    zero = "00:00:00:00:00:00"
    frames = [
        Ether(src=MAC_A, dst=BCAST) / ARP(op=1, hwsrc=MAC_A, psrc=IP_A, hwdst=zero,
                                          pdst=IP_B),
        Ether(src=MAC_B, dst=MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc=IP_B, hwdst=MAC_A,
                                          pdst=IP_A),
        Ether(src=MAC_B, dst=BCAST) / ARP(op=1, hwsrc=MAC_B, psrc=IP_B, hwdst=zero,
                                          pdst=IP_B),                    # gratuitous
        Ether(src=MAC_A, dst=BCAST) / ARP(op=1, hwsrc=MAC_A, psrc="0.0.0.0", hwdst=zero,
                                          pdst="10.0.0.3"),              # probe (RFC 5227)
        Ether(src=MAC_A, dst=BCAST) / ARP(op=1, hwsrc=MAC_A, psrc=IP_A, hwdst=zero,
                                          pdst="10.0.0.99"),             # unanswered
    ]
    clock = Clock()
    with PcapWriter(path, nanosecond=False) as w:
        for frame in frames:
            w.write(clock.tick(), bytes(frame))


# --- dns.pcapng -----------------------------------------------------------------------

def dns(path: Path) -> None:
    answers: dict[str, list[DNSRR]] = {
        "A": [DNSRR(rrname="example.com.", type="A", ttl=300, rdata="93.184.216.34")],
        "AAAA": [DNSRR(rrname="example.com.", type="AAAA", ttl=300,
                       rdata="2606:2800:220:1:248:1893:25c8:1946")],
        "MX": [DNSRR(rrname="example.org.", type="MX", ttl=3600,
                     rdata=b"\x00\x0a\x04mail\x07example\x03org\x00")],
        "TXT": [DNSRR(rrname="example.org.", type="TXT", ttl=60, rdata=["v=spf1 -all"])],
    }
    names = {"A": "example.com.", "AAAA": "example.com.", "MX": "example.org.",
             "TXT": "example.org."}
    packets: list[tuple[Packet, str]] = []
    for i, qtype in enumerate(answers):
        ident, sport = 0x1000 + i, 33000 + i
        q = DNSQR(qname=names[qtype], qtype=qtype)
        packets.append((a_to_b(IP(src=IP_A, dst=IP_DNS, id=i) / UDP(sport=sport, dport=53)
                               / DNS(id=ident, rd=1, qd=q)), f"query {qtype}"))
        packets.append((b_to_a(IP(src=IP_DNS, dst=IP_A, id=i) / UDP(sport=53, dport=sport)
                               / DNS(id=ident, qr=1, rd=1, ra=1, qd=q, an=answers[qtype])),
                        f"response {qtype}"))
    q = DNSQR(qname="nosuch.example.", qtype="A")
    packets.append((a_to_b(IP(src=IP_A, dst=IP_DNS, id=9) / UDP(sport=33009, dport=53)
                           / DNS(id=0x1009, rd=1, qd=q)), "query A (nonexistent)"))
    packets.append((b_to_a(IP(src=IP_DNS, dst=IP_A, id=9) / UDP(sport=53, dport=33009)
                           / DNS(id=0x1009, qr=1, rd=1, ra=1, rcode=3, qd=q)),
                    "response NXDOMAIN"))
    q = DNSQR(qname="example.com.", qtype="AAAA")
    packets.append((a_to_b(IPv6(src=IP6_A, dst=IP6_DNS) / UDP(sport=33010, dport=53)
                           / DNS(id=0x100A, rd=1, qd=q)), "query AAAA over IPv6"))
    packets.append((b_to_a(IPv6(src=IP6_DNS, dst=IP6_A) / UDP(sport=53, dport=33010)
                           / DNS(id=0x100A, qr=1, rd=1, ra=1, qd=q, an=answers["AAAA"])),
                    "response AAAA over IPv6"))
    clock = Clock()
    with PcapngWriter(path, comment="tcemu sample: DNS over UDP") as w:
        eth0 = w.add_interface("eth0", description="resolver client 10.0.0.1")
        for frame, comment in packets:
            w.write(eth0, clock.tick(), bytes(frame), comment=comment,
                    direction=OUT if frame.src == MAC_A else IN)


# --- linux_sll.pcap and linktypes.pcapng ----------------------------------------------

def _sll_frames() -> list[tuple[Packet, bytes]]:
    """(SLL header, L3 payload) pairs: host, outgoing, broadcast and multicast packets."""
    ping = IP(src=IP_B, dst=IP_A, id=1) / ICMP(id=5, seq=1)
    pong = IP(src=IP_A, dst=IP_B, id=1) / ICMP(type=0, id=5, seq=1)
    arp_req = ARP(op=1, hwsrc=MAC_B, psrc=IP_B, hwdst="00:00:00:00:00:00", pdst=IP_A)
    igmp_ish = (IP(src=IP_B, dst="239.1.2.3", ttl=1) / UDP(sport=41003, dport=41003)
                / Raw(b"m"))
    mac_b = bytes.fromhex(MAC_B.replace(":", "")) + b"\0\0"
    mac_a = bytes.fromhex(MAC_A.replace(":", "")) + b"\0\0"
    return [
        (CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=mac_b, proto=0x0800), bytes(ping)),
        (CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=mac_a, proto=0x0800), bytes(pong)),
        (CookedLinux(pkttype=1, lladdrtype=1, lladdrlen=6, src=mac_b, proto=0x0806),
         bytes(arp_req)),
        (CookedLinux(pkttype=2, lladdrtype=1, lladdrlen=6, src=mac_b, proto=0x0800),
         bytes(igmp_ish)),
    ]


def linux_sll(path: Path) -> None:
    clock = Clock()
    with PcapWriter(path, linktype=LinkType.LINUX_SLL) as w:
        for head, l3 in _sll_frames():
            w.write(clock.tick(), bytes(head) + l3)


def linktypes(path: Path) -> None:
    clock = Clock()
    with PcapngWriter(path, comment="tcemu sample: non-Ethernet link types") as w:
        any_ = w.add_interface("any", LinkType.LINUX_SLL2, description="tcpdump -i any")
        tun0 = w.add_interface("tun0", LinkType.RAW, description="a tun device")
        for head, l3 in _sll_frames():
            v2 = CookedLinuxV2(proto=head.proto, ifindex=2, lladdrtype=head.lladdrtype,
                               pkttype=head.pkttype, lladdrlen=head.lladdrlen, src=head.src)
            w.write(any_, clock.tick(), bytes(v2) + l3, comment=f"sll2 pkttype {head.pkttype}")
        w.write(tun0, clock.tick(), bytes(IP(src=IP_A, dst=IP_B) / UDP(sport=1, dport=2)),
                comment="raw ipv4")
        w.write(tun0, clock.tick(), bytes(IPv6(src=IP6_A, dst="ff02::1") / UDP(sport=1,
                                                                                dport=2)),
                comment="raw ipv6 multicast")


CAPTURES: dict[str, Callable[[Path], None]] = {
    "mixed_flows.pcapng": mixed_flows,
    "vlan.pcap": vlan,
    "vxlan.pcapng": vxlan,
    "arp.pcap": arp,
    "dns.pcapng": dns,
    "linux_sll.pcap": linux_sll,
    "linktypes.pcapng": linktypes,
}


def build(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in CAPTURES.items():
        make(out / name)
        paths.append(out / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--check", action="store_true",
                        help="build into a temporary directory and compare with pcaps/")
    args = parser.parse_args(argv)
    if not args.check:
        for path in build(args.out):
            print(path)
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        stale = [p.name for p in build(Path(tmp))
                 if not (HERE / p.name).exists()
                 or (HERE / p.name).read_bytes() != p.read_bytes()]
    for name in stale:
        print(f"pcaps/{name} differs from a rebuild: run python pcaps/build.py",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
