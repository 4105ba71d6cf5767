"""``bpf_fib_lookup`` against the namespace's route and neighbour tables
(``net/core/filter.c`` ``bpf_ipv4_fib_lookup``/``bpf_ipv6_fib_lookup``,
``bpf_skb_fib_lookup``).

``struct bpf_fib_lookup`` (64 bytes): family 0, l4_protocol 1, sport 2, dport 4,
tot_len/mtu_result 6, ifindex 8, tos/flowinfo/rt_metric 12, src 16 (v4 or v6), dst 32,
vlan proto/TCI or tbid 48, mark or smac 52 + dmac 58.  Order of the kernel's checks: the
device (-ENODEV), forwarding enabled on it (FWD_DISABLED), the lookup (BLACKHOLE,
UNREACHABLE, PROHIBIT, NOT_FWDED for local/other types), the MTU when ``tot_len`` is set
(FRAG_NEEDED), the source address with BPF_FIB_LOOKUP_SRC (NO_SRC_ADDR), the neighbour
unless SKIP_NEIGH (NO_NEIGH).  On success ifindex, rt_metric, dst (the gateway), the MACs
and mtu_result are written back.

KERNEL-DIFF: no policy rules beyond the default ones (local, then main): MARK is
accepted and ignored.
"""

from __future__ import annotations

import errno as err
import ipaddress
import struct
from typing import TYPE_CHECKING

from tcemu.route import RT_TABLE_MAIN

if TYPE_CHECKING:
    from tcemu.net.stack import Stack
    from tcemu.route import IpAddr
    from tcemu.skb import SkBuff

__all__ = ["fib_lookup"]

AF_INET, AF_INET6 = 2, 10
F_DIRECT, F_OUTPUT, F_SKIP_NEIGH, F_TBID, F_SRC = 1, 2, 4, 8, 16
(RET_SUCCESS, RET_BLACKHOLE, RET_UNREACHABLE, RET_PROHIBIT, RET_NOT_FWDED, RET_FWD_DISABLED,
 RET_UNSUPP_LWT, RET_NO_NEIGH, RET_FRAG_NEEDED, RET_NO_SRC_ADDR) = range(10)
_TYPES = {"blackhole": RET_BLACKHOLE, "unreachable": RET_UNREACHABLE,
          "prohibit": RET_PROHIBIT}


def fib_lookup(st: Stack, skb: SkBuff, params: bytearray, flags: int) -> int:
    """``bpf_ipv4_fib_lookup``/``bpf_ipv6_fib_lookup`` plus the MTU rule of
    ``bpf_skb_fib_lookup``; ``params`` is updated in place."""
    ns = st.ns_of(st.dev_of(skb))
    family = params[0]
    ifindex, = struct.unpack_from("<I", params, 8)
    dev = ns.by_index.get(ifindex)
    if dev is None:
        return -err.ENODEV
    if not ns.fib.ip_forward:
        return RET_FWD_DISABLED
    v6 = family == AF_INET6
    dst: IpAddr = ipaddress.IPv6Address(bytes(params[32:48])) if v6 else \
        ipaddress.IPv4Address(bytes(params[32:36]))
    if flags & F_DIRECT:
        # One table, no rules: main (or params->tbid, which is then zeroed: the same
        # bytes are the VLAN fields of the answer).
        table = RT_TABLE_MAIN
        if flags & F_TBID:
            table, = struct.unpack_from("<I", params, 48)
            params[48:52] = bytes(4)
        # IPv4 merges the local table into main (fib_trie, no custom rules); IPv6 does not.
        route = ns.fib.lookup(dst, table, with_local=not v6 and table == RT_TABLE_MAIN)
    else:
        route = ns.fib.lookup(dst)      # the default rules: local, then main
    if route is None:   # -ENETUNREACH from the lookup: NOT_FWDED
        return RET_NOT_FWDED
    if route.type != "unicast":
        return _TYPES.get(route.type, RET_NOT_FWDED)
    assert route.ifindex is not None
    out = ns.by_index[route.ifindex]
    tot_len, = struct.unpack_from("<H", params, 6)
    mtu = 0
    if tot_len:                         # check_mtu: ip_mtu_from_fib_result
        mtu = out.mtu
        if tot_len > mtu:
            struct.pack_into("<H", params, 6, mtu)
            return RET_FRAG_NEEDED
    struct.pack_into("<I", params, 12, route.metric)
    struct.pack_into("<I", params, 8, out.ifindex)
    if flags & F_SRC:
        src = ns.fib.prefsrc(route, dst)
        if src is None:
            return RET_NO_SRC_ADDR
        params[16:16 + len(src.packed)] = src.packed
    nexthop = route.via or dst
    params[32:32 + len(nexthop.packed)] = nexthop.packed
    if not flags & F_SKIP_NEIGH:
        mac = ns.fib.neigh(out.ifindex, nexthop)
        if mac is None:
            return RET_NO_NEIGH
        params[58:64], params[52:58] = mac, out.address
    # bpf_fib_set_fwd_params: no VLAN for the output, and the MTU when it was checked.
    params[48:52] = bytes(4)
    if mtu:
        struct.pack_into("<H", params, 6, mtu)
        return RET_SUCCESS
    # bpf_skb_fib_lookup without tot_len: is_skb_forwardable() on the output device.
    struct.pack_into("<H", params, 6, out.mtu)
    limit = out.mtu + out.hard_header_len + 4
    if not out.up or (skb.len > limit and not skb.gso_size):
        return RET_FRAG_NEEDED
    return RET_SUCCESS
