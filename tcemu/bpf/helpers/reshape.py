"""Helpers that reshape the packet or its metadata (``net/core/filter.c``,
``net/core/skbuff.c``): VLAN push/pop, change_tail/head/proto, adjust_room, ECN, tstamp,
MTU checks (kernel-semantics.md sections 4.2 and 6.2).

Header offsets in :class:`~tcemu.skb.SkBuff` are relative to ``skb->data``, which tc
programs see at the mac header; a helper that inserts or removes bytes moves the offsets
behind the edit and keeps CHECKSUM_COMPLETE sums as the kernel does.
"""

from __future__ import annotations

import errno as err

from tcemu import csum
from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import helper
from tcemu.bpf.helpers.skb import ENOTSUPP, skb_of
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm
from tcemu.skb import (
    CHECKSUM_COMPLETE,
    CHECKSUM_NONE,
    CHECKSUM_PARTIAL,
    CHECKSUM_UNNECESSARY,
    SkBuff,
    is_vlan_proto,
    skb_postpull_rcsum,
)
from tcemu.skb import skb_vlan_pop as _skb_vlan_pop
from tcemu.skb import skb_vlan_push as _skb_vlan_push

__all__: list[str] = []

ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD = 0x0800, 0x86DD, 0x8100, 0x88A8
VLAN_HLEN = 4
SKB_MAX_ALLOC = 16384 - 320
MAX_HEAD_ROOM = 1 << 24
BPF_ADJ_ROOM_NET, BPF_ADJ_ROOM_MAC = 0, 1
_ADJ_ROOM_FLAGS = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | (0xFF << 56)
BPF_F_ADJ_ROOM_NO_CSUM_RESET = 0x20
SKB_GSO_TCP = 0x1 | 0x10  # SKB_GSO_TCPV4 | SKB_GSO_TCPV6


def _be16(value: int) -> int:
    """A ``__be16`` argument as the program passes it (loaded little-endian) -> host value."""
    return int.from_bytes((value & 0xFFFF).to_bytes(2, "little"), "big")


def _insert(skb: SkBuff, at: int, data: bytes) -> None:
    """Insert bytes at ``at`` (relative to skb->data), shifting the headers behind it."""
    skb.data[at:at] = data
    if skb.network_header >= at:
        skb.network_header += len(data)
    if skb.transport_header is not None and skb.transport_header >= at:
        skb.transport_header += len(data)


def _remove(skb: SkBuff, at: int, size: int) -> bytes:
    gone = bytes(skb.data[at:at + size])
    del skb.data[at:at + size]
    if skb.network_header > at:
        skb.network_header = max(skb.network_header - size, at)
    if skb.transport_header is not None and skb.transport_header > at:
        skb.transport_header = max(skb.transport_header - size, at)
    return gone


@helper(F.skb_vlan_push, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, changes_pkt_data=True)
def skb_vlan_push(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    proto = _be16(r2)
    return _skb_vlan_push(skb_of(vm), proto if is_vlan_proto(proto) else ETH_P_8021Q, r3)


@helper(F.skb_vlan_pop, A.PTR_TO_CTX, changes_pkt_data=True)
def skb_vlan_pop(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _skb_vlan_pop(skb_of(vm))


def _min_len(skb: SkBuff) -> int:
    return skb.transport_header if skb.transport_header is not None else skb.network_header


@helper(F.skb_change_tail, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, changes_pkt_data=True)
def skb_change_tail(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, new_len = skb_of(vm), r2 & 0xFFFF_FFFF
    if r3 or new_len > SKB_MAX_ALLOC or new_len < _min_len(skb):
        return -err.EINVAL
    if skb.encapsulation:
        return -ENOTSUPP
    if new_len != skb.len and skb.ip_summed == CHECKSUM_COMPLETE:
        skb.ip_summed = CHECKSUM_NONE  # __skb_grow_rcsum / pskb_trim_rcsum; csum left stale
    if new_len > skb.len:
        skb.data.extend(bytes(new_len - skb.len))
    elif new_len < skb.len:
        del skb.data[new_len:]
        if skb.ip_summed == CHECKSUM_PARTIAL:
            skb.ip_summed = CHECKSUM_NONE
    if skb.gso_size:
        skb.gso_size = skb.gso_segs = 0  # skb_gso_reset, only for GSO skbs
    return 0


@helper(F.skb_change_head, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, changes_pkt_data=True)
def skb_change_head(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, room = skb_of(vm), r2 & 0xFFFF_FFFF
    new_len = (skb.len + room) & 0xFFFF_FFFF
    if r3 or (not skb.gso_size and new_len > SKB_MAX_ALLOC) or new_len < skb.len:
        return -err.EINVAL
    if room > MAX_HEAD_ROOM:
        return -err.ENOMEM  # KERNEL-DIFF: skb_cow's allocation limit, approximated
    if room:
        skb.data[0:0] = bytes(room)
        skb.network_header += room
        if skb.transport_header is not None:
            skb.transport_header += room
        skb.mac_header = 0
        skb.mac_len = skb.network_header
    return 0


@helper(F.skb_change_proto, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, changes_pkt_data=True)
def skb_change_proto(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, proto = skb_of(vm), _be16(r2)
    if r3:
        return -err.EINVAL
    at = skb.network_header
    if skb.protocol == ETH_P_IP and proto == ETH_P_IPV6:
        _insert(skb, at, bytes(20))
        skb.network_header = at
    elif skb.protocol == ETH_P_IPV6 and proto == ETH_P_IP:
        if skb.len < at + 20:
            return -err.EINVAL
        skb_postpull_rcsum(skb, _remove(skb, at, 20), at)
        skb.network_header = at
    else:
        return -ENOTSUPP
    skb.protocol = proto
    skb.clear_hash()
    return 0


_F_FIXED_GSO, _F_ENCAP_L3_IPV4, _F_ENCAP_L3_IPV6 = 0x1, 0x2, 0x4
_F_ENCAP_L4_GRE, _F_ENCAP_L4_UDP, _F_ENCAP_L2_ETH = 0x8, 0x10, 0x40
_F_DECAP_L3_IPV4, _F_DECAP_L3_IPV6 = 0x80, 0x100
_ENCAP_L3 = _F_ENCAP_L3_IPV4 | _F_ENCAP_L3_IPV6
_DECAP_L3 = _F_DECAP_L3_IPV4 | _F_DECAP_L3_IPV6
_ENCAP_L2_LEN = 0xFF << 56


def _adjust_room_checks(skb: SkBuff, diff: int, mode: int, flags: int) -> int:
    """The argument checks of ``bpf_skb_adjust_room`` and ``bpf_skb_net_{grow,shrink}``."""
    if flags & ~_ADJ_ROOM_FLAGS:
        return -err.EINVAL
    if abs(diff) > 0xFFF:
        return -err.EFAULT
    if skb.protocol not in (ETH_P_IP, ETH_P_IPV6):
        return -ENOTSUPP
    if mode not in (BPF_ADJ_ROOM_NET, BPF_ADJ_ROOM_MAC):
        return -ENOTSUPP
    shrink = diff < 0
    if flags & _DECAP_L3 and (not shrink or flags & _DECAP_L3 == _DECAP_L3):
        return -err.EINVAL
    len_min = 20 if (skb.protocol == ETH_P_IP or flags & _F_DECAP_L3_IPV4) else 40
    if flags & _F_DECAP_L3_IPV6:
        len_min = 40
    len_cur = skb.len - skb.network_header
    if shrink and (-diff >= len_cur or len_cur + diff < len_min):
        return -ENOTSUPP
    if not shrink and skb.len + diff > SKB_MAX_ALLOC and not skb.gso_size:
        return -ENOTSUPP
    if shrink and flags & ~(_F_FIXED_GSO | _DECAP_L3 | BPF_F_ADJ_ROOM_NO_CSUM_RESET):
        return -err.EINVAL
    if skb.gso_size and not skb.gso_type & SKB_GSO_TCP:
        return -ENOTSUPP  # bpf_skb_net_grow/shrink: GSO only for TCP
    if not shrink and flags & _ENCAP_L3:
        # bpf_skb_net_grow: only the L3 flags make an encapsulation; the L4 and L2 flags
        # are checked (and used) only then.
        inner_mac_len = (flags >> 56) & 0xFF
        if flags & _ENCAP_L3 == _ENCAP_L3:
            return -err.EINVAL
        if flags & _F_ENCAP_L4_GRE and flags & _F_ENCAP_L4_UDP:
            return -err.EINVAL
        if flags & _F_ENCAP_L2_ETH and inner_mac_len != 14:
            return -err.EINVAL
        if skb.encapsulation:
            return -err.EALREADY
        if inner_mac_len > diff:
            return -err.EINVAL
    return 0


@helper(F.skb_adjust_room, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, A.ANYTHING,
        changes_pkt_data=True)
def skb_adjust_room(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Insert or remove room after the mac header (MAC mode) or the fixed L3 header (NET).

    KERNEL-DIFF: encapsulation flags set ``skb.encapsulation`` and switch the protocol as
    the kernel does, but the inner header offsets are not modelled yet.
    """
    skb = skb_of(vm)
    diff = r2 & 0xFFFF_FFFF
    diff = diff - (1 << 32) if diff >> 31 else diff
    mode, flags = r3 & 0xFFFF_FFFF, r4
    rc = _adjust_room_checks(skb, diff, mode, flags)
    if rc:
        return rc
    l3_min = 20 if skb.protocol == ETH_P_IP else 40
    at = skb.network_header + (l3_min if mode == BPF_ADJ_ROOM_NET else 0)
    if diff > 0:
        skb.data[at:at] = bytes(diff)
        if skb.transport_header is not None and skb.transport_header >= at:
            skb.transport_header += diff
        if flags & _ENCAP_L3:
            skb.encapsulation = True
            skb.protocol = ETH_P_IPV6 if flags & _F_ENCAP_L3_IPV6 else ETH_P_IP
    elif diff < 0:
        skb_postpull_rcsum(skb, bytes(skb.data[at:at - diff]), at)
        del skb.data[at:at - diff]
        if flags & _DECAP_L3:
            skb.protocol = ETH_P_IPV6 if flags & _F_DECAP_L3_IPV6 else ETH_P_IP
    if skb.ip_summed == CHECKSUM_UNNECESSARY and not flags & BPF_F_ADJ_ROOM_NO_CSUM_RESET:
        skb.ip_summed = CHECKSUM_NONE
    return 0


def _inner_protocol(skb: SkBuff) -> int:
    """``skb_protocol(skb, true)``: skip in-payload VLAN tags to the encapsulated type."""
    proto, at = skb.vlan_proto or skb.protocol, 12
    if skb.vlan_proto:
        proto = skb.protocol
    while is_vlan_proto(proto) and skb.len >= at + 8:
        proto = int.from_bytes(skb.data[at + 4:at + 6], "big")
        at += VLAN_HLEN
    return proto


@helper(F.skb_ecn_set_ce, A.PTR_TO_CTX)
def skb_ecn_set_ce(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    nh = skb.network_header
    proto = _inner_protocol(skb)
    if proto == ETH_P_IP and skb.len >= nh + 20:
        ecn = (skb.data[nh + 1] + 1) & 3
        if not ecn & 2:
            return int(not ecn)
        check = int.from_bytes(skb.data[nh + 10:nh + 12], "little")
        add = (0xFBFF + (ecn << 8)) & 0xFFFF        # htons(0xFFFB) + htons(ecn)
        res = (check + add) & 0xFFFF
        res = (res + (res < add)) & 0xFFFF          # csum16_add
        skb.data[nh + 10:nh + 12] = res.to_bytes(2, "little")
        skb.data[nh + 1] |= 3
        return 1
    if proto == ETH_P_IPV6 and skb.len >= nh + 40:
        first = bytes(skb.data[nh:nh + 4])
        if not (int.from_bytes(first, "big") >> 20) & 3:
            return 0
        new = (int.from_bytes(first, "big") | (3 << 20)).to_bytes(4, "big")
        skb.data[nh:nh + 4] = new
        if skb.ip_summed == CHECKSUM_COMPLETE:
            skb.csum = csum.add32(csum.sub32(skb.csum, int.from_bytes(first, "little")),
                                  int.from_bytes(new, "little"))
        return 1
    return 0


@helper(F.skb_set_tstamp, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING)
def skb_set_tstamp(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    if skb.protocol not in (ETH_P_IP, ETH_P_IPV6):
        return -err.EOPNOTSUPP
    kind = r3 & 0xFFFF_FFFF
    if kind == 0 or (kind in (1, 2) and r2):
        skb.tstamp, skb.tstamp_type = r2, kind
        return 0
    return -err.EINVAL


@helper(F.check_mtu, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_LONG, A.ANYTHING, A.ANYTHING)
def check_mtu(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    mtu_len = int.from_bytes(vm.memory.read(r3, 4), "little")
    diff = r4 & 0xFFFF_FFFF
    diff = diff - (1 << 32) if diff >> 31 else diff
    if r5 & ~1 or (r5 & 1 and (diff or mtu_len)):
        return -err.EINVAL
    dev = vm.env.device_infos(skb).get(r2 & 0xFFFF_FFFF if r2 else skb.ifindex)
    if dev is None:
        return -err.ENODEV
    size = (mtu_len + dev.hard_header_len if mtu_len else skb.len) + diff
    ret = 0 if size <= dev.mtu + dev.hard_header_len else _MTU_FRAG_NEEDED
    if ret and skb.gso_size:
        # Longer than the MTU, but the segments may fit: BPF_MTU_CHK_SEGS checks them.
        ret = 0
        if r5 & 1:
            if skb.transport_header is None:
                return -err.EINVAL
            if _gso_network_seglen(skb) > dev.mtu:
                ret = _MTU_SEGS_TOOBIG
    vm.memory.write(r3, dev.mtu.to_bytes(4, "little"))
    return ret


_MTU_FRAG_NEEDED, _MTU_SEGS_TOOBIG = 1, 2      # enum bpf_check_mtu_ret
_SKB_GSO_UDP_L4 = 1 << 16


def _gso_network_seglen(skb: SkBuff) -> int:
    """``skb_gso_network_seglen``: the L3 + L4 headers and the payload of one segment."""
    assert skb.transport_header is not None
    l4 = 0
    if skb.gso_type & SKB_GSO_TCP:
        doff = skb.data[skb.transport_header + 12] >> 4 \
            if skb.transport_header + 12 < skb.len else 5
        l4 = doff * 4
    elif skb.gso_type & _SKB_GSO_UDP_L4:
        l4 = 8
    return skb.transport_header - skb.network_header + l4 + skb.gso_size
