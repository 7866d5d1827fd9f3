"""Thick-slab views: a MIP shows what lies within half its thickness of the slice, a MinIP the
darkest, and the corner text says so; screenshots and the command line take the slab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mprviewer.model.orientation import DisplayGrid
from mprviewer.model.state import ViewerState
from mprviewer.render.image import ImageStore
from mprviewer.render.offscreen import offscreen_plotter, render_image
from mprviewer.render.probe import bright_spot
from mprviewer.render.screenshot import screenshot
from mprviewer.render.slice_scene import SliceScene
from mprviewer.synthetic.writer import write_series
from tests.test_cli_screenshot import run_cli
from tests.test_render_slice import ACQUISITIONS, make_volume

pytestmark = pytest.mark.render

SIZE = 240


def _dot_volume(off_mm: float, value: int = 1000, background: int = 0):
    """1 mm voxels; a dot (radius 1.5 mm) ``off_mm`` superior of the centre axial slice,
    left of and anterior to the centre. Returns the volume, the centre slice and the dot."""
    cosines, _ = ACQUISITIONS["axial"]
    vol = make_volume(cosines, (1.0, 1.0, 1.0), shape=(31, 40, 40), center=(0.0, 0.0, 0.0))
    vol.array[:] = background
    center_k = 15
    dot = np.array([8.0, -6.0, off_mm])  # LPS: left, anterior, superior of the centre
    k, j, i = np.indices(vol.shape)
    lps = vol.ijk_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1).astype(float))
    near = np.linalg.norm(lps - dot, axis=1) <= 1.5
    vol.array.reshape(-1)[near] = value
    return vol, center_k, dot


def _axial_scene(vol):
    grid = DisplayGrid.for_volume(vol)
    state = ViewerState(grid, window=(500.0, 1000.0))
    store = ImageStore(vol, grid)
    plotter = offscreen_plotter((SIZE, SIZE))
    scene = SliceScene(plotter, store, state, "axial")
    scene.set_crosshair_visible(False)
    return scene, state, plotter


def _pixel(img: np.ndarray, scene: SliceScene, lps) -> np.ndarray:
    """Mean grey level of the 3x3 pixels where ``lps`` (on the shown slice) is drawn."""
    x, y = scene.world_to_display(lps)
    row, col = img.shape[0] - 1 - round(y), round(x)
    return img[row - 1 : row + 2, col - 1 : col + 2].astype(float).mean()


def test_a_dot_five_mm_off_the_slice_shows_in_a_ten_mm_mip_only() -> None:
    vol, k, dot = _dot_volume(5.0)
    scene, state, plotter = _axial_scene(vol)
    try:
        assert state.slices["axial"] == k
        on_slice = (dot[0], dot[1], 0.0)
        plain = render_image(plotter)
        assert _pixel(plain, scene, on_slice) < 10
        scene.set_slab(10.0, "max")
        mip = render_image(plotter)
        assert _pixel(mip, scene, on_slice) > 200
        # only the dot: the mirror position (right, posterior) stays dark
        assert _pixel(mip, scene, (-dot[0], -dot[1], 0.0)) < 10
        assert "Slab MIP 10 mm" in scene.info_text.GetInput()
        # a thin slab (4 mm reaches 2 mm) misses the dot, whose nearest voxel is 4 mm away
        scene.set_slab(4.0, "max")
        assert _pixel(render_image(plotter), scene, on_slice) < 10
        # back to the plain slice
        scene.set_slab(0.0)
        assert _pixel(render_image(plotter), scene, on_slice) < 10
        assert "Slab" not in scene.info_text.GetInput()
        # stepping moves the slab with the slice: 5 slices up, the dot is on the slice itself
        scene.set_slab(10.0, "max")
        state.set_slice("axial", k + 5)
        assert _pixel(render_image(plotter), scene, (dot[0], dot[1], 5.0)) > 200
        state.set_slice("axial", k - 6)  # now 11 mm below it: out of the slab
        assert _pixel(render_image(plotter), scene, (dot[0], dot[1], -6.0)) < 10
    finally:
        scene.close()
        plotter.close()


def test_minip_shows_a_dark_dot_and_mean_dilutes_it() -> None:
    vol, _k, dot = _dot_volume(4.0, value=0, background=1000)
    scene, _state, plotter = _axial_scene(vol)
    try:
        on_slice = (dot[0], dot[1], 0.0)
        assert _pixel(render_image(plotter), scene, on_slice) > 240
        scene.set_slab(10.0, "min")
        assert _pixel(render_image(plotter), scene, on_slice) < 10
        assert "Slab MinIP 10 mm" in scene.info_text.GetInput()
        scene.set_slab(10.0, "mean")
        mean = _pixel(render_image(plotter), scene, on_slice)
        assert 60 < mean < 245  # darker than the background, far from black
        with pytest.raises(ValueError, match="slab mode"):
            scene.set_slab(10.0, "median")
        with pytest.raises(ValueError, match="0-10000 mm"):
            scene.set_slab(-1.0)
    finally:
        scene.close()
        plotter.close()


def test_screenshot_takes_a_slab() -> None:
    vol, k, _dot = _dot_volume(5.0)
    kw = {"view": "axial", "size": (SIZE, SIZE), "window": (500.0, 1000.0), "crosshair": False}
    on_dot = screenshot(vol, slices={"axial": k + 5}, **kw)
    where = bright_spot(on_dot, min_level=200)
    assert where is not None
    col, row = round(where[0]), round(where[1])
    plain = screenshot(vol, slices={"axial": k}, **kw)
    mip = screenshot(vol, slices={"axial": k}, slab=10, slab_mode="max", **kw)
    assert plain[row - 1 : row + 2, col - 1 : col + 2].mean() < 10
    assert mip[row - 1 : row + 2, col - 1 : col + 2].mean() > 200
    # the patient's left shows on the screen's right in the MIP too
    assert col > SIZE / 2
    with pytest.raises(ValueError, match="slab mode"):
        screenshot(vol, view="axial", size=(64, 64), slab=10, slab_mode="average")


def test_cli_screenshot_slab(tmp_path: Path) -> None:
    vol, k, _dot = _dot_volume(5.0)
    write_series(tmp_path / "dot", vol.array, affine=vol.affine, seed=2)
    args = ["dot", "--view", "axial", "--size", f"{SIZE}x{SIZE}", "--slice", f"axial={k}",
            "--window", "1000", "--level", "500", "--no-crosshair"]
    done = run_cli(*args, "-o", "mip.png", "--slab", "10", "--slab-mode", "max", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_cli(*args, "-o", "plain.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    mip = np.asarray(Image.open(tmp_path / "mip.png"))
    plain = np.asarray(Image.open(tmp_path / "plain.png"))
    inner = slice(40, SIZE - 40)  # inside the image, away from the corner text
    spot = bright_spot(mip[inner, inner], min_level=200)
    assert spot is not None and spot[0] + 40 > SIZE / 2  # the patient's left, screen right
    assert bright_spot(plain[inner, inner], min_level=200) is None
    bad = run_cli(*args, "-o", "x.png", "--slab", "-3", cwd=tmp_path)
    assert bad.returncode == 2 and "--slab must be 0-10000 mm" in bad.stderr
    assert not (tmp_path / "x.png").exists()
