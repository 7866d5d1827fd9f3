"""Measurements a reader makes on a volume: distances, ROI statistics, ABC/2 hematoma volume.

Public as ``mprviewer.measure``.

Pure numpy: no VTK, no Qt, so scripts, tests and every front end get the same numbers.
Everything is in patient millimetres (DICOM LPS) through the volume's affine, so anisotropic
voxels and oblique acquisitions measure right without resampling.

- ``distance(a_lps, b_lps)``: the length of a ruler in mm.
- ``roi_stats(volume, center_lps, radius_mm, plane)``: mean, sd, min, max and area of the voxels
  of one slice whose centres lie within a circle.
- ``abc2_volume_ml(a_mm, b_mm, c_mm)``: the ABC/2 rule of Kothari et al. (Stroke 1996) for an
  ellipsoid-like hematoma; ``slice_range_diameter_mm`` gives the third diameter from the
  first and last axial slice that show the bleed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mprviewer.errors import MprviewerError
from mprviewer.model.orientation import PLANE_AXIS, PLANES, DisplayGrid

__all__ = [
    "MeasureError",
    "RoiStats",
    "abc2_volume_ml",
    "distance",
    "roi_stats",
    "roi_voxels",
    "slice_range_diameter_mm",
]


class MeasureError(MprviewerError, ValueError):
    """A measurement asked for something the volume cannot give (outside it, bad radius...)."""


def _point(value: Any, what: str) -> np.ndarray:
    try:
        p = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise MeasureError(f"{what} must be three numbers (x, y, z in LPS mm)") from None
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise MeasureError(f"{what} must be three finite numbers (x, y, z in LPS mm)")
    return p


def distance(a_lps: Sequence[float] | np.ndarray, b_lps: Sequence[float] | np.ndarray) -> float:
    """Distance in mm between two points in patient LPS millimetres (what a ruler shows)."""
    a = _point(a_lps, "the first point")
    return float(np.linalg.norm(a - _point(b_lps, "the second point")))


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the voxels inside a circular ROI on one slice.

    ``sd`` is the population standard deviation (numpy's ``std``); ``area_mm2`` is the number
    of voxels times the in-plane area of one voxel; ``slice`` is the display-grid slice number
    of ``plane`` that was measured.
    """

    mean: float
    sd: float
    min: float
    max: float
    area_mm2: float
    count: int
    plane: str
    slice: int

    def __getitem__(self, name: str) -> Any:
        """``stats["mean"]`` works as well as ``stats.mean``."""
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def roi_voxels(
    volume: Any, center_lps: Sequence[float] | np.ndarray, radius_mm: float, plane: str
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Index triples (N, 3) as (i, j, k) of the ROI's voxels, their values, the plane's
    display slice number, and the in-plane area of one voxel in mm².

    The slice is the one of ``plane`` (on the display grid) holding the centre; a voxel is
    inside when the in-slice distance from its centre to ``center_lps`` is at most the radius
    (the offset along the slice's normal is not counted, so an oblique slice measures right).
    """
    if plane not in PLANE_AXIS:
        raise MeasureError(f"unknown plane {plane!r}; use one of {', '.join(PLANES)}")
    try:
        radius = float(radius_mm)
    except (TypeError, ValueError):
        raise MeasureError(f"the ROI radius must be a number of mm, not {radius_mm!r}") from None
    if not np.isfinite(radius) or radius <= 0:
        raise MeasureError(f"the ROI radius must be a positive number of mm, not {radius_mm!r}")
    array = np.asarray(volume.array)
    if array.ndim != 3:
        raise MeasureError("ROI statistics need a greyscale volume; this one is colour (RGB)")
    center = _point(center_lps, "the ROI centre")
    affine = np.asarray(volume.affine, dtype=np.float64)
    grid = DisplayGrid.from_affine(affine, array.shape)
    a = grid.source_axis[PLANE_AXIS[plane]]  # index axis that steps through this plane
    b, c = (ax for ax in range(3) if ax != a)
    shape_ijk = (array.shape[2], array.shape[1], array.shape[0])
    ijk_c = np.linalg.solve(affine[:3, :3], center - affine[:3, 3])
    s = int(np.rint(ijk_c[a]))
    if not 0 <= s < shape_ijk[a]:
        raise MeasureError(
            f"the ROI centre is outside the volume along the {plane} plane's axis "
            f"(slice {s}, the volume has 0-{shape_ijk[a] - 1})"
        )
    cols = affine[:3, :3]
    in_plane = cols[:, [b, c]]  # 3x2: mm per index step along b and c
    normal = np.cross(in_plane[:, 0], in_plane[:, 1])
    pixel_area = float(np.linalg.norm(normal))
    normal /= pixel_area
    # Index offsets along b and c that can reach the circle bound the search box.
    reach = radius * np.linalg.norm(np.linalg.pinv(in_plane), axis=1)
    lo = np.maximum(np.floor(ijk_c[[b, c]] - reach), 0).astype(int)
    hi = np.minimum(np.ceil(ijk_c[[b, c]] + reach), np.array(shape_ijk)[[b, c]] - 1).astype(int)
    if np.any(hi < lo):
        raise MeasureError("the ROI circle lies outside the volume's slice")
    ib, ic = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    ijk = np.empty((ib.size, 3), dtype=np.int64)
    ijk[:, a] = s
    ijk[:, b] = ib.ravel()
    ijk[:, c] = ic.ravel()
    offset = ijk @ cols.T + affine[:3, 3] - center
    offset -= np.outer(offset @ normal, normal)
    inside = np.einsum("ij,ij->i", offset, offset) <= radius * radius + 1e-9
    ijk = ijk[inside]
    values = array[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    on_slice = ijk_c.copy()
    on_slice[a] = s
    display_slice = int(np.rint(grid.ijk_to_display(on_slice)[PLANE_AXIS[plane]]))
    return ijk, values, display_slice, pixel_area


def roi_stats(
    volume: Any, center_lps: Sequence[float] | np.ndarray, radius_mm: float, plane: str
) -> RoiStats:
    """Mean, SD (population), min, max and area (mm²) of the voxels of ``plane``'s slice
    through ``center_lps`` whose centres lie within ``radius_mm`` of it (in patient mm)."""
    _ijk, values, display_slice, pixel_area = roi_voxels(volume, center_lps, radius_mm, plane)
    if values.size == 0:
        raise MeasureError(
            f"no voxel centre lies within {float(radius_mm):g} mm of the ROI centre; "
            "draw a larger circle"
        )
    v = values.astype(np.float64)
    return RoiStats(
        mean=float(v.mean()),
        sd=float(v.std()),
        min=float(v.min()),
        max=float(v.max()),
        area_mm2=float(values.size * pixel_area),
        count=int(values.size),
        plane=plane,
        slice=display_slice,
    )


def abc2_volume_ml(a_mm: float, b_mm: float, c_mm: float) -> float:
    """Hematoma volume in mL by the ABC/2 rule: A the longest diameter on the axial slice of
    largest area, B the largest diameter perpendicular to A on that slice, C the height."""
    values = []
    for name, v in (("A", a_mm), ("B", b_mm), ("C", c_mm)):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise MeasureError(f"diameter {name} must be a number of mm, not {v!r}") from None
        if not np.isfinite(f) or f < 0:
            raise MeasureError(f"diameter {name} must be a non-negative number of mm, not {v!r}")
        values.append(f)
    a, b, c = values
    return a * b * c / 2.0 / 1000.0


def slice_range_diameter_mm(
    volume: Any, first: int, last: int, plane: str = "axial"
) -> float:
    """The third ABC/2 diameter from the first and last slice of ``plane`` (display-grid
    numbers, inclusive) that show the hematoma: number of slices times the slice spacing."""
    if plane not in PLANE_AXIS:
        raise MeasureError(f"unknown plane {plane!r}; use one of {', '.join(PLANES)}")
    grid = DisplayGrid.for_volume(volume)
    n = grid.plane_size(plane)
    lo, hi = sorted((int(first), int(last)))
    if lo < 0 or hi >= n:
        raise MeasureError(f"{plane} slices {lo}-{hi} are outside the volume's 0-{n - 1}")
    return (hi - lo + 1) * float(grid.spacing[PLANE_AXIS[plane]])
