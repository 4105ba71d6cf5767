"""The helper registry: one record per uapi helper id, with its signature.

Each helper tcemu knows is a :class:`HelperSpec` keyed by its ``enum bpf_func_id`` value:
name, argument and return types (``struct bpf_func_proto`` in the kernel), whether it is
GPL-only, whether it may move packet data, and the Python implementation, a
``(vm, r1, r2, r3, r4, r5) -> r0`` callable that reports failure as a negative errno.
The verifier (argument checks), the VM (dispatch) and the printer read the same record.

Which helpers a program type may call is :data:`AVAILABLE`, measured on 6.18 for
SCHED_CLS/SCHED_ACT (kernel-semantics.md section 4) and taken from ``sk_filter_func_proto``
for SOCKET_FILTER.  A helper that is available in the kernel but not implemented here has
a record without ``impl``: loading a program that calls it fails, naming the helper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from tcemu.bpf.uapi import HELPER_NAMES, BpfFunc, BpfProgType
from tcemu.bpf.vm import HelperFn
from tcemu.errors import HelperError

__all__ = ["AVAILABLE", "REGISTRY", "ArgType", "HelperSpec", "RetType", "check_calls",
           "helper", "helpers_for"]


class ArgType(Enum):
    """``enum bpf_arg_type`` (the subset tc helpers use)."""

    ANYTHING = "ARG_ANYTHING"
    PTR_TO_CTX = "ARG_PTR_TO_CTX"
    CONST_MAP_PTR = "ARG_CONST_MAP_PTR"
    PTR_TO_MAP_KEY = "ARG_PTR_TO_MAP_KEY"
    PTR_TO_MAP_VALUE = "ARG_PTR_TO_MAP_VALUE"
    PTR_TO_MEM = "ARG_PTR_TO_MEM"
    PTR_TO_UNINIT_MEM = "ARG_PTR_TO_UNINIT_MEM"
    CONST_SIZE = "ARG_CONST_SIZE"
    CONST_SIZE_OR_ZERO = "ARG_CONST_SIZE_OR_ZERO"
    CONST_ALLOC_SIZE_OR_ZERO = "ARG_CONST_ALLOC_SIZE_OR_ZERO"
    PTR_TO_ALLOC_MEM = "ARG_PTR_TO_ALLOC_MEM"
    PTR_TO_FUNC = "ARG_PTR_TO_FUNC"
    PTR_TO_STACK_OR_NULL = "ARG_PTR_TO_STACK_OR_NULL"
    PTR_TO_LONG = "ARG_PTR_TO_LONG"
    PTR_TO_CONST_STR = "ARG_PTR_TO_CONST_STR"


class RetType(Enum):
    """``enum bpf_return_type`` (the subset tc helpers use)."""

    INTEGER = "RET_INTEGER"
    VOID = "RET_VOID"
    PTR_TO_MAP_VALUE_OR_NULL = "RET_PTR_TO_MAP_VALUE_OR_NULL"
    PTR_TO_ALLOC_MEM_OR_NULL = "RET_PTR_TO_RINGBUF_MEM_OR_NULL"


@dataclass(frozen=True)
class HelperSpec:
    func_id: int
    args: tuple[ArgType, ...]
    ret: RetType = RetType.INTEGER
    gpl_only: bool = False
    changes_pkt_data: bool = False
    impl: HelperFn | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return HELPER_NAMES.get(self.func_id, "unknown")


REGISTRY: dict[int, HelperSpec] = {}

_TC_IDS = (
    {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
     26, 28, 29, 30, 31, 32, 33, 34, 35, 37, 38, 39, 40, 41, 42, 43, 46, 47, 48, 50, 55, 66,
     68, 69, 79, 80, 83, 84, 85, 86, 87, 88, 89, 93, 94, 95, 96, 97, 98, 99, 100, 105, 106,
     107, 108, 109, 110, 112, 113, 114, 115, 117, 118, 120, 122, 123, 124, 125, 148, 149, 151,
     152, 153, 154, 155, 156, 157, 158, 160, 163, 164, 165, 175, 176, 177, 178, 180, 181, 182,
     191, 192}
    | set(range(130, 142)) | set(range(169, 173)) | set(range(194, 212))
)
# sk_filter_func_proto: the base helpers plus skb loads, socket cookie/uid, perf output.
_SOCKET_FILTER_IDS = {1, 2, 3, 5, 6, 7, 8, 12, 25, 26, 42, 46, 47, 68, 87, 88, 89, 93, 94,
                      95, 96, 112, 113, 114, 115, 125, 130, 131, 132, 133, 134, 160, 164, 165,
                      181, 208}
AVAILABLE: dict[BpfProgType, frozenset[int]] = {
    BpfProgType.SCHED_CLS: frozenset(_TC_IDS),
    BpfProgType.SCHED_ACT: frozenset(_TC_IDS),
    BpfProgType.SOCKET_FILTER: frozenset(_SOCKET_FILTER_IDS),
}


def helper(func_id: BpfFunc, *args: ArgType, ret: RetType = RetType.INTEGER,
           gpl_only: bool = False, changes_pkt_data: bool = False,
           ) -> Callable[[HelperFn], HelperFn]:
    """Register the decorated function as the implementation of ``func_id``."""
    def register(fn: HelperFn) -> HelperFn:
        if int(func_id) in REGISTRY:
            raise ValueError(f"helper {func_id.name} registered twice")
        REGISTRY[int(func_id)] = HelperSpec(int(func_id), args, ret, gpl_only,
                                            changes_pkt_data, fn)
        return fn
    return register


def _load_modules() -> None:
    # Importing the modules registers their helpers.
    from tcemu.bpf.helpers import callbacks, generic, maps, misc, reshape, skb, tunnel  # noqa: F401


def helpers_for(prog_type: BpfProgType) -> dict[int, HelperFn]:
    """The implemented helpers a program of ``prog_type`` may call, by id."""
    _load_modules()
    allowed = AVAILABLE.get(prog_type, frozenset())
    return {hid: spec.impl for hid, spec in REGISTRY.items()
            if hid in allowed and spec.impl is not None}


def check_calls(helper_ids: Iterable[tuple[int, int]], prog_type: BpfProgType,
                gpl: bool, extra: Mapping[int, HelperFn] | None = None) -> None:
    """Fail at load time, naming the helper, for a call the kernel or tcemu cannot serve.

    ``helper_ids`` are (insn index, helper id) pairs.  Mirrors the verifier's
    ``unknown func %s#%d`` and ``cannot call GPL-restricted function from non-GPL
    compatible program``.
    """
    _load_modules()
    allowed = AVAILABLE.get(prog_type, frozenset())
    for index, hid in helper_ids:
        name = f"{HELPER_NAMES.get(hid, 'unknown')}#{hid}"
        if extra and hid in extra:
            continue
        if hid not in allowed:
            raise HelperError(f"unknown func {name} (not available to {prog_type.name} programs)",
                              helper_id=hid, index=index)
        spec = REGISTRY.get(hid)
        if spec is None or spec.impl is None:
            raise HelperError(f"helper {name} is not implemented by tcemu yet",
                              helper_id=hid, index=index)
        if spec.gpl_only and not gpl:
            raise HelperError(f"cannot call GPL-restricted function {name} from non-GPL "
                              "compatible program", helper_id=hid, index=index)
