"""Differential tests against the real ``ip``/``tc`` and the running kernel.

Everything runs in a throwaway network namespace.  The canonical text ``render()``
writes is what a kernel backend will run, so each command here is parsed, rendered,
run with the real tool, and read back with ``ip -j``/``tc -j``: the values the kernel
holds must be the ones the command object carries.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tcemu.cmd import model as m
from tcemu.cmd import parse, render
from tcemu.cmd.values import ETH_P, get_classid, ll_proto
from tests.cmd import strategies as s
from tests.cmd.fixtures import RecordedError, recorded_errors
from tests.cmd.record_fixtures import record_one

pytestmark = pytest.mark.kernel


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, line: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        words = shlex.split(line)
        done = subprocess.run(["ip", "netns", "exec", self.name, *words],
                              capture_output=True, text=True, check=False, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"{line!r} failed: {done.stderr.strip()}")
        return done

    def json(self, line: str) -> Any:
        return json.loads(self.run(line).stdout or "[]")


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    if shutil.which("ip") is None or shutil.which("tc") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2")
    name = f"cmdk{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    ns = Netns(name)
    try:
        ns.run("ip link add veth0 type veth peer name veth1")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_rendered(ns: Netns, line: str) -> m.Command:
    """Parse ``line``, run its canonical rendering, return the command object."""
    cmd = parse(line)
    ns.run(render(cmd))
    return cmd


RECORDED = recorded_errors()


@pytest.mark.parametrize("case", RECORDED[::4], ids=[c.command for c in RECORDED[::4]])
def test_recorded_errors_are_still_what_the_tools_print(case: RecordedError) -> None:
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2")
    status, message = record_one(case.command, f"cmdr{os.getpid()}")
    assert (status != 0, message) == (True, case.message)


RATES = ["1mbit", "1.5mbit", "100", "1Kibit", "3kbps", "2MiBps", "1gbit", "12345bit",
         "1e6bit", "7KBps", "1tbit", "64bps"]


@pytest.mark.parametrize("rate", RATES)
def test_rates_read_as_tc_reads_them(netns: Netns, rate: str) -> None:
    cmd = run_rendered(netns, f"tc qdisc replace dev veth0 root handle 1: tbf rate {rate} "
                              "burst 1mb latency 1ms")
    assert isinstance(cmd, m.QdiscAdd)
    assert isinstance(cmd.qdisc, m.TbfQdisc)
    shown = netns.json("tc -j qdisc show dev veth0 root")[0]["options"]
    assert shown["rate"] == cmd.qdisc.rate


SIZES = ["10", "10k", "10kb", "1kbit", "1mbit", "1.5k", "3KB", "100b"]


@pytest.mark.parametrize("size", SIZES)
def test_sizes_read_as_tc_reads_them(netns: Netns, size: str) -> None:
    cmd = run_rendered(netns, f"tc qdisc replace dev veth0 root handle 2: pfifo limit {size}")
    assert isinstance(cmd, m.QdiscAdd)
    assert isinstance(cmd.qdisc, m.PfifoQdisc)
    shown = netns.json("tc -j qdisc show dev veth0 root")[0]
    assert shown["options"]["limit"] == cmd.qdisc.limit
    assert shown["handle"] == "2:"


TBF_LIMITS = [
    "rate 1mbit burst 10k latency 2.5ms", "rate 1mbit burst 10k latency 2.5ms peakrate 2mbit "
    "mtu 2000", "rate 12345bit burst 3000 latency 77ms", "rate 10gbit burst 1mb latency 1s",
    "rate 1mbit burst 10k limit 5000", "rate 3kbps burst 1500 latency 1.2345ms",
]


@pytest.mark.parametrize("spec", TBF_LIMITS)
def test_tbf_limit_is_what_tc_sends(netns: Netns, spec: str) -> None:
    cmd = run_rendered(netns, f"tc qdisc replace dev veth0 root handle 3: tbf {spec}")
    assert isinstance(cmd, m.QdiscAdd)
    assert isinstance(cmd.qdisc, m.TbfQdisc)
    shown = netns.json("tc -r -j qdisc show dev veth0 root")[0]["options"]
    assert shown["limit"] == cmd.qdisc.limit_bytes


def test_htb_default_is_hex(netns: Netns) -> None:
    cmd = run_rendered(netns, "tc qdisc replace dev veth0 root handle 1a: htb default 10 r2q 7")
    assert isinstance(cmd, m.QdiscAdd)
    assert isinstance(cmd.qdisc, m.HtbQdisc)
    shown = netns.json("tc -j qdisc show dev veth0 root")[0]
    assert shown["handle"] == "1a:"
    assert int(shown["options"]["default"], 16) == cmd.qdisc.default == 0x10
    assert shown["options"]["r2q"] == cmd.qdisc.r2q


FILTERS = [
    "tc filter add dev veth0 ingress protocol ip pref 5 handle 0x10 bpf bytecode '1,6 0 0 0'",
    "tc filter add dev veth0 ingress protocol 0x88a8 prio 0x20 handle 010 chain 3 bpf "
    "bytecode '1,6 0 0 0' classid 1:2",
    "tc filter add dev veth0 egress protocol 802.1q pref 7 handle 7 bpf "
    "bytecode '2,6 0 0 1,6 0 0 0' flowid :5",
    "tc filter add dev veth0 parent ffff:fff3 protocol 2048 pref 8 handle 1 bpf "
    "bytecode '1,6 0 0 0' classid ffff:1",
    "tc filter add dev veth0 egress protocol LLDP pref 9 handle 2 bpf bc '1,6 0 0 0' da",
]


@pytest.mark.parametrize("line", FILTERS)
def test_filters_as_the_kernel_holds_them(netns: Netns, line: str) -> None:
    netns.run("tc qdisc replace dev veth0 clsact")
    cmd = run_rendered(netns, line)
    assert isinstance(cmd, m.FilterAdd)
    assert isinstance(cmd.filter, m.BpfFilter)
    where = "ingress" if cmd.parent == 0xFFFF_FFF2 else "egress"
    shown = [f for f in netns.json(f"tc -j filter show dev veth0 {where}")
             if "options" in f and f["pref"] == cmd.prio]
    assert len(shown) == 1
    got = shown[0]
    assert ll_proto(got["protocol"]) == cmd.protocol
    assert int(got["options"]["handle"], 16) == cmd.handle
    assert got["chain"] == (cmd.chain or 0)
    flowid = got["options"].get("flowid")
    assert (get_classid(flowid) if flowid else None) == cmd.filter.classid
    assert got["options"].get("direct-action", False) == cmd.filter.direct_action
    insns = got["options"]["bytecode"]["insns"]
    assert isinstance(cmd.filter.prog, m.BytecodeProg)
    assert [(i["code"], i["jt"], i["jf"], i["k"]) for i in insns] == \
        list(cmd.filter.prog.insns)
    deleted = m.FilterDel(dev="veth0", parent=cmd.parent, protocol=cmd.protocol,
                          prio=cmd.prio, handle=cmd.handle, chain=cmd.chain, kind="bpf")
    netns.run(render(deleted))
    assert not [f for f in netns.json(f"tc -j filter show dev veth0 {where}")
                if f["pref"] == cmd.prio]


def _link(ns: Netns, name: str) -> Any:
    return ns.json(f"ip -j -d link show dev {name}")[0]


def test_veth_pair(netns: Netns) -> None:
    cmd = run_rendered(netns, "ip link add p1 address 2:0:0:0:0:7 mtu 1400 type veth "
                              "peer name p2 address 02:00:00:00:00:08 mtu 1300")
    assert isinstance(cmd, m.LinkAdd)
    assert isinstance(cmd.info, m.VethInfo)
    assert cmd.info.peer is not None
    p1, p2 = _link(netns, "p1"), _link(netns, "p2")
    assert (p1["address"], p1["mtu"]) == (cmd.address, cmd.mtu)
    assert (p2["address"], p2["mtu"]) == (cmd.info.peer.address, cmd.info.peer.mtu)
    assert p1["linkinfo"]["info_kind"] == "veth"
    run_rendered(netns, "ip link set p1 up mtu 1280 name p9")
    p9 = _link(netns, "p9")
    assert p9["mtu"] == 1280
    assert "UP" in p9["flags"]
    run_rendered(netns, "ip link del p9")


VXLANS = [
    "ip link add vxa type vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dstport 4789 ttl 64 "
    "tos 10 nolearning udpcsum",
    "ip link add vxb type vxlan external dstport 4789",
    "ip link add vxc type vxlan vni 0x10 dstport 0 noudpcsum learning",
]


@pytest.mark.parametrize("line", VXLANS)
def test_vxlan_as_the_kernel_builds_it(netns: Netns, line: str) -> None:
    cmd = run_rendered(netns, line)
    assert isinstance(cmd, m.LinkAdd)
    assert isinstance(cmd.info, m.VxlanInfo)
    info = cmd.info
    data = _link(netns, cmd.name)["linkinfo"]["info_data"]
    assert data.get("external", False) == info.external
    assert data["id"] == (info.vni or 0)
    assert data.get("remote") == (str(info.remote) if info.remote else None)
    assert data.get("local") == (str(info.local) if info.local else None)
    assert data["port"] == (info.dstport if info.dstport else 8472)
    assert data["ttl"] == (info.ttl or 0)
    if info.tos is not None:
        assert int(data["tos"], 16) == info.tos
    assert data["learning"] == (info.learning if info.learning is not None else
                                not info.external)
    if info.udpcsum is not None:
        assert data["udp_csum"] == info.udpcsum
    netns.run(f"ip link del {cmd.name}")


def test_addresses_routes_neighbours(netns: Netns) -> None:
    netns.run("ip link set veth0 up")
    netns.run("ip link set veth1 up")
    addr = run_rendered(netns, "ip a a 10.9.0.1/24 dev veth0")
    assert isinstance(addr, m.AddrAdd)
    info = netns.json("ip -j addr show dev veth0")[0]["addr_info"]
    assert {(a["local"], a["prefixlen"]) for a in info} >= {("10.9.0.1", 24)}
    route = run_rendered(netns, "ip r a 10.10.0.0/16 via 10.9.0.254 dev veth0 src 10.9.0.1 "
                                "realm 2/3")
    assert isinstance(route, m.RouteAdd)
    got = next(r for r in netns.json("ip -j route show dev veth0")
           if r["dst"] == str(route.dst))
    assert ipaddress.ip_address(got["gateway"]) == route.via
    assert ipaddress.ip_address(got["prefsrc"]) == route.src
    assert route.realm is not None
    assert (int(got["flow"]["from"]), int(got["flow"]["to"])) == \
        (route.realm >> 16, route.realm & 0xFFFF)
    neigh = run_rendered(netns, "ip n a 10.9.0.5 lla 2:0:0:0:0:9 dev veth0 nud reachable")
    assert isinstance(neigh, m.NeighAdd)
    got = next(n for n in netns.json("ip -j neigh show dev veth0") if n["dst"] == "10.9.0.5")
    assert got["lladdr"] == neigh.lladdr
    assert got["state"] == ["REACHABLE"]


# Pasted lines (abbreviations, odd spellings) against their canonical rendering: the
# original runs in one namespace, render(parse(line)) in another, and the kernel state
# that results must be the same.  (setup, line, show command)
SAME_STATE = [
    ("", "ip l a vv0 addr 2:0:0:0:0:5 mtu 1400 type veth peer vv1 address 2:0:0:0:0:6",
     "ip -j -d link show dev vv1"),
    ("", "ip link add vx0 type vxlan i 42 r 10.0.0.2 lo 10.0.0.1 dst 4789 t 9 tos 0x10 no",
     "ip -j -d link show dev vx0"),
    ("", "ip link add vx1 type vxlan ext dstport 4789 udpcsum",
     "ip -j -d link show dev vx1"),
    ("", "ip link add vx2 type vxlan id 0x10 dstport 0 noudpcsum",
     "ip -j -d link show dev vx2"),
    ("ip link set veth0 up", "ip a a 10.8.1.2/255.255.0.0 dev veth0", "ip -j addr show dev veth0"),
    ("ip link set veth0 up", "ip -6 a a fd00::1/64 dev veth0", "ip -j -6 addr show"),
    ("ip link set veth0 up\nip addr add 10.8.0.1/16 dev veth0",
     "ip r a 10.9/16 via 10.8.0.254 src 10.8.0.1 rea 65537", "ip -j route show"),
    ("ip link set veth0 up\nip addr add 10.8.0.1/16 dev veth0",
     "ip route add default via 10.8.0.254", "ip -j route show"),
    ("", "ip n a 10.8.0.9 l 0:1:2:3:4:5 dev veth0 nud noarp", "ip -j neigh show dev veth0"),
    ("", "ip link set dev veth0 address 2:0:0:0:0:1 mtu 9000 name vv9",
     "ip -j link show dev vv9"),
    ("", "tc q a dev veth0 root handle 1 htb def 1a r2q 7", "tc -j qdisc show dev veth0"),
    ("tc qdisc add dev veth0 root handle 1: htb",
     "tc class add dev veth0 parent 1: classid 1:a htb rate 1.5mbit ceil 2Mbit b 10k c 20k "
     "p 3 quantum 3000", "tc class show dev veth0"),
    ("", "tc qdisc add dev veth0 root tbf rate 1mbit b 10k la 2.5ms p 2mbit mtu 2000",
     "tc -j qdisc show dev veth0"),
    ("", "tc qdisc add dev veth0 root tbf rate 12345bit burst 1mbit limit 3k",
     "tc -j qdisc show dev veth0"),
    ("", "tc qdisc add dev veth0 root handle 5: pfifo limit 1.5k", "tc -j qdisc show dev veth0"),
    ("", "tc qdisc add dev veth0 root pfifo_fast", "tc -j qdisc show dev veth0"),
    ("", "tc qdisc add dev veth0 ingress", "tc -j qdisc show dev veth0"),
    ("tc qdisc add dev veth0 clsact",
     "tc f a dev veth0 ingress prot 802.1Q pref 0x10 handle 010 chain 2 bpf bc '1,6 0 0 7' "
     "flowid 1:3 da", "tc -j filter show dev veth0 ingress"),
    ("tc qdisc add dev veth0 clsact",
     "tc filter replace dev veth0 parent ffff:fff3 protocol arp pref 3 bpf run bytecode "
     "'2,40 0 0 12,6 0 0 65535' classid :1 skip_hw", "tc -j filter show dev veth0 egress"),
]


def _fresh(name: str, setup: str) -> Netns:
    subprocess.run(["ip", "netns", "add", name], check=True)
    ns = Netns(name)
    ns.run("ip link add veth0 type veth peer name veth1")
    for line in filter(None, setup.split("\n")):
        ns.run(line)
    return ns


def _scrub(text: str, line: str) -> str:
    """Drop what differs between two namespaces by nature: ifindexes, the random MAC of a
    device created without ``address``, the global auto-handle counter of qdiscs."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    volatile = {"ifindex", "link_index", "link_netnsid", "broadcast"}
    if "addr" not in line:
        volatile |= {"address", "perm_address"}
    if "handle" not in line and line.startswith("tc q"):
        volatile.add("handle")

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if k not in volatile}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node
    return json.dumps(clean(data), sort_keys=True)


@pytest.mark.parametrize(("setup", "line", "show"), SAME_STATE, ids=[c[1] for c in SAME_STATE])
def test_pasted_line_and_its_rendering_make_the_same_kernel_state(
        setup: str, line: str, show: str) -> None:
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2")
    cmd = parse(line)
    canonical = render(cmd)
    assert parse(canonical) == cmd
    pid = os.getpid()
    original_ns, rendered_ns = _fresh(f"cmdo{pid}", setup), _fresh(f"cmdc{pid}", setup)
    try:
        original_ns.run(line)
        rendered_ns.run(canonical)
        want = _scrub(original_ns.run(show).stdout, line)
        got = _scrub(rendered_ns.run(show).stdout, line)
        assert got == want, f"{line!r} vs {canonical!r}"
    finally:
        subprocess.run(["ip", "netns", "del", original_ns.name], check=False)
        subprocess.run(["ip", "netns", "del", rendered_ns.name], check=False)


# ---------------------------------------------------------------------------------
# Generated commands: whatever render() writes must get past the real tools' own parsers.
# ip and tc exit 2 when the kernel refuses a request and 1 or 255 when they refuse the
# command line themselves, so 0 and 2 both mean "the text was understood".  Devices,
# namespaces and object files are pinned to ones that exist, because ip/tc resolve
# those names before they talk to the kernel.
# ---------------------------------------------------------------------------------

def _understood(ns: Netns, text: str) -> None:
    done = ns.run(text, check=False)
    assert done.returncode in (0, 2), f"{text!r}: {done.stderr.strip()}"


def _actions_on_real_devices(acts: tuple[m.Action, ...]) -> tuple[m.Action, ...]:
    out: list[m.Action] = []
    for act in acts:
        fixed = act
        if isinstance(act, m.MirredAction):
            fixed = dataclasses.replace(act, dev="veth1")
        if isinstance(act, m.BpfAction) and not isinstance(act.prog, m.BytecodeProg):
            fixed = dataclasses.replace(act, prog=m.BytecodeProg(insns=((6, 0, 0, 0),)))
        out.append(fixed)
    return tuple(out)


def _on_real_devices(cmd: m.FilterAdd) -> m.FilterAdd:
    flt = cmd.filter
    if isinstance(flt, m.BpfFilter) and not isinstance(flt.prog, m.BytecodeProg):
        flt = dataclasses.replace(flt, prog=m.BytecodeProg(insns=((6, 0, 0, 0),)))
    flt = dataclasses.replace(flt, actions=_actions_on_real_devices(flt.actions))
    return dataclasses.replace(cmd, ns=None, dev="veth0", filter=flt)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(s.filter_adds)
def test_generated_filters_pass_tc(netns: Netns, cmd: m.FilterAdd) -> None:
    netns.run("tc qdisc replace dev veth0 clsact")
    _understood(netns, render(_on_real_devices(cmd)))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(s.qdisc_adds())
def test_generated_qdiscs_pass_tc(netns: Netns, cmd: m.QdiscAdd) -> None:
    _understood(netns, render(dataclasses.replace(cmd, ns=None, dev="veth1")))


def _link_on_real_devices(cmd: m.LinkAdd) -> m.LinkAdd:
    info = cmd.info
    if isinstance(info, m.VxlanInfo) and info.dev is not None:
        info = dataclasses.replace(info, dev="veth0")
    if isinstance(info, m.VethInfo) and info.peer is not None:
        info = dataclasses.replace(info, peer=dataclasses.replace(info.peer, netns=None))
    return dataclasses.replace(cmd, ns=None, netns=None, info=info,
                               link="veth0" if cmd.link is not None else None)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(s.link_adds())
def test_generated_links_pass_ip(netns: Netns, cmd: m.LinkAdd) -> None:
    _understood(netns, render(_link_on_real_devices(cmd)))


@pytest.mark.parametrize("name", sorted(ETH_P))
def test_protocol_names_are_tcs(netns: Netns, name: str) -> None:
    """Every EtherType name tcemu prints is one tc reads, and tc shows the number back
    under the same name (iproute2's ll_proto table: ``bpq``, ``tr_802_2``, ...).  Found
    by the hypothesis test above, which rendered 0x0011 as ``tr_802.2``."""
    # a fresh clsact: ``replace`` would keep filters an earlier test left on it
    netns.run("tc qdisc del dev veth0 clsact", check=False)
    netns.run("tc qdisc add dev veth0 clsact")
    try:
        netns.run(f"tc filter add dev veth0 ingress protocol {name} prio 7 u32")
        shown = netns.json("tc -j filter show dev veth0 ingress")
        assert {f.get("protocol") for f in shown} == {name}
    finally:
        netns.run("tc qdisc del dev veth0 clsact", check=False)
