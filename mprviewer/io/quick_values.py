"""Header values the loader reads per image, decoded straight from their raw bytes.

pydicom converts an element on first access (hooks, value parsing, DSfloat/IS/UID objects),
which costs some 15 us each: over a few hundred files that is more than the header walk
itself. The values needed per image (sizes, bits, UIDs, codes, positions, rescale) are ASCII
numbers, codes and UIDs or little-endian unsigned shorts. Well-formed ones are decoded here
to the plain Python values pydicom's would compare equal to; anything else (empty, oddly
encoded, wrong VR, already converted) is left to ``Dataset.get``, so results never differ.
A LiteHeader (no pydicom Dataset at all) answers for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mprviewer.io.lite_header import TAGS, LiteHeader

KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
    "MediaStorageSOPClassUID", "TransferSyntaxUID", "Modality", "ImageType",
    "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "SamplesPerPixel", "NumberOfFrames", "InstanceNumber",
    "SeriesNumber", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept", "DoseGridScaling",
    "SliceThickness", "SpacingBetweenSlices", "GantryDetectorTilt",
)
_MISSING = object()


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip(" \x00")


def _us(raw: bytes) -> Any:
    return int.from_bytes(raw, "little") if len(raw) == 2 else _MISSING


def _is(raw: bytes) -> Any:
    text = _text(raw)
    return int(text) if text and "\\" not in text else _MISSING


def _ds(raw: bytes) -> Any:
    text = _text(raw)
    if not text:
        return _MISSING
    if "\\" not in text:
        return float(text)
    parts = text.split("\\")
    return [float(p) for p in parts] if all(parts) else _MISSING


def _ui(raw: bytes) -> Any:
    text = _text(raw)
    return text if text and "\\" not in text else _MISSING


def _cs(raw: bytes) -> Any:
    text = _text(raw)
    if not text:
        return _MISSING
    parts = text.split("\\")
    return parts[0] if len(parts) == 1 else parts


_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "US": _us, "IS": _is, "DS": _ds, "UI": _ui, "CS": _cs,
}
_SPECS: dict[str, tuple[int, str, Callable[[bytes], Any]]] = {}
for _keyword in KEYWORDS:
    _tag, _vr = TAGS[_keyword]
    _SPECS[_keyword] = (_tag, _vr, _PARSERS[_vr])
_RAW_ELEMENT: list[type] = []  # pydicom's RawDataElement, once a Dataset has been seen


def header_value(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` for the loader's per-image keywords, without the cost
    of converting the element. Numbers come back as int/float (lists of them when there
    are several), UIDs and codes as str (a list for a multi-valued code string)."""
    spec = _SPECS.get(keyword)
    if spec is None or ds.__class__ is LiteHeader:
        return ds.get(keyword, default)
    tag, vr, parse = spec
    if not _RAW_ELEMENT:
        from pydicom.dataelem import RawDataElement

        _RAW_ELEMENT.append(RawDataElement)
    # The element store itself: Dataset.get_item would only add a Tag() conversion.
    elem = ds._dict.get(tag)
    if elem is None:
        return default
    if (isinstance(elem, _RAW_ELEMENT[0]) and elem.VR in (vr, None) and elem.value
            and elem.is_little_endian and isinstance(elem.value, bytes)):
        try:
            value = parse(elem.value)
        except ValueError:
            value = _MISSING
        if value is not _MISSING:
            return value
    return ds.get(keyword, default)
