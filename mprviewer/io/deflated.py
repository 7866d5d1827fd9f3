"""Deflated Explicit VR Little Endian files, inflated as they are read and never past a cap.

pydicom inflates a deflated data set whole, in one ``zlib.decompress``: 1 MB of deflated
zeros becomes a gigabyte just to read a header. Here the data set is inflated piece by piece
as the parser asks for bytes, so a header scan inflates only up to the pixel data, and every
byte inflated counts against a cap (the header cap, or the decoded size when loading pixels)
and the archives' expansion ratio (``max_zip_ratio`` past ``zip_ratio_min_bytes``).
"""

from __future__ import annotations

import io
import zlib
from typing import Any, BinaryIO

from mprviewer.io.limits import LimitExceeded, Limits, cap_hint, describe_size

DEFLATED = "1.2.840.10008.1.2.1.99"
DEFLATED_BYTES = DEFLATED.encode("ascii")
READ_CHUNK = 64 * 1024
INFLATE_STEP = 1024 * 1024
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)


class InflatingReader(io.RawIOBase):
    """A seekable stream of the inflated bytes of ``raw`` (a raw deflate stream), inflated
    only as far as it is read, at most ``cap`` bytes and within the expansion ratio."""

    def __init__(self, raw: BinaryIO, name: str, cap: float, limits: Limits,
                 ratio: bool = True) -> None:
        super().__init__()
        self._raw = raw
        self.name = name
        self._cap = cap
        self._limits = limits
        self._ratio = ratio
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._pos = 0
        self._consumed = 0  # compressed bytes fed to the inflater
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            self._fill(float("inf"))
            target = len(self._buffer) + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        self._pos = max(0, target)
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        end = float("inf") if n is None or n < 0 else self._pos + n
        self._fill(end)
        data = bytes(self._buffer[self._pos:int(min(end, len(self._buffer)))])
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def _fill(self, end: float) -> None:
        """Inflate until ``end`` bytes are available or the stream ends."""
        while len(self._buffer) < end and not self._done:
            data = self._inflater.unconsumed_tail
            if not data:
                data = self._raw.read(READ_CHUNK)
                self._consumed += len(data)
                if not data:
                    self._buffer += self._inflater.flush()
                    self._done = True
                    break
            try:  # a mebibyte at a time, so the caps are checked before memory grows
                self._buffer += self._inflater.decompress(data, INFLATE_STEP)
            except zlib.error as exc:
                raise OSError(f"{self.name}: the deflated data set is damaged ({exc})") from exc
            self._done = self._inflater.eof
            self._check()

    def _check(self) -> None:
        size = len(self._buffer)
        if size > self._cap:
            raise LimitExceeded(
                f"{self.name}: the deflated data set inflates past "
                f"{describe_size(self._cap)}, more than it can hold; stopped. "
                f"{cap_hint('max_header_bytes')}")
        lim = self._limits
        if (self._ratio and size > lim.zip_ratio_min_bytes
                and size > lim.max_zip_ratio * max(self._consumed, 1)):
            raise LimitExceeded(
                f"{self.name}: the deflated data set expanded {size / max(self._consumed, 1):.0f}"
                f" times ({describe_size(self._consumed)} to at least {describe_size(size)}), "
                f"more than the limit of {lim.max_zip_ratio:g}; it looks like a deflate bomb "
                f"and was not read. {cap_hint('max_zip_ratio')}")


def is_deflated(prefix: bytes) -> bool:
    """Whether the file meta at the start of ``prefix`` may name the deflated syntax."""
    return DEFLATED_BYTES in prefix[:4096]


def read_deflated(fh: BinaryIO, name: str, cap: float, stop_before_pixels: bool,
                  limits: Limits | None = None, ratio: bool = True) -> tuple[Any, int | None]:
    """(FileDataset, the pixel tag the header scan stopped at or None) of a deflated file.

    With ``stop_before_pixels`` the data set is read up to its pixel data; otherwise up to
    and including it (anything after is left uninflated).
    """
    from pydicom.dataset import FileDataset
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble

    from mprviewer.io.bounded import BoundedHeader

    limits = limits or Limits.from_env()
    preamble = read_preamble(fh, True)
    file_meta = _read_file_meta_info(fh)
    if str(file_meta.get("TransferSyntaxUID", "")) != DEFLATED:
        raise ValueError("not a deflated data set")
    inflated = InflatingReader(fh, name, cap, limits, ratio)
    reader = BoundedHeader(inflated, cap, name)  # endless empty elements stop early too
    stopped: list[int] = []

    def stop(tag: Any, vr: Any, length: int) -> bool:
        if stop_before_pixels and int(tag) in PIXEL_TAGS:
            stopped.append(int(tag))
            return True
        return int(tag) > PIXEL_TAGS[-1]

    dataset = read_dataset(reader, False, True, stop_when=stop)  # type: ignore[arg-type]
    ds = FileDataset(reader, dataset, preamble, file_meta, False, True)  # type: ignore[arg-type]
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds, (stopped[0] if stopped else None)
