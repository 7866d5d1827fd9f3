"""A pydicom decoding plugin for JPEG 2000 through imagecodecs, which releases the GIL.

pylibjpeg-openjpeg and Pillow both decode JPEG 2000 holding the GIL, so the loader's
threads decode one frame at a time. imagecodecs wraps the same OpenJPEG library but lets
go of the GIL while it decodes, so frames really decode in parallel. The plugin hands
pydicom the same bytes pylibjpeg-openjpeg does (tests/test_jpeg2000.py compares them), so
pydicom's own processing (sign correction, colour, as_rgb) applies unchanged. Without
imagecodecs nothing is registered and pydicom's plugins decode as before.
"""

from __future__ import annotations

import threading

from pydicom import uid
from pydicom.pixels.common import PhotometricInterpretation as PI
from pydicom.pixels.decoders.base import DecodeRunner

PLUGIN = "imagecodecs"
SYNTAXES = (uid.JPEG2000Lossless, uid.JPEG2000)
DECODER_DEPENDENCIES = {syntax: ("imagecodecs>=2023.1",) for syntax in SYNTAXES}

_lock = threading.Lock()
_registered: bool | None = None


def is_available(transfer_syntax: str) -> bool:
    """The hook pydicom calls when the plugin is added."""
    if transfer_syntax not in SYNTAXES:
        return False
    try:
        import imagecodecs
    except ImportError:
        return False
    return bool(getattr(imagecodecs, "JPEG2K", None) and imagecodecs.JPEG2K.available)


def decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """One frame, in the layout pylibjpeg-openjpeg gives pydicom."""
    import imagecodecs

    frame = imagecodecs.jpeg2k_decode(src, numthreads=1)
    # OpenJPEG applies the inverse colour transform: YBR_ICT and YBR_RCT come out as RGB.
    if runner.photometric_interpretation in (PI.YBR_ICT, PI.YBR_RCT):
        runner.set_option("photometric_interpretation", PI.RGB)
    # The container follows the codestream's precision, as with pylibjpeg-openjpeg.
    precision = runner.get_option("j2k_precision", runner.bits_stored)
    runner.set_option("bits_allocated", 8 if precision <= 8 else 16 if precision <= 16 else 32)
    if frame.dtype.itemsize * 8 != runner.get_option("bits_allocated", 0):
        raise ValueError(f"imagecodecs gave {frame.dtype} for {precision}-bit samples")
    return frame.tobytes()


def register() -> bool:
    """Add the plugin to pydicom's JPEG 2000 decoders once; True when it can be used."""
    global _registered
    with _lock:
        if _registered is None:
            from pydicom.pixels.decoders import JPEG2000Decoder, JPEG2000LosslessDecoder

            _registered = is_available(uid.JPEG2000Lossless)
            if _registered:
                for decoder in (JPEG2000LosslessDecoder, JPEG2000Decoder):
                    if PLUGIN not in decoder.available_plugins:
                        decoder.add_plugin(PLUGIN, (__name__, "decode_frame"))
        return _registered


def plugin_for(transfer_syntax: str) -> str:
    """The decoding_plugin to ask pydicom for ("" lets pydicom choose)."""
    return PLUGIN if transfer_syntax in SYNTAXES and register() else ""
