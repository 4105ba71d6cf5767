"""Filter chains and cls_bpf (kernel-semantics.md 2.2, 2.4, 2.5; gotchas 6-11)."""

from __future__ import annotations

import pytest

from tcemu.act import Gact, tcf_action_exec
from tcemu.cls import MAX_RECLASSIFY_LOOP, BpfFilter
from tcemu.net import Net
from tcemu.netdev import NetDev
from tcemu.qdisc.base import TcfResult
from tcemu.qdisc.clsact import Clsact
from tests.datapath.topo import (
    CB,
    TC_CLASSID,
    TC_INDEX,
    cb,
    prog,
    ret,
    store_cb,
    udp_frame,
    veth_net,
)


def _marker(value: int, verdict: int) -> list[str]:
    """Append ``value`` to a cb[0] trail (cb[0] = cb[0] * 16 + value), return verdict."""
    return [f"r2 = *(u32 *)(r6 +{CB})", "r2 <<= 4", f"r2 += {value}",
            f"*(u32 *)(r6 +{CB}) = r2", f"r0 = {verdict}", "exit"]


def _ingress_net() -> tuple[Net, NetDev]:
    net = veth_net()
    net.qdisc_add("b/veth1", "clsact")
    return net, net.dev("b/veth1")


def _trail(dev: NetDev) -> int:
    return cb(dev.delivered[-1].cb, 0)


def test_prio_order_and_newest_first() -> None:
    # 2.2: ascending prio; within one prio the most recently added filter runs first.
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", prio=2, prog=prog(*_marker(3, -1)))
    net.filter_add("b/veth1", "ingress", prio=1, prog=prog(*_marker(1, -1)))
    net.filter_add("b/veth1", "ingress", prio=1, prog=prog(*_marker(2, -1)))
    net.send("a/veth0", udp_frame())
    assert _trail(dev) == 0x213


def test_ok_ends_classification() -> None:
    # gotcha 10: TC_ACT_OK stops; later filters do not run.
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", prio=2, prog=prog(*_marker(2, -1)))
    net.filter_add("b/veth1", "ingress", prio=1, prog=prog(*_marker(1, 0)))
    net.send("a/veth0", udp_frame())
    assert _trail(dev) == 0x1


@pytest.mark.parametrize(("verdict", "runs_next"), [(1, True), (3, True), (5, True),
                                                     (6, True), (42, True), (0x20000001, True),
                                                     (-1, True), (0, False), (4, False)])
def test_da_verdict_mapping(verdict: int, runs_next: bool) -> None:
    # 2.2 step 3 / gotcha 7: only OK, SHOT, STOLEN, TRAP, REDIRECT, UNSPEC pass.
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", prio=2, prog=prog(*_marker(2, 0)))
    net.filter_add("b/veth1", "ingress", prio=1, prog=prog(*_marker(1, verdict)))
    net.send("a/veth0", udp_frame())
    if verdict == 4:
        assert dev.delivered == []                   # STOLEN: consumed silently
    else:
        assert _trail(dev) == (0x12 if runs_next else 0x1)


def test_shot_drops() -> None:
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", prog=ret(2))
    net.send("a/veth0", udp_frame())
    assert dev.delivered == []
    assert net.capture("b/veth1")[0].verdict == 2


def test_tc_index_overwritten_on_ok() -> None:
    # 2.5: OK sets tc_index = TC_H_MIN(TC_H_MAJ(classid) | tc_classid); tc_classid is reset
    # to the filter's classid before each program; tc_index written with UNSPEC survives.
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", classid="1:5",
                   prog=prog(*store_cb(1, TC_CLASSID), "r2 = 0x77",
                             f"*(u32 *)(r6 +{TC_INDEX}) = r2", "r0 = 0", "exit"))
    net.send("a/veth0", udp_frame())
    skb = dev.delivered[-1]
    assert (cb(skb.cb, 1), skb.tc_index) == (5, 5)
    net2, dev2 = _ingress_net()
    net2.filter_add("b/veth1", "ingress",
                    prog=prog("r2 = 0x1234", f"*(u32 *)(r6 +{TC_CLASSID}) = r2", "r0 = 0",
                              "exit"))
    net2.send("a/veth0", udp_frame())
    assert dev2.delivered[-1].tc_index == 0x1234
    net3, dev3 = _ingress_net()
    net3.filter_add("b/veth1", "ingress",
                    prog=prog("r2 = 0x77", f"*(u32 *)(r6 +{TC_INDEX}) = r2", "r0 = -1", "exit"))
    net3.send("a/veth0", udp_frame())
    assert dev3.delivered[-1].tc_index == 0x77


def test_protocol_match_and_hw_tag() -> None:
    # gotcha 6: "protocol ip" does not match a frame with a hw-accel tag.
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", protocol="ip", prog=prog(*_marker(1, -1)))
    tagged = udp_frame()[:12] + bytes.fromhex("81000064") + udp_frame()[12:]
    net.send("a/veth0", tagged)
    assert dev.delivered == []            # untagged to VID 100 at RX, no vlan dev: OTHERHOST
    assert net.trace.events[-1].detail.startswith("PACKET_OTHERHOST")
    assert not any(e.stage == "prog" for e in net.trace.events)
    net.send("a/veth0", udp_frame())
    assert _trail(dev) == 1


def test_classic_mode_classid() -> None:
    # gotcha 11: classic mode R0 is a class id; 2 is class 0:2, not a drop; 0 is no match.
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", prio=2, da=False, classid="1:9", prog=ret(-1))
    net.filter_add("b/veth1", "ingress", prio=1, da=False, prog=ret(0))
    net.send("a/veth0", udp_frame())
    assert dev.delivered[-1].tc_index == 9
    net.filter_add("b/veth1", "ingress", prio=1, da=False, prog=ret(2))
    net.send("a/veth0", udp_frame())
    assert dev.delivered[-1].tc_index == 2


def test_classic_mode_actions() -> None:
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", da=False, prog=ret(1),
                   actions=[Gact(action=2)])
    net.send("a/veth0", udp_frame())
    assert dev.delivered == []


def test_reclassify_limit() -> None:
    # 2.2: RECLASSIFY restarts; the 17th is a drop.
    net, dev = _ingress_net()
    counter = prog(*_count(), "r0 = 1", "exit")
    net.filter_add("b/veth1", "ingress", da=False, prog=counter,
                   actions=[Gact(action=1)])
    net.send("a/veth0", udp_frame())
    assert dev.delivered == []
    runs = [e for e in net.trace.events if e.stage == "prog"]
    assert len(runs) == MAX_RECLASSIFY_LOOP + 1


def _count() -> list[str]:
    return [f"r2 = *(u32 *)(r6 +{CB})", "r2 += 1", f"*(u32 *)(r6 +{CB}) = r2"]


def test_goto_chain() -> None:
    net, dev = _ingress_net()
    net.filter_add("b/veth1", "ingress", chain=3, prog=prog(*_marker(3, 0)))
    net.filter_add("b/veth1", "ingress", prio=5, prog=prog(*_marker(9, 0)))
    net.filter_add("b/veth1", "ingress", prio=1, kind="matchall",
                   actions=[Gact(action=(2 << 28) | 3)])
    net.send("a/veth0", udp_frame())
    assert _trail(dev) == 3


def test_auto_prio() -> None:
    # tcf_auto_prio: 49152 first, then one less (and it runs first).
    net, _ = _ingress_net()
    f1 = net.filter_add("b/veth1", "ingress", prog=ret(-1))
    f2 = net.filter_add("b/veth1", "ingress", prog=ret(-1))
    clsact = net.dev("b/veth1").clsact
    assert isinstance(clsact, Clsact)
    block = clsact.ingress
    prios = [(tp.prio, f) for _, tp, f in block.filters()]
    assert prios == [(49151, f2), (49152, f1)]
    assert isinstance(f1, BpfFilter)
    assert f1.handle == 1


def test_action_list_semantics() -> None:
    # 2.3 tcf_action_exec: PIPE continues, REPEAT max 32 then OK, all PIPE -> PIPE,
    # JUMP n restarts skipping n actions.
    from tcemu.skb import SkBuff

    skb, res = SkBuff(bytearray(20)), TcfResult()
    ex = Net()
    assert tcf_action_exec(ex, [Gact(3), Gact(3)], skb, res) == 3
    assert tcf_action_exec(ex, [Gact(3), Gact(2)], skb, res) == 2
    assert tcf_action_exec(ex, [Gact(6)], skb, res) == 0
    jump2 = [Gact((1 << 28) | 2), Gact(2), Gact(4)]
    assert tcf_action_exec(ex, jump2, skb, res) == 4
    assert tcf_action_exec(ex, [Gact((1 << 28) | 5), Gact(2)], skb, res) == 0
    assert tcf_action_exec(ex, [], skb, res) == 0


def test_auto_prio_after_explicit_prio() -> None:
    # Checked with tc on the test kernel: no prio, no prio, pref 5 (twice), no prio gives
    # 49152, 49151, 5 (handles 1 then 2, newest first), 49150.
    net, _ = _ingress_net()
    for prio in (None, None, 5, 5, None):
        net.filter_add("b/veth1", "ingress", prio=prio, prog=ret(-1))
    shown = [(tp.prio, f.handle) for _, tp, f in net.filters("b/veth1", "ingress")]
    assert shown == [(5, 2), (5, 1), (49150, 1), (49151, 1), (49152, 1)]
