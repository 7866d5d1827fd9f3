"""Parse the common DICOM header layout with struct, building the Dataset pydicom would.

Nearly every CT/MR file has the 128-byte preamble, explicit-VR file meta and an explicit or
implicit VR little-endian data set. For those, walking the elements with ``struct`` and
handing pydicom ``RawDataElement`` objects (which it converts lazily, exactly as after its
own read) costs a fraction of ``dcmread``. Sequences are not parsed here: their raw bytes
are kept, undefined-length ones included, and pydicom parses them when first accessed.
Anything this reader does not fully understand returns ``None`` so that the caller falls
back to ``pydicom.dcmread``, which keeps behaviour on odd or hostile files unchanged.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import PrivateTransferSyntaxes
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from mprviewer.io.sequence_skip import skip_items

PIXEL_KEYWORDS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
# Encodings pydicom reads differently (big endian, deflated) or from a registry of its own.
_OTHER_ENCODINGS = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
                    *(str(uid) for uid in PrivateTransferSyntaxes)}

_KNOWN_VRS = {str(vr).encode("ascii"): str(vr) for vr in VR}
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_EXPLICIT = struct.Struct("<HH2sH")
_IMPLICIT = struct.Struct("<HHL")
_UINT32 = struct.Struct("<L")
_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
# RawDataElement(...) without the NamedTuple's Python-level __new__: same tuple, less cost.
_new_raw = tuple.__new__


class Unsupported(Exception):
    """The bytes need pydicom's full parser (or are not a well-formed header)."""


class FastHeader(NamedTuple):
    dataset: FileDataset
    pixel_offset: int  # where the pixel data element starts (end of data when it has none)
    pixel_keyword: str
    has_pixels: bool = True  # False when the data set ended without a pixel data element


def parse_header(buf: bytes, complete: bool) -> FastHeader | None:
    """The header of a file whose first bytes are ``buf``; None means "use dcmread".

    ``complete`` says that ``buf`` is the whole file, so that a data set ending with the
    bytes (a file without pixel data) is whole rather than cut off.
    """
    try:
        return _parse(buf, complete)
    except Exception:  # whatever went wrong, dcmread decides what the bytes are
        return None


def _parse(buf: bytes, complete: bool) -> FastHeader:
    if len(buf) < 140 or buf[128:132] != b"DICM":
        raise Unsupported("no preamble")
    meta, pos, _ = _walk(buf, 132, implicit=False, group=2)
    if not meta or pos + 8 > len(buf):
        raise Unsupported("no file meta, or nothing after it")
    if buf[pos:pos + 2] == b"\x00\x00":
        raise Unsupported("command set elements")
    syntax = meta.get(BaseTag(0x00020010))
    if syntax is None or not syntax.value or syntax.VR != VR.UI:
        raise Unsupported("no transfer syntax")
    ts = syntax.value.decode("latin-1").rstrip(" \x00")
    if not ts or "\\" in ts or ts in _OTHER_ENCODINGS:
        raise Unsupported(f"transfer syntax {ts!r}")
    implicit = ts == IMPLICIT_LE
    vr_bytes = buf[pos + 4:pos + 6]
    looks_implicit = not (0x40 < vr_bytes[0] < 0x5B and 0x40 < vr_bytes[1] < 0x5B)
    if looks_implicit != implicit:
        raise Unsupported("VR encoding differs from the transfer syntax")
    elements, end, stop = _walk(buf, pos, implicit=implicit, group=None)
    if stop is None and not (complete and end == len(buf)):
        raise Unsupported("header runs past the bytes read")

    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(False, True, default_encoding)
    charset = elements.get(BaseTag(_CHARSET))
    encoding = default_encoding if charset is None else _encodings(charset)
    # As dcmread: the data set's elements under a FileDataset, with the encoding it read.
    ds = FileDataset(None, elements, buf[:128], file_meta, implicit, True)  # type: ignore[arg-type]
    ds.set_original_encoding(implicit, True, encoding)
    keyword = PIXEL_KEYWORDS.get(stop, "PixelData") if stop is not None else "PixelData"
    return FastHeader(ds, end, keyword, stop is not None)


def cut_short(buf: bytes) -> bool | None:
    """Whether a whole file's data set stops inside an element (a truncated copy or download):
    True when cut off, False when it ends on an element boundary, None when this walker cannot
    tell (an encoding it does not read)."""
    try:
        if len(buf) < 140 or buf[128:132] != b"DICM":
            return None
        meta, pos, _ = _walk(buf, 132, implicit=False, group=2)
        syntax = meta.get(BaseTag(0x00020010))
        ts = syntax.value.decode("latin-1").rstrip(" \x00") if syntax is not None else ""
        if not ts or ts in _OTHER_ENCODINGS:
            return None
        _walk(buf, pos, implicit=ts == IMPLICIT_LE, group=None)
    except Unsupported as exc:
        return "past the bytes read" in str(exc) or "cut off" in str(exc)
    except Exception:
        return None
    return False


def _encodings(charset: RawDataElement) -> str | list[str]:
    """Python codecs for a Specific Character Set, as read_dataset finds them (cached:
    a series repeats the same few values)."""
    key = (charset.VR, charset.value)
    found = _ENCODINGS.get(key)
    if found is None:
        found = convert_encodings(convert_raw_data_element(charset).value)
        if len(_ENCODINGS) < 64:
            _ENCODINGS[key] = found
    return list(found) if isinstance(found, list) else found


_ENCODINGS: dict[tuple[str | None, bytes | None], str | list[str]] = {}


def _walk(buf: bytes, pos: int, implicit: bool,
          group: int | None) -> tuple[dict[BaseTag, RawDataElement], int, int | None]:
    """Elements from ``pos`` up to a pixel data element (or, with ``group``, the end of
    that group): (elements, where the walk stopped, the pixel tag it stopped at)."""
    elements: dict[BaseTag, RawDataElement] = {}
    size = len(buf)
    last = -1
    while pos + 8 <= size:
        if implicit:
            hi, lo, length = _IMPLICIT.unpack_from(buf, pos)
            vr = None
            start = pos + 8
        else:
            hi, lo, raw_vr, length = _EXPLICIT.unpack_from(buf, pos)
            if group is not None and hi != group:
                return elements, pos, None
            vr = _KNOWN_VRS.get(raw_vr)
            if vr is None:
                raise Unsupported(f"unknown VR {raw_vr!r}")
            start = pos + 8
            if vr in _LONG_VRS:
                if pos + 12 > size:
                    raise Unsupported("element header cut off")
                (length,) = _UINT32.unpack_from(buf, pos + 8)
                start = pos + 12
        tag = hi << 16 | lo
        if tag in PIXEL_KEYWORDS:
            return elements, pos, tag
        if hi == 0xFFFE or tag <= last:
            raise Unsupported("delimiter, repeated or out-of-order tag in the data set")
        last = tag
        if length == _UNDEFINED:
            if group is not None:
                raise Unsupported("undefined length in the file meta")
            vr = _sequence_vr(tag, vr, buf, start)
            end = skip_items(buf, start, implicit, _KNOWN_VRS, Unsupported)
            value: bytes | None = buf[start:end]
            pos = end + 8
        else:
            pos = start + length
            if pos > size:
                raise Unsupported("value runs past the bytes read")
            value = buf[start:pos] if length else empty_value_for_VR(vr, raw=True)
        key = BaseTag(tag)
        elements[key] = _new_raw(RawDataElement, (key, vr, length, value, start, implicit,
                                                  True, True, False))
    if pos != size:
        raise Unsupported("element header cut off")
    return elements, pos, None


def _sequence_vr(tag: int, vr: str | None, buf: bytes, start: int) -> str:
    """The VR pydicom gives an undefined-length element, which must be a sequence here."""
    if vr == VR.UN and config.settings.infer_sq_for_un_vr:
        vr = VR.SQ
    if vr is None or (vr == VR.UN and config.replace_un_with_known_vr):
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            if buf[start:start + 4] == b"\xfe\xff\x00\xe0":
                vr = VR.SQ
    if vr != VR.SQ:
        raise Unsupported("undefined-length value that is not a sequence")
    return VR.SQ
