"""The local IPv4 stack's answers (tcemu/net/icmp.py): ICMP port/protocol unreachable,
echo replies, TCP resets, the kernel's ICMP rate limits on the virtual clock, and kernel
differential tests of the same frames on the running kernel (the frames every device's tap
saw, compared field by field with only the nondeterministic fields of ``tcemu diff``
ignored: the IPv4 id of an ICMP message and the header checksum that follows from it).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tcemu import csum
from tcemu.net import Net
from tcemu.net.icmp import HZ, _martian_source, icmp_net
from tcemu.scenario.diff import DEFAULT_NONDETERMINISTIC, field_diffs
from tests.datapath.kdiff import Seen, Topo, run_kernel, run_tcemu
from tests.datapath.topo import IP_A, IP_B, MAC_A, MAC_B, ret, veth_net

MAC_X = bytes.fromhex("02000000000a")
SEC = 1_000_000_000


def _frame(l3: Any, dst: bytes = MAC_B, src: bytes = MAC_A) -> bytes:
    return bytes(Ether(dst=dst, src=src) / l3)


def _udp(dport: int = 7, payload: bytes = b"x", **ip: Any) -> bytes:
    return _frame(IP(src="10.0.0.1", dst="10.0.0.2", **ip) / UDP(sport=5000, dport=dport)
                  / Raw(payload))


def _replies(net: Net, dev: str = "b/veth1") -> list[Ether]:
    """What the host of ``dev`` sent out of it (its tap, direction out)."""
    return [Ether(c.data) for c in net.capture(dev) if c.direction == "out"]


def _send(frames: list[bytes], *, net: Net | None = None) -> Net:
    net = net if net is not None else veth_net()
    for frame in frames:
        net.send("a/veth0", frame)
    net.run()
    return net


def _ip_csum_ok(pkt: Ether) -> bool:
    raw = bytes(pkt[IP])[:pkt[IP].ihl * 4]
    return csum.fold(csum.partial(raw)) == 0


def _icmp_csum_ok(pkt: Ether) -> bool:
    return csum.fold(csum.partial(bytes(pkt[ICMP]))) == 0


# -- UDP to a closed port --------------------------------------------------------------


def test_udp_closed_port_gets_port_unreachable() -> None:
    sent = _udp(payload=b"hello")
    net = _send([sent])
    (reply,) = _replies(net)
    # no neighbour entry: the device's own address (IFF_NOARP, arp_constructor)
    assert (reply.dst, reply.src, reply.type) == ("02:00:00:00:00:02", "02:00:00:00:00:02",
                                                  0x0800)
    ip = reply[IP]
    assert (ip.version, ip.ihl, ip.tos, ip.len, ip.flags, ip.frag, ip.ttl, ip.proto) == \
        (4, 5, 0xC0, 20 + 8 + len(sent) - 14, 0, 0, 64, 1)
    assert (ip.src, ip.dst) == ("10.0.0.2", "10.0.0.1")
    assert _ip_csum_ok(reply)
    icmp = reply[ICMP]
    assert (icmp.type, icmp.code, bytes(icmp)[4:8]) == (3, 3, bytes(4))
    assert _icmp_csum_ok(reply)
    assert bytes(icmp)[8:] == sent[14:]                  # the datagram, quoted whole
    assert reply[UDPerror].dport == 7
    assert reply[IPerror].src == "10.0.0.1"


def test_port_unreachable_goes_to_the_neighbour_and_is_seen_by_the_sender() -> None:
    net = veth_net()
    net.neigh_add("b/veth1", "10.0.0.1", MAC_A)
    _send([_udp()], net=net)
    (reply,) = _replies(net)
    assert (reply.dst, reply.src) == ("02:00:00:00:00:01", "02:00:00:00:00:02")
    arrived = [c for c in net.capture("a/veth0") if c.direction == "in"]
    assert len(arrived) == 1
    assert Ether(arrived[0].data)[ICMP].type == 3
    assert net.delivered("a/veth0")                     # a's host took it, answered nothing
    assert not [c for c in net.capture("a/veth0") if c.direction == "out"][1:]


def test_error_tos_keeps_the_tos_bits_under_internetcontrol_precedence() -> None:
    (reply,) = _replies(_send([_udp(tos=0xB9)]))
    assert reply[IP].tos == (0xB9 & 0x1E) | 0xC0
    assert reply[IPerror].tos == 0xB9


def test_quote_is_cut_at_576_bytes() -> None:
    sent = _udp(payload=bytes(range(256)) * 4)
    (reply,) = _replies(_send([sent]))
    assert reply[IP].len == 576
    assert bytes(reply[ICMP])[8:] == sent[14:14 + 576 - 28]
    assert _icmp_csum_ok(reply)


def test_quote_stops_at_the_udp_length_and_ip_total_length() -> None:
    """ip_rcv trims to tot_len (Ethernet padding), __udp4_lib_rcv to the UDP length."""
    sent = _udp(payload=b"abc")
    (reply,) = _replies(_send([sent + bytes(20)]))
    assert bytes(reply[ICMP])[8:] == sent[14:]


def test_zero_udp_checksum_is_answered_bad_checksum_is_not() -> None:
    good = bytearray(_udp())
    zero = bytearray(good)
    zero[40:42] = b"\0\0"
    bad = bytearray(good)
    bad[40] ^= 0xFF
    assert len(_replies(_send([bytes(zero)]))) == 1
    net = _send([bytes(bad)])
    assert not _replies(net)
    assert any("bad UDP checksum" in e.detail for e in net.trace)


@pytest.mark.parametrize("why", ["broadcast MAC", "not local", "fragment", "bad IP csum"])
def test_no_port_unreachable(why: str) -> None:
    if why == "broadcast MAC":
        frame = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC_A) / IP(src="10.0.0.1",
                      dst="10.0.0.2") / UDP(dport=7))
    elif why == "not local":
        frame = _frame(IP(src="10.0.0.1", dst="10.0.0.3") / UDP(dport=7))
    elif why == "fragment":
        frame = _udp(frag=1)
    else:
        raw = bytearray(_udp())
        raw[24] ^= 1
        frame = bytes(raw)
    assert not _replies(_send([frame]))


def test_no_error_about_an_icmp_error() -> None:
    inner: Any = IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=7, dport=5000)
    err = _frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=3) / inner)
    assert not _replies(_send([err]))


def test_protocol_without_handler_gets_protocol_unreachable() -> None:
    sent = _frame(IP(src="10.0.0.1", dst="10.0.0.2", proto=253) / Raw(b"data"))
    (reply,) = _replies(_send([sent]))
    assert (reply[ICMP].type, reply[ICMP].code) == (3, 2)
    assert bytes(reply[ICMP])[8:] == sent[14:]


def test_reply_takes_its_ip_id_from_the_networks_id_source() -> None:
    net = veth_net()
    seen: list[tuple[bytes, bytes, int]] = []

    def ident(saddr: bytes, daddr: bytes, proto: int) -> int:
        seen.append((saddr, daddr, proto))
        return 0x1234

    net.ip_id_fn = ident
    (reply,) = _replies(_send([_udp()], net=net))
    assert reply[IP].id == 0x1234
    assert _ip_csum_ok(reply)
    assert seen == [(IP_B, IP_A, 1)]


def test_reply_runs_the_output_devices_tc_egress() -> None:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    net.filter_add("b/veth1", "egress", prog=ret(2))          # TC_ACT_SHOT
    net = _send([_udp()], net=net)
    assert not _replies(net)
    verdicts = [e for e in net.trace if e.stage == "verdict" and e.dev == "veth1"
                and e.detail.startswith("tc egress")]
    assert [e.verdict for e in verdicts] == [2]


def test_reply_follows_the_route_to_a_gateway() -> None:
    net = veth_net()
    net.route_add("0.0.0.0/0", via="10.0.0.1", netns="b")
    net.neigh_add("b/veth1", "10.0.0.1", MAC_X)
    sent = _frame(IP(src="192.168.7.7", dst="10.0.0.2") / UDP(dport=7))
    (reply,) = _replies(_send([sent], net=net))
    assert reply.dst == "02:00:00:00:00:0a"
    assert reply[IP].dst == "192.168.7.7"


def test_no_route_back_no_reply() -> None:
    sent = _frame(IP(src="192.168.7.7", dst="10.0.0.2") / UDP(dport=7))
    net = _send([sent])
    assert not _replies(net)
    assert any("no route to 192.168.7.7" in e.detail for e in net.trace)


def test_reply_larger_than_the_mtu_is_fragmented() -> None:
    """The echo reply leaves by a device with a smaller MTU: ip_fragment splits it (the
    ICMP socket never sets DF), payloads a multiple of 8 but the last, one id."""
    net = veth_net()
    net.link_add("d0", "dummy", netns="b")
    net.link_set("b/d0", up=True, mtu=1000)
    net.addr_add("b/d0", "192.168.7.1/24")
    sent = _frame(IP(src="192.168.7.7", dst="10.0.0.2") / ICMP(type=8) / Raw(bytes(1100)))
    net = _send([sent], net=net)
    frags = _replies(net, "b/d0")
    assert [(p[IP].len, p[IP].flags.MF, p[IP].frag) for p in frags] == [(996, 1, 0),
                                                                       (152, 0, 122)]
    assert frags[0][IP].id == frags[1][IP].id
    assert not _replies(net)
    small = _frame(IP(src="192.168.7.7", dst="10.0.0.2") / ICMP(type=8) / Raw(bytes(900)))
    assert len(_replies(_send([small], net=net), "b/d0")) == 3     # the fragments, then it


# -- ICMP echo -------------------------------------------------------------------------


def test_echo_request_gets_echo_reply() -> None:
    payload = bytes(range(56))
    sent = _frame(IP(src="10.0.0.1", dst="10.0.0.2", tos=0x10) /
                  ICMP(type=8, code=0, id=0x4242, seq=7) / Raw(payload))
    (reply,) = _replies(_send([sent]))
    ip, icmp = reply[IP], reply[ICMP]
    assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.flags, ip.tos) == \
        ("10.0.0.2", "10.0.0.1", 64, 1, 0, 0x10)
    assert (icmp.type, icmp.code, icmp.id, icmp.seq) == (0, 0, 0x4242, 7)
    assert bytes(icmp.payload) == payload
    assert _ip_csum_ok(reply)
    assert _icmp_csum_ok(reply)


def test_echo_with_bad_checksum_or_ignore_all_is_not_answered() -> None:
    raw = bytearray(_frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8) / Raw(b"abcd")))
    raw[36] ^= 0xFF
    assert not _replies(_send([bytes(raw)]))
    net = veth_net()
    icmp_net(net, "b").sysctl.icmp_echo_ignore_all = True
    assert not _replies(_send([_frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())],
                              net=net))


# -- TCP resets ------------------------------------------------------------------------


def _tcp(flags: str, seq: int = 1000, ack: int = 0, payload: bytes = b"") -> bytes:
    return _frame(IP(src="10.0.0.1", dst="10.0.0.2", tos=0x2B) /
                  TCP(sport=40000, dport=80, flags=flags, seq=seq, ack=ack) / Raw(payload))


@pytest.mark.parametrize(("flags", "payload", "want_seq", "want_ack", "want_flags"), [
    ("S", b"", 0, 1001, "RA"),
    ("S", b"abc", 0, 1004, "RA"),
    ("SF", b"abc", 0, 1005, "RA"),
    ("", b"zz", 0, 1002, "RA"),
    ("A", b"", 777, 0, "R"),
    ("PA", b"data", 777, 0, "R"),
    ("FA", b"", 777, 0, "R"),
])
def test_tcp_to_closed_port_gets_reset(flags: str, payload: bytes, want_seq: int,
                                       want_ack: int, want_flags: str) -> None:
    (reply,) = _replies(_send([_tcp(flags, ack=777 if "A" in flags else 0,
                                    payload=payload)]))
    ip, tcp = reply[IP], reply[TCP]
    assert (ip.src, ip.dst, ip.ttl, ip.id, str(ip.flags), ip.tos) == \
        ("10.0.0.2", "10.0.0.1", 64, 0, "DF", 0x28)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, str(tcp.flags)) == \
        (80, 40000, want_seq, want_ack, want_flags)
    assert (tcp.dataofs, tcp.window, tcp.urgptr, len(tcp.payload)) == (5, 0, 0, 0)
    assert _ip_csum_ok(reply)
    pseudo = csum.partial(IP_B + IP_A + bytes([0, 6, 0, 20]))
    assert csum.fold(csum.add32(pseudo, csum.partial(bytes(tcp)))) == 0


def test_no_reset_for_a_reset_or_a_bad_checksum() -> None:
    assert not _replies(_send([_tcp("R"), _tcp("RA", ack=5)]))
    raw = bytearray(_tcp("S"))
    raw[50] ^= 0xFF
    assert not _replies(_send([bytes(raw)]))


# -- rate limits -----------------------------------------------------------------------


def test_peer_rate_limit_burst_of_six_then_one_per_icmp_ratelimit() -> None:
    net = _send([_udp()] * 10)
    assert len(_replies(net)) == 6                           # 6 * icmp_ratelimit of credit
    state = icmp_net(net, "b")
    assert state.ratelimit_host == 4
    net.advance(SEC // 2)
    _send([_udp()], net=net)
    assert len(_replies(net)) == 6                           # half a token
    net.advance(SEC // 2)
    _send([_udp()] * 2, net=net)
    assert len(_replies(net)) == 7                           # one token, one message
    net.advance(10 * SEC)
    _send([_udp()] * 10, net=net)
    assert len(_replies(net)) == 13                          # the bucket is full again


def test_peer_rate_limit_follows_the_sysctl() -> None:
    net = veth_net()
    icmp_net(net, "b").sysctl.icmp_ratelimit = 0
    assert len(_replies(_send([_udp()] * 10, net=net))) == 10
    net = veth_net()
    icmp_net(net, "b").sysctl.icmp_ratemask = 0              # dest unreachable not limited
    assert len(_replies(_send([_udp()] * 10, net=net))) == 10


def test_echo_replies_are_not_rate_limited() -> None:
    echo = _frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8))
    assert len(_replies(_send([echo] * 20))) == 20


class _One:
    """A generator whose ``randrange(3)`` is always 1 (one credit per message)."""

    def randrange(self, n: int) -> int:
        assert n == 3
        return 1


def test_global_rate_limit_per_netns() -> None:
    net = veth_net()
    net.route_add("0.0.0.0/0", dev="veth1", netns="b")
    state = icmp_net(net, "b")
    state.sysctl.icmp_msgs_burst = 3
    state.rng = _One()  # type: ignore[assignment]
    frames = [_frame(IP(src=f"192.168.0.{i}", dst="10.0.0.2") / UDP(dport=7))
              for i in range(1, 11)]
    _send(frames, net=net)
    assert len(_replies(net)) == 3
    assert state.ratelimit_global == 7
    net.advance(SEC * 4 // HZ)                                # under HZ/50 jiffies: none
    _send(frames, net=net)
    assert len(_replies(net)) == 3
    net.advance(SEC // HZ)                                    # 5 jiffies: refilled
    _send(frames, net=net)
    assert len(_replies(net)) == 6


def test_global_credit_consumption_is_seeded() -> None:
    def run(seed: int) -> tuple[int, int]:
        net = veth_net(seed=seed)
        net.route_add("0.0.0.0/0", dev="veth1", netns="b")
        _send([_frame(IP(src=f"192.168.{i // 250}.{i % 250 + 1}", dst="10.0.0.2") /
                      UDP(dport=7)) for i in range(120)], net=net)
        return len(_replies(net)), icmp_net(net, "b").credit

    first = run(1)
    assert first == run(1)
    sent, credit = first
    assert 25 <= sent < 120
    assert credit <= 0


# -- tcemu diff's ignore list ---------------------------------------------------------


def test_diff_ignores_only_the_ip_id_of_icmp_messages() -> None:
    from tcemu.scenario import model as m

    def error(ident: int, quoted_id: int = 1) -> bytes:
        quoted: Any = IP(src="10.0.0.1", dst="10.0.0.2", id=quoted_id) / UDP(dport=7)
        return _frame(IP(src="10.0.0.2", dst="10.0.0.1", id=ident, tos=0xC0) /
                      ICMP(type=3, code=3) / quoted)

    rules = list(DEFAULT_NONDETERMINISTIC)
    assert field_diffs(error(1), error(2), rules) == []
    assert field_diffs(error(1, 5), error(1, 6), rules)[0].startswith("IPerror.id 5 != 6")
    assert field_diffs(_udp(id=1), _udp(id=2), rules)[0] == "IP.id 1 != 2"
    assert m.Scenario.model_validate({"name": "x", "nondeterministic": ["icmp:IP.id"]})


# -- kernel differential tests ---------------------------------------------------------


def _topo(frames: list[bytes], *, expect: int, neigh: bool = False,
          **kw: Any) -> Topo:
    return Topo(netns=["a", "b"], veths=[("veth0", "a", "veth1", "b", MAC_A, MAC_B)],
                addrs=[("a", "veth0", "10.0.0.1/24"), ("b", "veth1", "10.0.0.2/24")],
                neighs=[("b", "veth1", "10.0.0.1", MAC_A)] if neigh else [],
                inject=[("a", "veth0", f) for f in frames], frames=expect, **kw)


def _compare(t: Topo) -> Seen:
    """The same frames on both: per device, the same directions and every field equal
    but the ones ``tcemu diff`` ignores by default."""
    kernel = run_kernel(t)
    ours = run_tcemu(t)
    assert sorted(ours) == sorted(kernel), (ours, kernel)
    problems = []
    for key in sorted(kernel):
        mine, theirs = ours[key], kernel[key]
        if [d for d, _ in mine] != [d for d, _ in theirs]:
            problems.append(f"{key}: directions {[d for d, _ in mine]} != "
                            f"{[d for d, _ in theirs]}")
            continue
        for n, ((_, a), (_, b)) in enumerate(zip(mine, theirs, strict=True)):
            diffs = field_diffs(a, b, list(DEFAULT_NONDETERMINISTIC))
            if diffs:
                problems.append(f"{key} #{n}: {diffs}\n  tcemu  {a.hex()}\n  kernel {b.hex()}")
    assert not problems, "\n".join(problems)
    return kernel


def _out(seen: Seen, key: tuple[str, str] = ("b", "veth1")) -> list[Ether]:
    return [Ether(d) for direction, d in seen.get(key, []) if direction == "out"]


@pytest.mark.kernel
@pytest.mark.parametrize("case", ["plain", "tos", "long", "padded", "zero csum",
                                  "neighbour"])
def test_kernel_port_unreachable(case: str) -> None:
    frame = {"plain": _udp(), "tos": _udp(tos=0xB9), "long": _udp(payload=bytes(1200)),
             "padded": _udp(payload=b"ab") + bytes(16), "neighbour": _udp()}.get(case)
    if case == "zero csum":
        raw = bytearray(_udp())
        raw[40:42] = b"\0\0"
        frame = bytes(raw)
    assert frame is not None
    seen = _compare(_topo([frame], expect=3 if case == "neighbour" else 2,
                          neigh=case == "neighbour"))
    (reply,) = _out(seen)
    assert (reply[ICMP].type, reply[ICMP].code) == (3, 3)


@pytest.mark.kernel
@pytest.mark.parametrize("case", ["bad udp csum", "broadcast MAC", "icmp error",
                                  "fragment", "tcp rst", "tcp bad csum"])
def test_kernel_no_answer(case: str) -> None:
    raw = bytearray(_udp())
    raw[40] ^= 0xFF
    frame = {
        "bad udp csum": bytes(raw),
        "broadcast MAC": _udp(),
        "icmp error": _frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=3) /
                             IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=7)),
        "fragment": _udp(frag=1),
        "tcp rst": _tcp("RA", ack=5),
    }.get(case)
    if case == "broadcast MAC":
        frame = b"\xff" * 6 + _udp()[6:]
    if case == "tcp bad csum":
        tcp = bytearray(_tcp("S"))
        tcp[50] ^= 0xFF
        frame = bytes(tcp)
    assert frame is not None
    seen = _compare(_topo([frame], expect=2))
    assert not _out(seen)


@pytest.mark.kernel
@pytest.mark.parametrize("case", ["echo", "echo tos code", "tcp syn", "tcp syn data fin",
                                  "tcp ack", "protocol"])
def test_kernel_replies(case: str) -> None:
    frame = {
        "echo": _frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=9, seq=3) /
                       Raw(bytes(range(48)))),
        "echo tos code": _frame(IP(src="10.0.0.1", dst="10.0.0.2", tos=0xB9) /
                                ICMP(type=8, code=4, id=9, seq=3) / Raw(b"ping")),
        "tcp syn": _tcp("S"),
        "tcp syn data fin": _tcp("SF", payload=b"abc"),
        "tcp ack": _tcp("PA", ack=777, payload=b"data"),
        "protocol": _frame(IP(src="10.0.0.1", dst="10.0.0.2", proto=253) / Raw(b"data")),
    }[case]
    seen = _compare(_topo([frame], expect=4, neigh=True))
    assert len(_out(seen)) == 1
    assert len([d for d, _ in seen[("a", "veth0")] if d == "in"]) == 1


@pytest.mark.kernel
def test_kernel_protocol_handlers() -> None:
    """Protocol unreachable for protocols without a handler (IPIP, IPv6, GRE, ESP, SCTP,
    253), none for IGMP and PIM; one source per datagram (one peer bucket each)."""
    protos = [0, 2, 4, 41, 47, 50, 103, 132, 253]
    frames = [_frame(IP(src=f"10.0.0.{10 + i}", dst="10.0.0.2", proto=p) / Raw(bytes(40)))
              for i, p in enumerate(protos)]
    seen = _compare(_topo(frames, expect=2 * len(protos) - 2))
    assert [r[IPerror].proto for r in _out(seen)] == [0, 4, 41, 47, 50, 132, 253]


@pytest.mark.kernel
def test_kernel_echo_replies_are_not_rate_limited() -> None:
    echo = _frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=1) / Raw(b"p"))
    seen = _compare(_topo([echo] * 10, expect=20))
    assert len(_out(seen)) == 10


@pytest.mark.kernel
@pytest.mark.parametrize("case", ["gateway", "martian local source", "martian zero source",
                                  "echo broadcast MAC"])
def test_kernel_routes_and_sources(case: str) -> None:
    routes: list[tuple[str, str, str | None, str | None]] = []
    neighs: list[tuple[str, str, str, bytes]] = []
    if case == "gateway":
        frame = _frame(IP(src="192.168.7.7", dst="10.0.0.2") / UDP(dport=7))
        routes = [("b", "default", "10.0.0.1", None)]
        neighs = [("b", "veth1", "10.0.0.1", MAC_X)]
    elif case == "martian local source":
        frame = _frame(IP(src="10.0.0.2", dst="10.0.0.2") / UDP(dport=7))
    elif case == "martian zero source":
        frame = _frame(IP(src="0.0.0.0", dst="10.0.0.2") / UDP(dport=7))
    else:
        frame = _frame(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8) / Raw(b"x"),
                       dst=b"\xff" * 6)
    t = _topo([frame], expect=2)
    t.routes, t.neighs = routes, neighs
    seen = _compare(t)
    replies = _out(seen)
    assert len(replies) == (case in ("gateway", "echo broadcast MAC"))
    if case == "gateway":
        assert replies[0].dst == "02:00:00:00:00:0a"


@pytest.mark.kernel
def test_kernel_reply_through_tc_egress() -> None:
    """The reply runs b/veth1's tc egress (a stamping program writes the skb fields it
    saw into the frame: len, pkt_type, mark, priority, ifindex, protocol, ...)."""
    t = _topo([_udp(payload=bytes(120))], expect=2, neigh=True,
              clsact=[("b", "veth1")], filters=[("b", "veth1", "egress", "stamp_only")])
    seen = _compare(t)
    assert len(_out(seen)) == 1


@pytest.mark.kernel
def test_kernel_peer_rate_limit() -> None:
    """Ten datagrams at once: the peer's bucket lets six errors through on both."""
    seen = _compare(_topo([_udp()] * 10, expect=16))
    assert len(_out(seen)) == 6


def test_martian_sources_are_the_kernels_classes() -> None:
    """ip_route_input_slow's martian sources (ipv4_is_multicast, _lbcast, _zeronet,
    _loopback), tested on bytes, against the ``ipaddress`` classes, seeded."""
    rng = random.Random(7)
    addrs = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(20_000)]
    addrs += [ipaddress.IPv4Address(a) for a in (
        "255.255.255.255", "255.255.255.254", "224.0.0.0", "239.255.255.255", "240.0.0.0",
        "127.0.0.1", "126.255.255.255", "0.0.0.0", "0.255.255.255", "1.0.0.0")]
    for addr in addrs:
        expected = addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255") \
            or addr.packed[0] == 0 or addr.is_loopback
        assert _martian_source(addr.packed) == expected, addr
