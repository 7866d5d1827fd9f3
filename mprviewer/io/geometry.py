"""Order slices in space and build the affine, the way the DICOM geometry says, not file order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mprviewer.io.scan import Instance

ORIENTATION_DECIMALS = 3  # cosines equal to 1e-3 count as one orientation
GAP_FACTOR = 1.5  # a step this many times the usual spacing is a missing slice
UNEVEN_TOLERANCE = 0.01  # relative spacing variation that counts as uneven


@dataclass
class Frame:
    """One 2D image of a stack: an instance and, for multi-frame objects, the frame index."""

    instance: Instance
    frame: int = 0
    position: np.ndarray | None = None
    orientation: np.ndarray | None = None

    @property
    def sop_uid(self) -> str:
        return self.instance.sop_uid


@dataclass
class StackGeometry:
    """Frames in spatial order, the affine and what the user should know about the stack."""

    frames: list[Frame]
    affine: np.ndarray
    positions: np.ndarray  # mm along the slice normal, per frame
    warnings: list[str] = field(default_factory=list)
    orientation_label: str = ""


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
        value = float(instance.header.get(keyword))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def build_geometry(frames: list[Frame]) -> StackGeometry:
    """Sort frames along the slice normal and derive the (i, j, k) -> LPS affine.

    The k axis is the mean step between consecutive slice positions, so the affine is exact
    for a regular stack; gaps and uneven steps are reported in the warnings.
    """
    first = frames[0].instance
    warnings: list[str] = []
    orientation = frame_orientation(frames[0])
    spacing = first.pixel_spacing
    if spacing is None or min(spacing) <= 0:
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
        spacing = (1.0, 1.0)
    row_spacing, col_spacing = spacing
    positions_known = all(frame_position(f) is not None for f in frames)
    if orientation is None or not positions_known:
        return _geometry_without_positions(frames, spacing, warnings, orientation)
    row, col = orientation[:3], orientation[3:]
    row = row / np.linalg.norm(row)
    col = col / np.linalg.norm(col)
    normal = np.cross(row, col)
    points = np.array([frame_position(f) for f in frames])
    distances = points @ normal
    order = np.argsort(distances, kind="stable")
    frames = [frames[i] for i in order]
    points = points[order]
    distances = distances[order]
    affine = np.eye(4)
    affine[:3, 0] = row * col_spacing
    affine[:3, 1] = col * row_spacing
    affine[:3, 3] = points[0]
    if len(frames) > 1:
        step = (points[-1] - points[0]) / (len(frames) - 1)
        if np.linalg.norm(step) < 1e-6:
            step = normal * (_header_float(first, "SliceThickness") or 1.0)
            warnings.append("all slices share one position; slice spacing taken from "
                            "SliceThickness")
        affine[:3, 2] = step
        warnings.extend(_spacing_warnings(distances))
    else:
        thickness = (_header_float(first, "SpacingBetweenSlices")
                     or _header_float(first, "SliceThickness") or 1.0)
        affine[:3, 2] = normal * thickness
    return StackGeometry(frames, affine, distances, warnings,
                         orientation_label(orientation))


def _spacing_warnings(distances: np.ndarray) -> list[str]:
    steps = np.diff(distances)
    if steps.size == 0:
        return []
    usual = float(np.median(steps))
    if usual <= 0:
        return []
    warnings = []
    gaps = np.nonzero(steps > GAP_FACTOR * usual)[0]
    for k in gaps[:10]:
        missing = round(steps[k] / usual) - 1
        warnings.append(
            f"missing slice(s): about {missing} between k={k} and k={k + 1} "
            f"(step {steps[k]:.2f} mm, usual {usual:.2f} mm)"
        )
    if len(gaps) > 10:
        warnings.append(f"... and {len(gaps) - 10} more gaps")
    if not len(gaps) and np.ptp(steps) > UNEVEN_TOLERANCE * usual:
        warnings.append(
            f"uneven slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm"
        )
    return warnings


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
