"""Geometry that would crash VTK (NaN, infinite, degenerate) ends as a clear error, exit 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mprviewer.errors import GeometryError
from mprviewer.io.study import open_study
from mprviewer.io.volume import Volume
from mprviewer.synthetic import writer as synthetic

ARRAY = np.zeros((3, 8, 8), np.int16)
ARRAY[:, 2:5, 2:5] = 500

# name -> (write_series keywords, text the one-line message must hold)
HOSTILE = {
    "zero orientation": ({"tags": {"ImageOrientationPatient": [0, 0, 0, 0, 0, 0]}},
                         "ImageOrientationPatient [0, 0, 0, 0, 0, 0] is degenerate"),
    "parallel cosines": ({"tags": {"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}},
                         "not perpendicular"),
    "huge pixel spacing": ({"tags": {"PixelSpacing": [1e308, 1e308]}},
                           "PixelSpacing (rows) 1e+308 mm is outside 0.001..10000 mm"),
    "far position": ({"per_slice": lambda k: {"ImagePositionPatient": [1e300, 0.0, float(k)]}},
                     "ImagePositionPatient [1e+300, 0, 0] mm lies outside"),
    "huge slice thickness": ({"tags": {"SliceThickness": 1e300}}, "slice spacing 1e+300 mm"),
}


def _write(folder: Path, slices: int, **kw) -> list[Path]:
    return list(synthetic.write_series(folder, ARRAY[:slices], seed=4, **kw))


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_screenshot_of_hostile_geometry_exits_3_naming_file_and_reason(tmp_path: Path) -> None:
    # One slice each (the case that crashed VTK with exit 139), as separate studies.
    procs = {}
    for n, (name, (kw, _)) in enumerate(HOSTILE.items()):
        if name == "huge slice thickness":
            continue  # a one-slice stack takes its depth from SliceThickness: below
        folder = tmp_path / f"case{n}"
        _write(folder, 1, **kw)
        procs[name] = (folder, subprocess.Popen(
            [sys.executable, "-m", "mprviewer", "screenshot", str(folder), "-o",
             str(tmp_path / f"{n}.png"), "--size", "64x64"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if k != "DISPLAY"}))
    for name, (folder, proc) in procs.items():
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, f"{name}: exit {proc.returncode}, {err!r}"
        line = err.strip()
        assert "\n" not in line and "Traceback" not in err, f"{name}: {err!r}"
        uid = pydicom.dcmread(folder / "IM0000.dcm", stop_before_pixels=True).SeriesInstanceUID
        assert line.startswith(f"mprviewer: {folder}: no DICOM images found"), line
        assert f"series {uid}: " in line, line
        assert HOSTILE[name][1] in line, line
        assert not list(tmp_path.glob("*.png"))


def test_one_slice_thickness_that_would_overflow_is_refused(tmp_path: Path) -> None:
    kw, text = HOSTILE["huge slice thickness"]
    _write(tmp_path / "s", 1, **kw)
    result = _cli("screenshot", str(tmp_path / "s"), "-o", str(tmp_path / "x.png"),
                  "--size", "64x64")
    assert result.returncode == 3, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", [n for n in HOSTILE if n != "huge slice thickness"])
def test_one_bad_slice_is_skipped_and_the_rest_of_the_series_loads(tmp_path: Path,
                                                                     name: str) -> None:
    kw, text = HOSTILE[name]
    good = _write(tmp_path / "s", 3)
    first = pydicom.dcmread(good[0], stop_before_pixels=True)
    bad = synthetic.write_series(tmp_path / "bad", ARRAY[:1], seed=5,
                                 series_uid=first.SeriesInstanceUID,
                                 study_uid=first.StudyInstanceUID, **kw)
    # The bad slice belongs to the same series, between the good ones on disk.
    bad_path = tmp_path / "s" / "IM0001x.dcm"
    Path(bad[0]).rename(bad_path)
    with open_study(tmp_path / "s") as study:
        assert len(study.series) == 1
        volume = study.series[0].load()
        assert volume.shape == (3, 8, 8)
        assert np.all(np.isfinite(volume.affine))
        np.testing.assert_allclose(volume.spacing, (1.0, 1.0, 1.0))
        assert volume.sop_instance_uids == [
            str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in good]
        reasons = dict(study.skipped)
        assert text in reasons[str(bad_path)], reasons


@pytest.mark.parametrize("affine_change, text", [
    (lambda a: a.__setitem__((0, 0), np.nan), "not finite"),
    (lambda a: a.__setitem__((1, 1), 1e300), "row spacing 1e+300 mm"),
    (lambda a: a.__setitem__((2, 2), 1e-6), "slice spacing 1e-06 mm"),
    (lambda a: a.__setitem__((2, 3), -2e6), "origin"),
    (lambda a: a.__setitem__((slice(0, 3), 2), (1.0, 0.0, 0.0)), "nearly parallel"),
])
def test_a_volume_made_by_hand_is_checked_too(affine_change, text: str) -> None:
    affine = np.eye(4)
    affine_change(affine)
    with pytest.raises(GeometryError, match=text.replace("+", r"\+").replace("(", r"\(")):
        Volume(np.zeros((2, 3, 4), np.int16), affine, name="hand-made")


def test_render_refuses_a_volume_whose_affine_was_broken_after_loading() -> None:
    from mprviewer.render.screenshot import screenshot

    volume = Volume(np.zeros((4, 6, 6), np.int16), np.eye(4), name="changed")
    volume.affine[0, 0] = np.inf  # changed in place after the check at construction
    with pytest.raises(GeometryError, match="changed: the voxel-to-patient transform"):
        screenshot(volume, view="axial", size=(64, 64))


def test_a_tilted_grid_too_large_to_reslice_is_refused_not_aborted(tmp_path: Path) -> None:
    """Spacings at both ends of the allowed range on a 30 degree tilt: reslicing onto the
    patient's axes would take 64 GiB (VTK aborted with SIGABRT); the acquisition grid is
    still drawn."""
    import math

    a = math.radians(30)
    synthetic.write_series(tmp_path / "tilt", np.zeros((2, 64, 64), np.int16), seed=4,
                           orientation=[math.cos(a), math.sin(a), 0,
                                        -math.sin(a), math.cos(a), 0],
                           pixel_spacing=(1e4, 1e-3))
    result = _cli("screenshot", str(tmp_path / "tilt"), "-o", str(tmp_path / "p.png"),
                  "--size", "64x64")
    assert result.returncode == 3, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "resliced onto the patient's axes" in line
    assert "64.5 GiB, more than the limit of 4 GiB; not resliced" in line
    result = _cli("screenshot", str(tmp_path / "tilt"), "-o", str(tmp_path / "a.png"),
                  "--size", "64x64", "--grid", "acquisition")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.png").exists()
