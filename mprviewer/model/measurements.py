"""Measurements stored with a series' marks: rulers, circular ROIs and ABC/2 hematoma volumes.

Each is immutable data positioned in patient LPS millimetres (not voxel indices), so it stays
where it was drawn whatever grid the series is shown on; ``plane`` and ``slice`` say on which
view it was drawn. The numbers a reader saw (length, ROI statistics, volume) are stored too,
so a file can be read without the images. No Qt, no VTK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mprviewer.errors import AnnotationError

ROI_STAT_NAMES: tuple[str, ...] = ("mean", "sd", "min", "max", "area_mm2")
MAX_MM = 10_000_000.0


def _lps(value: Iterable[float], what: str) -> tuple[float, float, float]:
    try:
        p = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{what} must be three numbers (LPS mm).") from None
    if len(p) != 3 or not all(np.isfinite(v) and abs(v) <= MAX_MM for v in p):
        raise AnnotationError(f"{what} must be three finite numbers (LPS mm).")
    return p  # type: ignore[return-value]


def _mm(value: Any, what: str, positive: bool = False) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{what} must be a number of mm, not {value!r}.") from None
    if not np.isfinite(f) or f < 0 or (positive and f == 0) or f > MAX_MM:
        kind = "positive" if positive else "non-negative"
        raise AnnotationError(f"{what} must be a {kind} number of mm, not {value!r}.")
    return f


@dataclass(frozen=True)
class Ruler:
    """A straight line between two points of one 2D view, and its length in mm."""

    id: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    plane: str
    slice: int
    label: str = "Ruler"
    note: str = ""
    created: str = ""

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.subtract(self.a, self.b)))


@dataclass(frozen=True)
class Roi:
    """A circle on one 2D view and the statistics of the voxels inside it."""

    id: str
    center: tuple[float, float, float]
    radius_mm: float
    plane: str
    slice: int
    stats: Mapping[str, float] | None = None
    units: str = ""
    label: str = "ROI"
    note: str = ""
    created: str = ""


@dataclass(frozen=True)
class Hematoma:
    """A hematoma volume by the ABC/2 rule from three perpendicular diameters."""

    id: str
    a_mm: float
    b_mm: float
    c_mm: float
    slices: tuple[int, int] | None = None  # first and last axial slice it shows on
    ruler_ids: tuple[str, ...] = ()
    label: str = "Hematoma"
    note: str = ""
    created: str = ""

    @property
    def volume_ml(self) -> float:
        return self.a_mm * self.b_mm * self.c_mm / 2.0 / 1000.0


Measurement = Ruler | Roi | Hematoma


def make_ruler(id: str, a: Iterable[float], b: Iterable[float], plane: str, slice_: int,
               label: str, note: str, created: str) -> Ruler:
    """A checked Ruler (AnnotationError on bad input)."""
    ruler = Ruler(id=id, a=_lps(a, "a ruler's first end"), b=_lps(b, "a ruler's second end"),
                  plane=plane, slice=_slice(slice_), label=label, note=note, created=created)
    return ruler


def make_roi(id: str, center: Iterable[float], radius_mm: float, plane: str, slice_: int,
             stats: Mapping[str, float] | Any | None, units: str, label: str, note: str,
             created: str) -> Roi:
    """A checked Roi; ``stats`` may be a mapping or an object with the statistic names."""
    table: dict[str, float] | None = None
    if stats is not None:
        table = {}
        for name in ROI_STAT_NAMES:
            value = stats[name] if isinstance(stats, Mapping) else getattr(stats, name)
            f = float(value)
            if not np.isfinite(f) or abs(f) > 1e15:
                raise AnnotationError(f"ROI statistic {name} must be a finite number.")
            table[name] = f
    return Roi(id=id, center=_lps(center, "an ROI centre"),
               radius_mm=_mm(radius_mm, "an ROI radius", positive=True), plane=plane,
               slice=_slice(slice_), stats=table, units=str(units or "")[:20], label=label,
               note=note, created=created)


def make_hematoma(id: str, a_mm: float, b_mm: float, c_mm: float,
                  slices: tuple[int, int] | None, ruler_ids: Iterable[str], label: str,
                  note: str, created: str) -> Hematoma:
    """A checked Hematoma."""
    span = None
    if slices is not None:
        lo, hi = sorted(_slice(s) for s in slices)
        span = (lo, hi)
    return Hematoma(id=id, a_mm=_mm(a_mm, "diameter A"), b_mm=_mm(b_mm, "diameter B"),
                    c_mm=_mm(c_mm, "diameter C"), slices=span,
                    ruler_ids=tuple(str(r) for r in ruler_ids), label=label, note=note,
                    created=created)


def _slice(value: Any) -> int:
    try:
        s = int(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"a slice number must be an integer, not {value!r}.") from None
    if not 0 <= s <= 99999:
        raise AnnotationError(f"slice {s} is out of range (0-99999).")
    return s


def describe(item: Measurement) -> str:
    """One line naming a measurement and its value, for lists and export reports."""
    if isinstance(item, Ruler):
        return f"ruler{_named(item, 'Ruler')} {item.length_mm:.1f} mm ({item.plane} {item.slice})"
    if isinstance(item, Roi):
        text = f"ROI{_named(item, 'ROI')} r {item.radius_mm:.1f} mm ({item.plane} {item.slice})"
        if item.stats:
            units = f" {item.units}" if item.units else ""
            text += f", mean {item.stats['mean']:.1f}{units} SD {item.stats['sd']:.1f}"
        return text
    return (f"hematoma{_named(item, 'Hematoma')} {item.volume_ml:.1f} mL (ABC/2 of "
            f"{item.a_mm:.1f} x {item.b_mm:.1f} x {item.c_mm:.1f} mm)")


def _named(item: Measurement, default: str) -> str:
    """' <label>' unless the label is the kind's default name."""
    return "" if item.label == default else f" {item.label}"


# -- JSON (the full format, version 2) ---------------------------------------------------
def _r(v: float) -> float:
    """Derived numbers (lengths, volumes) are written for people; inputs are kept exact."""
    return round(float(v), 6)


def to_json(item: Measurement) -> dict[str, Any]:
    """The object written for a measurement in a version 2 file."""
    out: dict[str, Any] = {"id": item.id, "label": item.label}
    if isinstance(item, Ruler):
        out.update(plane=item.plane, slice=item.slice, a=list(item.a), b=list(item.b),
                   length_mm=_r(item.length_mm))
    elif isinstance(item, Roi):
        out.update(plane=item.plane, slice=item.slice, center=list(item.center),
                   radius_mm=item.radius_mm)
        if item.stats is not None:
            out["stats"] = dict(item.stats)
        if item.units:
            out["units"] = item.units
    else:
        out.update(a_mm=item.a_mm, b_mm=item.b_mm, c_mm=item.c_mm,
                   volume_ml=_r(item.volume_ml))
        if item.slices is not None:
            out["slices"] = list(item.slices)
        if item.ruler_ids:
            out["ruler_ids"] = list(item.ruler_ids)
    if item.note:
        out["note"] = item.note
    if item.created:
        out["created"] = item.created
    return out


def from_json(kind: str, obj: Mapping[str, Any], id: str) -> Measurement:
    """A measurement from a schema-valid object of a version 2 file (``kind``: rulers, rois
    or hematomas); derived numbers in the file (length, volume) are recomputed."""
    label = " ".join(str(obj.get("label", "")).split())
    note, created = obj.get("note", ""), obj.get("created", "")
    if kind == "rulers":
        return make_ruler(id, obj["a"], obj["b"], obj["plane"], obj["slice"],
                          label or "Ruler", note, created)
    if kind == "rois":
        return make_roi(id, obj["center"], obj["radius_mm"], obj["plane"], obj["slice"],
                        obj.get("stats"), obj.get("units", ""), label or "ROI", note, created)
    slices = obj.get("slices")
    return make_hematoma(id, obj["a_mm"], obj["b_mm"], obj["c_mm"],
                         tuple(slices) if slices else None, obj.get("ruler_ids", ()),  # type: ignore[arg-type]
                         label or "Hematoma", note, created)
