"""Reading a header without letting a crafted file run the parser for ever.

A file of zeros after the ``DICM`` marker parses as an endless run of empty elements: pydicom
reads a 4 GiB sparse file eight bytes at a time for half an hour. ``BoundedHeader`` hands the
parser a view of the file that stops at the header cap (``Limits.max_header_bytes``) and at a
long run of one repeated element header, which no real data set holds (tags ascend).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from mprviewer.io.limits import LimitExceeded, cap_hint, describe_size

ELEMENT_HEADER = 8  # pydicom reads each element's tag, VR and length in one 8-byte read
MAX_REPEATS = 1024


class HeaderTooLong(LimitExceeded):
    """A header that runs past the cap or repeats one element endlessly."""


class BoundedHeader(io.RawIOBase):
    """A read-only, seekable view of ``fh`` for header parsing (see the module doc)."""

    def __init__(self, fh: BinaryIO, cap: float, name: str) -> None:
        super().__init__()
        self._fh = fh
        self._cap = cap
        self.name = name
        self._last = b""
        self._repeats = 0
        self._pos = fh.tell()  # kept here: asking a buffered file costs a system call

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._fh.seek(offset, whence)
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        position = self._pos
        room = self._cap - position
        if n is None or n < 0:  # all that is left, as long as it fits
            data = self._fh.read(int(min(room + 1, 1 << 62)))
            self._pos += len(data)
            if len(data) > room:
                raise self._too_long()
            return data
        if n > room:
            raise self._too_long()
        data = self._fh.read(n)
        self._pos += len(data)
        if n == ELEMENT_HEADER:
            if data == self._last:
                self._repeats += 1
                if self._repeats >= MAX_REPEATS:
                    raise HeaderTooLong(
                        f"the header repeats one element {MAX_REPEATS} times at byte "
                        f"{position} (zeros or junk after the DICM marker); not read")
            else:
                self._last = data
                self._repeats = 0
        return data

    def _too_long(self) -> HeaderTooLong:
        return HeaderTooLong(
            f"the header runs past {describe_size(self._cap)} without reaching the pixel "
            f"data (damaged, or not an image); not read. {cap_hint('max_header_bytes')}")

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)
