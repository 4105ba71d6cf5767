"""Redirects and mirred (kernel-semantics.md 2.5, 3.4, 4.4; gotchas 15, 16, 30)."""

from __future__ import annotations

import pytest

from tcemu.act import Mirred
from tcemu.net import Net
from tests.datapath.topo import (
    INGRESS_IFINDEX,
    MAC_B,
    MARK,
    PRIORITY,
    cb,
    prog,
    ret,
    store_cb,
    udp_frame,
    veth_net,
)

MAC_C, MAC_D = bytes.fromhex("020000000003"), bytes.fromhex("020000000004")


def _three() -> Net:
    """a/veth0 <-> b/veth1, b/veth2 <-> c/veth3; clsact on b/veth1, b/veth2, c/veth3."""
    net = veth_net()
    net.netns("c")
    net.link_add("veth2", "veth", netns="b", peer="veth3", peer_netns="c", address=MAC_C,
                 peer_address=MAC_D)
    net.link_set("b/veth2", up=True)
    net.link_set("c/veth3", up=True)
    for dev in ("b/veth1", "b/veth2", "c/veth3"):
        net.qdisc_add(dev, "clsact")
    return net


def _redirect(ifindex: int, flags: int = 0, helper: str = "bpf_redirect") -> list[str]:
    return [f"r1 = {ifindex}", f"r2 = {flags}", f"call {helper}", "exit"]


def test_redirect_egress_from_ingress() -> None:
    # 4.4: the target's tc egress runs; ingress_ifindex keeps the old RX device (3.4).
    net = _three()
    veth2 = net.dev("b/veth2")
    net.filter_add("b/veth1", "ingress", prog=prog(*_redirect(veth2.ifindex)))
    net.filter_add("b/veth2", "egress", prog=prog(*store_cb(0, INGRESS_IFINDEX), "r0 = -1",
                                                  "exit"))
    frame = udp_frame(dst=MAC_D)
    net.send("a/veth0", frame, mark=9)
    out, = net.capture("b/veth2")
    assert (out.direction, out.data) == ("out", frame)
    skb, = net.dev("c/veth3").delivered
    assert cb(skb.cb, 0) == net.dev("b/veth1").ifindex
    assert skb.mark == 0          # veth into netns c scrubs the mark


def test_redirect_to_ingress_recomputes_pkt_type() -> None:
    # gotcha 16: redirect to ingress runs eth_type_trans on the target: OTHERHOST, dropped.
    net = _three()
    veth2 = net.dev("b/veth2")
    net.filter_add("b/veth1", "ingress", prog=prog(*_redirect(veth2.ifindex, 1)))
    net.send("a/veth0", udp_frame())
    inn, = net.capture("b/veth2")
    assert inn.direction == "in"
    assert veth2.delivered == []
    net.send("a/veth0", udp_frame(dst=MAC_C))
    assert len(veth2.delivered) == 1


def test_redirect_peer() -> None:
    # 4.4: RX restarts on the peer at once: no TX on veth2, the peer's tc ingress runs,
    # the mark survives (no xnet scrub), priority too.
    net = _three()
    veth2 = net.dev("b/veth2")
    net.filter_add("b/veth1", "ingress",
                   prog=prog("r2 = 5", f"*(u32 *)(r6 +{MARK}) = r2",
                             *_redirect(veth2.ifindex, 0, "bpf_redirect_peer")))
    net.filter_add("c/veth3", "ingress", prog=prog(*store_cb(0, MARK), *store_cb(1, PRIORITY),
                                                   "r0 = -1", "exit"))
    net.send("a/veth0", udp_frame(dst=MAC_D))
    assert net.capture("b/veth2") == []
    skb, = net.dev("c/veth3").delivered
    assert (cb(skb.cb, 0), skb.ingress_ifindex) == (5, net.dev("c/veth3").ifindex)


def test_redirect_peer_at_egress_drops() -> None:
    net = _three()
    net.filter_add("b/veth2", "egress", prog=prog(*_redirect(net.dev("b/veth1").ifindex, 0,
                                                             "bpf_redirect_peer")))
    net.filter_add("b/veth1", "ingress", prog=prog(*_redirect(net.dev("b/veth2").ifindex)))
    net.send("a/veth0", udp_frame())
    assert net.capture("c/veth3") == []
    assert net.trace.events[-1].stage == "drop"


def test_redirect_without_target_and_bad_flags() -> None:
    # gotchas 15/30: returning 7 without bpf_redirect drops; bad flags return SHOT.
    net = _three()
    net.filter_add("b/veth1", "ingress", prog=ret(7))
    net.send("a/veth0", udp_frame())
    assert net.dev("b/veth1").delivered == []
    net2 = _three()
    net2.filter_add("b/veth1", "ingress", prog=prog(*_redirect(net2.dev("b/veth2").ifindex, 2)))
    net2.send("a/veth0", udp_frame())
    assert net2.capture("b/veth1")[0].verdict == 2
    net3 = _three()
    net3.filter_add("b/veth1", "ingress", prog=prog(*_redirect(99)))
    net3.send("a/veth0", udp_frame())
    assert "unknown ifindex 99" in net3.trace.events[-1].detail


def test_redirect_loop_hits_recursion_limit() -> None:
    net = _three()
    veth2 = net.dev("b/veth2")
    net.filter_add("b/veth2", "egress", prog=prog(*_redirect(veth2.ifindex)))
    net.filter_add("b/veth1", "ingress", prog=prog(*_redirect(veth2.ifindex)))
    net.send("a/veth0", udp_frame())
    egress_runs = [e for e in net.trace.events if e.stage == "tc" and e.dev == "veth2"]
    assert len(egress_runs) == 9
    assert net.capture("c/veth3") == []


def test_clone_redirect_sends_now_and_continues() -> None:
    net = _three()
    veth2 = net.dev("b/veth2")
    net.filter_add("b/veth1", "ingress",
                   prog=prog("r1 = r6", f"r2 = {veth2.ifindex}", "r3 = 0",
                             "call bpf_clone_redirect", "*(u32 *)(r6 +48) = r0",
                             "r0 = 0", "exit"))
    frame = udp_frame()
    net.send("a/veth0", frame)
    assert [c.data for c in net.capture("b/veth2")] == [frame]
    skb, = net.dev("b/veth1").delivered
    assert cb(skb.cb, 0) == 0
    clone = [e for e in net.trace.events if e.stage == "clone"]
    assert len(clone) == 1


def test_mirred_mirror_and_redirect() -> None:
    net = _three()
    net.filter_add("b/veth1", "ingress", kind="matchall",
                   actions=[Mirred.make("veth2", redirect=False)])
    net.send("a/veth0", udp_frame(dst=MAC_B))
    assert len(net.capture("b/veth2")) == 1
    assert len(net.dev("b/veth1").delivered) == 1      # mirror: the original goes on
    net2 = _three()
    net2.filter_add("b/veth1", "ingress", kind="matchall", actions=[Mirred.make("veth2")])
    net2.send("a/veth0", udp_frame(dst=MAC_D))
    assert net2.dev("b/veth1").delivered == []
    assert len(net2.dev("c/veth3").delivered) == 1


def test_mirred_ingress_redirect_skips_eth_type_trans() -> None:
    # mirred ingress: netif_receive_skb on the target without eth_type_trans, so pkt_type
    # stays HOST although the MAC is veth1's.
    net = _three()
    net.filter_add("b/veth1", "ingress", kind="matchall",
                   actions=[Mirred.make("veth2", ingress=True)])
    net.send("a/veth0", udp_frame(dst=MAC_B))
    assert len(net.dev("b/veth2").delivered) == 1
    assert net.capture("b/veth2")[0].direction == "in"


def test_mirred_missing_device_drops() -> None:
    net = _three()
    net.filter_add("b/veth1", "ingress", kind="matchall", actions=[Mirred.make("nope")])
    net.send("a/veth0", udp_frame())
    assert net.dev("b/veth1").delivered == []


@pytest.mark.parametrize("tier", ["interp", "jit"])
def test_clone_redirect_into_another_program_keeps_the_callers_state(tier: str) -> None:
    """bpf_clone_redirect runs veth2's egress program (another program: another VM, the
    same shared memory) inside the caller's run: afterwards the caller's stack, packet
    and context are its own again, also on the second packet, when both programs' runs
    are the inline ones."""
    net = _three()
    net.tier = tier  # type: ignore[assignment]
    veth2 = net.dev("b/veth2")
    net.filter_add("b/veth2", "egress", prog=prog(
        "r1 = 0x1111", "*(u64 *)(r10 -8) = r1", "r2 = *(u32 *)(r6 +76)",
        "r3 = *(u32 *)(r6 +80)", "r0 = 0", "exit", name="inner"))
    net.filter_add("b/veth1", "ingress", prog=prog(
        "r7 = 0x77", "*(u64 *)(r10 -8) = r7",
        "r1 = r6", f"r2 = {veth2.ifindex}", "r3 = 0", "call bpf_clone_redirect",
        "r1 = *(u64 *)(r10 -8)", "*(u32 *)(r6 +52) = r1",
        "r2 = *(u32 *)(r6 +76)", "r3 = *(u32 *)(r6 +80)", "r4 = r2", "r4 += 14",
        "if r4 > r3 goto pc+2", "r1 = *(u8 *)(r2 +12)", "*(u32 *)(r6 +56) = r1",
        "r1 = *(u32 *)(r6 +0)", "*(u32 *)(r6 +60) = r1", "r0 = 0", "exit", name="outer"))
    frame = udp_frame()
    for n in (1, 2):
        net.send("a/veth0", frame)
        assert len(net.capture("b/veth2")) == n
        skb = net.dev("b/veth1").delivered[-1]
        assert [cb(skb.cb, k) for k in (1, 2, 3)] == [0x77, 0x08, len(frame)]
