"""LPM_TRIE: longest-prefix lookup, postorder get_next_key, the trie's errnos."""

from __future__ import annotations

import errno
import ipaddress

import pytest

from tcemu.bpf.env import Env
from tcemu.bpf.maps import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, ENOTSUPP, MapBase, lpm_key
from tcemu.bpf.maps import spec as ms

from .util import T, errno_of, make, u32


def key(cidr: str) -> bytes:
    net = ipaddress.ip_network(cidr, strict=False)
    return lpm_key(net.prefixlen, net.network_address.packed)


def cidr(raw: bytes) -> str:
    return f"{ipaddress.ip_address(raw[4:])}/{int.from_bytes(raw[:4], 'little')}"


@pytest.fixture
def env() -> Env:
    return Env()


def trie(env: Env, entries: int = 16, key_size: int = 8) -> MapBase:
    return make(env, T.LPM_TRIE, key_size, 4, entries, ms.BPF_F_NO_PREALLOC)


def test_longest_prefix_match(env: Env) -> None:
    m = trie(env)
    for i, net in enumerate(["10.0.0.0/8", "10.1.0.0/16", "10.1.1.0/24", "0.0.0.0/0"]):
        m.update(key(net), u32(i))
    assert m.lookup(key("10.1.1.7/32")) == u32(2)
    assert m.lookup(key("10.1.2.7/32")) == u32(1)
    assert m.lookup(key("10.2.0.0/32")) == u32(0)
    assert m.lookup(key("11.0.0.0/32")) == u32(3)
    assert m.lookup(key("10.1.1.7/12")) == u32(0)          # capped by the key's prefixlen
    assert m.lookup(lpm_key(0, b"\xff\xff\xff\xff")) == u32(3)
    assert errno_of(m.lookup, lpm_key(33, bytes(4))) == errno.ENOENT
    m.delete(key("0.0.0.0/0"))
    assert errno_of(m.lookup, key("11.0.0.0/32")) == errno.ENOENT


def test_postorder_like_the_kernel_comment(env: Env) -> None:
    """The example at the top of kernel/bpf/lpm_trie.c and its get_next_key comment."""
    m = trie(env)
    for net in ["192.168.0.0/16", "192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24"]:
        m.update(key(net), u32(1))
    assert [cidr(k) for k in m] == [
        "192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24", "192.168.0.0/16"]
    assert cidr(m.get_next_key(key("192.168.1.0/24")) or b"") == "192.168.128.0/24"
    assert m.get_next_key(key("192.168.0.0/16")) is None
    assert cidr(m.get_next_key(key("10.0.0.0/8")) or b"") == "192.168.0.0/24"   # missing
    assert cidr(m.get_next_key(lpm_key(40, bytes(4))) or b"") == "192.168.0.0/24"
    assert trie(env).get_next_key(None) is None


def test_data_bytes_are_stored_verbatim(env: Env) -> None:
    m = trie(env)
    m.update(lpm_key(8, b"\x0a\xff\xff\xff"), u32(1))
    assert list(m.keys()) == [lpm_key(8, b"\x0a\xff\xff\xff")]
    m.update(lpm_key(8, b"\x0a\x01\x00\x00"), u32(2))       # the same prefix: replaced
    assert list(m.keys()) == [lpm_key(8, b"\x0a\x01\x00\x00")]
    assert len(m) == 1
    assert m.get_next_key(lpm_key(8, b"\x0a\x77\x77\x77")) is None   # trailing bits ignored
    m.delete(lpm_key(8, b"\x0a\x00\x00\x00"))
    assert len(m) == 0


def test_update_errnos(env: Env) -> None:
    m = trie(env, entries=2)
    assert errno_of(m.update, lpm_key(33, bytes(4)), u32(1)) == errno.EINVAL
    for flags in (3, BPF_F_LOCK):
        assert errno_of(m.update, key("10.0.0.0/8"), u32(1), flags) == errno.EINVAL
    assert errno_of(m.update, key("10.0.0.0/8"), u32(1), BPF_EXIST) == errno.ENOENT
    m.update(key("10.0.0.0/8"), u32(1), BPF_NOEXIST)
    assert errno_of(m.update, key("10.0.0.0/8"), u32(1), BPF_NOEXIST) == errno.EEXIST
    m.update(key("10.1.0.0/16"), u32(2))
    assert errno_of(m.update, key("10.1.1.0/24"), u32(3)) == errno.ENOSPC
    assert errno_of(m.update, key("10.1.1.0/24"), u32(3), BPF_EXIST) == errno.ENOENT
    m.update(key("10.1.0.0/16"), u32(5), BPF_EXIST)
    assert m.lookup(key("10.1.0.0/16")) == u32(5)
    assert errno_of(m.delete, lpm_key(33, bytes(4))) == errno.EINVAL
    assert errno_of(m.delete, key("10.0.0.0/9")) == errno.ENOENT
    assert errno_of(m.lookup_and_delete, key("10.0.0.0/8")) == ENOTSUPP
    assert errno_of(m.lookup_and_delete_batch, None, 1) == ENOTSUPP


def test_values_in_memory(env: Env) -> None:
    m = trie(env)
    m.update(key("10.0.0.0/8"), u32(1))
    address = m.vm_lookup(key("10.9.9.9/32"))
    assert env.memory.read(address, 4) == u32(1)
    env.memory.write(address, u32(7))
    assert m.lookup(key("10.0.0.0/8")) == u32(7)
    m.update(key("10.0.0.0/8"), u32(8))                     # a new node, a new region
    assert m.vm_lookup(key("10.0.0.0/8")) != address
    assert env.memory.read(address, 4) == u32(7)
    assert m.vm_lookup(key("11.0.0.0/32")) == 0
    assert m.vm_update(key("11.0.0.0/8"), u32(2), 0) == 0
    assert m.vm_delete(key("11.0.0.0/8")) == 0
    assert m.vm_delete(key("11.0.0.0/8")) == -errno.ENOENT


def test_ipv6_and_batches(env: Env) -> None:
    m = trie(env, key_size=20)
    m.update(key("2001:db8::/32"), u32(1))
    m.update(key("2001:db8:1::/48"), u32(2))
    assert m.lookup(key("2001:db8:1::1/128")) == u32(2)
    assert m.lookup(key("2001:db8:2::1/128")) == u32(1)
    got, cursor = m.lookup_batch(None, 1)
    assert [cidr6(k) for k, _ in got] == ["2001:db8:1::/48"]
    assert cursor == got[0][0]
    got, cursor = m.lookup_batch(cursor, 5)
    assert [cidr6(k) for k, _ in got] == ["2001:db8::/32"]
    assert cursor is None
    assert m.delete_batch([key("2001:db8::/32")]) == 1


def cidr6(raw: bytes) -> str:
    return f"{ipaddress.ip_address(raw[4:])}/{int.from_bytes(raw[:4], 'little')}"
