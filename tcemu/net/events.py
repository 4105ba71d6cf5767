"""The event loop on the virtual clock: deferred work of the emulated kernel.

Backlog processing (``netif_rx``), qdisc timers and netem delays are scheduled as
callbacks at a virtual time.  Events run in time order and, within one time, in the order
they were scheduled (FIFO), so a run is deterministic.  Running an event moves the clock
to its time; nothing ever reads a wall clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from tcemu.clock import VirtualClock

__all__ = ["EventLoop"]

MAX_EVENTS_PER_RUN = 1_000_000


@dataclass(order=True)
class _Event:
    at: int
    seq: int
    fn: Callable[[], object] = field(compare=False)


class EventLoop:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.queue: list[_Event] = []
        self._seq = 0

    def schedule(self, at: int, fn: Callable[[], object]) -> None:
        """Run ``fn`` at virtual time ``at`` (now if in the past)."""
        self._seq += 1
        heapq.heappush(self.queue, _Event(max(at, self.clock.now_ns()), self._seq, fn))

    def soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` after the work already due now (a softirq later)."""
        self.schedule(self.clock.now_ns(), fn)

    def pending(self) -> int:
        return len(self.queue)

    def next_time(self) -> int | None:
        return self.queue[0].at if self.queue else None

    def run_until(self, deadline: int | None) -> int:
        """Run every event due at or before ``deadline`` (None: until idle); returns how
        many ran.  The clock ends at the last event's time (or ``deadline``)."""
        ran = 0
        while self.queue and (deadline is None or self.queue[0].at <= deadline):
            event = heapq.heappop(self.queue)
            if event.at > self.clock.now_ns():
                self.clock.set(event.at)
            event.fn()
            ran += 1
            if ran > MAX_EVENTS_PER_RUN:
                raise RuntimeError("event loop: more than a million events; a packet loop?")
        if deadline is not None and deadline > self.clock.now_ns():
            self.clock.set(deadline)
        return ran
