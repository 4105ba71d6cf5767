"""``tc`` command lines → command objects (tables), and typed refusals."""

from __future__ import annotations

import ipaddress

import pytest

from tcemu.cmd import CommandError, UnsupportedCommandError, parse, parse_tc
from tcemu.cmd import model as m

INGRESS = 0xFFFF_FFF2
EGRESS = 0xFFFF_FFF3
CLSACT = m.ClsactQdisc()
DA_TC = m.BpfFilter(prog=m.ObjProg(path="prog.o", section="tc"), direct_action=True)
RET0 = m.BytecodeProg(insns=((6, 0, 0, 0),))
U32 = 0xFFFF_FFFF

QDISCS: list[tuple[str, m.Command]] = [
    ("tc qdisc add dev veth0 clsact",
     m.QdiscAdd(dev="veth0", parent=m.TC_H_INGRESS, handle=0xFFFF0000, qdisc=CLSACT)),
    ("tc q a dev veth0 clsact",
     m.QdiscAdd(dev="veth0", parent=m.TC_H_INGRESS, handle=0xFFFF0000, qdisc=CLSACT)),
    ("tc qdisc replace dev veth0 ingress",
     m.QdiscAdd(dev="veth0", parent=m.TC_H_INGRESS, handle=0xFFFF0000,
                qdisc=m.IngressQdisc(), mode="replace")),
    ("tc qdisc add dev veth0 handle ffff: ingress",
     m.QdiscAdd(dev="veth0", parent=m.TC_H_INGRESS, handle=0xFFFF0000,
                qdisc=m.IngressQdisc())),
    ("tc qdisc add dev eth0 root pfifo", m.QdiscAdd(dev="eth0", parent=U32,
                                                    qdisc=m.PfifoQdisc())),
    ("tc qdisc add dev eth0 root handle 1 pfifo limit 10k",
     m.QdiscAdd(dev="eth0", parent=U32, handle=0x10000, qdisc=m.PfifoQdisc(limit=10240))),
    ("tc qdisc change dev eth0 parent 1:1 handle 10: pfifo_fast",
     m.QdiscAdd(dev="eth0", parent=0x10001, handle=0x100000, qdisc=m.PfifoFastQdisc(),
                mode="change")),
    ("tc qdisc add dev eth0 root handle 1:zz prio",
     m.QdiscAdd(dev="eth0", parent=U32, handle=0x10000, qdisc=m.PrioQdisc())),
    ("tc qdisc add dev eth0 root prio bands 4 priomap 3 2 1 0",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.PrioQdisc(
         bands=4, priomap=(3, 2, 1, 0, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)))),
    ("tc qdisc ad dev veth0 root handle 1: htb default 10",
     m.QdiscAdd(dev="veth0", parent=U32, handle=0x10000, qdisc=m.HtbQdisc(default=0x10))),
    ("tc qdisc add dev veth0 root handle 1: htb r2q 5 def 1a",
     m.QdiscAdd(dev="veth0", parent=U32, handle=0x10000,
                qdisc=m.HtbQdisc(default=0x1A, r2q=5))),
    ("tc qdisc add dev eth0 root tbf rate 1mbit burst 10k latency 50ms",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.TbfQdisc(
         rate=125_000, burst=10_240, latency=50_000_000))),
    ("tc qdisc add dev eth0 root tbf rate 1mbit b 10k la 1ms p 2mbit minburst 1500",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.TbfQdisc(
         rate=125_000, burst=10_240, latency=1_000_000, peakrate=250_000, mtu=1500))),
    ("tc qdisc add dev eth0 root tbf rate 1mbit burst 10kb/8 limit 3000 peakrate 2mbit mtu 1600",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.TbfQdisc(
         rate=125_000, burst=10_240, limit=3000, peakrate=250_000, mtu=1600))),
    ("tc qdisc add dev eth0 root netem delay 10ms 1ms 25% loss 1% duplicate 2% "
     "reorder 25% 50% limit 100 rate 1mbit",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.NetemQdisc(
         limit=100, delay=10_000_000, jitter=1_000_000, delay_corr=1_073_741_824,
         loss=42_949_673, duplicate=85_899_346, reorder=1_073_741_824,
         reorder_corr=2_147_483_648, gap=1, rate=125_000))),
    ("tc qdisc add dev eth0 root netem loss random 0.5% 10 delay 1ms reorder 5% gap 3",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.NetemQdisc(
         loss=21_474_836, loss_corr=429_496_730, delay=1_000_000, reorder=214_748_365,
         gap=3))),
    ("tc qdisc add dev eth0 root netem delay 1us 3us",
     m.QdiscAdd(dev="eth0", parent=U32, qdisc=m.NetemQdisc(delay=960, jitter=2944))),
    ("tc qdisc del dev veth0 clsact",
     m.QdiscDel(dev="veth0", parent=m.TC_H_INGRESS, handle=0xFFFF0000, kind="clsact")),
    ("tc qdisc del dev veth0 root", m.QdiscDel(dev="veth0", parent=U32)),
    ("tc qdisc show dev veth0", m.TcShow(object="qdisc", dev="veth0")),
    ("tc -s qdisc ls", m.TcShow(object="qdisc", stats=True)),
    ("tc qdisc", m.TcShow(object="qdisc")),
    ("tc -n ns1 qdisc add dev veth0 clsact",
     m.QdiscAdd(ns="ns1", dev="veth0", parent=m.TC_H_INGRESS, handle=0xFFFF0000,
                qdisc=CLSACT)),
]

CLASSES: list[tuple[str, m.Command]] = [
    ("tc class add dev veth0 parent 1: classid 1:10 htb rate 1mbit ceil 2mbit burst 15k "
     "cburst 15k prio 1 quantum 1500",
     m.ClassAdd(dev="veth0", parent=0x10000, classid=0x10010, options=m.HtbClass(
         rate=125_000, ceil=250_000, burst=15_360, cburst=15_360, prio=1, quantum=1500))),
    ("tc class replace dev veth0 parent 1:1 classid 1:a htb rate 100",
     m.ClassAdd(dev="veth0", parent=0x10001, classid=0x1000A,
                options=m.HtbClass(rate=12), mode="replace")),
    ("tc class add dev veth0 parent 1: classid 1:5 htb rate 1mbit c 10k b 5k p 2 q 1500",
     m.ClassAdd(dev="veth0", parent=0x10000, classid=0x10005, options=m.HtbClass(
         rate=125_000, cburst=10_240, burst=5120, prio=2, quantum=1500))),
    ("tc class del dev veth0 classid 1:10", m.ClassDel(dev="veth0", classid=0x10010)),
    ("tc class show dev veth0", m.TcShow(object="class", dev="veth0")),
]

FILTERS: list[tuple[str, m.Command]] = [
    ("tc filter add dev veth0 ingress bpf da obj prog.o sec tc",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=DA_TC)),
    ("tc filter add dev veth0 ingress bpf obj prog.o section tc direct-action",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=DA_TC)),
    ("tc f a dev veth0 egress bpf object-file prog.o",
     m.FilterAdd(dev="veth0", parent=EGRESS, filter=m.BpfFilter(
         prog=m.ObjProg(path="prog.o", section="classifier")))),
    ("tc filter add dev veth0 ingress bpf run obj prog.o sec tc verbose da",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.BpfFilter(
         prog=m.ObjProg(path="prog.o", section="tc", verbose=True), direct_action=True))),
    ("tc filter replace dev veth0 parent ffff:fff2 protocol ip pref 10 handle 0x10 chain 2 "
     "bpf da pinned /sys/fs/bpf/p skip_sw",
     m.FilterAdd(dev="veth0", parent=INGRESS, protocol=0x0800, prio=10, handle=16, chain=2,
                 mode="replace", filter=m.BpfFilter(
                     prog=m.PinnedProg(path="/sys/fs/bpf/p"), direct_action=True,
                     skip_sw=True))),
    ("tc filter add dev veth0 ingress bpf da fd 3",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.BpfFilter(
         prog=m.PinnedProg(path="3"), direct_action=True))),
    ("tc filter add dev veth0 ingress prio 0x10 protocol 802.1Q handle 010 bpf "
     "bytecode '1,6 0 0 0' classid 1:1",
     m.FilterAdd(dev="veth0", parent=INGRESS, prio=16, protocol=0x8100, handle=8,
                 filter=m.BpfFilter(prog=RET0, classid=0x10001))),
    ("tc filter add dev veth0 root protocol 2048 bpf bc '2,6 0 0 1,6 0 0 0' flowid :5",
     m.FilterAdd(dev="veth0", parent=U32, protocol=0x0800, filter=m.BpfFilter(
         prog=m.BytecodeProg(insns=((6, 0, 0, 1), (6, 0, 0, 0))), classid=5))),
    ("tc filter add dev veth0 ingress bpf bytecode-file /tmp/x.bpf",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.BpfFilter(
         prog=m.BytecodeFileProg(path="/tmp/x.bpf")))),
    ("tc filter add dev veth0 ingress matchall action drop",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(
         actions=(m.GactAction(control=m.TC_ACT_SHOT),)))),
    ("tc filter add dev veth0 ingress matchall classid 1:2 skip_hw action ok action "
     "continue action reclassify action pipe action trap action shot action pass",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(
         classid=0x10002, skip_hw=True, actions=tuple(
             m.GactAction(control=c) for c in (
                 m.TC_ACT_OK, m.TC_ACT_UNSPEC, m.TC_ACT_RECLASSIFY, m.TC_ACT_PIPE,
                 m.TC_ACT_TRAP, m.TC_ACT_SHOT, m.TC_ACT_OK))))),
    ("tc filter add dev veth0 ingress matchall action goto chain 5 action jump 2 "
     "action gact reclassify",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.GactAction(control=m.TC_ACT_GOTO_CHAIN | 5),
         m.GactAction(control=m.TC_ACT_JUMP | 2),
         m.GactAction(control=m.TC_ACT_RECLASSIFY))))),
    ("tc filter add dev veth0 ingress bpf obj c.o sec cls action bpf obj a.o sec act ok",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.BpfFilter(
         prog=m.ObjProg(path="c.o", section="cls"),
         actions=(m.BpfAction(prog=m.ObjProg(path="a.o", section="act"),
                              control=m.TC_ACT_OK),)))),
    ("tc filter add dev veth0 ingress matchall action bpf obj a.o",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.BpfAction(prog=m.ObjProg(path="a.o", section="action")),)))),
    ("tc filter add dev veth0 ingress matchall action mirred egress redirect dev veth1",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.MirredAction(direction="egress", op="redirect", dev="veth1",
                        control=m.TC_ACT_STOLEN),)))),
    ("tc filter add dev veth0 ingress matchall action mirred ingress mirror dev veth1 "
     "action drop",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.MirredAction(direction="ingress", op="mirror", dev="veth1",
                        control=m.TC_ACT_PIPE),
         m.GactAction(control=m.TC_ACT_SHOT))))),
    ("tc filter add dev veth0 ingress matchall action mirred egress mirror dev veth1 pass",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.MirredAction(direction="egress", op="mirror", dev="veth1",
                        control=m.TC_ACT_OK),)))),
    ("tc filter add dev veth0 ingress matchall action vlan push id 5 protocol 802.1ad "
     "priority 3 pass action vlan pop action vlan modify id 7",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.VlanAction(op="push", id=5, protocol=0x88A8, priority=3, control=m.TC_ACT_OK),
         m.VlanAction(op="pop"), m.VlanAction(op="modify", id=7))))),
    ("tc filter add dev veth0 ingress matchall action tunnel_key set src_ip 10.0.0.1 "
     "dst_ip 10.0.0.2 id 42 dst_port 4789 tos 0x10 ttl 64 nocsum action tunnel_key unset",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.TunnelKeyAction(op="set", src=ipaddress.ip_address("10.0.0.1"),
                           dst=ipaddress.ip_address("10.0.0.2"), key_id=42, dst_port=4789,
                           tos=0x10, ttl=64, csum=False),
         m.TunnelKeyAction(op="unset"))))),
    ("tc filter add dev veth0 ingress matchall action skbedit mark 5/0xff priority 1:2 "
     "queue_mapping 3 ptype otherhost drop",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.SkbeditAction(mark=5, mask=0xFF, priority=0x10002, queue_mapping=3, ptype=3,
                         control=m.TC_ACT_SHOT),)))),
    ("tc filter add dev veth0 ingress matchall action skbedit ptype h action skbedit "
     "ptype m mark 0x10",
     m.FilterAdd(dev="veth0", parent=INGRESS, filter=m.MatchallFilter(actions=(
         m.SkbeditAction(ptype=0), m.SkbeditAction(ptype=2, mark=16))))),
    ("tc filter add dev veth0 ingress handle 0x10zz matchall skip_sw classid 1:1",
     m.FilterAdd(dev="veth0", parent=INGRESS, handle=16, filter=m.MatchallFilter(
         skip_sw=True, classid=0x10001))),
    ("tc filter add dev veth0 ingress handle -1 matchall action pass",
     m.FilterAdd(dev="veth0", parent=INGRESS, handle=0xFFFF_FFFF, filter=m.MatchallFilter(
         actions=(m.GactAction(control=m.TC_ACT_OK),)))),
    ("tc filter del dev veth0 ingress pref 5",
     m.FilterDel(dev="veth0", parent=INGRESS, prio=5)),
    ("tc filter del dev veth0 egress protocol ip pref 10 handle 0x10 bpf",
     m.FilterDel(dev="veth0", parent=EGRESS, protocol=0x0800, prio=10, handle=16,
                 kind="bpf")),
    ("tc filter del dev veth0", m.FilterDel(dev="veth0")),
    ("tc filter show dev veth0 ingress", m.TcShow(object="filter", dev="veth0",
                                                  parent=INGRESS)),
    ("tc -s filter show dev veth0 egress",
     m.TcShow(object="filter", dev="veth0", parent=EGRESS, stats=True)),
]

ALL = QDISCS + CLASSES + FILTERS


@pytest.mark.parametrize(("line", "expected"), ALL, ids=[c[0] for c in ALL])
def test_parse(line: str, expected: m.Command) -> None:
    assert parse(line) == expected


def test_tbf_limit_from_latency() -> None:
    tbf = m.TbfQdisc(rate=125_000, burst=10_240, latency=2_500_000)
    assert tbf.limit_bytes == 10_552
    assert m.TbfQdisc(rate=125_000, burst=10_240, latency=2_500_000, peakrate=250_000,
                      mtu=2000).limit_bytes == 2625
    assert m.TbfQdisc(rate=1, burst=1, limit=77).limit_bytes == 77


def test_leading_tc_is_optional() -> None:
    assert parse_tc("qdisc add dev veth0 clsact") == parse("tc qdisc add dev veth0 clsact")


ERRORS = [
    # What tc reports when the kernel refuses (extack text or errno string).
    ("tc qdisc add dev veth0 root fooq", "Error: Specified qdisc kind is unknown."),
    ("tc qdisc add dev veth0", "Error: Handle cannot be zero."),
    ("tc qdisc add root pfifo", "RTNETLINK answers: No such device"),
    ("tc qdisc add dev eth0 root prio bands 1", "RTNETLINK answers: Invalid argument"),

    ("tc filter add dev veth0 ingress bpf", "RTNETLINK answers: Invalid argument"),
    ("tc filter add dev veth0 ingress matchall action vlan push id 4095",
     "RTNETLINK answers: Numerical result out of range"),
    ("tc filter add dev veth0 ingress matchall action vlan modify id 5000",
     "RTNETLINK answers: Numerical result out of range"),
    ("tc filter add dev veth0 ingress matchall action mirred egress redirect action drop",
     "Error: act_mirred: Must specify device or block."),
    ("tc", "Usage: tc [ OPTIONS ] OBJECT { COMMAND | help }"),
    ("tc filter add dev veth0 ingress bpf da bytecode 'x'",
     "Unable to parse bpf command line"),
    ("tc filter add dev veth0 ingress bpf da obj x.o sec",
     'Command line is not complete. Try option "help"'),
]


@pytest.mark.parametrize(("line", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_refused(line: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(line)
    assert str(info.value) == message
    assert not isinstance(info.value, UnsupportedCommandError)


UNSUPPORTED = [
    "tc qdisc add dev eth0 root fq_codel", "tc filter add dev eth0 ingress u32 match ip",
    "tc filter add dev eth0 ingress matchall action police rate 1mbit burst 10k",
    "tc actions add action drop", "tc qdisc add dev eth0 root netem corrupt 1%",
    "tc qdisc add dev eth0 root netem loss state 1%", "tc qdisc add dev eth0 root netem ecn",
    "tc filter add dev eth0 ingress matchall action gact drop random determ ok 10",
    "tc filter add dev eth0 ingress matchall action drop index 5",
    "tc qdisc add dev eth0 root tbf rate 10% burst 10k latency 1ms",
    "tc class add dev eth0 parent 1: classid 1:1 htb rate 1mbit mtu 9000",
    "tc filter add dev eth0 ingress bpf obj x.o export /tmp/uds",
    "tc -b cmds.txt", "tc chain add dev eth0 ingress chain 1",
]


@pytest.mark.parametrize("line", UNSUPPORTED)
def test_unsupported_is_typed(line: str) -> None:
    with pytest.raises(UnsupportedCommandError, match="tcemu"):
        parse(line)


def test_error_carries_the_word_at_fault() -> None:
    with pytest.raises(CommandError) as info:
        parse("tc filter add dev veth0 ingress prio x bpf da obj x.o")
    assert info.value.tool == "tc"
    assert info.value.words[info.value.index or 0] == "x"


def test_paths_stay_strings_and_nothing_is_opened() -> None:
    cmd = parse("tc filter add dev veth0 ingress bpf da obj '/no such/dir/p.o' sec tc")
    assert isinstance(cmd, m.FilterAdd)
    assert isinstance(cmd.filter, m.BpfFilter)
    assert cmd.filter.prog == m.ObjProg(path="/no such/dir/p.o", section="tc")
