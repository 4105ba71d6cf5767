"""Shared test helpers: skbs of a given size, a device-like transmit loop, fake filters."""

from __future__ import annotations

from collections.abc import Callable

from tcemu.qdisc.base import Qdisc, TcfResult
from tcemu.skb import SkBuff


def skb(size: int = 1000, *, priority: int = 0, tag: int = 0) -> SkBuff:
    """An skb of ``size`` bytes; ``tag`` is written into the first bytes to tell them apart."""
    data = bytearray(size)
    data[:4] = tag.to_bytes(4, "big")
    out = SkBuff(data=data, wire_len=size)
    out.priority = priority
    return out


def tag_of(s: SkBuff) -> int:
    return int.from_bytes(s.data[:4], "big")


def drain(q: Qdisc, now: int, *, until: int | None = None) -> list[tuple[int, SkBuff]]:
    """What a device's transmit loop does: dequeue while something comes out, then move
    the clock to ``next_event``.  Returns (departure time, skb) pairs."""
    out: list[tuple[int, SkBuff]] = []
    while True:
        got = q.dequeue(now)
        if got is not None:
            out.append((now, got))
            continue
        t = q.next_event(now)
        if t is None or (until is not None and t > until):
            return out
        assert t > now, f"next_event {t} does not move past {now}"
        now = t


def verdict(v: int, classid: int = 0) -> Callable[[SkBuff], TcfResult]:
    """A filter chain that always answers ``v`` with ``classid``."""
    def chain(_: SkBuff) -> TcfResult:
        return TcfResult(v, classid)
    return chain


def by_tag(table: dict[int, TcfResult]) -> Callable[[SkBuff], TcfResult]:
    """A filter chain that looks the skb's tag up (missing tags: UNSPEC)."""
    def chain(s: SkBuff) -> TcfResult:
        return table.get(tag_of(s), TcfResult())
    return chain
