"""PROG_ARRAY maps (kernel/bpf/arraymap.c ``prog_array_map_ops``): the tail-call table.

The kernel's slots hold program fds on the way in and program pointers inside; tcemu has no
fds, so the host ``update`` takes the program object itself (any object; one with an
integer ``prog_type`` takes part in the owner check) and a host ``lookup`` returns the
program's id as a u32 (``prog_fd_array_sys_lookup_elem``; see
:func:`tcemu.bpf.maps.registry.prog_id`).  Raw ``bytes`` are refused with EBADF: there is
no fd table to resolve them in.

Semantics shared by every fd array (measured on 6.18): update flags other than BPF_ANY are
EINVAL (checked first), an index >= max_entries is E2BIG for update and delete and ENOENT
for lookup; delete of an empty slot is ENOENT; get_next_key walks every index like an
array; lookup-and-delete and all batches are ENOTSUPP.

Owner.  Like ``bpf_prog_map_compatible``, the first program stored (or the first program
using the map, through :meth:`ProgArrayMap.compatible`) fixes the map's program type;
a program of another type is EINVAL.  Updates take effect for the very next tail call.
Programs cannot update, delete or look up prog array slots (the verifier allows only
``bpf_tail_call``), so the in-VM entry point is :meth:`ProgArrayMap.get_program`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tcemu.bpf.maps.array import ArrayIndexMixin
from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, Buffer
from tcemu.bpf.maps.registry import prog_id
from tcemu.bpf.maps.spec import BPF_ANY, MapSpec

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["FdArrayMixin", "ProgArrayMap"]


class FdArrayMixin(ArrayIndexMixin):
    """Slots of objects indexed by u32, the update/delete rules of ``fd_array_map_*``."""

    HOST_OPS = frozenset({"lookup", "update", "delete", "get_next_key"})

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self._slots: dict[int, object] = {}

    def _footprint(self) -> int:
        return 8 * self.spec.max_entries      # the kernel's pointer per slot

    def _set_slot(self, key: Buffer, value: object, flags: int) -> None:
        """``bpf_fd_array_map_update_elem``: flags, index, then the object itself."""
        verb = "update element of"
        self._writable(verb)
        self._lock_flag(verb, flags)
        index = self._index(self._key(key, verb))
        if flags != BPF_ANY:
            raise self._error(verb, errno.EINVAL, "fd arrays take BPF_ANY only")
        if index >= self.max_entries:
            raise self._error(verb, errno.E2BIG)
        code, cause = self._accept(value)
        if code:
            raise self._error(verb, code, cause)
        self._slots[index] = self._stored(value)

    def _accept(self, value: object) -> tuple[int, str]:
        """(errno, cause) for an object that may not go into a slot; (0, "") if it may."""
        return 0, ""

    def _stored(self, value: object) -> object:
        """What the slot keeps for an accepted ``value`` (the kernel: the fd's object)."""
        return value

    def _delete(self, key: bytes) -> int:
        index = self._index(key)
        if index >= self.max_entries:
            return errno.E2BIG
        return 0 if self._slots.pop(index, None) is not None else errno.ENOENT

    def _slot_bytes(self, obj: object) -> bytes:
        return b""

    def _lookup(self, key: bytes) -> bytes | None:
        obj = self._slots.get(self._index(key))
        return None if obj is None else self._slot_bytes(obj)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        self._readable("iterate")
        for index in sorted(self._slots):
            yield index.to_bytes(4, "little"), self._slot_bytes(self._slots[index])

    def slot(self, index: int) -> object | None:
        """The object in slot ``index`` (None when empty or out of range)."""
        return self._slots.get(index)

    def vm_update(self, key: bytes, value: bytes, flags: int) -> int:
        return -errno.EOPNOTSUPP        # rejected by the verifier in the kernel

    def vm_delete(self, key: bytes) -> int:
        return -errno.EOPNOTSUPP        # rejected by the verifier in the kernel


class ProgArrayMap(FdArrayMixin):
    """BPF_MAP_TYPE_PROG_ARRAY: index -> program, for ``bpf_tail_call``."""

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        super().__init__(spec, env, memory_limit=memory_limit)
        self.owner_type: int | None = None

    def update(self, key: Buffer, value: object, flags: int = BPF_ANY) -> None:
        """Store ``value`` (a program object) in slot ``key``."""
        self._set_slot(key, value, flags)

    def compatible(self, program: object) -> bool:
        """``bpf_prog_map_compatible``: the first typed program fixes the owner type."""
        kind = getattr(program, "prog_type", None)
        if not isinstance(kind, int):
            return True
        if self.owner_type is None:
            self.owner_type = int(kind)
            return True
        return self.owner_type == int(kind)

    def _accept(self, value: object) -> tuple[int, str]:
        if value is None or isinstance(value, bytes | bytearray | memoryview | int):
            return errno.EBADF, "tcemu has no program fds: store the program object"
        if not self.compatible(value):
            return errno.EINVAL, f"program type differs from the owner's ({self.owner_type})"
        return 0, ""

    def _slot_bytes(self, obj: object) -> bytes:
        return prog_id(self.env, obj).to_bytes(4, "little")

    def get_program(self, index: int) -> object | None:
        """What ``bpf_tail_call`` jumps to for ``index``: the program, or None (fall through)."""
        return self._slots.get(index) if 0 <= index < self.max_entries else None
