"""Timing, statistics and machine description shared by the benchmark scripts.

Every figure the suite reports is a :class:`Stats` over several independent samples: the
machine is shared and noisy, so the suite reports the median with the min and max beside
it and never asserts on a time.  Python's garbage collector is disabled while a sample is
being timed (as :mod:`timeit` does) and a collection runs before each sample, so a
collection triggered by one sample's garbage does not land in the next.
"""

from __future__ import annotations

import datetime
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Stats", "code_info", "gc_paused", "machine_info", "measure", "measure_interleaved",
           "now_ns"]

now_ns = time.perf_counter_ns


@dataclass(frozen=True)
class Stats:
    """Independent samples of one quantity (a time or a rate, in the unit named beside it)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict[str, object]:
        return {"median": self.median, "min": self.min, "max": self.max,
                "samples": list(self.samples)}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect now, then keep the cyclic collector off for the body."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def measure(sample: Callable[[], float], samples: int, *, warmup: int = 1) -> Stats:
    """Call ``sample`` ``warmup`` times untimed, then ``samples`` times; it returns its value.

    ``sample`` does its own timing (with :func:`now_ns`, or by asking the kernel) and
    returns the quantity of interest, so a wall-clock sample and a kernel-reported duration
    go through the same statistics.
    """
    for _ in range(warmup):
        sample()
    values: list[float] = []
    for _ in range(samples):
        with gc_paused():
            values.append(sample())
    return Stats(tuple(values))


def measure_interleaved(cases: dict[str, Callable[[], float]], samples: int, *,
                        warmup: int = 1) -> dict[str, Stats]:
    """Like :func:`measure` for several cases, taking their samples in turn.

    Sample k of every case is taken before sample k+1 of any, so a slow phase of a shared
    machine lands on all cases alike instead of on whichever ran during it.
    """
    for sample in cases.values():
        for _ in range(warmup):
            sample()
    values: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(samples):
        for name, sample in cases.items():
            with gc_paused():
                values[name].append(sample())
    return {name: Stats(tuple(vals)) for name, vals in values.items()}


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _git(cwd: str, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True,
                              check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.rstrip()


def code_info() -> dict[str, str]:
    """Which tcemu was measured: its location, commit, and uncommitted changes under it."""
    import tcemu

    package = os.path.dirname(os.path.abspath(tcemu.__file__))
    info = {"tcemu_path": package}
    commit = _git(package, "rev-parse", "--short", "HEAD")
    if commit is None:
        info["tcemu_commit"] = "unknown (not a git checkout)"
        return info
    dirty = _git(package, "status", "--porcelain", "--", ".")
    info["tcemu_commit"] = commit
    info["tcemu_uncommitted"] = ", ".join(
        line[3:] for line in (dirty or "").splitlines()) or "none"
    return info


def machine_info() -> dict[str, str]:
    """What a reader needs to compare these numbers with theirs."""
    cpu = _lscpu()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu.get("Model name", platform.processor() or "unknown"),
        "cpus": str(os.cpu_count()),
        "threads_per_core": cpu.get("Thread(s) per core", "?"),
        "hypervisor": cpu.get("Hypervisor vendor", "none"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join(platform.python_build()),
        "kernel": platform.release(),
        "bpf_jit_enable": _read("/proc/sys/net/core/bpf_jit_enable") or "unknown",
    }
    load = _read("/proc/loadavg")
    if load is not None:
        info["loadavg_at_start"] = " ".join(load.split()[:3])
    if sys.flags.optimize:
        info["python_flags"] = f"-O x{sys.flags.optimize}"
    info.update(code_info())
    return info
