"""More generic helpers: strings, cgroups, sockets, locks, memory probes.

``kernel/bpf/helpers.c``, ``kernel/trace/bpf_trace.c`` and ``net/core/filter.c``.  tcemu
models no sockets and no kernel memory: socket lookups find nothing (NULL), probes of
addresses outside program memory fail with -EFAULT and zero the destination, exactly as
the kernel's do for bad addresses.
"""

from __future__ import annotations

import errno as err

from tcemu.bpf.helpers import ArgType as A
from tcemu.bpf.helpers import RetType as R
from tcemu.bpf.helpers import helper
from tcemu.bpf.helpers.printk import format_printk
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
    text = format_printk(vm, bytes(fmt), args, max_args=len(args))
    if text is None:
        return -err.EINVAL
    out = text.encode("latin-1", "replace")
    if r2:
        chunk = out[:r2 - 1] + b"\0"
        vm.memory.write(r1, chunk)
    return len(out) + 1


def _digits(text: bytes, base: int) -> tuple[int, int] | None:
    """Parse like ``__bpf_strtoull``: optional 0x/0 prefix per base; (value, length)."""
    pos = 0
    if base in (0, 16) and text[:2].lower() == b"0x":
        base, pos = 16, 2
    elif base == 0:
        base = 8 if text[:1] == b"0" else 10
    start = pos
    value = 0
    while pos < len(text):
        ch = chr(text[pos]).lower()
        digit = int(ch, 36) if ch.isalnum() else 99
        if digit >= base:
            break
        value = value * base + digit
        if value > M64:
            return None
        pos += 1
    if pos == start:
        return None
    return value, pos


def _strto(vm: Vm, buf: int, size: int, flags: int, res: int, signed: bool) -> int:
    base = flags & 0x1F
    if flags & ~0x1F or base not in (0, 8, 10, 16) or size == 0:
        return -err.EINVAL
    text = vm.memory.read(buf, size).split(b"\0", 1)[0]
    body = text.lstrip(b" \t\n\r\v\f")
    skipped = len(text) - len(body)
    negative = body[:1] == b"-"
    if negative:
        if not signed:
            return -err.EINVAL
        body, skipped = body[1:], skipped + 1
    parsed = _digits(body, base)
    if parsed is None:
        return -err.ERANGE if body[:1].isdigit() else -err.EINVAL
    value, length = parsed
    if signed and value > (1 << 63) - (0 if negative else 1):
        return -err.ERANGE
    result = -value if negative else value
    vm.memory.write(res, (result & M64).to_bytes(8, "little"))
    return skipped + length


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


for _fid in (F.sk_lookup_tcp, F.sk_lookup_udp, F.skc_lookup_tcp, F.sk_fullsock, F.tcp_sock,
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
