"""Reading tools in the window: a ruler and an ROI drawn with the mouse measure what the
volume's geometry says, Delete removes one, S shows a slab, Space plays cine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, Qt

from mprviewer import measure
from mprviewer.gui.annotation_controller import install_annotations
from mprviewer.gui.measure_tools import install_measure_tools
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

LESION = 900


@pytest.fixture
def study_folder(tmp_path: Path) -> Path:
    """24 axial slices of 40 x 48, anisotropic voxels (0.8 x 0.6 mm, 2.5 mm slices), a bright
    block on the patient's left."""
    from mprviewer.synthetic.writer import write_series

    array = np.zeros((24, 40, 48), dtype=np.int16)
    array[:, 6:34, 6:42] = 40
    array[8:16, 14:26, 28:40] = LESION
    folder = tmp_path / "study"
    write_series(folder / "ct", array, pixel_spacing=(0.6, 0.8), slice_spacing=2.5,
                 window=(40, 400), seed=9)
    return folder


def _open(make_viewer, qtbot, folder: Path):
    window = make_viewer(size=(1100, 800))
    install_annotations(window)
    tools = install_measure_tools(window)
    window.activateWindow()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(folder))
    return window, tools


def _widget_pos(view, xyz) -> QPoint:
    """Widget position of a display voxel's centre in a 2D view."""
    x, y = view.scene.voxel_to_display(xyz)
    scale = view.interactor.devicePixelRatioF()
    return QPoint(round(x / scale), round(view.interactor.height() - 1 - y / scale))


def _drag(qtbot, view, a, b) -> None:
    widget = view.interactor
    qtbot.mousePress(widget, Qt.LeftButton, pos=_widget_pos(view, a))
    qtbot.mouseMove(widget, pos=_widget_pos(view, b))
    qtbot.mouseRelease(widget, Qt.LeftButton, pos=_widget_pos(view, b))


def test_ruler_roi_delete_slab_and_cine(make_viewer, qtbot, study_folder):
    window, tools = _open(make_viewer, qtbot, study_folder)
    assert window.side_tabs.currentWidget() is window.annotations.panel  # still in front
    assert window.side_tabs.indexOf(tools.panel) >= 0
    state, volume, grid = window.state, window.volume, window.state.grid
    state.set_slice("axial", 12)
    axial = window.views.slice_views["axial"]
    axial.interactor.setFocus(Qt.OtherFocusReason)
    state.set_focus("axial")
    axial.render()

    # A ruler dragged between two voxel centres measures their distance through the affine
    # (0.8 mm columns, 0.6 mm rows here).
    qtbot.keyClick(axial.interactor, Qt.Key_D)
    assert tools.mode == "ruler" and tools.act_ruler.isChecked()
    a, b = (10, 10, 12), (30, 25, 12)
    _drag(qtbot, axial, a, b)
    (ruler,) = tools.measurements()
    expected = measure.distance(grid.display_to_lps(a), grid.display_to_lps(b))
    assert ruler.length_mm == pytest.approx(expected, abs=0.4)
    assert (ruler.plane, ruler.slice) == ("axial", 12)
    # a second ruler by two clicks
    c, d = (8, 30, 12), (20, 30, 12)
    for p in (c, d):
        qtbot.mouseClick(axial.interactor, Qt.LeftButton, pos=_widget_pos(axial, p))
    assert len(tools.measurements()) == 2
    second = tools.measurements()[1]
    assert tools.measurements()[1].length_mm == pytest.approx(12 * grid.spacing[0], abs=0.4)
    assert [it.text for it in tools.overlays["axial"].visible_items()] == [
        f"{r.length_mm:.1f} mm" for r in tools.measurements()]

    # An ROI in the bright block: mean is the block's value, stats are roi_stats'.
    qtbot.keyClick(axial.interactor, Qt.Key_O)
    assert tools.mode == "roi"
    lesion_ijk = (34, 20, 12)
    centre = tuple(int(v) for v in np.rint(grid.ijk_to_display(lesion_ijk)))
    edge = (centre[0] + 4, centre[1], centre[2])
    _drag(qtbot, axial, centre, edge)
    roi = tools.measurements()[-1]
    assert roi.radius_mm == pytest.approx(4 * grid.spacing[0], abs=0.4)
    assert roi.stats["mean"] == pytest.approx(LESION) and roi.stats["sd"] == pytest.approx(0)
    again = measure.roi_stats(volume, roi.center, roi.radius_mm, "axial")
    assert roi.stats == {k: getattr(again, k) for k in ("mean", "sd", "min", "max", "area_mm2")}
    assert roi.units == "HU"
    # the lesion is on the patient's left: the ROI is drawn on the screen's right half
    assert _widget_pos(axial, centre).x() > axial.interactor.width() / 2

    # Delete removes the measurement nearest the mouse (the first ruler here), Ctrl+Z undoes.
    qtbot.keyClick(axial.interactor, Qt.Key_Escape)
    assert tools.mode == ""
    qtbot.mouseMove(axial.interactor, pos=_widget_pos(axial, (20, 17, 12)))
    qtbot.keyClick(axial.interactor, Qt.Key_Delete)
    assert [m.id for m in tools.measurements()] == [second.id, roi.id]
    qtbot.keyClick(axial.interactor, Qt.Key_Z, Qt.ControlModifier)
    assert ruler.id in [m.id for m in tools.measurements()]
    # other slices do not show this slice's measurements
    state.set_slice("axial", 13)
    axial.render()
    assert tools.overlays["axial"].visible_items() == []
    state.set_slice("axial", 12)

    # Thick slab: S toggles a 10 mm MIP in every 2D view, ] thickens it, Shift+S cycles mode.
    qtbot.keyClick(axial.interactor, Qt.Key_S)
    scenes = {p: v.scene for p, v in window.views.slice_views.items()}
    assert all(s.slab_mm == 10.0 and s.slab_mode == "max" for s in scenes.values())
    assert "Slab MIP 10 mm" in scenes["coronal"].info_text.GetInput()
    assert tools.slab_controls.thickness.value() == 10.0
    qtbot.keyClick(axial.interactor, Qt.Key_BracketRight)
    qtbot.keyClick(axial.interactor, Qt.Key_S, Qt.ShiftModifier)
    assert (scenes["axial"].slab_mm, scenes["axial"].slab_mode) == (12.0, "min")
    tools.slab_controls.thickness.setValue(0.0)
    assert scenes["sagittal"].slab_mm == 0.0

    # Cine: Space plays the focused view's slices, looping past the last one.
    tools.set_cine_rate(60)
    state.set_slice("axial", grid.plane_size("axial") - 2)
    qtbot.keyClick(axial.interactor, Qt.Key_Space)
    assert tools.cine_playing
    qtbot.waitUntil(lambda: state.slices["axial"] < 5, timeout=5000)  # it wrapped around
    qtbot.keyClick(axial.interactor, Qt.Key_Space)
    assert not tools.cine_playing
    stopped = state.slices["axial"]
    qtbot.wait(100)
    assert state.slices["axial"] == stopped


def test_hematoma_volume_from_rulers_and_marked_slices(make_viewer, qtbot, study_folder):
    window, tools = _open(make_viewer, qtbot, study_folder)
    state, grid = window.state, window.state.grid
    controller = window.annotations
    assert tools.compute_hematoma() is None  # no rulers yet: a message, nothing stored
    state.set_slice("axial", 12)
    a = tools.add_ruler("axial", (8, 14, 12), (20, 14, 12))
    b = tools.add_ruler("axial", (14, 10, 12), (14, 19, 12))
    assert tools.compute_hematoma() is None  # C is missing: neither marks nor a coronal ruler
    controller.aset.mark_range(controller.ref, "axial", 9, 14)
    controller.aset.mark(controller.ref, "axial", [20])  # another run, not counted
    item = tools.compute_hematoma()
    assert item is not None and item.slices == (9, 14)
    c = 6 * grid.spacing[2]
    assert item.volume_ml == pytest.approx(a.length_mm * b.length_mm * c / 2000)
    assert item.ruler_ids == (a.id, b.id)
    # a coronal ruler gives C instead
    state.set_slice("coronal", 20)
    tall = tools.add_ruler("coronal", (14, 20, 9), (14, 20, 15))
    item2 = tools.compute_hematoma()
    assert item2.c_mm == pytest.approx(tall.length_mm) and tall.id in item2.ruler_ids
    assert "hematoma" in tools.panel.list.item(tools.panel.list.count() - 1).text()


def test_an_oblique_series_says_so_in_every_2d_view(make_viewer, qtbot, tmp_path):
    from mprviewer.synthetic.writer import write_series

    t = np.radians(20.0)
    array = np.zeros((12, 24, 24), dtype=np.int16)
    write_series(tmp_path / "obl" / "mr", array, modality="MR", seed=3,
                 orientation=(1.0, 0.0, 0.0, 0.0, float(np.cos(t)), float(np.sin(t))))
    window, _tools = _open(make_viewer, qtbot, tmp_path / "obl")
    for view in window.views.slice_views.values():
        assert "acquisition grid, oblique 20°" in view.scene.info_text.GetInput()
