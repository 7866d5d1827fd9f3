"""Read DICOM headers only (no pixel data) so the series table appears fast."""

from __future__ import annotations

import functools
import io
import math
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mprviewer.errors import DicomError, LoadCancelled
from mprviewer.io.deflated import DEFLATED, is_deflated
from mprviewer.io.limits import LimitExceeded, Limits
from mprviewer.io.lite_header import LiteHeader, parse_lite
from mprviewer.io.quick_values import header_value
from mprviewer.io.sources import Member

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Storage classes that hold no pixels (SR, KOS, presentation states, ...) are recognised by
# the absence of PixelData/Rows; this map only gives the skip reason a readable name.
NON_IMAGE_CLASSES = {
    "1.2.840.10008.1.3.10": "DICOMDIR (media directory)",
    "1.2.840.10008.5.1.4.1.1.88.59": "Key Object Selection document",
    "1.2.840.10008.5.1.4.1.1.11.1": "presentation state",
    "1.2.840.10008.5.1.4.1.1.104.1": "encapsulated PDF",
}


# The pixel element stop_before_pixels stopped at (little- and big-endian tag bytes).
PIXEL_KEYWORDS = {
    b"\xe0\x7f\x08\x00": "FloatPixelData",
    b"\x7f\xe0\x00\x08": "FloatPixelData",
    b"\xe0\x7f\x09\x00": "DoubleFloatPixelData",
    b"\x7f\xe0\x00\x09": "DoubleFloatPixelData",
}


@dataclass
class Instance:
    """The header facts of one image file that grouping, sorting and loading need.

    ``facts`` answers ``get``/``in`` for the values the loader reads: the pydicom header
    itself, or, for the common layout, a LiteHeader that asks the pydicom header (read on
    first need) only about the rest. ``header`` is always the full pydicom header.
    """

    member: Member
    facts: Any = field(repr=False)
    sop_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    rows: int
    columns: int
    frames: int
    orientation: np.ndarray | None  # 6 direction cosines (row, column)
    position: np.ndarray | None  # ImagePositionPatient
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns)
    transfer_syntax: str
    pixel_offset: int | None  # file offset of the PixelData element, when native
    instance_number: int | None

    @property
    def header(self) -> Dataset:
        """The file's pydicom header without pixel data (parsed now if it was not yet)."""
        facts = self.facts
        return facts.full() if isinstance(facts, LiteHeader) else facts

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        return np.cross(self.orientation[:3], self.orientation[3:])


def _float_tuple(value: Any, n: int) -> np.ndarray | None:
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(values) != n or not all(map(math.isfinite, values)):  # math: no array round trip
        return None
    return np.array(values, dtype=np.float64)


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A file without the 128-byte preamble usually starts with a group 0002 or 0008 tag."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] != b"\x00\x00"


HEADER_PREFIX = 16 * 1024  # headers are a few KB; one read beats pydicom's many small reads


def _parse_header(fh: Any) -> tuple[Dataset, int, bytes]:
    """(header, offset of the element that stopped parsing, its first 4 bytes)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    head = fh.read(132)
    fh.seek(0)
    if head[128:132] == b"DICM":
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
    elif _looks_like_raw_dataset(head):
        ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
    else:
        raise InvalidDicomError("no DICOM preamble and no recognisable data set")
    offset = fh.tell()
    return ds, offset, fh.read(4)


def read_facts(member: Member) -> Dataset | LiteHeader:
    """What the loader reads of a file's header: a LiteHeader for the common layout (no
    pydicom needed), else the pydicom header from ``read_header``."""
    with member.open() as fh:
        try:
            prefix = fh.read(HEADER_PREFIX)
        except OSError:
            prefix = None
    if prefix is not None and not is_deflated(prefix):
        lite = parse_lite(prefix, complete=len(prefix) < HEADER_PREFIX)
        if lite is not None:
            header = lite.header
            complete = not lite.has_pixels and len(prefix) < HEADER_PREFIX
            # From the bytes read now: the source may be closed (a zip, a download) by the
            # time someone asks, and the header is the one the scan saw.
            header.set_loader(lambda: _full_header(member, header.header_bytes, complete))
            if header.file_meta is not None:
                header.file_meta.set_loader(lambda: header.full().file_meta)
            header.__dict__["_mprviewer_pixel_offset"] = lite.pixel_offset
            header.__dict__["_mprviewer_pixel_keyword"] = lite.pixel_keyword
            header.__dict__["_mprviewer_has_pixels"] = lite.has_pixels
            return header
    return read_header(member)


def _full_header(member: Member, prefix: bytes, complete: bool) -> Dataset:
    """The pydicom header behind a LiteHeader; a failure is a DicomError naming the file."""
    try:
        return _header_from(member, prefix, complete)
    except Exception as exc:
        raise DicomError(f"{member.name}: damaged DICOM header: {type(exc).__name__}: "
                         f"{exc}") from exc


def read_header(member: Member) -> Dataset:
    """Parse a file's header; raise InvalidDicomError when it is not DICOM.

    The first 16 KB are read in one call. The common layout (preamble, little-endian data
    set) is walked by fast_header; anything else is parsed by pydicom from memory, and only
    a header that runs past the 16 KB (rare: big private blocks) is parsed again from the
    stream.
    """
    with member.open() as fh:
        try:
            prefix = fh.read(HEADER_PREFIX)
        except OSError:
            # e.g. a zip member whose tail is damaged: its header may still read on its own.
            prefix = None
    if prefix is not None and is_deflated(prefix):
        deflated = _deflated_header(member)
        if deflated is not None:
            return deflated
    return _header_from(member, prefix, prefix is not None and len(prefix) < HEADER_PREFIX)


def _header_from(member: Member, prefix: bytes | None, complete: bool) -> Dataset:
    """read_header on the file's first bytes (``complete``: the whole file); the file is
    read again only for a header longer than them."""
    from pydicom.errors import InvalidDicomError

    from mprviewer.io.bounded import BoundedHeader, HeaderTooLong
    from mprviewer.io.fast_header import parse_header

    parsed = None
    if prefix is not None:
        fast = parse_header(prefix, complete=complete)
        if fast is not None:
            ds = fast.dataset
            ds.__dict__["_mprviewer_pixel_offset"] = fast.pixel_offset
            ds.__dict__["_mprviewer_pixel_keyword"] = fast.pixel_keyword
            ds.__dict__["_mprviewer_has_pixels"] = fast.has_pixels
            return ds
        try:
            parsed = _parse_header(BoundedHeader(io.BytesIO(prefix), math.inf, member.name))
        except (InvalidDicomError, HeaderTooLong):
            raise
        except Exception:
            if complete:
                raise
        stopped_at_pixels = parsed is not None and (
            parsed[2] in PIXEL_KEYWORDS or parsed[2] in (b"\xe0\x7f\x10\x00",
                                                         b"\x7f\xe0\x00\x10"))
        if not complete and not stopped_at_pixels:
            parsed = None
    if parsed is None:
        with member.open() as fh:
            parsed = _parse_header(BoundedHeader(fh, Limits.from_env().max_header_bytes,
                                                 member.name))
    ds, offset, tag = parsed
    replace_unknown_vrs(ds)  # the quick walk above declines such VRs; pydicom keeps them
    ds.__dict__["_mprviewer_pixel_offset"] = offset
    ds.__dict__["_mprviewer_pixel_keyword"] = PIXEL_KEYWORDS.get(tag, "PixelData")
    # Only an uncompressed data set that ran to the end of the file surely has no pixels (a
    # deflated one is read from an inflated copy, so the file position says nothing).
    deflated = str(header_value(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")) == (
        "1.2.840.10008.1.2.1.99")
    ds.__dict__["_mprviewer_has_pixels"] = bool(tag) or deflated
    return ds


def _deflated_header(member: Member) -> Dataset | None:
    """The header of a deflated file, inflated only up to its pixel data and within the
    caps; None when the file meta does not name the deflated syntax after all."""
    from mprviewer.io.deflated import read_deflated

    with member.open() as fh:
        try:
            ds, stopped = read_deflated(fh, member.name, Limits.from_env().max_header_bytes,
                                        stop_before_pixels=True)
        except ValueError:
            return None
    replace_unknown_vrs(ds)
    ds.__dict__["_mprviewer_pixel_offset"] = None
    ds.__dict__["_mprviewer_pixel_keyword"] = {0x7FE00008: "FloatPixelData",
                                               0x7FE00009: "DoubleFloatPixelData"}.get(
        stopped or 0, "PixelData")
    ds.__dict__["_mprviewer_has_pixels"] = stopped is not None
    return ds


def has_pixel_data(ds: Any) -> bool:
    """Whether the file holds a pixel data element (headers are read without it)."""
    known = ds.__dict__.get("_mprviewer_has_pixels")
    return bool(known) if known is not None else "PixelData" in ds


def _kind(ds: Dataset) -> str:
    """The modality for a skip reason ("object" when the file names none)."""
    return str(ds.get("Modality", "")) or "object"


TRUNCATION_CHECK_BYTES = 64 * 1024 * 1024  # a file without pixels is read whole only below this


def _truncated(member: Member) -> str | None:
    """"truncated ..." when the file stops inside an element (an interrupted copy or
    download) rather than ending after a header that has no pixel data."""
    if member.size > TRUNCATION_CHECK_BYTES:
        return None
    try:
        with member.open() as fh:
            data = fh.read(TRUNCATION_CHECK_BYTES + 1)
    except OSError:
        return None
    from mprviewer.io.fast_header import cut_short

    if cut_short(data):
        return (f"truncated DICOM file: it ends inside an element after {len(data)} bytes, "
                "before the pixel data (an incomplete copy or download?)")
    return None


def instance_from_header(member: Member, ds: Any) -> Instance | str:
    """An Instance, or the reason this file is not a usable image."""
    sop_class = str(header_value(ds, "SOPClassUID", ""))
    if sop_class in NON_IMAGE_CLASSES:
        return f"{NON_IMAGE_CLASSES[sop_class]}, not an image"
    pixels = has_pixel_data(ds)
    if not pixels and (cut := _truncated(member)) is not None:
        return cut
    if "Rows" not in ds or "Columns" not in ds:
        if not pixels:
            return f"DICOM {_kind(ds)} without image pixels"
        missing = " and ".join(f"{name} ({tag})" for name, tag in
                               (("Rows", "0028,0010"), ("Columns", "0028,0011"))
                               if name not in ds)
        return f"DICOM {_kind(ds)} with pixel data but no {missing}: the image size is unknown"
    if not pixels:
        return f"DICOM {_kind(ds)} image header without Pixel Data (7FE0,0010)"
    rows, cols = int(header_value(ds, "Rows") or 0), int(header_value(ds, "Columns") or 0)
    if rows <= 0 or cols <= 0:
        return f"invalid image size {rows}x{cols}"
    series_uid = str(header_value(ds, "SeriesInstanceUID", "")) or "unknown-series"
    spacing = _float_tuple(header_value(ds, "PixelSpacing"), 2)
    if spacing is None:
        spacing = _float_tuple(header_value(ds, "ImagerPixelSpacing"), 2)
    try:
        frames = int(header_value(ds, "NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 1
    try:
        instance_number = int(header_value(ds, "InstanceNumber"))
    except (TypeError, ValueError):
        instance_number = None
    file_meta = getattr(ds, "file_meta", None)
    ts = str(header_value(file_meta, "TransferSyntaxUID", "")) if file_meta is not None else ""
    if not ts:
        ts = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
    native = ts in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    try:
        pixel_bytes = max(1, int(header_value(ds, "BitsAllocated", 8) or 8) // 8) * max(
            1, int(header_value(ds, "SamplesPerPixel", 1) or 1))
    except (TypeError, ValueError):
        pixel_bytes = 1
    most = max_frames(member.size, rows * cols * pixel_bytes, native, ts)
    if member.size > 0 and frames > most:
        return (f"NumberOfFrames is {frames} but a {member.size}-byte file holds at most "
                f"{most} frames of {rows}x{cols}")
    if frames > 1:  # a sparse file can hold anything: the frames must fit the memory cap too
        from mprviewer.io.decoded import frames_problem

        problem = frames_problem(ds, rows, cols, frames)
        if problem is not None:
            return problem
    pixel_offset = ds.__dict__.get("_mprviewer_pixel_offset") if native else None
    return Instance(
        member=member,
        facts=ds,
        sop_uid=str(header_value(ds, "SOPInstanceUID", "")),
        sop_class_uid=sop_class,
        series_uid=series_uid,
        study_uid=str(header_value(ds, "StudyInstanceUID", "")),
        rows=rows,
        columns=cols,
        frames=max(frames, 1),
        orientation=_float_tuple(header_value(ds, "ImageOrientationPatient"), 6),
        position=_float_tuple(header_value(ds, "ImagePositionPatient"), 3),
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else None,
        transfer_syntax=ts,
        pixel_offset=pixel_offset,
        instance_number=instance_number,
    )


@functools.cache
def _known_vrs() -> frozenset[str]:
    from pydicom.valuerep import VR

    return frozenset(vr.value for vr in VR)


def replace_unknown_vrs(ds: Dataset) -> None:
    """Give elements whose VR is not a DICOM VR the VR UN, so reading them later yields raw
    bytes instead of raising.

    pydicom converts values lazily, so a damaged VR would otherwise surface far from the
    scan, wherever the value is first used.
    """
    from pydicom.dataelem import RawDataElement

    known = _known_vrs()
    for container in (getattr(ds, "file_meta", None), ds):
        if container is None:
            continue
        for tag, elem in list(container._dict.items()):
            if isinstance(elem, RawDataElement) and elem.VR is not None \
                    and elem.VR not in known:
                container._dict[tag] = elem._replace(VR="UN")


# The smallest compressed frame each codec can write, so that a header cannot claim more
# frames than the file holds: SOI, SOF, SOS and EOI for JPEG-LS (the JPEG processes need
# tables too); the SIZ, COD and QCD markers and a tile for JPEG 2000; the 64-byte header of
# an RLE frame. Each frame also takes at least one 8-byte item header.
ITEM_HEADER = 8
MIN_ENCODED_FRAME = 24
MIN_J2K_FRAME = 64
MIN_RLE_FRAME = 64
_J2K_PREFIXES = ("1.2.840.10008.1.2.4.9", "1.2.840.10008.1.2.4.20")  # JPEG 2000, HTJ2K
_RLE = "1.2.840.10008.1.2.5"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATE_MAX_RATIO = 1032  # deflate never expands data more than this


def max_frames(file_size: int, frame_bytes: int, native: bool,
               transfer_syntax: str = "") -> int:
    """The most frames a file of this size can hold, to refuse a header that claims more
    (and so bound the per-frame bookkeeping by the file's real size).

    A native frame takes ``frame_bytes`` (a deflated one at least 1/1032 of that); an
    encapsulated one its item header and the smallest frame its codec writes.
    """
    if native or transfer_syntax == _BIG_ENDIAN:
        per_frame = frame_bytes
    elif transfer_syntax == DEFLATED:
        per_frame = frame_bytes // DEFLATE_MAX_RATIO
    elif transfer_syntax == _RLE:
        per_frame = ITEM_HEADER + MIN_RLE_FRAME
    elif transfer_syntax.startswith(_J2K_PREFIXES):
        per_frame = ITEM_HEADER + MIN_J2K_FRAME
    else:
        per_frame = ITEM_HEADER + MIN_ENCODED_FRAME
    return max(1, file_size // max(per_frame, 1))


def scan_one(member: Member) -> Instance | tuple[str, str]:
    """Scan one member: an Instance or (name, reason) for a file to skip."""
    try:
        ds = read_facts(member)
    except LimitExceeded as exc:  # an endless header or a deflate bomb
        return (member.name, str(exc).removeprefix(f"{member.name}: "))
    except Exception as exc:
        errors = sys.modules.get("pydicom.errors")  # only pydicom raises InvalidDicomError
        if errors is not None and isinstance(exc, errors.InvalidDicomError):
            if member.name.lower().endswith(".zip"):
                return (member.name, "not a zip archive nor a DICOM file (damaged, or an "
                                     "incomplete download?)")
            return (member.name, "not a DICOM file")
        if isinstance(exc, (OSError, EOFError)):
            return (member.name, f"cannot be read: {exc}")
        # pydicom raises many kinds on damaged headers
        return (member.name, f"damaged DICOM header: {type(exc).__name__}: {exc}")
    try:
        meta = getattr(ds, "file_meta", None)
        media_class = (str(header_value(meta, "MediaStorageSOPClassUID", ""))
                       if meta is not None else "")
    except Exception as exc:  # a damaged value in the file meta group, read lazily
        return (member.name, f"damaged DICOM file meta: {type(exc).__name__}: {exc}")
    if media_class == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        if member.name.replace("\\", "/").rsplit("/", 1)[-1].upper() == "DICOMDIR":
            return (member.name, "DICOMDIR (media directory), not an image")
        return (member.name, "DICOMDIR (media directory) under another name; open the file "
                             "named DICOMDIR, or the folder that holds the images")
    if "SOPClassUID" not in ds and not has_pixel_data(ds) and "Rows" not in ds:
        return (member.name, "not a DICOM image (no SOP class, no pixels)")
    try:
        result = instance_from_header(member, ds)
    except Exception as exc:
        return (member.name, f"unusable DICOM header: {type(exc).__name__}: {exc}")
    if isinstance(result, str):
        return (member.name, result)
    return result


def scan_members(
    members: list[Member],
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    workers: int = 1,
) -> tuple[list[Instance], list[tuple[str, str]]]:
    """Scan every member's header, reporting progress(done, total).

    Members go to the pool in chunks, one task each. Parsing is GIL-bound Python that
    overlaps little file reading, so one worker is the default: a second one measured
    slower (GIL hand-offs), and one task per file cost more in hand-offs than it saved.
    """
    instances: list[Instance] = []
    skipped: list[tuple[str, str]] = []
    total = len(members)
    if progress:
        progress(0, total)
    if not members:
        return instances, skipped
    chunk = 32

    def scan_chunk(start: int) -> list[Instance | tuple[str, str]] | None:
        if cancel is not None and cancel.is_set():
            return None
        return [scan_one(m) for m in members[start : start + chunk]]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(scan_chunk, start) for start in range(0, total, chunk)]
        try:
            for n, future in enumerate(futures):
                results = future.result()
                if results is None or (cancel is not None and cancel.is_set()):
                    raise LoadCancelled("loading was cancelled")
                for result in results:
                    if isinstance(result, Instance):
                        instances.append(result)
                    else:
                        skipped.append(result)
                if progress:
                    progress(min((n + 1) * chunk, total), total)
        finally:
            for future in futures:
                future.cancel()
    return instances, skipped
