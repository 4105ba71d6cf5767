"""Map helpers the translated tier calls as methods of the map (no helper dispatch).

A helper whose whole work is one method of the map its first argument names, applied to
bytes read from its pointer arguments (``bpf_map_lookup_elem`` is
``map.vm_lookup(memory.read(r2, key_size))``), registers that description here.  When a
program calls such a helper with a map handle the translator knows (an LD_IMM64 of a map:
the handle is a constant) and the Vm's function for that helper id is the registered one,
the generated code calls the map's bound method itself: the key (value) bytes are sliced
from the frame when the pointer is a constant offset in it (such a slice cannot fault) and
read through ``Memory.read`` otherwise (which faults exactly as the helper's read does).
Nothing else changes: the same map object, method, bytes and flags, the same result.

This mirrors what the kernel's verifier does for map helpers with a known map
(``fixup_bpf_calls`` inlining ``map_gen_lookup`` / calling ``map->ops`` directly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tcemu.bpf.memory import MAPS_RID, OFF_MASK

if TYPE_CHECKING:
    from tcemu.bpf.env import Env

__all__ = ["DIRECT", "MapCall", "MapLike", "bindings", "method_name", "register"]


class MapLike(Protocol):
    """What the translator needs of a map: the sizes of what its helpers read."""

    key_size: int
    value_size: int


@dataclass(frozen=True, slots=True)
class MapCall:
    """How a map helper is the map's method (see the module docstring)."""

    method: str                        # the map's method: vm_lookup, vm_update, vm_delete
    reads: tuple[tuple[int, str], ...]  # (argument register, "key" or "value"), in the
    #                                    method's argument order, each read whole
    passed: tuple[int, ...] = ()       # argument registers passed on after the bytes
    errno: bool = False                # may return -errno: the result is masked to 64 bits
    resolve: Callable[[Env, int], MapLike | None] = field(
        default=lambda env, handle: None, compare=False)   # map handle -> the live map


DIRECT: dict[object, MapCall] = {}
"""Registered helper functions (the objects a Vm's ``helpers`` holds) -> their MapCall."""


def register(fn: object, call: MapCall) -> None:
    """Declare helper ``fn`` equivalent to ``call`` (see the module docstring)."""
    DIRECT[fn] = call


def bindings(helpers: Mapping[int, object], ids: Iterable[int], env: Env,
             values: Iterable[int]) -> tuple[dict[int, MapCall], dict[int, MapLike]]:
    """For a program calling helpers ``ids`` and loading LD_IMM64 ``values``: the helper
    ids that may be called directly (the Vm's function for the id is registered), and the
    live maps behind the values that are map handles (none without such a helper)."""
    calls: dict[int, MapCall] = {}
    for hid in ids:
        try:
            call = DIRECT.get(helpers.get(hid))
        except TypeError:             # an unhashable callable: not one of ours
            call = None
        if call is not None:
            calls[hid] = call
    maps: dict[int, MapLike] = {}
    if calls:
        resolve = next(iter(calls.values())).resolve
        for value in values:
            if value >> 32 == MAPS_RID and value not in maps:
                found = resolve(env, value)
                if found is not None:
                    maps[value] = found
    return calls, maps


def method_name(call: MapCall, handle: int) -> str:
    """The generated code's name for ``call``'s method of the map behind ``handle``."""
    return f"{call.method}_{handle & OFF_MASK}"
