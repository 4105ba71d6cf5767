"""Hash helpers under BPF_PROG_TEST_RUN against the kernel, both tiers: bpf_get_hash_recalc,
bpf_set_hash, bpf_set_hash_invalid (``net/core/filter.c``, ``skb_get_hash`` in
``include/linux/skbuff.h``), and skb_store_bytes' BPF_F_INVALIDATE_HASH.

The kernel's flow hash is salted with a random per-boot key, so a recomputed hash is never
compared by value: the programs reduce it to deterministic facts (non-zero, equal to
skb->hash afterwards, stable across calls, equal to a value set before).  A hash that was
*set* (bpf_set_hash, a software hash) is returned as is by bpf_get_hash_recalc, even 0."""

from __future__ import annotations

import pytest

from tests.kernel.objects_oracle import arp_request, ether
from tests.kernel.test_helpers_common import (
    MAC_A,
    MAC_B,
    Case,
    call,
    params,
    run_case,
    stack_fill,
    tcp_frame,
    udp6_frame,
    udp_frame,
)

pytestmark = pytest.mark.kernel

PACKETS = {
    "udp": udp_frame(),
    "tcp": tcp_frame(),
    "udp6": udp6_frame(),
    "arp": ether(MAC_B, MAC_A, 0x0806, arp_request(MAC_A, "10.0.0.1", "10.0.0.2")),
    "l2only": ether(MAC_B, MAC_A, 0x88B5, b""),
}
HASH = "*(u32 *)(r6 +68)"


def _facts(reg: str, slot: int) -> list[str]:
    """cb[slot] = (reg != 0) | (reg == skb->hash) << 1 | (reg == cb[slot+1] input) << 2."""
    return [f"r7 = {reg}", "r8 = 0", "if r7 == 0 goto pc+1", "r8 |= 1",
            f"r2 = {HASH}", "if r2 != r7 goto pc+1", "r8 |= 2",
            f"*(u32 *)(r6 +{48 + 4 * slot}) = r8"]


PROGRAMS: dict[str, tuple[str, ...]] = {
    # A software hash is returned as set, 0 included (l4_hash/sw_hash set: no recompute).
    "set-then-recalc": (*call("bpf_set_hash", "0xabcd", slot=0),
                        *call("bpf_get_hash_recalc", slot=1), f"r0 = {HASH}", "exit"),
    "set0-then-recalc": (*call("bpf_set_hash", "0", slot=0),
                         *call("bpf_get_hash_recalc", slot=1), f"r0 = {HASH}", "exit"),
    "set64-then-read": (*call("bpf_set_hash", "0x1deadbeef ll", slot=0),
                        *call("bpf_get_hash_recalc", slot=1), f"r0 = {HASH}", "exit"),
    # A recomputed hash: facts only.
    "recalc": (f"r0 = {HASH}", "*(u32 *)(r6 +56) = r0", *call("bpf_get_hash_recalc"),
               *_facts("r0", 0), "r9 = r7", *call("bpf_get_hash_recalc"), "r1 = 0",
               "if r0 != r9 goto pc+1", "r1 = 1", "*(u32 *)(r6 +52) = r1", "r0 = 0", "exit"),
    "invalid-then-recalc": (*call("bpf_set_hash", "7"), *call("bpf_set_hash_invalid", slot=2),
                            f"r0 = {HASH}", "*(u32 *)(r6 +56) = r0",
                            *call("bpf_get_hash_recalc"), *_facts("r0", 0), "r1 = 0",
                            "if r7 != 7 goto pc+1", "r1 = 1", "*(u32 *)(r6 +52) = r1",
                            "r0 = 0", "exit"),
    "recalc-then-invalid": (*call("bpf_get_hash_recalc"), *call("bpf_set_hash_invalid", slot=1),
                            f"r0 = {HASH}", "exit"),
    "recalc-then-set": (*call("bpf_get_hash_recalc"), *call("bpf_set_hash", "0x55", slot=1),
                        *call("bpf_get_hash_recalc", slot=2), f"r0 = {HASH}", "exit"),
    "store-invalidates": (*stack_fill(8, b"\x01\x02\x03\x04" * 2),
                          *call("bpf_set_hash", "0x77", slot=0),
                          *call("bpf_skb_store_bytes", "0", "r10; r3 += -8", "4", "2", slot=1),
                          f"r0 = {HASH}", "*(u32 *)(r6 +64) = r0",
                          *call("bpf_get_hash_recalc"), *_facts("r0", 2), "r1 = 0",
                          "if r7 != 0x77 goto pc+1", "r1 = 1", "*(u32 *)(r6 +60) = r1",
                          "r0 = 0", "exit"),
    "store-keeps": (*stack_fill(8, b"\x01\x02\x03\x04" * 2),
                    *call("bpf_set_hash", "0x77", slot=0),
                    *call("bpf_skb_store_bytes", "0", "r10; r3 += -8", "4", "1", slot=1),
                    *call("bpf_get_hash_recalc", slot=2), f"r0 = {HASH}", "exit"),
}
CASES: dict[str, Case] = {
    f"{prog}-{pkt}": Case(lines, packet)
    for prog, lines in PROGRAMS.items() for pkt, packet in PACKETS.items()
}


@pytest.mark.parametrize("name", list(params(CASES)))
def test_hash_helper(name: str) -> None:
    run_case(CASES[name])
