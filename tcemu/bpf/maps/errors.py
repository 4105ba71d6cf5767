"""The map errors: what a host-side map operation raises instead of the kernel's ``-errno``.

Every class carries the kernel errno the same operation returns through ``bpf(2)``, so a
caller (or a differential test) can compare ``err.errno`` with the kernel's.  In-VM map
operations never raise; they return the negative errno, as the kernel helpers do.

``MapError`` itself lives in :mod:`tcemu.errors` with the rest of the tree; the
errno-specific subclasses live here and are re-exported by :mod:`tcemu.bpf.maps`.
"""

from __future__ import annotations

import errno as _errno

from tcemu.errors import ENOTSUPP, MapError, errno_name

__all__ = [
    "ENOTSUPP",
    "BatchError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeySizeError",
    "MapError",
    "ValueSizeError",
    "errno_name",
]


class KeyNotFoundError(MapError):
    """No element under the key (``ENOENT``; in the VM, ``-ENOENT``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errno=_errno.ENOENT)


class KeyExistsError(MapError):
    """``BPF_NOEXIST`` update of a key that exists (``EEXIST``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errno=_errno.EEXIST)


class KeySizeError(MapError):
    """A host key of the wrong length (``EINVAL``); the kernel reads exactly key_size bytes."""

    def __init__(self, message: str, *, got: int, expected: int) -> None:
        self.got = got
        self.expected = expected
        super().__init__(f"{message}: key is {got} bytes, expected {expected}",
                         errno=_errno.EINVAL)


class ValueSizeError(MapError):
    """A host value of the wrong length (``EINVAL``); per-CPU maps take the whole ABI layout."""

    def __init__(self, message: str, *, got: int, expected: int) -> None:
        self.got = got
        self.expected = expected
        super().__init__(f"{message}: value is {got} bytes, expected {expected}",
                         errno=_errno.EINVAL)


class BatchError(MapError):
    """A batch command stopped early; ``done`` elements were processed (``attr.batch.count``)."""

    def __init__(self, message: str, *, errno: int, done: int) -> None:
        self.done = done
        super().__init__(f"{message} after {done} element(s)", errno=errno)
