"""ARRAY_OF_MAPS and HASH_OF_MAPS (kernel/bpf/map_in_map.c, arraymap.c, hashtab.c).

Values are maps.  The host ``update`` takes the inner map object (the kernel takes its fd;
anything that is not a map of the same Env is EBADF), a host ``lookup`` returns the inner
map's id as a u32 (``bpf_map_fd_sys_lookup_elem``), and ``bpf_map_lookup_elem`` in a
program returns the inner map's handle (:func:`tcemu.bpf.maps.registry.map_handle`), which
the program passes on to other map helpers.  Programs may only look up (the verifier).

Compatibility (``bpf_map_meta_equal`` and ``array_map_meta_equal``, measured on 6.18): an
inner map must match the template (the spec's ``inner``) in type, key size, value size and
map flags; max_entries must match too only when the template is a plain ARRAY without
``BPF_F_INNER_MAP`` (hashes, per-CPU arrays, queues, LPM tries and ring buffers of any
size are accepted).  A mismatch is EINVAL.

ARRAY_OF_MAPS follows the fd-array rules (BPF_ANY only, E2BIG out of range; lookup batches
only).  HASH_OF_MAPS follows the hash rules, except that single-element lookup-and-delete
is ENOTSUPP (the kernel allows it only for the four plain hash types) while its batch
exists.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from tcemu.bpf.maps.base import ALL_HOST_OPS, Buffer, MapBase
from tcemu.bpf.maps.errors import ENOTSUPP, BatchError, MapError
from tcemu.bpf.maps.hash import Elem, HashMap
from tcemu.bpf.maps.prog_array import FdArrayMixin
from tcemu.bpf.maps.registry import map_handle
from tcemu.bpf.maps.spec import BPF_ANY, BPF_F_INNER_MAP
from tcemu.bpf.uapi import BpfMapType

__all__ = ["ArrayOfMaps", "HashOfMaps", "inner_compatible"]


def inner_compatible(outer: MapBase, inner: object) -> tuple[int, str]:
    """(errno, cause) when ``inner`` may not be stored in ``outer``, else (0, "")."""
    if not isinstance(inner, MapBase) or inner.env is not outer.env:
        return errno.EBADF, "not a map of this environment"
    template = outer.spec.inner
    assert template is not None       # MapSpec guarantees it for map-in-map types
    spec = inner.spec
    if (spec.type, spec.key_size, spec.value_size, spec.flags) != \
            (template.type, template.key_size, template.value_size, template.flags):
        return errno.EINVAL, "inner map differs from the template"
    if template.type is BpfMapType.ARRAY and not template.flags & BPF_F_INNER_MAP \
            and spec.max_entries != template.max_entries:
        return errno.EINVAL, "inner array max_entries differs (template lacks BPF_F_INNER_MAP)"
    return 0, ""


class ArrayOfMaps(FdArrayMixin):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS: index -> map."""

    HOST_OPS = frozenset({"lookup", "update", "delete", "get_next_key", "lookup_batch",
                          "update_batch"})

    def update(self, key: Buffer, value: object, flags: int = BPF_ANY) -> None:
        """Store the inner map ``value`` at index ``key``."""
        self._set_slot(key, value, flags)

    def _accept(self, value: object) -> tuple[int, str]:
        return inner_compatible(self, value)

    def _slot_bytes(self, obj: object) -> bytes:
        assert isinstance(obj, MapBase)
        return obj.id.to_bytes(4, "little")

    def get_map(self, key: Buffer) -> MapBase | None:
        """The inner map at index ``key``, or None."""
        obj = self._slots.get(self._index(self._key(key, "get inner map of")))
        return obj if isinstance(obj, MapBase) else None

    def vm_lookup(self, key: bytes) -> int:
        obj = self._slots.get(self._index(key))
        return map_handle(obj) if isinstance(obj, MapBase) else 0

    def update_batch(self, keys: Sequence[Buffer], values: Sequence[object],
                     flags: int = 0) -> int:
        return _update_batch(self, keys, values, flags)


class HashOfMaps(HashMap):
    """BPF_MAP_TYPE_HASH_OF_MAPS: key -> map."""

    HOST_OPS = ALL_HOST_OPS | {"lookup_and_delete_batch"}

    def update(self, key: Buffer, value: object, flags: int = BPF_ANY) -> None:
        """Store the inner map ``value`` under ``key`` (hash flag rules)."""
        verb = "update element of"
        self._writable(verb)
        self._lock_flag(verb, flags)
        data = self._key(key, verb)
        code, cause = inner_compatible(self, value)   # the fd is resolved before the flags
        elem = self._elems.get(data)
        if not code:
            code = self._check_flags(elem, flags)
        if code:
            raise self._error(verb, code, cause)
        if elem is None:
            self._link(data, 0, obj=value)
        else:
            elem.obj = value

    def _value_of(self, elem: Elem) -> bytes:
        assert isinstance(elem.obj, MapBase)
        return elem.obj.id.to_bytes(4, "little")

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        return errno.EOPNOTSUPP         # programs cannot store maps (verifier)

    def _pop(self, key: bytes) -> bytes | int:
        return ENOTSUPP

    def get_map(self, key: Buffer) -> MapBase | None:
        """The inner map under ``key``, or None."""
        elem = self._elems.get(self._key(key, "get inner map of"))
        return None if elem is None or not isinstance(elem.obj, MapBase) else elem.obj

    def vm_lookup(self, key: bytes) -> int:
        elem = self._elems.get(key)
        return map_handle(elem.obj) if elem is not None and isinstance(elem.obj, MapBase) \
            else 0

    def vm_delete(self, key: bytes) -> int:
        return -errno.EOPNOTSUPP        # rejected by the verifier in the kernel

    def update_batch(self, keys: Sequence[Buffer], values: Sequence[object],
                     flags: int = 0) -> int:
        return _update_batch(self, keys, values, flags)


def _update_batch(outer: ArrayOfMaps | HashOfMaps, keys: Sequence[Buffer],
                  values: Sequence[object], flags: int) -> int:
    """generic_map_update_batch for maps whose values are maps."""
    verb = "update batch of"
    outer._supports("update_batch", verb)
    outer._batch_flags(verb, flags)
    if len(keys) != len(values):
        raise MapError(f"{verb} map {outer.name!r}: keys and values differ in number",
                       errno=errno.EINVAL)
    for done, (key, value) in enumerate(zip(keys, values, strict=True)):
        try:
            outer.update(key, value, flags)
        except MapError as err:
            raise BatchError(f"{verb} map {outer.name!r}", errno=err.errno,
                             done=done) from err
    return len(keys)
