"""The reader base: opening a source, chunked reading, and the iterate-once contract.

Readers pull the file in chunks of :data:`CHUNK` bytes and cut headers and packets out of
the chunk with ``struct.unpack_from`` and slices: one Python call per packet instead of two
``read`` calls, and memory bounded by one chunk plus the largest packet whatever the size
of the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import BinaryIO, cast

from tcemu.pcap.common import CaptureSource, Interface, PacketRecord, PcapError, source_name

__all__ = ["CHUNK", "CaptureReader", "open_binary", "refill"]

CHUNK = 1 << 20


def open_binary(source: CaptureSource, mode: str) -> tuple[BinaryIO, bool]:
    """The file object for ``source`` and whether we opened it (and so must close it)."""
    if isinstance(source, (str, os.PathLike)):
        # the reader or writer closes it
        try:
            return cast(BinaryIO, open(source, mode)), True
        except OSError as err:
            raise PcapError(err.strerror or str(err), path=os.fspath(source),
                            verb="write" if "w" in mode else "read") from err
    return source, False


def refill(read: Callable[[int], bytes], buf: bytes, pos: int, need: int) -> bytes:
    """``buf[pos:]`` followed by more of the file, ``need`` bytes long unless the file ends.

    A short result means end of file; the caller decides whether that is a truncation.
    Reads at least :data:`CHUNK` bytes, looping because pipes and sockets return less
    than asked.
    """
    parts = [buf[pos:]]
    have = len(parts[0])
    want = max(need, CHUNK)
    while have < need:
        more = read(want - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


class CaptureReader:
    """A capture being read: iterate it once for its :class:`PacketRecord` stream.

    ``interfaces`` holds the interfaces seen so far (a pcapng file may describe more
    as it goes).  Closing the reader closes the file only if the reader opened it.
    """

    format = "?"

    def __init__(self, f: BinaryIO, *, name: str, owns: bool, prefix: bytes = b"") -> None:
        self.name = name
        self.interfaces: list[Interface] = []
        self._f = f
        self._owns = owns
        self._buf = prefix
        self._base = 0          # file offset of _buf[0]
        self._gen: Generator[PacketRecord, None, None] | None = None

    @classmethod
    def open(cls, source: CaptureSource) -> CaptureReader:
        f, owns = open_binary(source, "rb")
        try:
            return cls(f, name=source_name(source), owns=owns)
        except BaseException:
            if owns:
                f.close()
            raise

    def _need(self, n: int, what: str) -> bytes:
        """Exactly ``n`` bytes of the header area at the start of the file, or an error."""
        if len(self._buf) < n:
            self._buf = refill(self._f.read, self._buf, 0, n)
        if len(self._buf) < n:
            raise self.error(f"truncated {what}: {len(self._buf)} of {n} bytes", offset=0)
        return self._buf[:n]

    def error(self, message: str, *, offset: int | None = None,
              packet: int | None = None) -> PcapError:
        return PcapError(message, path=self.name, offset=offset, packet=packet)

    def _packets(self) -> Generator[PacketRecord, None, None]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[PacketRecord]:
        if self._gen is None:
            self._gen = self._packets()
        return self._gen

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        if self._owns:
            self._f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} interfaces={len(self.interfaces)}>"
