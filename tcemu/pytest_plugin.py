"""tcemu's pytest plugin (entry point ``pytest11: tcemu``).

* Collects ``*.tcemu.yaml`` scenario files: each becomes one test that runs the scenario
  on the emulator and fails with every unmet expectation listed.
* Fixtures: ``tcemu_net`` (a fresh :class:`tcemu.net.Net`, seed 0) and ``tcemu_scenario``
  (a function ``run(path) -> ScenarioResult`` that also fails the test on an unmet
  expectation unless ``check=False``).
* Assertion helpers taking Scapy packets or bytes: :func:`assert_seen` and
  :func:`assert_not_seen` look at a device's capture, as tcpdump would show it.

Imports of tcemu itself are deferred, so the plugin costs nothing in test runs that do
not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tcemu.net import Net
    from tcemu.net.stack import Captured
    from tcemu.scenario.runner import ScenarioResult

__all__ = ["ScenarioAssertionError", "assert_not_seen", "assert_seen"]

SUFFIX = ".tcemu.yaml"


class ScenarioAssertionError(AssertionError):
    """A scenario ran but some expectations did not hold."""


def _failures(result: ScenarioResult) -> str:
    lines = [f"scenario {result.name!r} ({result.path}):"]
    for check in result.checks:
        if not check.passed:
            lines.append(f"  ✗ [{check.index}] {check.kind}: expected {check.summary}")
            if check.detail:
                lines.append(f"      {check.detail}")
    return "\n".join(lines)


def _as_bytes(packet: Any) -> bytes:
    if isinstance(packet, bytes | bytearray | memoryview):
        return bytes(packet)
    return bytes(packet)


def _frames(net: Net, dev: str, netns: str | None, direction: str) -> list[Captured]:
    return [c for c in net.capture(dev, netns=netns)
            if direction in ("any", c.direction)]


def assert_seen(net: Net, dev: str, packet: Any, *, netns: str | None = None,
                direction: str = "any", count: int | None = None) -> list[Captured]:
    """Assert that ``dev`` captured ``packet`` (a Scapy packet or bytes, exact bytes);
    ``count`` asks for an exact number of copies.  Returns the matching captures."""
    want = _as_bytes(packet)
    frames = _frames(net, dev, netns, direction)
    hits = [c for c in frames if c.data == want]
    if (count is None and not hits) or (count is not None and len(hits) != count):
        shown = "\n".join(f"    {c.direction} {c.data.hex()}" for c in frames[:10]) or \
            "    (nothing captured)"
        raise AssertionError(
            f"expected {count if count is not None else 'at least one'} capture(s) of\n"
            f"    {want.hex()}\non {netns or 'default'}/{dev} ({direction}); found "
            f"{len(hits)} among {len(frames)} frames:\n{shown}")
    return hits


def assert_not_seen(net: Net, dev: str, packet: Any, *, netns: str | None = None,
                    direction: str = "any") -> None:
    """Assert that ``dev`` never captured ``packet``."""
    want = _as_bytes(packet)
    hits = [c for c in _frames(net, dev, netns, direction) if c.data == want]
    if hits:
        raise AssertionError(f"{want.hex()} was captured {len(hits)} time(s) on "
                             f"{netns or 'default'}/{dev} ({hits[0].direction})")


@pytest.fixture
def tcemu_net() -> Net:
    """A fresh emulated network (seed 0, virtual clock, translated tier)."""
    from tcemu.net import Net

    return Net(seed=0, tier="jit")


@pytest.fixture
def tcemu_scenario() -> Callable[..., ScenarioResult]:
    """``run(path, check=True)``: load and run a scenario file; with ``check`` the test
    fails listing every unmet expectation."""
    from tcemu.scenario import load_scenario
    from tcemu.scenario.runner import run_scenario

    def run(path: str | Path, *, check: bool = True) -> ScenarioResult:
        result = run_scenario(load_scenario(path), path)
        if check and not result.passed:
            raise ScenarioAssertionError(_failures(result))
        return result
    return run


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.File | None:
    if file_path.name.endswith(SUFFIX):
        collected: pytest.File = ScenarioFile.from_parent(parent, path=file_path)
        return collected
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.name.removesuffix(SUFFIX))


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from tcemu.scenario import load_scenario
        from tcemu.scenario.runner import run_scenario

        result = run_scenario(load_scenario(self.path), self.path)
        if not result.passed:
            raise ScenarioAssertionError(_failures(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        from tcemu.errors import TcemuError

        if isinstance(excinfo.value, ScenarioAssertionError | TcemuError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"
