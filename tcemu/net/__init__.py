"""An emulated network: namespaces, devices, the tc datapath, the event loop.

``Net`` (:mod:`tcemu.net.api`) is the entry point; :mod:`tcemu.net.stack` holds the shared
state, :mod:`tcemu.net.rx` / :mod:`tcemu.net.tx` / :mod:`tcemu.net.hooks` /
:mod:`tcemu.net.redirect` the paths of ``net/core/dev.c`` and ``net/core/filter.c``,
:mod:`tcemu.net.fib` ``bpf_fib_lookup``.  See ``docs/datapath.md``.
"""

from __future__ import annotations

from tcemu.net.api import Net, NetMaps
from tcemu.net.stack import Captured, Stack

__all__ = ["Captured", "Net", "NetMaps", "Stack"]
