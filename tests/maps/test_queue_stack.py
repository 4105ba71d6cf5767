"""QUEUE and STACK: push/pop/peek from the host and from programs."""

from __future__ import annotations

import errno

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, ENOTSUPP, QueueMap

from .util import T, errno_of, make, u32


def qmap(kind: T, entries: int = 2) -> QueueMap:
    m = make(Env(), kind, 0, 4, entries)
    assert isinstance(m, QueueMap)
    return m


@pytest.mark.parametrize(("kind", "order"), [(T.QUEUE, [2, 3]), (T.STACK, [3, 2])])
def test_push_pop_and_overwrite(kind: T, order: list[int]) -> None:
    m = qmap(kind)
    m.push(u32(1))
    m.push(u32(2))
    assert errno_of(m.push, u32(3)) == errno.E2BIG
    m.push(u32(3), BPF_EXIST)                     # full: the oldest (1) is dropped
    assert [v for _, v in m.items()] == [u32(i) for i in order]
    assert m.peek() == u32(order[0])
    assert [m.pop(), m.pop()] == [u32(i) for i in order]
    assert errno_of(m.pop) == errno.ENOENT
    assert errno_of(m.peek) == errno.ENOENT


@pytest.mark.parametrize("kind", [T.QUEUE, T.STACK])
def test_host_errnos(kind: T) -> None:
    m = qmap(kind)
    for flags in (BPF_NOEXIST, 3, BPF_F_LOCK):
        assert errno_of(m.push, u32(1), flags) == errno.EINVAL
    m.push(u32(1))
    assert m.lookup(b"") == u32(1)
    assert errno_of(m.lookup, b"", 1) == errno.EINVAL
    assert errno_of(m.lookup, b"", BPF_F_LOCK) == errno.EINVAL
    assert errno_of(m.lookup_and_delete, None, BPF_F_LOCK) == errno.EINVAL
    assert errno_of(m.lookup_and_delete, None, 1) == errno.EINVAL
    assert errno_of(m.delete, b"") == errno.EINVAL
    assert errno_of(m.get_next_key, None) == errno.EINVAL
    assert errno_of(m.update, u32(0), u32(1)) == errno.EINVAL    # a key on a keyless map
    assert errno_of(m.lookup_batch, None, 1) == ENOTSUPP
    assert m.lookup_and_delete(None) == u32(1)
    assert len(m) == 0
    assert list(m.keys()) == []


@pytest.mark.parametrize("kind", [T.QUEUE, T.STACK])
def test_vm_api(kind: T) -> None:
    m = qmap(kind)
    assert m.vm_pop() == (-errno.ENOENT, b"")
    assert m.vm_peek() == (-errno.ENOENT, b"")
    assert m.vm_push(u32(1), 0) == 0
    assert m.vm_push(u32(2), 0) == 0
    assert m.vm_push(u32(3), 0) == -errno.E2BIG
    assert m.vm_push(u32(3), BPF_NOEXIST) == -errno.EINVAL
    assert m.vm_push(u32(3), BPF_EXIST) == 0
    top = u32(2) if kind is T.QUEUE else u32(3)
    assert m.vm_peek() == (0, top)
    assert m.vm_pop() == (0, top)
    assert m.vm_lookup(b"") == 0
    assert m.vm_update(b"", u32(1), 0) == -errno.EINVAL
    assert m.vm_delete(b"") == -errno.EINVAL
    assert len(m) == 1
