"""The btf package's public names: every ``__all__`` entry exists, BtfError is a TcemuError."""

from __future__ import annotations

import importlib

import pytest

from tcemu.bpf.btf import BtfError
from tcemu.errors import TcemuError

MODULES = ["tcemu.bpf.btf", "tcemu.bpf.btf.wire", "tcemu.bpf.btf.types", "tcemu.bpf.btf.parse",
           "tcemu.bpf.btf.ext", "tcemu.bpf.btf.maps", "tcemu.bpf.btf.format",
           "tcemu.bpf.btf._error"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has no __all__"
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_btf_error_shape() -> None:
    err = BtfError("bad thing", type_id=17, offset=40)
    assert isinstance(err, TcemuError)
    assert (err.type_id, err.offset, err.reason) == (17, 40, "bad thing")
    assert str(err) == "parse btf: type 17 at byte 40: bad thing"
    assert str(BtfError("x")) == "parse btf: x"
    assert str(BtfError("x", type_id=3, verb="parse map 'm'")) == "parse map 'm': type 3: x"
