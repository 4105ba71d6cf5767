"""The only source of time in tcemu: a virtual clock in nanoseconds.

Nothing in the emulator reads the wall clock.  ``bpf_ktime_get_ns``, qdisc timing and pcap
timestamps all read a :class:`VirtualClock`, which moves only when told to (``advance``,
``set``), so runs are reproducible bit for bit (trio's ``MockClock`` idea).
"""

from __future__ import annotations

__all__ = ["VirtualClock"]


class VirtualClock:
    """Monotonic virtual time in ns; ``boot_ns`` is what ``bpf_ktime_get_boot_ns`` adds."""

    def __init__(self, start_ns: int = 1_000_000_000, *, boot_offset_ns: int = 0,
                 tai_offset_ns: int = 37_000_000_000) -> None:
        if start_ns < 0:
            raise ValueError("start_ns must be >= 0")
        self._now = start_ns
        self.boot_offset_ns = boot_offset_ns
        self.tai_offset_ns = tai_offset_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, ns: int) -> int:
        if ns < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += ns
        return self._now

    def advance_to(self, ns: int) -> None:
        """Move to ``ns`` if that is later (a no-op otherwise)."""
        if ns > self._now:      # noqa: PLR1730 (max() is a call, per packet in replay)
            self._now = ns

    def set(self, ns: int) -> None:
        if ns < self._now:
            raise ValueError(f"cannot move the clock back from {self._now} to {ns}")
        self._now = ns

    def __repr__(self) -> str:
        return f"VirtualClock({self._now} ns)"
