"""Shared pytest configuration.

Tests marked ``@pytest.mark.kernel`` use the running Linux kernel as the oracle.  Where the
kernel cannot be used (not root, no ``bpf()``, not Linux) they are skipped with the reason,
unless ``TCEMU_REQUIRE_KERNEL=1`` is set (as CI does), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from functools import cache

import pytest

pytest_plugins = ["pytester"]


@cache
def _kernel_unavailable() -> str | None:
    from tcemu.kernel import probe

    return probe()


@pytest.fixture(autouse=True)
def _kernel_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("kernel") is None:
        return
    reason = _kernel_unavailable()
    if reason is None:
        return
    if os.environ.get("TCEMU_REQUIRE_KERNEL") == "1":
        pytest.fail(f"TCEMU_REQUIRE_KERNEL=1 but the kernel oracle is unavailable: {reason}")
    pytest.skip(f"kernel oracle unavailable: {reason}")
