"""Stepping over undefined-length sequences in a raw little-endian data set.

Both header walkers (``fast_header``, which builds pydicom elements, and ``lite_header``,
which runs without pydicom) keep only top-level elements: a sequence whose length is
undefined is stepped over item by item to its delimiter, not read. Anything they cannot
step over raises the walker's own ``error``, and the file goes to pydicom's parser.
"""

from __future__ import annotations

import struct
from collections.abc import Container

IMPLICIT = struct.Struct("<HHL")
EXPLICIT = struct.Struct("<HH2sH")
UINT32 = struct.Struct("<L")
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
MAX_DEPTH = 32
# Explicit VRs whose length takes 4 bytes after 2 reserved ones.
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())


def skip_items(buf: bytes, pos: int, implicit: bool, known_vrs: Container[bytes],
               error: type[Exception], depth: int = 0) -> int:
    """Where the sequence delimiter of an undefined-length value starting at ``pos`` is."""
    if depth > MAX_DEPTH:
        raise error("sequences nested too deep")
    size = len(buf)
    while pos + 8 <= size:
        hi, lo, length = IMPLICIT.unpack_from(buf, pos)
        tag = hi << 16 | lo
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise error("sequence holds something other than items")
        if length == UNDEFINED:
            pos = _skip_item(buf, pos + 8, implicit, known_vrs, error, depth + 1)
        else:
            pos += 8 + length
    raise error("sequence runs past the bytes read")


def _skip_item(buf: bytes, pos: int, implicit: bool, known_vrs: Container[bytes],
               error: type[Exception], depth: int) -> int:
    """The position after the item delimiter of an undefined-length item."""
    size = len(buf)
    while pos + 8 <= size:
        if implicit:
            hi, lo, length = IMPLICIT.unpack_from(buf, pos)
            start = pos + 8
        else:
            hi, lo, vr, length = EXPLICIT.unpack_from(buf, pos)
            if vr not in known_vrs and hi != 0xFFFE:
                raise error(f"unknown VR {vr!r} in an item")
            start = pos + 8
            if vr in LONG_VRS:
                (length,) = UINT32.unpack_from(buf, pos + 8)
                start = pos + 12
        tag = hi << 16 | lo
        if tag == ITEM_END:
            return pos + 8
        if hi == 0xFFFE:
            raise error("stray delimiter in an item")
        if length == UNDEFINED:
            pos = skip_items(buf, start, implicit, known_vrs, error, depth + 1) + 8
        else:
            pos = start + length
    raise error("item runs past the bytes read")
