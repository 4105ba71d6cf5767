"""FIFO qdiscs from tc command lines, found by the topology hunt
(tests/testdata/hunt_topo/qdisc-edges): ``bfifo`` and ``pfifo_head_drop`` exist in
tcemu.qdisc but ``tc qdisc add ... bfifo`` was refused as unmodelled.  q_fifo.c reads
``limit`` with get_size for every fifo kind; bfifo counts bytes (sch_fifo.c
``bfifo_enqueue``: backlog + qdisc_pkt_len <= limit), the others packets.
"""

from __future__ import annotations

import pytest

from tcemu.cmd import model as m
from tcemu.cmd import parse
from tests.datapath.topo import udp_frame, veth_net


@pytest.mark.parametrize(("kind", "cls"), [("bfifo", m.BfifoQdisc),
                                           ("pfifo_head_drop", m.PfifoHeadDropQdisc)])
def test_fifo_kinds_parse_with_a_size_limit(kind: str, cls: type) -> None:
    cmd = parse(f"tc qdisc add dev veth0 root {kind} limit 1k")
    assert isinstance(cmd, m.QdiscAdd)
    assert isinstance(cmd.qdisc, m.BfifoQdisc | m.PfifoHeadDropQdisc)
    assert type(cmd.qdisc) is cls
    assert cmd.qdisc.limit == 1024


def test_bfifo_admits_frames_up_to_its_byte_limit() -> None:
    net = veth_net()
    net.tc("-n a qdisc add dev veth0 root bfifo limit 100")
    small, big = udp_frame(payload=b"x" * 58), udp_frame(payload=b"x" * 59)
    assert (len(small), len(big)) == (100, 101)
    for frame in (small, big, small):
        net.send("a/veth0", frame)
    assert [len(c.data) for c in net.capture("b/veth1") if c.direction == "in"] == [100, 100]
    qdisc = net.dev("a/veth0").qdisc
    assert qdisc is not None
    assert qdisc.stats.drops == 1


def test_a_root_qdisc_with_a_handle_is_not_replaced_by_add() -> None:
    """tc_modify_qdisc: adding a root qdisc with another handle over a created one needs
    NLM_F_REPLACE (tc qdisc replace); ffff: names the clsact qdisc, which cannot move."""
    import pytest

    from tcemu.errors import NetError

    net = veth_net()
    net.tc("-n a qdisc add dev veth0 root handle 1: htb")
    with pytest.raises(NetError, match="NLM_F_REPLACE needed to override"):
        net.tc("-n a qdisc add dev veth0 root handle 2: pfifo")
    net.tc("-n a qdisc add dev veth0 clsact")
    with pytest.raises(NetError, match="Cannot move an existing qdisc"):
        net.tc("-n a qdisc add dev veth0 root handle ffff: pfifo")
