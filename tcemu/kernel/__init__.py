"""The optional real-kernel backend: the running Linux kernel as tcemu's test oracle.

This package owns everything that talks to the kernel through ``bpf(2)``; the syscall layer
(``union bpf_attr`` of uapi ``include/uapi/linux/bpf.h``) lives in :mod:`tcemu.kernel.syscall`
and is re-exported here.  Use :func:`probe` to learn whether the oracle is usable.
"""

from __future__ import annotations

from tcemu.kernel.syscall import (
    ATTR_SIZE,
    BPF_ANY,
    BPF_EXIST,
    BPF_F_TEST_SKB_CHECKSUM_COMPLETE,
    BPF_NOEXIST,
    DEFAULT_LOG_SIZE,
    SK_BUFF_SIZE,
    MapFd,
    ProgFd,
    TestRunResult,
    map_create,
    map_delete,
    map_get_next_key,
    map_lookup,
    map_update,
    probe,
    prog_load,
    prog_test_run,
    test_run,
)

__all__ = [
    "ATTR_SIZE",
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_TEST_SKB_CHECKSUM_COMPLETE",
    "BPF_NOEXIST",
    "DEFAULT_LOG_SIZE",
    "SK_BUFF_SIZE",
    "MapFd",
    "ProgFd",
    "TestRunResult",
    "map_create",
    "map_delete",
    "map_get_next_key",
    "map_lookup",
    "map_update",
    "probe",
    "prog_load",
    "prog_test_run",
    "test_run",
]
