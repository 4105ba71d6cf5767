"""The replay benchmark's workload: 100,000 IPv4 TCP/UDP packets over 1,024 5-tuples.

    python pcaps/workload.py                  # build (or find) the cached file, print its path
    python pcaps/workload.py --count 1000 --out small.pcap

Too large to commit (about 37 MB), so it is generated on demand into pcaps/.cache/
(ignored by git) under a name that holds every parameter; a seeded ``random.Random``
makes the bytes identical on every machine.  Flow popularity is Zipf-like (flow k is
picked with weight 1/k) and frame sizes follow the simple IMIX (60, 590 and 1514 bytes
in the ratio 7:4:1).  Headers are built with ``struct`` rather than scapy (100,000
scapy packets take minutes); tests/pcap checks a sample of them against scapy.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from tcemu.csum import fold, partial
from tcemu.pcap import PcapWriter

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
COUNT = 100_000
FLOWS = 1024
SEED = 6
T0 = 1_700_000_000_000_000_000
FRAME_SIZES = (60, 590, 1514)
SIZE_WEIGHTS = (7, 4, 1)
DPORTS = (80, 443, 53, 22, 8080, 123, 5201, 9000)
MAC_SRC = bytes.fromhex("020000000a01")
MAC_DST = bytes.fromhex("020000000b01")
ETH_IPV4 = MAC_DST + MAC_SRC + b"\x08\x00"
IPPROTO_TCP, IPPROTO_UDP = 6, 17


@dataclass(frozen=True)
class Flow:
    """One 5-tuple (addresses as 4 bytes, ports as ints)."""

    proto: int
    saddr: bytes
    daddr: bytes
    sport: int
    dport: int

    def key(self) -> bytes:
        """The 5-tuple as a BPF map key would hold it: saddr, daddr, sport, dport (network
        order), proto, 3 bytes of padding (16 bytes)."""
        return self.saddr + self.daddr + struct.pack("!HHB3x", self.sport, self.dport,
                                                     self.proto)


def flows(*, count: int = FLOWS, seed: int = SEED) -> list[Flow]:
    """The workload's flows, most popular first (distinct 5-tuples)."""
    rng = random.Random(seed)
    seen: set[Flow] = set()
    out: list[Flow] = []
    while len(out) < count:
        flow = Flow(proto=rng.choice((IPPROTO_TCP, IPPROTO_UDP)),
                    saddr=bytes((10, rng.randrange(256), rng.randrange(256),
                                 rng.randrange(1, 255))),
                    daddr=bytes((172, 16, rng.randrange(16), rng.randrange(1, 255))),
                    sport=rng.randrange(32768, 61000), dport=rng.choice(DPORTS))
        if flow not in seen:
            seen.add(flow)
            out.append(flow)
    return out


def _csum(data: bytes, seed: int = 0) -> bytes:
    """The Internet checksum of data as the two bytes stored in the header."""
    return struct.pack("<H", fold(partial(data, seed)))


def frame(flow: Flow, size: int, ip_id: int, seq: int) -> bytes:
    """An Ethernet/IPv4/TCP|UDP frame of ``size`` bytes with correct checksums."""
    l4hdr_len = 20 if flow.proto == IPPROTO_TCP else 8
    tot_len = size - 14
    payload = bytes(tot_len - 20 - l4hdr_len)
    l4_len = l4hdr_len + len(payload)
    pseudo = flow.saddr + flow.daddr + struct.pack("!BBH", 0, flow.proto, l4_len)
    if flow.proto == IPPROTO_TCP:
        l4 = struct.pack("!HHIIBBHHH", flow.sport, flow.dport, seq, 1, 5 << 4, 0x18, 502, 0, 0)
        l4 = l4[:16] + _csum(pseudo + l4 + payload) + l4[18:]
    else:
        l4 = struct.pack("!HHHH", flow.sport, flow.dport, l4_len, 0)
        check = _csum(pseudo + l4 + payload)
        l4 = l4[:6] + (check if check != b"\0\0" else b"\xff\xff")
    ip = struct.pack("!BBHHHBBH", 0x45, 0, tot_len, ip_id, 0x4000, 64, flow.proto, 0)
    ip += flow.saddr + flow.daddr
    ip = ip[:10] + _csum(ip) + ip[12:]
    return ETH_IPV4 + ip + l4 + payload


def generate(path: Path, *, count: int = COUNT, seed: int = SEED,
             n_flows: int = FLOWS) -> Path:
    """Write the workload to ``path`` (classic pcap, nanosecond timestamps)."""
    rng = random.Random(seed + 1)
    fl = flows(count=n_flows, seed=seed)
    weights = [1 / (k + 1) for k in range(len(fl))]
    picks = rng.choices(range(len(fl)), weights=weights, k=count)
    sizes = rng.choices(FRAME_SIZES, weights=SIZE_WEIGHTS, k=count)
    ip_ids = [0] * len(fl)
    seqs = [1000] * len(fl)
    now = T0
    with PcapWriter(path) as w:
        for k, size in zip(picks, sizes, strict=True):
            now += rng.randrange(1_000, 20_000)
            data = frame(fl[k], size, ip_ids[k], seqs[k])
            ip_ids[k] = (ip_ids[k] + 1) & 0xFFFF
            seqs[k] = (seqs[k] + size - 54) & 0xFFFFFFFF
            w.write(now, data)
    return path


def workload_path(*, count: int = COUNT, seed: int = SEED, n_flows: int = FLOWS,
                  cache: Path = CACHE) -> Path:
    """The cached workload file, generated first if it is not there yet."""
    path = cache / f"workload-{count}pkts-{n_flows}flows-seed{seed}.pcap"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        generate(tmp, count=count, seed=seed, n_flows=n_flows)
        os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--flows", type=int, default=FLOWS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, help="write here instead of the cache")
    args = parser.parse_args(argv)
    if args.out:
        print(generate(args.out, count=args.count, seed=args.seed, n_flows=args.flows))
    else:
        print(workload_path(count=args.count, seed=args.seed, n_flows=args.flows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
