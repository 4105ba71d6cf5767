"""PERF_EVENT_ARRAY maps (kernel/bpf/arraymap.c ``perf_event_array_map_ops``,
kernel/trace/bpf_trace.c ``__bpf_perf_event_output``): per-CPU event streams.

A slot holds a perf event opened on one CPU.  tcemu has no perf fds, so a slot holds the
number of the CPU its event is on: the host ``update`` takes that CPU as a u32 (EBADF when
there is no such CPU), ``delete`` closes the slot.  A new map starts with slot ``i`` open
on CPU ``i`` for every CPU (what libbpf's ``perf_buffer__new`` sets up) — KERNEL-DIFF: a
kernel map starts empty.  Host lookup is ENOTSUPP (there is no ``map_fd_sys_lookup_elem``);
the other fd-array rules are in :mod:`tcemu.bpf.maps.prog_array`.

``bpf_perf_event_output`` (:meth:`PerfEventArrayMap.vm_output`): the low 32 bits of the
flags select the slot, ``BPF_F_CURRENT_CPU`` the running CPU's index; an index >=
max_entries is -E2BIG, an empty slot -ENOENT, an event on another CPU -EOPNOTSUPP.  The
helper validates the other flag bits (and the skb variant's ``BPF_F_CTXLEN_MASK``) and
passes the complete sample.  Samples are kept in order, without a size limit, as
:class:`PerfRecord`\\ s (KERNEL-DIFF: no lost-sample accounting).  ``raw`` is what a perf
reader sees: the kernel pads PERF_SAMPLE_RAW so that ``4 + size`` is a multiple of 8.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, Buffer
from tcemu.bpf.maps.prog_array import FdArrayMixin
from tcemu.bpf.maps.spec import BPF_ANY, BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK, MapSpec

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["PerfEventArrayMap", "PerfRecord"]


@dataclass(frozen=True)
class PerfRecord:
    """One ``bpf_perf_event_output`` sample."""

    cpu: int
    data: bytes

    @property
    def raw(self) -> bytes:
        """The PERF_SAMPLE_RAW payload a reader gets, zero-padded to ``(4 + n) % 8 == 0``."""
        return self.data + bytes(-(len(self.data) + 4) % 8)


class PerfEventArrayMap(FdArrayMixin):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: slot -> perf event on a CPU, plus the samples."""

    HOST_OPS = frozenset({"update", "delete", "get_next_key"})

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        for cpu in range(min(env.ncpus, self.max_entries)):
            self._slots[cpu] = cpu
        self._records: list[PerfRecord] = []

    def update(self, key: Buffer, value: Buffer, flags: int = BPF_ANY) -> None:
        """Open slot ``key`` on the CPU given as a u32 ``value``."""
        self._set_slot(key, self._value(value, "update element of"), flags)

    def _accept(self, value: object) -> tuple[int, str]:
        assert isinstance(value, bytes)
        cpu = int.from_bytes(value, "little")
        if cpu >= self.env.ncpus:
            return errno.EBADF, f"no perf event on cpu {cpu}"
        return 0, ""

    def _stored(self, value: object) -> object:
        assert isinstance(value, bytes)
        return int.from_bytes(value, "little")

    def vm_output(self, data: bytes, flags: int) -> int:
        """``bpf_perf_event_output`` into the slot the flags select."""
        index = flags & BPF_F_INDEX_MASK
        cpu = self.env.cpu
        if index == BPF_F_CURRENT_CPU:
            index = cpu
        if index >= self.max_entries:
            return -errno.E2BIG
        event_cpu = self._slots.get(index)
        if event_cpu is None:
            return -errno.ENOENT
        if event_cpu != cpu:
            return -errno.EOPNOTSUPP
        self._records.append(PerfRecord(cpu, bytes(data)))
        return 0

    def records(self, cpu: int | None = None) -> list[PerfRecord]:
        """The samples so far (of one CPU, or all in emission order), not consumed."""
        return [r for r in self._records if cpu is None or r.cpu == cpu]

    def drain(self, cpu: int | None = None) -> list[PerfRecord]:
        """Consume and return the samples of one CPU (or all)."""
        taken = self.records(cpu)
        self._records = [r for r in self._records if cpu is not None and r.cpu != cpu]
        return taken
