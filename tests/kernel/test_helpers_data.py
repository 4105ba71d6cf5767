"""Data and checksum helpers against the kernel's BPF_PROG_TEST_RUN, both tiers, with their
flags and error paths: skb_load_bytes, skb_load_bytes_relative, skb_store_bytes,
l3_csum_replace, l4_csum_replace, csum_diff, csum_update, skb_pull_data, skb_change_type
(``net/core/filter.c``; kernel-semantics.md sections 4.2-4.4 and 5).

Helper return codes go to ``cb[]`` (compared through ctx_out), buffers the helper fills
are folded into r0, the packet is data_out.  Cases with ``flags=4`` run with
``BPF_F_TEST_SKB_CHECKSUM_COMPLETE``, where the kernel checks skb->csum after the run
(EBADMSG when a helper left it stale)."""

from __future__ import annotations

import pytest

from tests.kernel.test_helpers_common import (
    Case,
    call,
    fold_stack,
    params,
    run_case,
    stack_fill,
    udp_frame,
)

pytestmark = pytest.mark.kernel

UDP = udp_frame()                       # 54 bytes: IPv4 csum at 24, UDP csum at 40
UDP_NOCSUM = udp_frame(checksum=False)  # UDP checksum 0
MULTICAST = udp_frame(mac_dst=bytes.fromhex("01005e000001"))
FOLD_HIGH = ["r2 = r0", "r2 >>= 32", "r0 ^= r2", "exit"]
CASES: dict[str, Case] = {}


def _add(name: str, lines: list[str], packet: bytes = UDP, *, flags: int = 0,
         xfail: str = "") -> None:
    assert name not in CASES, name
    CASES[name] = Case(tuple(lines), packet, flags=flags, xfail=xfail)


# --- skb_load_bytes(skb, offset, to, len): -EFAULT and a zeroed buffer out of range --------

for off, size in [(0, 14), (38, 16), (50, 4), (51, 4), (54, 1), (53, 2), (0xFFFF_FFFF, 4),
                  (0x7FFF_FFFF, 4), (0x8000_0000, 1), ("0x100000002 ll", 4)]:
    _add(f"load-{off}-{size}".replace(" ", ""), [
        *stack_fill(16, b"\x55" * 16),
        *call("bpf_skb_load_bytes", str(off), "r10; r3 += -16", str(size), slot=0),
        "r0 = 0", *fold_stack(16, 16), *FOLD_HIGH])

# --- skb_load_bytes_relative(skb, offset, to, len, start_header) ---------------------------

for start, off, size in [(0, 0, 14), (0, 40, 14), (0, 41, 14), (1, 0, 16), (1, 24, 16),
                         (1, 25, 16), (2, 0, 4), (0, 0x10000, 4), (1, 0xFFFF, 4),
                         (0xFFFF_FFFF, 0, 4)]:
    _add(f"relative-{start}-{off}-{size}", [
        *stack_fill(16, b"\xaa" * 16),
        *call("bpf_skb_load_bytes_relative", str(off), "r10; r3 += -16", str(size),
              str(start), slot=0),
        "r0 = 0", *fold_stack(16, 16), *FOLD_HIGH])

# --- skb_store_bytes(skb, offset, from, len, flags): flags RECOMPUTE_CSUM 1, INVALIDATE_HASH
# 2, others -EINVAL; out of range -EFAULT.  r0 = skb->hash after a set_hash (flag 2 clears).


def _store(off: int | str, size: int, sflags: int) -> list[str]:
    return [*stack_fill(8, bytes.fromhex("c0a80107deadbeef")),
            *call("bpf_set_hash", "0x1234", slot=1),
            *call("bpf_skb_store_bytes", str(off), "r10; r3 += -8", str(size), str(sflags),
                  slot=0),
            "r0 = *(u32 *)(r6 +68)", "exit"]


for off, size, sflags in [(26, 4, 0), (0, 6, 0), (50, 4, 0), (51, 4, 0), (0xFFFF_FFFF, 1, 0),
                          (0x7FFF_FFFF, 1, 0), (26, 4, 1), (26, 4, 2), (26, 4, 3), (26, 4, 4),
                          (26, 4, 8), (54, 1, 0), (47, 8, 1)]:
    for tflags in (0, 4):
        _add(f"store-{off}-{size}-f{sflags}-t{tflags}", _store(off, size, sflags), flags=tflags)

# --- l3_csum_replace(skb, offset, from, to, flags): size 0 (diff, from must be 0), 2, 4;
# other bits -EINVAL; odd or out-of-range offsets -EFAULT.

for off, frm, to, fl in [(24, 0x0100000A, 0x0200000A, 4), (24, 0x0A00, 0x0B00, 2),
                         (24, 0, 0x12345678, 0), (24, 5, 6, 0), (24, 1, 2, 3), (24, 1, 2, 0x14),
                         (24, 1, 2, 0x24), (25, 1, 2, 2), (52, 1, 2, 2), (53, 1, 2, 2),
                         (0x10000, 1, 2, 2), (0xFFFF_FFFF, 1, 2, 2)]:
    for tflags in (0, 4):
        _add(f"l3-{off}-{fl:#x}-{frm:#x}-t{tflags}", [
            *call("bpf_l3_csum_replace", str(off), f"{frm:#x}", f"{to:#x}", f"{fl:#x}",
                  slot=0), "r0 = 0", "exit"], flags=tflags)

# --- l4_csum_replace(skb, offset, from, to, flags): size 0/2/4, PSEUDO_HDR 0x10,
# MARK_MANGLED_0 0x20, IPV6 0x80; other bits -EINVAL; offset > 0xffff or past the end -EFAULT.

for off, frm, to, fl in [(40, 0x0100000A, 0x0200000A, 0x14), (40, 0x0100000A, 0x0200000A, 4),
                         (40, 0x3500, 0x3600, 2), (40, 0, 0x1234, 0), (40, 0, 0x1234, 0x10),
                         (40, 7, 0x1234, 0), (40, 1, 2, 0x34), (40, 1, 2, 0x94),
                         (40, 1, 2, 0x40), (40, 1, 2, 0x100), (40, 1, 2, 3), (41, 1, 2, 2),
                         (52, 1, 2, 2), (53, 1, 2, 2), (0x10000, 1, 2, 2),
                         (40, 0xFFFF, 0, 2)]:
    for packet, pname in ((UDP, "csum"), (UDP_NOCSUM, "zero")):
        for tflags in (0, 4):
            _add(f"l4-{off}-{fl:#x}-{frm:#x}-{pname}-t{tflags}", [
                *call("bpf_l4_csum_replace", str(off), f"{frm:#x}", f"{to:#x}", f"{fl:#x}",
                      slot=0), "r0 = 0", "exit"], packet, flags=tflags)

# --- csum_diff(from, from_size, to, to_size, seed): sizes multiples of 4, together at most
# 512 (the per-CPU scratch), else -EINVAL; NULL with size 0 allowed.  Returns the 32-bit
# unfolded csum_partial of x86-64.

_PATTERN = bytes((i * 37 + 11) & 0xFF for i in range(512))


def _diff(from_size: int, to_size: int, seed: int) -> list[str]:
    frm = f"r10; r1 += -{from_size}" if from_size else "0"
    to = f"r10; r3 += -{to_size + 8}" if to_size else "0"
    lines = [*stack_fill(512, _PATTERN)]
    for reg, arg in (("r1", frm), ("r2", str(from_size)), ("r3", to), ("r4", str(to_size)),
                     ("r5", f"{seed:#x} ll")):
        first, *rest = arg.split(";")
        lines.append(f"{reg} = {first.strip()}")
        lines += [p.strip() for p in rest]
    return [*lines, "call bpf_csum_diff", "*(u32 *)(r6 +48) = r0", "r2 = r0", "r2 >>= 32",
            "*(u32 *)(r6 +52) = r2", "exit"]


for frm_size, to_size, seed in [(4, 4, 0), (8, 0, 0), (0, 8, 0x12345678), (0, 0, 0xDEADBEEF),
                                (0, 0, 0x1DEADBEEF), (3, 4, 0), (4, 6, 0), (256, 248, 1),
                                (264, 248, 0), (268, 248, 0), (500, 4, 0xFFFFFFFF),
                                (12, 20, 0xFFFF0000)]:
    _add(f"csum_diff-{frm_size}-{to_size}-{seed:#x}", _diff(frm_size, to_size, seed))

# --- csum_update(skb, csum): skb->csum of CHECKSUM_COMPLETE, else -ENOTSUPP -------------------

for value, tflags in [(0, 0), (0, 4), (0x1234, 4), (0xFFFF_FFFF, 4), (0x1234, 0)]:
    _add(f"csum_update-{value:#x}-t{tflags}", [
        *call("bpf_csum_update", f"{value:#x}", slot=0), *FOLD_HIGH], flags=tflags)

# --- skb_pull_data(skb, len): -ENOMEM past the packet; 0 means the linear length -----------

for size in (0, 14, 54, 55, 0xFFFF, 0xFFFF_FFFF):
    _add(f"pull_data-{size:#x}", [*call("bpf_skb_pull_data", f"{size:#x}", slot=0),
                                   "r0 = *(u32 *)(r6 +0)", "exit"])

# --- skb_change_type(skb, type): PACKET_HOST..OTHERHOST only ---------------------------------

for new in (0, 1, 2, 3, 4, 7, 0xFFFF_FFFF):
    for packet, pname in ((UDP, "otherhost"), (MULTICAST, "multicast")):
        _add(f"change_type-{new:#x}-{pname}", [
            *call("bpf_skb_change_type", f"{new:#x}", slot=0),
            "r0 = *(u32 *)(r6 +4)", "exit"], packet)


@pytest.mark.parametrize("name", list(params(CASES)))
def test_data_helper(name: str) -> None:
    run_case(CASES[name])
