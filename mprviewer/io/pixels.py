"""Read pixel data straight into the final volume array, with modality rescale applied.

Native (uncompressed little-endian) files on disk are read with one ``readinto`` per slice
at the pixel data offset found during the header scan; everything else goes through
pydicom's decoders (and its codec plugins), ONCE per instance: a multi-frame object or a
mosaic is decoded a single time and its frames or tiles copied out. Colour data comes out as
RGB (YBR converted by pydicom, palette colour through its lookup table). Work is spread over
a small thread pool: file reads, numpy and the C decoders release the GIL.
"""

from __future__ import annotations

import copy
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from mprviewer.errors import DicomError, LoadCancelled
from mprviewer.io.codecs import ensure_decodable
from mprviewer.io.decoded import check_instance, check_streams, check_volume, decoded_bytes
from mprviewer.io.deflated import DEFLATED
from mprviewer.io.geometry import Frame
from mprviewer.io.limits import Limits
from mprviewer.io.lite_header import LiteHeader
from mprviewer.io.quick_values import header_value
from mprviewer.io.scan import Instance

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

NATIVE_LE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"

class PixelFormat:
    """How stored values become output values for one slice."""

    def __init__(self, ds: Any, rescale: tuple[float, float] | None = None) -> None:
        self.bits_allocated = int(header_value(ds, "BitsAllocated", 16) or 16)
        self.bits_stored = int(header_value(ds, "BitsStored", self.bits_allocated)
                               or self.bits_allocated)
        self.signed = int(header_value(ds, "PixelRepresentation", 0) or 0) == 1
        self.samples = int(header_value(ds, "SamplesPerPixel", 1) or 1)
        self.photometric = str(header_value(ds, "PhotometricInterpretation",
                                            "MONOCHROME2")).upper()
        keyword = ds.__dict__.get("_mprviewer_pixel_keyword", "PixelData")
        self.is_float = ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds
                         or keyword != "PixelData")
        if keyword == "DoubleFloatPixelData":
            self.bits_allocated = 64
        slope, intercept = rescale if rescale is not None else _rescale(ds)
        if rescale is None and "DoseGridScaling" in ds and "RescaleSlope" not in ds:
            # RT dose: stored * scaling = Gy
            slope = _positive(header_value(ds, "DoseGridScaling"), 1.0)
        self.slope, self.intercept = slope, intercept

    @property
    def stored_range(self) -> tuple[float, float]:
        bits = min(self.bits_stored, self.bits_allocated)
        if self.signed:
            return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
        return 0.0, float(2**bits - 1)

    @property
    def output_range(self) -> tuple[float, float]:
        lo, hi = self.stored_range
        a, b = lo * self.slope + self.intercept, hi * self.slope + self.intercept
        return min(a, b), max(a, b)

    @property
    def integral_rescale(self) -> bool:
        return float(self.slope).is_integer() and float(self.intercept).is_integer()


def _rescale(ds: Any) -> tuple[float, float]:
    try:
        slope = float(header_value(ds, "RescaleSlope", 1) or 1)
        intercept = float(header_value(ds, "RescaleIntercept", 0) or 0)
    except (TypeError, ValueError):
        return 1.0, 0.0
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        return 1.0, 0.0
    return slope, intercept


def _positive(value: object, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) and number > 0 else default


def stored_dtype(formats: list[PixelFormat]) -> np.dtype:
    """The dtype that holds every slice's stored values as read from the files."""
    if any(f.is_float for f in formats):
        return np.dtype(np.float64 if any(f.bits_allocated == 64 for f in formats)
                        else np.float32)
    bits = max(f.bits_allocated for f in formats)
    signed = {f.signed for f in formats}
    if bits <= 8 and signed == {False}:
        return np.dtype(np.uint8)
    if bits <= 16:
        if len(signed) == 1:
            return np.dtype(np.int16 if True in signed else np.uint16)
        return np.dtype(np.int32)
    return np.dtype(np.int32 if True in signed else np.uint32)


def output_dtype(lo: float, hi: float, integral: bool, stored: np.dtype) -> np.dtype:
    """The smallest dtype holding values in [lo, hi] exactly (int16 for CT in HU)."""
    if stored.kind == "f":
        return stored
    if not integral:
        return np.dtype(np.float32)
    for dtype in (np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if dtype == np.uint8 and stored != np.uint8:
            continue
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float64)


def _native_slice(frame: Frame, fmt: PixelFormat, rows: int, cols: int) -> np.ndarray | None:
    """Stored values of a native single-frame image, read in one call; None if not."""
    dtype = _native_dtype(frame, fmt)
    if dtype is None:
        return None
    out = np.empty((rows, cols), dtype=dtype)
    return out if _read_native(frame, out) else None


def _native_dtype(frame: Frame, fmt: PixelFormat) -> np.dtype | None:
    """The stored dtype of a native single-frame greyscale image, None for anything else."""
    inst = frame.instance
    if (inst.pixel_offset is None or inst.frames != 1
            or frame.tile is not None or not fmt.photometric.startswith("MONOCHROME")
            or inst.transfer_syntax not in NATIVE_LE or fmt.samples != 1
            or fmt.bits_allocated not in (8, 16, 32) or fmt.is_float):
        return None
    kind = "i" if fmt.signed else "u"
    return np.dtype(f"<{kind}{fmt.bits_allocated // 8}")


def _read_native(frame: Frame, out: np.ndarray) -> bool:
    """Fill ``out`` (C-contiguous, the image's stored dtype) with one readinto at the pixel
    data offset; False when the element is not what the header scan promised."""
    inst = frame.instance
    nbytes = out.nbytes
    # A file on disk is opened directly; a zip member is streamed (seeking reads through).
    opened = open(inst.member.path, "rb") if inst.member.path else inst.member.open()  # noqa: SIM115
    with opened as fh:
        fh.seek(inst.pixel_offset)
        head = fh.read(12)
        if head[:4] != PIXEL_DATA_TAG:
            return False
        if inst.transfer_syntax == NATIVE_LE[0]:
            (length,) = struct.unpack("<I", head[4:8])
            fh.seek(inst.pixel_offset + 8)
        elif head[4:6] in (b"OB", b"OW"):
            (length,) = struct.unpack("<I", head[8:12])
        else:
            return False
        if length == 0xFFFFFFFF or length < nbytes:
            return False
        return fh.readinto(memoryview(out).cast("B")) == nbytes


def _cut_short_by(inst: Instance) -> tuple[int, int] | None:
    """(bytes held, bytes needed) when uncompressed pixel data stops before the image ends."""
    if inst.pixel_offset is None or inst.member.size <= 0:
        return None
    try:
        header = inst.facts
        bits = int(header.get("BitsAllocated", 8) or 8)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        return None
    if bits < 8:
        return None
    needed = inst.rows * inst.columns * (bits // 8) * samples * max(inst.frames, 1)
    element_header = 8 if inst.transfer_syntax == "1.2.840.10008.1.2" else 12
    held = inst.member.size - int(inst.pixel_offset) - element_header
    return (max(held, 0), needed) if held < needed else None


def decode_instance(frame: Frame) -> np.ndarray:
    """Every frame of an instance through pydicom's decoders: [rows, cols(, 3)] for one
    frame, [frames, rows, cols(, 3)] for several. Colour comes out as RGB."""
    import pydicom

    from mprviewer.io.deflated import read_deflated

    inst = frame.instance
    ts = inst.transfer_syntax
    ensure_decodable(ts, inst.member.name)
    check_instance(inst)  # before reading or decoding anything: a bomb never reaches a decoder
    try:
        with inst.member.open() as fh:
            if ts == DEFLATED:  # inflated as read, up to the pixel data's expected size
                limits = Limits.from_env()
                cap = decoded_bytes(inst.header, inst.rows, inst.columns, inst.frames) + (
                    limits.max_header_bytes)
                ds, _ = read_deflated(fh, inst.member.name, cap, stop_before_pixels=False,
                                      limits=limits, ratio=False)
            else:
                ds = pydicom.dcmread(fh, force=True)
        check_streams(ds, inst)
        arr = _pixel_array(ds, ts)
        if str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
            arr = _palette_to_rgb(arr, ds)
    except BaseException as exc:
        # Rust decoders report a damaged stream as a pyo3 PanicException, a BaseException.
        decoder_error = isinstance(exc, (NotImplementedError, RuntimeError, ValueError,
                                         ImportError, AttributeError, KeyError))
        if not decoder_error and type(exc).__name__ != "PanicException":
            raise
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = " ".join(str(exc).split())[:300]
        short = _cut_short_by(inst)
        if short is not None:
            raise DicomError(
                f"{inst.member.name}: pixel data cannot be decoded (the file is truncated: its "
                f"pixel data holds {short[0]} of the {short[1]} bytes the image needs; an "
                "incomplete copy or download?)"
            ) from exc
        raise DicomError(
            f"{inst.member.name}: pixel data cannot be decoded ({type(exc).__name__}: "
            f"{detail or first_line}); the file may be damaged or use a variant the "
            "installed decoders do not support"
        ) from exc
    return np.asarray(arr)


def _pixel_array(ds: Dataset, transfer_syntax: str) -> np.ndarray:
    """pydicom's pixel_array, through a GIL-free imagecodecs plugin where there is one."""
    from pydicom.pixels import pixel_array

    from mprviewer.io import fast_decoders, jpeg2000

    plugin = jpeg2000.plugin_for(transfer_syntax) or fast_decoders.plugin_for(transfer_syntax)
    if plugin:
        try:
            return pixel_array(ds, as_rgb=True, decoding_plugin=plugin)
        except (RuntimeError, ValueError):
            pass  # pydicom's other plugins may still read a stream this one refuses
    return pixel_array(ds, as_rgb=True)


def _palette_to_rgb(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """PALETTE COLOR indices through the palette, scaled to 8 bits when the LUT is 16-bit."""
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(arr, ds)
    if rgb.dtype.itemsize > 1:
        top = int(rgb.max()) if rgb.size else 0
        rgb = (rgb >> 8).astype(np.uint8) if top > 255 else rgb.astype(np.uint8)
    return rgb


def frame_of(decoded: np.ndarray, frame: Frame) -> np.ndarray:
    """One frame (or mosaic tile) of a decoded instance."""
    image = decoded[frame.frame] if frame.instance.frames > 1 else decoded
    if frame.tile is not None:
        r0, c0, nr, nc = frame.tile
        image = image[r0:r0 + nr, c0:c0 + nc]
    return image


def _decoded_slice(frame: Frame) -> np.ndarray:
    """Stored values of one frame through pydicom's decoders (decodes the whole instance)."""
    return frame_of(decode_instance(frame), frame)


def _mask_bits(stored: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Honour BitsStored: clear unused high bits, sign-extend signed values."""
    if fmt.bits_stored >= fmt.bits_allocated or stored.dtype.kind not in "iu":
        return stored
    shift = stored.dtype.itemsize * 8 - fmt.bits_stored
    if fmt.signed:
        signed = stored.view(stored.dtype.str.replace("u", "i"))
        return (signed << shift) >> shift
    return stored & np.array((1 << fmt.bits_stored) - 1, dtype=stored.dtype)


def _mask_bits_in_place(stored: np.ndarray, fmt: PixelFormat) -> None:
    """_mask_bits without temporaries, for an array that holds the stored values itself."""
    if fmt.bits_stored >= fmt.bits_allocated or stored.dtype.kind not in "iu":
        return
    shift = stored.dtype.itemsize * 8 - fmt.bits_stored
    if fmt.signed:
        signed = stored.view(stored.dtype.str.replace("u", "i"))
        np.left_shift(signed, shift, out=signed)
        np.right_shift(signed, shift, out=signed)
    else:
        np.bitwise_and(stored, np.array((1 << fmt.bits_stored) - 1, dtype=stored.dtype),
                       out=stored)


def read_stored_into(out: np.ndarray, frame: Frame, fmt: PixelFormat, rows: int,
                     cols: int, decoded: np.ndarray | None = None) -> None:
    """Read one frame's stored values into ``out`` (a view of the volume).

    ``decoded`` is the instance's decoded pixel array when the caller already has it.
    """
    stored = None
    if decoded is None:
        if out.shape == (rows, cols) and out.flags.c_contiguous \
                and _native_dtype(frame, fmt) == out.dtype:
            if _read_native(frame, out):  # straight into the volume
                _mask_bits_in_place(out, fmt)
                return
        elif (out.shape == (rows, cols) and frame.tile is None and not fmt.is_float
                and frame.instance.transfer_syntax not in NATIVE_LE
                and frame.instance.transfer_syntax in _fast_decoders().DIRECT_SYNTAXES):
            fast_decoders = _fast_decoders()
            check_instance(frame.instance)  # before reading or decoding anything
            if fast_decoders.decode_into(frame.instance, out, fmt.signed, fmt.samples,
                                         fmt.photometric):
                _mask_bits_in_place(out, fmt)
                return
        else:
            stored = _native_slice(frame, fmt, rows, cols)
    if stored is None:
        stored = frame_of(decoded, frame) if decoded is not None else _decoded_slice(frame)
    stored = _mask_bits(stored, fmt)  # idempotent where a decoder already did it
    if stored.shape[:2] != (rows, cols):
        raise DicomError(
            f"{frame.instance.member.name}: image is {stored.shape[0]}x{stored.shape[1]} but "
            f"the series is {rows}x{cols}"
        )
    if stored.shape != out.shape:
        raise DicomError(
            f"{frame.instance.member.name}: pixel layout {stored.shape} does not match the "
            f"series' {out.shape}"
        )
    out[...] = stored


def _rescale_slice(src: np.ndarray, dst: np.ndarray, fmt: PixelFormat,
                   invert: float | None) -> None:
    """dst = src * slope + intercept (inverted for MONOCHROME1); src and dst may share memory."""
    if (invert is None and fmt.integral_rescale and dst.dtype.kind in "iu"
            and src.dtype.kind in "iu" and src.dtype.itemsize == dst.dtype.itemsize):
        _integer_rescale(src.view(dst.dtype), dst, fmt)
        return
    work = np.float64 if dst.dtype.kind == "f" else np.int64
    values = src.astype(work)
    if fmt.slope != 1.0:
        values *= fmt.slope if work is np.float64 else int(fmt.slope)
    if fmt.intercept != 0.0:
        values += fmt.intercept if work is np.float64 else int(fmt.intercept)
    if invert is not None:
        values = invert - values
    dst[...] = values


def _integer_rescale(src: np.ndarray, dst: np.ndarray, fmt: PixelFormat) -> None:
    """dst = src * slope + intercept in dst's own integer type, without temporaries.

    The arithmetic wraps modulo 2**bits, which gives the exact result whenever that result
    fits in dst's type: the caller chose the type so that every output value does.
    """
    bits = dst.dtype.itemsize * 8
    unsigned = np.dtype(f"u{dst.dtype.itemsize}")

    def wrapped(number: float) -> np.ndarray:
        return np.array(int(number) % (1 << bits), dtype=unsigned).view(dst.dtype)

    if fmt.slope != 1.0:
        np.multiply(src, wrapped(fmt.slope), out=dst)
        src = dst
    if fmt.intercept != 0.0:
        np.add(src, wrapped(fmt.intercept), out=dst)
    elif src is not dst:
        dst[...] = src


def fused_rescale_dtype(formats: list[PixelFormat], stored: np.dtype) -> np.dtype | None:
    """The output dtype when it can be known before reading: every value the stored bits
    allow, rescaled, fits the smallest candidate type of the stored size (CT: 12 bits ->
    int16 HU). Then each slice is rescaled in place as soon as it is read."""
    if stored not in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16)):
        return None
    if not all(f.integral_rescale and not f.is_float for f in formats):
        return None
    # load_frames rescales the stored extremes of the whole series with every slice's
    # slope and intercept; here the extremes any slice's bits allow stand in for them.
    lows, highs = zip(*(f.stored_range for f in formats), strict=True)
    ends = [v * f.slope + f.intercept for f in formats for v in (min(lows), max(highs))]
    dtype = output_dtype(min(ends), max(ends), True, stored)
    first = np.dtype(np.uint8) if stored == np.uint8 else np.dtype(np.int16)
    # output_dtype tries the candidates in order, so the data's range picks this one too.
    return dtype if dtype == first else None


FILES_PER_TASK = 8
# A JPEG 2000 frame takes about 30 ms of CPU (OpenJPEG's tier-1 decoding), so each file is
# its own task: with eight a task, the last task of 60 files left one thread decoding four
# frames alone while the other core idled.
COSTLY_SYNTAXES = frozenset(("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"))  # JPEG 2000

# What PixelFormat reads from a header, to recognise headers that give the same format.
_FORMAT_TAGS = (
    0x00280002, 0x00280004, 0x00280100, 0x00280101, 0x00280103,  # samples .. representation
    0x00281052, 0x00281053, 0x3004000E, 0x7FE00008, 0x7FE00009,  # rescale, dose, float pixels
)


def _fast_decoders() -> Any:
    """The imagecodecs plugins (imported on first use: they import pydicom's decoders)."""
    from mprviewer.io import fast_decoders

    return fast_decoders


def _is_single(frames: list[Frame], ks: list[int]) -> bool:
    """One frame of a single-frame file: read natively on its own, not decoded as a whole."""
    frame = frames[ks[0]]
    return len(ks) == 1 and frame.instance.frames == 1 and frame.tile is None


def _format_key(frame: Frame) -> tuple | None:
    """The raw bytes PixelFormat depends on, or None when an element is already converted
    (a header changed in memory is then read afresh)."""
    header = frame.instance.facts
    parts: list[object] = [frame.rescale, header.__dict__.get("_mprviewer_pixel_keyword")]
    if isinstance(header, LiteHeader):
        return (*parts, header.raw_key(_FORMAT_TAGS))
    from pydicom.dataelem import RawDataElement

    elements = header._dict
    for tag in _FORMAT_TAGS:
        elem = elements.get(tag)
        if elem is None:
            parts.append(None)
        elif isinstance(elem, RawDataElement):
            parts.append((elem.VR, elem.value, elem.is_implicit_VR, elem.is_little_endian))
        else:
            return None
    return tuple(parts)


def pixel_formats(frames: list[Frame], notes: list[str] | None = None) -> list[PixelFormat]:
    """Every frame's PixelFormat, built once per distinct set of header values (a series
    repeats one or a few), which spares most of the per-file header reads.

    A frame whose file lacks PixelRepresentation is read as the rest of the series is (the
    DICOM default, unsigned, would turn a signed CT slice's negative values into 65000s);
    ``notes`` then says which slices.
    """
    cache: dict[tuple, PixelFormat] = {}
    formats = []
    for frame in frames:
        key = _format_key(frame)
        fmt = cache.get(key) if key is not None else None
        if fmt is None:
            fmt = PixelFormat(frame.instance.facts, frame.rescale)
            if key is not None:
                cache[key] = fmt
        formats.append(fmt)
    _inherit_pixel_representation(frames, formats, notes)
    return formats


def _inherit_pixel_representation(
    frames: list[Frame], formats: list[PixelFormat], notes: list[str] | None
) -> None:
    missing = [n for n, frame in enumerate(frames)
               if header_value(frame.instance.facts, "PixelRepresentation", None) in (None, "")]
    if not missing or len(missing) == len(frames):
        return
    lacking = set(missing)
    votes = [formats[n].signed for n in range(len(frames)) if n not in lacking]
    signed = votes.count(True) > len(votes) // 2
    for n in missing:
        if formats[n].signed != signed:
            fixed = copy.copy(formats[n])
            fixed.signed = signed
            formats[n] = fixed
    if notes is not None:
        where = ", ".join(frames[n].instance.member.name for n in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        notes.append(f"{len(missing)} slice(s) lack Pixel Representation ({where}{more}); "
                     f"read as {'signed' if signed else 'unsigned'} like the rest of the series")


def load_frames(
    frames: list[Frame],
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    workers: int = 2,
) -> tuple[np.ndarray, list[str]]:
    """Assemble frames (already in spatial order) into ``array[k, j, i(, 3)]``.

    Stored values are read straight into one array; the modality rescale then runs in
    place whenever the output type has the same size (CT: uint16 stored -> int16 HU), so
    peak memory stays near the volume's own size.
    """
    first = frames[0].instance
    rows, cols = frames[0].rows, frames[0].columns
    notes: list[str] = []
    formats = pixel_formats(frames, notes)
    rgb = formats[0].samples == 3 or formats[0].photometric == "PALETTE COLOR"
    if any((f.samples == 3 or f.photometric == "PALETTE COLOR") != rgb for f in formats):
        raise DicomError(f"{first.member.name}: series mixes colour and greyscale images")
    if rgb:
        bits = 8 if formats[0].photometric == "PALETTE COLOR" else max(
            f.bits_allocated for f in formats)
        raw_dtype = np.dtype({8: np.uint8, 16: np.uint16}.get(bits, np.uint32))
    else:
        raw_dtype = stored_dtype(formats)
    shape = (len(frames), rows, cols, 3) if rgb else (len(frames), rows, cols)
    check_volume(shape, raw_dtype.itemsize, first.member.name)
    raw = np.empty(shape, dtype=raw_dtype)
    done = 0
    lock = threading.Lock()
    # Single-frame files go to the pool a few at a time (each one read in one call); a
    # multi-frame instance or mosaic is one task (decoded once, every frame copied out).
    by_instance: dict[int, list[int]] = {}
    for k, f in enumerate(frames):
        by_instance.setdefault(id(f.instance), []).append(k)
    tasks: list[list[list[int]]] = []
    per_task = 1 if first.transfer_syntax in COSTLY_SYNTAXES else FILES_PER_TASK
    for ks in by_instance.values():
        if (_is_single(frames, ks) and tasks and len(tasks[-1]) < per_task
                and _is_single(frames, tasks[-1][-1])):
            tasks[-1].append(ks)
        else:
            tasks.append([ks])
    monochrome1 = not rgb and formats[0].photometric == "MONOCHROME1"
    identity = all(f.slope == 1.0 and f.intercept == 0.0 for f in formats)
    fused = None if rgb or monochrome1 or identity else fused_rescale_dtype(formats, raw_dtype)
    fused_out = raw.view(fused) if fused is not None else None
    # Stored minimum and maximum per slice, taken while the slice is in cache.
    extremes = np.zeros((len(frames), 2)) if fused is None and raw_dtype.kind in "iu" \
        and not rgb and not (identity and not monochrome1) else None

    def read(task: list[list[int]]) -> None:
        nonlocal done
        for ks in task:
            if cancel is not None and cancel.is_set():
                return
            decoded = None
            if not _is_single(frames, ks):
                decoded = decode_instance(frames[ks[0]])
            for k in ks:
                read_stored_into(raw[k], frames[k], formats[k], rows, cols, decoded)
                if fused_out is not None:
                    _integer_rescale(raw[k].view(fused), fused_out[k], formats[k])
                elif extremes is not None:
                    extremes[k] = raw[k].min(), raw[k].max()
        with lock:
            done += sum(len(ks) for ks in task)
            if progress:
                progress(done, len(frames))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(read, tasks))
    if cancel is not None and cancel.is_set():
        raise LoadCancelled("loading was cancelled")
    if rgb or (identity and not monochrome1):
        return raw, notes
    if fused_out is not None:
        return fused_out, notes
    if extremes is not None:
        lo_s, hi_s = float(extremes[:, 0].min()), float(extremes[:, 1].max())
    else:
        lo_s, hi_s = float(np.nanmin(raw)), float(np.nanmax(raw))
    ends = [v * f.slope + f.intercept for f in formats for v in (lo_s, hi_s)]
    lo, hi = min(ends), max(ends)
    invert = None
    if monochrome1:
        full = [v for f in formats for v in f.output_range]
        invert = min(full) + max(full)
        lo, hi = invert - hi, invert - lo
        notes.append("MONOCHROME1 pixel values inverted so that bright means dense")
    integral = all(f.integral_rescale for f in formats) and (invert is None
                                                            or float(invert).is_integer())
    dtype = output_dtype(lo, hi, integral, raw.dtype)
    out = raw.view(dtype) if dtype.itemsize == raw.dtype.itemsize else np.empty(shape, dtype)

    def convert(k: int) -> None:
        _rescale_slice(raw[k], out[k], formats[k], invert)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(convert, range(len(frames))))
    return out, notes
