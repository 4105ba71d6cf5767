"""The public API: every name in ``__all__`` exists, and the documented entry points work."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["tcemu", "tcemu.errors", "tcemu.bpf", "tcemu.bpf.isa", "tcemu.bpf.ops",
           "tcemu.bpf.asm", "tcemu.bpf.disasm", "tcemu.bpf.vm", "tcemu.bpf.jit",
           "tcemu.bpf.memory", "tcemu.bpf.semantics", "tcemu.bpf.program", "tcemu.kernel",
           "tcemu.conformance", "tcemu.cli", "tcemu.pcap", "tcemu.scenario",
           "tcemu.scenario.runner", "tcemu.scenario.report", "tcemu.replay", "tcemu.netcmd",
           "tcemu.diagram", "tcemu.pytest_plugin", "tcemu.bpf.insntrace", "tcemu.trace"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_documented_api() -> None:
    import tcemu.bpf

    prog = tcemu.bpf.assemble("r0 = r2\nexit")
    assert tcemu.bpf.Program.from_bytes(prog.to_bytes()) == prog
    assert prog.run(memory=b"abc", tier="interp") == 3
    assert prog.run(memory=b"abc", tier="jit") == 3


def test_every_error_is_a_tcemu_error() -> None:
    from tcemu import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TcemuError)


@pytest.mark.parametrize("name", [*MODULES, "tcemu.skb", "tcemu.net", "tcemu.bpf.verifier",
                                  "tcemu.scenario.kernel", "tcemu.cli_replay"])
def test_each_module_imports_first(name: str) -> None:
    """No import cycle: every module can be the first one a program imports."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
