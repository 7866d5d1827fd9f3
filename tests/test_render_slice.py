"""2D views rendered off screen: orientation, aspect, slicing, window, pick and overlays."""

from __future__ import annotations

import numpy as np
import pytest

from mprviewer.io.volume import Volume
from mprviewer.model.orientation import PLANES, DisplayGrid
from mprviewer.model.state import ViewerState
from mprviewer.render.image import ImageStore
from mprviewer.render.offscreen import offscreen_plotter, render_image
from mprviewer.render.probe import bright_spot, grey_mask, tile
from mprviewer.render.slice_scene import SliceScene

pytestmark = pytest.mark.render

SIZE = 240


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


# Direction cosines (columns: i, j, k in LPS) and spacing of the test acquisitions.
ACQUISITIONS = {
    "axial": (np.eye(3), (1.0, 1.0, 1.0)),
    "axial-flipped": (np.diag([-1.0, -1.0, -1.0]), (1.0, 1.0, 1.0)),
    "coronal": (np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float), (1.0, 1.0, 1.5)),
    "sagittal": (np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float), (1.0, 1.0, 1.0)),
    "oblique": (_rot_z(12.0), (1.0, 1.0, 1.0)),
    "anisotropic": (np.eye(3), (0.7, 0.7, 2.5)),
}


def make_volume(cosines: np.ndarray, spacing, shape=(24, 30, 32), center=(5.0, -20.0, 40.0)):
    """An empty volume of ``shape`` (k, j, i) centred at ``center`` (LPS mm)."""
    affine = np.eye(4)
    affine[:3, :3] = cosines * np.asarray(spacing)
    half = (np.array(shape[::-1]) - 1) / 2.0  # (i, j, k)
    affine[:3, 3] = np.asarray(center) - affine[:3, :3] @ half
    return Volume(np.zeros(shape, np.int16), affine, units="HU")


def put_blob(vol: Volume, lps, value: int = 1000, radius: int = 1) -> tuple[int, int, int]:
    """A small bright cube around the voxel nearest ``lps``; returns its (i, j, k)."""
    i, j, k = (round(v) for v in vol.lps_to_ijk(lps))
    _nk, _nj, _ni = vol.shape
    vol.array[
        max(k - radius, 0) : k + radius + 1,
        max(j - radius, 0) : j + radius + 1,
        max(i - radius, 0) : i + radius + 1,
    ] = value
    return i, j, k


def render_planes(vol: Volume, cursor_lps=None, window=(500.0, 1000.0), **state_kw):
    """Render the three planes side by side; returns (image, scenes, state, plotter)."""
    grid = DisplayGrid.for_volume(vol)
    state = ViewerState(grid, window=window)
    if cursor_lps is not None:
        state.set_cursor(np.round(grid.lps_to_display(cursor_lps)))
    for key, value in state_kw.items():
        getattr(state, f"set_{key}")(value)
    store = ImageStore(vol, grid)
    plotter = offscreen_plotter((SIZE * 3, SIZE), shape=(1, 3))
    scenes = {}
    for n, plane in enumerate(PLANES):
        plotter.subplot(0, n)
        scenes[plane] = SliceScene(plotter, store, state, plane)
    return render_image(plotter), scenes, state, plotter


def views(img: np.ndarray) -> dict[str, np.ndarray]:
    return {plane: tile(img, n, (1, 3)) for n, plane in enumerate(PLANES)}


@pytest.mark.parametrize("acq", list(ACQUISITIONS))
@pytest.mark.parametrize("sign", [1, -1])
def test_radiological_orientation(acq: str, sign: int) -> None:
    """sign=+1: marker on the patient's left, anterior, superior; -1: right, posterior, inferior."""
    cosines, spacing = ACQUISITIONS[acq]
    vol = make_volume(cosines, spacing)
    center = np.array([5.0, -20.0, 40.0])
    offset = np.array([9.0, -8.0, 9.0]) * sign  # +x = left, -y = anterior, +z = superior
    put_blob(vol, center + offset)
    img, _, _, plotter = render_planes(vol, cursor_lps=center + offset)
    plotter.close()
    half = SIZE / 2
    spots = {plane: bright_spot(v) for plane, v in views(img).items()}
    assert all(s is not None for s in spots.values()), spots
    left_on_right = spots["axial"][0] > half and spots["coronal"][0] > half
    anterior_top = spots["axial"][1] < half
    superior_up = spots["coronal"][1] < half and spots["sagittal"][1] < half
    anterior_left = spots["sagittal"][0] < half
    if sign > 0:
        assert left_on_right and anterior_top and superior_up and anterior_left, spots
    else:
        assert not (left_on_right or anterior_top or superior_up or anterior_left), spots


def test_edge_letters_per_plane() -> None:
    vol = make_volume(*ACQUISITIONS["axial"])
    _, scenes, _, plotter = render_planes(vol)
    letters = {p: {e: a.GetInput() for e, a in s.letters.actors.items()} for p, s in scenes.items()}
    plotter.close()
    assert letters["axial"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert letters["coronal"] == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert letters["sagittal"] == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


def test_anisotropic_voxels_keep_true_aspect() -> None:
    """A 32 x 24 mm coronal section made of 0.5 x 3 mm pixels shows 4:3 wide, not stretched."""
    vol = make_volume(np.eye(3), (0.5, 1.0, 3.0), shape=(8, 20, 64))  # x 32 mm, z 24 mm
    vol.array[:] = 1000
    img, _scenes, _, plotter = render_planes(vol, window=(500.0, 1000.0))
    plotter.close()
    mask = grey_mask(views(img)["coronal"], min_level=200)
    rows, cols = np.nonzero(mask)
    width = np.percentile(cols, 99) - np.percentile(cols, 1)
    height = np.percentile(rows, 99) - np.percentile(rows, 1)
    assert width / height == pytest.approx(32.0 / 24.0, rel=0.08)


def test_slice_change_changes_image_and_text() -> None:
    vol = make_volume(*ACQUISITIONS["axial"])
    center = np.array([5.0, -20.0, 40.0])
    _i, _j, k = put_blob(vol, center, radius=1)
    img, scenes, state, plotter = render_planes(vol, cursor_lps=center)
    assert bright_spot(views(img)["axial"]) is not None
    assert scenes["axial"].info_text.GetInput().startswith(f"Axial {k} / 24")
    state.set_slice("axial", k + 5)
    after = render_image(plotter)
    plotter.close()
    assert scenes["axial"].info_text.GetInput().startswith(f"Axial {k + 5} / 24")
    # the blob is gone from the axial view, still in the others
    assert grey_mask(views(after)["axial"], 200)[30:-30, 30:-30].sum() == 0
    assert bright_spot(views(after)["coronal"]) is not None


def test_window_changes_grey_levels() -> None:
    vol = make_volume(*ACQUISITIONS["axial"])
    vol.array[:] = 100
    img, _, state, plotter = render_planes(vol, window=(100.0, 400.0))  # 100 -> mid grey
    mid = views(img)["axial"][SIZE // 2 - 20 : SIZE // 2 + 20, 40:80].mean()
    state.set_window(0.0, 400.0)  # 100 is now 3/4 of the way up
    brighter = views(render_image(plotter))["axial"][SIZE // 2 - 20 : SIZE // 2 + 20, 40:80].mean()
    plotter.close()
    assert 110 < mid < 145
    assert 175 < brighter < 205


@pytest.mark.parametrize("acq", ["axial", "anisotropic", "sagittal"])
def test_pick_inverts_the_projection(acq: str) -> None:
    vol = make_volume(*ACQUISITIONS[acq])
    _, scenes, state, plotter = render_planes(vol)
    rng = np.random.default_rng(3)
    shape = state.grid.shape
    for plane, scene in scenes.items():
        for _ in range(5):
            voxel = [int(rng.integers(0, n)) for n in shape]
            voxel[scene.axis] = state.slices[plane]
            x, y = scene.voxel_to_display(voxel)
            assert scene.pick(x, y) == tuple(voxel)
        assert scene.pick(1, 1) is None  # the corner is outside the image
    plotter.close()


def test_threshold_overlay_colours_voxels_at_or_above_threshold() -> None:
    vol = make_volume(*ACQUISITIONS["axial"])
    vol.array[:, :, :16] = 300  # patient's right half: at the threshold
    vol.array[:, :, 16:] = 299  # left half: just below
    _img, _, state, plotter = render_planes(vol, window=(300.0, 600.0))
    state.set_threshold(300)
    state.set_threshold_overlay(True)
    on = views(render_image(plotter))["axial"].astype(int)
    state.set_threshold_overlay(False)
    off = views(render_image(plotter))["axial"].astype(int)
    plotter.close()
    row = slice(SIZE // 2 - 10, SIZE // 2 + 10)
    right_half, left_half = on[row, 60:100], on[row, 140:180]  # screen left = patient right
    assert (right_half[..., 0] - right_half[..., 2]).mean() > 60  # tinted
    assert np.abs(left_half[..., 0] - left_half[..., 2]).mean() < 5  # grey
    assert np.abs(off[row, 60:100, 0] - off[row, 60:100, 2]).mean() < 5


def test_marked_slice_shows_badge_and_frame() -> None:
    vol = make_volume(*ACQUISITIONS["axial"])
    _, scenes, state, plotter = render_planes(vol)
    k = state.slices["axial"]
    scenes["axial"].set_marked({k: ["nodule"], k + 1: ["other"]})
    img = views(render_image(plotter))["axial"].astype(int)
    assert "nodule" in scenes["axial"].badge_text.GetInput()
    orange = (img[..., 0] > 200) & (img[..., 1] > 110) & (img[..., 1] < 190) & (img[..., 2] < 60)
    assert orange[:, :4].mean() > 0.5  # the frame runs down the left border
    state.set_slice("axial", k + 2)
    img = views(render_image(plotter))["axial"].astype(int)
    plotter.close()
    assert scenes["axial"].badge_text.GetInput() == ""
    assert not ((img[:, :4, 0] > 200) & (img[:, :4, 2] < 60)).any()


def test_scene_keeps_its_camera_on_a_pyvista_plotter() -> None:
    """The viewer embeds scenes in pyvista plotters, whose first render resets unset cameras."""
    from mprviewer.render.offscreen import pyvista_plotter

    vol = make_volume(*ACQUISITIONS["axial"])
    marker = np.array([5.0, -20.0, 40.0]) + np.array([9.0, -8.0, 9.0])  # left, anterior
    put_blob(vol, marker)
    grid = DisplayGrid.for_volume(vol)
    state = ViewerState(grid, window=(500.0, 1000.0))
    state.set_cursor(np.round(grid.lps_to_display(marker)))
    plotter = pyvista_plotter((SIZE, SIZE))
    scene = SliceScene(plotter, ImageStore(vol, grid), state, "axial")
    spot = bright_spot(render_image(plotter))
    x, y = scene.voxel_to_display(state.cursor)
    picked = scene.pick(x, y)
    plotter.close()
    assert spot is not None and spot[0] > SIZE / 2 and spot[1] < SIZE / 2
    assert picked == state.cursor


def test_other_planes_steps_redraw_a_view_only_when_its_crosshair_shows() -> None:
    """Each view on its own window, as in the viewer: an axial step draws the coronal view
    again when the crosshair line moves there, and not at all when the lines are hidden."""
    vol = make_volume(*ACQUISITIONS["axial"])
    grid = DisplayGrid.for_volume(vol)
    state = ViewerState(grid, window=(500.0, 1000.0))
    store = ImageStore(vol, grid)
    plotters = {plane: offscreen_plotter((SIZE, SIZE)) for plane in ("axial", "coronal")}
    scenes = {plane: SliceScene(plotters[plane], store, state, plane) for plane in plotters}
    renders = {plane: [] for plane in plotters}
    for plane, plotter in plotters.items():
        render_image(plotter)
        plotter.render_window.AddObserver("StartEvent",
                                          lambda *_, p=plane: renders[p].append(1))
    before = render_image(plotters["coronal"])
    renders["coronal"].clear()
    state.set_slice("axial", state.slices["axial"] + 5)
    assert len(renders["axial"]) == 1 and len(renders["coronal"]) == 1
    moved = render_image(plotters["coronal"])
    assert np.abs(moved.astype(int) - before).sum() > 0  # the horizontal line moved
    for scene in scenes.values():
        scene.set_crosshair_visible(False)
    hidden = render_image(plotters["coronal"])
    for counts in renders.values():
        counts.clear()
    state.set_slice("axial", state.slices["axial"] - 3)
    assert len(renders["axial"]) == 1 and renders["coronal"] == []
    np.testing.assert_array_equal(render_image(plotters["coronal"]), hidden)
    for scene in scenes.values():
        scene.close()
    for plotter in plotters.values():
        plotter.close()
