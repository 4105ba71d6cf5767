"""Packet helpers of SCHED_CLS/SCHED_ACT (and the skb loads of SOCKET_FILTER).

``net/core/filter.c``: byte loads and stores, checksum replacement and the checksum
state they maintain (``tcemu.csum``, kernel-semantics.md sections 4.2-4.4 and 5), hash
helpers, packet-type change, redirect bookkeeping.  The skb is the one the running
program's context describes (``vm.ctx.skb``).  Helpers that need netdevs or reshape the
packet beyond these arrive with the datapath.
"""

from __future__ import annotations

import errno as err

from tcemu import csum
from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import helper
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm
from tcemu.errors import ExecutionError
from tcemu.skb import (
    CHECKSUM_COMPLETE,
    CHECKSUM_NONE,
    CHECKSUM_PARTIAL,
    CHECKSUM_UNNECESSARY,
    SkBuff,
    skb_flow_hash,
    skb_postpull_rcsum,
    skb_postpush_rcsum,
)

__all__: list[str] = []

INT_MAX = 0x7FFF_FFFF
ENOTSUPP = 524
BPF_F_RECOMPUTE_CSUM, BPF_F_INVALIDATE_HASH = 1, 2
BPF_F_HDR_FIELD_MASK = 0xF
BPF_F_PSEUDO_HDR, BPF_F_MARK_MANGLED_0, BPF_F_MARK_ENFORCE, BPF_F_IPV6 = 0x10, 0x20, 0x40, 0x80
BPF_F_INGRESS = 1
TC_ACT_SHOT, TC_ACT_REDIRECT = 2, 7
CSUM_MANGLED_0 = 0xFFFF
LO_IFINDEX = 1


def skb_of(vm: Vm) -> SkBuff:
    skb = getattr(vm.ctx, "skb", None)
    if not isinstance(skb, SkBuff):
        raise ExecutionError("this helper needs an skb context (run the program on a packet)",
                             pc=-1)
    return skb


@helper(F.skb_load_bytes, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE)
def skb_load_bytes(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, offset, size = skb_of(vm), r2 & 0xFFFF_FFFF, r4 & 0xFFFF_FFFF
    if offset > INT_MAX or offset + size > skb.len:
        vm.memory.zero(r3, size)
        return -err.EFAULT
    vm.memory.write(r3, bytes(skb.data[offset:offset + size]))
    return 0


@helper(F.skb_load_bytes_relative, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_UNINIT_MEM,
        A.CONST_SIZE, A.ANYTHING)
def skb_load_bytes_relative(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, offset, size, start = skb_of(vm), r2 & 0xFFFF_FFFF, r4 & 0xFFFF_FFFF, r5 & 0xFFFF_FFFF
    base = {0: skb.mac_header, 1: skb.network_header}.get(start)
    at = (base or 0) + offset
    if base is None or offset > 0xFFFF or at < -len(skb.head) or at + size > skb.len:
        vm.memory.zero(r3, size)
        return -err.EFAULT
    window = bytes(skb.head) + bytes(skb.data)
    vm.memory.write(r3, window[len(skb.head) + at:len(skb.head) + at + size])
    return 0


@helper(F.skb_store_bytes, A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING,
        changes_pkt_data=True)
def skb_store_bytes(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, offset, size, flags = skb_of(vm), r2 & 0xFFFF_FFFF, r4 & 0xFFFF_FFFF, r5
    if flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH):
        return -err.EINVAL
    if offset > INT_MAX or offset + size > skb.len:
        return -err.EFAULT
    new = vm.memory.read(r3, size)
    if flags & BPF_F_RECOMPUTE_CSUM:
        skb_postpull_rcsum(skb, bytes(skb.data[offset:offset + size]), offset)
    skb.data[offset:offset + size] = new
    if flags & BPF_F_RECOMPUTE_CSUM:
        skb_postpush_rcsum(skb, new, offset)
    if flags & BPF_F_INVALIDATE_HASH:
        skb.clear_hash()
    return 0


def _field(skb: SkBuff, offset: int) -> int:
    return int.from_bytes(skb.data[offset:offset + 2], "little")


def _set_field(skb: SkBuff, offset: int, value: int) -> None:
    skb.data[offset:offset + 2] = (value & 0xFFFF).to_bytes(2, "little")


@helper(F.l3_csum_replace, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, A.ANYTHING, A.ANYTHING,
        changes_pkt_data=True)
def l3_csum_replace(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, offset, flags = skb_of(vm), r2 & 0xFFFF_FFFF, r5
    if flags & ~BPF_F_HDR_FIELD_MASK:
        return -err.EINVAL
    if offset > 0xFFFF or offset & 1 or offset + 2 > skb.len:
        return -err.EFAULT
    check, size = _field(skb, offset), flags & BPF_F_HDR_FIELD_MASK
    if size == 0:
        if r3:
            return -err.EINVAL
        _set_field(skb, offset, csum.by_diff(check, r4))
    elif size == 2:
        _set_field(skb, offset, csum.replace2(check, r3 & 0xFFFF, r4 & 0xFFFF))
    elif size == 4:
        _set_field(skb, offset, csum.replace4(check, r3, r4))
    else:
        return -err.EINVAL
    return 0


def _l4_replace(skb: SkBuff, check: int, old: int, new: int, size: int, pseudo: bool,
                ipv6: bool) -> int | None:
    """inet_proto_csum_replace{4,_by_diff}: the new field, updating skb->csum; None: keep."""
    if skb.ip_summed != CHECKSUM_PARTIAL:
        field = csum.by_diff(check, new) if size == 0 else csum.replace4(check, old, new)
        if skb.ip_summed == CHECKSUM_COMPLETE and pseudo:
            if size == 0:
                if not ipv6:
                    skb.csum = ~csum.sub32(new, skb.csum) & 0xFFFF_FFFF
            else:
                skb.csum = ~csum.add32(csum.sub32(~skb.csum & 0xFFFF_FFFF, old), new) \
                    & 0xFFFF_FFFF
        return field
    if not pseudo:
        return None
    if size == 0:
        return ~csum.fold(csum.add32(new, check)) & 0xFFFF
    return ~csum.fold(csum.add32(csum.sub32(check, old), new)) & 0xFFFF


@helper(F.l4_csum_replace, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, A.ANYTHING, A.ANYTHING,
        changes_pkt_data=True)
def l4_csum_replace(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, offset, flags = skb_of(vm), r2 & 0xFFFF_FFFF, r5
    allowed = BPF_F_HDR_FIELD_MASK | BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | \
        BPF_F_MARK_ENFORCE | BPF_F_IPV6
    if flags & ~allowed:
        return -err.EINVAL
    if offset > 0xFFFF or offset & 1 or offset + 2 > skb.len:
        return -err.EFAULT
    check = _field(skb, offset)
    is_mmzero = bool(flags & BPF_F_MARK_MANGLED_0)
    if is_mmzero and not flags & BPF_F_MARK_ENFORCE and check == 0:
        return 0
    size = flags & BPF_F_HDR_FIELD_MASK
    if size not in (0, 2, 4) or (size == 0 and r3):
        return -err.EINVAL
    width = 0xFFFF if size == 2 else 0xFFFF_FFFF
    field = _l4_replace(skb, check, r3 & width, r4 & width, size,
                        bool(flags & BPF_F_PSEUDO_HDR), bool(flags & BPF_F_IPV6))
    if field is None:
        return 0
    if is_mmzero and field == 0:
        field = CSUM_MANGLED_0
    _set_field(skb, offset, field)
    return 0


@helper(F.csum_diff, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO,
        A.ANYTHING)
def csum_diff(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    seed = r5 & 0xFFFF_FFFF
    old = vm.memory.read(r1, r2) if r2 else b""
    new = vm.memory.read(r3, r4) if r4 else b""
    if old and new:
        return csum.from32to16(csum.sub32(csum.partial(new, seed), csum.partial(old)))
    if new:
        return csum.from32to16(csum.partial(new, seed))
    if old:
        return csum.from32to16(~csum.partial(old, ~seed & 0xFFFF_FFFF) & 0xFFFF_FFFF)
    return csum.from32to16(seed)


@helper(F.csum_update, A.PTR_TO_CTX, A.ANYTHING)
def csum_update(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    if skb.ip_summed != CHECKSUM_COMPLETE:
        return -ENOTSUPP
    skb.csum = csum.add32(skb.csum, r2 & 0xFFFF_FFFF)
    return skb.csum


@helper(F.csum_level, A.PTR_TO_CTX, A.ANYTHING)
def csum_level(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    level = skb.csum_level
    if r2 == 0:  # BPF_CSUM_LEVEL_QUERY
        return level if skb.ip_summed == CHECKSUM_UNNECESSARY else -err.EACCES
    if r2 == 1:  # INC
        if skb.ip_summed == CHECKSUM_NONE:
            skb.ip_summed, level = CHECKSUM_UNNECESSARY, 0
        elif skb.ip_summed == CHECKSUM_UNNECESSARY:
            level = min(level + 1, 3)
    elif r2 == 2:  # DEC
        if skb.ip_summed == CHECKSUM_UNNECESSARY:
            if level == 0:
                skb.ip_summed = CHECKSUM_NONE
            level = max(level - 1, 0)
    elif r2 == 3:  # RESET
        if skb.ip_summed == CHECKSUM_UNNECESSARY:
            skb.ip_summed, level = CHECKSUM_NONE, 0
    else:
        return -err.EINVAL
    skb.csum_level = level
    return 0


def flow_hash(vm: Vm, skb: SkBuff) -> int:
    """A flow hash keyed by the environment's seed (:func:`tcemu.skb.skb_flow_hash`)."""
    return skb_flow_hash(skb, vm.env.seed)


@helper(F.get_hash_recalc, A.PTR_TO_CTX)
def get_hash_recalc(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    if not (skb.l4_hash or skb.sw_hash):     # skb_get_hash: only when no hash is set
        skb.set_sw_hash(flow_hash(vm, skb), True)
    return skb.hash


@helper(F.set_hash_invalid, A.PTR_TO_CTX)
def set_hash_invalid(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb_of(vm).clear_hash()
    return 0


@helper(F.set_hash, A.PTR_TO_CTX, A.ANYTHING)
def set_hash(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb_of(vm).set_sw_hash(r2, True)
    return 0


@helper(F.skb_change_type, A.PTR_TO_CTX, A.ANYTHING)
def skb_change_type(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb, new = skb_of(vm), r2 & 0xFFFF_FFFF
    if skb.pkt_type > 3 or new > 3:
        return -err.EINVAL
    skb.pkt_type = new
    return 0


@helper(F.skb_pull_data, A.PTR_TO_CTX, A.ANYTHING, changes_pkt_data=True)
def skb_pull_data(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # tcemu's skbs are always linear and private: only the length check remains.
    return -err.ENOMEM if (r2 & 0xFFFF_FFFF) > skb_of(vm).len else 0


@helper(F.get_cgroup_classid, A.PTR_TO_CTX)
def get_cgroup_classid(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # At a real tc hook BH is disabled, so the kernel reads the skb's full socket; the
    # network's environment says so through its hook (section 8).  test_run: the caller.
    hook = getattr(vm.env, "cgroup_classid", None)
    if hook is not None:
        classid: int = hook(skb_of(vm))
        return classid
    return vm.env.task.classid


@helper(F.get_route_realm, A.PTR_TO_CTX)
def get_route_realm(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return skb_of(vm).realm  # dst->tclassid; 0 without a route (tc ingress, test_run)


@helper(F.skb_cgroup_id, A.PTR_TO_CTX)
def skb_cgroup_id(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.task.cgroup_id if skb_of(vm).has_sk else 0


def _record_redirect(vm: Vm, ifindex: int, flags: int, kind: str,
                     nexthop: bytes = b"") -> int:
    vm.state.redirect = (kind, ifindex & 0xFFFF_FFFF, flags)
    # bpf_redirect_info.nh: the network's environment keeps the redirect_neigh nexthop.
    hook = getattr(vm.env, "set_redirect_nexthop", None)
    if hook is not None:
        hook(nexthop)
    return TC_ACT_REDIRECT


@helper(F.redirect, A.ANYTHING, A.ANYTHING)
def redirect(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r2 & ~BPF_F_INGRESS:
        return TC_ACT_SHOT
    return _record_redirect(vm, r1, r2, "redirect")


@helper(F.redirect_peer, A.ANYTHING, A.ANYTHING)
def redirect_peer(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r2:
        return TC_ACT_SHOT
    return _record_redirect(vm, r1, r2, "peer")


@helper(F.redirect_neigh, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING)
def redirect_neigh(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r4 or (r2 and r3 < 20) or (not r2 and r3):
        return TC_ACT_SHOT
    nexthop = vm.memory.read(r2, 20) if r2 else b""
    return _record_redirect(vm, r1, 0, "neigh", nexthop)


@helper(F.clone_redirect, A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING)
def clone_redirect(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r3 & ~BPF_F_INGRESS:
        return -err.EINVAL
    skb = skb_of(vm)
    if skb.gso_size and not skb.gso_type:
        return -err.EBADMSG  # skb_is_gso() without a gso_type: __bpf_redirect refuses it
    transmit = getattr(vm.env, "clone_redirect", None)
    if transmit is not None:
        result: int = transmit(vm, skb_of(vm), r2 & 0xFFFF_FFFF, r3)
        return result
    # Without a network model only lo exists, where the clone is sent and dropped.
    return 0 if r2 & 0xFFFF_FFFF == LO_IFINDEX else -err.EINVAL


BPF_FIB_LOOKUP_FLAGS = 1 | 2 | 4 | 8 | 16 | 32
BPF_FIB_LOOKUP_DIRECT, BPF_FIB_LOOKUP_TBID = 1, 8
BPF_FIB_LKUP_RET_NOT_FWDED = 4
FIB_PARAMS_SIZE = 64


@helper(F.fib_lookup, A.PTR_TO_CTX, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING)
def fib_lookup(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_skb_fib_lookup``: the network's route and neighbour tables answer
    (``Env.fib_lookup``, provided by :mod:`tcemu.net`)."""
    skb, flags = skb_of(vm), r4
    if flags & ~BPF_FIB_LOOKUP_FLAGS or r3 < FIB_PARAMS_SIZE:
        return -err.EINVAL
    params = bytearray(vm.memory.read(r2, FIB_PARAMS_SIZE))
    if params[0] not in (2, 10):  # AF_INET, AF_INET6
        return -err.EAFNOSUPPORT
    hook = getattr(vm.env, "fib_lookup", None)
    if hook is None:
        # KERNEL-DIFF: without a network model there is no route table to consult.
        return -err.ENODEV
    rc: int = hook(skb, params, flags)
    vm.memory.write(r2, bytes(params))
    return rc
