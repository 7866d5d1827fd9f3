"""Order slices in space and build the affine, the way the DICOM geometry says, not file order.

A stack whose slices do not lie on a regular orthogonal grid (a missing slice, uneven steps,
a gantry-tilted CT whose slices slide along the column direction) gets a ``ResamplePlan``:
the loader then resamples the pixels onto a regular grid with an orthogonal affine, so every
voxel is shown at its true place in the patient (see ``mprviewer.io.resample``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mprviewer.errors import GeometryError
from mprviewer.io.geometry_checks import (
    MAX_POSITION_MM,
    check_affine,
    check_orientation,
    check_position,
    check_spacing,
)
from mprviewer.io.scan import Instance

ORIENTATION_DECIMALS = 3  # cosines equal to 1e-3 count as one orientation
GAP_FACTOR = 1.5  # a step this many times the usual spacing is a missing slice
UNEVEN_TOLERANCE = 0.01  # relative spacing variation that counts as uneven
SHEAR_TOLERANCE = 0.05  # in-plane drift of the stack, in pixels, that needs correcting
MAX_GROWTH = 4  # a resampled grid holds at most this many times the source slices


@dataclass
class Frame:
    """One 2D image of a stack.

    ``frame`` is the frame index inside a multi-frame object (or the tile index inside a
    Siemens mosaic, with ``tile`` = (row0, col0, rows, columns) of that tile). The optional
    fields override the instance's header for enhanced objects, whose functional groups give
    every frame its own position, orientation, pixel spacing and rescale. ``keys`` holds the
    values that tell repeated stacks apart (temporal position, echo, b-value, stack ID, ...).
    """

    instance: Instance
    frame: int = 0
    position: np.ndarray | None = None
    orientation: np.ndarray | None = None
    pixel_spacing: tuple[float, float] | None = None
    rescale: tuple[float, float] | None = None
    tile: tuple[int, int, int, int] | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def sop_uid(self) -> str:
        return self.instance.sop_uid

    @property
    def rows(self) -> int:
        return self.tile[2] if self.tile is not None else self.instance.rows

    @property
    def columns(self) -> int:
        return self.tile[3] if self.tile is not None else self.instance.columns

    @property
    def spacing(self) -> tuple[float, float] | None:
        """PixelSpacing (between rows, between columns) of this frame."""
        return self.pixel_spacing if self.pixel_spacing is not None else \
            self.instance.pixel_spacing


@dataclass
class ResamplePlan:
    """How to turn the source slices (in spatial order) into a regular orthogonal grid.

    ``shifts[s]`` = (di, dj): output pixel (i, j) of source slice s samples the source at
    (i + di, j + dj), which removes the in-plane drift of a sheared (tilted) stack.
    Output slice m blends source slices ``lower[m]`` and ``upper[m]`` with weight
    ``weight[m]`` on the upper one (0 where a source slice sits on the grid point).
    """

    rows: int
    columns: int
    shifts: np.ndarray | None  # (n_source, 2) or None when there is no shear
    lower: np.ndarray  # (n_out,) int
    upper: np.ndarray  # (n_out,) int
    weight: np.ndarray  # (n_out,) float

    @property
    def num_slices(self) -> int:
        return len(self.lower)


@dataclass
class StackGeometry:
    """Frames in spatial order, the affine and what the user should know about the stack.

    ``frames`` are the source frames (what is read); ``slice_frames[k]`` is the source frame
    shown as output slice k, or None for a slice made by interpolation. Without a plan the two
    lists are the same.
    """

    frames: list[Frame]
    affine: np.ndarray
    positions: np.ndarray  # mm along the slice normal, per output slice
    warnings: list[str] = field(default_factory=list)
    orientation_label: str = ""
    plan: ResamplePlan | None = None
    slice_frames: list[Frame | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.slice_frames:
            self.slice_frames = list(self.frames)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns) of the volume the loader produces."""
        if self.plan is not None:
            return (self.plan.num_slices, self.plan.rows, self.plan.columns)
        return (len(self.frames), self.frames[0].rows, self.frames[0].columns)


def orientation_label(orientation: np.ndarray | None) -> str:
    """'axial', 'coronal', 'sagittal' or 'oblique' from the slice normal's dominant axis."""
    if orientation is None:
        return "unknown"
    normal = np.cross(orientation[:3], orientation[3:])
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def frame_orientation(frame: Frame) -> np.ndarray | None:
    return frame.orientation if frame.orientation is not None else frame.instance.orientation


def frame_position(frame: Frame) -> np.ndarray | None:
    return frame.position if frame.position is not None else frame.instance.position


def _header_float(instance: Instance, keyword: str) -> float | None:
    try:
        value = float(instance.facts.get(keyword))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def build_geometry(frames: list[Frame]) -> StackGeometry:
    """Sort frames along the slice normal and derive the (i, j, k) -> LPS affine.

    The header values are checked first and the affine last (``geometry_checks``), so a
    damaged orientation, spacing or position is a GeometryError naming the file, never a
    NaN that reaches the renderer.
    """
    _check_frames(frames)
    geometry = _build_geometry(frames)
    check_affine(geometry.affine, frames[0].instance.member.name)
    return geometry


def frame_problems(frames: list[Frame],
                   seen: dict[object, str | None] | None = None) -> list[str | None]:
    """Why each frame's own geometry (orientation, spacing, position) cannot be used, or
    None. The loader drops such frames from their stack, so one damaged file does not sink
    a series.

    A series repeats a few orientations and spacings: they are checked once per value
    (``seen`` carries the results from call to call), and positions in plain arithmetic,
    so the check costs a few microseconds a frame.
    """
    seen = {} if seen is None else seen
    problems: list[str | None] = [None] * len(frames)
    last: tuple[object, str | None] = (None, None)  # frames of one object share an array
    for n, frame in enumerate(frames):
        name = frame.instance.member.name
        orientation = frame_orientation(frame)
        if orientation is not None and orientation is last[0]:
            problems[n] = last[1]
        elif orientation is not None:
            key = ("o", *_values(orientation))
            if key not in seen:
                seen[key] = _problem(lambda o=orientation, w=name: check_orientation(o, w),
                                     name)
            problems[n] = seen[key]
            last = (orientation, seen[key])
        spacing = frame.spacing
        if problems[n] is None and spacing is not None and min(spacing) > 0:
            key = ("s", *spacing)
            if key not in seen:
                seen[key] = _problem(lambda s=spacing, w=name: _check_spacing(s, w), name)
            problems[n] = seen[key]
        position = frame_position(frame)
        if problems[n] is None and position is not None and not all(
                abs(v) <= MAX_POSITION_MM for v in _values(position)):  # NaN fails too
            problems[n] = _problem(lambda p=position, w=name: check_position(p, w), name)
    return problems


def _values(array: np.ndarray) -> list[float]:
    """Plain floats (cheaper than numpy for a handful of values)."""
    return array.tolist() if isinstance(array, np.ndarray) else [float(v) for v in array]


def _problem(check: Callable[[], None], name: str) -> str | None:
    try:
        check()
    except GeometryError as exc:
        return str(exc).removeprefix(f"{name}: ")
    return None


def _check_spacing(spacing: tuple[float, float], name: str) -> None:
    for value, label in zip(spacing, ("PixelSpacing (rows)", "PixelSpacing (columns)"),
                            strict=True):
        check_spacing(float(value), name, label)


def _check_frames(frames: list[Frame]) -> None:
    first = frames[0]
    name = first.instance.member.name
    orientation = frame_orientation(first)
    if orientation is not None:
        check_orientation(orientation, name)
    spacing = first.spacing
    if spacing is not None and min(spacing) > 0:
        _check_spacing(spacing, name)
    known = [(f, p) for f in frames if (p := frame_position(f)) is not None]
    if known:
        points = np.array([p for _, p in known], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(points) <= MAX_POSITION_MM).all(axis=1)
        if bad.any():
            frame, point = known[int(np.argmax(bad))]
            check_position(point, frame.instance.member.name)


def _build_geometry(frames: list[Frame]) -> StackGeometry:
    """build_geometry on checked header values.

    A regular stack keeps the mean step between its first and last slice as the k axis (as
    SimpleITK and dcm2niix do). A stack with gaps, uneven steps or in-plane drift (gantry
    tilt) gets a plan that resamples it onto a regular orthogonal grid.
    """
    first = frames[0]
    warnings: list[str] = []
    orientation = frame_orientation(first)
    spacing = first.spacing
    if spacing is None or min(spacing) <= 0:
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
        spacing = (1.0, 1.0)
    row_spacing, col_spacing = spacing
    positions_known = all(frame_position(f) is not None for f in frames)
    if orientation is None or not positions_known:
        return _geometry_without_positions(frames, spacing, warnings, orientation)
    row, col = orientation[:3], orientation[3:]
    row = row / np.linalg.norm(row)
    col = col - np.dot(col, row) * row
    col = col / np.linalg.norm(col)
    normal = np.cross(row, col)
    points = np.array([frame_position(f) for f in frames])
    distances = points @ normal
    order = np.argsort(distances, kind="stable")
    frames = [frames[i] for i in order]
    points = points[order]
    distances = distances[order]
    label = orientation_label(orientation)
    affine = np.eye(4)
    affine[:3, 0] = row * col_spacing
    affine[:3, 1] = col * row_spacing
    affine[:3, 3] = points[0]
    n = len(frames)
    if n == 1:
        thickness = (_header_float(first.instance, "SpacingBetweenSlices")
                     or _header_float(first.instance, "SliceThickness") or 1.0)
        affine[:3, 2] = normal * thickness
        return StackGeometry(frames, affine, distances, warnings, label)
    step = (points[-1] - points[0]) / (n - 1)
    if np.linalg.norm(step) < 1e-6:
        affine[:3, 2] = normal * (_header_float(first.instance, "SliceThickness") or 1.0)
        warnings.append("all slices share one position; slice spacing taken from "
                        "SliceThickness")
        return StackGeometry(frames, affine, distances, warnings, label)
    # In-plane drift of every slice relative to the first, in pixels (i along the row).
    drift_i = (points - points[0]) @ row / col_spacing
    drift_j = (points - points[0]) @ col / row_spacing
    sheared = max(np.abs(drift_i).max(), np.abs(drift_j).max()) > SHEAR_TOLERANCE
    irregular, grid_warnings, grid = _regular_grid(distances)
    warnings.extend(grid_warnings)
    if not sheared and not irregular:
        affine[:3, 2] = step
        return StackGeometry(frames, affine, distances, warnings, label)
    return _planned_geometry(frames, points, distances, row, col, normal, spacing, drift_i,
                             drift_j, sheared, grid, warnings, label)


def median(values: Any) -> float:
    """np.median's value (NaN when empty or when any value is NaN) without its first call
    importing numpy.ma, about 50 ms of every process that loads a series."""
    array = np.asarray(values, dtype=np.float64).ravel()
    n = array.size
    if n == 0 or np.isnan(array).any():
        return float("nan")
    middle = np.partition(array, [(n - 1) // 2, n // 2])
    return float((middle[(n - 1) // 2] + middle[n // 2]) / 2)


def _regular_grid(distances: np.ndarray) -> tuple[bool, list[str], np.ndarray]:
    """Whether slices stray from a regular grid, warnings saying where, and that grid."""
    steps = np.diff(distances)
    n = len(distances)
    extent = float(distances[-1] - distances[0])
    usual = median(steps)
    regular = distances[0] + np.arange(n) * extent / (n - 1)
    if usual <= 0:  # repeated positions are split before geometry; nothing to regularise
        return False, [], regular
    tolerance = max(UNEVEN_TOLERANCE * usual, 1e-3)
    warnings: list[str] = []
    gaps = np.nonzero(steps > GAP_FACTOR * usual)[0]
    for k in gaps[:10]:
        missing = round(steps[k] / usual) - 1
        warnings.append(
            f"missing slice(s): about {missing} between k={k} and k={k + 1} of the images "
            f"(step {steps[k]:.2f} mm, usual {usual:.2f} mm)"
        )
    if len(gaps) > 10:
        warnings.append(f"... and {len(gaps) - 10} more gaps")
    if not len(gaps) and np.ptp(steps) > UNEVEN_TOLERANCE * usual:
        worst = int(np.argmax(np.abs(steps - usual)))
        warnings.append(
            f"uneven slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm "
            f"(most off between k={worst} and k={worst + 1})"
        )
    if np.abs(distances - regular).max() <= tolerance:
        return False, warnings, regular
    count = round(extent / usual) + 1
    count = max(n, min(count, MAX_GROWTH * n))
    return True, warnings, distances[0] + np.arange(count) * extent / (count - 1)


def _planned_geometry(
    frames: list[Frame],
    points: np.ndarray,
    distances: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    normal: np.ndarray,
    spacing: tuple[float, float],
    drift_i: np.ndarray,
    drift_j: np.ndarray,
    sheared: bool,
    grid: np.ndarray,
    warnings: list[str],
    label: str,
) -> StackGeometry:
    """Geometry of the regular orthogonal grid a sheared or irregular stack is resampled to."""
    row_spacing, col_spacing = spacing
    rows, columns = frames[0].rows, frames[0].columns
    shifts = None
    i0 = j0 = 0
    if sheared:
        # The output grid covers every slice's drifted footprint, so nothing is cropped.
        i0 = math.floor(min(0.0, float(drift_i.min())) + 1e-6)
        j0 = math.floor(min(0.0, float(drift_j.min())) + 1e-6)
        extra_i = math.ceil(max(0.0, float(drift_i.max())) - 1e-6) - i0
        extra_j = math.ceil(max(0.0, float(drift_j.max())) - 1e-6) - j0
        if extra_i > MAX_GROWTH * columns or extra_j > MAX_GROWTH * rows:
            raise GeometryError(
                f"the slice positions drift {float(extra_i):.3g}x{float(extra_j):.3g} pixels "
                f"sideways across the stack, far more than a gantry tilt; the positions in "
                f"the files are probably wrong"
            )
        columns += extra_i
        rows += extra_j
        shifts = np.stack([i0 - drift_i, j0 - drift_j], axis=1)
        along = distances - distances[0]
        in_plane = (points - points[0]) - np.outer(along, normal)
        slope = np.linalg.norm(in_plane[-1]) / along[-1] if along[-1] > 0 else 0.0
        angle = math.degrees(math.atan(slope))
        tag = _header_float(frames[0].instance, "GantryDetectorTilt")
        stated = f" (GantryDetectorTilt {tag:g} deg)" if tag else ""
        warnings.append(
            f"gantry tilt {angle:.1f} deg corrected{stated}: each slice shifted in its plane "
            f"onto an orthogonal grid of {columns}x{rows} pixels"
        )
    lower, upper, weight, slice_frames = _blend_plan(distances, grid, frames)
    step = (grid[-1] - grid[0]) / (len(grid) - 1) if len(grid) > 1 else 1.0
    if len(grid) != len(frames) or np.any(weight > 0):
        made = [m for m, f in enumerate(slice_frames) if f is None]
        where = _ranges(made)
        warnings.append(
            f"resampled onto a regular grid of {len(grid)} slices {step:.3f} mm apart"
            + (f"; interpolated at k={where}" if made else "")
        )
    affine = np.eye(4)
    affine[:3, 0] = row * col_spacing
    affine[:3, 1] = col * row_spacing
    affine[:3, 2] = normal * step
    affine[:3, 3] = points[0] + i0 * col_spacing * row + j0 * row_spacing * col
    plan = ResamplePlan(rows, columns, shifts, lower, upper, weight)
    return StackGeometry(frames, affine, grid.copy(), warnings, label, plan, slice_frames)


def _blend_plan(
    distances: np.ndarray, grid: np.ndarray, frames: list[Frame]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Frame | None]]:
    """For each grid point: the source slices around it and the weight of the upper one."""
    n = len(distances)
    step = (grid[-1] - grid[0]) / max(len(grid) - 1, 1)
    tolerance = max(UNEVEN_TOLERANCE * abs(step), 1e-3)
    upper = np.clip(np.searchsorted(distances, grid), 1, n - 1)
    lower = upper - 1
    span = distances[upper] - distances[lower]
    weight = np.clip((grid - distances[lower]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    slice_frames: list[Frame | None] = []
    for m in range(len(grid)):
        if abs(grid[m] - distances[lower[m]]) <= tolerance:
            weight[m] = 0.0
            slice_frames.append(frames[lower[m]])
        elif abs(grid[m] - distances[upper[m]]) <= tolerance:
            lower[m] = upper[m]
            weight[m] = 0.0
            slice_frames.append(frames[upper[m]])
        else:
            slice_frames.append(None)
    return lower, upper, weight, slice_frames


def _ranges(values: list[int]) -> str:
    """'3, 7-9, 12' from sorted integers."""
    parts: list[str] = []
    start = prev = None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:  # type: ignore[operator]
            prev = v
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = v
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def _geometry_without_positions(
    frames: list[Frame],
    spacing: tuple[float, float],
    warnings: list[str],
    orientation: np.ndarray | None,
) -> StackGeometry:
    """Fallback for images without ImagePositionPatient/ImageOrientationPatient."""
    frames = sorted(
        frames,
        key=lambda f: (f.instance.instance_number if f.instance.instance_number is not None
                       else 0, f.frame),
    )
    first = frames[0].instance
    thickness = (_header_float(first, "SpacingBetweenSlices")
                 or _header_float(first, "SliceThickness") or 1.0)
    if orientation is None:
        orientation = np.array([1.0, 0, 0, 0, 1.0, 0])
        warnings.append("no ImageOrientationPatient/ImagePositionPatient: slices ordered by "
                        "InstanceNumber and shown as axial; left/right cannot be trusted")
    else:
        warnings.append("no ImagePositionPatient: slices ordered by InstanceNumber")
    row, col = orientation[:3], orientation[3:]
    affine = np.eye(4)
    affine[:3, 0] = row * spacing[1]
    affine[:3, 1] = col * spacing[0]
    affine[:3, 2] = np.cross(row, col) * thickness
    positions = np.arange(len(frames), dtype=np.float64) * thickness
    return StackGeometry(frames, affine, positions, warnings, orientation_label(orientation))
