"""The viewer window on a small volume: orientation on screen, scrolling, clicking, linking."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, QPointF, Qt
from PyQt5.QtGui import QWheelEvent
from PyQt5.QtWidgets import QApplication

from tests import gui_fixtures
from tests.gui_fixtures import BLOB_VALUE, blob_pixel, blob_volume, central, grey_mask

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui


def _shown(make_viewer, qtbot, flip_i=True):
    window = make_viewer()
    volume = blob_volume(flip_i=flip_i)
    window.set_volume(volume)
    state = window.state
    # Put all three planes through the cube's centre.
    state.set_cursor(np.round(state.grid.lps_to_display(volume.blob_lps)))
    qtbot.waitUntil(lambda: window.is_3d_ready or window.views.volume_view.info.text() != "",
                    timeout=10000)
    return window, volume


def _blob_centre(view):
    """(column, row) of the cube's grey pixels relative to the view centre, in [-0.5, 0.5]."""
    image = central(view.grab_image())
    mask = grey_mask(image)
    assert mask.sum() > 50, f"{view.plane}: the cube is not on screen"
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    return cols.mean() / w - 0.5, rows.mean() / h - 0.5


@pytest.mark.parametrize("flip_i", [True, False])
def test_patient_left_shows_on_screen_right(make_viewer, qtbot, flip_i):
    window, _ = _shown(make_viewer, qtbot, flip_i)
    views = window.views.slice_views
    ax_x, ax_y = _blob_centre(views["axial"])
    co_x, co_y = _blob_centre(views["coronal"])
    sa_x, sa_y = _blob_centre(views["sagittal"])
    # Left on the right in axial and coronal; anterior at the top of axial.
    assert ax_x > 0.1 and co_x > 0.1
    assert ax_y < -0.1
    # Superior up in coronal and sagittal; anterior on the left of sagittal.
    assert co_y < -0.1 and sa_y < -0.1
    assert sa_x < -0.1


def _wheel(widget, steps):
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False,
    )
    QApplication.sendEvent(widget, event)


def test_wheel_and_keys_step_slices_and_change_the_image(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    view = window.views.slice_views["axial"]
    state = window.state
    start = state.slices["axial"]
    before = central(view.grab_image())
    assert grey_mask(before).sum() > 50  # through the cube

    _wheel(view.interactor, 3)
    assert state.slices["axial"] == start + 3
    assert view.slider.value() == start + 3
    assert view.info.text().startswith(f"{start + 3} /")

    view.interactor.setFocus()
    qtbot.keyClick(view.interactor, Qt.Key_PageDown)
    assert state.slices["axial"] == start + 3 - 10
    qtbot.keyClick(view.interactor, Qt.Key_Down)
    assert state.slices["axial"] == start + 3 - 11
    after = central(view.grab_image())
    # Below the cube: no cube grey left, and the dimmer slab is not there either.
    assert grey_mask(after).sum() == 0
    assert np.abs(after.astype(int) - before.astype(int)).sum() > 0
    qtbot.keyClick(view.interactor, Qt.Key_Home)
    assert state.slices["axial"] == 0


def test_click_in_axial_moves_coronal_and_sagittal(make_viewer, qtbot):
    window, volume = _shown(make_viewer, qtbot)
    state = window.state
    state.set_cursor((0, 0, state.slices["axial"]))  # planes away from the cube
    axial = window.views.slice_views["axial"]
    x, y = blob_pixel(axial.grab_image())
    target = QPoint(round(x), round(y))
    qtbot.mouseClick(axial.interactor, Qt.LeftButton, pos=target)
    expected = state.grid.lps_to_display(volume.blob_lps)
    assert abs(state.slices["sagittal"] - expected[0]) <= 1.0
    assert abs(state.slices["coronal"] - expected[1]) <= 1.0
    sliders = window.views.slice_views
    assert sliders["sagittal"].slider.value() == state.slices["sagittal"]
    assert sliders["coronal"].slider.value() == state.slices["coronal"]
    # The sagittal view now cuts through the cube.
    assert grey_mask(central(sliders["sagittal"].grab_image())).sum() > 50


def test_moving_a_plane_widget_updates_the_2d_view_and_slider(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    sagittal = window.views.slice_views["sagittal"]
    before = central(sagittal.grab_image())
    assert grey_mask(before).sum() > 50
    # Drag the 3D sagittal plane: move its representation and fire the widget's event.
    widget = window.views.volume_view.scene._widgets["sagittal"]
    rep = widget.GetRepresentation()
    origin = list(rep.GetOrigin())
    origin[0] = window.store.plane_position_mm("sagittal", 2)
    rep.SetOrigin(*origin)
    widget.InvokeEvent("InteractionEvent")
    assert window.state.slices["sagittal"] == 2
    assert sagittal.slider.value() == 2
    assert sagittal.info.text().startswith("2 /")
    assert grey_mask(central(sagittal.grab_image())).sum() == 0  # off the cube now
    # And back: the slider moves the 3D plane.
    sagittal.slider.setValue(7)
    assert window.state.slices["sagittal"] == 7
    assert rep.GetOrigin()[0] == pytest.approx(window.store.plane_position_mm("sagittal", 7))


def test_window_preset_changes_grey_levels(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    axial = window.views.slice_views["axial"]
    x, y = (round(v) for v in blob_pixel(axial.grab_image()))

    def cube_grey():
        # Off the crosshair, which crosses at the cube centre.
        return axial.grab_image()[y + 5 : y + 12, x + 5 : x + 12].mean()

    grey = cube_grey()
    controls = window.controls
    assert "bone" in controls.preset_names() and "lung" in controls.preset_names()
    controls.apply_preset("bone")  # centre 400, width 1800: 500 HU a little above mid grey
    assert (window.state.window_center, window.state.window_width) == (400.0, 1800.0)
    assert controls.center.value() == 400 and controls.width_box.value() == 1800
    bone = cube_grey()
    controls.apply_preset("lung")  # -600 / 1500: 500 HU is above the window, white
    lung = cube_grey()
    assert abs(grey - 255 * 0.5) < 8  # the file's window: 500 / 1000
    assert abs(bone - 255 * (BLOB_VALUE - (400 - 900)) / 1800) < 8
    assert lung > 250


def test_right_drag_changes_window_and_level(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    axial = window.views.slice_views["axial"].interactor
    c0, w0 = window.state.window_center, window.state.window_width
    qtbot.mousePress(axial, Qt.RightButton, pos=QPoint(100, 100))
    from PyQt5.QtGui import QMouseEvent

    move = QMouseEvent(QMouseEvent.MouseMove, QPointF(160, 130), Qt.RightButton,
                       Qt.RightButton, Qt.NoModifier)
    QApplication.sendEvent(axial, move)
    qtbot.mouseRelease(axial, Qt.RightButton, pos=QPoint(160, 130))
    assert window.state.window_width > w0  # dragged right: wider
    assert window.state.window_center > c0  # dragged down: higher level
    assert window.controls.width_box.value() == pytest.approx(window.state.window_width)


def test_status_bar_reads_voxel_under_the_mouse(make_viewer, qtbot):
    window, volume = _shown(make_viewer, qtbot)
    axial = window.views.slice_views["axial"]
    from PyQt5.QtGui import QMouseEvent

    pos = QPointF(*blob_pixel(axial.grab_image()))
    QApplication.sendEvent(axial.interactor, QMouseEvent(
        QMouseEvent.MouseMove, pos, Qt.NoButton, Qt.NoButton, Qt.NoModifier))
    text = window.status.cursor_label.text()
    assert f"value {BLOB_VALUE} HU" in text
    i, j, k = (int(v) for v in text.split("voxel i,j,k ")[1].split("|")[0].split(","))
    assert volume.array[k, j, i] == BLOB_VALUE
    # The patient position is that voxel's place through the volume's affine (columns run
    # toward the patient's right here, so display order and LPS disagree), and near the cube.
    lps = _status_lps(text)
    assert np.allclose(lps, volume.ijk_to_lps(np.array([i, j, k], float)), atol=0.051)
    assert np.abs(lps - volume.blob_lps).max() <= 2.0  # within a voxel or two (2 mm slices)

    # Another view, another point: the sagittal view's top left part of the image.
    sagittal = window.views.slice_views["sagittal"]
    target = QPointF(sagittal.interactor.width() * 0.3, sagittal.interactor.height() * 0.3)
    xyz = sagittal.pick(target.toPoint())
    assert xyz is not None
    QApplication.sendEvent(sagittal.interactor, QMouseEvent(
        QMouseEvent.MouseMove, target, Qt.NoButton, Qt.NoButton, Qt.NoModifier))
    qtbot.waitUntil(lambda: window.status.cursor_label.text().startswith("sagittal:"),
                    timeout=2000)
    text = window.status.cursor_label.text()
    i, j, k = (int(v) for v in text.split("voxel i,j,k ")[1].split("|")[0].split(","))
    lps = _status_lps(text)
    assert np.allclose(lps, volume.ijk_to_lps(np.array([i, j, k], float)), atol=0.051)
    # The sagittal plane is the cursor's; up on screen is superior, left is anterior.
    centre = volume.ijk_to_lps(np.array([(n - 1) / 2 for n in volume.shape[::-1]]))
    assert lps[0] == pytest.approx(window.store.plane_position_mm(
        "sagittal", window.state.slices["sagittal"]))
    assert lps[1] < centre[1] and lps[2] > centre[2]
    assert f"value {volume.array[k, j, i]} HU" in text


def _status_lps(text):
    """The 'LPS x, y, z mm' part of the status bar text, as numbers."""
    part = text.split("LPS ")[1].split(" mm")[0]
    return np.array([float(v) for v in part.split(",")])


def test_double_click_maximises_and_restores(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    coronal = window.views.slice_views["coronal"]
    qtbot.mouseDClick(coronal.interactor, Qt.LeftButton, pos=QPoint(50, 50))
    assert window.views.maximised == "coronal"
    assert coronal.isVisible() and not window.views.slice_views["axial"].isVisible()
    qtbot.mouseDClick(coronal.interactor, Qt.LeftButton, pos=QPoint(50, 50))
    assert window.views.maximised is None
    assert all(v.isVisible() for v in window.views.views.values())


def test_marks_show_on_slider_view_and_3d(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    axial = window.views.slice_views["axial"]
    current = window.state.slices["axial"]
    plain = axial.grab_image()
    window.set_marked("axial", {current: ["Anomaly"], 3: ["Bleed"]})
    assert axial.slider.marks == [3, current]
    assert window.views.volume_view.marked_axial == [3, current]
    marked = axial.grab_image()
    # The marked slice gets a coloured frame/badge: pixels change outside the image centre.
    assert np.abs(marked.astype(int) - plain.astype(int)).sum() > 0
    slider_image = axial.slider.grab().toImage()
    assert any(
        slider_image.pixelColor(x, y).red() > 200 and slider_image.pixelColor(x, y).blue() < 90
        for x in range(slider_image.width()) for y in range(slider_image.height())
    )


def test_screenshot_action_captures_the_rendered_views(make_viewer, qtbot, tmp_path):
    from PyQt5.QtGui import QImage

    window, _ = _shown(make_viewer, qtbot)
    path = window.save_screenshot(tmp_path / "shot")
    assert path.suffix == ".png"
    image = QImage(str(path))
    assert (image.width(), image.height()) == (window.width(), window.height())
    from mprviewer.gui.views import qimage_to_array

    pixels = qimage_to_array(image)
    axial = window.views.slice_views["axial"].interactor
    top_left = axial.mapTo(window, QPoint(0, 0))
    region = pixels[top_left.y() : top_left.y() + axial.height(),
                    top_left.x() : top_left.x() + axial.width()]
    assert grey_mask(central(region)).sum() > 50  # the GL content, not a black hole


def test_empty_window_shows_how_to_open(make_viewer, qtbot):
    window = make_viewer()
    assert window.central.currentWidget() is window.welcome
    window.set_volume(blob_volume())
    assert window.central.currentWidget() is window.views


def test_view_command_input_errors(capsys):
    from mprviewer.cli import main

    assert main(["view", "/no/such/folder"]) == 3
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["view", "demo", "--preset", "sunset"]) == 2
    assert "unknown --preset" in capsys.readouterr().err
    assert main(["view", "--screenshot", "x.png"]) == 2


def test_zoom_pan_and_reset(make_viewer, qtbot):
    window, _ = _shown(make_viewer, qtbot)
    view = window.views.slice_views["coronal"]
    camera = view.interactor.camera
    scale, focal = camera.parallel_scale, tuple(camera.focal_point)
    slice_before = window.state.slices["coronal"]
    event = QWheelEvent(
        QPointF(40, 40), QPointF(40, 40), QPoint(0, 0), QPoint(0, 240),
        Qt.NoButton, Qt.ControlModifier, Qt.NoScrollPhase, False,
    )
    QApplication.sendEvent(view.interactor, event)
    assert camera.parallel_scale < scale * 0.9  # zoomed in
    assert window.state.slices["coronal"] == slice_before  # Ctrl+wheel does not scroll
    qtbot.mousePress(view.interactor, Qt.MiddleButton, pos=QPoint(50, 50))
    from PyQt5.QtGui import QMouseEvent

    QApplication.sendEvent(view.interactor, QMouseEvent(
        QMouseEvent.MouseMove, QPointF(90, 50), Qt.MiddleButton, Qt.MiddleButton,
        Qt.NoModifier))
    qtbot.mouseRelease(view.interactor, Qt.MiddleButton, pos=QPoint(90, 50))
    moved = np.subtract(camera.focal_point, focal)
    # Coronal: screen right is the patient's left (+x); dragging right moves the view
    # centre toward the patient's right (-x), so the image follows the mouse.
    assert moved[0] < 0 and abs(moved[1]) < 1e-6
    view.interactor.setFocus()
    qtbot.keyClick(view.interactor, Qt.Key_R)
    assert camera.parallel_scale == pytest.approx(scale)
    # In-plane centre restored (the depth follows the current slice).
    assert np.allclose(np.take(camera.focal_point, [0, 2]), np.take(focal, [0, 2]))


def test_recent_menu_reopens_a_study(make_viewer, qtbot, tmp_path):
    from mprviewer.gui import open_dialogs

    open_dialogs.remember_source(str(tmp_path / "a"))
    open_dialogs.remember_source([str(tmp_path / "b1.dcm"), str(tmp_path / "b2.dcm")])
    open_dialogs.remember_source(str(tmp_path / "a"))
    assert open_dialogs.recent_sources() == [
        str(tmp_path / "a"), [str(tmp_path / "b1.dcm"), str(tmp_path / "b2.dcm")]
    ]
    window = make_viewer()
    window.recent_menu.rebuild()
    actions = [a for a in window.recent_menu.actions() if a.text().startswith("&1")]
    assert actions and str(tmp_path / "a")[-20:] in actions[0].text()
    opened = []
    window.open_source = opened.append  # what the menu item asks for
    window.recent_menu.rebuild()
    next(a for a in window.recent_menu.actions() if a.text().startswith("&2")).trigger()
    assert opened == [[str(tmp_path / "b1.dcm"), str(tmp_path / "b2.dcm")]]


def test_2d_frames_come_before_the_3d_scene(make_viewer, qtbot):
    window = make_viewer()
    seen = []
    window.first_frame_shown.connect(
        lambda _s: seen.append(window.views.volume_view.scene is None)
    )
    window.set_volume(blob_volume())
    assert window.views.volume_view.scene is None  # nothing 3D before the event loop runs
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    assert seen == [True]
    scene = window.views.volume_view.scene
    assert scene.volume is None  # the opacity volume waits for its toggle
    window.controls.opacity.setChecked(True)
    assert window.state.volume_opacity and scene.volume is not None
    assert window.act_opacity.isChecked()
