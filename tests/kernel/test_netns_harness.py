"""The real-kernel topology harness (:mod:`tcemu.kernel.netns`) on this machine's kernel.

Each test builds a small topology in fresh network namespaces, injects frames on both sides
and checks the bytes, directions and per-device order that the AF_PACKET captures recorded,
plus the maps of the attached programs:

* a veth pair across two namespaces with ``pkt_rewrite`` (tests/testdata/objects) on the
  egress hook, loaded by ``tc ... bpf obj``, and on the ingress hook, loaded by bpftool and
  attached by fd: the egress capture shows the rewritten frame, the ingress capture the
  frame as it arrived (taps run after egress and before ingress, spec §3);
* a hw-accel VLAN tag pushed by a program appears in the captured bytes (as libpcap shows
  it), on both ends of the veth;
* VXLAN in collect_md mode: a program on the sending device's egress sets the tunnel key
  (tests/testdata/netns/harness.c); the outer frame on the underlay is checked field by
  field except the outer IPv4 id (spec §10.22), the receiving device's ingress program
  records the RX tunnel metadata;
* teardown leaves no namespace, fd or thread behind, also after an exception, Ctrl-C, or
  a harness that was never closed; stale namespaces of killed runs are reaped;
* a device kind, a qdisc, root or bpf() that is missing raises KernelError naming it;
* without a kernel: the ``PACKET_AUXDATA`` decoding (VLAN re-insertion as libpcap does it)
  and the merge of per-device sequences.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from tcemu.errors import KernelError
from tcemu.kernel.capture import (
    PACKET_AUXDATA,
    SO_TIMESTAMPNS,
    SOL_PACKET,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    Captured,
    decode_frame,
    ignore_ethertypes,
    merge,
)
from tcemu.kernel.netns import KernelNet
from tests.kernel.objects_oracle import ether, inet_csum, ip4, ipv4, udp4

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
PKT_REWRITE = TESTDATA / "objects" / "pkt_rewrite.bpf.o"
HARNESS = TESTDATA / "netns" / "harness.bpf.o"

MAC_A = bytes.fromhex("020000000a01")
MAC_B = bytes.fromhex("020000000a02")
MAC_VA = bytes.fromhex("0200000000aa")
MAC_VB = bytes.fromhex("0200000000bb")
ETH_P_IP, ETH_P_LOCAL = 0x0800, 0x88B5
PACKET_HOST, PACKET_OTHERHOST, PACKET_OUTGOING = 0, 3, 4


def _seen(frames: list[Captured]) -> list[tuple[str, int, bytes]]:
    """What a device's tap showed, in order: (direction, pkttype, bytes)."""
    return [(f.direction, f.pkttype, f.data) for f in frames]


def _u64_slots(dump: dict[bytes, bytes]) -> dict[int, int]:
    return {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in dump.items()}


def _csum_replace2(check: int, old: int, new: int) -> int:
    """The RFC 1624 update pkt_rewrite.c does (same arithmetic, so the same bytes)."""
    c = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    return ~c & 0xFFFF


def _pkt_rewrite(frame: bytes) -> bytes:
    """What pkt_rewrite (tests/testdata/objects/pkt_rewrite.c) makes of an IPv4/UDP frame."""
    out = bytearray(frame)
    out[0:6], out[6:12] = frame[6:12], frame[0:6]
    ip = 14
    out[ip + 12:ip + 16], out[ip + 16:ip + 20] = frame[ip + 16:ip + 20], frame[ip + 12:ip + 16]
    check = int.from_bytes(out[ip + 10:ip + 12], "little")  # the C code works on raw halves
    old = int.from_bytes(out[ip + 8:ip + 10], "little")
    out[ip + 8] -= 1
    check = _csum_replace2(check, old, int.from_bytes(out[ip + 8:ip + 10], "little"))
    old = int.from_bytes(out[ip:ip + 2], "little")
    out[ip + 1] = (out[ip + 1] & 3) | (46 << 2)
    check = _csum_replace2(check, old, int.from_bytes(out[ip:ip + 2], "little"))
    out[ip + 10:ip + 12] = check.to_bytes(2, "little")
    udp = ip + 20
    out[udp:udp + 2], out[udp + 2:udp + 4] = frame[udp + 2:udp + 4], frame[udp:udp + 2]
    pl = udp + 8
    out[pl] = 0xAB
    out[pl + 2:pl + 4] = struct.pack("<H", 0xCDEF)
    out[pl + 4:pl + 8] = struct.pack("<I", 0x01234567)
    word = struct.unpack_from("<Q", out, pl + 8)[0] ^ 0x89ABCDEF01234567
    out[pl + 8:pl + 16] = struct.pack("<Q", word)
    return bytes(out)


def _veth_pair(kn: KernelNet) -> None:
    kn.netns("a")
    kn.netns("b")
    kn.veth("veth0", "a", "veth1", "b", mac0=MAC_A, mac1=MAC_B)
    kn.up("a", "veth0")
    kn.up("b", "veth1")


@pytest.mark.kernel
def test_veth_pair_with_tc_obj_and_fd_filters() -> None:
    payload = bytes(range(0x30, 0x50))
    from_a = ether(MAC_B, MAC_A, ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", 17, udp4(
        "10.0.0.1", "10.0.0.2", 1234, 5678, payload), tos=0x01))
    from_b = ether(MAC_A, MAC_B, ETH_P_IP, ipv4("10.0.0.2", "10.0.0.1", 17, udp4(
        "10.0.0.2", "10.0.0.1", 4321, 8765, payload[::-1])))
    with KernelNet() as kn:
        _veth_pair(kn)
        kn.clsact("a", "veth0")
        egress = kn.bpf_filter("a", "veth0", "egress", obj=PKT_REWRITE, sec="tc")
        loaded = kn.load_object(PKT_REWRITE)
        ingress = kn.bpf_filter("a", "veth0", "ingress", prog_fd=loaded.progs["pkt_rewrite"],
                                prio=2, handle=7)
        assert (egress.prog_name, ingress.prog_name) == ("pkt_rewrite", "pkt_rewrite")
        assert egress.prog_id != ingress.prog_id
        kn.start_capture()
        kn.inject("a", "veth0", from_a)
        kn.inject("b", "veth1", from_b)
        assert kn.settle(min_frames=4)
        caps = kn.captures()
        rewritten = _pkt_rewrite(from_a)
        assert rewritten != from_a
        assert set(caps) == {("a", "veth0"), ("b", "veth1")}
        # veth0 transmits after its egress hook and receives before its ingress hook.
        assert _seen(caps[("a", "veth0")]) == [("out", PACKET_OUTGOING, rewritten),
                                              ("in", PACKET_HOST, from_b)]
        # The rewrite swapped the MACs, so the peer sees a frame for another host.
        assert _seen(caps[("b", "veth1")]) == [("in", PACKET_OTHERHOST, rewritten),
                                              ("out", PACKET_OUTGOING, from_b)]
        assert kn.order_exact
        orders = sorted(f.order for frames in caps.values() for f in frames)
        assert orders == [0, 1, 2, 3]
        tx_a, rx_a = caps[("a", "veth0")]
        rx_b, tx_b = caps[("b", "veth1")]
        assert tx_a.order < rx_b.order
        assert tx_b.order < rx_a.order
        assert all(f.vlan is None and not f.csum_not_ready for f in (tx_a, rx_a, rx_b, tx_b))
        # Each program ran once, on its own copy of the map (slot 2 sums payload byte 1).
        out_egress = _u64_slots(kn.map_dump(prog_id=egress.prog_id, name="out"))
        out_ingress = _u64_slots(kn.map_dump(prog_id=ingress.prog_id, name="out"))
        assert out_egress == {0: 0, 1: 1, 2: payload[1], 3: 0}
        assert out_ingress == {0: 0, 1: 1, 2: payload[::-1][1], 3: 0}
        assert kn.map_dump(map_id=loaded.map_ids["out"]) == kn.map_dump(
            prog_id=ingress.prog_id, name="out")


@pytest.mark.kernel
def test_hw_accel_vlan_tag_is_reinserted_in_captures() -> None:
    plain = ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46))
    tagged = ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46), vlans=((0x8100, 5),))
    with KernelNet() as kn:
        _veth_pair(kn)
        loaded = kn.load_object(HARNESS)
        kn.clsact("a", "veth0")
        kn.bpf_filter("a", "veth0", "egress", prog_fd=loaded.progs["vlan_push"])
        kn.start_capture()
        kn.inject("a", "veth0", plain)
        kn.inject("a", "veth0", tagged)
        assert kn.settle(min_frames=4)
        caps = kn.captures()
    # skb_vlan_push puts 8100/0x2077 in hw-accel (spec §6.2); veth keeps it in metadata
    # on both sides, and the capture writes it back after the MAC addresses.
    pushed = ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46), vlans=((0x8100, 0x2077),))
    pushed_outer = ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46),
                         vlans=((0x8100, 0x2077), (0x8100, 5)))
    for key, direction in ((("a", "veth0"), "out"), (("b", "veth1"), "in")):
        frames = caps[key]
        assert [(f.direction, f.data) for f in frames] == [(direction, pushed),
                                                           (direction, pushed_outer)]
        assert [f.vlan for f in frames] == [(0x8100, 0x2077), (0x8100, 0x2077)]


def _outer_udp_pseudo_sum(src: str, dst: str, length: int) -> int:
    """The folded IPv4/UDP pseudo-header sum: what a CHECKSUM_PARTIAL UDP header holds."""
    return ~inet_csum(ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, length)) & 0xFFFF


@pytest.mark.kernel
def test_vxlan_collect_md_with_tunnel_key_program() -> None:
    inner = ether(MAC_VB, MAC_VA, ETH_P_LOCAL, bytes(range(46)))
    with KernelNet() as kn:
        _veth_pair(kn)
        for ns, dev, cidr in (("a", "veth0", "10.9.0.1/24"), ("b", "veth1", "10.9.0.2/24")):
            kn.addr(ns, dev, cidr)
            kn.up(ns, dev, arp=False)
        kn.neigh("a", "veth0", "10.9.0.2", MAC_B)
        kn.neigh("b", "veth1", "10.9.0.1", MAC_A)
        kn.vxlan("vx0", "a", external=True, dstport=4789, mac=MAC_VA, srcport=(40000, 40001))
        kn.vxlan("vx1", "b", external=True, dstport=4789, mac=MAC_VB)
        kn.up("a", "vx0", arp=False)
        kn.up("b", "vx1", arp=False)
        loaded = kn.load_object(HARNESS)
        kn.clsact("a", "vx0")
        kn.clsact("b", "vx1")
        kn.bpf_filter("a", "vx0", "egress", prog_fd=loaded.progs["set_tunnel_key"])
        rx = kn.bpf_filter("b", "vx1", "ingress", prog_fd=loaded.progs["get_tunnel_key"])
        kn.map_update(struct.pack("<I", 7), struct.pack("<Q", 0x1234), prog_id=rx.prog_id,
                      name="seen")
        kn.start_capture()
        kn.inject("a", "vx0", inner)
        assert kn.settle(min_frames=4)
        caps = kn.captures()
        seen = _u64_slots(kn.map_dump(prog_id=rx.prog_id, name="seen"))
    assert _seen(caps[("a", "vx0")]) == [("out", PACKET_OUTGOING, inner)]
    assert _seen(caps[("b", "vx1")]) == [("in", PACKET_HOST, inner)]
    (outer,) = caps[("a", "veth0")]
    (arrived,) = caps[("b", "veth1")]
    assert (outer.direction, arrived.direction) == ("out", "in")
    assert arrived.data == outer.data
    data = outer.data
    udp_len = 8 + 8 + len(inner)
    assert data[:14] == MAC_B + MAC_A + b"\x08\x00"
    ip = data[14:34]
    ident = ip[4:6]  # __ip_select_ident: not reproducible (spec §10.22)
    expected_ip = struct.pack("!BBH2sHBBH4s4s", 0x45, 0, 20 + udp_len, ident, 0, 64, 17,
                              0, ip4("10.9.0.1"), ip4("10.9.0.2"))
    assert ip[:10] + b"\0\0" + ip[12:] == expected_ip
    assert inet_csum(ip) == 0
    # Source port pinned by the one-port srcport range; the UDP checksum is left to the
    # (virtual) hardware: only the pseudo-header sum is in the bytes (spec §10.17).
    assert data[34:42] == struct.pack("!HHHH", 40000, 4789, udp_len, _outer_udp_pseudo_sum(
        "10.9.0.1", "10.9.0.2", udp_len))
    assert outer.csum_not_ready
    assert data[42:50] == bytes.fromhex("08000000 00002a00")
    assert data[50:] == inner
    # The receiving collect_md device attached RX metadata: src/dst of the outer header,
    # TTL 64, flags KEY|CSUM as BE16 (spec §7.4); slot 7 keeps the preloaded value.
    assert seen == {0: 0, 1: 42, 2: 0x0A090001, 3: 0x0A090002, 4: 0, 5: 64,
                    6: int.from_bytes(struct.pack("!H", 0x0005), "little"), 7: 0x1234}
    # Tap times follow the path: vx0 transmits, encapsulates, veth0 transmits, veth1 receives.
    assert caps[("a", "vx0")][0].order < outer.order < arrived.order


@pytest.mark.kernel
def test_egress_filter_on_an_ingress_qdisc_runs_at_ingress() -> None:
    """sch_ingress has one block for every minor: "egress" (ffff:fff3) lands on it too."""
    def udp_frame(dst: bytes, src: bytes) -> bytes:
        return ether(dst, src, ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", 17, udp4(
            "10.0.0.1", "10.0.0.2", 1, 2, bytes(32))))

    with KernelNet() as kn:
        _veth_pair(kn)
        kn.qdisc("b", "veth1", "ingress")
        loaded = kn.load_object(PKT_REWRITE)
        filt = kn.bpf_filter("b", "veth1", "egress", prog_fd=loaded.progs["pkt_rewrite"])
        kn.start_capture()
        kn.inject("a", "veth0", udp_frame(MAC_B, MAC_A))
        assert kn.settle(min_frames=2)
        runs_after_rx = _u64_slots(kn.map_dump(prog_id=filt.prog_id, name="out"))[1]
        kn.inject("b", "veth1", udp_frame(MAC_A, MAC_B))
        assert kn.settle(min_frames=4)
        runs_after_tx = _u64_slots(kn.map_dump(prog_id=filt.prog_id, name="out"))[1]
        caps = kn.captures()
    assert (runs_after_rx, runs_after_tx) == (1, 1)
    # Nothing rewrote the transmitted frame: there is no egress hook without clsact.
    assert _seen(caps[("a", "veth0")])[1] == ("in", PACKET_HOST, udp_frame(MAC_A, MAC_B))


@pytest.mark.kernel
def test_addresses_routes_and_neighbours_as_iproute2_shows_them() -> None:
    with KernelNet() as kn:
        _veth_pair(kn)
        kn.addr("a", "veth0", "10.9.0.1/24")
        kn.up("a", "veth0", arp=False, mtu=1400)
        kn.route("a", "10.77.0.0/16", via="10.9.0.2")
        kn.route("a", "default", dev="veth0")
        kn.neigh("a", "veth0", "10.9.0.2", MAC_B)

        def ip(*args: str) -> str:
            return subprocess.run(["ip", "-n", kn.netns_name("a"), *args], capture_output=True,
                                  text=True, check=True).stdout

        link = ip("link", "show", "veth0")
        assert "NOARP" in link
        assert "mtu 1400" in link
        assert kn.mac("a", "veth0") == MAC_A
        assert "inet 10.9.0.1/24" in ip("addr", "show", "veth0")
        routes = ip("route", "show")
        assert "10.77.0.0/16 via 10.9.0.2 dev veth0" in routes
        assert "default dev veth0" in routes
        assert "10.9.0.2 dev veth0 lladdr 02:00:00:00:0a:02 PERMANENT" in ip("neigh", "show")
        # IPv6 is off in every harness namespace, so no RS/MLD/DAD traffic can appear.
        assert "inet6" not in ip("addr", "show")


# --- teardown ------------------------------------------------------------------------------------


def _netns_list() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _namespace_state() -> tuple[int, set[str]]:
    """(open fds of this process, names of its threads that live in a harness netns)."""
    fds = len(os.listdir("/proc/self/fd"))
    return fds, {t.name for t in threading.enumerate() if t.name.startswith("netns:")}


def _busy_harness(kn: KernelNet) -> None:
    _veth_pair(kn)
    kn.clsact("a", "veth0")
    kn.bpf_filter("a", "veth0", "egress", prog_fd=kn.load_object(HARNESS).progs["vlan_push"])
    kn.start_capture()
    kn.inject("a", "veth0", ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46)))


@pytest.mark.kernel
def test_teardown_leaves_nothing_behind() -> None:
    before = _netns_list()
    fds, threads = _namespace_state()
    with KernelNet() as kn:
        _busy_harness(kn)
        names = {kn.netns_name("a"), kn.netns_name("b")}
        assert names <= _netns_list()
        inodes = {os.stat(f"/run/netns/{name}").st_ino for name in names}
    assert not names & _netns_list()
    assert not {name for name in _netns_list() - before if name.startswith(kn.tag)}
    assert _namespace_state() == (fds, threads)
    # No thread of this process is still inside one of the deleted namespaces.
    for task in os.listdir("/proc/self/task"):
        assert os.stat(f"/proc/self/task/{task}/ns/net").st_ino not in inodes


@pytest.mark.kernel
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_teardown_after_an_exception(error: type[BaseException]) -> None:
    fds, threads = _namespace_state()
    names: set[str] = set()

    def run() -> None:
        with KernelNet() as kn:
            _busy_harness(kn)
            names.update({kn.netns_name("a"), kn.netns_name("b")})
            raise error("stop")

    with pytest.raises(error):
        run()
    assert len(names) == 2
    assert not names & _netns_list()
    assert _namespace_state() == (fds, threads)


@pytest.mark.kernel
def test_teardown_by_the_finaliser_when_never_closed() -> None:
    kn = KernelNet()
    _busy_harness(kn)
    names = {kn.netns_name("a"), kn.netns_name("b")}
    del kn
    gc.collect()
    assert not names & _netns_list()


@pytest.mark.kernel
def test_reap_stale_removes_only_dead_runs() -> None:
    prefix = "tcemu-reaptest-"
    dead = f"{prefix}{2 ** 22 + 1}-abcd-a"  # above PID_MAX_LIMIT: no such process
    subprocess.run(["ip", "netns", "add", dead], check=True)
    try:
        with KernelNet(prefix=prefix) as kn:
            live = kn.netns("a")
            assert KernelNet.reap_stale(prefix) == [dead]
            assert live in _netns_list()
        assert dead not in _netns_list()
    finally:
        if dead in _netns_list():
            subprocess.run(["ip", "netns", "del", dead], check=False)


# --- missing features ----------------------------------------------------------------------------


def _kernel_has_vlan(kn: KernelNet) -> bool:
    """Ask iproute2 (independently of pyroute2) whether this kernel creates vlan devices."""
    res = subprocess.run(["ip", "-n", kn.netns_name("a"), "link", "add", "link", "veth0",
                          "name", "vlancheck", "type", "vlan", "id", "9"],
                         capture_output=True, text=True, check=False)
    return res.returncode == 0


@pytest.mark.kernel
def test_missing_link_kind_is_named() -> None:
    with KernelNet() as kn:
        _veth_pair(kn)
        has_vlan = _kernel_has_vlan(kn)
        if has_vlan:
            kn.vlan("veth0.5", "a", link="veth0", vid=5)
            assert kn.ifindex("a", "veth0.5") > 0
        else:
            with pytest.raises(KernelError) as info:
                kn.vlan("veth0.5", "a", link="veth0", vid=5)
            assert info.value.missing_feature == "link/vlan"
            assert info.value.errno == errno.EOPNOTSUPP
            with pytest.raises(KernelError) as probed:
                kn.require(links=["veth", "vxlan", "vlan"], qdiscs=["clsact"])
            assert probed.value.missing_feature == "link/vlan"
        with pytest.raises(KernelError) as bogus:
            kn.link("a", "x0", "tcemu_no_such_kind")
        assert bogus.value.missing_feature == "link/tcemu_no_such_kind"
        with pytest.raises(KernelError) as qdisc:
            kn.qdisc("a", "veth0", "tcemu_no_such_qdisc")
        assert qdisc.value.missing_feature == "qdisc/tcemu_no_such_qdisc"
        kn.require(links=["veth", "vxlan"], qdiscs=["clsact", "ingress"])


def test_not_root_is_a_missing_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(KernelError) as info:
        KernelNet()
    assert info.value.missing_feature == "root"


@pytest.mark.kernel
def test_unusable_bpf_is_a_missing_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tcemu.kernel.netns.probe", lambda: "bpf() failed: EPERM")
    with KernelNet() as kn:
        _veth_pair(kn)
        kn.clsact("a", "veth0")
        with pytest.raises(KernelError) as info:
            kn.bpf_filter("a", "veth0", "ingress", obj=PKT_REWRITE, sec="tc")
    assert info.value.missing_feature == "bpf"


# --- capture decoding, without a kernel ----------------------------------------------------------


def _auxdata(status: int, tci: int = 0, tpid: int = 0) -> tuple[int, int, bytes]:
    return (SOL_PACKET, PACKET_AUXDATA, struct.pack("<IIIHHHH", status, 60, 60, 0, 14, tci,
                                                    tpid))


def _stamp(ns: int) -> tuple[int, int, bytes]:
    return (socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("<qq", ns // 10**9, ns % 10**9))


@pytest.mark.parametrize(("status", "tci", "tpid", "expected"), [
    (0, 0, 0, None),
    (TP_STATUS_VLAN_VALID, 0, 0, (0x8100, 0)),  # tag present with TCI 0: still written back
    (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, 0x2077, 0x88A8, (0x88A8, 0x2077)),
    (0, 0x0005, 0, (0x8100, 5)),  # libpcap also trusts a non-zero TCI without the flag
])
def test_hw_accel_tag_decoding(status: int, tci: int, tpid: int,
                               expected: tuple[int, int] | None) -> None:
    raw = ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46))
    frame = decode_frame("a", "veth0", raw, [_auxdata(status, tci, tpid), _stamp(5)], 0)
    assert frame.vlan == expected
    assert frame.tstamp_ns == 5
    assert frame.direction == "in"
    if expected is None:
        assert frame.data == raw
    else:
        assert frame.data == ether(MAC_B, MAC_A, ETH_P_LOCAL, bytes(46), vlans=(expected,))
    assert frame.ethertype == (expected[0] if expected else ETH_P_LOCAL)


def test_merge_keeps_each_device_in_order_and_ignore_is_explicit() -> None:
    def cap(dev: str, stamp: int, ethertype: int) -> Captured:
        data = ether(MAC_B, MAC_A, ethertype, bytes(46))
        return decode_frame("a", dev, data, [_stamp(stamp)], PACKET_OUTGOING)

    first = [cap("x", 10, ETH_P_LOCAL), cap("x", 30, 0x0806), cap("x", 20, ETH_P_LOCAL)]
    second = [cap("y", 15, ETH_P_LOCAL), cap("y", 40, ETH_P_LOCAL)]
    merged = merge([first, second])
    assert [(f.dev, f.tstamp_ns) for f in merged] == [
        ("x", 10), ("y", 15), ("x", 30), ("x", 20), ("y", 40)]
    assert [f.order for f in merged] == [0, 1, 2, 3, 4]
    assert all(f.direction == "out" for f in merged)
    is_arp = ignore_ethertypes(0x0806)
    assert [f.tstamp_ns for f in merged if not is_arp(f)] == [10, 15, 20, 40]

