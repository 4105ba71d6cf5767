"""Reshaping helpers' flags and error paths under BPF_PROG_TEST_RUN against the kernel, both
tiers, beyond ``test_reshape_helpers.py``: bpf_skb_adjust_room with every encapsulation
flag (GRE/UDP over IPv4/IPv6, ENCAP_L2 lengths, L2_ETH, NO_CSUM_RESET, FIXED_GSO, the
decapsulation flags) in both modes, bpf_skb_change_proto both ways and refused,
bpf_skb_change_tail and bpf_skb_change_head at their limits, bpf_skb_set_tunnel_opt and
bpf_skb_get_tunnel_opt up to IP_TUNNEL_OPTS_MAX (``net/core/filter.c``;
kernel-semantics.md section 4.2).  Each program stores the helper's return code in cb[]
and folds len, protocol and the VLAN fields into r0; data_out is the reshaped packet."""

from __future__ import annotations

import pytest

from tests.kernel.objects_oracle import ether
from tests.kernel.test_helpers_common import (
    MAC_A,
    MAC_B,
    Case,
    call,
    params,
    run_case,
    tcp_frame,
    udp6_frame,
    udp_frame,
)

pytestmark = pytest.mark.kernel

FIELDS = ["r0 = *(u32 *)(r6 +0)", "r2 = *(u32 *)(r6 +16)", "r2 <<= 32", "r0 ^= r2",
          "r2 = *(u32 *)(r6 +24)", "r2 <<= 16", "r0 ^= r2", "r2 = r0", "r2 >>= 32",
          "r0 ^= r2", "exit"]
PACKETS = {"udp": udp_frame(), "tcp": tcp_frame(), "udp6": udp6_frame(),
           "arp": ether(MAC_B, MAC_A, 0x0806, bytes(28))}
FIXED_GSO, L3_V4, L3_V6, L4_GRE, L4_UDP, NO_CSUM_RESET, L2_ETH = 1, 2, 4, 8, 16, 32, 64
DECAP_V4, DECAP_V6 = 128, 256


def l2len(n: int) -> int:
    return (n & 0xFF) << 56


ROOM = {
    "mac-gre4": (24, 1, L3_V4 | L4_GRE),
    "mac-udp4": (28, 1, L3_V4 | L4_UDP),
    "mac-udp6": (48, 1, L3_V6 | L4_UDP),
    "mac-gre-and-udp": (28, 1, L3_V4 | L4_GRE | L4_UDP),
    "mac-l4-without-l3": (8, 1, L4_UDP),
    "mac-l2len": (42, 1, L3_V4 | L4_UDP | l2len(14)),
    "mac-l2eth": (50, 1, L3_V4 | L4_UDP | L2_ETH | l2len(14)),
    "mac-l2eth-no-len": (36, 1, L3_V4 | L4_UDP | L2_ETH),
    "mac-l2len-no-l4": (34, 1, L3_V4 | l2len(14)),
    "mac-l2len-too-big": (28, 1, L3_V4 | L4_UDP | l2len(40)),
    "net-encap": (20, 0, L3_V4),
    "net-nocsum": (8, 0, NO_CSUM_RESET),
    "net-fixed-gso": (8, 0, FIXED_GSO),
    "net-unknown-flag": (8, 0, 512),
    "net-zero": (0, 0, 0),
    "net-shrink-40": (-40, 0, 0),
    "net-shrink-8": (-8, 0, 0),
    "mac-shrink-14": (-14, 1, 0),
    "mac-decap4": (-20, 1, DECAP_V4),
    "mac-decap6": (-40, 1, DECAP_V6),
    "mac-decap-both": (-20, 1, DECAP_V4 | DECAP_V6),
    "mac-decap-grow": (20, 1, DECAP_V4),
    "mode-2": (8, 2, 0),
    "mac-huge": (0x7FFF_FFFF, 1, 0),
    "mac-neg-huge": (-0x8000_0000, 1, 0),
}
CASES: dict[str, Case] = {}
for name, (diff, mode, flags) in ROOM.items():
    for pname in ("udp", "udp6", "tcp"):
        CASES[f"room-{name}-{pname}"] = Case(
            (*call("bpf_skb_adjust_room", f"{diff & 0xFFFF_FFFF:#x}", str(mode),
                   f"{flags:#x} ll", slot=0), *FIELDS), PACKETS[pname])

for proto, pflags in ((0xDD86, 0), (0x0008, 0), (0x0608, 0), (0xDD86, 1), (0x0081, 0)):
    for pname in ("udp", "udp6", "arp"):
        CASES[f"proto-{proto:#06x}-f{pflags}-{pname}"] = Case(
            (*call("bpf_skb_change_proto", f"{proto:#x}", str(pflags), slot=0), *FIELDS),
            PACKETS[pname])

for new_len, tflags in ((14, 0), (54, 0), (3000, 0), (0xFFFF, 0), (0x10000, 0),
                        (0xFFFF_FFFF, 0), (60, 2)):
    CASES[f"tail-{new_len:#x}-f{tflags}"] = Case(
        (*call("bpf_skb_change_tail", f"{new_len:#x}", str(tflags), slot=0), *FIELDS),
        PACKETS["udp"])

for room, hflags in ((0, 0), (1, 0), (100, 0), (3000, 0), (0x10000, 0), (4, 1)):
    CASES[f"head-{room:#x}-f{hflags}"] = Case(
        (*call("bpf_skb_change_head", f"{room:#x}", str(hflags), slot=0), *FIELDS),
        PACKETS["udp"])



# --- tunnel options: sizes up to IP_TUNNEL_OPTS_MAX (255) in multiples of 4, after a key -----

def _tunnel_opt(opt_len: int, get_len: int) -> tuple[str, ...]:
    key = ["r2 = 0", *[f"*(u64 *)(r10 -{48 - off}) = r2" for off in range(0, 48, 8)],
           "r2 = 0x0a000002", "*(u32 *)(r10 -44) = r2",
           *call("bpf_skb_set_tunnel_key", "r10; r2 += -48", "44", "0", slot=0)]
    fill = ["r2 = 0x0102030405060708 ll",
            *[f"*(u64 *)(r10 -{304 - off}) = r2" for off in range(0, 256, 8)]]
    return (*key, *fill,
            *call("bpf_skb_set_tunnel_opt", "r10; r2 += -304", str(opt_len), slot=1),
            *call("bpf_skb_get_tunnel_opt", "r10; r2 += -304", str(get_len), slot=2),
            "r0 = *(u64 *)(r10 -304)", "r2 = *(u64 *)(r10 -56)", "r0 ^= r2", *FIELDS)


for opt_len, get_len in ((4, 256), (252, 256), (256, 256), (255, 256), (1, 8), (8, 4),
                         (248, 248)):
    CASES[f"tunnel_opt-{opt_len}-{get_len}"] = Case(_tunnel_opt(opt_len, get_len),
                                                    PACKETS["udp"])


@pytest.mark.parametrize("name", list(params(CASES)))
def test_reshape_helper(name: str) -> None:
    run_case(CASES[name])
