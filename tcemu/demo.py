"""``tcemu demo``: a real clang-built tc program on an emulated network.

Two network namespaces, ``client`` and ``server``, are joined by a veth pair.  A clsact
egress filter on the client's end runs ``dnat`` from ``scenarios/programs/nat.c`` (its
object ships with tcemu as package data): packets to the service address 10.0.0.100 are
rewritten to the backend 10.0.0.2 with ``bpf_skb_store_bytes``, and both checksums are
fixed with ``bpf_l3_csum_replace``/``bpf_l4_csum_replace``.  The demo prints the network
as ``tc`` built it, the program with its C source lines, each packet's path through the
datapath, the bytes before and after with their checksums verified by Scapy, and the
program's map.  Everything runs on the virtual clock and is the same on every machine.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tcemu.net import Net

__all__ = ["DEMO_OBJECT", "run_demo"]

DEMO_OBJECT = "nat.bpf.o"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"

SETUP = [
    ("ip", "netns add client"),
    ("ip", "netns add server"),
    ("ip", f"-n client link add veth0 address {CLIENT_MAC} type veth peer name veth1 "
           f"netns server address {SERVER_MAC}"),
    ("ip", "-n client link set veth0 up"),
    ("ip", "-n server link set veth1 up"),
    ("ip", "-n client addr add 10.0.0.1/24 dev veth0"),
    ("ip", "-n server addr add 10.0.0.2/24 dev veth1"),
    ("ip", f"-n client neigh add 10.0.0.2 lladdr {SERVER_MAC} dev veth0"),
    ("ip", f"-n server neigh add 10.0.0.1 lladdr {CLIENT_MAC} dev veth1"),
    ("tc", "-n client qdisc add dev veth0 clsact"),
    ("tc", "-n client filter add dev veth0 egress bpf da obj nat.bpf.o sec tc"),
]


def _packets() -> list[tuple[str, bytes]]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    eth = Ether(src=CLIENT_MAC, dst=SERVER_MAC)
    return [
        ("UDP to the service 10.0.0.100:53",
         bytes(eth / IP(src="10.0.0.1", dst="10.0.0.100", id=1)
               / UDP(sport=40000, dport=53) / b"query")),
        ("TCP SYN to the service 10.0.0.100:80",
         bytes(eth / IP(src="10.0.0.1", dst="10.0.0.100", id=2)
               / TCP(sport=40001, dport=80, flags="S", seq=1))),
        ("UDP to 10.0.0.9 (not the service)",
         bytes(eth / IP(src="10.0.0.1", dst="10.0.0.9", id=3) / UDP(sport=40002, dport=53))),
    ]


def _checksums_ok(frame: bytes) -> str:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    pkt = Ether(frame)
    ip = pkt[IP]
    fixed = Ether(frame)            # recompute both checksums and compare
    del fixed[IP].chksum
    l4 = TCP if TCP in pkt else UDP
    del fixed[l4].chksum
    fixed = Ether(bytes(fixed))
    ok = fixed[IP].chksum == ip.chksum and fixed[l4].chksum == pkt[l4].chksum
    return (f"dst {ip.dst}, IPv4 csum {ip.chksum:#06x}, {l4.__name__} csum "
            f"{pkt[l4].chksum:#06x}: {'both valid' if ok else 'INVALID'}")


def run_demo(out: TextIO) -> None:
    from tcemu.diagram import diagram, to_mermaid
    from tcemu.net import Net
    from tcemu.netcmd import ObjectCache, run_command

    data = resources.files("tcemu") / "demo_data"
    with resources.as_file(data) as folder:
        net = Net(seed=0, tier="jit")
        objects = ObjectCache(base_dir=Path(folder))
        out.write("tcemu demo: destination NAT by a clang-built tc program, on an emulated "
                  "network\n\n1. The network, built with the commands you would type:\n\n")
        for tool, command in SETUP:
            out.write(f"    {tool} {command}\n")
            run_command(net, command, objects, tool=tool)
    out.write("\n   As tcemu sees it (Mermaid; `tcemu diagram` draws scenario files):\n\n")
    for line in to_mermaid(diagram(net)).splitlines():
        out.write(f"    {line}\n")
    _listing(net, out)
    out.write("\n3. Three packets sent by the client, each with its path through the "
              "datapath.\n   Nothing listens on the server, so it answers as Linux does: "
              "ICMP port unreachable for UDP,\n   a reset for TCP.\n")
    for title, frame in _packets():
        net.trace.clear()
        net.send("veth0", frame, netns="client")
        out.write(f"\n   {title}\n")
        for event in net.trace:
            verdict = f" => {_verdict(event.verdict)}" if event.verdict is not None else ""
            out.write(f"     {event.stage:<8} {event.netns}/{event.dev:<6} "
                      f"{event.detail}{verdict}\n")
        received = [c for c in net.capture("veth1", netns="server")
                    if c.direction == "in"][-1]        # not the server's ICMP answer
        out.write(f"     sent:     {_checksums_ok(frame)}\n")
        out.write(f"     received: {_checksums_ok(received.data)}\n")
    hits = net.maps["nat_hits"]
    out.write("\n4. The program's map nat_hits (protocol -> packets rewritten):\n\n")
    for key, value in sorted(hits.items()):
        out.write(f"    {int.from_bytes(key, 'little'):>3} -> "
                  f"{int.from_bytes(value, 'little')}\n")
    out.write("\nNext: `tcemu run scenarios/*.tcemu.yaml` (ten lessons), `tcemu replay`, "
              "`tcemu prog dump`; see README.md.\n")


def _verdict(value: int) -> str:
    from tcemu.trace import verdict_name

    return verdict_name(value)


def _listing(net: Net, out: TextIO) -> None:
    from tcemu.bpf.listing import format_listing
    from tcemu.bpf.verifier import verify

    coll = next(iter(net.collections.values()))
    program = coll.programs["dnat"]
    checked = verify(program)
    lines = format_listing(program.insns, origins=program.origins, btf=program.btf)
    summary = checked.log.strip().splitlines()[-1] if checked.log.strip() else "accepted"
    out.write(f"\n2. The program `dnat`: {len(program)} instructions, accepted by tcemu's "
              f"verifier ({summary}).\n   Its listing with the C source lines from BTF; the "
              "first lines:\n\n")
    for line in lines[:14]:
        out.write(f"    {line}\n")
    out.write(f"    ... ({len(lines) - 14} more lines: `tcemu prog dump`)\n")
