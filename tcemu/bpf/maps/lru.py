"""LRU_HASH and LRU_PERCPU_HASH maps (kernel/bpf/hashtab.c ``htab_lru_*``).

An LRU map never fails an insert with E2BIG: every update first takes a node from the LRU
(``prealloc_lru_pop``), which evicts elements when no node is free, *then* checks the
flags, so even an update that fails (EEXIST, ENOENT) or that replaces an existing key may
evict -- possibly the very key being updated.  A failed update gives its node back; a
replacing one gives back the old element's node and marks the new one referenced.  The
per-CPU variant updates existing keys in place (marking them referenced) and takes no node
for BPF_EXIST (``__htab_lru_percpu_map_update_elem``).

Which elements are evicted follows the kernel's approximate LRU exactly
(:mod:`tcemu.bpf.maps.lru_list`, ``kernel/bpf/bpf_lru_list.c``): active/inactive lists
with reference bits, per-CPU local free and pending lists, batches of ``target_free``
nodes, ``BPF_F_NO_COMMON_LRU`` lists of ``max_entries / ncpus`` nodes per CPU
(``max_entries`` rounded up to a multiple of the CPU count).  Program lookups
(``bpf_map_lookup_elem``, ``bpf_map_lookup_percpu_elem``) set the reference bit; host
lookups do not (``htab_lru_map_lookup_elem_sys``).  Host updates run on ``env.cpu``, as a
syscall runs on the CPU of its caller.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT
from tcemu.bpf.maps.hash import Elem, HashMap
from tcemu.bpf.maps.lru_list import BpfLru, LruNode
from tcemu.bpf.maps.spec import BPF_EXIST, BPF_F_NO_COMMON_LRU, BPF_NOEXIST, U32_MAX, MapSpec

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["LruHashMap", "LruPercpuHashMap"]


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: a hash map that evicts as the kernel's LRU does."""

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        percpu_lru = bool(spec.flags & BPF_F_NO_COMMON_LRU)
        if percpu_lru:
            ncpus = env.ncpus
            rounded = -(-spec.max_entries // ncpus) * ncpus
            if rounded > U32_MAX:
                rounded = spec.max_entries // ncpus * ncpus
            self.max_entries = rounded
        self._nodes: dict[bytes, LruNode] = {}
        self._lru = BpfLru(self.max_entries, env.ncpus, percpu_lru, self._del_from_htab)

    # -- nodes ---------------------------------------------------------------------------------

    def _del_from_htab(self, node: LruNode) -> bool:
        """``htab_lru_map_delete_node``: evict the element that holds ``node``."""
        key = node.key
        if key is None or self._nodes.get(key) is not node:
            return False
        del self._nodes[key]
        node.key = None
        super()._unlink(self._elems[key])
        return True

    def _unlink(self, elem: Elem) -> None:
        node = self._nodes.pop(elem.key, None)
        super()._unlink(elem)
        if node is not None:
            self._lru.push_free(node)

    def _set_ref(self, key: bytes) -> None:
        node = self._nodes.get(key)
        if node is not None:
            node.ref = True

    def lru_order(self, cpu: int = 0) -> list[bytes]:
        """Keys from the next to be evicted to the last (of CPU ``cpu``'s lists with
        ``BPF_F_NO_COMMON_LRU``); see :meth:`BpfLru.order`."""
        return [n.key for n in self._lru.order(cpu) if n.key is not None]

    # -- core operations -----------------------------------------------------------------------

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        if flags > BPF_EXIST:
            return errno.EINVAL
        this_cpu = self.env.cpu if cpu is None else cpu
        node: LruNode | None = None
        if not (self.PERCPU and flags == BPF_EXIST):
            node = self._lru.pop_free(this_cpu)
            if node is None:
                return errno.ENOMEM
        elem = self._elems.get(key)
        err = 0
        if elem is not None and flags == BPF_NOEXIST:
            err = errno.EEXIST
        elif elem is None and flags == BPF_EXIST:
            err = errno.ENOENT
        if err:
            if node is not None:
                self._lru.push_free(node)
            return err
        if elem is None:
            assert node is not None
            node.key = key
            self._nodes[key] = node
            self._link(key, self._new_region(value, cpu))
            return 0
        self._replace(elem, value, cpu)
        if self.PERCPU:
            self._set_ref(key)
            if node is not None:
                self._lru.push_free(node)
            return 0
        assert node is not None
        old = self._nodes[key]
        node.key = key
        node.ref = True
        self._nodes[key] = node
        self._lru.push_free(old)
        return 0

    def vm_lookup(self, key: bytes) -> int:
        self._set_ref(key)
        return super().vm_lookup(key)

    def vm_lookup_percpu(self, key: bytes, cpu: int) -> int:
        address = super().vm_lookup_percpu(key, cpu)
        if address:
            self._set_ref(key)
        return address

    def vm_iter_value(self, key: bytes) -> int:
        """``bpf_for_each_hash_elem`` walks the buckets: no reference bit is set."""
        return super().vm_lookup(key)


class LruPercpuHashMap(LruHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH: an LRU hash with one value slot per CPU."""

    PERCPU = True
