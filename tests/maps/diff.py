"""The differential harness: one map operation applied to a tcemu map and to a kernel map.

An :class:`Op` is one bpf(2) map command.  :func:`on_tcemu` and :func:`on_kernel` return
``(errno, bytes)`` for it, so results compare directly.  :class:`Pair` holds a tcemu map
and the kernel map created from the same spec and checks each step and the contents.

KERNEL-DIFF handled here: hash maps iterate in a different order (jhash buckets with a
random seed in the kernel, insertion order in tcemu), so their contents compare as sets and
get_next_key of an *existing* key compares only in that both sides answer something valid.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from tcemu.bpf.env import Env
from tcemu.bpf.maps import MapBase, MapError, MapSpec, create_map

from .kernel_ext import KMap
from .util import T

__all__ = ["UNORDERED", "Op", "Pair", "on_kernel", "on_tcemu"]

UNORDERED = frozenset({T.HASH, T.PERCPU_HASH, T.LRU_HASH, T.LRU_PERCPU_HASH,
                       T.HASH_OF_MAPS})


@dataclass(frozen=True)
class Op:
    """One command: lookup, update, delete, next (get_next_key) or lad (lookup-and-delete)."""

    name: str
    key: bytes | None = None
    value: bytes = b""
    flags: int = 0

    def __repr__(self) -> str:
        key = "NULL" if self.key is None else self.key.hex()
        extra = f" {self.value.hex()}" if self.name == "update" else ""
        return f"{self.name}({key}{extra} flags={self.flags})"


def on_tcemu(m: MapBase, op: Op) -> tuple[int, bytes]:
    key = op.key if op.key is not None else b""
    try:
        if op.name == "lookup":
            return 0, m.lookup(key, op.flags)
        if op.name == "update":
            m.update(key, op.value, op.flags)
            return 0, b""
        if op.name == "delete":
            m.delete(key)
            return 0, b""
        if op.name == "next":
            nxt = m.get_next_key(op.key)
            return (errno.ENOENT, b"") if nxt is None else (0, nxt)
        if op.name == "lad":
            return 0, m.lookup_and_delete(op.key, op.flags)
    except MapError as err:
        return err.errno, b""
    raise ValueError(op.name)


def on_kernel(k: KMap, op: Op, value_size: int) -> tuple[int, bytes]:
    if op.name == "lookup":
        return k.lookup(op.key, value_size, op.flags)
    if op.name == "update":
        return k.update(op.key, op.value, op.flags), b""
    if op.name == "delete":
        return k.delete(op.key), b""
    if op.name == "next":
        return k.next_key(op.key)
    if op.name == "lad":
        return k.lookup_and_delete(op.key, value_size, op.flags)
    raise ValueError(op.name)


class Pair:
    """A tcemu map and its kernel twin, created from one spec."""

    def __init__(self, spec: MapSpec, env: Env | None = None) -> None:
        self.env = env or Env()
        self.ours = create_map(spec, self.env)
        self.kern = KMap.create(spec.type, spec.key_size, spec.value_size, spec.max_entries,
                                spec.flags)
        assert self.kern.errno == 0, f"kernel refused {spec}: errno {self.kern.errno}"
        self.unordered = spec.type in UNORDERED
        self.log: list[str] = []

    def close(self) -> None:
        self.kern.close()

    def apply(self, op: Op) -> tuple[int, bytes]:
        """Run ``op`` on both maps; assert they agree; return tcemu's result."""
        ours = on_tcemu(self.ours, op)
        theirs = on_kernel(self.kern, op, self.ours.host_value_size)
        self.log.append(f"{op!r} -> tcemu {ours} kernel {theirs}")
        history = "\n".join(self.log[-12:])
        if op.name == "next" and self.unordered:
            self._check_unordered_next(op, ours, theirs, history)
        else:
            assert ours == theirs, history
        return ours

    def _check_unordered_next(self, op: Op, ours: tuple[int, bytes],
                              theirs: tuple[int, bytes], history: str) -> None:
        if {ours[0], theirs[0]} - {0, errno.ENOENT}:
            assert ours[0] == theirs[0], history
            return
        key_exists = op.key is not None and op.key in set(self.kernel_keys())
        if not key_exists:      # None or missing: both restart at their first key
            assert ours[0] == theirs[0], history
        for err, key in (ours, theirs):
            if not err:
                assert key in set(self.kernel_keys()), history

    def kernel_keys(self) -> list[bytes]:
        return self.kern.keys()

    def check_contents(self) -> None:
        ours = list(self.ours.items())
        theirs = []
        for key in self.kernel_keys():
            err, value = self.kern.lookup(key, self.ours.host_value_size)
            assert err == 0
            theirs.append((key, value))
        history = "\n".join(self.log[-12:])
        if self.unordered:
            assert dict(ours) == dict(theirs), history
            assert len(ours) == len(theirs) == len(self.ours), history
        else:
            assert ours == theirs, history
