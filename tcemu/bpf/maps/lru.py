"""LRU_HASH and LRU_PERCPU_HASH maps (kernel/bpf/hashtab.c ``htab_lru_*``, bpf_lru_list.c).

An LRU map never fails an insert with E2BIG: it takes a free node and, when none is left,
evicts.  As in ``htab_lru_map_update_elem`` the node is taken *before* the flags are
checked, so even an update that then fails (EEXIST, ENOENT) or that replaces an existing
key may evict an element of a full map; the per-CPU variant skips this for BPF_EXIST
(``__htab_lru_percpu_map_update_elem``).  ``BPF_F_NO_COMMON_LRU`` gives every CPU its own
list of ``max_entries / ncpus`` nodes, ``max_entries`` being rounded up to a multiple of
the CPU count; an element belongs to the list of the CPU that created it, and only that
list is evicted from.  Host updates run on ``env.cpu``.

KERNEL-DIFF: the kernel's LRU is approximate: active/inactive lists with reference bits,
shrinking in batches of up to LOCAL_FREE_TARGET (128) nodes, per-CPU local free lists that
can strand nodes, so it may evict several elements at once and sometimes before the map is
full (6.18 keeps 13 of 17 keys inserted into a 16-entry map).  tcemu evicts exactly one
element, the least recently used, and only when the list is full.  "Used" means created
or updated (host or program) or looked up by a program; a host lookup does not count, as
the syscall lookup does not set the reference bit (``htab_lru_map_lookup_elem_sys``).
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT
from tcemu.bpf.maps.hash import Elem, HashMap
from tcemu.bpf.maps.spec import BPF_EXIST, BPF_F_NO_COMMON_LRU, BPF_NOEXIST, U32_MAX, MapSpec

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["LruHashMap", "LruPercpuHashMap"]


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: a hash map that evicts its least recently used element."""

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self._common = not spec.flags & BPF_F_NO_COMMON_LRU
        if self._common:
            self._lists: list[OrderedDict[bytes, None]] = [OrderedDict()]
            self._capacity = self.max_entries
        else:
            ncpus = env.ncpus
            rounded = -(-spec.max_entries // ncpus) * ncpus
            if rounded > U32_MAX:
                rounded = spec.max_entries // ncpus * ncpus
            self.max_entries = rounded
            self._lists = [OrderedDict() for _ in range(ncpus)]
            self._capacity = rounded // ncpus

    def _owner(self, cpu: int | None) -> int:
        if self._common:
            return 0
        return self.env.cpu if cpu is None else cpu

    # -- the recency lists ---------------------------------------------------------------------

    def _link(self, key: bytes, addr: int, obj: object = None, cpu: int = 0) -> Elem:
        elem = super()._link(key, addr, obj, cpu)
        self._lists[cpu][key] = None
        return elem

    def _unlink(self, elem: Elem) -> None:
        del self._lists[elem.cpu][elem.key]
        super()._unlink(elem)

    def _touch(self, elem: Elem) -> None:
        self._lists[elem.cpu].move_to_end(elem.key)

    def _take_node(self, owner: int) -> None:
        """``prealloc_lru_pop``: free a node of ``owner``'s list, evicting if it is full."""
        lru = self._lists[owner]
        if len(lru) >= self._capacity:
            self._unlink(self._elems[next(iter(lru))])

    def lru_order(self, cpu: int = 0) -> list[bytes]:
        """Keys from least to most recently used (of CPU ``cpu``'s list without a common LRU)."""
        return list(self._lists[0 if self._common else cpu])

    # -- core operations -----------------------------------------------------------------------

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        if flags > BPF_EXIST:
            return errno.EINVAL
        owner = self._owner(cpu)
        if not (self.PERCPU and flags == BPF_EXIST):
            self._take_node(owner)
        elem = self._elems.get(key)
        if elem is not None and flags == BPF_NOEXIST:
            return errno.EEXIST
        if elem is None and flags == BPF_EXIST:
            return errno.ENOENT
        if elem is None:
            self._link(key, self._new_region(value, cpu), cpu=owner)
            return 0
        self._replace(elem, value, cpu)
        if not self.PERCPU and elem.cpu != owner:   # the new node came from owner's list
            del self._lists[elem.cpu][key]
            elem.cpu = owner
            self._lists[owner][key] = None
        self._touch(elem)
        return 0

    def vm_lookup(self, key: bytes) -> int:
        elem = self._elems.get(key)
        if elem is None:
            return 0
        self._touch(elem)
        return super().vm_lookup(key)

    def vm_lookup_percpu(self, key: bytes, cpu: int) -> int:
        address = super().vm_lookup_percpu(key, cpu)
        if address:
            self._touch(self._elems[key])
        return address


class LruPercpuHashMap(LruHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH: an LRU hash with one value slot per CPU."""

    PERCPU = True
