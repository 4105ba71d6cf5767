"""Kernel differential tests of the datapath: the same topology, programs and frames on
the running kernel (real netns, veth, vxlan, clsact, cls_bpf) and on tcemu; the frames
every device's tap saw must be equal byte for byte (issue 5, "Proof").  The programs stamp
the skb fields each hook saw into the frames (tests/datapath/bpf/datapath.c), so the wire
bytes also compare len, wire_len, pkt_type, mark, priority, ifindex, ingress_ifindex,
tc_index, VLAN fields, protocol and cb[0] at every hook.
"""

from __future__ import annotations

import pytest

from tests.datapath.kdiff import Topo, diff, run_kernel, run_tcemu
from tests.datapath.topo import MAC_A, MAC_B, udp_frame

pytestmark = pytest.mark.kernel

MAC_C, MAC_D = bytes.fromhex("020000000003"), bytes.fromhex("020000000004")
PAYLOAD = bytes(range(100, 200))


def _three(**kw: object) -> Topo:
    return Topo(netns=["a", "b", "c"],
                veths=[("veth0", "a", "veth1", "b", MAC_A, MAC_B),
                       ("veth2", "b", "veth3", "c", MAC_C, MAC_D)],
                clsact=[("a", "veth0"), ("b", "veth1"), ("b", "veth2"), ("c", "veth3")],
                **kw)  # type: ignore[arg-type]


def _same(t: Topo) -> None:
    kernel = run_kernel(t)
    for tier in ("interp", "jit"):
        ours = run_tcemu(t, tier)
        assert ours == kernel, f"{tier}:\n{diff(ours, kernel)}"


@pytest.mark.parametrize("verdict", [0, 2, 4, -1, 3, 7])
def test_stamps_across_veth(verdict: int) -> None:
    """veth across netns, egress and ingress hooks, the verdict's effect (2.5, 3.4)."""
    t = _three(filters=[("a", "veth0", "egress", "stamp_only"),
                        ("b", "veth1", "ingress", "stamp_only")],
               cfg={2: verdict}, inject=[("a", "veth0", udp_frame(payload=PAYLOAD))],
               frames=1)
    _same(t)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_redirects(mode: int) -> None:
    """bpf_redirect egress/ingress, redirect_peer, clone_redirect from b/veth1 ingress to
    veth2 (ifindex 3 in b) (4.4, 3.4)."""
    t = _three(filters=[("a", "veth0", "egress", "stamp_only"),
                        ("b", "veth1", "ingress", "redir"),
                        ("b", "veth2", "egress", "stamp_only"),
                        ("c", "veth3", "ingress", "stamp_only")],
               cfg={0: 3, 1: mode},
               inject=[("a", "veth0", udp_frame(dst=MAC_D, payload=PAYLOAD)),
                       ("a", "veth0", udp_frame(dst=MAC_C, payload=PAYLOAD))],
               frames=4)
    _same(t)


@pytest.mark.parametrize(("verdict", "classid"), [(0, 0x1234), (-1, 0x55), (2, 1)])
def test_tc_index_rule(verdict: int, classid: int) -> None:
    """TC_ACT_OK copies tc_classid into tc_index; UNSPEC keeps the written tc_index (2.5);
    the next hook's stamp shows it."""
    t = _three(filters=[("a", "veth0", "egress", "classid"),
                        ("b", "veth1", "ingress", "stamp_only")],
               cfg={2: verdict, 3: classid},
               inject=[("a", "veth0", udp_frame(payload=PAYLOAD))], frames=1)
    _same(t)


def test_vlan_tagged_frame_is_untagged_at_ingress() -> None:
    """An in-payload 802.1Q tag is moved to hw-accel before tc ingress (3.1 step 4, 6.1)."""
    frame = udp_frame(payload=PAYLOAD)
    tagged = frame[:12] + bytes.fromhex("81002064") + frame[12:]
    t = _three(filters=[("b", "veth1", "ingress", "redir")], cfg={0: 3, 1: 0},
               inject=[("a", "veth0", tagged)], frames=3)
    _same(t)
