"""Every name in the tcemu.cmd modules' ``__all__`` exists; errors are TcemuErrors."""

from __future__ import annotations

import importlib

import pytest

from tcemu.cmd import CommandError, UnsupportedCommandError
from tcemu.errors import TcemuError

MODULES = ["tcemu.cmd", "tcemu.cmd.args", "tcemu.cmd.values", "tcemu.cmd.model",
           "tcemu.cmd.ip", "tcemu.cmd.ip_link", "tcemu.cmd.tc", "tcemu.cmd.qdisc_opts",
           "tcemu.cmd.actions", "tcemu.cmd.render"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


def test_errors_are_tcemu_errors() -> None:
    assert issubclass(CommandError, TcemuError)
    assert issubclass(UnsupportedCommandError, CommandError)
