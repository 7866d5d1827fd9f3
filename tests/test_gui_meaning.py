"""What the window shows means what it should: the demo lesion's side, the crosshair's place,
the threshold in 2D and 3D, the 3D camera presets, the window/level entry and MR auto window."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from tests import gui_fixtures
from tests.gui_fixtures import BLOB_VALUE, blob_pixel, blob_volume, central, grey_mask

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui


def _shown(make_viewer, qtbot, volume=None):
    """The window on the blob volume, all three planes through the cube, 3D view built."""
    window = make_viewer()
    volume = volume if volume is not None else blob_volume()
    window.set_volume(volume)
    window.state.set_cursor(np.round(window.state.grid.lps_to_display(volume.blob_lps)))
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    return window, volume


def _pixels_per_mm(view) -> float:
    """Screen pixels per mm of a 2D view, from its parallel camera (not from the image)."""
    height = view.scene.renderer.GetSize()[1]
    return height / (2.0 * view.interactor.camera.parallel_scale)


def _solid(mask: np.ndarray, times: int = 2) -> np.ndarray:
    """``mask`` eroded by its 4-neighbours: a disc survives, thin rims and noise flecks not."""
    for _ in range(times):
        inner = mask.copy()
        inner[1:, :] &= mask[:-1, :]
        inner[:-1, :] &= mask[1:, :]
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        inner[[0, -1], :] = False
        inner[:, [0, -1]] = False
        mask = inner
    return mask


def _relative_centre(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    return cols.mean() / w - 0.5, rows.mean() / h - 0.5


# -- 1. the demo study, opened as a user opens it -------------------------------------------
def test_demo_lesion_shows_on_the_side_its_lps_position_says(make_viewer, qtbot):
    from mprviewer.synthetic.demo import DEMO_LESION_LPS, DEMO_LESION_RADIUS_MM
    from mprviewer.synthetic.phantom import LESION_HU

    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=60000):
        window.open_source("demo")  # scan and read in the worker thread, as File > Open Demo
    volume, state = window.volume, window.state
    lesion = np.asarray(DEMO_LESION_LPS)
    nk, nj, ni = volume.shape
    centre = volume.ijk_to_lps(np.array([(ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2]))
    offset = lesion - centre
    # Where each plane's screen puts the lesion, from LPS alone: x > 0 is the patient's left,
    # shown on the screen's right in axial and coronal; y < 0 (anterior) is the top of the
    # axial view, z > 0 (superior) the top of the coronal view.
    expected = {
        "axial": (np.sign(offset[0]), np.sign(offset[1])),
        "coronal": (np.sign(offset[0]), -np.sign(offset[2])),
    }
    assert expected["axial"][0] != 0 and expected["axial"][1] != 0 and expected["coronal"][1] != 0
    state.set_cursor(np.round(state.grid.lps_to_display(lesion)))
    # The lesion's HU mid grey: lung and soft tissue black, bone white.
    state.set_window(float(LESION_HU), 300.0)
    away_mm = DEMO_LESION_RADIUS_MM + 8.0  # a slice that misses the lesion
    for plane, (side_x, side_y) in expected.items():
        view = window.views.slice_views[plane]
        view.scene.set_crosshair_visible(False)  # its lines would cut the lesion in four
        index = state.slices[plane]
        here = grey_mask(central(view.grab_image()), lo=60, hi=200)
        spacing = window.store.spacing[{"axial": 2, "coronal": 1}[plane]]
        state.set_slice(plane, index + round(away_mm / spacing))
        away = grey_mask(central(view.grab_image()), lo=60, hi=200)
        state.set_slice(plane, index)
        # What is there only in the lesion's slice, and solid (not bone rims, not noise).
        lesion_mask = _solid(here & ~away)
        w = lesion_mask.shape[1]
        on_right, on_left = lesion_mask[:, w // 2 :].sum(), lesion_mask[:, : w // 2].sum()
        assert lesion_mask.sum() > 50, f"{plane}: the lesion is not on screen"
        screen_side = 1 if on_right and not on_left else -1 if on_left and not on_right else 0
        assert screen_side == side_x, f"{plane}: lesion right {on_right} px, left {on_left} px"
        x, y = _relative_centre(lesion_mask)
        assert np.sign(x) == side_x and abs(x) > 0.1
        assert np.sign(y) == side_y and abs(y) > 0.05
        # It is the lesion: about its true diameter across (less the erosion) at this scale.
        cols = np.nonzero(lesion_mask.any(axis=0))[0]
        diameter_px = 2 * DEMO_LESION_RADIUS_MM * _pixels_per_mm(view)
        assert 0.5 * diameter_px < cols.max() - cols.min() + 1 < 1.1 * diameter_px


# -- 2. one threshold, two consumers ------------------------------------------------------
def test_threshold_control_drives_2d_overlay_and_3d_opacity(make_viewer, qtbot):
    window, volume = _shown(make_viewer, qtbot)
    state, controls = window.state, window.controls
    controls.overlay.setChecked(True)
    controls.opacity.setChecked(True)
    scene3d = window.views.volume_view.scene
    assert scene3d.volume is not None and scene3d.volume.GetVisibility()
    opacity = scene3d.volume.GetProperty().GetScalarOpacity()
    lo, hi = volume.value_range()
    axial = window.views.slice_views["axial"]

    def overlay_pixels():
        image = central(axial.grab_image()).astype(int)
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        return (r - b > 50) & (r - g > 30)  # the orange-red overlay, not grey nor lines

    def check(threshold):
        assert state.threshold == threshold
        assert opacity.GetValue(threshold) == 0.0
        for value in (lo, (lo + threshold) / 2, threshold - 1):
            assert opacity.GetValue(value) == 0.0, value
        for value in (threshold + 1, (threshold + hi) / 2, hi):
            assert opacity.GetValue(value) > 0.0, value

    check(state.threshold)  # the CT default: 300 HU
    state.set_slice("axial", 3)  # through the dimmer slab, below the threshold
    slab_value = float(volume.array[3, 27, 24])
    assert 200 < slab_value < state.threshold
    assert overlay_pixels().sum() == 0
    assert opacity.GetValue(slab_value) == 0.0
    # The user drags the threshold slider to 200 HU: the slab is coloured and opaque now.
    slider = controls.threshold_slider
    position = round((200 - lo) / (hi - lo) * (slider.maximum() - slider.minimum()))
    slider.setValue(position)
    check(200.0)
    assert controls.threshold_box.value() == 200
    assert overlay_pixels().sum() > 50
    assert opacity.GetValue(slab_value) > 0.0
    # And the number box, in the cube's slice: just below, at, and above the cube's value.
    state.set_cursor(np.round(state.grid.lps_to_display(volume.blob_lps)))
    controls.threshold_box.setValue(BLOB_VALUE - 10)
    check(BLOB_VALUE - 10.0)
    assert overlay_pixels().sum() > 50 and opacity.GetValue(BLOB_VALUE) > 0.0
    controls.threshold_box.setValue(BLOB_VALUE)
    assert overlay_pixels().sum() > 50  # at the threshold: coloured in 2D (>=)
    assert opacity.GetValue(BLOB_VALUE) == 0.0  # and transparent in 3D (only above)
    assert f"opaque from {BLOB_VALUE} HU" in scene3d.info_text.GetInput()


# -- 3. the crosshair sits where the other planes are -------------------------------------
def _line_place(image: np.ndarray, colour: tuple[float, float, float], axis: int) -> float:
    """Column (axis 0: a vertical line) or row (axis 1: horizontal) of the line of ``colour``
    (0..1 RGB), looked for in the middle of the view, away from the edge letters."""
    h, w = image.shape[:2]
    top, left = int(h * 0.14), int(w * 0.08)
    target = np.asarray(colour) * 255
    mask = np.abs(central(image).astype(int) - target).max(axis=2) < 40
    counts = mask.sum(axis=axis)
    best = int(np.argmax(counts))
    assert counts[best] > 0.5 * mask.shape[axis], "no such line"
    near = np.arange(max(best - 1, 0), min(best + 2, counts.size))
    return (left, top)[axis] + float(np.average(near, weights=counts[near]))


def _line_column(image: np.ndarray, colour: tuple[float, float, float]) -> float:
    return _line_place(image, colour, 0)


def _line_row(image: np.ndarray, colour: tuple[float, float, float]) -> float:
    return _line_place(image, colour, 1)


def test_crosshair_lines_sit_at_the_other_planes_slices(make_viewer, qtbot):
    from mprviewer.render.planes import PLANE_COLORS

    window, _ = _shown(make_viewer, qtbot)
    state = window.state
    axial = window.views.slice_views["axial"]
    image = axial.grab_image()
    height = image.shape[0]
    scene = axial.scene

    def expected_pixel():
        x, y = scene.voxel_to_display(state.cursor)
        return x, height - 1 - y  # VTK's display y runs up, image rows down

    col = _line_column(image, PLANE_COLORS["sagittal"])
    row = _line_row(image, PLANE_COLORS["coronal"])
    ex, ey = expected_pixel()
    assert abs(col - ex) <= 1.5 and abs(row - ey) <= 1.5
    # The cursor is on the cube: the lines cross at the grey cube's centre on screen.
    bx, by = blob_pixel(image)
    per_voxel = _pixels_per_mm(axial)  # 1 mm voxels
    assert abs(col - bx) <= 0.5 * per_voxel + 1.5 and abs(row - by) <= 0.5 * per_voxel + 1.5

    # Ten sagittal slices toward the patient's right: the vertical line moves 10 mm left.
    start = state.slices["sagittal"]
    state.set_slice("sagittal", start - 10)
    assert state.slices["sagittal"] == start - 10
    moved = axial.grab_image()
    new_col = _line_column(moved, PLANE_COLORS["sagittal"])
    assert col - new_col == pytest.approx(10 * window.store.spacing[0] * per_voxel, abs=1.5)
    assert abs(new_col - expected_pixel()[0]) <= 1.5
    assert _line_row(moved, PLANE_COLORS["coronal"]) == pytest.approx(row, abs=0.5)
    # Five coronal slices toward posterior: the horizontal line moves down.
    coronal = state.slices["coronal"] + 5
    state.set_slice("coronal", coronal)
    assert state.slices["coronal"] == coronal
    new_row = _line_row(axial.grab_image(), PLANE_COLORS["coronal"])
    assert new_row - row == pytest.approx(5 * window.store.spacing[1] * per_voxel, abs=1.5)


# -- 5. 3D camera presets -------------------------------------------------------------------
# Where the camera sits (from the volume centre) and which way is up, in LPS: x toward the
# patient's Left, y Posterior, z Superior.
CAMERA_MEANING = {
    "anterior": ((0, -1, 0), (0, 0, 1)),  # in front, head up
    "posterior": ((0, 1, 0), (0, 0, 1)),  # behind, head up
    "left": ((1, 0, 0), (0, 0, 1)),
    "right": ((-1, 0, 0), (0, 0, 1)),
    "superior": ((0, 0, 1), (0, -1, 0)),  # above the head, anterior at the top
    "inferior": ((0, 0, -1), (0, -1, 0)),  # below the feet, anterior at the top
}
# Which screen side the cube (patient's left, anterior, superior) is on from each camera:
# (horizontal, vertical) with +1 = right / top.
CUBE_ON_SCREEN = {
    "anterior": (1, 1),  # facing the patient: their left is on our right
    "posterior": (-1, 1),  # from behind: their left is on our left
    "left": (-1, 1),  # from their left side: anterior is on our left
    "right": (1, 1),  # from their right side: anterior is on our right
    "superior": (-1, 1),  # from above, anterior up: their left is on our left
    "inferior": (1, 1),  # from below, anterior up: their left is on our right
}


def test_camera_buttons_look_from_the_named_side(make_viewer, qtbot):
    window, volume = _shown(make_viewer, qtbot)
    scene = window.views.volume_view.scene
    renderer = scene.renderer
    camera = renderer.GetActiveCamera()
    nk, nj, ni = volume.shape
    corners_ijk = np.array([[i, j, k] for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5)
                            for k in (-0.5, nk - 0.5)])
    corners = volume.ijk_to_lps(corners_ijk)
    centre = corners.mean(axis=0)

    def screen(point):
        renderer.SetWorldPoint(*point, 1.0)
        renderer.WorldToDisplay()
        return np.asarray(renderer.GetDisplayPoint()[:2])

    def check_framed():
        """Centred, and filling the view (the preset zooms in a little past a tight fit)."""
        assert np.allclose(camera.GetFocalPoint(), centre, atol=1e-6)
        size = np.asarray(renderer.GetSize(), dtype=float)
        assert np.allclose(screen(centre), size / 2, atol=1.0)
        points = np.array([screen(c) for c in corners]) / size
        assert points.min() > -0.05 and points.max() < 1.05, "the volume does not fit"
        assert (points.max(axis=0) - points.min(axis=0)).max() > 0.6, "the volume is tiny"

    initial = (camera.GetPosition(), camera.GetViewUp())
    for name, (where, up) in CAMERA_MEANING.items():
        window.controls.camera_buttons[name].click()
        towards = np.subtract(camera.GetPosition(), camera.GetFocalPoint())
        towards /= np.linalg.norm(towards)
        assert np.allclose(towards, where, atol=1e-6), name
        assert np.allclose(camera.GetViewUp(), up, atol=1e-6), name
        check_framed()
        cube = screen(volume.blob_lps) - screen(centre)
        assert tuple(np.sign(cube).astype(int)) == CUBE_ON_SCREEN[name], name

    # Rotate by hand, then Reset: back to the view the 3D window opened with, from the
    # patient's front, left and above.
    camera.Azimuth(70)
    camera.Elevation(20)
    window.controls.camera_buttons["reset"].click()
    assert np.allclose(camera.GetPosition(), initial[0], atol=1e-6)
    assert np.allclose(camera.GetViewUp(), initial[1], atol=1e-6)
    towards = np.subtract(camera.GetPosition(), camera.GetFocalPoint())
    assert towards[0] > 0 and towards[1] < 0 and towards[2] > 0
    check_framed()


# -- 9. window / level ------------------------------------------------------------------------
def _type_into(qtbot, box, text):
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)
    qtbot.keyClick(box.lineEdit(), Qt.Key_Return)


def test_typed_window_and_level_change_grey_levels(make_viewer, qtbot):
    window, volume = _shown(make_viewer, qtbot)
    axial = window.views.slice_views["axial"]
    x, y = (round(v) for v in blob_pixel(axial.grab_image()))

    def cube_grey():
        return axial.grab_image()[y + 5 : y + 12, x + 5 : x + 12].mean()  # off the crosshair

    def expected(center, width):
        return 255 * np.clip((BLOB_VALUE - (center - width / 2)) / width, 0, 1)

    assert cube_grey() == pytest.approx(expected(*volume.window), abs=8)
    controls = window.controls
    _type_into(qtbot, controls.center, "300")
    assert window.state.window_center == 300.0
    assert cube_grey() == pytest.approx(expected(300, volume.window[1]), abs=8)
    _type_into(qtbot, controls.width_box, "2000")
    assert (window.state.window_center, window.state.window_width) == (300.0, 2000.0)
    assert cube_grey() == pytest.approx(expected(300, 2000), abs=8)
    assert controls.preset.currentData() == "custom"
    _type_into(qtbot, controls.center, "900")
    assert cube_grey() == pytest.approx(expected(900, 2000), abs=8)
    _type_into(qtbot, controls.width_box, "200")  # 800..1000: the cube is below it, black
    assert cube_grey() < 8


def test_mr_series_gets_a_window_from_its_percentiles(make_viewer, qtbot, tmp_path):
    from mprviewer.synthetic.writer import write_series

    # An MR-like ramp 100..1100 across the columns, and a few very bright voxels that a
    # min/max window would let squash the ramp to black.
    nk, nj, ni = 10, 40, 50
    array = np.broadcast_to(np.linspace(100, 1100, ni).round(), (nk, nj, ni)).astype(np.int16)
    array = array.copy()
    array[:, 0, :6] = 30000  # 0.3 % of the voxels, in one edge row
    write_series(tmp_path / "mr", array, modality="MR", seed=3, description="T1")
    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(tmp_path / "mr"))
    volume, state = window.volume, window.state
    assert volume.modality == "MR" and volume.window is None  # no window in the files
    lo, hi = np.percentile(volume.array, [0.5, 99.5])
    assert hi < 1200  # the outliers are beyond the 99.5th percentile
    assert state.window_center == pytest.approx((lo + hi) / 2)
    assert state.window_width == pytest.approx(hi - lo)
    names = window.controls.preset_names()
    assert "auto" in names and "lung" not in names and "bone" not in names  # no CT presets
    assert window.controls.preset.currentData() == "auto"  # the box says where it came from
    # On screen: the ramp uses the whole grey scale, its middle is mid grey.
    axial = window.views.slice_views["axial"]
    image = axial.grab_image()
    height = image.shape[0]

    def grey_at_column(i):
        xyz = state.grid.ijk_to_display((i, nj // 2 + 6, 0))  # off the crosshair
        xyz[2] = state.slices["axial"]
        px, py = axial.scene.voxel_to_display(xyz)
        return image[round(height - 1 - py), round(px)].mean()

    values = array[0, nj // 2 + 6]
    for i in (2, ni // 2, ni - 3):
        want = 255 * np.clip((values[i] - (state.window_center - state.window_width / 2))
                             / state.window_width, 0, 1)
        assert grey_at_column(i) == pytest.approx(want, abs=10), i
    assert grey_at_column(0) < 15 and grey_at_column(ni - 1) > 240


# -- marks: one colour per label in 2D, as in 3D ------------------------------------------
def test_a_marked_slice_is_framed_in_its_labels_colour(make_viewer, qtbot):
    from mprviewer.render.overlays import LABEL_COLORS, MARK_COLOR

    window, _ = _shown(make_viewer, qtbot)
    window.set_marked("axial", {3: ["Bleeding"], 7: ["Tumour"]})
    window.set_marked("coronal", {5: ["Tumour"]})
    axial = window.views.slice_views["axial"]
    # Sorted labels on screen take the colours in order, in 2D as for the 3D slabs.
    tumour = LABEL_COLORS[1]
    assert tumour != MARK_COLOR

    def frame_colour(index):
        window.state.set_slice("axial", index)
        image = axial.grab_image().astype(float) / 255.0
        h = image.shape[0]
        edge = image[h // 3: 2 * h // 3, 1:6].reshape(-1, 3)  # the left side of the frame
        coloured = edge[edge.max(axis=1) - edge.min(axis=1) > 0.3]
        assert len(coloured) > 20, f"slice {index}: no frame on the left edge"
        return np.median(coloured, axis=0)

    assert np.allclose(frame_colour(7), tumour, atol=0.08)
    assert np.allclose(frame_colour(3), MARK_COLOR, atol=0.08)
    ticks = axial.slider.mark_colors
    assert ticks[7].getRgbF()[:3] == pytest.approx(tumour, abs=0.01)
    assert ticks[3].getRgbF()[:3] == pytest.approx(MARK_COLOR, abs=0.01)
    coronal = window.views.slice_views["coronal"].slider.mark_colors
    assert coronal[5].getRgbF()[:3] == pytest.approx(tumour, abs=0.01)
