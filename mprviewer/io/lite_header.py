"""The header facts the loader needs, read without pydicom for the common file layout.

A fresh process that opens a folder of CT or MR slices would otherwise spend most of its
time importing pydicom (about 0.2 s, its decoder registry included) and building a pydicom
Dataset per file. Nearly every such file has the 128-byte preamble, explicit-VR file meta and
an uncompressed explicit or implicit VR little-endian data set. For those, ``parse_lite``
walks the top-level elements with ``struct`` and keeps their raw bytes; ``LiteHeader``
decodes on request the few dozen values grouping, geometry and pixel reading ask for, to the
same values pydicom's ``Dataset.get`` gives (plain int/float/str, lists when multi-valued).

Everything else goes to pydicom, so nothing is lost: a keyword outside ``TAGS``, a value that
is empty, oddly encoded or not plain ASCII, or a private block pydicom would have to look up
is answered by the file's full pydicom header, parsed on first need (``LiteHeader.full``).
Files this walker does not fully understand (another transfer syntax, no preamble, command
elements, a header longer than the bytes read) get ``None`` and are read by pydicom at scan
time, exactly as before. This module imports neither pydicom nor numpy.
"""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

from mprviewer.io.sequence_skip import skip_items

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
PIXEL_KEYWORDS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}

# keyword -> (tag, VR) of what the loader reads (checked against pydicom's dictionary in
# the tests). Anything else is asked of the full header.
TAGS: dict[str, tuple[int, str]] = {
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "StudyDate": (0x00080020, "DA"),
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "Modality": (0x00080060, "CS"),
    "Manufacturer": (0x00080070, "LO"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "SliceThickness": (0x00180050, "DS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "GantryDetectorTilt": (0x00181120, "DS"),
    "TriggerTime": (0x00181060, "DS"),
    "EchoTime": (0x00180081, "DS"),
    "EchoNumbers": (0x00180086, "IS"),
    "DiffusionBValue": (0x00189087, "FD"),
    "DiffusionGradientOrientation": (0x00189089, "FD"),
    "ImagerPixelSpacing": (0x00181164, "DS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SeriesNumber": (0x00200011, "IS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "TemporalPositionIdentifier": (0x00200100, "IS"),
    "StackID": (0x00209056, "SH"),
    "DimensionIndexValues": (0x00209157, "UL"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "HighBit": (0x00280102, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "RescaleType": (0x00281054, "LO"),
    "DoseUnits": (0x30040002, "CS"),
    "GridFrameOffsetVector": (0x3004000C, "DS"),
    "DoseGridScaling": (0x3004000E, "DS"),
    "DirectoryRecordSequence": (0x00041220, "SQ"),
    "DimensionIndexSequence": (0x00209222, "SQ"),
    "SharedFunctionalGroupsSequence": (0x52009229, "SQ"),
    "PerFrameFunctionalGroupsSequence": (0x52009230, "SQ"),
    "FloatPixelData": (0x7FE00008, "OF"),
    "DoubleFloatPixelData": (0x7FE00009, "OD"),
    "PixelData": (0x7FE00010, "OB or OW"),  # never held: the walk stops before it
}

# Explicit VRs, and those whose length takes 4 bytes after 2 reserved ones.
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split())
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
_EXPLICIT = struct.Struct("<HH2sH")
_IMPLICIT = struct.Struct("<HHL")
_UINT32 = struct.Struct("<L")
_UNDEFINED = 0xFFFFFFFF
_MISSING = object()
# Character sets under which printable ASCII bytes decode to themselves.
_ASCII_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109",
                             "ISO_IR 110", "ISO_IR 144", "ISO_IR 127", "ISO_IR 126",
                             "ISO_IR 138", "ISO_IR 148", "ISO_IR 203", "ISO_IR 192",
                             "GB18030", "GBK"})
_SIEMENS_BLOCKS = ("SIEMENS MR HEADER",)  # private blocks the series splitter may read


class _Unsupported(Exception):
    """Bytes this walker leaves to pydicom."""


class LiteHeader:
    """A file's top-level header elements, raw, with pydicom-equal values on request.

    ``get`` and ``in`` answer the keywords of ``TAGS`` from the raw bytes and ask the full
    pydicom header (``full()``, parsed once, on first need) about anything else.
    """

    is_little_endian = True

    def __init__(self, buf: bytes, elements: dict[int, tuple[bytes, int, int]],
                 implicit: bool, meta: LiteHeader | None = None) -> None:
        self._buf = buf
        self._elements = elements  # tag -> (VR bytes, value start, value length)
        self.is_implicit_VR = implicit
        self._meta = meta
        self._loader: Callable[[], Any] | None = None
        self._full: Any = None
        self._lock = threading.Lock()
        self._ascii_text: bool | None = None

    # -- what the loader reads ---------------------------------------------------------
    @property
    def file_meta(self) -> LiteHeader | None:
        return self._meta

    def get(self, keyword: str, default: Any = None) -> Any:
        spec = TAGS.get(keyword)
        if spec is None:
            return self.full().get(keyword, default)
        entry = self._elements.get(spec[0])
        if entry is None:
            return default
        value = self._decode(entry, spec[1])
        if value is _MISSING:
            return self.full().get(keyword, default)
        return value

    def __contains__(self, keyword: object) -> bool:
        spec = TAGS.get(keyword) if isinstance(keyword, str) else None
        if spec is None:
            return keyword in self.full()
        return spec[0] in self._elements

    def raw(self, tag: int) -> bytes | None:
        """The raw value bytes of a top-level element (None when absent)."""
        entry = self._elements.get(tag)
        if entry is None:
            return None
        return self._buf[entry[1]:entry[1] + entry[2]]

    def raw_key(self, tags: tuple[int, ...]) -> tuple:
        """The raw (VR, bytes) of some elements: equal keys mean equal values."""
        out: list[object] = [self.is_implicit_VR]
        for tag in tags:
            entry = self._elements.get(tag)
            out.append(None if entry is None else (entry[0], self.raw(tag)))
        return tuple(out)

    def has_private_block(self, group: int, creators: tuple[str, ...] = _SIEMENS_BLOCKS) -> bool:
        """Whether a private creator of ``group`` names one of ``creators`` (or is not plain
        ASCII, so that only pydicom can say)."""
        for tag in self._elements:
            if tag >> 16 == group and 0x10 <= (tag & 0xFFFF) <= 0xFF:
                raw = self.raw(tag) or b""
                if not _printable(raw):
                    return True
                if raw.decode("ascii").strip(" \x00") in creators:
                    return True
        return False

    # -- the rest: pydicom -------------------------------------------------------------
    @property
    def header_bytes(self) -> bytes:
        """The file's bytes up to and including its pixel data element's header (the whole
        file when it has none): enough for pydicom to parse the same header."""
        return self._buf

    def set_loader(self, loader: Callable[[], Any]) -> None:
        """How to read this file's full pydicom header when something needs it."""
        self._loader = loader

    def full(self) -> Any:
        """The file's pydicom header (without pixel data), read on first call."""
        if self._full is None:
            with self._lock:
                if self._full is None:
                    if self._loader is None:
                        raise RuntimeError("no full header reader for this file")
                    self._full = self._loader()
        return self._full

    @property
    def full_loaded(self) -> bool:
        return self._full is not None

    # -- decoding ----------------------------------------------------------------------
    def _decode(self, entry: tuple[bytes, int, int], vr: str) -> Any:
        found, start, length = entry
        if found and found.decode("ascii") != vr:
            return _MISSING
        if not length:
            return _empty(vr)
        raw = self._buf[start:start + length]
        try:
            if vr in ("US", "UL", "FD"):
                return _binary(raw, vr)
            if vr == "SQ":
                return _MISSING
            if not _printable(raw):
                return _MISSING
            text = raw.decode("ascii")
            if vr in ("LO", "SH", "PN") and not self._plain_charset():
                return _MISSING
            if vr == "DA" and _setting("datetime_conversion"):
                return _MISSING  # pydicom would give date objects
            return _TEXT_PARSERS[vr](text)
        except (ValueError, KeyError, struct.error):
            return _MISSING

    def _plain_charset(self) -> bool:
        if self._ascii_text is None:
            raw = self.raw(TAGS["SpecificCharacterSet"][0])
            if raw is None:
                self._ascii_text = True
            else:
                names = {v.strip(" \x00") for v in raw.decode("latin-1").split("\\")}
                self._ascii_text = names <= _ASCII_CHARSETS
        return self._ascii_text


def _empty(vr: str) -> Any:
    """pydicom's value for an element without a value: None for numbers, "" for text (unless
    it was told to use None there too)."""
    if vr in ("US", "UL", "FD", "DS", "IS"):
        return None
    if vr == "SQ":
        return _MISSING
    if vr in ("DA", "PN") or _setting("use_none_as_empty_text_VR_value"):
        return _MISSING  # pydicom's own empty value types
    return ""


def _setting(name: str) -> bool:
    """A pydicom configuration flag (False while pydicom is not even imported)."""
    config = sys.modules.get("pydicom.config")
    return bool(config is not None and getattr(config, name, False))


_PRINTABLE = bytes([0, *range(32, 127)])


def _printable(raw: bytes) -> bool:
    """Printable ASCII (or NUL padding) only: what every DICOM character set reads alike."""
    return not raw.translate(None, _PRINTABLE)


def _binary(raw: bytes, vr: str) -> Any:
    fmt = {"US": "H", "UL": "L", "FD": "d"}[vr]
    size = struct.calcsize(fmt)
    if len(raw) % size:
        return _MISSING
    values = list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))
    return values[0] if len(values) == 1 else values


def _split(text: str) -> list[str]:
    return text.rstrip(" \x00").split("\\")


def _numbers(text: str, parse: Callable[[str], Any]) -> Any:
    parts = _split(text)
    values = []
    for part in parts:
        part = part.strip(" \x00")
        if not part:
            return _MISSING
        value = parse(part)
        if value is _MISSING:
            return _MISSING
        values.append(value)
    return values[0] if len(values) == 1 else values


def _ds(part: str) -> Any:
    if "_" in part:  # Python reads 1_0 as 10; leave such oddities to pydicom
        return _MISSING
    value = float(part)
    if value != value or value in (float("inf"), float("-inf")):
        return _MISSING
    return value


def _is(part: str) -> Any:
    if not part.lstrip("+-").isdigit():
        return _MISSING
    return int(part)


def _codes(text: str) -> Any:
    # pydicom strips the end of the whole value only: padding inside is left to it.
    parts = _split(text)
    if not any(parts) or any(p != p.strip(" \x00") for p in parts):
        return _MISSING
    return parts[0] if len(parts) == 1 else parts


def _uid(text: str) -> Any:
    value = text.rstrip(" \x00")
    if not value or "\\" in value or value[0] in " \x00":
        return _MISSING
    return value


def _long_text(text: str) -> Any:
    parts = _split(text)
    if len(parts) != 1 or not parts[0].strip():
        return _MISSING
    return parts[0].rstrip(" \x00")


_TEXT_PARSERS: dict[str, Callable[[str], Any]] = {
    "DS": lambda text: _numbers(text, _ds),
    "IS": lambda text: _numbers(text, _is),
    "CS": _codes,
    "UI": _uid,
    "LO": _long_text,
    "SH": _long_text,
    "PN": _long_text,  # str(PersonName) is its text; == compares the text
    "DA": _long_text,
}


# -- the walk ----------------------------------------------------------------------------
class LiteParse:
    """What ``parse_lite`` found: the header, where the pixel data element starts, its
    keyword, and whether the data set has one at all."""

    __slots__ = ("has_pixels", "header", "pixel_keyword", "pixel_offset")

    def __init__(self, header: LiteHeader, pixel_offset: int, pixel_keyword: str,
                 has_pixels: bool) -> None:
        self.header = header
        self.pixel_offset = pixel_offset
        self.pixel_keyword = pixel_keyword
        self.has_pixels = has_pixels


def parse_lite(buf: bytes, complete: bool) -> LiteParse | None:
    """The header of a file whose first bytes are ``buf``; None means "ask pydicom".

    ``complete`` says that ``buf`` is the whole file (a data set ending with the bytes has
    no pixel data rather than being cut off).
    """
    try:
        return _parse(buf, complete)
    except Exception:  # whatever went wrong, pydicom decides what the bytes are
        return None


def _parse(buf: bytes, complete: bool) -> LiteParse:
    if len(buf) < 140 or buf[128:132] != b"DICM":
        raise _Unsupported("no preamble")
    meta_elements, pos, _ = _walk(buf, 132, implicit=False, group=2)
    if not meta_elements or pos + 8 > len(buf):
        raise _Unsupported("no file meta, or nothing after it")
    if buf[pos:pos + 2] == b"\x00\x00":
        raise _Unsupported("command set elements")
    meta = LiteHeader(buf, meta_elements, implicit=False)
    ts = meta.get("TransferSyntaxUID")
    if ts not in (IMPLICIT_LE, EXPLICIT_LE):  # also a missing or undecodable one
        raise _Unsupported(f"transfer syntax {ts!r}")
    implicit = ts == IMPLICIT_LE
    vr_bytes = buf[pos + 4:pos + 6]
    looks_implicit = not (0x40 < vr_bytes[0] < 0x5B and 0x40 < vr_bytes[1] < 0x5B)
    if looks_implicit != implicit:
        raise _Unsupported("VR encoding differs from the transfer syntax")
    elements, end, stop = _walk(buf, pos, implicit=implicit, group=None)
    if stop is None and not (complete and end == len(buf)):
        raise _Unsupported("header runs past the bytes read")
    # The header's bytes and the pixel element's own header: what pydicom parses if asked.
    kept = buf[:end + 12] if stop is not None and end + 12 < len(buf) else buf
    header = LiteHeader(kept, elements, implicit, meta)
    meta._buf = kept  # the file meta lies before ``end`` too
    keyword = PIXEL_KEYWORDS.get(stop, "PixelData") if stop is not None else "PixelData"
    return LiteParse(header, end, keyword, stop is not None)


def _walk(buf: bytes, pos: int, implicit: bool,
          group: int | None) -> tuple[dict[int, tuple[bytes, int, int]], int, int | None]:
    """Top-level elements from ``pos`` up to a pixel data element (or, with ``group``, the
    end of that group): (elements, where the walk stopped, the pixel tag it stopped at)."""
    elements: dict[int, tuple[bytes, int, int]] = {}
    size = len(buf)
    last = -1
    while pos + 8 <= size:
        if implicit:
            hi, lo, length = _IMPLICIT.unpack_from(buf, pos)
            vr = b""
            start = pos + 8
        else:
            hi, lo, vr, length = _EXPLICIT.unpack_from(buf, pos)
            if group is not None and hi != group:
                return elements, pos, None
            if vr not in _VRS:
                raise _Unsupported(f"unknown VR {vr!r}")
            start = pos + 8
            if vr in _LONG_VRS:
                if pos + 12 > size:
                    raise _Unsupported("element header cut off")
                (length,) = _UINT32.unpack_from(buf, pos + 8)
                start = pos + 12
        tag = hi << 16 | lo
        if tag in PIXEL_KEYWORDS:
            return elements, pos, tag
        if hi == 0xFFFE or tag <= last:
            raise _Unsupported("delimiter, repeated or out-of-order tag in the data set")
        last = tag
        if length == _UNDEFINED:
            if group is not None or vr not in (b"", b"SQ", b"UN"):
                raise _Unsupported("undefined length outside a sequence")
            end = skip_items(buf, start, implicit, _VRS, _Unsupported)
            elements[tag] = (b"SQ", start, 0)
            pos = end + 8
        else:
            pos = start + length
            if pos > size:
                raise _Unsupported("value runs past the bytes read")
            elements[tag] = (vr, start, length)
    if pos != size:
        raise _Unsupported("element header cut off")
    return elements, pos, None
