"""Plausibility of geometry before anything is built from it.

VTK crashes (not raises) on image data whose spacing, origin or direction is NaN, infinite
or degenerate, and numbers like a PixelSpacing of 1e308 turn into such values after a few
multiplications. Every stack the loader builds and every ``Volume`` (loaded or made by hand)
passes through these checks, so such a header ends as a ``GeometryError`` naming the file or
series instead of a crash in the renderer.

The bounds are far outside anything a scanner produces: pixels from 1 micrometre
(microscopy) to 10 metres, patient positions within a kilometre of the origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mprviewer.errors import GeometryError

MIN_SPACING_MM = 1e-3
MAX_SPACING_MM = 1e4
MAX_POSITION_MM = 1e6
# Direction cosines are written with a few decimals; a length off by more than this, or two
# cosines further from perpendicular than this (|cos| of their angle), is not an orientation.
UNIT_TOLERANCE = 0.1
PERPENDICULAR_TOLERANCE = 0.1


def _finite(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)))


def check_orientation(orientation: Sequence[float] | np.ndarray, what: str) -> None:
    """ImageOrientationPatient: two finite, unit-length, perpendicular direction cosines."""
    values = np.asarray(orientation, dtype=np.float64).reshape(-1)
    if values.size != 6 or not _finite(values):
        raise GeometryError(f"{what}: ImageOrientationPatient {_show(values)} is not six "
                            f"finite numbers")
    row, col = values[:3], values[3:]
    for name, vector in (("row", row), ("column", col)):
        length = float(np.linalg.norm(vector))
        if abs(length - 1.0) > UNIT_TOLERANCE:
            raise GeometryError(
                f"{what}: ImageOrientationPatient {_show(values)} is degenerate: its {name} "
                f"direction has length {length:.3g}, not 1")
    cosine = float(np.dot(row, col) / (np.linalg.norm(row) * np.linalg.norm(col)))
    if abs(cosine) > PERPENDICULAR_TOLERANCE:
        raise GeometryError(
            f"{what}: ImageOrientationPatient {_show(values)} is degenerate: the row and "
            f"column directions are {math.degrees(math.acos(max(-1.0, min(1.0, cosine)))):.0f}"
            f" degrees apart, not perpendicular")


def check_position(position: Sequence[float] | np.ndarray, what: str,
                   name: str = "ImagePositionPatient") -> None:
    """A position in patient millimetres: finite and within ``MAX_POSITION_MM``."""
    values = np.asarray(position, dtype=np.float64).reshape(-1)
    if not _finite(values) or float(np.abs(values).max(initial=0.0)) > MAX_POSITION_MM:
        raise GeometryError(f"{what}: {name} {_show(values)} mm lies outside "
                            f"+-{MAX_POSITION_MM:g} mm; the header is damaged")


def check_spacing(value: float, what: str, name: str) -> None:
    """A pixel or slice spacing within ``MIN_SPACING_MM`` .. ``MAX_SPACING_MM``."""
    if not (math.isfinite(value) and MIN_SPACING_MM <= value <= MAX_SPACING_MM):
        raise GeometryError(f"{what}: {name} {value:.6g} mm is outside "
                            f"{MIN_SPACING_MM:g}..{MAX_SPACING_MM:g} mm; the header is damaged")


def check_affine(affine: np.ndarray, what: str) -> None:
    """A voxel-to-patient affine VTK can draw: finite, sane spacings and origin, and three
    independent axes."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not _finite(affine):
        raise GeometryError(f"{what}: the voxel-to-patient transform is not finite")
    axes = affine[:3, :3]
    lengths = np.hypot.reduce(axes, axis=0)  # no overflow to inf on the way, unlike norm
    for n, label in enumerate(("column", "row", "slice")):
        check_spacing(float(lengths[n]), what, f"{label} spacing")
    check_position(affine[:3, 3], what, "origin")
    direction = axes / lengths
    if abs(float(np.linalg.det(direction))) < 1.0 - PERPENDICULAR_TOLERANCE * 3:
        raise GeometryError(f"{what}: the voxel axes are nearly parallel (the orientation is "
                            f"degenerate)")


def _show(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values.tolist()) + "]"
