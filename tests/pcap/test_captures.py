"""pcaps/: the committed captures are what build.py makes, and what README.md says."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from tcemu.pcap import LinkType, open_capture, read_packets, to_ethernet

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"pcaps_{name}", PCAPS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build = _load("build")
workload = _load("workload")
NAMES = sorted(build.CAPTURES)


def _readme_counts() -> dict[str, int]:
    text = (PCAPS / "README.md").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| `([\w.]+)` \| [^|]+ \| (\d+) \|", text,
                                                 re.M)}


def test_every_capture_is_built_and_documented() -> None:
    on_disk = sorted(p.name for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert on_disk == NAMES
    assert sorted(_readme_counts()) == NAMES


def test_rebuild_gives_identical_bytes(tmp_path: Path) -> None:
    for path in build.build(tmp_path):
        assert path.read_bytes() == (PCAPS / path.name).read_bytes(), path.name
    assert build.main(["--check"]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_counts_match_the_readme_and_scapy(name: str) -> None:
    records = list(read_packets(PCAPS / name))
    assert len(records) == _readme_counts()[name]
    assert [bytes(p) for p in rdpcap(str(PCAPS / name))] == [r.data for r in records]
    assert all(r.orig_len == len(r.data) for r in records)
    times = [r.timestamp_ns for r in records]
    assert times == sorted(times)
    assert times[0] == build.T0 + build.STEP


def test_pcapng_comments_interfaces_and_directions() -> None:
    with open_capture(PCAPS / "vxlan.pcapng") as reader:
        records = list(reader)
        assert [i.name for i in reader.interfaces] == ["eth0", "vxlan100"]
    assert records[0].comment == "vni=100 inner=arp request"
    decap = [r for r in records if r.if_name == "vxlan100"]
    underlay = [Ether(r.data) for r in records if r.if_name == "eth0"]
    assert [bytes(p[Ether][1][Ether]) for p in underlay[:4]] == [r.data for r in decap]
    assert all(r.comment for r in records)
    mixed = list(read_packets(PCAPS / "mixed_flows.pcapng"))
    assert {r.direction.name for r in mixed} == {"INBOUND", "OUTBOUND"}
    assert mixed[0].comment == "tcp4 syn"


def test_cooked_and_raw_captures_map_to_ethernet() -> None:
    v1 = [to_ethernet(r) for r in read_packets(PCAPS / "linux_sll.pcap")]
    cooked = list(read_packets(PCAPS / "linktypes.pcapng"))
    assert [r.linktype for r in cooked] == [LinkType.LINUX_SLL2] * 4 + [LinkType.RAW] * 2
    assert [to_ethernet(r) for r in cooked[:4]] == v1
    frames = [Ether(f) for f in v1]
    assert [f.dst for f in frames] == ["02:00:00:00:00:01", "02:00:00:00:00:02",
                                       "ff:ff:ff:ff:ff:ff", "01:00:5e:01:02:03"]
    assert Ether(to_ethernet(cooked[5])).dst == "33:33:00:00:00:01"


def test_workload_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    a = workload.generate(tmp_path / "a.pcap", count=400)
    b = workload.generate(tmp_path / "b.pcap", count=400)
    assert a.read_bytes() == b.read_bytes()
    flows = workload.flows()
    assert len(flows) == len(set(flows)) == workload.FLOWS
    assert {len(f.key()) for f in flows} == {16}
    keys = {f.key() for f in flows}
    sizes = set()
    for rec in read_packets(a):
        sizes.add(len(rec.data))
        pkt = Ether(rec.data)
        l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
        key = (bytes(map(int, pkt[IP].src.split("."))) + bytes(map(int, pkt[IP].dst.split(".")))
               + l4.sport.to_bytes(2, "big") + l4.dport.to_bytes(2, "big")
               + bytes([pkt[IP].proto, 0, 0, 0]))
        assert key in keys
        fresh = Ether(rec.data)
        del fresh[IP].chksum
        del fresh[IP].payload.chksum
        assert bytes(fresh) == rec.data     # scapy recomputes the same checksums
    assert sizes == set(workload.FRAME_SIZES)


def test_workload_cache(tmp_path: Path) -> None:
    path = workload.workload_path(count=50, cache=tmp_path)
    assert path == tmp_path / "workload-50pkts-1024flows-seed6.pcap"
    stamp = path.stat().st_mtime_ns
    assert workload.workload_path(count=50, cache=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    assert len(list(read_packets(path))) == 50


def test_tshark_reads_every_capture_without_complaint() -> None:
    import os
    import shutil
    import subprocess

    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    counts = _readme_counts()
    for name in NAMES:
        done = subprocess.run(
            [tshark, "-r", str(PCAPS / name), "-o", "ip.check_checksum:TRUE",
             "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
             "-T", "fields", "-e", "frame.number", "-e", "_ws.malformed",
             "-e", "ip.checksum.status", "-e", "udp.checksum.status",
             "-e", "tcp.checksum.status"],
            capture_output=True, text=True, check=True, timeout=60,
            env={**os.environ, "TZ": "UTC"})
        rows = [line.split("\t") for line in done.stdout.splitlines()]
        assert len(rows) == counts[name], name
        assert all(row[1] == "" for row in rows), f"{name}: malformed packets"
        # Wireshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present (the zero
        # UDP checksum of VXLAN over IPv4); empty: no such header
        statuses = {s for row in rows for field in row[2:] for s in field.split(",")}
        assert statuses <= {"1", "3", ""}, name
        assert "1" in statuses or name == "arp.pcap", name
