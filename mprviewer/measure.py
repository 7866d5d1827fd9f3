"""Measurements in patient millimetres: the public entry points in one place.

>>> from mprviewer import measure
>>> measure.distance((0, 0, 0), (3, 4, 0))
5.0
>>> round(measure.abc2_volume_ml(40, 30, 20), 1)
12.0

``roi_stats(volume, center_lps, radius_mm, plane)`` gives mean, sd, min, max and area_mm2 of a
circular ROI; ``slice_range_diameter_mm`` the third ABC/2 diameter from marked slices. They
live in ``mprviewer.model.measure`` (pure numpy); this module re-exports them.
"""

from __future__ import annotations

from mprviewer.model.measure import (
    MeasureError,
    RoiStats,
    abc2_volume_ml,
    distance,
    roi_stats,
    roi_voxels,
    slice_range_diameter_mm,
)

__all__ = [
    "MeasureError",
    "RoiStats",
    "abc2_volume_ml",
    "distance",
    "roi_stats",
    "roi_voxels",
    "slice_range_diameter_mm",
]
