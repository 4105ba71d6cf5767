"""tcemu: a userspace emulator of the Linux traffic-control datapath with eBPF."""

from __future__ import annotations

from tcemu.errors import TcemuError

__all__ = ["TcemuError", "__version__"]

__version__ = "0.1.0"
