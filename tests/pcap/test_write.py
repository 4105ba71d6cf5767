"""The writers: round trips through tcemu's reader, dpkt, scapy, tshark and tcpdump."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgReader, rdpcap

from tcemu.pcap import (
    Direction,
    LinkType,
    PcapError,
    PcapngWriter,
    PcapWriter,
    read_packets,
)

T0 = 1_700_000_000_123_456_789


def _frame(i: int) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / IP(src="10.0.0.1", dst="10.0.0.2", id=i) / UDP(sport=1000 + i, dport=9999)
                 / (b"p" * i))


def _write_devices(path: Path) -> list[tuple[int, int, bytes, str, Direction]]:
    sent = []
    with PcapngWriter(path) as w:
        eth0 = w.add_interface("eth0", description="ns1/eth0")
        veth1 = w.add_interface("veth1", tsresol_ns=False)
        for i in range(6):
            dev = (eth0, veth1)[i % 2]
            direction = (Direction.INBOUND, Direction.OUTBOUND)[i // 3]
            comment = f"hook=ingress filter=bpf/prio1 verdict=TC_ACT_OK #{i}"
            w.write(dev, T0 + i * 1001, _frame(i), comment=comment, direction=direction)
            sent.append((dev, T0 + i * 1001, _frame(i), comment, direction))
    return sent


def test_pcapng_round_trip_through_tcemu(tmp_path: Path) -> None:
    path = tmp_path / "dev.pcapng"
    sent = _write_devices(path)
    got = list(read_packets(path))
    assert [(r.if_index, r.data, r.comment, r.direction) for r in got] == [
        (dev, data, comment, direction) for dev, _, data, comment, direction in sent]
    # veth1 was described with microsecond resolution: its timestamps are cut to µs
    assert [r.timestamp_ns for r in got] == [
        ts if dev == 0 else ts // 1000 * 1000 for dev, ts, *_ in sent]
    assert [(r.if_name, r.interface.description) for r in got[:2]] == [
        ("eth0", "ns1/eth0"), ("veth1", None)]
    assert {r.orig_len == len(r.data) for r in got} == {True}


def test_pcapng_round_trip_through_scapy(tmp_path: Path) -> None:
    path = tmp_path / "dev.pcapng"
    sent = _write_devices(path)
    with PcapNgReader(str(path)) as reader:
        pkts = list(reader)
    assert [bytes(p) for p in pkts] == [data for _, _, data, _, _ in sent]
    assert [p.sniffed_on for p in pkts] == ["eth0", "veth1"] * 3
    assert [p.comments for p in pkts] == [[c.encode()] for *_, c, _ in sent]
    assert [p.direction for p in pkts] == [int(d) for *_, d in sent]
    assert pkts[0].time == Decimal(T0) / 10**9
    assert len(rdpcap(str(path))) == 6
    assert pkts[2][UDP].sport == 1002


def test_pcapng_round_trip_through_dpkt(tmp_path: Path) -> None:
    # dpkt's pcapng reader knows the first interface only: one interface here.
    path = tmp_path / "one.pcapng"
    with PcapngWriter(path) as w:
        dev = w.add_interface("eth0", tsresol_ns=False)
        for i in range(4):
            w.write(dev, T0 + i * 1_000_000, _frame(i), comment=f"#{i}")
    with path.open("rb") as f:
        got = list(dpkt.pcapng.Reader(f))
    assert [data for _, data in got] == [_frame(i) for i in range(4)]
    assert [round(ts * 1e6) for ts, _ in got] == [(T0 + i * 1_000_000) // 1000 for i in range(4)]


@pytest.mark.parametrize("nanosecond", [True, False])
def test_pcap_round_trip(tmp_path: Path, nanosecond: bool) -> None:
    path = tmp_path / "c.pcap"
    with PcapWriter(path, linktype=LinkType.ETHERNET, nanosecond=nanosecond) as w:
        for i in range(5):
            w.write(T0 + i, _frame(i))
        w.write(T0 + 5, _frame(5), orig_len=9000)
    unit = 1 if nanosecond else 1000
    expect = [((T0 + i) // unit * unit, _frame(i)) for i in range(6)]
    got = list(read_packets(path))
    assert [(r.timestamp_ns, r.data) for r in got] == expect
    assert got[-1].orig_len == 9000
    with path.open("rb") as f:
        assert [d for _, d in dpkt.pcap.Reader(f)] == [d for _, d in expect]
    scapy_pkts = rdpcap(str(path))
    assert [bytes(p) for p in scapy_pkts] == [d for _, d in expect]
    assert [p.time for p in scapy_pkts] == [Decimal(ts) / 10**9 for ts, _ in expect]
    assert [p.wirelen for p in scapy_pkts][-1] == 9000


def test_writers_cut_packets_to_snaplen(tmp_path: Path) -> None:
    ng = tmp_path / "s.pcapng"
    with PcapngWriter(ng) as w:
        w.add_interface("eth0", snaplen=20)
        w.write(0, 1, bytes(100))
    classic = tmp_path / "s.pcap"
    with PcapWriter(classic, snaplen=20) as cw:
        cw.write(1, bytes(100))
    for path in (ng, classic):
        assert [(len(r.data), r.orig_len) for r in read_packets(path)] == [(20, 100)]


def test_writer_errors(tmp_path: Path) -> None:
    with PcapngWriter(tmp_path / "e.pcapng") as w:
        w.add_interface("eth0")
        with pytest.raises(PcapError, match=r"write capture .*\(packet 1\): no interface 1"):
            w.write(1, 0, b"x")
        with pytest.raises(PcapError, match="timestamp -1 ns does not fit 64 bits"):
            w.write(0, -1, b"x")
        with pytest.raises(PcapError, match="orig_len 1 < 2 captured bytes"):
            w.write(0, 0, b"xy", orig_len=1)
        with pytest.raises(PcapError, match="linktype 65536"):
            w.add_interface("bad", linktype=65536)
    with PcapWriter(tmp_path / "e.pcap") as cw, pytest.raises(PcapError, match="timestamp"):
        cw.write(1 << 70, b"x")


def test_writer_leaves_a_given_file_open_and_is_deterministic() -> None:
    outs = []
    for _ in range(2):
        buf = io.BytesIO()
        w = PcapngWriter(buf, comment="same calls, same bytes")
        w.add_interface("eth0", description="d")
        w.write(0, T0, _frame(1), comment="c", flags=1 << 24, direction=Direction.INBOUND)
        w.close()
        assert not buf.closed
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]
    (rec,) = read_packets(io.BytesIO(outs[0]))
    assert rec.flags == 1 << 24 | 1


def _run(tool: str, *args: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed")
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=True,
                          timeout=60, env={**os.environ, "TZ": "UTC"})
    return done.stdout


def test_tshark_reads_interfaces_comments_and_times(tmp_path: Path) -> None:
    path = tmp_path / "dev.pcapng"
    sent = _write_devices(path)
    out = _run("tshark", "-r", str(path), "-T", "fields", "-E", "separator=|",
               "-e", "frame.interface_name", "-e", "frame.comment",
               "-e", "frame.time_epoch", "-e", "udp.srcport")
    rows = [line.split("|") for line in out.splitlines()]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (("eth0", "veth1")[dev], comment, str(1000 + i))
        for i, (dev, _, _, comment, _) in enumerate(sent)]
    assert rows[0][2] == "1700000000.123456789"


def test_tcpdump_reads_both_formats(tmp_path: Path) -> None:
    ng = tmp_path / "dev.pcapng"
    _write_devices(ng)
    classic = tmp_path / "c.pcap"
    with PcapWriter(classic) as w:
        w.write(T0, _frame(7))
    lines = _run("tcpdump", "-nn", "-r", str(ng)).splitlines()
    assert len(lines) == 6
    assert "IP 10.0.0.1.1000 > 10.0.0.2.9999: UDP, length 0" in lines[0]
    (line,) = _run("tcpdump", "-nn", "--nano", "-r", str(classic)).splitlines()
    assert line.startswith("22:13:20.123456789 IP 10.0.0.1.1007 > 10.0.0.2.9999")


def test_interface_by_name_is_added_on_first_use() -> None:
    buf = io.BytesIO()
    with PcapngWriter(buf) as w:
        for dev in ["veth0", "eth0", "veth0", "eth0", "veth0"]:
            w.write(w.interface(dev, description=f"ns1/{dev}"), T0, dev.encode())
        assert w.interface("veth0") == 0
        with pytest.raises(PcapError, match="interface 'eth0' is link type 1, not 101"):
            w.interface("eth0", LinkType.RAW)
    recs = list(read_packets(io.BytesIO(buf.getvalue())))
    assert [(r.if_index, r.if_name, r.data) for r in recs] == [
        (0, "veth0", b"veth0"), (1, "eth0", b"eth0"), (0, "veth0", b"veth0"),
        (1, "eth0", b"eth0"), (0, "veth0", b"veth0")]
    assert recs[1].interface.description == "ns1/eth0"
