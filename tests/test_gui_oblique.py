"""Oblique series and oblique reformat in the window: a tilted cylinder shows as a circle
resliced (and on its acquisition grid once a crosshair is turned to match the tilt), turning
the axial crosshair by 30 degrees tilts the coronal plane by 30 degrees about the axial normal
with letters and 3D plane to match, Reset undoes it, and marks are refused while the planes
are not the acquisition's own orthogonal slices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, Qt

from mprviewer.gui.annotation_controller import install_annotations
from mprviewer.gui.measure_tools import install_measure_tools
from mprviewer.gui.oblique_tools import install_oblique_tools
from tests import gui_fixtures
from tests.test_render_oblique import _blob_aspect, tilted_cylinder

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer


@pytest.fixture
def oblique_study(tmp_path: Path) -> Path:
    from mprviewer.synthetic.writer import write_series

    vol = tilted_cylinder()  # 30 degrees about the patient's left-right axis
    write_series(tmp_path / "study" / "obl", vol.array, affine=vol.affine, seed=4,
                 window=(500, 1000))
    return tmp_path / "study"


def _open(make_viewer, qtbot, folder: Path, grid: str = "patient"):
    window = make_viewer(size=(1100, 800))
    annotations = install_annotations(window)
    install_measure_tools(window)
    tools = install_oblique_tools(window, grid)
    window.activateWindow()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(folder))
    if grid == "patient":
        qtbot.waitUntil(lambda: tools.resliced is not None and window.volume is tools.resliced,
                        timeout=30000)
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=30000)
    return window, annotations, tools


def _axial_aspect(window) -> float:
    return _blob_aspect(window.views.slice_views["axial"].grab_image())


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def test_oblique_series_is_resliced_by_default_and_g_switches_to_its_grid(
        make_viewer, qtbot, oblique_study):
    window, annotations, tools = _open(make_viewer, qtbot, oblique_study)
    axial = window.views.slice_views["axial"]
    # Resliced onto the patient's axes: the cylinder along S is a circle in the axial view.
    assert _axial_aspect(window) == pytest.approx(1.0, abs=0.06)
    assert "resliced, acquired oblique 30°" in axial.scene.info_text.GetInput()
    # Marking is refused there, says why, and changes nothing.
    before = annotations.aset.marked_labels(annotations.ref.uid, annotations.ref.name, "axial")
    with qtbot.waitSignal(annotations.message) as said:
        qtbot.keyClick(axial.interactor, Qt.Key_M)
    assert "acquisition grid" in said.args[0] and said.args[1]
    assert annotations.aset.marked_labels(
        annotations.ref.uid, annotations.ref.name, "axial") == before
    assert window.views.slice_views["axial"].marked == {}

    # G: the acquisition grid, where the same tilted cylinder is an ellipse and marks work.
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        qtbot.keyClick(axial.interactor, Qt.Key_G)
    assert window.volume is tools.acquired and tools.checkbox.isChecked()
    assert "acquisition grid, oblique 30°" in axial.scene.info_text.GetInput()
    assert _axial_aspect(window) > 1.1
    assert annotations.toggle_current("axial") is True
    index = window.state.slices["axial"]
    assert index in window.views.slice_views["axial"].marked

    # The checkbox goes back to the patient's axes; the mark is kept but not drawn there.
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        tools.checkbox.setChecked(False)
    assert window.volume is tools.resliced
    assert window.views.slice_views["axial"].marked == {}
    assert index in annotations.aset.slices_for(annotations.ref.uid, annotations.ref.name,
                                                "axial")


def test_turning_the_axial_crosshair_tilts_coronal_and_sagittal(make_viewer, qtbot,
                                                                 oblique_study):
    window, annotations, tools = _open(make_viewer, qtbot, oblique_study)
    axial, coronal = window.views.slice_views["axial"], window.views.slice_views["coronal"]
    assert coronal.scene.letters.actors["right"].GetInput() == "L"

    # Ctrl+drag around the crosshair by 30 degrees counter-clockwise on the screen.
    from mprviewer.render.oblique import crosshair_point

    def widget_pos(deg: float) -> QPoint:
        """150 px from the crosshair at ``deg`` counter-clockwise, found on a fresh frame (the
        panels may still be settling, and a resized view refits its camera)."""
        axial.grab_image()
        cx, cy = axial.scene.world_to_display(crosshair_point(axial.scene.store,
                                                              window.state.slices))
        scale = axial.interactor.devicePixelRatioF()
        h = axial.interactor.height()
        t = math.radians(deg)
        x, y = cx + 150 * math.cos(t), cy + 150 * math.sin(t)
        return QPoint(round(x / scale), round(h - 1 - y / scale))

    # Let the panels settle (a late relayout refits the camera and moves the crosshair).
    seen: list[QPoint] = []
    while len(seen) < 3 or seen[-1] != seen[-3]:
        seen.append(widget_pos(0.0))
        qtbot.wait(100)
        assert len(seen) < 50
    qtbot.mousePress(axial.interactor, Qt.LeftButton, Qt.ControlModifier, widget_pos(0.0))
    for deg in (10.0, 20.0, 30.0):
        qtbot.mouseMove(axial.interactor, widget_pos(deg))
    qtbot.mouseRelease(axial.interactor, Qt.LeftButton, Qt.ControlModifier, widget_pos(30.0))

    axial_normal = tools.reformat.normal("axial")
    normal = tools.reformat.normal("coronal")
    assert np.allclose(axial_normal, (0, 0, 1))  # the view turned in keeps its plane
    assert _angle(normal, (0, 1, 0)) == pytest.approx(30.0, abs=1.0)
    assert abs(np.dot(normal, axial_normal)) < 1e-9  # turned about the axial normal
    # Counter-clockwise on an axial screen (patient's left on the right, anterior up) turns
    # the coronal plane's left-right edge toward anterior: its right edge reads "LA".
    assert normal[0] > 0.4
    assert coronal.scene.letters.actors["right"].GetInput() == "LA"
    assert coronal.scene.letters.actors["left"].GetInput() == "RP"
    assert window.views.slice_views["sagittal"].scene.is_tilted
    assert "oblique 30°" in coronal.scene.info_text.GetInput()
    # The 3D plane of the coronal view turned with it.
    rep = window.views.volume_view.scene._widgets["coronal"].GetRepresentation()
    assert _angle(np.asarray(rep.GetNormal()), normal) < 0.5 or \
        _angle(-np.asarray(rep.GetNormal()), normal) < 0.5

    # Marking and measuring are refused while tilted and change nothing.
    ref = annotations.ref
    before = {p: annotations.aset.marked_labels(ref.uid, ref.name, p)
              for p in ("axial", "coronal", "sagittal")}
    with qtbot.waitSignal(annotations.message) as said:
        qtbot.keyClick(coronal.interactor, Qt.Key_M)
    assert "tilted" in said.args[0] and said.args[1]
    assert annotations.toggle_current("axial") is None
    after = {p: annotations.aset.marked_labels(ref.uid, ref.name, p) for p in before}
    assert after == before

    # Reset (Shift+O): orthogonal again, letters back, 3D plane back on its axis.
    qtbot.keyClick(coronal.interactor, Qt.Key_O, Qt.ShiftModifier)
    assert not tools.reformat.is_oblique
    assert np.allclose(tools.reformat.normal("coronal"), (0, 1, 0))
    assert coronal.scene.letters.actors["right"].GetInput() == "L"
    assert not coronal.scene.is_tilted
    assert np.allclose(np.abs(rep.GetNormal()), (0, 1, 0))


def test_turning_the_crosshair_to_the_tilt_shows_a_circle_on_the_acquisition_grid(
        make_viewer, qtbot, oblique_study):
    window, _annotations, tools = _open(make_viewer, qtbot, oblique_study, grid="acquisition")
    assert window.volume is tools.acquired and tools.resliced is None
    assert _axial_aspect(window) > 1.1  # the acquisition's 'axial' cuts the cylinder slantwise
    # The stack is tilted 30 degrees about the left-right axis: turning the sagittal
    # crosshair back by 30 degrees gives an axial plane square to the cylinder.
    tools.rotate("sagittal", -30.0)
    qtbot.wait(50)
    assert window.views.slice_views["axial"].scene.is_tilted
    assert _axial_aspect(window) == pytest.approx(1.0, abs=0.06)


def test_view_grid_option_reaches_the_window(monkeypatch) -> None:
    """`mprviewer view --grid acquisition` starts an oblique series on its own grid; a wrong
    value is refused by name."""
    from mprviewer.cli import _choose_command, build_parser
    from mprviewer.commands import view

    seen: dict[str, object] = {}
    monkeypatch.setattr("mprviewer.gui.app.run", lambda *a, **kw: seen.update(kw) or 0)
    for argv, grid in ((["view", "demo"], "patient"),
                       (["view", "demo", "--grid", "acquisition"], "acquisition")):
        args = build_parser(only="view").parse_args(_choose_command(argv))
        assert view.run(args) == 0 and seen["grid"] == grid
    with pytest.raises(SystemExit) as refused:
        build_parser(only="view").parse_args(["view", "demo", "--grid", "sideways"])
    assert refused.value.code == 2


def test_the_threshold_overlay_is_drawn_on_a_tilted_plane(make_viewer, qtbot, oblique_study):
    """Voxels above the threshold are coloured on a tilted view too, where the tilted plane
    cuts them: the cylinder's cross-section, not an orthogonal slice's."""
    window, _annotations, tools = _open(make_viewer, qtbot, oblique_study, grid="acquisition")
    axial = window.views.slice_views["axial"]

    def overlay_pixels() -> np.ndarray:
        image = axial.grab_image().astype(int)
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        return (r - b > 50) & (r - g > 30)  # the orange-red overlay, not grey nor lines

    def aspect(mask: np.ndarray) -> float:
        rows, cols = np.nonzero(mask[50:-50, 50:-50])  # away from the corner text
        assert rows.size > 200, "the cylinder's cut is not coloured"
        return (rows.max() - rows.min() + 1) / (cols.max() - cols.min() + 1)

    window.views.slice_views["axial"].scene.set_crosshair_visible(False)  # red lines
    tools.rotate("sagittal", -30.0)  # the axial plane square to the cylinder
    qtbot.wait(50)
    assert axial.scene.is_tilted
    window.session.set_threshold(500.0)
    before = overlay_pixels()
    window.session.set_threshold_overlay(True)
    coloured = overlay_pixels() & ~before
    assert aspect(coloured) == pytest.approx(1.0, abs=0.08)  # a circle: the tilted cut
    # Back to the orthogonal planes: the overlay follows the acquisition's own slice.
    tools.reset()
    qtbot.wait(50)
    assert not axial.scene.is_tilted
    window.session.set_threshold_overlay(False)
    before = overlay_pixels()
    window.session.set_threshold_overlay(True)
    assert aspect(overlay_pixels() & ~before) > 1.1  # the slantwise cut of the stack
