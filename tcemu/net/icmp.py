"""The host's answers to IPv4 traffic for its own addresses: ICMP errors, echo replies and
TCP resets, sent through the ordinary output path.

Mirrors ``net/ipv4/ip_input.c`` (``ip_rcv_core``, ``ip_local_deliver``,
``ip_protocol_deliver_rcu``), ``net/ipv4/icmp.c`` (``icmp_rcv``, ``icmp_echo``,
``icmp_reply``, ``__icmp_send``, ``icmp_global_allow``/``icmp_global_consume``,
``icmpv4_xrlim_allow``), ``net/ipv4/inetpeer.c`` (``inet_getpeer``,
``inet_peer_xrlim_allow``), ``net/ipv4/udp.c`` (``__udp4_lib_rcv``),
``net/ipv4/tcp_ipv4.c`` (``tcp_v4_rcv``, ``tcp_v4_send_reset``) and the output side of
``net/ipv4/ip_output.c``/``net/ipv4/arp.c`` as far as a reply needs them.

A frame the receive path hands to the host (:func:`tcemu.net.rx.deliver`) goes to
:func:`ip_local_deliver`.  There is no socket in tcemu, so every port is closed:

* UDP → ICMP destination unreachable / port unreachable (3/3);
* TCP (not RST) → RST (RST|ACK for a segment without ACK);
* ICMP echo request → echo reply (same id, sequence, code and payload);
* a protocol without a handler in the kernel → ICMP protocol unreachable (3/2).

Errors quote the offending IP header and as much of the datagram as fits in 576 bytes,
with TOS ``(tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL`` and TTL
``ip_default_ttl``.  ICMP messages of a type in ``icmp_ratemask`` are rate limited as the
kernel does, on the virtual clock in jiffies (:data:`HZ`): the per-netns global bucket
(``icmp_msgs_per_sec``, ``icmp_msgs_burst``, a random 0..2 credits consumed per message,
from a seeded generator) and the per-peer bucket (``icmp_ratelimit``, burst of six).
Per-netns settings and state: :func:`icmp_net`.

A reply leaves like any locally generated packet: route lookup of the destination in the
namespace (a local destination goes through ``lo``), the neighbour's link-layer address,
the Ethernet header, then ``dev_queue_xmit`` of the output device (tc egress, qdisc,
taps, driver).  The IPv4 id of an ICMP message is the kernel's ``__ip_select_ident``
value, random there: tcemu takes it from :meth:`tcemu.net.stack.Stack.ip_ident`, the
network's injectable ``ip_id_fn`` (``tcemu diff`` ignores it: ``icmp:IP.id``).  A TCP
reset has DF set and id 0, as the kernel's control socket sends it.

KERNEL-DIFF: tcemu has no ARP, and every device behaves as an ``IFF_NOARP`` device (the
kernel backends deploy them so): without a permanent neighbour entry the destination MAC
is the device's own address (``arp_constructor``: ``NUD_NOARP``), where a kernel device
doing ARP would queue the reply and send an ARP request.
KERNEL-DIFF: IP options that change the datagram are not modelled (see
``_ip_options_compile``; fragments are reassembled before, and replies longer than the
route's MTU fragmented, by ``tcemu.net.ipfrag``), no IPv6 (ICMPv6 errors and echo replies
are not sent), no UDP-Lite port unreachable; the protocols with a handler are those of
the reference kernel (ICMP, IGMP, TCP, UDP, PIM, UDP-Lite): a kernel with GRE, IPIP, SCTP
or ESP modules loaded hands those to them, where tcemu answers protocol unreachable.
"""

from __future__ import annotations

import ipaddress
import random
import struct
import weakref
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcemu import csum
from tcemu.net import tx as _tx
from tcemu.net.ipfrag import ip_fragment
from tcemu.netdev import ARPHRD_LOOPBACK
from tcemu.skb import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, ETH_P_IP, PktType, SkBuff

if TYPE_CHECKING:
    from tcemu.net.netns import Netns
    from tcemu.net.stack import Stack
    from tcemu.netdev import NetDev

__all__ = ["HZ", "IcmpNet", "IcmpSysctl", "InetPeer", "icmp_frag_needed", "icmp_net",
           "ip_local_deliver"]

HZ = 250                      # CONFIG_HZ of the reference kernel (jiffies per second)
XRLIM_BURST_FACTOR = 6        # net/ipv4/inetpeer.c
IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_TCP, IPPROTO_UDP = 1, 2, 6, 17
IPPROTO_PIM, IPPROTO_UDPLITE = 103, 136
# inet_protos[] of the reference kernel (probed: every other protocol gets 3/2)
HANDLED_PROTOCOLS = frozenset({IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_TCP, IPPROTO_UDP,
                               IPPROTO_PIM, IPPROTO_UDPLITE})
ICMP_ECHOREPLY, ICMP_DEST_UNREACH, ICMP_ECHO = 0, 3, 8
ICMP_PROT_UNREACH, ICMP_PORT_UNREACH, ICMP_FRAG_NEEDED = 2, 3, 4
ICMP_PARAMETERPROB = 12
NR_ICMP_TYPES = 18
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})   # icmp_pointers[type].error
IPTOS_TOS_MASK, IPTOS_PREC_INTERNETCONTROL = 0x1E, 0xC0
IP_DF, IP_MF, IP_OFFSET = 0x4000, 0x2000, 0x1FFF
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


@dataclass
class IcmpSysctl:
    """``net.ipv4.*`` settings of one namespace (the values a new netns starts with)."""

    icmp_ratelimit: int = 1000          # ms (the sysctl is shown in ms, kept in jiffies)
    icmp_ratemask: int = 0x1818         # dest unreachable, source quench, time exceeded,
                                        # parameter problem
    icmp_msgs_per_sec: int = 1000
    icmp_msgs_burst: int = 50
    icmp_echo_ignore_all: bool = False
    ip_default_ttl: int = 64


@dataclass
class InetPeer:
    """The rate-limit part of ``struct inet_peer`` (jiffies)."""

    rate_tokens: int
    rate_last: int


@dataclass
class IcmpNet:
    """ICMP state of one namespace: settings, the global bucket, the peers."""

    netns: Netns
    rng: random.Random
    sysctl: IcmpSysctl = field(default_factory=IcmpSysctl)
    credit: int = 0                     # net->ipv4.icmp_global_credit
    stamp: int | None = None            # net->ipv4.icmp_global_stamp (None: long ago)
    peers: dict[bytes, InetPeer] = field(default_factory=dict)
    sent: int = 0                       # ICMP_MIB_OUTMSGS
    ratelimit_global: int = 0           # ICMP_MIB_RATELIMITGLOBAL
    ratelimit_host: int = 0             # ICMP_MIB_RATELIMITHOST


_STATES: weakref.WeakKeyDictionary[Stack, dict[str, IcmpNet]] = weakref.WeakKeyDictionary()


def icmp_net(st: Stack, netns: str) -> IcmpNet:
    """The ICMP settings and rate-limit state of ``netns`` (fresh for a new namespace)."""
    ns = st.ns(netns)
    per_stack = _STATES.setdefault(st, {})
    state = per_stack.get(netns)
    if state is None or state.netns is not ns:
        seed = (st.seed << 32) ^ zlib.crc32(netns.encode()) ^ 0x69636D70
        state = IcmpNet(ns, random.Random(seed))
        per_stack[netns] = state
    return state


def jiffies(st: Stack) -> int:
    return st.clock.now_ns() * HZ // 1_000_000_000


# -- receive side ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rx:
    """A locally delivered IPv4 datagram, trimmed to its total length."""

    dev: NetDev
    skb: SkBuff
    ip: bytes                           # IP header + payload (tot_len bytes)
    ihl: int

    @property
    def saddr(self) -> bytes:
        return self.ip[12:16]

    @property
    def daddr(self) -> bytes:
        return self.ip[16:20]

    @property
    def protocol(self) -> int:
        return self.ip[9]

    @property
    def payload(self) -> bytes:
        return self.ip[self.ihl:]


def ip_local_deliver(st: Stack, dev: NetDev, skb: SkBuff) -> None:
    """``ip_rcv`` → ``ip_local_deliver`` → the protocol handler, for a frame the host
    accepted (data at L3); answers as the kernel does when nothing listens."""
    if skb.protocol != ETH_P_IP or len(skb.data) < 20:
        return
    ns = st.ns_of(dev)
    # the route lookup first (cheap for the common forwarded or broadcast frame, which
    # the local stack never answers), then the header checks of ip_rcv_core
    if not ns.fib.is_local_packed(bytes(skb.data[16:20])):
        return
    ip = _ip_rcv_core(skb)
    if ip is None:
        st.event(skb, dev, "drop", "ip: invalid IPv4 header: not answered")
        return
    saddr = ip[12:16]
    if _martian_source(saddr) or ns.fib.is_local_packed(saddr):
        st.event(skb, dev, "drop",
                 f"ip: martian source {ipaddress.IPv4Address(saddr)}: dropped")
        return
    rx = _Rx(dev, skb, ip, (ip[0] & 0xF) * 4)
    if rx.ihl > 20 and not _ip_options_compile(st, rx):
        return
    if int.from_bytes(ip[6:8], "big") & (IP_MF | IP_OFFSET):
        st.event(skb, dev, "drop", "ip: fragment not reassembled: not answered")
        return
    if rx.protocol == IPPROTO_UDP:
        _udp_rcv(st, rx)
    elif rx.protocol == IPPROTO_TCP:
        _tcp_rcv(st, rx)
    elif rx.protocol == IPPROTO_ICMP:
        _icmp_rcv(st, rx)
    elif rx.protocol not in HANDLED_PROTOCOLS:
        icmp_send(st, rx, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH,
                  why=f"no handler for protocol {rx.protocol}")


# options ip_options_compile acts on (record route, timestamp, source routes, CIPSO);
# router alert (148) is merely noted, and any other type is accepted as it is
_ACTIVE_OPTIONS = frozenset({7, 68, 131, 137, 134})


def _ip_options_compile(st: Stack, rx: _Rx) -> bool:
    """``ip_options_compile`` on a received datagram: True when it may be answered.

    EOL, NOP, router alert and options without meaning to the kernel pass (none of them
    is echoed back by ``ip_options_echo``: answers carry no options); a malformed option
    is answered with ICMP parameter problem pointing at it, then dropped.
    KERNEL-DIFF: record route, timestamp, source route and CIPSO options are not
    modelled: such a datagram is not answered."""
    opts, at = rx.ip[20:rx.ihl], 0
    while at < len(opts):
        kind = opts[at]
        if kind == 0:                        # IPOPT_END
            break
        if kind == 1:                        # IPOPT_NOOP
            at += 1
            continue
        length = opts[at + 1] if at + 1 < len(opts) else 0
        bad = at if length < 2 or length > len(opts) - at else None
        if bad is None and kind == 148 and length < 4:
            bad = at + 1                     # IPOPT_RA
        if bad is not None:
            st.event(rx.skb, rx.dev, "drop", "ip: malformed option: parameter problem")
            icmp_send(st, rx, ICMP_PARAMETERPROB, 0, (20 + bad) << 24,
                      why="malformed IP option")
            return False
        if kind in _ACTIVE_OPTIONS:
            st.event(rx.skb, rx.dev, "drop",
                     f"ip: IP option {kind} is not modelled: not answered")
            return False
        at += length
    return True


def _ip_rcv_core(skb: SkBuff) -> bytes | None:
    """The header checks of ``ip_rcv_core`` and the trim to ``tot_len``."""
    data = skb.data
    if len(data) < 20 or data[0] >> 4 != 4 or data[0] & 0xF < 5:
        return None
    ihl = (data[0] & 0xF) * 4
    tot_len = int.from_bytes(data[2:4], "big")
    if len(data) < ihl or tot_len > len(data) or tot_len < ihl:
        return None
    if csum.fold(csum.partial(bytes(data[:ihl]))) != 0:
        return None
    return bytes(data[:tot_len])


def _martian_source(saddr: bytes) -> bool:
    """``ip_route_input_slow``: multicast (224/4), limited broadcast, 0/8 and loopback
    (127/8) sources, tested on the address's bytes as ``ipv4_is_*`` do."""
    return saddr[0] >> 4 == 14 or saddr == b"\xff\xff\xff\xff" or saddr[0] in (0, 127)


def _l4_csum_ok(rx: _Rx, proto: int, segment: bytes) -> bool:
    """The transport checksum over the pseudo header (a CHECKSUM_UNNECESSARY or
    CHECKSUM_PARTIAL skb is trusted, as ``skb_csum_unnecessary`` says)."""
    if rx.skb.ip_summed in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL):
        return True
    pseudo = rx.saddr + rx.daddr + struct.pack("!BBH", 0, proto, len(segment))
    return csum.fold(csum.add32(csum.partial(pseudo), csum.partial(segment))) == 0


def _udp_rcv(st: Stack, rx: _Rx) -> None:
    """``__udp4_lib_rcv`` with no socket: port unreachable if the checksum is good."""
    seg = rx.payload
    if len(seg) < 8:
        st.event(rx.skb, rx.dev, "drop", "udp: short packet: dropped")
        return
    ulen = int.from_bytes(seg[4:6], "big")
    if ulen > len(seg) or ulen < 8:
        st.event(rx.skb, rx.dev, "drop", "udp: bad UDP length: dropped")
        return
    seg = seg[:ulen]                                  # pskb_trim_rcsum(skb, ulen)
    if seg[6:8] != b"\0\0" and not _l4_csum_ok(rx, IPPROTO_UDP, seg):
        st.event(rx.skb, rx.dev, "drop", "udp: bad UDP checksum: dropped")
        return
    dport = int.from_bytes(seg[2:4], "big")
    icmp_send(st, _Rx(rx.dev, rx.skb, rx.ip[:rx.ihl + ulen], rx.ihl), ICMP_DEST_UNREACH,
              ICMP_PORT_UNREACH, why=f"no UDP socket on port {dport}")


def _icmp_rcv(st: Stack, rx: _Rx) -> None:
    """``icmp_rcv``: a good echo request is answered by ``icmp_echo``."""
    msg = rx.payload
    if len(msg) < 8 or not _l4_csum_ok_icmp(rx, msg):
        st.event(rx.skb, rx.dev, "drop", "icmp: short or bad ICMP message: dropped")
        return
    if msg[0] != ICMP_ECHO:
        return
    state = icmp_net(st, rx.dev.netns)
    if state.sysctl.icmp_echo_ignore_all:
        return
    head = bytes([ICMP_ECHOREPLY, msg[1], 0, 0]) + msg[4:8]
    _icmp_reply(st, rx, head, msg[8:], tos=rx.ip[1])


def _l4_csum_ok_icmp(rx: _Rx, msg: bytes) -> bool:
    if rx.skb.ip_summed in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL):
        return True
    return csum.fold(csum.partial(msg)) == 0


# -- ICMP output -------------------------------------------------------------------------


def icmp_send(st: Stack, rx: _Rx, icmp_type: int, code: int, info: int = 0, *,
              why: str = "", src: bytes | None = None) -> None:
    """``__icmp_send``: an error about ``rx`` back to its source.  The error's source is
    the datagram's destination (a local one), or ``src`` when it was not local."""
    skb = rx.skb
    if skb.pkt_type != PktType.HOST:
        return                                        # no replies to link broadcasts
    if rx.protocol == IPPROTO_ICMP and icmp_type in ICMP_ERRORS:
        inner = rx.ip[rx.ihl:rx.ihl + 1]
        if not inner or inner[0] > NR_ICMP_TYPES or inner[0] in ICMP_ERRORS:
            return                                    # never an error about an error
    state = icmp_net(st, rx.dev.netns)
    from_lo = rx.dev.type == ARPHRD_LOOPBACK
    apply_ratelimit = False
    if not from_lo:
        allowed, apply_ratelimit = _icmpv4_global_allow(st, state, icmp_type, code)
        if not allowed:
            st.event(skb, rx.dev, "drop", "icmp: global ICMP rate limit: not sent")
            return
    out = _route_output(st, rx.dev.netns, rx.saddr)
    if out is None:
        st.event(skb, rx.dev, "drop", f"icmp: no route to {ipaddress.IPv4Address(rx.saddr)}")
        return
    dev, _ = out
    if not _icmpv4_xrlim_allow(st, state, dev, rx.saddr, apply_ratelimit):
        st.event(skb, rx.dev, "drop", "icmp: peer ICMP rate limit: not sent")
        return
    room = min(dev.mtu, 576) - 20 - 8
    if room <= 20:
        return
    quote = rx.ip[:room]
    tos = (rx.ip[1] & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL \
        if icmp_type in ICMP_ERRORS else rx.ip[1]
    head = bytes([icmp_type, code, 0, 0]) + info.to_bytes(4, "big")
    _icmp_push_reply(st, state, rx, head, quote, tos=tos,
                     why=f"ICMP type {icmp_type} code {code} ({why})", src=src)


def icmp_frag_needed(st: Stack, dev: NetDev, skb: SkBuff, mtu: int) -> None:
    """``ip_fragment`` refusing a locally generated datagram (data at its IPv4 header)
    with DF set: ICMP fragmentation needed, next-hop MTU ``mtu``, to its source, the
    host itself.  The datagram's route is not local, so the error's source address is
    the one the route to that source picks (``__icmp_send``: saddr 0)."""
    data = bytes(skb.data)
    rx = _Rx(dev, skb, data[:int.from_bytes(data[2:4], "big")], (data[0] & 0xF) * 4)
    ns = st.ns(dev.netns)
    route = ns.fib.lookup(ipaddress.IPv4Address(rx.saddr))
    pref = ns.fib.prefsrc(route, ipaddress.IPv4Address(rx.saddr)) if route else None
    icmp_send(st, rx, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, why="fragmentation needed",
              src=pref.packed if pref is not None else rx.saddr)


def _icmp_reply(st: Stack, rx: _Rx, head: bytes, data: bytes, *, tos: int) -> None:
    """``icmp_reply``: an answer (echo reply) to ``rx``."""
    state = icmp_net(st, rx.dev.netns)
    allowed, apply_ratelimit = _icmpv4_global_allow(st, state, head[0], head[1])
    if not allowed:
        st.event(rx.skb, rx.dev, "drop", "icmp: global ICMP rate limit: not sent")
        return
    out = _route_output(st, rx.dev.netns, rx.saddr)
    if out is None:
        st.event(rx.skb, rx.dev, "drop", f"icmp: no route to {ipaddress.IPv4Address(rx.saddr)}")
        return
    if not _icmpv4_xrlim_allow(st, state, out[0], rx.saddr, apply_ratelimit):
        st.event(rx.skb, rx.dev, "drop", "icmp: peer ICMP rate limit: not sent")
        return
    _icmp_push_reply(st, state, rx, head, data, tos=tos, why="ICMP echo reply")


def _icmp_push_reply(st: Stack, state: IcmpNet, rx: _Rx, head: bytes, data: bytes, *,
                     tos: int, why: str, src: bytes | None = None) -> None:
    """``icmp_push_reply``: checksum the message, then IPv4 output (DF clear)."""
    msg = bytearray(head + data)
    msg[2:4] = csum.fold(csum.partial(msg)).to_bytes(2, "little")
    state.sent += 1
    src = rx.daddr if src is None else src
    ident = st.ip_ident(src, rx.saddr, IPPROTO_ICMP)
    ip_local_out(st, rx.dev.netns, src=src, dst=rx.saddr, proto=IPPROTO_ICMP,
                 payload=bytes(msg), tos=tos, ident=ident, frag_off=0,
                 ttl=state.sysctl.ip_default_ttl, cause=rx.skb, why=why)


# -- rate limits -------------------------------------------------------------------------


def _icmpv4_mask_allow(state: IcmpNet, icmp_type: int, code: int) -> bool:
    """``icmpv4_mask_allow``: True for a type that is never rate limited."""
    if icmp_type > NR_ICMP_TYPES:
        return True
    if icmp_type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        return True
    return not (1 << icmp_type) & state.sysctl.icmp_ratemask


def _icmpv4_global_allow(st: Stack, state: IcmpNet, icmp_type: int,
                         code: int) -> tuple[bool, bool]:
    """``icmpv4_global_allow``: (allowed, apply the per-peer limit)."""
    if _icmpv4_mask_allow(state, icmp_type, code):
        return True, False
    if _icmp_global_allow(st, state):
        return True, True
    state.ratelimit_global += 1
    return False, False


def _icmp_global_allow(st: Stack, state: IcmpNet) -> bool:
    """``icmp_global_allow``: the per-netns token bucket (credits are taken later, by
    ``icmp_global_consume``)."""
    if state.credit > 0:
        return True
    now = jiffies(st)
    delta = HZ if state.stamp is None else min((now - state.stamp) & 0xFFFF_FFFF, HZ)
    if delta < HZ // 50:
        return False
    incr = state.sysctl.icmp_msgs_per_sec * delta // HZ
    if not incr:
        return False
    state.stamp = now
    state.credit = min(state.credit + incr, state.sysctl.icmp_msgs_burst)
    return True


def _icmpv4_xrlim_allow(st: Stack, state: IcmpNet, out: NetDev, daddr: bytes,
                        apply_ratelimit: bool) -> bool:
    """``icmpv4_xrlim_allow``: the per-peer bucket, then ``icmp_global_consume``."""
    if not apply_ratelimit:
        return True
    timeout = state.sysctl.icmp_ratelimit * HZ // 1000       # msecs_to_jiffies
    allowed = True
    if timeout and out.type != ARPHRD_LOOPBACK:
        allowed = _inet_peer_xrlim_allow(_inet_getpeer(st, state, daddr), jiffies(st),
                                         timeout)
    if not allowed:
        state.ratelimit_host += 1
    else:
        state.credit -= state.rng.randrange(3)                # get_random_u32_below(3)
    return allowed


def _inet_getpeer(st: Stack, state: IcmpNet, daddr: bytes) -> InetPeer:
    peer = state.peers.get(daddr)
    if peer is None:
        # inet_getpeer: "chosen enough high so that the first calculation of tokens is
        # at its maximum"
        peer = InetPeer(rate_tokens=0, rate_last=jiffies(st) - 60 * HZ)
        state.peers[daddr] = peer
    return peer


def _inet_peer_xrlim_allow(peer: InetPeer, now: int, timeout: int) -> bool:
    """``inet_peer_xrlim_allow``: one token bucket per peer, ``timeout`` jiffies per
    message, at most ``XRLIM_BURST_FACTOR`` messages of credit."""
    token = peer.rate_tokens
    delta = now - peer.rate_last
    if delta:
        peer.rate_last = now
        token = min(token + delta, XRLIM_BURST_FACTOR * timeout)
    allowed = token >= timeout
    if allowed:
        token -= timeout
    peer.rate_tokens = token
    return allowed


# -- TCP ---------------------------------------------------------------------------------


def _tcp_rcv(st: Stack, rx: _Rx) -> None:
    """``tcp_v4_rcv`` with no socket: ``tcp_v4_send_reset`` for a good segment."""
    seg = rx.payload
    if rx.skb.pkt_type != PktType.HOST or len(seg) < 20:
        return
    doff = (seg[12] >> 4) * 4
    if doff < 20 or len(seg) < doff:
        st.event(rx.skb, rx.dev, "drop", "tcp: bad TCP header: dropped")
        return
    if not _l4_csum_ok(rx, IPPROTO_TCP, seg):
        st.event(rx.skb, rx.dev, "drop", "tcp: bad TCP checksum: dropped")
        return
    tcp_v4_send_reset(st, rx)


def tcp_v4_send_reset(st: Stack, rx: _Rx) -> None:
    """``tcp_v4_send_reset`` (no socket): the RST the control socket sends."""
    seg = rx.payload
    flags = seg[13]
    if flags & TCP_RST:
        return                                        # never a reset for a reset
    sport, dport, seq, ack_seq = struct.unpack_from("!HHII", seg)
    doff = (seg[12] >> 4) * 4
    if flags & TCP_ACK:
        rep_seq, rep_ack, rep_flags = ack_seq, 0, TCP_RST
    else:
        rep_seq, rep_flags = 0, TCP_RST | TCP_ACK
        rep_ack = (seq + bool(flags & TCP_SYN) + bool(flags & TCP_FIN) + len(seg) - doff) \
            & 0xFFFF_FFFF
    th = bytearray(struct.pack("!HHIIBBHHH", dport, sport, rep_seq, rep_ack, 5 << 4,
                               rep_flags, 0, 0, 0))
    pseudo = rx.daddr + rx.saddr + struct.pack("!BBH", 0, IPPROTO_TCP, len(th))
    th[16:18] = csum.fold(csum.add32(csum.partial(pseudo), csum.partial(th))) \
        .to_bytes(2, "little")
    if _route_output(st, rx.dev.netns, rx.saddr) is None:
        st.event(rx.skb, rx.dev, "drop", f"tcp: no route to {ipaddress.IPv4Address(rx.saddr)}")
        return
    ttl = icmp_net(st, rx.dev.netns).sysctl.ip_default_ttl
    ip_local_out(st, rx.dev.netns, src=rx.daddr, dst=rx.saddr, proto=IPPROTO_TCP,
                 payload=bytes(th), tos=rx.ip[1] & ~3 & 0xFF, ident=0, frag_off=IP_DF,
                 ttl=ttl, cause=rx.skb, why=f"TCP reset (no socket on port {dport})")


# -- IPv4 output -------------------------------------------------------------------------


def _route_output(st: Stack, netns: str, daddr: bytes) -> tuple[NetDev, bytes] | None:
    """``ip_route_output_key``: the output device and the nexthop, or None (no route,
    or a blackhole/unreachable/prohibit route).  A local destination leaves by ``lo``."""
    ns = st.ns(netns)
    dst = ipaddress.IPv4Address(daddr)
    route = ns.fib.lookup(dst)
    if route is None or route.type not in ("unicast", "local"):
        return None
    if route.type == "local":
        lo = ns.devices.get("lo")
        return (lo, daddr) if lo is not None else None
    if route.ifindex is None or route.ifindex not in ns.by_index:
        return None
    nexthop = route.via.packed if route.via is not None else daddr
    return ns.by_index[route.ifindex], nexthop


def ip_local_out(st: Stack, netns: str, *, src: bytes, dst: bytes, proto: int,
                 payload: bytes, tos: int, ident: int, frag_off: int, ttl: int,
                 cause: SkBuff, why: str) -> int:
    """Route ``dst``, build the IPv4 header, resolve the neighbour and transmit through
    the output device's ``dev_queue_xmit`` (``ip_local_out`` → ``ip_finish_output2``)."""
    out = _route_output(st, netns, dst)
    if out is None:
        return _tx.NET_XMIT_DROP
    dev, nexthop = out
    tot_len = 20 + len(payload)
    iph = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, tot_len, ident & 0xFFFF,
                                frag_off, ttl, proto, 0, src, dst))
    iph[10:12] = csum.fold(csum.partial(iph)).to_bytes(2, "little")
    datagrams = [bytes(iph) + payload]
    if tot_len > dev.mtu:
        # ip_fragment (the sockets that answer never set DF on a datagram this long)
        frags = ip_fragment(SkBuff(bytearray(datagrams[0]), network_header=0), dev.mtu)
        if frags is None:
            # KERNEL-DIFF: the kernel also sends ICMP fragmentation needed to itself
            st.note(cause, "drop", f"reply of {tot_len} bytes over the MTU of {dev.name} "
                    "with DF set")
            return _tx.NET_XMIT_DROP
        datagrams = [bytes(frag.data) for frag in frags]
    mac = _neigh_ha(st, dev, nexthop)
    rc = _tx.NET_XMIT_DROP
    for datagram in datagrams:
        skb = st.new_skb(mac + dev.address + ETH_P_IP.to_bytes(2, "big") + datagram, dev)
        if st.trace.enabled:
            st.event(skb, dev, "send", f"{why} for packet {cause.pkt_id}: IPv4 "
                     f"{ipaddress.IPv4Address(src)} -> {ipaddress.IPv4Address(dst)}")
        rc = _tx.dev_queue_xmit(st, dev, skb)
    return rc


def _neigh_ha(st: Stack, dev: NetDev, nexthop: bytes) -> bytes:
    """The neighbour's link-layer address: a permanent entry, else (``IFF_NOARP`` and
    loopback devices, ``arp_constructor``) the device's own address."""
    # KERNEL-DIFF: every tcemu device is IFF_NOARP (see the module docstring).
    return _tx.neigh_ha(st, dev, ipaddress.IPv4Address(nexthop))
