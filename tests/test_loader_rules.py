"""Rules the loader must follow that the ordinary synthetic series cannot catch.

``synthetic.write_series`` by default writes SliceThickness equal to the slice spacing,
SliceLocation equal to the true position and InstanceNumber in slice order, so a loader
that used any of those instead of ImagePositionPatient would still pass the usual tests.
Here they disagree with the positions on purpose. The other tests cover series naming and
series that hold several stacks (two orientations, an enhanced multi-frame object with
several stacks), checking every split Series' voxels and affine against what was written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import mprviewer
from mprviewer.synthetic import writer as synthetic
from mprviewer.synthetic.writer import Grid


def _coded(nk: int, rows: int, cols: int, base: int = 0) -> np.ndarray:
    """Voxels whose value tells their slice (x1000), row and column apart: a slice, row or
    column out of place, or voxels taken from the wrong stack (``base``), shows."""
    k, j, i = np.indices((nk, rows, cols))
    return (base + 1000 * k + 31 * j + i).astype(np.int16)


# -- spacing and order come from ImagePositionPatient ------------------------------------
def test_spacing_and_order_come_from_positions_not_other_tags(tmp_path: Path) -> None:
    """Slices 2.5 mm apart whose SliceThickness (5.0) and SpacingBetweenSlices (4.0) say
    otherwise, whose SliceLocation, InstanceNumber and file names all run backwards, written
    in shuffled order: only ImagePositionPatient gives the right spacing and order."""
    nk, spacing = 7, 2.5
    array = _coded(nk, 5, 6)
    grid = Grid.build(origin=(12.0, -30.0, 41.0), orientation="sagittal",
                      pixel_spacing=(0.7, 0.9), slice_spacing=spacing)
    true_locations = grid.positions(nk) @ grid.normal  # mm along the normal, k ascending
    written = synthetic.write_series(
        tmp_path / "s", array, affine=grid.affine,
        slice_thickness=5.0, tags={"SpacingBetweenSlices": "4.0"},
        slice_locations=list(true_locations[::-1]), instance_numbers="reverse",
        file_names=lambda n, k: f"IM{nk - 1 - k:04d}", shuffle=4, seed=201,
    )
    first = pydicom.dcmread(written[0], stop_before_pixels=True)  # the file of slice k = 0
    assert (first.SliceThickness, first.SpacingBetweenSlices) == (5.0, 4.0)
    assert float(first.SliceLocation) == pytest.approx(true_locations[-1])
    assert first.InstanceNumber == nk and Path(written[0]).name == f"IM{nk - 1:04d}.dcm"
    series = mprviewer.open_study(tmp_path / "s").series[0]
    volume = series.load()
    normal = np.cross(volume.affine[:3, 0], volume.affine[:3, 1])
    normal /= np.linalg.norm(normal)
    assert float(volume.affine[:3, 2] @ normal) == pytest.approx(spacing)
    assert series.spacing[2] == pytest.approx(spacing)
    np.testing.assert_allclose(volume.affine, written.affine, atol=1e-6)
    np.testing.assert_allclose(volume.slice_positions, true_locations, atol=1e-6)
    for k in range(nk):
        np.testing.assert_array_equal(volume.array[k], array[k], err_msg=f"slice {k}")
    assert volume.sop_instance_uids == written.sop_instance_uids


# -- names --------------------------------------------------------------------------------
def test_series_with_the_same_number_and_description_get_distinct_names(
        tmp_path: Path) -> None:
    """Two series in one folder that share SeriesNumber and SeriesDescription: the names in
    the table (and for ``find_series``) must still tell them apart."""
    first = synthetic.write_series(tmp_path, _coded(3, 4, 4), seed=202, series_number=3,
                                   description="Thorax", file_names="A%03d")
    second = synthetic.write_series(tmp_path, _coded(4, 4, 4, base=5000), seed=203,
                                    series_number=3, description="Thorax", file_names="B%03d",
                                    study_uid=first.study_uid, origin=(0, 0, 50))
    study = mprviewer.open_study(tmp_path)
    by_uid = {s.uid: s.name for s in study.series}
    # Files are scanned in name order, so the A files' series is met first.
    assert by_uid == {first.series_uid: "3 Thorax", second.series_uid: "3 Thorax (2)"}
    assert study.find_series("3 Thorax").uid == first.series_uid
    assert study.find_series("3 Thorax (2)").num_slices == 4


# -- several stacks in one series ---------------------------------------------------------
def test_axial_and_coronal_stacks_in_one_series_split_by_orientation(tmp_path: Path) -> None:
    """One SeriesInstanceUID holding an axial and a coronal stack of the same matrix and no
    LOCALIZER ImageType: only the orientation tells them apart, and each becomes its own
    Series with its own voxels and affine."""
    uid = synthetic.make_uid(204, "two-planes")
    axial = synthetic.write_series(tmp_path / "mixed", _coded(6, 8, 8), series_uid=uid,
                                   seed="ax", slice_spacing=2.0, origin=(-4, -4, 10),
                                   shuffle=1)
    coronal = synthetic.write_series(tmp_path / "mixed", _coded(5, 8, 8, base=7000),
                                     series_uid=uid, seed="cor", orientation="coronal",
                                     slice_spacing=3.0, origin=(-4, -6, 14),
                                     study_uid=axial.study_uid, file_names="C%03d", shuffle=2)
    series = mprviewer.open_study(tmp_path / "mixed").series
    assert sorted(s.name for s in series) == ["mixed [axial 8x8]", "mixed [coronal 8x8]"]
    by_label = {s.split_label: s for s in series}
    for label, written, array in (("axial 8x8", axial, _coded(6, 8, 8)),
                                  ("coronal 8x8", coronal, _coded(5, 8, 8, base=7000))):
        s = by_label[label]
        assert s.uid == uid and s.orientation == label.split()[0]
        volume = s.load()
        np.testing.assert_array_equal(volume.array, array, err_msg=label)
        np.testing.assert_allclose(volume.affine, written.affine, atol=1e-6, err_msg=label)
        assert f"series {uid} holds 2 stacks; this one is: {label}" in volume.warnings
        assert not any("missing" in w or "uneven" in w for w in volume.warnings)


@pytest.mark.parametrize(("dimension", "labels"), [
    ("stack", ["stack 1 axial 7x6", "stack 2 coronal 7x6"]),
    ("time", ["time point 1", "time point 2"]),
])
def test_enhanced_multiframe_with_several_stacks_opens_as_one_series_per_stack(
        tmp_path: Path, dimension: str, labels: list[str]) -> None:
    """An Enhanced MR object holding two stacks (by StackID in two orientations, or by
    TemporalPositionIndex at the same place), frames shuffled: one Series per stack, each
    with the voxels and affine written for that stack."""
    stacks = [_coded(5, 6, 7), _coded(4 if dimension == "stack" else 5, 6, 7, base=9000)]
    if dimension == "stack":
        grids = [Grid.build(origin=(0, 0, 0), pixel_spacing=(0.5, 0.75), slice_spacing=2.0),
                 Grid.build(origin=(1, 2, 3), orientation="coronal", slice_spacing=1.5)]
    else:
        grids = [Grid.build(origin=(-3, 4, 20), pixel_spacing=(0.5, 0.75), slice_spacing=2.0)] * 2
    written = synthetic.write_multiframe(tmp_path / "mf" / "mf.dcm", stacks, grids=grids,
                                         stack_dimension=dimension, frame_order="shuffled",
                                         modality="MR", seed=205)
    series = mprviewer.open_study(tmp_path / "mf").series
    assert [s.split_label for s in series] == labels
    assert {s.uid for s in series} == {written.series_uid}
    for n, s in enumerate(series):
        volume = s.load()
        np.testing.assert_array_equal(volume.array, stacks[n], err_msg=labels[n])
        np.testing.assert_allclose(volume.affine, written.affines[n], atol=1e-6,
                                   err_msg=labels[n])
