"""Oblique acquisitions: shown resliced onto the patient's planes by default (a cylinder along
the patient's S axis is a circle in the axial view), on the acquisition grid on request (an
ellipse), and called oblique in the corner text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mprviewer.io.volume import Volume
from mprviewer.render.probe import grey_mask
from mprviewer.render.reslice import is_oblique, obliquity, obliquity_text, patient_aligned
from mprviewer.render.screenshot import screenshot
from mprviewer.synthetic.writer import write_series
from tests.test_cli_screenshot import run_cli

pytestmark = pytest.mark.render

TILT = 30.0
RADIUS = 14.0
SIZE = 320


def tilted_cylinder(tilt_deg: float = TILT) -> Volume:
    """An axial-ish stack tilted ``tilt_deg`` about the patient's left-right axis (1 mm voxels)
    holding a bright cylinder of radius RADIUS mm along the patient's S axis."""
    t = np.radians(tilt_deg)
    rotation = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    shape = (48, 64, 64)  # k, j, i
    affine = np.eye(4)
    affine[:3, :3] = rotation
    half = (np.array(shape[::-1]) - 1) / 2.0
    affine[:3, 3] = -rotation @ half  # centred on the LPS origin
    vol = Volume(np.zeros(shape, np.int16), affine, units="HU", modality="CT")
    k, j, i = np.indices(shape)
    lps = vol.ijk_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1).astype(float))
    inside = (lps[:, 0] ** 2 + lps[:, 1] ** 2) <= RADIUS**2
    vol.array.reshape(-1)[inside] = 1000
    return vol


def _blob_aspect(img: np.ndarray) -> float:
    """Height over width of the bright grey blob (rows and columns it covers)."""
    inner = img[50:-50, 50:-50]  # away from the corner text and edge letters
    rows, cols = np.nonzero(grey_mask(inner, 150))
    assert rows.size > 100
    return (rows.max() - rows.min() + 1) / (cols.max() - cols.min() + 1)


def test_resliced_axial_view_of_a_tilted_cylinder_is_a_circle() -> None:
    vol = tilted_cylinder()
    assert obliquity(vol) == pytest.approx(TILT, abs=0.01)
    kw = {"view": "axial", "size": (SIZE, SIZE), "window": (500.0, 1000.0), "crosshair": False}
    resliced = screenshot(vol, **kw)
    acquired = screenshot(vol, acquisition_grid=True, **kw)
    assert _blob_aspect(resliced) == pytest.approx(1.0, abs=0.05)
    # the acquisition grid's "axial" plane cuts the cylinder at 30 degrees: an ellipse
    # stretched along A-P (the screen's vertical) by 1 / cos(30)
    assert _blob_aspect(acquired) == pytest.approx(1 / np.cos(np.radians(TILT)), abs=0.06)


def test_patient_aligned_grid_keeps_every_voxel_where_the_affine_puts_it() -> None:
    vol = tilted_cylinder()
    vol.array[20, 30, 40] = 3000  # one marker voxel
    out = patient_aligned(vol)
    assert not is_oblique(out)
    assert np.allclose(out.affine[:3, :3], np.diag(np.diag(out.affine[:3, :3])))
    assert (np.diag(out.affine)[:3] > 0).all()
    marker = np.unravel_index(int(np.argmax(out.array)), out.array.shape)
    found = out.ijk_to_lps(np.array(marker[::-1], dtype=float))
    assert np.linalg.norm(found - vol.ijk_to_lps((40, 30, 20))) <= 1.0
    assert out.sop_instance_uids == [] and "resliced" in out.warnings[-1]
    # outside the acquired stack: the data's minimum, not a made-up value
    assert out.array[0, 0, 0] == vol.array.min()


def test_corner_text_says_oblique() -> None:
    assert obliquity_text(20.2, resliced=False) == "acquisition grid, oblique 20°"
    assert obliquity_text(20.2, resliced=True) == "resliced, acquired oblique 20°"
    assert obliquity_text(0.6, resliced=False) == ""
    straight = tilted_cylinder(0.0)
    assert not is_oblique(straight) and is_oblique(tilted_cylinder(1.5))


def test_marks_of_an_oblique_series_need_its_acquisition_grid() -> None:
    vol = tilted_cylinder()
    with pytest.raises(ValueError, match="acquisition grid"):
        screenshot(vol, view="axial", size=(64, 64), acquisition_grid=False,
                   annotations={"axial": {10: ["Bleed"]}})


def test_cli_grid_switch(tmp_path: Path) -> None:
    vol = tilted_cylinder()
    write_series(tmp_path / "obl", vol.array, affine=vol.affine, seed=4)
    args = ["obl", "--view", "axial", "--size", f"{SIZE}x{SIZE}", "--window", "1000",
            "--level", "500", "--no-crosshair"]
    for grid in ("auto", "acquisition"):
        done = run_cli(*args, "--grid", grid, "-o", f"{grid}.png", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    auto = np.asarray(Image.open(tmp_path / "auto.png"))[..., :3]
    acquisition = np.asarray(Image.open(tmp_path / "acquisition.png"))[..., :3]
    assert _blob_aspect(auto) == pytest.approx(1.0, abs=0.05)
    assert _blob_aspect(acquisition) > 1.1
    marks = tmp_path / "marks.json"
    marks.write_text('{"obl": {"Anomaly": "Bleed", "Slices": "3"}}')
    refused = run_cli(*args, "--grid", "patient", "--annotations", str(marks), "-o", "x.png",
                      cwd=tmp_path)
    assert refused.returncode == 2 and "acquisition grid" in refused.stderr
    assert not (tmp_path / "x.png").exists()
