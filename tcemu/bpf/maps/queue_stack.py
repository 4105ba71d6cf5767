"""QUEUE and STACK maps (kernel/bpf/queue_stack_maps.c): keyless FIFO and LIFO of values.

The host commands map as in kernel/bpf/syscall.c: ``update`` pushes, ``lookup`` peeks,
``lookup_and_delete`` pops (flags must be 0: EINVAL), ``delete`` and ``get_next_key`` are
EINVAL, batches ENOTSUPP.  The key is empty (None or ``b""``); a key pointer on a keyless
map is EINVAL in the kernel too.

Push (``queue_stack_map_push_elem``): BPF_NOEXIST or unknown flags are EINVAL; when full,
BPF_EXIST drops the *oldest* element (for a stack too: the bottom one) to make room, any
other flag fails with E2BIG.  Pop and peek of an empty map are ENOENT.  Values are copied
in and out (``bpf_map_pop_elem`` writes into the program's buffer), so nothing lives in
``env.memory``.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, Buffer, MapBase
from tcemu.bpf.maps.spec import BPF_EXIST, BPF_NOEXIST, MapSpec

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["QueueMap", "StackMap"]


class QueueMap(MapBase):
    """BPF_MAP_TYPE_QUEUE: first in, first out."""

    HOST_OPS = frozenset({"lookup", "update", "delete", "get_next_key"})
    LIFO = False

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self._values: deque[bytes] = deque()

    def __len__(self) -> int:
        return len(self._values)

    # -- core ---------------------------------------------------------------------------------

    def _push(self, value: bytes, flags: int) -> int:
        if flags & BPF_NOEXIST or flags > BPF_EXIST:
            return errno.EINVAL
        if len(self._values) >= self.max_entries:
            if not flags & BPF_EXIST:
                return errno.E2BIG
            self._values.popleft()      # the oldest, for a queue and a stack alike
        self._values.append(value)
        return 0

    def _peek_value(self) -> bytes | None:
        if not self._values:
            return None
        return self._values[-1] if self.LIFO else self._values[0]

    def _pop_value(self) -> bytes | None:
        if not self._values:
            return None
        return self._values.pop() if self.LIFO else self._values.popleft()

    def _lookup(self, key: bytes) -> bytes | None:
        return self._peek_value()

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        return self._push(value, flags)

    def _delete(self, key: bytes) -> int:
        return errno.EINVAL

    def _pop(self, key: bytes) -> bytes | int:
        value = self._pop_value()
        return errno.ENOENT if value is None else value

    # -- host API -------------------------------------------------------------------------------

    def get_next_key(self, key: Buffer | None) -> bytes | None:
        self._readable("get next key of")
        raise self._error("get next key of", errno.EINVAL, "queues and stacks have no keys")

    def lookup_and_delete(self, key: Buffer | None = None, flags: int = 0) -> bytes:
        if flags:
            raise self._error("look up and delete element of", errno.EINVAL,
                              "flags must be 0 for queues and stacks")
        return super().lookup_and_delete(key, flags)

    def push(self, value: Buffer, flags: int = 0) -> None:
        """Host push (``BPF_MAP_UPDATE_ELEM`` with a NULL key)."""
        self.update(b"", value, flags)

    def pop(self) -> bytes:
        """Host pop (``BPF_MAP_LOOKUP_AND_DELETE_ELEM``); KeyNotFoundError when empty."""
        return self.lookup_and_delete(b"")

    def peek(self) -> bytes:
        """Host peek (``BPF_MAP_LOOKUP_ELEM``); KeyNotFoundError when empty."""
        return self.lookup(b"")

    def keys(self) -> Iterator[bytes]:
        return iter(())

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """``(b"", value)`` in the order pops would return them, without popping."""
        self._readable("iterate")
        order = reversed(self._values) if self.LIFO else iter(self._values)
        return ((b"", value) for value in list(order))

    # -- in-VM API ------------------------------------------------------------------------------

    def vm_update(self, key: bytes, value: bytes, flags: int) -> int:
        return -errno.EINVAL    # queue_stack_map_update_elem

    def vm_delete(self, key: bytes) -> int:
        return -errno.EINVAL    # queue_stack_map_delete_elem

    def vm_push(self, value: bytes, flags: int) -> int:
        return -self._push(bytes(value), flags)

    def vm_pop(self) -> tuple[int, bytes]:
        value = self._pop_value()
        return (-errno.ENOENT, b"") if value is None else (0, value)

    def vm_peek(self) -> tuple[int, bytes]:
        value = self._peek_value()
        return (-errno.ENOENT, b"") if value is None else (0, value)


class StackMap(QueueMap):
    """BPF_MAP_TYPE_STACK: last in, first out."""

    LIFO = True
