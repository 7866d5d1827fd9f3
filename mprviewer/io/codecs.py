"""Which compressed transfer syntaxes can be decoded here, and what to install when not.

pydicom decodes through plugins (pylibjpeg and its -libjpeg, -openjpeg and -rle packages,
pyjpegls, python-gdcm, Pillow). Checking before decoding turns "no plugin" into a
MissingCodecError that names the package, instead of a decoder's traceback.
"""

from __future__ import annotations

from mprviewer.errors import DicomError, MissingCodecError

NATIVE = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
}

# Transfer syntax -> the pip package(s) whose plugin decodes it.
CODEC_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg (HTJ2K)",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle (or none: pydicom's own RLE decoder)",
}


def syntax_name(uid: str) -> str:
    """A readable name for a transfer syntax UID."""
    try:
        from pydicom.uid import UID

        name = UID(uid).name
    except Exception:
        name = ""
    return name if name and name != uid else "unknown transfer syntax"


def ensure_decodable(transfer_syntax: str, what: str) -> None:
    """Raise MissingCodecError (or DicomError for unknown syntaxes) if pixels can't be decoded.

    ``what`` names the file for the message.
    """
    if transfer_syntax in NATIVE:
        return
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
    except (NotImplementedError, ValueError) as exc:
        raise DicomError(
            f"{what}: pixel data uses {syntax_name(transfer_syntax)} ({transfer_syntax}), "
            "which mprviewer cannot decode; convert the study to an uncompressed or "
            "JPEG/JPEG 2000 syntax (e.g. with dcmdjpeg or gdcmconv)"
        ) from exc
    if not decoder.is_available:
        raise MissingCodecError(missing_codec_message(transfer_syntax, what))


def missing_codec_message(transfer_syntax: str, what: str) -> str:
    package = CODEC_PACKAGES.get(transfer_syntax, "pylibjpeg with its plugins, or python-gdcm")
    return (f"{what}: pixel data is compressed with {syntax_name(transfer_syntax)} "
            f"({transfer_syntax}) and no installed plugin can decode it; install "
            f"{package} (pip install ...) and open it again")


def available_syntaxes() -> dict[str, bool]:
    """Every compressed syntax mprviewer knows, and whether it decodes here (for `info`)."""
    from pydicom.pixels import get_decoder

    found = {}
    for uid in CODEC_PACKAGES:
        try:
            found[uid] = bool(get_decoder(uid).is_available)
        except (NotImplementedError, ValueError):
            found[uid] = False
    return found
