"""bpf_perf_event_output from a tc program under BPF_PROG_TEST_RUN against the kernel, both
tiers: BPF_F_CURRENT_CPU and explicit indexes, the packet bytes appended through the
BPF_F_CTXLEN_MASK bits, and the errors (-EFAULT, -EOPNOTSUPP, -ENOENT, -E2BIG, -EINVAL)
(``bpf_skb_event_output``, ``net/core/filter.c``).  The program is
``tests/testdata/helpers/perf_flags.c``; its return codes and the samples read from one
perf event per CPU are compared after each packet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kernel.objects_oracle import BpfFs
from tests.kernel.test_helpers_common import (
    ObjCase,
    assert_object_same,
    bpffs_fixture,
    params,
    tcp_frame,
    udp6_frame,
    udp_frame,
)

pytestmark = pytest.mark.kernel

CASES: dict[str, ObjCase] = {
    "perf_flags": ObjCase("perf_flags", "perf_flags", (
        udp_frame(), tcp_frame(b"x" * 300), udp6_frame(), bytes(14), udp_frame(b""))),
}


@pytest.fixture(scope="module")
def bpffs() -> Iterator[BpfFs]:
    yield from bpffs_fixture()


@pytest.mark.parametrize("name", list(params(CASES)))
def test_perf_event_output(name: str, bpffs: BpfFs) -> None:
    assert_object_same(CASES[name], bpffs)
