"""pydicom decoding plugins for the JPEG family through imagecodecs, which releases the GIL.

pydicom's default plugins decode JPEG through pylibjpeg-libjpeg (about 10 ms a 512x512
frame, holding the GIL) and JPEG-LS through pyjpegls. imagecodecs wraps libjpeg-turbo 3
(baseline, extended 12-bit and lossless JPEG, several times faster) and CharLS, and lets
go of the GIL while it decodes, so the loader's threads decode frames in parallel. Each
plugin hands pydicom the same bytes pydicom's pylibjpeg plugin does (tests/test_fast_decoders.py
compares them on pydicom's test files), so pydicom's own processing (sign correction,
rescale, as_rgb) applies unchanged. Colour JPEG is left to pydicom's plugins (their colour
handling is what the rest of the loader expects). Without imagecodecs nothing is
registered and pydicom's plugins decode as before.

JPEG 2000 has its own plugin in ``jpeg2000``; RLE stays with pylibjpeg-rle, already
several times faster than GDCM.
"""

from __future__ import annotations

import threading

import numpy as np
from pydicom import uid
from pydicom.pixels.decoders.base import DecodeRunner

PLUGIN = "imagecodecs"
JPEG_SYNTAXES = (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
                 uid.JPEGLosslessSV1)
JPEGLS_SYNTAXES = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
SYNTAXES = JPEG_SYNTAXES + JPEGLS_SYNTAXES
DECODER_DEPENDENCIES = {syntax: ("imagecodecs>=2024.1",) for syntax in SYNTAXES}

_lock = threading.Lock()
_registered: bool | None = None


def is_available(transfer_syntax: str) -> bool:
    """The hook pydicom calls when the plugin is added."""
    try:
        import imagecodecs
    except ImportError:
        return False
    if transfer_syntax in JPEG_SYNTAXES:
        codec = getattr(imagecodecs, "JPEG8", None)
    elif transfer_syntax in JPEGLS_SYNTAXES:
        codec = getattr(imagecodecs, "JPEGLS", None)
    else:
        return False
    return bool(codec and codec.available)


def decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """One greyscale frame, in the layout pylibjpeg-libjpeg gives pydicom."""
    import imagecodecs

    if runner.samples_per_pixel != 1:
        raise NotImplementedError("colour JPEG is decoded by pydicom's own plugins")
    if runner.transfer_syntax in JPEGLS_SYNTAXES:
        frame = imagecodecs.jpegls_decode(src)
        runner.set_option("planar_configuration", 0)
        # As with pylibjpeg: the container follows the codestream's precision.
        precision = runner.get_option("jls_precision", runner.bits_stored)
        if 0 < precision <= 8:
            runner.set_option("bits_allocated", 8)
        elif 8 < precision <= 16:
            runner.set_option("bits_allocated", 16)
    else:
        frame = imagecodecs.jpeg8_decode(src)
    if frame.ndim != 2:
        raise ValueError(f"imagecodecs gave a {frame.shape} frame for greyscale data")
    bits = runner.get_option("bits_allocated", 0)
    itemsize = 1 if bits <= 8 else 2 if bits <= 16 else 4
    if frame.dtype.itemsize != itemsize:
        if frame.dtype.itemsize > itemsize:
            raise ValueError(f"imagecodecs gave {frame.dtype} for {bits}-bit samples")
        frame = frame.astype(f"<u{itemsize}")  # 8-bit samples in a 16-bit container
    return np.ascontiguousarray(frame).tobytes()


def register() -> bool:
    """Add the plugins to pydicom's JPEG and JPEG-LS decoders once; True when usable."""
    global _registered
    with _lock:
        if _registered is None:
            from pydicom.pixels.decoders import (
                JPEGBaseline8BitDecoder,
                JPEGExtended12BitDecoder,
                JPEGLosslessDecoder,
                JPEGLosslessSV1Decoder,
                JPEGLSLosslessDecoder,
                JPEGLSNearLosslessDecoder,
            )

            _registered = is_available(uid.JPEGBaseline8Bit) and is_available(
                uid.JPEGLSLossless)
            if _registered:
                for decoder in (JPEGBaseline8BitDecoder, JPEGExtended12BitDecoder,
                                JPEGLosslessDecoder, JPEGLosslessSV1Decoder,
                                JPEGLSLosslessDecoder, JPEGLSNearLosslessDecoder):
                    if PLUGIN not in decoder.available_plugins:
                        decoder.add_plugin(PLUGIN, (__name__, "decode_frame"))
        return _registered


def plugin_for(transfer_syntax: str) -> str:
    """The decoding_plugin to ask pydicom for ("" lets pydicom choose)."""
    return PLUGIN if transfer_syntax in SYNTAXES and register() else ""


# -- straight into the volume -------------------------------------------------------------
# A single-frame, unsigned greyscale file needs none of pydicom's processing after decoding
# (no sign correction, no colour), so its one compressed frame is read at the pixel data
# offset the header scan found and decoded into the volume's slice: no data set is parsed
# and the GIL is held only to read the bytes. Anything else, and any stream this path does
# not recognise, goes through pydicom (which then gives the usual messages).

_ITEM = b"\xfe\xff\x00\xe0"
_END = b"\xfe\xff\xdd\xe0"
_PIXEL_DATA = b"\xe0\x7f\x10\x00"
DIRECT_SYNTAXES = (*SYNTAXES, uid.JPEG2000Lossless, uid.JPEG2000)


def _fragments(data: bytes, implicit: bool) -> bytes | None:
    """The one frame of encapsulated pixel data starting at its element's tag, or None."""
    if data[:4] != _PIXEL_DATA:
        return None
    pos = 8 if implicit else 12
    length = int.from_bytes(data[pos - 4:pos], "little")
    if length != 0xFFFFFFFF:
        return None
    parts = []
    first = True
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        pos += 8
        if tag == _END:
            break
        if tag != _ITEM or size == 0xFFFFFFFF or pos + size > len(data):
            return None
        if not first:  # the first item is the basic offset table
            parts.append(data[pos:pos + size])
        first = False
        pos += size
    else:
        return None
    return b"".join(parts) if parts else None


def decode_into(instance: object, out: np.ndarray, signed: bool, samples: int,
                photometric: str) -> bool:
    """Decode a single-frame file's pixels into ``out`` (rows x columns, its unsigned
    stored type); False (nothing written) when this path does not apply.

    The caller has already checked the file's decoded size (``decoded.check_instance``);
    the stream's own declared size is checked here before the decoder runs.
    """
    from mprviewer.io.decoded import stream_size

    inst: object = instance
    ts = getattr(inst, "transfer_syntax", "")
    # The header scan notes where the pixel data element starts (Instance.pixel_offset
    # keeps it for native files only).
    facts = getattr(inst, "facts", None)
    if facts is None:
        facts = getattr(inst, "header", None)
    offset = getattr(facts, "__dict__", {}).get("_mprviewer_pixel_offset")
    path = getattr(getattr(inst, "member", None), "path", None)
    if (ts not in DIRECT_SYNTAXES or signed or samples != 1 or offset is None or not path
            or getattr(inst, "frames", 1) != 1 or out.dtype.kind != "u" or out.ndim != 2
            or not photometric.startswith("MONOCHROME") or not out.flags.c_contiguous):
        return False
    if ts in SYNTAXES and not register():
        return False
    try:
        import imagecodecs

        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        stream = _fragments(data, implicit=ts == "1.2.840.10008.1.2")
        if stream is None or stream_size(stream) != out.shape:
            return False
        if ts in JPEG_SYNTAXES:
            decoded = imagecodecs.jpeg8_decode(stream)
        elif ts in JPEGLS_SYNTAXES:
            decoded = imagecodecs.jpegls_decode(stream)
        else:
            decoded = imagecodecs.jpeg2k_decode(stream, numthreads=1)
    except Exception:  # pydicom's path decodes it or says why not
        return False
    if (decoded.shape != out.shape or decoded.dtype.kind != "u"
            or decoded.dtype.itemsize > out.dtype.itemsize):
        return False
    out[...] = decoded
    return True
