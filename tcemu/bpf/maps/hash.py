"""HASH and PERCPU_HASH maps (kernel/bpf/hashtab.c), and the element list LRU maps share.

Storage.  Every element owns one region of ``env.memory`` holding its value (per-CPU maps:
``ncpus`` slots of ``round_up(value_size, 8)`` bytes, the layout a host lookup returns), so
``bpf_map_lookup_elem`` returns a pointer a program reads and writes in place.

Update semantics follow ``htab_map_update_elem``: flags first (anything but BPF_ANY,
BPF_NOEXIST, BPF_EXIST is EINVAL, BPF_F_LOCK too since there is no bpf_spin_lock), then
EEXIST/ENOENT from ``check_flags``, then E2BIG when a new key does not fit.  A non-LOCK
update of an existing key *replaces* the element: the value gets a new region and the old
one is released, so a program that looked the old value up keeps reading the old bytes
until its run ends (RCU).  KERNEL-DIFF: a preallocated kernel map may hand the old element
to the very next update, so such a program could even see foreign bytes; tcemu keeps it
stable.  Per-CPU hashes update in place (``pcpu_copy_value``), as the kernel does.  A new
element created by a program on one CPU starts zeroed on every other CPU
(``pcpu_init_value``); a host update writes all CPUs' slots, padding included
(``copy_map_value_long``).

Order.  KERNEL-DIFF: the kernel walks buckets in jhash order with a random seed; tcemu
walks elements in insertion order (a replaced element keeps its place).  get_next_key of a
missing key restarts from the first element, as in the kernel.  Batch cursors are opaque
8-byte-stamp-plus-key tokens instead of bucket numbers, and a batch never fails with
ENOSPC (tcemu has no buckets that must be copied whole).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import ALL_HOST_OPS, DEFAULT_MEMORY_LIMIT, BatchResult, MapBase
from tcemu.bpf.maps.errors import KeySizeError
from tcemu.bpf.maps.spec import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapSpec, round8

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["HashMap", "PercpuHashMap"]


@dataclass(slots=True, eq=False)
class Elem:
    """One element: its key, value region (0 for map-in-map), insertion stamp, links."""

    key: bytes
    addr: int
    stamp: int
    obj: object = None                  # the inner map of a HASH_OF_MAPS element
    prev: Elem | None = None
    next: Elem | None = None


class HashMap(MapBase):
    """BPF_MAP_TYPE_HASH: key -> value, up to max_entries elements."""

    HOST_OPS = ALL_HOST_OPS | {"lookup_and_delete_batch"}
    PERCPU = False

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self._memory = env.memory
        self._ncpus = env.ncpus
        self._stride = round8(spec.value_size)
        self._region_name = f"map {spec.name!r} value"
        self._elems: dict[bytes, Elem] = {}
        self._head: Elem | None = None
        self._tail: Elem | None = None
        self._stamp = 0

    @property
    def host_value_size(self) -> int:
        return self._ncpus * round8(self.value_size) if self.PERCPU else self.value_size

    def __len__(self) -> int:
        return len(self._elems)

    # -- the element list ------------------------------------------------------------------

    def _link(self, key: bytes, addr: int, obj: object = None) -> Elem:
        self._stamp += 1
        elem = Elem(key, addr, self._stamp, obj, self._tail, None)
        if self._tail is None:
            self._head = elem
        else:
            self._tail.next = elem
        self._tail = elem
        self._elems[key] = elem
        return elem

    def _unlink(self, elem: Elem) -> None:
        del self._elems[elem.key]
        if elem.prev is None:
            self._head = elem.next
        else:
            elem.prev.next = elem.next
        if elem.next is None:
            self._tail = elem.prev
        else:
            elem.next.prev = elem.prev
        if elem.addr:
            self._memory.release(elem.addr)

    # -- value storage -----------------------------------------------------------------------

    def _new_region(self, value: bytes, cpu: int | None) -> int:
        """A region for a new element's value (host: ABI bytes; VM: this CPU's value)."""
        if not self.PERCPU:
            return self._memory.add_region(bytearray(value), self._region_name)
        if cpu is None:
            buf = bytearray(value)
        else:
            buf = bytearray(self._ncpus * self._stride)
            buf[cpu * self._stride:cpu * self._stride + len(value)] = value
        return self._memory.add_region(buf, self._region_name)

    def _replace(self, elem: Elem, value: bytes, cpu: int | None) -> None:
        if not self.PERCPU:
            old = elem.addr
            elem.addr = self._memory.add_region(bytearray(value), self._region_name)
            self._memory.release(old)
            return
        buf = self._memory.regions[elem.addr >> 32]
        assert isinstance(buf, bytearray)
        if cpu is None:
            buf[:] = value
        else:
            buf[cpu * self._stride:cpu * self._stride + len(value)] = value

    def _value_of(self, elem: Elem) -> bytes:
        return bytes(self._memory.regions[elem.addr >> 32])

    # -- core operations ---------------------------------------------------------------------

    def _lookup(self, key: bytes) -> bytes | None:
        elem = self._elems.get(key)
        return None if elem is None else self._value_of(elem)

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        elem = self._elems.get(key)
        err = self._check_flags(elem, flags)
        if err:
            return err
        if elem is not None:
            self._replace(elem, value, cpu)
        else:
            self._link(key, self._new_region(value, cpu))
        return 0

    def _check_flags(self, elem: Elem | None, flags: int) -> int:
        """Flag validation, ``check_flags`` and the full-map check of htab_map_update_elem."""
        if flags & ~BPF_F_LOCK > BPF_EXIST or flags & BPF_F_LOCK:
            return errno.EINVAL
        if elem is not None:
            return errno.EEXIST if flags == BPF_NOEXIST else 0
        if flags == BPF_EXIST:
            return errno.ENOENT
        return errno.E2BIG if len(self._elems) >= self.max_entries else 0

    def _delete(self, key: bytes) -> int:
        elem = self._elems.get(key)
        if elem is None:
            return errno.ENOENT
        self._unlink(elem)
        return 0

    def _next_key(self, key: bytes | None) -> bytes | None:
        elem = self._elems.get(key) if key is not None else None
        nxt = self._head if elem is None else elem.next
        return None if nxt is None else nxt.key

    def _pop(self, key: bytes) -> bytes | int:
        elem = self._elems.get(key)
        if elem is None:
            return errno.ENOENT
        value = self._value_of(elem)
        self._unlink(elem)
        return value

    # -- host iteration and batches --------------------------------------------------------

    def _walk(self, start: Elem | None = None) -> Iterator[Elem]:
        elem = self._head if start is None else start
        while elem is not None:
            nxt = elem.next
            yield elem
            elem = nxt

    def keys(self) -> Iterator[bytes]:
        for elem in list(self._walk()):
            yield elem.key

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        self._readable("iterate")
        for elem in list(self._walk()):
            if self._elems.get(elem.key) is elem:
                yield elem.key, self._value_of(elem)

    def _resume(self, cursor: bytes | None, verb: str) -> Elem | None:
        """The element a batch cursor points at (the first not yet walked)."""
        if cursor is None:
            return self._head
        if len(cursor) != 8 + self.key_size:
            raise KeySizeError(f"{verb} map {self.name!r}: batch cursor", got=len(cursor),
                               expected=8 + self.key_size)
        stamp = int.from_bytes(cursor[:8], "little")
        elem = self._elems.get(cursor[8:])
        if elem is not None and elem.stamp == stamp:
            return elem
        return next((e for e in self._walk() if e.stamp > stamp), None)

    def _batch(self, cursor: bytes | None, count: int, flags: int, verb: str,
               delete: bool) -> BatchResult:
        self._supports("lookup_and_delete_batch" if delete else "lookup_batch", verb)
        self._batch_flags(verb, flags)
        self._readable(verb)
        if delete:
            self._writable(verb)
        if count <= 0:
            return [], cursor
        out: list[tuple[bytes, bytes]] = []
        elem = self._resume(cursor, verb)
        while elem is not None and len(out) < count:
            nxt = elem.next
            out.append((elem.key, self._value_of(elem)))
            if delete:
                self._unlink(elem)
            elem = nxt
        if elem is None:
            return out, None
        return out, elem.stamp.to_bytes(8, "little") + elem.key

    def lookup_batch(self, cursor: bytes | None, count: int, flags: int = 0) -> BatchResult:
        return self._batch(cursor, count, flags, "look up batch of", delete=False)

    def lookup_and_delete_batch(self, cursor: bytes | None, count: int,
                                flags: int = 0) -> BatchResult:
        return self._batch(cursor, count, flags, "look up and delete batch of", delete=True)

    # -- in-VM API ----------------------------------------------------------------------------

    def vm_lookup(self, key: bytes) -> int:
        elem = self._elems.get(key)
        if elem is None:
            return 0
        return elem.addr + self.env.cpu * self._stride if self.PERCPU else elem.addr

    def vm_lookup_percpu(self, key: bytes, cpu: int) -> int:
        if not self.PERCPU or not 0 <= cpu < self._ncpus:
            return 0
        elem = self._elems.get(key)
        return 0 if elem is None else elem.addr + cpu * self._stride


class PercpuHashMap(HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: one value slot per possible CPU."""

    PERCPU = True
