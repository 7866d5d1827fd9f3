"""Siemens mosaics: one stored image that tiles all slices of an EPI/DWI volume.

ImagePositionPatient of a mosaic is the corner of the whole tiled image, not of a slice;
like dcm2niix and nibabel, the first slice's position is moved by half the difference
between the mosaic and the tile size along each in-plane axis. Slices follow the CSA header's
SliceNormalVector (which may point against row x column for descending acquisitions) at
SpacingBetweenSlices.

Anonymisers often strip the image CSA header (0029,1010) and the private creator elements,
which takes NumberOfImagesInMosaic (0019,100A) with them. The series CSA header (0029,1020)
usually survives; its protocol text (the ASCCONV block of MrPhoenixProtocol) still says
``sSliceArray.lSize`` (the slice count) and ``sSliceArray.asSlice[0].sNormal``. Like
dicom2nifti and dcm2niix, it is read by its fixed tag, whatever the creator elements say.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

import numpy as np

from mprviewer.io.geometry import Frame
from mprviewer.io.quick_values import header_value
from mprviewer.io.scan import Instance

CSA_IMAGE_HEADER = (0x0029, "SIEMENS CSA HEADER", 0x10)
MOSAIC_COUNT = (0x0019, "SIEMENS MR HEADER", 0x0A)
CSA_SERIES_HEADER_TAG = (0x0029, 0x1020)  # read by its fixed tag: creators may be stripped
_ASCCONV = re.compile(rb"### ASCCONV BEGIN.*?### ASCCONV END", re.S)
_ASCCONV_LINE = re.compile(rb"^[ \t]*([A-Za-z_][\w.\[\]]*)[ \t]*=[ \t]*([^\r\n]*?)[ \t]*$", re.M)


def parse_csa(data: bytes) -> dict[str, list[str]]:
    """The name -> values of a Siemens CSA header (CSA1 or "SV10" CSA2); {} if unreadable."""
    try:
        return _parse_csa(data)
    except (struct.error, ValueError, IndexError):
        return {}


def _parse_csa(data: bytes) -> dict[str, list[str]]:
    csa2 = data[:4] == b"SV10"
    ptr = 8 if csa2 else 0
    n_tags, check = struct.unpack_from("<2I", data, ptr)
    if check != 77 or not 0 < n_tags <= 1000:
        return {}
    ptr += 8
    out: dict[str, list[str]] = {}
    for _ in range(n_tags):
        name = data[ptr:ptr + 64].split(b"\0", 1)[0].decode("latin-1")
        _vm, _vr, _syngo, n_items, _xx = struct.unpack_from("<i4sii i", data, ptr + 64)
        ptr += 84
        values: list[str] = []
        for _item in range(n_items):
            x0, x1, _x2, _x3 = struct.unpack_from("<4i", data, ptr)
            ptr += 16
            length = x1 if csa2 else x0 - n_tags
            if length < 0 or ptr + length > len(data):
                break
            text = data[ptr:ptr + length].split(b"\0", 1)[0].decode("latin-1").strip()
            if text:
                values.append(text)
            ptr += (length + 3) // 4 * 4
        out[name] = values
    return out


def _private(ds: Any, spec: tuple[int, str, int]) -> Any:
    group, creator, offset = spec
    try:
        return ds.private_block(group, creator)[offset].value
    except (KeyError, ValueError):
        return None


def _csa(instance: Instance) -> dict[str, list[str]]:
    cached = instance.header.__dict__.get("_mprviewer_csa")
    if cached is None:
        raw = _private(instance.header, CSA_IMAGE_HEADER)
        cached = parse_csa(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else {}
        instance.header.__dict__["_mprviewer_csa"] = cached
    return cached


def parse_ascconv(data: bytes) -> dict[str, str]:
    """The ``name = value`` lines of the ASCCONV protocol block(s) in a Siemens header."""
    out: dict[str, str] = {}
    for block in _ASCCONV.finditer(data):
        for name, value in _ASCCONV_LINE.findall(block.group(0)):
            out.setdefault(name.decode("latin-1"), value.decode("latin-1").strip().strip('"'))
    return out


def _protocol(instance: Instance) -> dict[str, str]:
    """The series CSA header's protocol, read by fixed tag (0029,1020); {} when absent."""
    cached = instance.header.__dict__.get("_mprviewer_protocol")
    if cached is None:
        cached = {}
        try:
            element = instance.header.get(CSA_SERIES_HEADER_TAG)
            raw = element.value if element is not None else None
        except Exception:  # a damaged element: no protocol, the mosaic stays tiled
            raw = None
        if isinstance(raw, (bytes, bytearray)):
            cached = parse_ascconv(bytes(raw))
        instance.header.__dict__["_mprviewer_protocol"] = cached
    return cached


def is_mosaic(instance: Instance) -> bool:
    """A Siemens mosaic: ImageType holds MOSAIC."""
    image_type = header_value(instance.facts, "ImageType") or []
    if isinstance(image_type, str):
        image_type = [image_type]
    return any(str(v).upper() == "MOSAIC" for v in image_type) and instance.frames == 1


def mosaic_count(instance: Instance) -> int | None:
    """NumberOfImagesInMosaic from (0019,100A) or the CSA image header, else the series
    protocol's ``sSliceArray.lSize`` (what survives anonymisation)."""
    value = _private(instance.header, MOSAIC_COUNT)
    try:
        count = int(value[0] if isinstance(value, (list, tuple)) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError):
        count = 0
    if count <= 0:
        try:
            count = int(float(_csa(instance).get("NumberOfImagesInMosaic", ["0"])[0]))
        except (ValueError, IndexError):
            count = 0
    if count <= 0:
        try:
            count = int(_protocol(instance).get("sSliceArray.lSize", "0"))
        except ValueError:
            count = 0
    return count if count > 0 else None


def _slice_normal(instance: Instance, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    normal = np.cross(row, col)
    values = _csa(instance).get("SliceNormalVector", [])
    if not values:  # the protocol's first slice normal (components that are 0 are omitted)
        protocol = _protocol(instance)
        keys = [f"sSliceArray.asSlice[0].sNormal.{axis}" for axis in ("dSag", "dCor", "dTra")]
        if any(k in protocol for k in keys):
            values = [protocol.get(k, "0") for k in keys]
    try:
        csa_normal = np.array([float(v) for v in values[:3]])
    except ValueError:
        return normal
    if csa_normal.size == 3 and np.linalg.norm(csa_normal) > 0.5:
        csa_normal /= np.linalg.norm(csa_normal)
        if abs(abs(float(csa_normal @ normal)) - 1.0) < 1e-3:
            return csa_normal
    return normal


def mosaic_frames(instance: Instance) -> tuple[list[Frame], str | None]:
    """The slices of a mosaic at their true positions, or ([], reason) when it cannot be cut."""
    count = mosaic_count(instance)
    if count is None:
        return [], "Siemens mosaic without NumberOfImagesInMosaic; shown as one tiled image"
    side = math.ceil(math.sqrt(count))
    tile_rows, tile_cols = instance.rows // side, instance.columns // side
    if tile_rows * side != instance.rows or tile_cols * side != instance.columns:
        return [], (f"Siemens mosaic {instance.columns}x{instance.rows} does not split into "
                    f"{side}x{side} tiles for {count} images; shown as one tiled image")
    frames = []
    position, orientation = instance.position, instance.orientation
    start = step = None
    if position is not None and orientation is not None and instance.pixel_spacing:
        row, col = orientation[:3], orientation[3:]
        row_spacing, col_spacing = instance.pixel_spacing
        start = (position
                 + row * col_spacing * (instance.columns - tile_cols) / 2.0
                 + col * row_spacing * (instance.rows - tile_rows) / 2.0)
        header = instance.header
        spacing = 0.0
        for keyword in ("SpacingBetweenSlices", "SliceThickness"):
            try:
                spacing = float(header.get(keyword) or 0.0)
            except (TypeError, ValueError):
                spacing = 0.0
            if spacing > 0:
                break
        step = _slice_normal(instance, row, col) * (spacing or 1.0)
    for t in range(count):
        tile = ((t // side) * tile_rows, (t % side) * tile_cols, tile_rows, tile_cols)
        pos = None if start is None or step is None else start + t * step
        frames.append(Frame(instance, t, position=pos, orientation=orientation, tile=tile))
    return frames, None
