"""Replay against the kernel, packet by packet: what ``tcemu replay`` reports for every
packet of the shipped captures (the verdict, and the frame as the hook left it) is what
the kernel's ``BPF_PROG_TEST_RUN`` of the same object gives for the same frame (retval,
data_out), and the maps end equal.

The replayed packets take tcemu's whole path (receive: eth_type_trans, clsact ingress,
cls_bpf direct-action with the MAC header pushed; or transmit: clsact egress), the
kernel's go through test_run; the
programs here read only the packet, its length and their maps, which both paths give
them alike.  Captures without an Ethernet header are turned into frames first, as replay
does (``tcemu.pcap.to_ethernet``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcemu.bpf.vm import Tier
from tcemu.pcap import DEFAULT_LOCAL_MAC, PacketRecord, read_packets, to_ethernet
from tcemu.replay import PacketOutcome, replay, single_program_net
from tests.kernel import objects_oracle as ko
from tests.kernel.objects_oracle import BpfFs, KernelObject, load_with_bpftool

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {                                    # object -> the function replayed
    ROOT / "tests" / "testdata" / "objects" / "flow_counter.bpf.o": "flow_counter",
    ROOT / "tests" / "testdata" / "objects" / "pkt_rewrite.bpf.o": "pkt_rewrite",
    ROOT / "scenarios" / "programs" / "nat.bpf.o": "dnat",
    ROOT / "docs" / "tutorial" / "port_guard.bpf.o": "port_guard",
}
CAPTURES = sorted(p for p in (ROOT / "pcaps").iterdir() if p.suffix in (".pcap", ".pcapng"))


# cls_bpf_exec_opcode (net/sched/cls_bpf.c): the return values a direct-action filter
# passes on; any other is TC_ACT_UNSPEC
TC_ACT_UNSPEC = -1
DA_VERDICTS = frozenset({0, 2, 4, 8, 7, TC_ACT_UNSPEC})    # OK SHOT STOLEN TRAP REDIRECT


def _comparable(record: PacketRecord) -> bool:
    """Frames both paths hand the program alike.  Not runts (they never reach tc ingress,
    and test_run refuses them), not VLAN-tagged frames: tc ingress runs after
    skb_vlan_untag (the tag is metadata then), test_run leaves the tag in the frame."""
    frame = to_ethernet(record, local_mac=DEFAULT_LOCAL_MAC)
    return len(frame) >= 14 and frame[12:14] not in (b"\x81\x00", b"\x88\xa8")


@pytest.fixture(scope="module")
def bpffs() -> Iterator[BpfFs]:
    if shutil.which(ko.BPFTOOL) is None:
        message = "bpftool is not installed (Debian package: bpftool)"
        if os.environ.get("TCEMU_REQUIRE_KERNEL") == "1":
            pytest.fail(f"TCEMU_REQUIRE_KERNEL=1 but {message}")
        pytest.skip(message)
    fs = BpfFs()
    try:
        yield fs
    finally:
        fs.close()


def _kernel_object(fs: BpfFs, obj: Path) -> KernelObject:
    progs, maps = fs.fresh_dir(obj.stem), fs.fresh_dir(obj.stem + "_maps")
    load_with_bpftool(obj, progs, maps)
    return KernelObject.open(progs, maps)


@pytest.mark.parametrize(("tier", "direction"),
                         [("jit", "ingress"), ("interp", "ingress"), ("jit", "egress")])
@pytest.mark.parametrize("obj", list(PROGRAMS), ids=lambda p: p.stem)
def test_replay_agrees_with_the_kernel(obj: Path, tier: Tier, direction: str,
                                       bpffs: BpfFs) -> None:
    function = PROGRAMS[obj]
    kobj = _kernel_object(bpffs, obj)
    try:
        net, coll = single_program_net(obj, name=function, tier=tier)
        compared = 0
        for capture in CAPTURES:
            records = [r for r in read_packets(capture) if _comparable(r)]
            seen: list[PacketOutcome] = []
            replay(net, records, "eth0", direction=direction, on_packet=seen.append)
            assert len(seen) == len(records)
            for index, (record, outcome) in enumerate(zip(records, seen, strict=True)):
                frame = to_ethernet(record, local_mac=DEFAULT_LOCAL_MAC)
                want = kobj.run(function, frame, None)
                where = f"{capture.name} packet {index} ({frame.hex()})"
                r0 = want.retval - (1 << 32) if want.retval >> 31 else want.retval
                assert outcome.verdict == (r0 if r0 in DA_VERDICTS else TC_ACT_UNSPEC), where
                after = [data for _, how, data in outcome.output
                         if how == f"after tc {direction}"]
                assert after == [want.data_out], where
                compared += 1
        assert compared > 50
        for name, m in coll.maps.items():
            kernel = kobj.read(kobj.maps[name])
            assert {k.hex(): v.hex() for k, v in m.items()} == kernel, f"map {name}"
    finally:
        kobj.close()
