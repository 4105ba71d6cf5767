"""``BtfError`` is defined in :mod:`tcemu.errors` with the rest of the tree; this leaf
module re-exports it for the BTF package's modules (``wire``, ``parse``, ``maps``)."""

from tcemu.errors import BtfError

__all__ = ["BtfError"]
