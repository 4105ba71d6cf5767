"""The kernel-side state programs and maps share: memory, CPUs, time, randomness, pins.

An :class:`Env` plays the part of one booted kernel: it owns the virtual address space
(:class:`~tcemu.bpf.memory.Memory`) in which every map value and global lives, the number
of possible CPUs and the CPU a program runs on (per-CPU maps, ``bpf_get_smp_processor_id``),
the :class:`~tcemu.clock.VirtualClock`, a seeded PRNG (``bpf_get_prandom_u32``), the bpffs
pin namespace and the trace_printk pipe.  Everything non-deterministic in the kernel is
injected here, so the same inputs give the same outputs byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tcemu.bpf.memory import Memory
from tcemu.clock import VirtualClock

__all__ = ["DeviceInfo", "Env", "Task"]


@dataclass
class Task:
    """The task ``current`` is while a program runs (``bpf_get_current_*`` helpers)."""

    pid: int = 1000
    tgid: int = 1000
    uid: int = 0
    gid: int = 0
    comm: str = "tcemu"
    cgroup_id: int = 1          # cgroup v2 id (1 = the root cgroup)
    classid: int = 0            # net_cls.classid of the task's cgroup


@dataclass(frozen=True)
class DeviceInfo:
    """What helpers need of a net device (``check_mtu``, ``clone_redirect``): the datapath
    replaces this table with real netdevs."""

    ifindex: int
    name: str
    mtu: int
    hard_header_len: int = 14
    address: bytes = bytes(6)


def _loopback() -> dict[int, DeviceInfo]:
    return {1: DeviceInfo(1, "lo", 65536)}


@dataclass
class Env:
    """One emulated kernel.  Not thread-safe (neither are programs run in it)."""

    ncpus: int = 1
    cpu: int = 0
    seed: int = 0
    clock: VirtualClock = field(default_factory=VirtualClock)
    memory: Memory = field(default_factory=Memory)
    pins: dict[str, object] = field(default_factory=dict)   # bpffs: path -> map or program
    trace_pipe: list[str] = field(default_factory=list)      # trace_printk output lines
    task: Task = field(default_factory=Task)
    devices: dict[int, DeviceInfo] = field(default_factory=_loopback)
    timers: dict[int, object] = field(default_factory=dict)  # bpf_timer state by address
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        if self.ncpus < 1:
            raise ValueError("ncpus must be >= 1")
        if not 0 <= self.cpu < self.ncpus:
            raise ValueError(f"cpu {self.cpu} is not in 0..{self.ncpus - 1}")
        self.rng = random.Random(self.seed)

    def prandom_u32(self) -> int:
        return self.rng.getrandbits(32)

    def device_infos(self, skb: object) -> dict[int, DeviceInfo]:
        """The devices a helper run on ``skb`` sees (``bpf_check_mtu``: its namespace's);
        a plain environment has ``devices``."""
        return self.devices
