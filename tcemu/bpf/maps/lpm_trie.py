"""LPM_TRIE maps (kernel/bpf/lpm_trie.c): longest-prefix match over ``struct bpf_lpm_trie_key``.

A key is a u32 ``prefixlen`` (host byte order) followed by ``key_size - 4`` data bytes,
matched bit by bit from the most significant bit of the first byte (network order), so
``max_prefixlen = 8 * (key_size - 4)``.  Semantics (measured on 6.18):

* lookup returns the value of the stored prefix with the greatest prefixlen ``p`` such that
  ``p <= key.prefixlen`` and the first ``p`` bits agree; a key prefixlen above the maximum
  finds nothing.  Bits past a prefix are ignored everywhere they are compared.
* update: flags other than ANY/NOEXIST/EXIST and prefixlen > max are EINVAL; an existing
  prefix with BPF_NOEXIST is EEXIST; a missing one with BPF_EXIST is ENOENT; a new prefix
  in a full trie is ENOSPC (not E2BIG).  An update replaces the node (a new value region,
  the old one released like a hash element) and stores the key's data bytes verbatim,
  trailing bits included, which get_next_key then returns.
* delete needs the exact prefix (ENOENT otherwise; EINVAL above the maximum).
* get_next_key walks the trie in postorder, more specific prefixes before the prefixes that
  contain them and the 0 branch before the 1 branch; a missing key or one with prefixlen
  above the maximum restarts from the first.  tcemu gets this order without a trie: sort
  prefixes by their bit string followed by a terminator that sorts after both bits.
* lookup-and-delete and its batch are ENOTSUPP; the other batches are the generic ones.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, MapBase
from tcemu.bpf.maps.spec import BPF_EXIST, BPF_NOEXIST, MapSpec

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["LpmTrieMap", "lpm_key"]

_Ident = tuple[int, int]     # (prefixlen, the prefix's top bits as an int)


def lpm_key(prefixlen: int, data: bytes) -> bytes:
    """The ``struct bpf_lpm_trie_key_u8`` bytes of ``data/prefixlen``."""
    return prefixlen.to_bytes(4, "little") + bytes(data)


@dataclass(slots=True, eq=False)
class _Node:
    prefixlen: int
    data: bytes
    addr: int


class LpmTrieMap(MapBase):
    """BPF_MAP_TYPE_LPM_TRIE."""

    HOST_OPS = frozenset({"lookup", "update", "delete", "get_next_key", "lookup_batch",
                          "update_batch", "delete_batch"})

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self._memory = env.memory
        self._region_name = f"map {spec.name!r} value"
        self.max_prefixlen = 8 * (spec.key_size - 4)
        self._nodes: dict[_Ident, _Node] = {}
        self._plen_count: dict[int, int] = {}
        self._plens: list[int] = []                 # distinct prefixlens, longest first
        self._order: list[_Ident] | None = None     # postorder, rebuilt after a change
        self._pos: dict[_Ident, int] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    # -- keys ----------------------------------------------------------------------------------

    def _split(self, key: bytes) -> tuple[int, int]:
        """(prefixlen, data as a big-endian int) of a key."""
        return int.from_bytes(key[:4], "little"), int.from_bytes(key[4:], "big")

    def _ident(self, prefixlen: int, bits: int) -> _Ident:
        return prefixlen, bits >> (self.max_prefixlen - prefixlen)

    def _match(self, key: bytes) -> _Node | None:
        prefixlen, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return None
        for plen in self._plens:
            if plen <= prefixlen:
                node = self._nodes.get(self._ident(plen, bits))
                if node is not None:
                    return node
        return None

    def _changed(self, prefixlen: int, delta: int) -> None:
        count = self._plen_count.get(prefixlen, 0) + delta
        if count:
            self._plen_count[prefixlen] = count
        else:
            del self._plen_count[prefixlen]
        self._plens = sorted(self._plen_count, reverse=True)
        self._order = None

    def _postorder(self) -> list[_Ident]:
        if self._order is None:
            def rank(ident: _Ident) -> str:
                plen, prefix = ident
                return (format(prefix, f"0{plen}b") if plen else "") + "2"
            self._order = sorted(self._nodes, key=rank)
            self._pos = {ident: i for i, ident in enumerate(self._order)}
        return self._order

    # -- core operations ---------------------------------------------------------------------

    def _lookup(self, key: bytes) -> bytes | None:
        node = self._match(key)
        return None if node is None else bytes(self._memory.regions[node.addr >> 32])

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        if flags > BPF_EXIST:
            return errno.EINVAL
        prefixlen, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return errno.EINVAL
        ident = self._ident(prefixlen, bits)
        node = self._nodes.get(ident)
        if node is not None and flags == BPF_NOEXIST:
            return errno.EEXIST
        if node is None:
            if flags == BPF_EXIST:
                return errno.ENOENT
            if len(self._nodes) >= self.max_entries:
                return errno.ENOSPC
        addr = self._memory.add_region(bytearray(value), self._region_name)
        self._nodes[ident] = _Node(prefixlen, bytes(key[4:]), addr)
        if node is None:
            self._changed(prefixlen, +1)
        else:
            self._memory.release(node.addr)
        return 0

    def _delete(self, key: bytes) -> int:
        prefixlen, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return errno.EINVAL
        node = self._nodes.pop(self._ident(prefixlen, bits), None)
        if node is None:
            return errno.ENOENT
        self._memory.release(node.addr)
        self._changed(prefixlen, -1)
        return 0

    def _key_of(self, ident: _Ident) -> bytes:
        node = self._nodes[ident]
        return lpm_key(node.prefixlen, node.data)

    def _next_key(self, key: bytes | None) -> bytes | None:
        order = self._postorder()
        if not order:
            return None
        index = -1
        if key is not None:
            prefixlen, bits = self._split(key)
            if prefixlen <= self.max_prefixlen:
                index = self._pos.get(self._ident(prefixlen, bits), -1)
        if index + 1 >= len(order):
            return None
        return self._key_of(order[index + 1])

    def keys(self) -> Iterator[bytes]:
        for ident in list(self._postorder()):
            yield self._key_of(ident)

    # -- in-VM API ---------------------------------------------------------------------------

    def vm_lookup(self, key: bytes) -> int:
        node = self._match(key)
        return 0 if node is None else node.addr
