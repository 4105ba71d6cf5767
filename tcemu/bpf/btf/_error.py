"""``BtfError``: the one exception the BTF package raises on purpose.

It lives in this leaf module (re-exported as ``tcemu.bpf.btf.BtfError``) rather than in the
package ``__init__`` only because ``wire``, ``parse`` and ``maps`` raise it and ``__init__``
imports them: defining it there would make an import cycle.
"""

from __future__ import annotations

from tcemu.errors import TcemuError

__all__ = ["BtfError"]


# TODO(lead): move BtfError into tcemu/errors.py (TcemuError -> BtfError(type_id, offset)) and
# draw it in that module's tree; this module then shrinks to a re-export.
class BtfError(TcemuError):
    """A ``.BTF`` / ``.BTF.ext`` blob, or a BTF-defined map, is malformed or unsupported.

    ``type_id`` is the BTF type the problem was found in (``None`` when it is not about one
    type); ``offset`` is the byte offset in the section being read (``None`` when the problem
    is not tied to a position, e.g. a dangling reference found after parsing).
    """

    def __init__(self, message: str, *, type_id: int | None = None, offset: int | None = None,
                 verb: str = "parse btf") -> None:
        self.type_id = type_id
        self.offset = offset
        self.reason = message
        where = []
        if type_id is not None:
            where.append(f"type {type_id}")
        if offset is not None:
            where.append(f"at byte {offset}")
        prefix = f"{verb}: {' '.join(where)}: " if where else f"{verb}: "
        super().__init__(prefix + message)
