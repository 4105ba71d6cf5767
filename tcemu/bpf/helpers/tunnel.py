"""Tunnel metadata helpers: ``bpf_skb_{get,set}_tunnel_{key,opt}`` (``net/core/filter.c``,
kernel-semantics.md section 7.2).  The metadata lives in ``skb.tunnel``
(:class:`~tcemu.skb.TunnelInfo`), the model of a ``metadata_dst``."""

from __future__ import annotations

import errno as err
import struct

from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import helper
from tcemu.bpf.helpers.skb import skb_of
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm
from tcemu.skb import TunnelInfo

__all__: list[str] = []

BPF_F_TUNINFO_IPV6, BPF_F_ZERO_CSUM_TX, BPF_F_DONT_FRAGMENT = 1, 2, 4
BPF_F_SEQ_NUMBER, BPF_F_NO_TUNNEL_KEY, BPF_F_TUNINFO_FLAGS = 8, 16, 16
TUNNEL_CSUM, TUNNEL_KEY, TUNNEL_SEQ = 0x01, 0x04, 0x08
TUNNEL_DONT_FRAGMENT, TUNNEL_NOCACHE = 0x100, 0x2000
# TUNNEL_OPTIONS_PRESENT: GENEVE_OPT | VXLAN_OPT | ERSPAN_OPT | GTP_OPT
TUNNEL_OPTIONS_PRESENT = 0x0800 | 0x1000 | 0x4000 | 0x8000
KEY_SIZES = (44, 28, 24, 22, 8)
IP_TUNNEL_OPTS_MAX = 255


def _key_fields(raw: bytes) -> tuple[int, bytes, int, int, int, int, bytes]:
    full = raw.ljust(44, b"\0")
    tun_id, = struct.unpack_from("<I", full, 0)
    tos, ttl, ext, label = struct.unpack_from("<BBHI", full, 20)
    return tun_id, full[4:20], tos, ttl, ext, label, full[28:44]


@helper(F.skb_set_tunnel_key, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING)
def skb_set_tunnel_key(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, size, flags = skb_of(vm), r3, r4
    allowed = BPF_F_TUNINFO_IPV6 | BPF_F_ZERO_CSUM_TX | BPF_F_DONT_FRAGMENT | \
        BPF_F_SEQ_NUMBER | BPF_F_NO_TUNNEL_KEY
    if flags & ~allowed or size not in KEY_SIZES[:4]:
        return -err.EINVAL
    tun_id, remote, tos, ttl, ext, label, local = _key_fields(vm.memory.read(r2, size))
    ipv6 = bool(flags & BPF_F_TUNINFO_IPV6)
    if ext or (not ipv6 and label):
        return -err.EINVAL
    tun_flags = TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE
    if flags & BPF_F_DONT_FRAGMENT:
        tun_flags |= TUNNEL_DONT_FRAGMENT
    if flags & BPF_F_ZERO_CSUM_TX:
        tun_flags &= ~TUNNEL_CSUM
    if flags & BPF_F_SEQ_NUMBER:
        tun_flags |= TUNNEL_SEQ
    if flags & BPF_F_NO_TUNNEL_KEY:
        tun_flags &= ~TUNNEL_KEY
    if ipv6:
        dst, src = remote, local
    else:  # struct bpf_tunnel_key holds IPv4 addresses as host-order u32
        dst = struct.pack("!I", int.from_bytes(remote[:4], "little"))
        src = struct.pack("!I", int.from_bytes(local[:4], "little"))
    skb.tunnel = TunnelInfo(tun_id, src, dst, tos, ttl, label & 0xFFFFF if ipv6 else 0,
                            tun_flags, ipv6)
    return 0


@helper(F.skb_get_tunnel_key, A.PTR_TO_CTX, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE, A.ANYTHING)
def skb_get_tunnel_key(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, size, flags = skb_of(vm), r3, r4
    info = skb.tunnel
    out = bytearray(44)
    rc = 0
    bad_size = size not in KEY_SIZES or (size == 8 and flags & BPF_F_TUNINFO_IPV6)
    if flags & ~(BPF_F_TUNINFO_IPV6 | BPF_F_TUNINFO_FLAGS) or info is None:
        rc = -err.EINVAL
    elif info.ipv6 != bool(flags & BPF_F_TUNINFO_IPV6):
        rc = -err.EPROTO
    elif bad_size:
        rc = -err.EINVAL
    if rc:
        vm.memory.zero(r2, size)
        return rc
    assert info is not None
    struct.pack_into("<IBB", out, 0, info.tun_id & 0xFFFF_FFFF, 0, 0)
    # "remote" is the source of the metadata (the peer on receive), "local" the destination
    if info.ipv6:
        out[4:20], out[28:44] = info.src, info.dst
        struct.pack_into("<I", out, 24, info.label)
    else:
        struct.pack_into("<I", out, 4, int.from_bytes(info.src, "big"))
        struct.pack_into("<I", out, 28, int.from_bytes(info.dst, "big"))
    out[20], out[21] = info.tos, info.ttl
    if flags & BPF_F_TUNINFO_FLAGS:
        out[22:24] = (info.flags & 0xFFFF).to_bytes(2, "big")
    vm.memory.write(r2, bytes(out[:size]))
    return 0


@helper(F.skb_set_tunnel_opt, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE)
def skb_set_tunnel_opt(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, size = skb_of(vm), r3
    info = skb.tunnel
    if info is None or not info.per_cpu or size % 4:
        return -err.EINVAL
    if size > IP_TUNNEL_OPTS_MAX:
        return -err.ENOMEM
    info.options = vm.memory.read(r2, size)
    info.flags |= TUNNEL_OPTIONS_PRESENT
    return 0


@helper(F.skb_get_tunnel_opt, A.PTR_TO_CTX, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE)
def skb_get_tunnel_opt(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, size = skb_of(vm), r3
    info = skb.tunnel
    if info is None or not info.options:
        vm.memory.zero(r2, size)
        return -err.ENOENT
    if size < len(info.options):
        vm.memory.zero(r2, size)
        return -err.ENOMEM
    vm.memory.write(r2, info.options + bytes(size - len(info.options)))
    return len(info.options)
