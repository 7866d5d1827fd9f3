"""What pixel data takes once decoded, checked before anything is decoded or allocated.

A 1.8 KB JPEG 2000 stream can declare a 16384x16384 image: the decoder then allocates
512 MiB per frame, and the loader and renderer several copies more. Three rules stop such
decompression bombs before the decoder runs:

- the decoded size of a file (rows x columns x frames x bytes per sample x samples, with the
  sample size the decoder really produces) and of a series' volume stays under
  ``Limits.max_decoded_bytes`` (``MPRVIEWER_MAX_DECODED_BYTES``);
- compressed pixel data that would decode to more than ``RATIO_MIN_BYTES`` may expand at
  most ``Limits.max_decoded_ratio`` times its file's size (real images compress 2-20 times,
  blank ones a few hundred times; a bomb expands hundreds of thousands of times);
- every JPEG, JPEG-LS and JPEG 2000 frame's own header must not declare a larger image than
  the DICOM header, since the decoder allocates what the stream declares.
"""

from __future__ import annotations

import struct
from typing import Any

from mprviewer.io.limits import MIB, LimitExceeded, Limits, cap_hint, describe_size
from mprviewer.io.quick_values import header_value

RATIO_MIN_BYTES = 64 * MIB
_NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
# Deflated files inflate only up to their expected size (io.deflated), so no ratio applies.
_NO_RATIO = (*_NATIVE, "1.2.840.10008.1.2.1.99")
# JPEG start-of-frame markers (every process but DHT C4, JPG C8 and DAC CC), and JPEG-LS's.
_SOF = frozenset([*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC),
                  *range(0xCD, 0xD0), 0xF7])
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])
_J2K_SIZ = b"\xff\x4f\xff\x51"
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


class DecodedSizeError(LimitExceeded):
    """Pixel data that would take more memory once decoded than the caps allow."""


def _int(ds: Any, keyword: str, default: int) -> int:
    try:
        return int(header_value(ds, keyword, default) or default)
    except (TypeError, ValueError):
        return default


def sample_layout(ds: Any) -> tuple[int, int]:
    """(bytes per sample, samples per pixel) of the decoded array pydicom returns.

    The sample size follows the larger of BitsAllocated and BitsStored (a JPEG 2000 decoder
    follows the stream's precision); palette colour comes out as three 16-bit samples
    before the loader scales it to 8 bits.
    """
    bits = max(_int(ds, "BitsAllocated", 8), _int(ds, "BitsStored", 8), 1)
    if "DoubleFloatPixelData" in ds or ds.__dict__.get(
            "_mprviewer_pixel_keyword") == "DoubleFloatPixelData":
        bits = 64
    size = 1 if bits <= 8 else 2 if bits <= 16 else 4 if bits <= 32 else 8
    samples = max(_int(ds, "SamplesPerPixel", 1), 1)
    if str(header_value(ds, "PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        samples, size = 3, max(size, 2)
    return size, samples


def decoded_bytes(ds: Any, rows: int, columns: int, frames: int) -> int:
    """Bytes of the decoded pixel array of one file."""
    size, samples = sample_layout(ds)
    return rows * columns * max(frames, 1) * size * samples


def check_instance(instance: Any, limits: Limits | None = None) -> None:
    """Refuse, before decoding, a file whose pixels would decode past the caps."""
    limits = limits or Limits.from_env()
    name = instance.member.name
    rows, columns, frames = instance.rows, instance.columns, instance.frames
    nbytes = decoded_bytes(instance.facts, rows, columns, frames)
    size, samples = sample_layout(instance.facts)
    if nbytes > limits.max_decoded_bytes:
        raise DecodedSizeError(
            f"{name}: the pixel data would take {describe_size(nbytes)} once decoded "
            f"({columns}x{rows} pixels x {frames} frames x {samples} samples of {size} bytes), "
            f"more than the limit of {describe_size(limits.max_decoded_bytes)}; not decoded. "
            f"{cap_hint('max_decoded_bytes')}")
    if instance.transfer_syntax in _NO_RATIO or nbytes <= RATIO_MIN_BYTES:
        return
    stored = max(int(instance.member.size), 1)
    ratio = nbytes / stored
    if ratio > limits.max_decoded_ratio:
        raise DecodedSizeError(
            f"{name}: {describe_size(stored)} of compressed data would decode to "
            f"{describe_size(nbytes)} ({columns}x{rows} pixels x {frames} frames), "
            f"{ratio:.0f} times more, past the limit of {limits.max_decoded_ratio:g}; the file "
            f"looks like a decompression bomb and was not decoded. "
            f"{cap_hint('max_decoded_ratio')}")


# What the loader keeps per frame besides its pixels (its place, orientation, keys), counted
# against the decoded-size cap so that millions of tiny frames cannot exhaust memory either.
FRAME_BOOKKEEPING = 16 * 1024


def frames_problem(ds: Any, rows: int, columns: int, frames: int,
                   limits: Limits | None = None) -> str | None:
    """Why a multi-frame file is refused at scan time, or None: its frames, pixels and
    bookkeeping, would take more than the decoded-size cap (a sparse file of a few
    kilobytes on disk can claim a billion frames)."""
    limits = limits or Limits.from_env()
    size, samples = sample_layout(ds)
    per_frame = max(rows * columns * size * samples, FRAME_BOOKKEEPING)
    if frames * per_frame <= limits.max_decoded_bytes:
        return None
    return (f"{frames} frames of {columns}x{rows} would take "
            f"{describe_size(frames * per_frame)} once loaded (at least "
            f"{describe_size(FRAME_BOOKKEEPING)} a frame), more than the limit of "
            f"{describe_size(limits.max_decoded_bytes)}; not loaded. "
            f"{cap_hint('max_decoded_bytes')}")


def check_volume(shape: tuple[int, ...], itemsize: int, what: str,
                 limits: Limits | None = None, action: str = "not loaded") -> None:
    """Refuse a series whose volume would take more than the cap, before allocating it;
    ``action`` says what was not done."""
    limits = limits or Limits.from_env()
    nbytes = itemsize
    for n in shape:
        nbytes *= int(n)
    if nbytes > limits.max_decoded_bytes:
        dims = "x".join(str(int(n)) for n in shape)
        raise DecodedSizeError(
            f"{what}: the volume ({dims} voxels of {itemsize} bytes) would take "
            f"{describe_size(nbytes)}, more than the limit of "
            f"{describe_size(limits.max_decoded_bytes)}; {action}. "
            f"{cap_hint('max_decoded_bytes')}")


def stream_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) a JPEG, JPEG-LS or JPEG 2000 frame declares, or None if unknown.

    Only the start of a frame is read: a J2K codestream starts with its SIZ marker, a JP2
    file with its signature box (the codestream's SIZ follows a few boxes later).
    """
    head = bytes(data[:4096])
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    at = 0 if head[:4] == _J2K_SIZ else head.find(_J2K_SIZ) if head[:12] == _JP2 else -1
    if at >= 0 and at + 24 <= len(head):
        xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", head, at + 8)
        return max(ysiz - yosiz, 0), max(xsiz - xosiz, 0)
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", head, pos + 2)
        if marker in _SOF:
            if pos + 9 > len(head):
                return None
            height, width = struct.unpack_from(">HH", head, pos + 5)
            return height, width
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def check_streams(ds: Any, instance: Any) -> None:
    """Refuse, before decoding, a compressed frame that declares a larger image than the
    DICOM header (the decoder would allocate what the stream says)."""
    if instance.transfer_syntax in _NO_RATIO or "PixelData" not in ds:
        return
    from pydicom.encaps import generate_frames

    rows, columns = instance.rows, instance.columns
    frames = generate_frames(ds.PixelData, number_of_frames=instance.frames)
    while True:
        try:
            frame = next(frames)
            declared = stream_size(frame)
        except StopIteration:
            return
        except (ValueError, TypeError, struct.error):
            return  # not encapsulated as expected: the decoder reports it
        if declared is None:
            continue
        height, width = declared
        if height > rows or width > columns:
            raise DecodedSizeError(
                f"{instance.member.name}: a compressed frame declares {width}x{height} pixels "
                f"but the header says {columns}x{rows}; the file is damaged or a "
                f"decompression bomb and was not decoded")
