"""The bpffs pin namespace (``env.pins``) and the loaders' pinning conventions.

``BPF_OBJ_PIN``/``BPF_OBJ_GET`` become :func:`pin`/:func:`get_pinned` on the Env's
``pins`` dictionary (path -> object), so two objects loaded into one Env can share a map.

Where a loader pins a map depends on the loader, and the ELF value 1 means different
things to the two of them:

* iproute2 (``tc filter ... bpf obj``, lib/bpf_legacy.c): ``PIN_OBJECT_NS`` (1) pins at
  ``<root>/tc/<object id>/<name>`` (the object id is a hash of the ELF file),
  ``PIN_GLOBAL_NS`` (2) at ``<root>/tc/globals/<name>``; other values name custom
  sub-directories from /etc/iproute2/bpf_pinning, which tcemu does not read (EINVAL).
* libbpf: ``LIBBPF_PIN_BY_NAME`` (1) pins at ``<pin_root_path>/<name>``, by default
  ``/sys/fs/bpf/<name>``; other non-zero values are invalid (EINVAL).

Reusing a pinned map checks the spec like iproute2's ``bpf_map_selfcheck_pinned`` and
libbpf's ``map_is_reuse_compat`` (type, key size, value size, max_entries, flags,
map_extra); a mismatch is EINVAL.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Literal

from tcemu.bpf.maps.base import DEFAULT_MEMORY_LIMIT, MapBase
from tcemu.bpf.maps.errors import MapError
from tcemu.bpf.maps.spec import (
    LIBBPF_PIN_BY_NAME,
    PIN_GLOBAL_NS,
    PIN_NONE,
    PIN_OBJECT_NS,
    MapSpec,
)

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["BPFFS_ROOT", "Loader", "create_or_reuse", "get_pinned", "pin", "pin_path",
           "unpin"]

BPFFS_ROOT = "/sys/fs/bpf"
Loader = Literal["iproute2", "libbpf"]


def pin(env: Env, path: str, obj: object) -> None:
    """``BPF_OBJ_PIN``: EEXIST when the path is taken."""
    if path in env.pins:
        raise MapError(f"pin object at {path!r}: path exists", errno=errno.EEXIST)
    env.pins[path] = obj


def unpin(env: Env, path: str) -> None:
    """``unlink()`` of a bpffs path: ENOENT when nothing is pinned there."""
    if env.pins.pop(path, None) is None:
        raise MapError(f"unpin {path!r}: nothing pinned there", errno=errno.ENOENT)


def get_pinned(env: Env, path: str) -> MapBase:
    """``BPF_OBJ_GET`` of a map: ENOENT when nothing is pinned, EINVAL for a non-map."""
    obj = env.pins.get(path)
    if obj is None:
        raise MapError(f"get pinned map {path!r}: nothing pinned there", errno=errno.ENOENT)
    if not isinstance(obj, MapBase):
        raise MapError(f"get pinned map {path!r}: {type(obj).__name__} is not a map",
                       errno=errno.EINVAL)
    return obj


def pin_path(spec: MapSpec, *, loader: Loader = "iproute2", object_id: str = "",
             root: str = BPFFS_ROOT) -> str | None:
    """Where ``loader`` pins a map of ``spec`` (None when it does not pin it)."""
    where = f"pin map {spec.name!r}"
    if spec.pinning == PIN_NONE:
        return None
    if loader == "libbpf":
        if spec.pinning != LIBBPF_PIN_BY_NAME:
            raise MapError(f"{where}: invalid libbpf pinning {spec.pinning}",
                           errno=errno.EINVAL)
        return f"{root}/{spec.name}"
    if spec.pinning == PIN_GLOBAL_NS:
        return f"{root}/tc/globals/{spec.name}"
    if spec.pinning == PIN_OBJECT_NS:
        if not object_id:
            raise MapError(f"{where}: PIN_OBJECT_NS needs the object id", errno=errno.EINVAL)
        return f"{root}/tc/{object_id}/{spec.name}"
    raise MapError(f"{where}: custom iproute2 pinning {spec.pinning} is not supported",
                   errno=errno.EINVAL)


def create_or_reuse(spec: MapSpec, env: Env, *, loader: Loader = "iproute2",
                    object_id: str = "", root: str = BPFFS_ROOT,
                    memory_limit: int = DEFAULT_MEMORY_LIMIT) -> MapBase:
    """The pinned map for ``spec`` if there is a compatible one, else a new (pinned) map."""
    from tcemu.bpf.maps import create_map

    path = pin_path(spec, loader=loader, object_id=object_id, root=root)
    if path is not None and path in env.pins:
        existing = get_pinned(env, path)
        if not spec.compatible(existing.spec):
            raise MapError(f"reuse pinned map {path!r}: spec differs from the pinned map's "
                           f"({existing.spec.type.name} {existing.spec.key_size}/"
                           f"{existing.spec.value_size}/{existing.spec.max_entries} "
                           f"flags {existing.spec.flags:#x})", errno=errno.EINVAL)
        return existing
    created = create_map(spec, env, memory_limit=memory_limit)
    if path is not None:
        pin(env, path, created)
    return created
