"""Write synthetic DICOM series with known geometry and values.

Tests, the benchmark and the demo study need DICOM files whose truth is known: where every
voxel sits in the patient (LPS mm) and what value it holds. ``write_series`` writes a 3D
array as one file per slice with the awkward details real scanners produce (shuffled file
order and names, scrambled InstanceNumber, gaps, gantry tilt, MONOCHROME1, odd bit depths,
compressed transfer syntaxes, no preamble), and returns the affine a correct reader must
reproduce.

Conventions (DICOM, and what ``mprviewer.io.volume.Volume`` uses):

- ``array[k, j, i]`` is (slice, row, column). Column index ``i`` runs along the row cosine
  (first three ImageOrientationPatient values), row index ``j`` along the column cosine.
- PixelSpacing is ``(row spacing, column spacing)`` = (mm between rows along j,
  mm between columns along i).
- Slice ``k`` sits at ``origin + k * slice_spacing * normal`` with
  ``normal = row_cosine x column_cosine``, so a reader sorting by position along the normal
  gets ``k`` back when ``slice_spacing > 0``.

What is here:

- ``write_series``: one file per slice (the workhorse; see its docstring for every option).
- ``write_4d``: several volumes at the same positions in one series (time points, echoes,
  diffusion b-values, acquisitions).
- ``write_with_localizer``: a stack with a localizer image of another orientation mixed in.
- ``write_mosaic``: Siemens mosaics, with the shifted ImagePositionPatient Siemens writes
  (``mosaic_corner`` documents the correction).
- ``write_multiframe``: Enhanced CT/MR (per-frame functional groups, several stacks,
  dimension indices) and legacy multi-frame objects.
- ``zip_folders``: deterministic zips of series folders, nested zips and export junk.
- ``affine_for`` / ``Grid``: the (i, j, k) -> LPS affine a reader must reproduce.

Transfer syntaxes written: explicit and implicit VR little endian, explicit VR big endian
and deflated explicit little endian (no plugin); RLE Lossless, JPEG 2000 (lossless, and
lossy at 20:1), JPEG-LS (lossless, and near-lossless with error 2) through pydicom's
encoders (pylibjpeg, pyjpegls); JPEG Lossless SV1 (process 14) with the small encoder in
this module; JPEG Baseline (8-bit) through Pillow. Not written: JPEG Extended (12-bit
lossy), HTJ2K and the video syntaxes. ``encodable_syntaxes()`` lists what this
installation can write.

Only numpy, pydicom and pydicom's encoder plugins (and Pillow for baseline JPEG) are used.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

__all__ = [
    "AXIAL",
    "CORONAL",
    "JUNK_FILES",
    "NATIVE_SYNTAXES",
    "SAGITTAL",
    "SOP_CLASSES",
    "Grid",
    "WrittenMultiframe",
    "WrittenSeries",
    "affine_for",
    "dataset_bytes",
    "encodable_syntaxes",
    "encode_jpeg_baseline",
    "encode_jpeg_lossless",
    "iter_files",
    "make_uid",
    "mosaic_corner",
    "orientation_cosines",
    "set_attribute",
    "write_4d",
    "write_mosaic",
    "write_multiframe",
    "write_series",
    "write_with_localizer",
    "zip_folders",
]

# Row cosine, column cosine (LPS) of the three standard planes.
AXIAL: tuple[tuple[float, float, float], tuple[float, float, float]] = ((1, 0, 0), (0, 1, 0))
CORONAL: tuple[tuple[float, float, float], tuple[float, float, float]] = ((1, 0, 0), (0, 0, -1))
SAGITTAL: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0, 1, 0), (0, 0, -1))
_NAMED_ORIENTATIONS = {"axial": AXIAL, "coronal": CORONAL, "sagittal": SAGITTAL}

SOP_CLASSES: dict[str, str] = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "PT": "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
    "SC": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "ENHANCED_CT": "1.2.840.10008.5.1.4.1.1.2.1",
    "ENHANCED_MR": "1.2.840.10008.5.1.4.1.1.4.1",
    "LEGACY_CT": "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
    "MF_GRAY_WORD_SC": "1.2.840.10008.5.1.4.1.1.7.3",
}

# Syntaxes written without any plugin.
NATIVE_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)
_COMPRESSED = (RLELossless, JPEG2000Lossless, JPEG2000, JPEGLSLossless, JPEGLSNearLossless)
# Encoded here, since pydicom has no encoder for them (baseline needs Pillow).
_OWN_JPEG = (JPEGLosslessSV1, JPEGBaseline8Bit)
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."  # pydicom's root, used for generated UIDs


def make_uid(seed: int | str | None, *parts: object) -> str:
    """A UID: random when ``seed`` is None, otherwise a hash of ``seed`` and ``parts``.

    Deterministic UIDs let two runs of the benchmark or the demo generator produce
    identical files.
    """
    if seed is None:
        return str(generate_uid(_UID_PREFIX))
    return str(generate_uid(_UID_PREFIX, entropy_srcs=[str(seed), *(str(p) for p in parts)]))


def encodable_syntaxes() -> list[str]:
    """Transfer syntaxes ``write_series`` can produce with the installed plugins."""
    from pydicom.pixels import get_encoder

    found = list(NATIVE_SYNTAXES)
    found.append(str(JPEGLosslessSV1))
    try:
        import PIL  # noqa: F401

        found.append(str(JPEGBaseline8Bit))
    except ImportError:
        pass
    for uid in _COMPRESSED:
        try:
            if get_encoder(uid).is_available:
                found.append(str(uid))
        except (NotImplementedError, ValueError):
            continue
    return found


def orientation_cosines(
    orientation: str | Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Unit row and column cosines for "axial", "coronal", "sagittal" or six numbers.

    Six numbers are an ImageOrientationPatient; they are orthonormalised so that a
    slightly sloppy oblique orientation still gives an exact rotation.
    """
    if isinstance(orientation, str):
        try:
            row, col = _NAMED_ORIENTATIONS[orientation.lower()]
        except KeyError:
            raise ValueError(
                f"unknown orientation {orientation!r}: use axial, coronal, sagittal or 6 numbers"
            ) from None
        return np.asarray(row, dtype=np.float64), np.asarray(col, dtype=np.float64)
    values = np.asarray(orientation, dtype=np.float64).ravel()
    if values.size != 6:
        raise ValueError("orientation needs six numbers (row cosine, column cosine)")
    row = values[:3] / np.linalg.norm(values[:3])
    col = values[3:] - np.dot(values[3:], row) * row
    col /= np.linalg.norm(col)
    return row, col


def affine_for(
    origin: Sequence[float],
    row_cos: Sequence[float],
    col_cos: Sequence[float],
    spacing_rc: Sequence[float],
    slice_spacing: float,
    tilt_deg: float = 0.0,
) -> np.ndarray:
    """The 4x4 affine mapping ``(i, j, k, 1)`` to patient LPS mm for a written stack.

    ``spacing_rc`` is PixelSpacing (row spacing, column spacing). With ``tilt_deg`` the
    slice step also moves ``slice_spacing * tan(tilt)`` along the column cosine per slice
    (a gantry-tilted CT), so the affine is sheared: it still gives every written voxel's
    true position, which is what a reader that corrects tilt must honour.
    """
    row = np.asarray(row_cos, dtype=np.float64)
    col = np.asarray(col_cos, dtype=np.float64)
    normal = np.cross(row, col)
    affine = np.eye(4)
    affine[:3, 0] = row * float(spacing_rc[1])
    affine[:3, 1] = col * float(spacing_rc[0])
    affine[:3, 2] = slice_spacing * (normal + np.tan(np.radians(tilt_deg)) * col)
    affine[:3, 3] = np.asarray(origin, dtype=np.float64)
    return affine


@dataclass(frozen=True)
class Grid:
    """Geometry of one stack: cosines, spacings, origin, tilt, and its (i, j, k) affine."""

    row_cos: np.ndarray
    col_cos: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_spacing: float
    origin: np.ndarray
    tilt: float = 0.0

    @classmethod
    def build(
        cls,
        affine: np.ndarray | None = None,
        origin: Sequence[float] = (0.0, 0.0, 0.0),
        orientation: str | Sequence[float] = "axial",
        pixel_spacing: Sequence[float] = (1.0, 1.0),
        slice_spacing: float = 1.0,
        tilt: float = 0.0,
    ) -> Grid:
        """From a 4x4 ``affine`` (orthogonal columns) or from the separate parameters."""
        if affine is not None:
            affine = np.asarray(affine, dtype=np.float64)
            spacing_ijk = np.linalg.norm(affine[:3, :3], axis=0)
            row_cos = affine[:3, 0] / spacing_ijk[0]
            col_cos = affine[:3, 1] / spacing_ijk[1]
            normal = np.cross(row_cos, col_cos)
            step = float(np.dot(affine[:3, 2], normal))
            if np.linalg.norm(affine[:3, 2] - step * normal) > 1e-6 * max(abs(step), 1.0):
                raise ValueError("affine columns must be orthogonal; use tilt for a sheared stack")
            return cls(
                row_cos,
                col_cos,
                (float(spacing_ijk[1]), float(spacing_ijk[0])),
                step,
                affine[:3, 3].copy(),
                tilt,
            )
        row_cos, col_cos = orientation_cosines(orientation)
        return cls(
            row_cos,
            col_cos,
            (float(pixel_spacing[0]), float(pixel_spacing[1])),
            float(slice_spacing),
            np.asarray(origin, dtype=np.float64),
            float(tilt),
        )

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_cos, self.col_cos)

    @property
    def orientation(self) -> np.ndarray:
        """The six ImageOrientationPatient values."""
        return np.concatenate([self.row_cos, self.col_cos])

    @property
    def affine(self) -> np.ndarray:
        return affine_for(
            self.origin,
            self.row_cos,
            self.col_cos,
            self.pixel_spacing,
            self.slice_spacing,
            self.tilt,
        )

    def positions(self, nk: int) -> np.ndarray:
        """ImagePositionPatient of slices 0 .. nk-1."""
        affine = self.affine
        return affine[:3, 3] + np.arange(nk)[:, None] * affine[:3, 2]


class WrittenSeries(list):  # type: ignore[type-arg]
    """The paths of a written series in slice order (``k`` ascending, skipped slices left out).

    Also carries what a test compares a reader against: ``affine`` (4x4, (i, j, k) -> LPS of
    the array as given, sheared for tilt), ``ks`` (the ``k`` of each path), ``positions``
    (ImagePositionPatient of every ``k``, skipped ones included), the UIDs, and ``values``
    (the real-world values a reader should produce, before any MONOCHROME1 inversion).
    """

    affine: np.ndarray
    ks: list[int]
    positions: np.ndarray
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: list[str]
    transfer_syntax: str

    @property
    def folder(self) -> Path:
        return Path(self[0]).parent


Key = str | int | tuple[int, int]


def _tag_of(key: Key) -> int:
    from pydicom.datadict import tag_for_keyword

    if isinstance(key, str):
        tag = tag_for_keyword(key)
        if tag is None:
            raise ValueError(f"unknown DICOM keyword {key!r}")
        return int(tag)
    if isinstance(key, tuple):
        return (int(key[0]) << 16) | int(key[1])
    return int(key)


def set_attribute(ds: Dataset, key: Key, value: Any) -> None:
    """Set (or with ``None`` delete) one attribute of ``ds``.

    ``key`` is a keyword, or a tag (int or (group, element)) for private attributes, whose
    ``value`` is then ``(VR, value)``; the private creator must be set like any other
    attribute, e.g. ``{(0x0019, 0x0010): ("LO", "SIEMENS MR HEADER")}``.
    """
    if isinstance(key, str):
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
        return
    tag = _tag_of(key)
    if value is None:
        if tag in ds:
            del ds[tag]
        return
    vr, val = value
    ds.add_new(tag, vr, val)


def _fmt(value: float) -> str:
    """A DS string of at most 16 characters that keeps sub-micrometre precision."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if len(text) > 16:
        text = f"{value:.9g}"
    return text


def _ds(values: Iterable[float]) -> list[str]:
    return [_fmt(float(v)) for v in values]


class _StoredValues:
    """Converts one slice of the caller's array into stored values of the file's dtype.

    Per slice, so that writing a large series never holds a second full-size copy.
    """

    def __init__(
        self,
        rescale: tuple[float, float] | None,
        bits_allocated: int,
        signed: bool,
        float_pixels: str | None,
    ) -> None:
        self.rescale = rescale
        if float_pixels:
            self.dtype = np.dtype("<f4" if float_pixels == "float32" else "<f8")
        else:
            self.dtype = np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")

    def __call__(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data)
        if self.dtype.kind == "f":
            return data.astype(self.dtype, copy=False)
        if self.rescale is not None:
            slope, intercept = self.rescale
            if data.dtype.kind in "iub" and slope == 1 and float(intercept).is_integer():
                data = data.astype(np.int64) - int(intercept)
            else:
                data = np.rint((data.astype(np.float64) - intercept) / slope)
        if data.dtype != self.dtype:
            info = np.iinfo(self.dtype)
            lo, hi = data.min(), data.max()
            if lo < info.min or hi > info.max:
                raise ValueError(
                    f"stored values {lo}..{hi} do not fit {self.dtype.name}: change rescale, "
                    "signed or bits_allocated"
                )
            data = data.astype(self.dtype)
        return data


def _element_header(tag: int, vr: str, length: int, implicit: bool, little: bool) -> bytes:
    """Header of an element with a 4-byte length (OB, OW, OF, OD, SQ, UN, ...)."""
    order = "<" if little else ">"
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack(order + "HHI", group, elem, length)
    return (
        struct.pack(order + "HH", group, elem)
        + vr.encode()
        + b"\0\0"
        + struct.pack(order + "I", length)
    )


def _meta_bytes(sop_class: str, sop_uid: str, transfer_syntax: str) -> bytes:
    """The File Meta Information group (always explicit VR little endian)."""

    def short(tag: int, vr: str, value: bytes) -> bytes:
        return struct.pack("<HH", 2, tag) + vr.encode() + struct.pack("<H", len(value)) + value

    def ui(value: str) -> bytes:
        raw = value.encode()
        return raw + b"\0" if len(raw) % 2 else raw

    body = (
        struct.pack("<HH", 2, 1)
        + b"OB\0\0"
        + struct.pack("<I", 2)
        + b"\0\1"
        + short(2, "UI", ui(sop_class))
        + short(3, "UI", ui(sop_uid))
        + short(0x10, "UI", ui(transfer_syntax))
        + short(0x12, "UI", ui(_UID_PREFIX + "1.1"))
        + short(0x13, "SH", b"MPRVIEWER_SYN ")
    )
    return short(0, "UL", struct.pack("<I", len(body))) + body


def _compress_options(tsyntax: str) -> dict[str, Any]:
    """Encoder options for the lossy syntaxes (lossless ones need none)."""
    if tsyntax == JPEG2000:
        return {"j2k_cr": [20]}
    if tsyntax == JPEGLSNearLossless:
        return {"jls_error": 2}
    return {}


class _SliceWriter:
    """Serialises many files that share one template dataset.

    The elements that do not change are encoded once; per file only the changing
    attributes (UIDs, position, numbers) and the pixel bytes are encoded. This keeps
    writing a 512x512x300 series close to the speed of writing its bytes. Encapsulated
    (compressed) syntaxes go through pydicom's ``compress`` and ``dcmwrite`` instead.
    """

    def __init__(
        self,
        template: Dataset,
        transfer_syntax: str,
        *,
        with_preamble: bool,
        varying: Iterable[str],
        pixel_keyword: str,
    ) -> None:
        from pydicom.charset import convert_encodings
        from pydicom.datadict import tag_for_keyword

        self.template = template
        self.tsyntax = UID(transfer_syntax)
        self.with_preamble = with_preamble
        self.implicit = self.tsyntax.is_implicit_VR
        self.little = self.tsyntax.is_little_endian
        self.deflate = self.tsyntax == DeflatedExplicitVRLittleEndian
        self.encapsulated = self.tsyntax.is_compressed
        self.pixel_keyword = pixel_keyword
        self.pixel_tag = int(tag_for_keyword(pixel_keyword))  # type: ignore[arg-type]
        self.encodings = convert_encodings(template.get("SpecificCharacterSet", "ISO_IR 100"))
        skip = {_tag_of(key) for key in varying}
        skip.add(self.pixel_tag)
        self.static = [
            (int(e.tag), self._element_bytes(e)) for e in template if int(e.tag) not in skip
        ]

    def _element_bytes(self, elem: Any) -> bytes:
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_data_element

        fp = DicomBytesIO()
        fp.is_little_endian = self.little
        fp.is_implicit_VR = self.implicit
        write_data_element(fp, elem, self.encodings)
        return fp.getvalue()

    def encode(self, attrs: Mapping[str, Any], pixels: np.ndarray) -> bytes:
        """The bytes of one file: template + ``attrs`` + one frame of stored ``pixels``."""
        if self.encapsulated:
            return self._encode_compressed(attrs, pixels)
        changing = Dataset()
        for key, value in attrs.items():
            if value is not None:
                set_attribute(changing, key, value)
        parts = list(self.static)
        parts.extend((int(e.tag), self._element_bytes(e)) for e in changing)
        parts.sort(key=lambda item: item[0])
        data = np.ascontiguousarray(pixels)
        if not self.little and data.dtype.itemsize > 1:
            data = data.astype(data.dtype.newbyteorder(">"))
        raw = data.tobytes()
        if len(raw) % 2:
            raw += b"\0"
        if self.pixel_keyword == "PixelData":
            vr = "OB" if self.template.BitsAllocated <= 8 else "OW"
        else:
            vr = "OF" if self.pixel_keyword == "FloatPixelData" else "OD"
        header = _element_header(self.pixel_tag, vr, len(raw), self.implicit, self.little)
        body = b"".join([*(b for _, b in parts), header, raw])
        if self.deflate:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = compressor.compress(body) + compressor.flush()
        if not self.with_preamble:
            return body
        meta = _meta_bytes(self.template.SOPClassUID, attrs["SOPInstanceUID"], self.tsyntax)
        return b"\0" * 128 + b"DICM" + meta + body

    def _encode_compressed(self, attrs: Mapping[str, Any], pixels: np.ndarray) -> bytes:
        ds = self.template
        for key, value in attrs.items():
            set_attribute(ds, key, value)
        if "PixelData" in ds:
            del ds.PixelData
        if self.tsyntax in _OWN_JPEG:
            _encode_jpeg_frames(ds, np.asarray(pixels)[None], self.tsyntax)
            ds.file_meta = _file_meta(ds.SOPClassUID, self.tsyntax)
            ds.file_meta.MediaStorageSOPInstanceUID = attrs["SOPInstanceUID"]
            return dataset_bytes(ds, with_preamble=self.with_preamble)
        kwargs = _compress_options(self.tsyntax)
        ds.compress(
            self.tsyntax, np.ascontiguousarray(pixels), generate_instance_uid=False, **kwargs
        )
        ds.file_meta = _file_meta(ds.SOPClassUID, self.tsyntax)
        ds.file_meta.MediaStorageSOPInstanceUID = attrs["SOPInstanceUID"]
        return dataset_bytes(ds, with_preamble=self.with_preamble)


def _base_dataset(
    *,
    modality: str,
    sop_class: str,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    series_number: int,
    description: str,
    rows: int,
    columns: int,
    pixel_spacing: Sequence[float],
    orientation: np.ndarray,
    slice_thickness: float,
    photometric: str,
    bits_allocated: int,
    bits_stored: int,
    signed: bool,
    samples: int,
    rescale: tuple[float, float] | None,
    window: tuple[float, float] | None,
    patient: Mapping[str, Any] | None,
    float_pixels: str | None,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.StudyDate = "20240115"
    ds.SeriesDate = "20240115"
    ds.ContentDate = "20240115"
    ds.StudyTime = "093000"
    ds.SeriesTime = "093500"
    ds.ContentTime = "093500"
    ds.AccessionNumber = "SYN0001"
    ds.Modality = modality
    ds.Manufacturer = "mprviewer synthetic"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = description
    ds.PatientName = "Synthetic^Patient"
    ds.PatientID = "SYN-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    for key, value in (patient or {}).items():
        set_attribute(ds, key, value)
    ds.SliceThickness = _fmt(slice_thickness)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = _ds(orientation)
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = _ds(pixel_spacing)
    ds.BitsAllocated = bits_allocated
    if not float_pixels:
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 1 if signed else 0
    if rescale is not None:
        ds.RescaleIntercept = _fmt(rescale[1])
        ds.RescaleSlope = _fmt(rescale[0])
        if modality == "CT":
            ds.RescaleType = "HU"
    if window is not None:
        ds.WindowCenter = _fmt(window[0])
        ds.WindowWidth = _fmt(window[1])
    return ds


def _file_meta(sop_class: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = _UID_PREFIX + "1.1"
    meta.ImplementationVersionName = "MPRVIEWER_SYN"
    return meta


def _names(
    file_names: str | Callable[[int, int], str],
    order: list[int],
    sop_uids: list[str],
    extension: str,
) -> list[str]:
    """File names in writing order; a pattern is filled with the writing index."""
    names = []
    for n, k in enumerate(order):
        if callable(file_names):
            base = file_names(n, k)
        elif file_names == "uid":
            base = sop_uids[n]
        else:
            base = file_names % n
        names.append(base + extension)
    if len(set(names)) != len(names):
        raise ValueError("file names are not unique")
    return names


def write_series(
    folder: str | Path,
    array: np.ndarray,
    *,
    affine: np.ndarray | None = None,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: str | Sequence[float] = "axial",
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    slice_spacing: float = 1.0,
    positions: np.ndarray | None = None,
    tilt: float = 0.0,
    skip: Iterable[int] = (),
    modality: str = "CT",
    sop_class: str | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
    bits_allocated: int = 16,
    bits_stored: int | None = None,
    signed: bool = True,
    float_pixels: str | None = None,
    high_bit_noise: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    seed: int | str | None = None,
    series_number: int = 1,
    description: str = "",
    patient: Mapping[str, Any] | None = None,
    tags: Mapping[Key, Any] | None = None,
    per_slice: Callable[[int], Mapping[Key, Any]] | None = None,
    shuffle: int | bool | None = None,
    file_names: str | Callable[[int, int], str] = "IM%04d",
    extension: str = ".dcm",
    with_preamble: bool = True,
    instance_numbers: str | Sequence[int] = "slice",
    slice_locations: bool | Sequence[float] = True,
    slice_thickness: float | None = None,
    instance_uids: Sequence[str] | None = None,
    sink: Callable[[str, bytes], None] | None = None,
) -> WrittenSeries:
    """Write ``array[k, j, i]`` as one DICOM file per slice into ``folder``; return the paths.

    Geometry: either ``affine`` (4x4, (i, j, k) -> LPS; orthogonal columns) or ``origin`` (LPS
    of voxel (0, 0, 0)), ``orientation`` ("axial", "coronal", "sagittal" or six cosines),
    ``pixel_spacing`` (row, column) and ``slice_spacing``; ``positions`` (N, 3) overrides the
    ImagePositionPatient of each slice. ``tilt`` (degrees) shears positions along the column
    cosine and writes GantryDetectorTilt. ``skip`` leaves those ``k`` out (a gap).

    Values: without ``rescale`` the array holds stored values. With ``rescale=(slope,
    intercept)`` it holds real-world values (HU) and is stored as
    ``round((value - intercept) / slope)`` in the integer type given by ``bits_allocated``
    and ``signed``. ``bits_stored`` (default ``bits_allocated``) sets BitsStored/HighBit;
    ``high_bit_noise`` fills the unused high bits of unsigned data with junk, as some
    scanners do, so a reader must mask them. ``float_pixels="float32"|"float64"`` writes
    (Double)FloatPixelData. ``photometric`` "MONOCHROME1" stores the values unchanged (a
    reader must invert for display); "RGB" expects ``array[k, j, i, 3]`` uint8; "YBR_FULL"
    also takes RGB input and stores it converted to YBR_FULL.

    Files: ``transfer_syntax`` is any of ``encodable_syntaxes()``; ``shuffle`` (a seed, or
    True for 0) shuffles the writing order, so file names (``file_names``: a %-pattern
    filled with the writing index, "uid" for the SOPInstanceUID, or ``f(n, k) -> str``) are
    not in slice order. ``instance_numbers``: "slice" (k + 1), "reverse", "scrambled",
    "none" or explicit values per k. ``slice_locations``: True writes the position along the
    normal, False omits it, or explicit values per k. ``with_preamble=False`` writes a bare
    dataset (no preamble, no file meta) in implicit or explicit little endian.

    UIDs: given ones (``instance_uids`` per k) are used; otherwise they are random, or
    derived from ``seed`` (so the same call writes identical files). ``tags`` sets extra
    attributes on every file and ``per_slice(k)`` returns attributes for slice ``k``.
    ``sink(name, data)``, when given, receives each file's bytes instead of a file being
    written (to fill a zip directly); the returned paths are then ``folder / name``.
    """
    folder = Path(folder)
    array = np.asarray(array)
    is_color = photometric in ("RGB", "YBR_FULL")
    if array.ndim != (4 if is_color else 3) or (is_color and array.shape[3] != 3):
        raise ValueError("array must be [k, j, i] (or [k, j, i, 3] for RGB/YBR_FULL)")
    nk, rows, columns = (int(n) for n in array.shape[:3])

    # -- geometry ------------------------------------------------------------------------
    grid = Grid.build(affine, origin, orientation, pixel_spacing, slice_spacing, tilt)
    row_cos, col_cos, normal = grid.row_cos, grid.col_cos, grid.normal
    pixel_spacing, slice_spacing = grid.pixel_spacing, grid.slice_spacing
    geometry = grid.affine
    if positions is None:
        positions = grid.positions(nk)
    positions = np.asarray(positions, dtype=np.float64).reshape(nk, 3)

    # -- values --------------------------------------------------------------------------
    if is_color:
        bits_allocated, signed, rescale, float_pixels = 8, False, None, None
        convert: Callable[[np.ndarray], np.ndarray] = _color_converter(photometric)
        dtype = np.dtype(np.uint8)
    else:
        if float_pixels:
            bits_allocated, rescale = (32 if float_pixels == "float32" else 64), None
        convert = _StoredValues(rescale, bits_allocated, signed, float_pixels)
        dtype = convert.dtype
    if bits_stored is None:
        bits_stored = bits_allocated
    noise_mask = None
    if high_bit_noise and dtype.kind == "u" and bits_stored < bits_allocated:
        rng = np.random.default_rng(1234)
        junk = rng.integers(1, 1 << (bits_allocated - bits_stored), size=(rows, columns))
        noise_mask = (junk << bits_stored).astype(dtype)

    # -- UIDs and per-file values --------------------------------------------------------
    study_uid = study_uid or make_uid(seed, "study")
    series_uid = series_uid or make_uid(seed, "series", series_number, description)
    frame_uid = frame_of_reference_uid or make_uid(seed, "frame", study_uid)
    sop_class = sop_class or SOP_CLASSES.get(modality, SOP_CLASSES["SC"])
    skipped = {int(k) for k in skip}
    ks = [k for k in range(nk) if k not in skipped]
    order = _shuffled(ks, shuffle)
    if instance_uids is not None:
        if len(instance_uids) != nk:
            raise ValueError("instance_uids needs one UID per slice")
        sop_by_k = {k: str(instance_uids[k]) for k in ks}
    else:
        sop_by_k = {k: make_uid(seed, series_uid, "sop", k) for k in ks}
    inst = _instance_numbers(instance_numbers, nk, seed)
    locs = _slice_locations(slice_locations, positions, normal)
    names = _names(file_names, order, [sop_by_k[k] for k in order], extension)
    extras = {k: dict(per_slice(k)) for k in ks} if per_slice else {}

    # -- template ------------------------------------------------------------------------
    ds = _base_dataset(
        modality=modality,
        sop_class=sop_class,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        series_number=series_number,
        description=description,
        rows=rows,
        columns=columns,
        pixel_spacing=pixel_spacing,
        orientation=np.concatenate([row_cos, col_cos]),
        slice_thickness=abs(slice_spacing) if slice_thickness is None else slice_thickness,
        photometric=photometric,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        signed=signed,
        samples=3 if is_color else 1,
        rescale=rescale if rescale is not None else ((1.0, 0.0) if modality == "CT" else None),
        window=window,
        patient=patient,
        float_pixels=float_pixels,
    )
    if modality == "CT":
        ds.KVP = "120"
    if tilt:
        ds.GantryDetectorTilt = _fmt(tilt)
    for key, value in (tags or {}).items():
        set_attribute(ds, key, value)
    if not with_preamble and transfer_syntax not in (
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    ):
        raise ValueError("files without preamble are written in little endian only")
    pixel_keyword = "PixelData"
    if float_pixels:
        pixel_keyword = "FloatPixelData" if float_pixels == "float32" else "DoubleFloatPixelData"
    varying: set[Key] = {
        "SOPInstanceUID",
        "ImagePositionPatient",
        "InstanceNumber",
        "SliceLocation",
    }
    for extra in extras.values():
        varying.update(extra)
    writer = _SliceWriter(
        ds,
        transfer_syntax,
        with_preamble=with_preamble,
        varying=varying,
        pixel_keyword=pixel_keyword,
    )

    if sink is None:
        folder.mkdir(parents=True, exist_ok=True)
    written: dict[int, Path] = {}
    for n, k in enumerate(order):
        attrs: dict[str, Any] = {
            "SOPInstanceUID": sop_by_k[k],
            "ImagePositionPatient": _ds(positions[k]),
            "InstanceNumber": inst[k],
            "SliceLocation": None if locs[k] is None else _fmt(locs[k]),
        }
        attrs.update(extras.get(k, {}))
        pixels = convert(array[k])
        if dtype.kind in "iu" and bits_stored < bits_allocated:
            _check_bits_stored(pixels, bits_stored)
        if noise_mask is not None:
            pixels = pixels | noise_mask
        blob = writer.encode(attrs, pixels)
        path = folder / names[n]
        if sink is None:
            path.write_bytes(blob)
        else:
            sink(names[n], blob)
        written[k] = path

    result = WrittenSeries(written[k] for k in ks)
    result.affine = geometry
    result.ks = ks
    result.positions = positions
    result.series_uid = series_uid
    result.study_uid = study_uid
    result.frame_of_reference_uid = frame_uid
    result.sop_instance_uids = [sop_by_k[k] for k in ks]
    result.transfer_syntax = str(transfer_syntax)
    return result


def _check_bits_stored(pixels: np.ndarray, bits_stored: int) -> None:
    """Refuse values that BitsStored cannot hold (a reader would mask them into garbage)."""
    if pixels.dtype.kind == "i":
        low, high = -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    else:
        low, high = 0, (1 << bits_stored) - 1
    if pixels.min() < low or pixels.max() > high:
        raise ValueError(
            f"stored values {pixels.min()}..{pixels.max()} need more than bits_stored="
            f"{bits_stored} bits: raise bits_stored or change rescale"
        )


def _color_converter(photometric: str) -> Callable[[np.ndarray], np.ndarray]:
    def convert(data: np.ndarray) -> np.ndarray:
        data = np.asarray(data, dtype=np.uint8)
        if photometric == "YBR_FULL":
            from pydicom.pixels import convert_color_space

            data = convert_color_space(data, "RGB", "YBR_FULL")
        return data

    return convert


def _shuffled(items: list[int], shuffle: int | bool | None) -> list[int]:
    """``items`` in a seeded random order, or unchanged when ``shuffle`` is None/False."""
    if shuffle is None or shuffle is False:
        return list(items)
    rng = np.random.default_rng(0 if shuffle is True else int(shuffle))
    return [items[n] for n in rng.permutation(len(items))]


def _instance_numbers(
    spec: str | Sequence[int], nk: int, seed: int | str | None
) -> list[int | None]:
    if not isinstance(spec, str):
        values = [int(v) for v in spec]
        if len(values) != nk:
            raise ValueError("instance_numbers needs one value per slice")
        return list(values)
    if spec == "slice":
        return list(range(1, nk + 1))
    if spec == "reverse":
        return list(range(nk, 0, -1))
    if spec == "scrambled":
        rng = np.random.default_rng(zlib.crc32(str(seed).encode()) if seed is not None else 7)
        return [int(v) + 1 for v in rng.permutation(nk)]
    if spec == "none":
        return [None] * nk
    raise ValueError(f"unknown instance_numbers {spec!r}")


def _slice_locations(
    spec: bool | Sequence[float], positions: np.ndarray, normal: np.ndarray
) -> list[float | None]:
    if spec is True:
        return [float(v) for v in positions @ normal]
    if spec is False:
        return [None] * len(positions)
    values = [float(v) for v in spec]
    if len(values) != len(positions):
        raise ValueError("slice_locations needs one value per slice")
    return list(values)


def dataset_bytes(ds: Dataset, *, with_preamble: bool = True) -> bytes:
    """Serialise ``ds`` (with its file meta) as a DICOM file, or as a bare dataset."""
    buf = io.BytesIO()
    tsyntax = UID(ds.file_meta.TransferSyntaxUID)
    if with_preamble:
        ds.preamble = b"\0" * 128
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue()
    meta = ds.file_meta
    try:
        del ds.file_meta
        pydicom.dcmwrite(
            buf,
            ds,
            implicit_vr=tsyntax.is_implicit_VR,
            little_endian=True,
        )
    finally:
        ds.file_meta = meta
    return buf.getvalue()


def iter_files(folder: str | Path) -> Iterator[Path]:
    """Every regular file below ``folder`` in name order (a small helper for tests)."""
    yield from sorted(p for p in Path(folder).rglob("*") if p.is_file())


# -- several volumes in one series ------------------------------------------------------

_4D_KINDS = ("time", "echo", "diffusion", "acquisition")


def _volume_tags(
    kind: str, v: int, nv: int, value: float, direction: Sequence[float] | None
) -> dict[Key, Any]:
    """Attributes that tell volume ``v`` of a 4D series apart, as scanners write them."""
    if kind == "time":
        return {
            "TemporalPositionIdentifier": v + 1,
            "NumberOfTemporalPositions": nv,
            "AcquisitionNumber": v + 1,
            "TriggerTime": _fmt(value),
        }
    if kind == "echo":
        return {"EchoNumbers": v + 1, "EchoTime": _fmt(value), "AcquisitionNumber": 1}
    if kind == "diffusion":
        tags: dict[Key, Any] = {
            "DiffusionBValue": float(value),
            "DiffusionDirectionality": "DIRECTIONAL" if value > 0 else "NONE",
            "AcquisitionNumber": v + 1,
            (0x0019, 0x0010): ("LO", "SIEMENS MR HEADER"),
            (0x0019, 0x100C): ("IS", str(round(value))),
        }
        if value > 0 and direction is not None:
            unit = [float(c) for c in np.asarray(direction) / np.linalg.norm(direction)]
            tags["DiffusionGradientOrientation"] = unit
            tags[(0x0019, 0x100E)] = ("FD", unit)
        return tags
    return {"AcquisitionNumber": v + 1}


def write_4d(
    folder: str | Path,
    array: np.ndarray,
    *,
    kind: str = "time",
    values: Sequence[float] | None = None,
    directions: Sequence[Sequence[float]] | None = None,
    shuffle: int | bool | None = None,
    seed: int | str | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    modality: str | None = None,
    file_names: str = "IM%05d",
    extension: str = ".dcm",
    tags: Mapping[Key, Any] | None = None,
    **kwargs: Any,
) -> list[WrittenSeries]:
    """Write ``array[v, k, j, i]`` as ONE series of ``v`` volumes at the same positions.

    ``kind`` says what tells the volumes apart: "time" (TemporalPositionIdentifier,
    NumberOfTemporalPositions, AcquisitionNumber, TriggerTime = ``values[v]`` ms), "echo"
    (EchoNumbers, EchoTime = ``values[v]``), "diffusion" (DiffusionBValue = ``values[v]``,
    DiffusionGradientOrientation = ``directions[v]``, plus Siemens' private (0019,100C) and
    (0019,100E)) or "acquisition" (AcquisitionNumber only). Files of all volumes are
    shuffled together and InstanceNumber runs 1..v*k through them. Other keyword
    arguments go to ``write_series`` (geometry, values, syntax). Returns one
    ``WrittenSeries`` per volume, all with the same SeriesInstanceUID.
    """
    if kind not in _4D_KINDS:
        raise ValueError(f"kind must be one of {', '.join(_4D_KINDS)}")
    array = np.asarray(array)
    nv, nk = int(array.shape[0]), int(array.shape[1])
    if values is None:
        defaults = {
            "time": [2000.0 * v for v in range(nv)],
            "echo": [10.0 * (v + 1) for v in range(nv)],
            "diffusion": [0.0] + [1000.0] * (nv - 1),
            "acquisition": [float(v) for v in range(nv)],
        }
        values = defaults[kind]
    if kind == "diffusion" and directions is None:
        axes = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)]
        directions = [axes[v % len(axes)] for v in range(nv)]
    if modality is None:
        modality = "CT" if kind in ("time", "acquisition") else "MR"
    study_uid = study_uid or make_uid(seed, "study")
    series_uid = series_uid or make_uid(seed, "series-4d", kind, nv, nk)
    frame_uid = frame_of_reference_uid or make_uid(seed, "frame", study_uid)
    order = _shuffled(list(range(nv * nk)), shuffle)
    name_number = {g: n for n, g in enumerate(order)}
    results = []
    for v in range(nv):
        direction = directions[v] if directions is not None else None
        volume_tags = {**(tags or {}), **_volume_tags(kind, v, nv, values[v], direction)}

        def name(_n: int, k: int, v: int = v) -> str:
            return file_names % name_number[v * nk + k]

        written = write_series(
            folder,
            array[v],
            seed=seed,
            series_uid=series_uid,
            study_uid=study_uid,
            frame_of_reference_uid=frame_uid,
            modality=modality,
            tags=volume_tags,
            instance_numbers=[v * nk + k + 1 for k in range(nk)],
            instance_uids=[make_uid(seed, series_uid, "sop", v, k) for k in range(nk)],
            file_names=name,
            extension=extension,
            **kwargs,
        )
        results.append(written)
    return results


def write_with_localizer(
    folder: str | Path,
    array: np.ndarray,
    *,
    localizer_orientation: str = "coronal",
    seed: int | str | None = None,
    shuffle: int | bool | None = None,
    **kwargs: Any,
) -> tuple[WrittenSeries, WrittenSeries]:
    """An axial (or any) series with a localizer image mixed into the same series.

    The localizer is one image of another orientation ("coronal" or "sagittal") and size,
    through the middle of the volume, with ImageType ORIGINAL\\PRIMARY\\LOCALIZER and the
    same SeriesInstanceUID, SeriesNumber and folder, InstanceNumber 1 (the stack's files
    are 2..). A reader must leave it out of the volume (or show it as its own stack).
    Returns (stack, localizer).
    """
    array = np.asarray(array)
    nk, rows, cols = (int(n) for n in array.shape[:3])
    grid_kwargs = {
        key: kwargs.pop(key)
        for key in ("affine", "origin", "orientation", "pixel_spacing", "slice_spacing")
        if key in kwargs
    }
    grid = Grid.build(**grid_kwargs)
    series_uid = kwargs.pop("series_uid", None) or make_uid(seed, "series-loc", nk, rows)
    study_uid = kwargs.pop("study_uid", None) or make_uid(seed, "study")
    frame_uid = kwargs.pop("frame_of_reference_uid", None) or make_uid(seed, "frame", study_uid)
    extension = kwargs.pop("extension", ".dcm")
    common = {
        "series_uid": series_uid,
        "study_uid": study_uid,
        "frame_of_reference_uid": frame_uid,
        "seed": seed,
        "extension": extension,
        **kwargs,
    }
    stack = write_series(
        folder,
        array,
        affine=grid.affine,
        shuffle=shuffle,
        instance_numbers=list(range(2, nk + 2)),
        file_names=lambda n, k: f"IM{n + 1:04d}",
        **common,
    )
    # The localizer: a projection through the volume, 1.5x coarser in-plane, twice as many
    # rows as the stack has slices; its centre is the volume's centre.
    centre = grid.affine @ np.array([(cols - 1) / 2, (rows - 1) / 2, (nk - 1) / 2, 1.0])
    loc_row, loc_col = orientation_cosines(localizer_orientation)
    extent = np.abs(grid.affine[:3, :3]) @ np.array([cols, rows, nk])
    loc_spacing = 1.5 * min(grid.pixel_spacing)
    loc_cols = int(np.ceil(abs(loc_row) @ extent / loc_spacing))
    loc_rows = int(np.ceil(abs(loc_col) @ extent / loc_spacing))
    origin = centre[:3] - loc_row * loc_spacing * (loc_cols - 1) / 2
    origin -= loc_col * loc_spacing * (loc_rows - 1) / 2
    image = _projection(
        array, grid.affine, origin, loc_row, loc_col, loc_spacing, loc_rows, loc_cols
    )
    localizer = write_series(
        folder,
        image[None],
        origin=origin,
        orientation=np.concatenate([loc_row, loc_col]),
        pixel_spacing=(loc_spacing, loc_spacing),
        slice_spacing=1.0,
        instance_numbers=[1],
        instance_uids=[make_uid(seed, series_uid, "localizer")],
        file_names=lambda n, k: "IM0000",
        tags={**(kwargs.get("tags") or {}), "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
        **{key: value for key, value in common.items() if key != "tags"},
    )
    return stack, localizer


def _projection(
    array: np.ndarray,
    affine: np.ndarray,
    origin: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    spacing: float,
    rows: int,
    cols: int,
) -> np.ndarray:
    """Mean of ``array`` along the localizer's normal, sampled on its grid (nearest voxel)."""
    normal = np.cross(row, col)
    inv = np.linalg.inv(affine)
    r, c = np.mgrid[0:rows, 0:cols]
    extent = np.abs(affine[:3, :3]) @ np.array(array.shape[2::-1][:3])
    depth = np.linspace(-0.5, 0.5, 32)[:, None, None] * float(abs(normal) @ extent)
    pts = (
        origin[None, None, None, :]
        + (c[None, ..., None] * row + r[None, ..., None] * col) * spacing
        + depth[..., None] * normal
    )
    ijk = np.rint(pts @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    nk, nj, ni = array.shape[:3]
    inside = (
        (ijk[..., 0] >= 0) & (ijk[..., 0] < ni) & (ijk[..., 1] >= 0) & (ijk[..., 1] < nj)
        & (ijk[..., 2] >= 0) & (ijk[..., 2] < nk)
    )  # fmt: skip
    ijk = np.where(inside[..., None], ijk, 0)
    samples = np.where(inside, array[ijk[..., 2], ijk[..., 1], ijk[..., 0]], array.min())
    return samples.mean(axis=0).astype(array.dtype)


# -- mosaics ----------------------------------------------------------------------------


def mosaic_corner(
    first_slice_position: Sequence[float],
    row_cos: Sequence[float],
    col_cos: Sequence[float],
    spacing_rc: Sequence[float],
    tile_shape: tuple[int, int],
    mosaic_shape: tuple[int, int],
) -> np.ndarray:
    """The ImagePositionPatient Siemens writes for a mosaic whose first tile starts at
    ``first_slice_position``.

    Siemens stores the corner of the whole mosaic as if it were one large image centred
    where the first slice is centred. A reader recovers the first slice's position with

        true = ipp + col_cos * row_spacing * (mosaic_rows - rows) / 2
                   + row_cos * col_spacing * (mosaic_cols - cols) / 2

    (the same correction as dcm2niix and nibabel); this function is its inverse.
    """
    rows, cols = tile_shape
    m_rows, m_cols = mosaic_shape
    shift = np.asarray(col_cos, dtype=np.float64) * float(spacing_rc[0]) * (m_rows - rows) / 2
    shift += np.asarray(row_cos, dtype=np.float64) * float(spacing_rc[1]) * (m_cols - cols) / 2
    return np.asarray(first_slice_position, dtype=np.float64) - shift


def write_mosaic(
    folder: str | Path,
    array: np.ndarray,
    *,
    affine: np.ndarray | None = None,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: str | Sequence[float] = "axial",
    pixel_spacing: Sequence[float] = (3.0, 3.0),
    slice_spacing: float = 3.0,
    seed: int | str | None = None,
    **kwargs: Any,
) -> WrittenSeries:
    """Write ``array[t, k, j, i]`` (or ``[k, j, i]``) as Siemens mosaics, one file per volume.

    Each file holds the ``k`` slices as tiles of an ``n x n`` grid (``n = ceil(sqrt(k))``),
    row by row from the top left, unused tiles zero. Tags: ImageType ...\\MOSAIC,
    Manufacturer SIEMENS, the private NumberOfImagesInMosaic (0019,100A) under creator
    "SIEMENS MR HEADER", SpacingBetweenSlices, and the mosaic ImagePositionPatient as
    Siemens writes it (see ``mosaic_corner``). There is no CSA header, so a reader takes
    the slice direction as row x column cosine. The geometry arguments describe the
    unpacked volume; the result's ``affine`` is that volume's (i, j, k) -> LPS affine and
    its paths are per time point. Other keyword arguments go to ``write_series``.
    """
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[None]
    nt, nk, rows, cols = (int(n) for n in array.shape)
    n = int(np.ceil(np.sqrt(nk)))
    grid = Grid.build(affine, origin, orientation, pixel_spacing, slice_spacing)
    mosaics = np.zeros((nt, n * rows, n * cols), dtype=array.dtype)
    for s in range(nk):
        r, c = divmod(s, n)
        mosaics[:, r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = array[:, s]
    corner = mosaic_corner(
        grid.origin,
        grid.row_cos,
        grid.col_cos,
        grid.pixel_spacing,
        (rows, cols),
        (n * rows, n * cols),
    )
    tags = {
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "NORM", "MOSAIC"],
        "Manufacturer": "SIEMENS",
        "SpacingBetweenSlices": _fmt(abs(grid.slice_spacing)),
        "AcquisitionMatrix": [0, cols, rows, 0],
        (0x0019, 0x0010): ("LO", "SIEMENS MR HEADER"),
        (0x0019, 0x100A): ("US", nk),
        **(kwargs.pop("tags", None) or {}),
    }
    written = write_series(
        folder,
        mosaics,
        positions=np.repeat(corner[None], nt, axis=0),
        orientation=grid.orientation,
        pixel_spacing=grid.pixel_spacing,
        slice_spacing=grid.slice_spacing,
        slice_thickness=abs(grid.slice_spacing),
        modality=kwargs.pop("modality", "MR"),
        per_slice=lambda t: {"AcquisitionNumber": t + 1, "TemporalPositionIdentifier": t + 1},
        slice_locations=kwargs.pop("slice_locations", False),
        seed=seed,
        tags=tags,
        **kwargs,
    )
    written.affine = grid.affine
    written.ks = list(range(nk))
    written.positions = grid.positions(nk)
    return written


# -- multi-frame objects ----------------------------------------------------------------


@dataclass
class WrittenMultiframe:
    """A written multi-frame file and the truth about its frames.

    ``frames[f] = (stack, k)``: frame ``f`` (0-based, file order) is slice ``k`` of stack
    ``stack``; ``affines[stack]`` is that stack's (i, j, k) -> LPS affine.
    """

    path: Path
    frames: list[tuple[int, int]]
    affines: list[np.ndarray]
    series_uid: str
    study_uid: str
    sop_instance_uid: str
    transfer_syntax: str


def _sequence_item(**attrs: Any) -> Dataset:
    item = Dataset()
    for key, value in attrs.items():
        setattr(item, key, value)
    return item


def write_multiframe(
    path: str | Path,
    stacks: np.ndarray | Sequence[np.ndarray],
    *,
    grids: Grid | Sequence[Grid] | None = None,
    kind: str = "enhanced",
    modality: str = "CT",
    stack_dimension: str = "stack",
    frame_order: str = "stacked",
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    bits_allocated: int = 16,
    signed: bool = True,
    transfer_syntax: str = ExplicitVRLittleEndian,
    seed: int | str | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    series_number: int = 1,
    description: str = "",
    patient: Mapping[str, Any] | None = None,
    tags: Mapping[Key, Any] | None = None,
    **geometry: Any,
) -> WrittenMultiframe:
    """Write one or more stacks ``[k, j, i]`` (same rows and columns) into ONE multi-frame file.

    ``kind="enhanced"``: Enhanced CT/MR Image Storage with shared and per-frame functional
    groups: PixelMeasuresSequence, PlaneOrientationSequence (shared when all stacks share
    it, else per frame), PlanePositionSequence per frame, FrameContentSequence with
    DimensionIndexValues (stack, in-stack position) described by DimensionIndexSequence;
    ``stack_dimension="time"`` indexes stacks by TemporalPositionIndex instead of StackID.
    ``frame_order``: "stacked" (stack by stack), "interleaved" (position by position) or
    "shuffled" (seeded random order), so a reader must use the positions and indices.

    ``kind="legacy"``: one stack as a Multi-frame Grayscale Secondary Capture with the
    classic top-level ImagePositionPatient (first frame), ImageOrientationPatient,
    PixelSpacing, SpacingBetweenSlices and SliceLocationVector as FrameIncrementPointer;
    frames are in ``k`` order.

    ``grids`` (one per stack) place the stacks; without them every stack uses the
    geometry keyword arguments (``affine`` or ``origin``, ``orientation``,
    ``pixel_spacing``, ``slice_spacing``), which is what a "time" series wants.
    """
    if isinstance(stacks, np.ndarray) and stacks.ndim == 3:
        stacks = [stacks]
    arrays = [np.asarray(a) for a in stacks]
    if len({a.shape[1:] for a in arrays}) != 1:
        raise ValueError("all stacks need the same rows and columns")
    if grids is None:
        grids = [Grid.build(**geometry)] * len(arrays)
    elif isinstance(grids, Grid):
        grids = [grids] * len(arrays)
    grids = list(grids)
    if len(grids) != len(arrays):
        raise ValueError("give one grid per stack")
    if kind not in ("enhanced", "legacy"):
        raise ValueError("kind must be 'enhanced' or 'legacy'")
    if kind == "legacy" and len(arrays) != 1:
        raise ValueError("a legacy multi-frame object holds one stack")

    frames = [(s, k) for s, a in enumerate(arrays) for k in range(a.shape[0])]
    if frame_order == "interleaved":
        frames.sort(key=lambda sk: (sk[1], sk[0]))
    elif frame_order == "shuffled":
        frames = [frames[n] for n in _shuffled(list(range(len(frames))), seed or 0)]
    elif frame_order != "stacked":
        raise ValueError("frame_order must be stacked, interleaved or shuffled")
    if kind == "legacy":
        frames = [(0, k) for k in range(arrays[0].shape[0])]

    convert = _StoredValues(rescale, bits_allocated, signed, None)
    pixels = np.stack([convert(arrays[s][k]) for s, k in frames])
    rows, cols = (int(n) for n in arrays[0].shape[1:3])
    study_uid = study_uid or make_uid(seed, "study")
    series_uid = series_uid or make_uid(seed, "series-mf", kind, series_number, description)
    sop_uid = make_uid(seed, series_uid, "sop")
    frame_uid = make_uid(seed, "frame", study_uid)
    if kind == "legacy":
        sop_class = (
            SOP_CLASSES["MF_GRAY_WORD_SC"]
            if bits_allocated > 8
            else ("1.2.840.10008.5.1.4.1.1.7.2")
        )
    else:
        sop_class = SOP_CLASSES["ENHANCED_MR" if modality == "MR" else "ENHANCED_CT"]
    ds = _base_dataset(
        modality=modality,
        sop_class=sop_class,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        series_number=series_number,
        description=description,
        rows=rows,
        columns=cols,
        pixel_spacing=grids[0].pixel_spacing,
        orientation=grids[0].orientation,
        slice_thickness=abs(grids[0].slice_spacing),
        photometric="MONOCHROME2",
        bits_allocated=bits_allocated,
        bits_stored=bits_allocated,
        signed=signed,
        samples=1,
        rescale=rescale if rescale is not None else (1.0, 0.0),
        window=window,
        patient=patient,
        float_pixels=None,
    )
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(frames)
    if kind == "legacy":
        grid = grids[0]
        positions = grid.positions(len(frames))
        ds.ImagePositionPatient = _ds(positions[0])
        ds.SpacingBetweenSlices = _fmt(abs(grid.slice_spacing))
        ds.SliceLocationVector = _ds(positions @ grid.normal)
        ds.FrameIncrementPointer = 0x00182005
        if modality == "CT":
            ds.RescaleType = "US"
    else:
        _enhanced_groups(ds, frames, grids, stack_dimension, modality, seed, series_uid)
    for key, value in (tags or {}).items():
        set_attribute(ds, key, value)

    ds.file_meta = _file_meta(sop_class, transfer_syntax)
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    tsyntax = UID(transfer_syntax)
    if tsyntax in _OWN_JPEG:
        _encode_jpeg_frames(ds, pixels, tsyntax)
    elif tsyntax.is_compressed:
        ds.compress(tsyntax, pixels, generate_instance_uid=False, **_compress_options(tsyntax))
    else:
        data = pixels if tsyntax.is_little_endian else pixels.astype(pixels.dtype.newbyteorder(">"))
        ds.PixelData = np.ascontiguousarray(data).tobytes()
        ds["PixelData"].VR = "OB" if bits_allocated <= 8 else "OW"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dataset_bytes(ds))
    return WrittenMultiframe(
        path=path,
        frames=frames,
        affines=[g.affine for g in grids],
        series_uid=series_uid,
        study_uid=study_uid,
        sop_instance_uid=sop_uid,
        transfer_syntax=str(tsyntax),
    )


def _enhanced_groups(
    ds: Dataset,
    frames: list[tuple[int, int]],
    grids: list[Grid],
    stack_dimension: str,
    modality: str,
    seed: int | str | None,
    series_uid: str,
) -> None:
    """Shared and per-frame functional groups and the dimension index of an enhanced object."""
    shared = Dataset()
    same_orientation = all(np.allclose(g.orientation, grids[0].orientation) for g in grids)
    same_spacing = all(
        np.allclose(g.pixel_spacing, grids[0].pixel_spacing)
        and np.isclose(g.slice_spacing, grids[0].slice_spacing)
        for g in grids
    )

    def measures(grid: Grid) -> Dataset:
        return _sequence_item(
            PixelSpacing=_ds(grid.pixel_spacing),
            SliceThickness=_fmt(abs(grid.slice_spacing)),
            SpacingBetweenSlices=_fmt(abs(grid.slice_spacing)),
        )

    if same_spacing:
        shared.PixelMeasuresSequence = [measures(grids[0])]
    if same_orientation:
        shared.PlaneOrientationSequence = [
            _sequence_item(ImageOrientationPatient=_ds(grids[0].orientation))
        ]
    transform = _sequence_item(
        RescaleIntercept=ds.RescaleIntercept,
        RescaleSlope=ds.RescaleSlope,
        RescaleType=ds.get("RescaleType", "US"),
    )
    shared.PixelValueTransformationSequence = [transform]
    if "WindowCenter" in ds:
        shared.FrameVOILUTSequence = [
            _sequence_item(WindowCenter=ds.WindowCenter, WindowWidth=ds.WindowWidth)
        ]
    frame_type = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    if modality == "MR":
        shared.MRImageFrameTypeSequence = [_sequence_item(FrameType=frame_type)]
    else:
        shared.CTImageFrameTypeSequence = [_sequence_item(FrameType=frame_type)]
    for keyword in ("ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "RescaleIntercept", "RescaleSlope", "RescaleType", "WindowCenter",
                    "WindowWidth"):  # fmt: skip
        if keyword in ds:
            delattr(ds, keyword)
    ds.ImageType = frame_type
    ds.ContentQualification = "PRODUCT"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionDateTime = ds.StudyDate + ds.StudyTime
    ds.SharedFunctionalGroupsSequence = [shared]

    by_time = stack_dimension == "time"
    positions = [g.positions(int(max(k for s2, k in frames if s2 == s) + 1))
                 for s, g in enumerate(grids)]  # fmt: skip
    per_frame = []
    for s, k in frames:
        content = Dataset()
        if by_time:
            content.TemporalPositionIndex = s + 1
        else:
            content.StackID = str(s + 1)
            content.InStackPositionNumber = k + 1
        content.DimensionIndexValues = [s + 1, k + 1]
        item = Dataset()
        item.FrameContentSequence = [content]
        item.PlanePositionSequence = [_sequence_item(ImagePositionPatient=_ds(positions[s][k]))]
        if not same_orientation:
            item.PlaneOrientationSequence = [
                _sequence_item(ImageOrientationPatient=_ds(grids[s].orientation))
            ]
        if not same_spacing:
            item.PixelMeasuresSequence = [measures(grids[s])]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame

    org_uid = make_uid(seed, series_uid, "dimensions")
    ds.DimensionOrganizationSequence = [_sequence_item(DimensionOrganizationUID=org_uid)]
    first = (0x00209128, "Temporal Position Index") if by_time else (0x00209056, "Stack ID")
    second = (0x00209057, "In-Stack Position Number")
    ds.DimensionIndexSequence = [
        _sequence_item(
            DimensionOrganizationUID=org_uid,
            DimensionIndexPointer=pointer,
            FunctionalGroupPointer=0x00209111,
            DimensionDescriptionLabel=label,
        )
        for pointer, label in (first, second)
    ]
    if by_time:
        for item, (_s, k) in zip(per_frame, frames, strict=True):
            item.FrameContentSequence[0].InStackPositionNumber = k + 1
            item.FrameContentSequence[0].StackID = "1"


# -- JPEG codecs pydicom cannot encode --------------------------------------------------

# Code lengths given to the difference categories, most frequent first. Their Kraft sum is
# below 1, so no code is all ones, as JPEG requires.
_LOSSLESS_CODE_LENGTHS = (2, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


def _huffman_table(categories: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A DHT segment body and per-category (code, length) for 17 lossless categories."""
    counts = np.bincount(categories.ravel(), minlength=17)
    symbols = sorted(range(17), key=lambda s: (-int(counts[s]), s))
    lengths = np.zeros(17, dtype=np.int64)
    for symbol, length in zip(symbols, _LOSSLESS_CODE_LENGTHS, strict=True):
        lengths[symbol] = length
    codes = np.zeros(17, dtype=np.int64)
    code = 0
    bits = bytearray(16)
    huffval = bytearray()
    for length in range(1, 17):
        for symbol in symbols:
            if lengths[symbol] == length:
                codes[symbol] = code
                code += 1
                bits[length - 1] += 1
                huffval.append(symbol)
        code <<= 1
    return bytes([0x00]) + bytes(bits) + bytes(huffval), codes, lengths


def _pack_bits(values: np.ndarray, nbits: np.ndarray) -> bytes:
    """Concatenate ``values[n]`` as ``nbits[n]``-bit big-endian fields; pad with ones; stuff."""
    nbits = nbits.astype(np.int64)
    total = int(nbits.sum())
    owner = np.repeat(np.arange(values.size), nbits)
    starts = np.cumsum(nbits) - nbits
    offset = np.arange(total, dtype=np.int64) - np.repeat(starts, nbits)
    shift = nbits[owner] - 1 - offset
    bits = ((values[owner] >> shift) & 1).astype(np.uint8)
    pad = (-total) % 8
    if pad:
        bits = np.concatenate([bits, np.ones(pad, dtype=np.uint8)])
    packed = np.packbits(bits)
    ff = np.flatnonzero(packed == 0xFF)
    return np.insert(packed, ff + 1, 0).tobytes()


def encode_jpeg_lossless(frame: np.ndarray, precision: int) -> bytes:
    """One grayscale frame as lossless JPEG, process 14, first-order prediction (SV1).

    ``frame`` holds integers; signed values are coded as their ``precision``-bit two's
    complement, which is how DICOM stores signed data in JPEG Lossless (1.2.840.10008.1.2.4.70).
    """
    rows, cols = frame.shape
    mask = (1 << precision) - 1
    x = frame.astype(np.int64) & mask
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = (x - pred) & 0xFFFF
    diff = np.where(diff >= 0x8000, diff - 0x10000, diff)
    magnitude = np.abs(diff)
    category = np.zeros_like(diff)
    nonzero = magnitude > 0
    category[nonzero] = np.floor(np.log2(magnitude[nonzero])).astype(np.int64) + 1
    category = np.minimum(category, 16)
    extra = np.where(diff < 0, diff - 1, diff) & ((1 << category) - 1)
    extra_bits = np.where(category == 16, 0, category)
    dht, codes, lengths = _huffman_table(category)
    values = (codes[category] << extra_bits) | np.where(category == 16, 0, extra)
    scan = _pack_bits(values.ravel(), (lengths[category] + extra_bits).ravel())

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">HH", marker, len(body) + 2) + body

    sof = struct.pack(">BHHB", precision, rows, cols, 1) + bytes([1, 0x11, 0])
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, Ss = predictor 1
    return (
        b"\xff\xd8"
        + segment(0xFFC3, sof)
        + segment(0xFFC4, dht)
        + segment(0xFFDA, sos)
        + scan
        + b"\xff\xd9"
    )


def encode_jpeg_baseline(frame: np.ndarray, quality: int = 90) -> bytes:
    """One 8-bit frame (grayscale, or RGB kept at full chroma resolution) as baseline JPEG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(
        buf, "JPEG", quality=quality, subsampling=0
    )
    return buf.getvalue()


def _encode_jpeg_frames(ds: Dataset, frames: np.ndarray, tsyntax: str) -> None:
    """Encapsulate ``frames`` ([n, rows, cols(, 3)]) with one of the JPEG processes above."""
    from pydicom.encaps import encapsulate

    if tsyntax == JPEGLosslessSV1:
        if ds.SamplesPerPixel != 1:
            raise ValueError("the lossless JPEG writer handles grayscale frames only")
        encoded = [encode_jpeg_lossless(f, int(ds.BitsStored)) for f in frames]
    else:
        if ds.BitsAllocated != 8:
            raise ValueError("baseline JPEG needs 8-bit data (bits_allocated=8)")
        encoded = [encode_jpeg_baseline(f) for f in frames]
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        if ds.SamplesPerPixel == 3:
            ds.PhotometricInterpretation = "YBR_FULL"
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


# -- archives ---------------------------------------------------------------------------

_ZIP_DATE = (2024, 1, 15, 9, 30, 0)
JUNK_FILES: dict[str, bytes] = {
    "__MACOSX/._IM0001": b"\0\5\26\7\0\2\0\0Mac OS X        ",
    ".DS_Store": b"\0\0\0\1Bud1" + b"\0" * 24,
    "Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 24,
    "README.txt": b"Exported images.\n",
    "DICOMDIR.bak": b"not a dicom file\n",
}


def zip_folders(
    zip_path: str | Path,
    folders: Sequence[str | Path] | Mapping[str, str | Path],
    *,
    junk: bool = False,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """Pack folders (each as a top-level folder named after it, or after the mapping's key)
    into ``zip_path``, deterministically (fixed dates, sorted names).

    A mapping value may be a file (e.g. another zip, to nest archives) stored under its key.
    ``junk=True`` adds what real exports carry: ``__MACOSX`` resource forks, ``.DS_Store``,
    ``Thumbs.db``, a README and a non-DICOM file.
    """
    items = (
        folders.items() if isinstance(folders, Mapping) else [(Path(f).name, f) for f in folders]
    )
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=compression) as zf:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)

        for arcname, source in items:
            source = Path(source)
            if source.is_file():
                add(str(arcname), source.read_bytes())
                continue
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                add(f"{arcname}/{file.relative_to(source).as_posix()}", file.read_bytes())
        if junk:
            for name, data in JUNK_FILES.items():
                add(name, data)
    return zip_path
