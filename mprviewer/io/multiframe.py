"""Frames of an instance: one for classic images; several for multi-frame objects and mosaics.

Enhanced multi-frame objects (Enhanced CT/MR/PET, Legacy Converted, ...) describe each frame
in functional groups: per-frame groups override the shared ones for position
(PlanePositionSequence), orientation (PlaneOrientationSequence), pixel spacing
(PixelMeasuresSequence) and rescale (PixelValueTransformationSequence). What tells several
stacks in one object apart (StackID, TemporalPositionIndex, echo time, diffusion b-value and
direction, the DimensionIndexValues) goes into ``Frame.keys`` for the series splitter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mprviewer.io.geometry import Frame
from mprviewer.io.scan import Instance

# DimensionIndexPointer tags that only say where a frame sits within one stack.
_POSITION_DIMENSIONS = {0x00209057, 0x00200032}  # InStackPositionNumber, ImagePositionPatient


def _float_array(value: Any, n: int) -> np.ndarray | None:
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(values) != n or not np.all(np.isfinite(values)):
        return None
    return np.asarray(values, dtype=np.float64)


def _item(group: Any, keyword: str) -> Any:
    """The first item of a functional-group macro sequence, or None."""
    if group is None:
        return None
    seq = group.get(keyword)
    if not seq:
        return None
    try:
        return seq[0]
    except (IndexError, TypeError):
        return None


def _lookup(per_frame: Any, shared: Any, macro: str, keyword: str) -> Any:
    for group in (per_frame, shared):
        item = _item(group, macro)
        if item is not None and keyword in item:
            value = item.get(keyword)
            if value is not None and value != "":
                return value
    return None


def _rescale(per_frame: Any, shared: Any) -> tuple[float, float] | None:
    slope = _lookup(per_frame, shared, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = _lookup(per_frame, shared, "PixelValueTransformationSequence",
                        "RescaleIntercept")
    if slope is None and intercept is None:
        return None
    try:
        s = float(slope) if slope is not None else 1.0
        b = float(intercept) if intercept is not None else 0.0
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(s) and np.isfinite(b)) or s == 0:
        return None
    return s, b


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def _split_keys(per_frame: Any, shared: Any, dimension_pointers: list[int]) -> dict[str, str]:
    keys: dict[str, str] = {}
    content = _item(per_frame, "FrameContentSequence")
    if content is not None:
        if content.get("StackID") not in (None, ""):
            keys["StackID"] = _text(content.get("StackID"))
        if content.get("TemporalPositionIndex") is not None:
            keys["TemporalPositionIdentifier"] = _text(content.get("TemporalPositionIndex"))
        if content.get("FrameAcquisitionNumber") is not None:
            keys["AcquisitionNumber"] = _text(content.get("FrameAcquisitionNumber"))
        index = content.get("DimensionIndexValues")
        if index is not None:
            values = list(index) if not isinstance(index, int) else [index]
            parts = [str(v) for v, ptr in zip(values, dimension_pointers, strict=False)
                     if ptr not in _POSITION_DIMENSIONS]
            if parts:
                keys["DimensionIndexValues"] = ",".join(parts)
    echo = _lookup(per_frame, shared, "MREchoSequence", "EffectiveEchoTime")
    if echo is not None:
        keys["EchoTime"] = _text(echo)
    bvalue = _lookup(per_frame, shared, "MRDiffusionSequence", "DiffusionBValue")
    if bvalue is not None:
        keys["DiffusionBValue"] = _text(bvalue)
        diffusion = _item(per_frame, "MRDiffusionSequence") or _item(shared,
                                                                      "MRDiffusionSequence")
        direction = _item(diffusion, "DiffusionGradientDirectionSequence")
        if direction is not None and "DiffusionGradientOrientation" in direction:
            keys["DiffusionGradientOrientation"] = _text(
                [round(float(v), 4) for v in direction.DiffusionGradientOrientation])
    frame_type = _lookup(per_frame, shared, "MRImageFrameTypeSequence", "FrameType") or \
        _lookup(per_frame, shared, "CTImageFrameTypeSequence", "FrameType")
    if frame_type is not None:
        keys["ImageType"] = _text(frame_type)
    return keys


def enhanced_frames(instance: Instance) -> list[Frame]:
    """Frames of an enhanced multi-frame object from its functional groups."""
    header = instance.header
    shared_seq = header.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_frame_seq = header.get("PerFrameFunctionalGroupsSequence") or []
    pointers = []
    for item in header.get("DimensionIndexSequence") or []:
        try:
            pointers.append(int(item.DimensionIndexPointer))
        except (AttributeError, TypeError, ValueError):
            pointers.append(0)
    frames = []
    for n in range(instance.frames):
        per_frame = per_frame_seq[n] if n < len(per_frame_seq) else None
        position = _float_array(
            _lookup(per_frame, shared, "PlanePositionSequence", "ImagePositionPatient"), 3)
        orientation = _float_array(
            _lookup(per_frame, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        spacing = _float_array(
            _lookup(per_frame, shared, "PixelMeasuresSequence", "PixelSpacing"), 2)
        frames.append(Frame(
            instance, n,
            position=position if position is not None else None,
            orientation=orientation,
            pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None
            and min(spacing) > 0 else None,
            rescale=_rescale(per_frame, shared),
            keys=_split_keys(per_frame, shared, pointers),
        ))
    if all(f.position is None for f in frames) and instance.position is not None:
        return _stacked_frames(instance)
    return frames


def _stacked_frames(instance: Instance) -> list[Frame]:
    """Legacy multi-frame: frames along the normal at GridFrameOffsetVector or the spacing."""
    position = instance.position
    orientation = instance.orientation
    header = instance.facts
    offsets: np.ndarray | None = None
    if position is not None and orientation is not None:
        grid = header.get("GridFrameOffsetVector")  # RT dose: offsets along the normal
        if grid is not None:
            offsets = _float_array(grid, instance.frames)
        if offsets is None:
            try:
                spacing = float(header.get("SpacingBetweenSlices")
                                or header.get("SliceThickness") or 1.0)
            except (TypeError, ValueError):
                spacing = 1.0
            offsets = np.arange(instance.frames) * spacing
    if offsets is None or position is None or orientation is None:
        return [Frame(instance, n, orientation=orientation) for n in range(instance.frames)]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = position + np.outer(offsets, normal)  # one array op, not one per frame
    return [Frame(instance, n, position=positions[n], orientation=orientation)
            for n in range(instance.frames)]


def expand_frames(instance: Instance) -> tuple[list[Frame], list[str]]:
    """The 2D frames an instance contributes, each with its own geometry when known, and
    notes for the user (a mosaic that could not be cut, ...)."""
    from mprviewer.io.mosaic import is_mosaic, mosaic_frames

    header = instance.facts
    if is_mosaic(instance):
        frames, reason = mosaic_frames(instance)
        if frames:
            return frames, [f"Siemens mosaic unpacked into {len(frames)} slices"]
        return [Frame(instance, 0)], [reason or "mosaic not unpacked"]
    if "PerFrameFunctionalGroupsSequence" in header or (
            "SharedFunctionalGroupsSequence" in header and instance.frames > 1):
        return enhanced_frames(instance), []
    if instance.frames <= 1:
        return [Frame(instance, 0)], []
    return _stacked_frames(instance), []
