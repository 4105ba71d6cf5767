"""Shared helpers of the map tests."""

from __future__ import annotations

import struct

from tcemu.bpf.env import Env
from tcemu.bpf.maps import MapBase, MapError, MapSpec, create_map
from tcemu.bpf.uapi import BpfMapType

__all__ = ["T", "errno_of", "make", "u32", "u64"]

T = BpfMapType


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def make(env: Env, kind: BpfMapType, key_size: int, value_size: int, max_entries: int,
         flags: int = 0, *, name: str = "m", inner: MapSpec | None = None) -> MapBase:
    return create_map(MapSpec(name, kind, key_size, value_size, max_entries, flags,
                              inner=inner), env)


def errno_of(call: object, *args: object, **kwargs: object) -> int:
    """The errno a host call raises (0 when it succeeds)."""
    assert callable(call)
    try:
        call(*args, **kwargs)
    except MapError as err:
        return err.errno
    return 0
