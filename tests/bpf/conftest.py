"""Fixtures of the tcemu.bpf tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tcemu.bpf.jit import translate
from tcemu.bpf.jit.runner import CODE_CACHE


@pytest.fixture(params=["whole", "segments"])
def split(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each program translated whole and cut into segments; no code cached across.
    (``test_jit_segments.py`` has a ``split`` of its own: segments only.)"""
    if request.param == "segments":
        monkeypatch.setattr(translate, "SPLIT", 1)
    CODE_CACHE.clear()
    yield
    CODE_CACHE.clear()
