"""ARRAY and PERCPU_ARRAY maps (kernel/bpf/arraymap.c).

Storage.  An ARRAY is one region of ``max_entries`` values, each ``round_up(value_size, 8)``
bytes apart, zero-filled at creation, so ``bpf_map_lookup_elem`` returns
``base + index * stride`` and every update copies into that slot in place
(``copy_map_value``): a program holding the pointer sees host updates at once.  A
PERCPU_ARRAY is one region laid out ``[index][cpu]``, so an index's slots are exactly
the ABI layout a host lookup returns (``bpf_percpu_array_copy``) and a host update writes
all of it, padding included.

Semantics (measured on 6.18): a key is a u32 index; lookup of an index >= max_entries is
ENOENT; update checks flags (EINVAL), then the index (E2BIG), then BPF_NOEXIST (EEXIST,
since every element exists); delete is always EINVAL; get_next_key of None or of an index
>= max_entries gives 0 and of the last index ENOENT; lookup-and-delete and the delete
batches are ENOTSUPP.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, MapBase
from tcemu.bpf.maps.spec import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapSpec, round8

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["ArrayIndexMixin", "ArrayMap", "PercpuArrayMap"]


class ArrayIndexMixin(MapBase):
    """Index keys and the get_next_key walk every array-like map shares."""

    HOST_OPS = frozenset({"lookup", "update", "delete", "get_next_key", "lookup_batch",
                          "update_batch"})
    E2BIG_CAUSE = "index out of range"

    def _index(self, key: bytes) -> int:
        return int.from_bytes(key, "little")

    def _next_key(self, key: bytes | None) -> bytes | None:
        index = self._index(key) if key is not None else self.max_entries
        if index >= self.max_entries:
            return (0).to_bytes(4, "little")
        if index == self.max_entries - 1:
            return None
        return (index + 1).to_bytes(4, "little")

    def __len__(self) -> int:
        return self.max_entries

    def keys(self) -> Iterator[bytes]:
        for index in range(self.max_entries):
            yield index.to_bytes(4, "little")


class ArrayMap(ArrayIndexMixin):
    """BPF_MAP_TYPE_ARRAY: max_entries preallocated, zeroed values in one region."""

    PERCPU = False

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self._stride = round8(spec.value_size)
        self._ncpus = env.ncpus if self.PERCPU else 1
        self._slot = self._ncpus * self._stride     # bytes per index
        self._buf = bytearray(self.max_entries * self._slot)
        self.base = env.memory.add_region(self._buf, f"map {spec.name!r} values")

    def _footprint(self) -> int:
        ncpus = self.env.ncpus if self.PERCPU else 1
        return self.spec.max_entries * round8(self.spec.value_size) * ncpus

    @property
    def host_value_size(self) -> int:
        return self._ncpus * round8(self.value_size) if self.PERCPU else self.value_size

    def _lookup(self, key: bytes) -> bytes | None:
        index = self._index(key)
        if index >= self.max_entries:
            return None
        start = index * self._slot
        return bytes(self._buf[start:start + self.host_value_size])

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        if flags & ~BPF_F_LOCK > BPF_EXIST:
            return errno.EINVAL
        index = self._index(key)
        if index >= self.max_entries:
            return errno.E2BIG
        if flags & BPF_NOEXIST:
            return errno.EEXIST
        if flags & BPF_F_LOCK:
            return errno.EINVAL
        start = index * self._slot + (cpu * self._stride if cpu is not None and self.PERCPU
                                      else 0)
        self._buf[start:start + len(value)] = value
        return 0

    def _delete(self, key: bytes) -> int:
        return errno.EINVAL

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        self._readable("iterate")
        size = self.host_value_size
        for index in range(self.max_entries):
            start = index * self._slot
            yield index.to_bytes(4, "little"), bytes(self._buf[start:start + size])

    def vm_lookup(self, key: bytes) -> int:
        index = self._index(key)
        if index >= self.max_entries:
            return 0
        cpu = self.env.cpu if self.PERCPU else 0
        return self.base + index * self._slot + cpu * self._stride

    def vm_lookup_percpu(self, key: bytes, cpu: int) -> int:
        index = self._index(key)
        if not self.PERCPU or index >= self.max_entries or not 0 <= cpu < self._ncpus:
            return 0
        return self.base + index * self._slot + cpu * self._stride


class PercpuArrayMap(ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY: one value slot per CPU and index."""

    PERCPU = True
