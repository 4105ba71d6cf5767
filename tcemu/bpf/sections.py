"""ELF section name -> (program type, attach point): the one table.

The names libbpf and iproute2 give tc-related programs (libbpf ``section_defs``,
iproute2 ``lib/bpf_legacy.c``).  iproute2 attaches a program from *any* section with the
type the tc command line implies, so names tcemu does not know are SCHED_CLS programs;
names of program types tcemu does not emulate (XDP, kprobes, cgroup hooks, ...) are
rejected with a :class:`~tcemu.errors.LoadError` naming the section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tcemu.bpf.uapi import BpfProgType
from tcemu.errors import LoadError

__all__ = ["TAIL_CALL_SECTION", "SectionDef", "section_def"]


@dataclass(frozen=True)
class SectionDef:
    prog_type: BpfProgType
    attach: str          # "", "ingress", "egress", "tcx/ingress", ...


_EXACT: dict[str, SectionDef] = {
    "tc": SectionDef(BpfProgType.SCHED_CLS, ""),
    "tc/ingress": SectionDef(BpfProgType.SCHED_CLS, "tcx/ingress"),
    "tc/egress": SectionDef(BpfProgType.SCHED_CLS, "tcx/egress"),
    "tcx/ingress": SectionDef(BpfProgType.SCHED_CLS, "tcx/ingress"),
    "tcx/egress": SectionDef(BpfProgType.SCHED_CLS, "tcx/egress"),
    "netkit/primary": SectionDef(BpfProgType.SCHED_CLS, "netkit/primary"),
    "netkit/peer": SectionDef(BpfProgType.SCHED_CLS, "netkit/peer"),
    "classifier": SectionDef(BpfProgType.SCHED_CLS, ""),
    "action": SectionDef(BpfProgType.SCHED_ACT, ""),
    "socket": SectionDef(BpfProgType.SOCKET_FILTER, ""),
}
# libbpf prefixes that extend with "/anything".
_PREFIXES = {"classifier", "action", "socket", "tc"}
# Program types of other subsystems: recognised so that the error is precise.
_UNSUPPORTED = ("xdp", "kprobe", "kretprobe", "uprobe", "uretprobe", "tracepoint", "tp",
                "raw_tracepoint", "raw_tp", "tp_btf", "fentry", "fexit", "fmod_ret", "lsm",
                "iter", "struct_ops", "cgroup", "cgroup_skb", "sockops", "sk_skb", "sk_msg",
                "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local", "flow_dissector", "perf_event",
                "sk_lookup", "sk_reuseport", "syscall", "usdt", "ksyscall", "netfilter",
                "cgroup_sock", "cgroup_sock_addr", "sockopt", "sysctl", "lirc_mode2")
# iproute2's __section_tail(ID, IDX) -> "ID/IDX".
TAIL_CALL_SECTION = re.compile(r"^(\d+)/(\d+)$")


def section_def(name: str, *, symbol: str = "") -> SectionDef:
    """The program type of a program in section ``name``."""
    if name in _EXACT:
        return _EXACT[name]
    head = name.split("/", 1)[0]
    if head in _PREFIXES and "/" in name:
        return _EXACT[head]
    if head in _UNSUPPORTED or head.startswith(("cgroup", "xdp")):
        what = f" symbol '{symbol}'" if symbol else ""
        raise LoadError(f"load section '{name}'{what}: {head} programs are not supported by "
                        "tcemu (it emulates tc: SCHED_CLS, SCHED_ACT, SOCKET_FILTER)")
    return SectionDef(BpfProgType.SCHED_CLS, "")
