"""Measurements in patient mm: rulers, ROI statistics and ABC/2 on synthetic series whose
geometry the test wrote itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mprviewer
from mprviewer import measure
from mprviewer.io.volume import Volume
from mprviewer.synthetic import writer as synthetic

# 20 degrees about the patient's left-right axis: a coronal-oblique style tilt of an axial stack.
_T = np.radians(20.0)
OBLIQUE = (1.0, 0.0, 0.0, 0.0, float(np.cos(_T)), float(np.sin(_T)))


def _load(tmp_path: Path, name: str, array: np.ndarray, **kwargs) -> Volume:
    synthetic.write_series(tmp_path / name, array, shuffle=3, seed=5, **kwargs)
    return mprviewer.open_study(tmp_path / name).series[0].load()


@pytest.mark.parametrize(
    ("orientation", "pixel_spacing", "slice_spacing"),
    [("axial", (0.5, 0.5), 0.5), ("axial", (0.6, 0.9), 3.0), (OBLIQUE, (0.7, 0.8), 2.5),
     ("sagittal", (0.4, 1.1), 1.7)],
)
def test_ruler_between_two_voxels_is_their_physical_distance(
    tmp_path: Path, orientation, pixel_spacing, slice_spacing
) -> None:
    """The expected length comes from the spacings the files were written with (rows, columns
    and slices are orthogonal), not from the loader's affine."""
    array = np.zeros((12, 20, 16), np.int16)
    volume = _load(tmp_path, "s", array, orientation=orientation, pixel_spacing=pixel_spacing,
                   slice_spacing=slice_spacing, origin=(-31.0, 12.5, 40.0))
    a_ijk, b_ijk = np.array([2, 3, 1]), np.array([13, 17, 10])
    di, dj, dk = b_ijk - a_ijk
    row_mm, col_mm = pixel_spacing  # PixelSpacing: mm between rows (j), between columns (i)
    expected = float(np.sqrt((di * col_mm) ** 2 + (dj * row_mm) ** 2 + (dk * slice_spacing) ** 2))
    got = measure.distance(volume.ijk_to_lps(a_ijk), volume.ijk_to_lps(b_ijk))
    assert got == pytest.approx(expected, abs=1e-3)


def test_distance_refuses_bad_points() -> None:
    with pytest.raises(measure.MeasureError, match="three"):
        measure.distance((0, 0), (1, 2, 3))
    with pytest.raises(measure.MeasureError, match="finite"):
        measure.distance((0, 0, float("nan")), (1, 2, 3))


def _independent_roi(volume: Volume, center: np.ndarray, radius: float, axis_ijk: int):
    """Voxels of the slice holding ``center`` (along index axis ``axis_ijk``) within ``radius``
    of it in the slice's plane, by brute force over the whole volume."""
    k, j, i = np.indices(volume.array.shape)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    lps = volume.ijk_to_lps(ijk)
    s = round(float(volume.lps_to_ijk(center)[axis_ijk]))
    on_slice = ijk[:, axis_ijk] == s
    others = [ax for ax in range(3) if ax != axis_ijk]
    u, v = (volume.affine[:3, ax] for ax in others)
    n = np.cross(u, v) / np.linalg.norm(np.cross(u, v))
    d = lps - center
    d_in = d - np.outer(d @ n, n)
    inside = on_slice & (np.linalg.norm(d_in, axis=1) <= radius)
    return volume.array.ravel()[inside], float(np.linalg.norm(np.cross(u, v)))


@pytest.mark.parametrize(
    ("orientation", "spacing", "plane", "axis_ijk"),
    [("axial", (0.7, 0.7, 2.0), "axial", 2), ("axial", (0.6, 0.9, 3.0), "coronal", 1),
     ("coronal", (0.5, 0.8, 1.5), "coronal", 2), (OBLIQUE, (0.7, 0.8, 2.5), "axial", 2),
     (OBLIQUE, (0.7, 0.8, 2.5), "sagittal", 0)],
)
def test_roi_stats_equal_numpy_on_the_same_voxels(orientation, spacing, plane, axis_ijk) -> None:
    rng = np.random.default_rng(3)
    array = rng.integers(-100, 1200, size=(14, 30, 26)).astype(np.int16)
    row, col = synthetic.orientation_cosines(orientation)
    affine = synthetic.affine_for((10.0, -20.0, 30.0), row, col, (spacing[1], spacing[0]),
                                  spacing[2])
    volume = Volume(array=array, affine=affine)
    center = volume.ijk_to_lps((12.3, 14.6, 7.2))
    radius = 6.0
    stats = measure.roi_stats(volume, center, radius, plane)
    values, pixel_area = _independent_roi(volume, center, radius, axis_ijk)
    assert values.size > 10
    assert stats.count == values.size
    assert stats["mean"] == pytest.approx(float(np.mean(values)))
    assert stats.sd == pytest.approx(float(np.std(values)))
    assert stats.min == float(values.min())
    assert stats.max == float(values.max())
    assert stats.area_mm2 == pytest.approx(values.size * pixel_area)
    # about a circle's area, the voxels being much smaller than the circle
    assert stats.area_mm2 == pytest.approx(np.pi * radius**2, rel=0.2)


def test_roi_refuses_a_centre_outside_and_a_bad_radius() -> None:
    volume = Volume(array=np.zeros((5, 8, 8), np.int16), affine=np.eye(4))
    with pytest.raises(measure.MeasureError, match="outside"):
        measure.roi_stats(volume, (3.0, 3.0, 40.0), 2.0, "axial")
    with pytest.raises(measure.MeasureError, match="positive"):
        measure.roi_stats(volume, (3.0, 3.0, 2.0), 0.0, "axial")
    with pytest.raises(measure.MeasureError, match="plane"):
        measure.roi_stats(volume, (3.0, 3.0, 2.0), 2.0, "oblique")


def _reader_diameters(volume: Volume, mask: np.ndarray) -> tuple[float, float, float]:
    """A, B and C as a reader takes them: on the axial slice of largest area the longest
    chord (ruler end points on the blob's edge voxels, plus one voxel for the edges) and the
    widest extent perpendicular to it; C from the first and last axial slice showing it."""
    areas = mask.sum(axis=(1, 2))
    k_best = int(np.argmax(areas))
    jj, ii = np.nonzero(mask[k_best])
    pts = volume.ijk_to_lps(np.stack([ii, jj, np.full_like(ii, k_best)], axis=1).astype(float))
    d = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=2)
    p, q = np.unravel_index(int(np.argmax(d)), d.shape)
    pixel = volume.spacing[0]
    a = measure.distance(pts[p], pts[q]) + pixel
    u = (pts[q] - pts[p]) / np.linalg.norm(pts[q] - pts[p])
    v = np.cross(u, volume.direction[:, 2])
    proj = pts @ v
    b = float(proj.max() - proj.min()) + pixel
    ks = np.nonzero(areas)[0]
    c = measure.slice_range_diameter_mm(volume, int(ks.min()), int(ks.max()), "axial")
    return a, b, c


def test_abc2_on_a_synthetic_ellipsoid_is_within_ten_percent(tmp_path: Path) -> None:
    semi = (22.0, 14.0, 9.0)  # mm, the first two turned 30 degrees in the axial plane
    spacing = (0.8, 0.8, 2.5)
    shape = (40, 80, 80)
    k, j, i = np.indices(shape).astype(float)
    x = (i - 40) * spacing[0]
    y = (j - 40) * spacing[1]
    z = (k - 20) * spacing[2]
    t = np.radians(30.0)
    xr, yr = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    mask = (xr / semi[0]) ** 2 + (yr / semi[1]) ** 2 + (z / semi[2]) ** 2 <= 1.0
    array = np.where(mask, 60, 20).astype(np.int16)
    volume = _load(tmp_path, "bleed", array, pixel_spacing=(spacing[1], spacing[0]),
                   slice_spacing=spacing[2])
    a, b, c = _reader_diameters(volume, volume.array > 40)
    assert a == pytest.approx(2 * semi[0], rel=0.06)
    assert b == pytest.approx(2 * semi[1], rel=0.1)
    true_ml = 4.0 / 3.0 * np.pi * semi[0] * semi[1] * semi[2] / 1000.0
    got = measure.abc2_volume_ml(a, b, c)
    assert got == pytest.approx(true_ml, rel=0.10)


def test_abc2_rule_and_its_inputs() -> None:
    assert measure.abc2_volume_ml(40, 30, 20) == pytest.approx(12.0)
    with pytest.raises(measure.MeasureError, match="diameter B"):
        measure.abc2_volume_ml(40, -1, 20)
    volume = Volume(array=np.zeros((10, 4, 4), np.int16),
                    affine=np.diag([0.5, 0.5, 5.0, 1.0]))
    assert measure.slice_range_diameter_mm(volume, 7, 3) == pytest.approx(25.0)
    with pytest.raises(measure.MeasureError, match="outside"):
        measure.slice_range_diameter_mm(volume, 3, 10)
