"""The Map protocol and the base class every map type builds on.

Two faces, as in the kernel (``struct bpf_map_ops`` serves both ``bpf(2)`` and helpers):

* **Host API** (``lookup``/``update``/``delete``/``get_next_key``/``lookup_and_delete``
  and the batch commands), on ``bytes``, mirroring the ``BPF_MAP_*`` commands of
  kernel/bpf/syscall.c.  Failures raise :class:`~tcemu.bpf.maps.errors.MapError` carrying
  the errno the syscall returns, including the syscall layer's own checks: access modes
  (``BPF_F_RDONLY``/``BPF_F_WRONLY`` → EPERM), ``BPF_F_LOCK`` on a value without a
  ``bpf_spin_lock`` (tcemu specs carry no BTF, so always EINVAL), commands a type does not
  implement (``ENOTSUPP``, 524, which bpf(2) leaks to user space).  Key and value lengths
  are checked too (KeySizeError/ValueSizeError, EINVAL): the kernel just copies key_size
  bytes from wherever the pointer points.
* **In-VM API** (``vm_*``) used by the helpers: never raises for a program's mistakes and
  returns what the helper returns, a negative errno or 0, or an address in
  ``env.memory`` (0 for NULL).

Subclasses implement the core operations, which return errnos instead of raising:
``_lookup`` (host-ABI value or None), ``_update`` (errno; ``cpu`` None for a host update
of all CPUs' values, else the CPU a program runs on), ``_delete``, ``_next_key``,
``_pop`` (lookup-and-delete), ``__len__`` and ``_footprint`` (bytes the kernel allocates
up front, checked against the memory budget).  Which host commands a type supports is the
``HOST_OPS`` class attribute; the others fail with ENOTSUPP like the kernel's NULL ops.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from tcemu.bpf.maps.errors import (
    ENOTSUPP,
    BatchError,
    KeyExistsError,
    KeyNotFoundError,
    KeySizeError,
    MapError,
    ValueSizeError,
)
from tcemu.bpf.maps.registry import register
from tcemu.bpf.maps.spec import (
    BPF_ANY,
    BPF_F_LOCK,
    BPF_F_RDONLY,
    BPF_F_WRONLY,
    MapSpec,
    round8,
)

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["DEFAULT_MEMORY_LIMIT", "BatchResult", "Buffer", "Map", "MapBase", "split_percpu"]

DEFAULT_MEMORY_LIMIT = 1 << 30
"""Bytes a map may allocate up front (arrays, ring buffers) before create fails with ENOMEM.

KERNEL-DIFF: the kernel's limit is what the machine and the memory cgroup can back (6.18
created a 4 GiB array here); tcemu allocates real ``bytearray``s and caps them instead.
"""

Buffer = bytes | bytearray | memoryview
"""What host commands accept as a key or value (copied to ``bytes`` on the way in)."""

BatchResult = tuple[list[tuple[bytes, bytes]], bytes | None]
"""``(entries, cursor)`` of a lookup batch; cursor None once the walk is complete."""

ALL_HOST_OPS = frozenset({"lookup", "update", "delete", "get_next_key", "lookup_batch",
                          "update_batch", "delete_batch"})

_CAUSES = {errno.ENOENT: "no such element", errno.EEXIST: "element exists",
           errno.EINVAL: "invalid argument",
           errno.EPERM: "not permitted by the map's access flags",
           ENOTSUPP: "not supported by this map type", errno.ENOSPC: "map is full"}


def split_percpu(raw: bytes, value_size: int, ncpus: int) -> list[bytes]:
    """The per-CPU values of the kernel's per-CPU ABI layout (8-byte-aligned slots)."""
    stride = round8(value_size)
    return [raw[cpu * stride:cpu * stride + value_size] for cpu in range(ncpus)]


class Map(Protocol):
    """What the rest of tcemu may rely on for any map (style rule 9)."""

    spec: MapSpec
    id: int
    key_size: int
    value_size: int
    max_entries: int

    def lookup(self, key: Buffer, flags: int = 0) -> bytes: ...
    def update(self, key: Buffer, value: Buffer, flags: int = BPF_ANY) -> None: ...
    def delete(self, key: Buffer) -> None: ...
    def get_next_key(self, key: Buffer | None) -> bytes | None: ...
    def lookup_and_delete(self, key: Buffer | None = None, flags: int = 0) -> bytes: ...
    def items(self) -> Iterator[tuple[bytes, bytes]]: ...
    def __len__(self) -> int: ...
    def vm_lookup(self, key: bytes) -> int: ...
    def vm_update(self, key: bytes, value: bytes, flags: int) -> int: ...
    def vm_delete(self, key: bytes) -> int: ...
    def vm_lookup_percpu(self, key: bytes, cpu: int) -> int: ...
    def vm_push(self, value: bytes, flags: int) -> int: ...
    def vm_pop(self) -> tuple[int, bytes]: ...
    def vm_peek(self) -> tuple[int, bytes]: ...


class MapBase:
    """Shared host-side checks, error mapping and defaults of every map type."""

    HOST_OPS: ClassVar[frozenset[str]] = ALL_HOST_OPS
    E2BIG_CAUSE: ClassVar[str] = "map is full"

    def __init__(self, spec: MapSpec, env: Env, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.spec = spec
        self.env = env
        self.name = spec.name
        self.key_size = spec.key_size
        self.value_size = spec.value_size
        self.max_entries = spec.max_entries
        need = self._footprint()
        if need > memory_limit:
            raise MapError(f"create map {self.name!r}: needs {need} bytes up front, over the "
                           f"memory limit of {memory_limit}", errno=errno.ENOMEM)
        self.id = register(env, self)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name!r} id={self.id} key={self.key_size} "
                f"value={self.value_size} max_entries={self.max_entries}>")

    # -- sizes ---------------------------------------------------------------------------

    @property
    def host_value_size(self) -> int:
        """Bytes a host lookup returns and a host update takes (per-CPU maps: all CPUs)."""
        return self.value_size

    def _footprint(self) -> int:
        return 0

    # -- errors and syscall-level checks ------------------------------------------------

    def _error(self, verb: str, code: int, cause: str = "") -> MapError:
        if not cause:
            cause = self.E2BIG_CAUSE if code == errno.E2BIG else _CAUSES.get(code, "failed")
        message = f"{verb} map {self.name!r}: {cause}"
        if code == errno.ENOENT:
            return KeyNotFoundError(message)
        if code == errno.EEXIST:
            return KeyExistsError(message)
        return MapError(message, errno=code)

    def _check(self, verb: str, code: int) -> None:
        if code:
            raise self._error(verb, code)

    def _supports(self, op: str, verb: str) -> None:
        if op not in self.HOST_OPS:
            raise self._error(verb, ENOTSUPP)

    def _readable(self, verb: str) -> None:
        if self.spec.flags & BPF_F_WRONLY:
            raise self._error(verb, errno.EPERM)

    frozen = False
    """Set by ``freeze()`` (``BPF_MAP_FREEZE``): host writes then fail with EPERM."""

    def freeze(self) -> None:
        self.frozen = True

    def _writable(self, verb: str) -> None:
        if self.spec.flags & BPF_F_RDONLY or self.frozen:
            raise self._error(verb, errno.EPERM)

    def _lock_flag(self, verb: str, flags: int) -> None:
        if flags & BPF_F_LOCK:
            raise self._error(verb, errno.EINVAL, "BPF_F_LOCK needs a bpf_spin_lock in the "
                              "value (map specs carry no BTF)")

    def _key(self, key: Buffer | None, verb: str) -> bytes:
        data = bytes(key) if key is not None else b""
        if len(data) != self.key_size:
            raise KeySizeError(f"{verb} map {self.name!r}", got=len(data),
                               expected=self.key_size)
        return data

    def _value(self, value: Buffer, verb: str) -> bytes:
        data = bytes(value)
        if len(data) != self.host_value_size:
            raise ValueSizeError(f"{verb} map {self.name!r}", got=len(data),
                                 expected=self.host_value_size)
        return data

    # -- core operations (errno-returning; overridden per type) -------------------------

    def _lookup(self, key: bytes) -> bytes | None:
        return None

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        return ENOTSUPP

    def _delete(self, key: bytes) -> int:
        return ENOTSUPP

    def _next_key(self, key: bytes | None) -> bytes | None:
        return None

    def _pop(self, key: bytes) -> bytes | int:
        """Lookup-and-delete: the host-ABI value, or an errno."""
        return ENOTSUPP

    def __len__(self) -> int:
        return 0

    # -- host API: single elements -------------------------------------------------------

    def lookup(self, key: Buffer, flags: int = 0) -> bytes:
        """``BPF_MAP_LOOKUP_ELEM``; raises KeyNotFoundError when there is no element."""
        verb = "look up element of"
        if flags & ~BPF_F_LOCK:
            raise self._error(verb, errno.EINVAL, f"flags {flags:#x}")
        self._readable(verb)
        self._lock_flag(verb, flags)
        data = self._key(key, verb)
        self._supports("lookup", verb)
        value = self._lookup(data)
        if value is None:
            raise self._error(verb, errno.ENOENT)
        return value

    def update(self, key: Buffer, value: Buffer, flags: int = BPF_ANY) -> None:
        """``BPF_MAP_UPDATE_ELEM`` with BPF_ANY, BPF_NOEXIST or BPF_EXIST."""
        verb = "update element of"
        self._writable(verb)
        self._lock_flag(verb, flags)
        data = self._key(key, verb)
        self._supports("update", verb)
        val = self._value(value, verb)
        self._check(verb, self._update(data, val, flags, None))

    def delete(self, key: Buffer) -> None:
        """``BPF_MAP_DELETE_ELEM``."""
        verb = "delete element of"
        self._writable(verb)
        data = self._key(key, verb)
        self._supports("delete", verb)
        self._check(verb, self._delete(data))

    def get_next_key(self, key: Buffer | None) -> bytes | None:
        """``BPF_MAP_GET_NEXT_KEY``: the first key for None, None after the last (ENOENT)."""
        verb = "get next key of"
        self._readable(verb)
        data = self._key(key, verb) if key is not None else None
        self._supports("get_next_key", verb)
        return self._next_key(data)

    def lookup_and_delete(self, key: Buffer | None = None, flags: int = 0) -> bytes:
        """``BPF_MAP_LOOKUP_AND_DELETE_ELEM``: pop for queues/stacks, take for hashes."""
        verb = "look up and delete element of"
        if flags & ~BPF_F_LOCK:
            raise self._error(verb, errno.EINVAL, f"flags {flags:#x}")
        self._readable(verb)
        self._writable(verb)
        self._lock_flag(verb, flags)
        data = self._key(key, verb)
        result = self._pop(data)
        if isinstance(result, int):
            raise self._error(verb, result)
        return result

    # -- host API: iteration ----------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def keys(self) -> Iterator[bytes]:
        """Every key, in get_next_key order."""
        key = self._next_key(None)
        while key is not None:
            yield key
            key = self._next_key(key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` a get_next_key walk with lookups would see."""
        self._readable("iterate")
        for key in list(self.keys()):
            value = self._lookup(key)
            if value is not None:
                yield key, value

    # -- host API: batches (generic_map_*_batch of kernel/bpf/syscall.c) -------------------

    def _batch_flags(self, verb: str, flags: int) -> None:
        if flags & ~BPF_F_LOCK:
            raise self._error(verb, errno.EINVAL, f"elem_flags {flags:#x}")
        self._lock_flag(verb, flags)

    def lookup_batch(self, cursor: bytes | None, count: int, flags: int = 0) -> BatchResult:
        """``BPF_MAP_LOOKUP_BATCH``: up to ``count`` elements after ``cursor``.

        The cursor is the kernel's ``out_batch``, opaque to callers: pass None to start and
        the returned cursor to continue.  The kernel ends a walk with ENOENT (and the last
        entries); here the returned cursor is None instead.  For arrays and LPM tries the
        cursor is the last key returned, exactly as generic_map_lookup_batch does.
        """
        verb = "look up batch of"
        self._supports("lookup_batch", verb)
        self._batch_flags(verb, flags)
        self._readable(verb)
        if count <= 0:
            return [], cursor
        prev = self._key(cursor, verb) if cursor is not None else None
        out: list[tuple[bytes, bytes]] = []
        while len(out) < count:
            key = self._next_key(prev)
            if key is None:
                return out, None
            value = self._lookup(key)
            if value is not None:
                out.append((key, value))
            prev = key
        return out, prev

    def lookup_and_delete_batch(self, cursor: bytes | None, count: int,
                                flags: int = 0) -> BatchResult:
        """``BPF_MAP_LOOKUP_AND_DELETE_BATCH`` (hash maps only)."""
        raise self._error("look up and delete batch of", ENOTSUPP)

    def update_batch(self, keys: Sequence[Buffer], values: Sequence[Buffer],
                     flags: int = 0) -> int:
        """``BPF_MAP_UPDATE_BATCH``: BPF_ANY updates in order, stopping at the first error.

        Only ``BPF_F_LOCK`` is a valid elem_flag (generic_map_update_batch), so there is no
        NOEXIST/EXIST batch.  A failure raises BatchError with ``done`` set.
        """
        verb = "update batch of"
        self._supports("update_batch", verb)
        self._batch_flags(verb, flags)
        self._writable(verb)
        if len(keys) != len(values):
            raise self._error(verb, errno.EINVAL, "keys and values differ in number")
        for done, (key, value) in enumerate(zip(keys, values, strict=True)):
            try:
                self.update(key, value, flags)
            except MapError as err:
                raise BatchError(f"{verb} map {self.name!r}", errno=err.errno,
                                 done=done) from err
        return len(keys)

    def delete_batch(self, keys: Sequence[Buffer], flags: int = 0) -> int:
        """``BPF_MAP_DELETE_BATCH``: deletes in order, stopping at the first error."""
        verb = "delete batch of"
        self._supports("delete_batch", verb)
        self._batch_flags(verb, flags)
        self._writable(verb)
        for done, key in enumerate(keys):
            try:
                self.delete(key)
            except MapError as err:
                raise BatchError(f"{verb} map {self.name!r}", errno=err.errno,
                                 done=done) from err
        return len(keys)

    # -- per-CPU conveniences -----------------------------------------------------------------

    def lookup_percpu(self, key: Buffer) -> list[bytes]:
        """Each CPU's value (value_size bytes, padding dropped) of a per-CPU map."""
        if not self.spec.percpu:
            raise self._error("look up per-CPU values of", errno.EINVAL, "not a per-CPU map")
        return split_percpu(self.lookup(key), self.value_size, self.env.ncpus)

    def update_percpu(self, key: Buffer, values: Sequence[Buffer],
                      flags: int = BPF_ANY) -> None:
        """Update a per-CPU element from one value per CPU (zero padding added)."""
        if not self.spec.percpu:
            raise self._error("update per-CPU values of", errno.EINVAL, "not a per-CPU map")
        if len(values) != self.env.ncpus or any(len(v) != self.value_size for v in values):
            raise self._error("update per-CPU values of", errno.EINVAL,
                              f"need {self.env.ncpus} values of {self.value_size} bytes")
        pad = bytes(round8(self.value_size) - self.value_size)
        self.update(key, b"".join(bytes(v) + pad for v in values), flags)

    # -- in-VM API -------------------------------------------------------------------------

    def vm_lookup(self, key: bytes) -> int:
        """``bpf_map_lookup_elem``: the value's address for the current CPU, or 0."""
        return 0

    def vm_lookup_percpu(self, key: bytes, cpu: int) -> int:
        """``bpf_map_lookup_percpu_elem``: 0 unless the map is per-CPU."""
        return 0

    def vm_iter_value(self, key: bytes) -> int:
        """The value address ``bpf_for_each_map_elem`` hands its callback: a lookup for
        the current CPU without a lookup's side effects (LRU reference bits)."""
        return self.vm_lookup(key)

    def vm_update(self, key: bytes, value: bytes, flags: int) -> int:
        """``bpf_map_update_elem``: 0 or -errno; ``value`` is value_size bytes."""
        return -self._update(key, value, flags, self.env.cpu)

    def vm_delete(self, key: bytes) -> int:
        """``bpf_map_delete_elem``: 0 or -errno."""
        return -self._delete(key)

    def vm_push(self, value: bytes, flags: int) -> int:
        """``bpf_map_push_elem`` (queue/stack only; the verifier rejects other maps)."""
        return -errno.EOPNOTSUPP

    def vm_pop(self) -> tuple[int, bytes]:
        """``bpf_map_pop_elem``: ``(0, value)`` or ``(-errno, b"")``."""
        return -errno.EOPNOTSUPP, b""

    def vm_peek(self) -> tuple[int, bytes]:
        """``bpf_map_peek_elem``: ``(0, value)`` or ``(-errno, b"")``."""
        return -errno.EOPNOTSUPP, b""

    # The stream helpers below exist on RINGBUF (and vm_output on PERF_EVENT_ARRAY); the
    # verifier rejects them for every other map type, so these defaults are unreachable in
    # the kernel and only keep helper code free of isinstance checks.

    def vm_output(self, data: bytes, flags: int) -> int:
        """``bpf_ringbuf_output`` / ``bpf_perf_event_output``."""
        return -errno.EOPNOTSUPP

    def vm_reserve(self, size: int, flags: int) -> int:
        """``bpf_ringbuf_reserve``: NULL."""
        return 0

    def vm_submit(self, sample: int, flags: int) -> int:
        """``bpf_ringbuf_submit``."""
        return -errno.EOPNOTSUPP

    def vm_discard(self, sample: int, flags: int) -> int:
        """``bpf_ringbuf_discard``."""
        return -errno.EOPNOTSUPP

    def vm_query(self, flags: int) -> int:
        """``bpf_ringbuf_query``."""
        return 0
