"""Per-environment map bookkeeping: map ids, map handles, program ids, ring buffer regions.

:class:`~tcemu.bpf.env.Env` belongs to the lead and has no field for maps, so this module
keeps one small record per Env, keyed by ``id(env)`` and dropped by ``weakref.finalize``
when the Env dies (an Env is an unhashable dataclass, so a ``WeakKeyDictionary`` cannot
hold it).  The record refers to maps weakly: a map lives as long as a program, an outer
map, a pin or the caller holds it, exactly like a kernel map lives as long as an fd or a
reference holds it.

* **Map ids** start at 1 in every Env (the kernel's ids are global; per-Env ids keep runs
  reproducible).  ``bpf(BPF_MAP_LOOKUP_ELEM)`` on a map-in-map returns the inner map's id.
* **Map handles** are what a program holds for ``CONST_PTR_TO_MAP``: the address
  ``(MAPS_RID << 32) | map id`` in the map-handle region of :mod:`tcemu.bpf.memory`, which
  is not dereferenceable.  :func:`map_handle` makes one, :func:`map_from_handle` resolves it.
* **Program ids** are what a host lookup of a PROG_ARRAY returns: the program's own integer
  ``id`` attribute when it has one, else an id handed out here on first sight.
* **Ring buffer regions** map a region id to its RINGBUF map, so ``bpf_ringbuf_submit``
  (which gets only the sample pointer) finds the ring, like the kernel's ``hdr->pg_off``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tcemu.bpf.memory import MAPS_RID, OFF_MASK, addr

if TYPE_CHECKING:
    from tcemu.bpf.env import Env
    from tcemu.bpf.maps.base import MapBase

__all__ = ["map_from_handle", "map_handle", "prog_id"]


@dataclass
class _EnvMaps:
    # map id -> a weak reference whose callback removes the entry (a plain dict of refs:
    # a lookup is two C calls, where a WeakValueDictionary's get is Python code; map
    # helpers resolve a handle on every call)
    maps: dict[int, weakref.ref[MapBase]] = field(default_factory=dict)
    next_map_id: int = 1
    rings: weakref.WeakValueDictionary[int, MapBase] = field(
        default_factory=weakref.WeakValueDictionary)
    progs: dict[int, tuple[object, int]] = field(default_factory=dict)
    next_prog_id: int = 1


_STATES: dict[int, _EnvMaps] = {}


def _state(env: Env) -> _EnvMaps:
    key = id(env)
    state = _STATES.get(key)
    if state is None:
        state = _STATES[key] = _EnvMaps()
        weakref.finalize(env, _STATES.pop, key, None)
    return state


def register(env: Env, map_: MapBase) -> int:
    """Give ``map_`` the next map id of ``env``."""
    state = _state(env)
    map_id = state.next_map_id
    state.next_map_id += 1
    maps = state.maps
    state.maps[map_id] = weakref.ref(map_, lambda _ref: maps.pop(map_id, None))
    return map_id


def map_handle(map_: MapBase) -> int:
    """The ``CONST_PTR_TO_MAP`` value a program holds for ``map_``."""
    return addr(MAPS_RID, map_.id)


def map_from_handle(env: Env, handle: int) -> MapBase | None:
    """The live map behind a handle of ``env``, or None."""
    if handle >> 32 != MAPS_RID:
        return None
    state = _STATES.get(id(env))
    ref = None if state is None else state.maps.get(handle & OFF_MASK)
    return None if ref is None else ref()


def map_by_id(env: Env, map_id: int) -> MapBase | None:
    ref = _state(env).maps.get(map_id)
    return None if ref is None else ref()


def register_ring(env: Env, rid: int, ring: MapBase) -> None:
    _state(env).rings[rid] = ring


def ring_of(env: Env, address: int) -> MapBase | None:
    """The ring buffer whose data region holds ``address``."""
    return _state(env).rings.get(address >> 32)


def _ref(obj: object) -> object:
    try:
        return weakref.ref(obj)
    except TypeError:   # not weak-referenceable: keep it alive (documented leak)
        return obj


def prog_id(env: Env, program: object) -> int:
    """The id a host lookup of a program array reports for ``program``."""
    own = getattr(program, "id", None)
    if isinstance(own, int) and not isinstance(own, bool) and own > 0:
        return own
    state = _state(env)
    known = state.progs.get(id(program))
    if known is not None:
        ref, pid = known
        alive = ref() if isinstance(ref, weakref.ref) else ref
        if alive is program:
            return pid
    pid = state.next_prog_id
    state.next_prog_id += 1
    state.progs[id(program)] = (_ref(program), pid)
    return pid
