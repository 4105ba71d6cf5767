"""More generic helpers: strings, cgroups, sockets, locks, memory probes.

``kernel/bpf/helpers.c``, ``kernel/trace/bpf_trace.c`` and ``net/core/filter.c``.  tcemu
models no sockets and no kernel memory: socket lookups find nothing (NULL), probes of
addresses outside program memory fail with -EFAULT and zero the destination, exactly as
the kernel's do for bad addresses.
"""

from __future__ import annotations

import errno as err

from tcemu.bpf import memory as mem
from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import RetType as R
from tcemu.bpf.helpers import helper
from tcemu.bpf.helpers.printk import render_printk
from tcemu.bpf.helpers.skb import skb_of
from tcemu.bpf.maps import map_from_handle
from tcemu.bpf.uapi import BpfFunc as F
from tcemu.bpf.vm import Vm

__all__: list[str] = []

M64 = 0xFFFF_FFFF_FFFF_FFFF
HZ = 250
OVERFLOW_UID = 65534
MAX_SNPRINTF_VARARGS = 12


@helper(F.snprintf, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO, A.PTR_TO_CONST_STR, A.PTR_TO_MEM,
        A.CONST_SIZE_OR_ZERO)
def snprintf(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_snprintf(str, size, fmt, data, data_len)``: bytes needed including the NUL."""
    if r5 % 8 or r5 > 8 * MAX_SNPRINTF_VARARGS:
        return -err.EINVAL
    fmt = bytearray()
    while len(fmt) < 1024:
        byte = vm.memory.read(r3 + len(fmt), 1)
        fmt += byte
        if byte == b"\0":
            break
    raw = vm.memory.read(r4, r5) if r5 else b""
    args = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
    pieces = render_printk(vm, bytes(fmt), args, max_args=len(args))
    if pieces is None:
        return -err.EINVAL
    # bstr_printf() counts every conversion's full length, except the pre-rendered pointer
    # conversions (%pI4, %pks, ...) met once the output is full: those count nothing.
    # KERNEL-DIFF: the kernel then also stops advancing through its argument buffer, so
    # later conversions read misplaced values (their lengths count); tcemu reads the right
    # ones.
    out = b""
    for text, prerendered in pieces:
        if prerendered and len(out) >= r2:
            continue
        out += text.encode("latin-1", "replace")
    if r2:
        chunk = out[:r2 - 1] + b"\0"
        vm.memory.write(r1, chunk)
    return len(out) + 1


# lib/ctype.c: the characters isspace() accepts (C whitespace and Latin-1 NBSP).
_SPACE = frozenset(b" \t\n\v\f\r\xa0")
_HEX = frozenset(b"0123456789abcdefABCDEF")
KSTRTOX_MAX = 63    # __bpf_strtoull copies at most sizeof(str) - 1 characters


def _parse_integer(text: bytes, base: int) -> tuple[int, int, bool]:
    """``_parse_integer``: (value modulo 2^64, digits consumed, overflowed)."""
    value, count, overflow = 0, 0, False
    for c in text:
        lc = c | 0x20
        if 0x30 <= c <= 0x39:
            digit = c - 0x30
        elif 0x61 <= lc <= 0x66:
            digit = lc - 0x61 + 10
        else:
            break
        if digit >= base:
            break
        if value >> 60 and value > (M64 - digit) // base:
            overflow = True
        value = (value * base + digit) & M64
        count += 1
    return value, count, overflow


def _strto(vm: Vm, buf: int, size: int, flags: int, res: int, signed: bool) -> int:
    """``bpf_strtol``/``bpf_strtoul`` over ``__bpf_strtoull`` (``kernel/bpf/helpers.c``):
    ``*res`` is zeroed first and written only on success; whitespace, then one '-', then at
    most 63 characters are parsed with the radix prefix rules of
    ``_parse_integer_fixup_radix``; the count of characters consumed is returned."""
    vm.memory.write(res, bytes(8))
    base = flags & 0x1F
    if flags & ~0x1F or base not in (0, 8, 10, 16) or size == 0:
        return -err.EINVAL
    data = vm.memory.read(buf, size)
    pos = 0
    while pos < size and data[pos] in _SPACE:
        pos += 1
    negative = pos < size and data[pos] == 0x2D
    if negative:
        pos += 1
    if pos == size:
        return -err.EINVAL
    text = data[pos:pos + KSTRTOX_MAX].split(b"\0", 1)[0] + b"\0\0\0"
    if base == 0:   # _parse_integer_fixup_radix
        octal_or_hex = 16 if text[1] | 0x20 == 0x78 and text[2] in _HEX else 8
        base = octal_or_hex if text[0] == 0x30 else 10
    prefix = 2 if base == 16 and text[0] == 0x30 and text[1] | 0x20 == 0x78 else 0
    value, count, overflow = _parse_integer(text[prefix:], base)
    if overflow:
        return -err.ERANGE
    if count == 0:
        return -err.EINVAL
    if signed:
        if negative:
            value = -value & M64
            if 0 < value < 1 << 63:      # (long long)-_res > 0
                return -err.ERANGE
        elif value >> 63:
            return -err.ERANGE
    elif negative:
        return -err.EINVAL
    vm.memory.write(res, value.to_bytes(8, "little"))
    return pos + prefix + count


@helper(F.strtol, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING, A.PTR_TO_LONG)
def strtol(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _strto(vm, r1, r2, r3, r4, True)


@helper(F.strtoul, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING, A.PTR_TO_LONG)
def strtoul(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _strto(vm, r1, r2, r3, r4, False)


@helper(F.strncmp, A.PTR_TO_MEM, A.CONST_SIZE, A.PTR_TO_CONST_STR)
def strncmp(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    for i in range(r2):
        a, b = vm.memory.read(r1 + i, 1)[0], vm.memory.read(r3 + i, 1)[0]
        if a != b:
            return (a > b) - (a < b)
        if a == 0:
            return 0
    return 0


@helper(F.jiffies64)
def jiffies64(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.clock.now_ns() * HZ // 1_000_000_000


@helper(F.get_current_cgroup_id)
def get_current_cgroup_id(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.task.cgroup_id


@helper(F.get_current_ancestor_cgroup_id, A.ANYTHING)
def get_current_ancestor_cgroup_id(vm: Vm, r1: int, r2: int, r3: int, r4: int,
                                   r5: int) -> int:
    # tcemu models one cgroup level: the root (level 0) is the task's cgroup.
    return vm.env.task.cgroup_id if r1 == 0 else 0


@helper(F.skb_ancestor_cgroup_id, A.PTR_TO_CTX, A.ANYTHING)
def skb_ancestor_cgroup_id(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    skb = skb_of(vm)
    return vm.env.task.cgroup_id if skb.has_sk and r2 == 0 else 0


@helper(F.skb_cgroup_classid, A.PTR_TO_CTX)
def skb_cgroup_classid(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.task.classid if skb_of(vm).has_sk else 0


@helper(F.get_socket_cookie, A.PTR_TO_CTX)
def get_socket_cookie(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # KERNEL-DIFF: the kernel hands out cookies from a global counter; ours is stable.
    return 1 if skb_of(vm).has_sk else 0


@helper(F.get_socket_uid, A.PTR_TO_CTX)
def get_socket_uid(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return vm.env.task.uid if skb_of(vm).has_sk else OVERFLOW_UID


@helper(F.get_netns_cookie, A.ANYTHING)
def get_netns_cookie(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 1  # the initial network namespace


@helper(F.spin_lock, A.ANYTHING, ret=R.VOID)
def spin_lock(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 0  # programs run one at a time in tcemu: a lock is always free


@helper(F.spin_unlock, A.ANYTHING, ret=R.VOID)
def spin_unlock(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 0


def _probe(vm: Vm, dst: int, size: int, src: int) -> int:
    try:
        data = vm.memory.read(src, size)
    except (IndexError, TypeError):
        vm.memory.zero(dst, size)
        return -err.EFAULT
    vm.memory.write(dst, data)
    return 0


def _probe_str(vm: Vm, dst: int, size: int, src: int) -> int:
    out = bytearray()
    try:
        while len(out) < size - 1:
            byte = vm.memory.read(src + len(out), 1)
            if byte == b"\0":
                break
            out += byte
    except (IndexError, TypeError):
        vm.memory.zero(dst, size)
        return -err.EFAULT
    vm.memory.write(dst, bytes(out) + b"\0")
    return len(out) + 1


@helper(F.probe_read_kernel, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING,
        gpl_only=True)
def probe_read_kernel(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _probe(vm, r1, r2, r3)


@helper(F.probe_read_user, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING,
        gpl_only=True)
def probe_read_user(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _probe(vm, r1, r2, r3)


@helper(F.probe_read_kernel_str, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING,
        gpl_only=True)
def probe_read_kernel_str(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _probe_str(vm, r1, r2, r3) if r2 else 0


@helper(F.probe_read_user_str, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING,
        gpl_only=True)
def probe_read_user_str(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _probe_str(vm, r1, r2, r3) if r2 else 0


def _null(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """No socket: tcemu has no socket table, so every lookup or cast finds nothing."""
    return 0


@helper(F.sk_fullsock, A.ANYTHING)
def sk_fullsock(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_sk_fullsock``: the socket itself when it is a full one.  The only socket
    tcemu models is BPF_PROG_TEST_RUN's dummy one (a full socket), in its own region."""
    if r1 >> 32 == mem.SOCK_RID and vm.memory.regions[mem.SOCK_RID]:
        return r1
    return 0


for _fid in (F.sk_lookup_tcp, F.sk_lookup_udp, F.skc_lookup_tcp, F.tcp_sock,
             F.get_listener_sock, F.skc_to_tcp6_sock, F.skc_to_tcp_sock,
             F.skc_to_tcp_timewait_sock, F.skc_to_tcp_request_sock, F.skc_to_udp6_sock,
             F.skc_to_unix_sock, F.skc_to_mptcp_sock, F.get_current_task,
             F.get_current_task_btf):
    helper(_fid, A.ANYTHING)(_null)


@helper(F.sk_release, A.ANYTHING)
def sk_release(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 0


@helper(F.map_lookup_percpu_elem, A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY, A.ANYTHING,
        ret=R.PTR_TO_MAP_VALUE_OR_NULL)
def map_lookup_percpu_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = map_from_handle(vm.env, r1)
    if m is None:
        raise IndexError(f"{r1:#x} is not a map handle")
    if r3 >= vm.env.ncpus:
        return 0
    return m.vm_lookup_percpu(vm.memory.read(r2, m.spec.key_size), r3)
