"""tcemu: a userspace emulator of the Linux traffic-control datapath with eBPF.

The main entry points, imported on first use so that ``import tcemu`` stays cheap:

* :class:`Net` (``tcemu.net``): build a network with ``ip``/``tc`` command lines or keyword
  methods, send frames, read captures;
* :func:`load_scenario` and :func:`run_scenario` (``tcemu.scenario``): YAML scenarios;
* :func:`assemble`, :class:`Program` and :func:`load_object` (``tcemu.bpf``): programs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tcemu.errors import TcemuError

if TYPE_CHECKING:
    from tcemu.bpf import Program, assemble, load_object
    from tcemu.net import Net
    from tcemu.scenario import load_scenario
    from tcemu.scenario.runner import run_scenario

__all__ = ["Net", "Program", "TcemuError", "__version__", "assemble", "load_object",
           "load_scenario", "run_scenario"]

__version__ = "0.1.0"

_LAZY = {"Net": "tcemu.net", "Program": "tcemu.bpf", "assemble": "tcemu.bpf",
         "load_object": "tcemu.bpf", "load_scenario": "tcemu.scenario",
         "run_scenario": "tcemu.scenario.runner"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tcemu' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
