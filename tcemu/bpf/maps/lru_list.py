"""The kernel's approximate LRU (kernel/bpf/bpf_lru_list.c), node for node.

An LRU map preallocates one node per element.  A node is on exactly one list at a time:

* the map's **free** list (all nodes at creation, pushed at the head, so the last node
  created is taken first);
* with a common LRU (the default), a CPU's **local free** stack and **pending** list: a CPU
  takes nodes for new elements from its local free stack, and refills it from the global
  free list, ``target_free`` nodes at a time, evicting from the inactive list when the free
  list runs dry (``bpf_lru_list_pop_free_to_local``); a new element sits on the pending
  list of its CPU until the next refill moves it to the global lists;
* the **active** and **inactive** lists.  A program's lookup sets the node's reference bit;
  a refill first rotates the lists (``__bpf_lru_list_rotate``): referenced nodes move to
  the head of the active list, unreferenced ones at the tail of the active list move to
  the inactive list when it is shorter than the active one, and eviction
  (``__bpf_lru_list_shrink``) takes unreferenced nodes from the tail of the inactive list,
  or any node when none is unreferenced;
* with ``BPF_F_NO_COMMON_LRU`` each CPU has its own lists and no local lists; a new
  element's node goes straight to the head of its CPU's inactive list.

So a full map evicts several elements at once (up to ``target_free``, i.e. a quarter of
the entries per CPU, at most 128) and a refill can evict before the map is full of
elements.  Everything here is deterministic: which CPU runs an operation is the
environment's ``cpu``, and there is no lock contention (the kernel's ``pending_free``
path, taken when a lock cannot be acquired, never happens).

The lists are intrusive doubly linked lists with a sentinel, as ``struct list_head`` is,
because rotation keeps a cursor (``next_inactive_rotation``) that may rest on the
sentinel itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = ["ACTIVE", "FREE", "INACTIVE", "LOCAL_FREE", "PENDING", "BpfLru", "LruNode"]

# enum bpf_lru_list_type
ACTIVE, INACTIVE, FREE, LOCAL_FREE, PENDING = range(5)
_COUNTED = 2                  # NR_BPF_LRU_LIST_COUNT: only active and inactive are counted
LOCAL_FREE_TARGET = 128       # also LOCAL_NR_SCANS
PERCPU_FREE_TARGET = 4        # also PERCPU_NR_SCANS
_HEAD = -1                    # the type of a sentinel


class LruNode:
    """``struct bpf_lru_node`` (and, for tcemu, the key of the element that owns it)."""

    __slots__ = ("cpu", "key", "next", "prev", "ref", "type")

    def __init__(self, node_type: int = FREE, cpu: int = 0) -> None:
        self.prev: LruNode = self
        self.next: LruNode = self
        self.type = node_type
        self.cpu = cpu
        self.ref = False
        self.key: bytes | None = None

    # -- list_head operations --------------------------------------------------------------
    def unlink(self) -> None:
        """``list_del``."""
        self.prev.next = self.next
        self.next.prev = self.prev
        self.prev = self.next = self

    def add_after(self, head: LruNode) -> None:
        """``list_add(self, head)``: insert right after ``head`` (at the list's head)."""
        self.prev, self.next = head, head.next
        head.next.prev = self
        head.next = self

    def move_after(self, head: LruNode) -> None:
        """``list_move(self, head)``."""
        self.unlink()
        self.add_after(head)


def _head() -> LruNode:
    return LruNode(_HEAD)


def _empty(head: LruNode) -> bool:
    return head.next is head


def _reverse(head: LruNode) -> Iterator[LruNode]:
    """``list_for_each_entry_safe_reverse``: tail to head; the current node may move."""
    node = head.prev
    while node is not head:
        prev = node.prev
        yield node
        node = prev


def _forward(head: LruNode) -> Iterator[LruNode]:
    """``list_for_each_entry_safe``: head to tail; the current node may move."""
    node = head.next
    while node is not head:
        nxt = node.next
        yield node
        node = nxt


class _List:
    """``struct bpf_lru_list``: active, inactive and free lists, two counts, a cursor."""

    def __init__(self) -> None:
        self.lists = (_head(), _head(), _head())          # ACTIVE, INACTIVE, FREE
        self.counts = [0, 0]
        self.next_inactive_rotation = self.lists[INACTIVE]

    def count_inc(self, node_type: int) -> None:
        if node_type < _COUNTED:
            self.counts[node_type] += 1

    def count_dec(self, node_type: int) -> None:
        if node_type < _COUNTED:
            self.counts[node_type] -= 1

    def _cursor_skip(self, node: LruNode) -> None:
        if node is self.next_inactive_rotation:
            self.next_inactive_rotation = node.prev

    def move_to_free(self, node: LruNode, free_list: LruNode, free_type: int) -> None:
        """``__bpf_lru_node_move_to_free``."""
        self._cursor_skip(node)
        self.count_dec(node.type)
        node.type = free_type
        node.move_after(free_list)

    def move_in(self, node: LruNode, target: int) -> None:
        """``__bpf_lru_node_move_in``: from a local list onto one of these lists."""
        self.count_inc(target)
        node.type = target
        node.ref = False
        node.move_after(self.lists[target])

    def move(self, node: LruNode, target: int) -> None:
        """``__bpf_lru_node_move``: between or within these lists, to the head."""
        if node.type != target:
            self.count_dec(node.type)
            self.count_inc(target)
            node.type = target
        node.ref = False
        self._cursor_skip(node)
        node.move_after(self.lists[target])


class _LocalList:
    """``struct bpf_lru_locallist``: a CPU's free stack and pending list."""

    def __init__(self, cpu: int) -> None:
        self.free: list[LruNode] = []          # llist: push and pop at the same end
        self.pending = _head()
        self.next_steal = cpu


class BpfLru:
    """``struct bpf_lru`` of one map: ``pop_free`` for a new element (evicting through
    ``del_from_htab`` when needed), ``push_free`` for a deleted one; a program's lookup
    sets the node's ``ref`` (``bpf_lru_node_set_ref``)."""

    def __init__(self, nr_elems: int, ncpus: int, percpu: bool,
                 del_from_htab: Callable[[LruNode], bool]) -> None:
        self.percpu = percpu
        self.ncpus = ncpus
        self.del_from_htab = del_from_htab
        self.nodes = [LruNode() for _ in range(nr_elems)]
        if percpu:                              # bpf_percpu_lru_populate
            self.nr_scans = PERCPU_FREE_TARGET
            self.percpu_lists = [_List() for _ in range(ncpus)]
            per_cpu = max(nr_elems // ncpus, 1)
            for i, node in enumerate(self.nodes):
                node.cpu = min(i // per_cpu, ncpus - 1)
                node.add_after(self.percpu_lists[node.cpu].lists[FREE])
            self.target_free = PERCPU_FREE_TARGET
        else:                                   # bpf_common_lru_populate
            self.nr_scans = LOCAL_FREE_TARGET
            self.common = _List()
            self.local = [_LocalList(cpu) for cpu in range(ncpus)]
            for node in self.nodes:
                node.add_after(self.common.lists[FREE])
            self.target_free = min(max(nr_elems // ncpus // 2, 1), LOCAL_FREE_TARGET)

    # -- what the map calls (a program's lookup sets ``node.ref``: bpf_lru_node_set_ref) ----
    def pop_free(self, cpu: int) -> LruNode | None:
        """``bpf_lru_pop_free``: a node for a new element on ``cpu``, or None (ENOMEM)."""
        return self._percpu_pop_free(cpu) if self.percpu else self._common_pop_free(cpu)

    def push_free(self, node: LruNode) -> None:
        """``bpf_lru_push_free``: the element of ``node`` was deleted or replaced."""
        node.key = None
        if self.percpu:
            self.percpu_lists[node.cpu].move(node, FREE)
            return
        if node.type == PENDING:
            node.type = LOCAL_FREE
            node.ref = False
            node.unlink()
            self.local[node.cpu].free.append(node)
            return
        self.common.move(node, FREE)

    def order(self, cpu: int = 0) -> list[LruNode]:
        """The nodes holding elements, from the next to be evicted to the last: the
        inactive list from its tail, then the active list from its tail, then (common LRU)
        every CPU's pending list from its tail."""
        lists = self.percpu_lists[cpu] if self.percpu else self.common
        out = [*_reverse(lists.lists[INACTIVE]), *_reverse(lists.lists[ACTIVE])]
        if not self.percpu:
            for loc in self.local:
                out.extend(_reverse(loc.pending))
        return out

    # -- rotation and shrinking ------------------------------------------------------------
    def _rotate_active(self, lst: _List) -> None:
        active = lst.lists[ACTIVE]
        first = active.next
        for i, node in enumerate(_reverse(active), 1):
            lst.move(node, ACTIVE if node.ref else INACTIVE)
            if i == self.nr_scans or node is first:
                break

    def _rotate_inactive(self, lst: _List) -> None:
        inactive = lst.lists[INACTIVE]
        if _empty(inactive):
            return
        last = lst.next_inactive_rotation.next
        if last is inactive:
            last = last.next
        cur = lst.next_inactive_rotation
        nxt = inactive
        i = 0
        while i < self.nr_scans:
            if cur is inactive:
                cur = cur.prev
                continue
            nxt = cur.prev
            if cur.ref:
                lst.move(cur, ACTIVE)
            if cur is last:
                break
            cur = nxt
            i += 1
        lst.next_inactive_rotation = nxt

    def _rotate(self, lst: _List) -> None:
        """``__bpf_lru_list_rotate``."""
        if lst.counts[INACTIVE] < lst.counts[ACTIVE]:
            self._rotate_active(lst)
        self._rotate_inactive(lst)

    def _shrink_inactive(self, lst: _List, target: int, free_list: LruNode,
                         free_type: int) -> int:
        shrunk = 0
        for i, node in enumerate(_reverse(lst.lists[INACTIVE]), 1):
            if node.ref:
                lst.move(node, ACTIVE)
            elif self.del_from_htab(node):
                lst.move_to_free(node, free_list, free_type)
                shrunk += 1
                if shrunk == target:
                    break
            if i == self.nr_scans:
                break
        return shrunk

    def _shrink(self, lst: _List, target: int, free_list: LruNode, free_type: int) -> int:
        """``__bpf_lru_list_shrink``: evict up to ``target`` unreferenced inactive nodes,
        else one node whatever its reference bit (inactive list first)."""
        shrunk = self._shrink_inactive(lst, target, free_list, free_type)
        if shrunk:
            return shrunk
        inactive = lst.lists[INACTIVE]
        victims = inactive if not _empty(inactive) else lst.lists[ACTIVE]
        for node in _reverse(victims):
            if self.del_from_htab(node):
                lst.move_to_free(node, free_list, free_type)
                return 1
        return 0

    # -- the common LRU ----------------------------------------------------------------------
    def _flush(self, loc: _LocalList) -> None:
        """``__local_list_flush``: pending nodes onto the global lists."""
        for node in _reverse(loc.pending):
            self.common.move_in(node, ACTIVE if node.ref else INACTIVE)

    def _refill(self, loc: _LocalList) -> None:
        """``bpf_lru_list_pop_free_to_local``."""
        lst = self.common
        self._flush(loc)
        self._rotate(lst)
        harvested = _head()
        nfree = 0
        for node in _forward(lst.lists[FREE]):
            lst.move_to_free(node, harvested, LOCAL_FREE)
            nfree += 1
            if nfree == self.target_free:
                break
        if nfree < self.target_free:
            self._shrink(lst, self.target_free - nfree, harvested, LOCAL_FREE)
        for node in _forward(harvested):
            node.unlink()
            loc.free.append(node)

    def _add_pending(self, loc: _LocalList, cpu: int, node: LruNode) -> None:
        node.cpu = cpu
        node.type = PENDING
        node.ref = False
        node.add_after(loc.pending)

    def _pop_pending(self, loc: _LocalList) -> LruNode | None:
        """``__local_list_pop_pending``: steal the oldest evictable pending node."""
        for force in (False, True):
            node = loc.pending.prev
            while node is not loc.pending:
                if (force or not node.ref) and self.del_from_htab(node):
                    node.unlink()
                    return node
                node = node.prev
        return None

    def _common_pop_free(self, cpu: int) -> LruNode | None:
        loc = self.local[cpu]
        if not loc.free:
            self._refill(loc)
        if loc.free:
            node = loc.free.pop()
            self._add_pending(loc, cpu, node)
            return node
        # nothing free here or globally: steal from the CPUs' local lists, round robin
        first = steal = loc.next_steal
        found: LruNode | None = None
        while True:
            victim = self.local[steal]
            found = victim.free.pop() if victim.free else self._pop_pending(victim)
            steal = (steal + 1) % self.ncpus
            if found is not None or steal == first:
                break
        loc.next_steal = steal
        if found is None:
            return None
        self._add_pending(loc, cpu, found)
        return found

    # -- BPF_F_NO_COMMON_LRU -----------------------------------------------------------------
    def _percpu_pop_free(self, cpu: int) -> LruNode | None:
        lst = self.percpu_lists[cpu]
        self._rotate(lst)
        free = lst.lists[FREE]
        if _empty(free):
            self._shrink(lst, PERCPU_FREE_TARGET, free, FREE)
        if _empty(free):
            return None
        node = free.next
        node.ref = False
        lst.move(node, INACTIVE)
        return node
