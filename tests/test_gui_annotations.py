"""Marking slices in the viewer: keys, ranges, undo, autosave, export preview, import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, Qt

from mprviewer.gui.annotation_controller import install_annotations
from mprviewer.gui.annotation_dialogs import ExportDialog, export_kos, import_file
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui

STUDY_UID = "1.2.826.0.1.3680043.8.498.777"
SERIES_NAME_HINT = "Chest"


@pytest.fixture
def study_folder(tmp_path: Path) -> Path:
    """A small CT study: 20 axial slices of 32 x 40, one series, a known study UID."""
    from mprviewer.synthetic.writer import write_series

    array = np.zeros((20, 32, 40), dtype=np.int16)
    array[:, 8:24, 10:30] = 100
    array[12:16, 12:18, 24:28] = 900  # a bright lesion on the patient's left
    folder = tmp_path / "study"
    write_series(folder / "ct", array, slice_spacing=2.0, description=SERIES_NAME_HINT,
                 window=(40, 400), seed=7, study_uid=STUDY_UID)
    return folder


def _open(make_viewer, qtbot, folder: Path):
    window = make_viewer()
    controller = install_annotations(window)
    window.activateWindow()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(folder))
    return window, controller


def _focus(window, qtbot, plane: str):
    interactor = window.views.slice_views[plane].interactor
    interactor.setFocus(Qt.OtherFocusReason)
    window.state.set_focus(plane)  # what a click in the view does
    qtbot.waitUntil(lambda: window.state.focused_plane == plane, timeout=2000)
    return interactor


def _press(qtbot, widget, key, modifier=Qt.NoModifier):
    qtbot.keyClick(widget, key, modifier)


def _marks(controller, plane, label=None):
    ref = controller.ref
    return controller.aset.slices_for(ref.uid, ref.name, plane, label)


def test_keys_mark_two_planes_export_restart_import(make_viewer, qtbot, study_folder, tmp_path):
    window, controller = _open(make_viewer, qtbot, study_folder)
    state = window.state
    axial = _focus(window, qtbot, "axial")
    for index in (2, 3, 11):
        state.set_slice("axial", index)
        _press(qtbot, axial, Qt.Key_M)
    coronal = _focus(window, qtbot, "coronal")
    state.set_slice("coronal", 5)
    _press(qtbot, coronal, Qt.Key_M)
    state.set_slice("coronal", 8)
    _press(qtbot, coronal, Qt.Key_M, Qt.ShiftModifier)  # range from the last mark (5)
    assert _marks(controller, "axial") == [2, 3, 11]
    assert _marks(controller, "coronal") == [5, 6, 7, 8]
    # the views show them: frame and badge in 2D, ticks on the sliders, slabs in 3D
    views = window.views
    assert views.slice_views["coronal"].marked == {s: ["Anomaly"] for s in (5, 6, 7, 8)}
    assert views.slice_views["axial"].slider.marks == [2, 3, 11]
    assert views.slice_views["sagittal"].slider.marks == []
    assert views.volume_view.marked_axial == [2, 3, 11]

    dialog = ExportDialog(controller, window)
    dialog.set_format("full")
    target = tmp_path / "out" / "marks.json"
    target.parent.mkdir()
    assert dialog.save_to(target) is not None
    sidecar = controller.sidecar
    window.close()
    qtbot.waitUntil(lambda: controller.aset is None, timeout=2000)

    # Restart without the sidecar: only the exported file can bring the marks back.
    for path in sidecar.parent.glob(sidecar.name + "*"):
        path.unlink()
    window2, controller2 = _open(make_viewer, qtbot, study_folder)
    assert _marks(controller2, "axial") == [] and _marks(controller2, "coronal") == []
    summary = import_file(controller2, target, confirm=lambda q: pytest.fail(q))
    assert summary is not None
    assert _marks(controller2, "axial") == [2, 3, 11]
    assert _marks(controller2, "coronal") == [5, 6, 7, 8]
    entry = next(e for _sa, e in controller2.aset.entries() if e.plane == "axial")
    ref = controller2.ref
    assert entry.sop_instance_uids == tuple(ref.sop_instance_uids[s] for s in (2, 3, 11))
    # the imported marks are shown, and the panel lists them per plane
    panel = controller2.panel
    rows = [panel.tree.topLevelItem(0).child(n) for n in range(2)]
    assert sorted((r.text(1), r.text(2)) for r in rows) == [("axial", "2-3; 11"),
                                                            ("coronal", "5-8")]
    assert window2.views.slice_views["coronal"].slider.marks == [5, 6, 7, 8]


def test_same_key_unmarks_and_undo_redo(make_viewer, qtbot, study_folder):
    window, controller = _open(make_viewer, qtbot, study_folder)
    axial = _focus(window, qtbot, "axial")
    window.state.set_slice("axial", 4)
    _press(qtbot, axial, Qt.Key_M)
    assert _marks(controller, "axial") == [4]
    _press(qtbot, axial, Qt.Key_M)
    assert _marks(controller, "axial") == []
    _press(qtbot, axial, Qt.Key_Z, Qt.ControlModifier)  # undo the unmark
    assert _marks(controller, "axial") == [4]
    _press(qtbot, axial, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)  # redo it
    assert _marks(controller, "axial") == []
    # a slice with another label keeps it: M adds the current label only
    window.state.set_slice("axial", 6)
    _press(qtbot, axial, Qt.Key_M)
    controller.panel.label_box.setEditText("Bleed")
    _press(qtbot, axial, Qt.Key_M)
    assert controller.marked("axial") == {6: ["Anomaly", "Bleed"]}
    assert controller.panel.label_box.findText("Bleed") >= 0  # offered from now on


def test_shift_key_marks_range_and_buttons(make_viewer, qtbot, study_folder):
    window, controller = _open(make_viewer, qtbot, study_folder)
    sagittal = _focus(window, qtbot, "sagittal")
    window.state.set_slice("sagittal", 30)
    _press(qtbot, sagittal, Qt.Key_M)
    window.state.set_slice("sagittal", 26)
    _press(qtbot, sagittal, Qt.Key_M, Qt.ShiftModifier)
    assert _marks(controller, "sagittal") == [26, 27, 28, 29, 30]
    # one undo step removes the whole range
    qtbot.mouseClick(controller.panel.undo_button, Qt.LeftButton)
    assert _marks(controller, "sagittal") == [30]
    window.state.set_slice("sagittal", 12)
    qtbot.mouseClick(controller.panel.mark_button, Qt.LeftButton)
    assert _marks(controller, "sagittal") == [12, 30]


def test_range_box_accepts_original_syntax_and_rejects_bad_text(make_viewer, qtbot,
                                                                study_folder):
    window, controller = _open(make_viewer, qtbot, study_folder)
    panel = controller.panel
    panel.plane_box.setCurrentIndex(panel.plane_box.findData("axial"))
    panel.range_edit.setFocus()
    panel.range_edit.selectAll()
    qtbot.keyClicks(panel.range_edit, "0-3; 7")
    qtbot.keyClick(panel.range_edit, Qt.Key_Return)
    assert _marks(controller, "axial") == [0, 1, 2, 3, 7]
    assert panel.range_error.text() == ""
    assert window.views.slice_views["axial"].marked[7] == ["Anomaly"]

    panel.range_edit.setText("3-x")
    assert panel.apply_range() is False
    assert "'3-x'" in panel.range_error.text()
    assert _marks(controller, "axial") == [0, 1, 2, 3, 7]  # nothing changed
    panel.range_edit.setText("25")  # beyond the 20 axial slices
    assert panel.apply_range() is False
    assert "25" in panel.range_error.text() and "20 slices" in panel.range_error.text()
    assert _marks(controller, "axial") == [0, 1, 2, 3, 7]


def test_autosave_restores_marks_in_a_new_window(make_viewer, qtbot, study_folder):
    window, controller = _open(make_viewer, qtbot, study_folder)
    axial = _focus(window, qtbot, "axial")
    window.state.set_slice("axial", 9)
    _press(qtbot, axial, Qt.Key_M)
    panel = controller.panel
    panel.note_edit.setPlainText("lesion left upper lobe")
    panel.flush_note()
    sidecar = controller.sidecar
    assert sidecar.parent == study_folder / ".mprviewer"  # beside the study
    saved = json.loads(sidecar.read_text())
    assert saved["series"][0]["entries"][0]["slices"] == [9]
    # no export, no clean shutdown of the first window: a second window on the same study
    _window2, controller2 = _open(make_viewer, qtbot, study_folder)
    assert _marks(controller2, "axial") == [9]
    assert controller2.aset.note == "lesion left upper lobe"
    assert controller2.panel.note_edit.toPlainText() == "lesion left upper lobe"


def test_export_preview_is_the_written_text(make_viewer, qtbot, study_folder, tmp_path):
    window, controller = _open(make_viewer, qtbot, study_folder)
    axial = _focus(window, qtbot, "axial")
    window.state.set_slice("axial", 1)
    _press(qtbot, axial, Qt.Key_M)
    coronal = _focus(window, qtbot, "coronal")
    _press(qtbot, coronal, Qt.Key_M)
    dialog = ExportDialog(controller, window)
    dialog.set_format("original")
    preview = dialog.preview.toPlainText()
    assert json.loads(preview) == {controller.ref.name: {"Anomaly": "Anomaly", "Slices": "1"}}
    # the coronal mark cannot go in the original format, and the dialog says so
    assert not dialog.report_label.isHidden()
    assert "coronal" in dialog.report_label.text()
    target = tmp_path / "export.json"
    target.write_text("precious")
    dialog.confirm_overwrite = lambda path: False  # the reader says no
    assert dialog.save_to(target) is None
    assert target.read_text() == "precious"
    asked = []
    dialog.confirm_overwrite = lambda path: asked.append(path) or True
    assert dialog.save_to(target) is not None
    assert asked == [target]
    assert target.read_text() == preview


def test_point_pick_with_alt_click(make_viewer, qtbot, study_folder):
    window, controller = _open(make_viewer, qtbot, study_folder)
    view = window.views.slice_views["axial"]
    qtbot.waitUntil(lambda: view.interactor.width() > 100, timeout=3000)
    centre = QPoint(view.interactor.width() // 2, view.interactor.height() // 2)
    xyz = view.pick(centre)
    assert xyz is not None
    before = window.state.slices.copy()
    qtbot.mouseClick(view.interactor, Qt.LeftButton, Qt.AltModifier, centre)
    points = controller.aset.points()
    assert len(points) == 1
    point = points[0][1]
    grid = window.state.grid
    assert point.voxel == tuple(round(v) for v in grid.display_to_ijk(np.asarray(xyz, float)))
    i, j, k = point.voxel
    assert point.value == pytest.approx(float(window.volume.array[k, j, i]))
    assert np.allclose(point.lps, window.volume.ijk_to_lps(np.asarray(point.voxel, float)))
    assert window.state.slices == before  # a pick does not move the crosshair


def test_selecting_an_entry_jumps_there_and_kos_export(make_viewer, qtbot, study_folder,
                                                       tmp_path):
    window, controller = _open(make_viewer, qtbot, study_folder)
    panel = controller.panel
    panel.plane_box.setCurrentIndex(panel.plane_box.findData("coronal"))
    panel.range_edit.setText("20-22")
    assert panel.apply_range()
    panel.plane_box.setCurrentIndex(panel.plane_box.findData("axial"))
    panel.range_edit.setText("14")
    assert panel.apply_range()
    entry_id = next(e.id for _sa, e in controller.aset.entries() if e.plane == "coronal")
    assert panel.select(entry_id)
    assert window.state.slices["coronal"] == 20
    assert window.state.focused_plane == "coronal"
    controller.relabel(entry_id, "Nodule")
    assert _marks(controller, "coronal", "Nodule") == [20, 21, 22]
    controller.delete(entry_id)
    assert _marks(controller, "coronal") == []
    # key images: the one axial (acquired) slice, by its SOP instance
    path = tmp_path / "kos.dcm"
    skipped = export_kos(controller, path)
    assert skipped == []
    import pydicom

    doc = pydicom.dcmread(path)
    refs = [item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for item in doc.ContentSequence if "ReferencedSOPSequence" in item]
    assert refs == [controller.ref.sop_instance_uids[14]]



def test_marks_stay_with_their_series_and_selecting_loads_it(make_viewer, qtbot, tmp_path):
    from mprviewer.synthetic.writer import write_series

    folder = tmp_path / "two"
    write_series(folder / "a", np.full((20, 32, 40), 50, np.int16), description="Big",
                 seed=7, study_uid=STUDY_UID, series_number=1, slice_spacing=2.0)
    write_series(folder / "b", np.full((10, 24, 24), 80, np.int16), orientation="sagittal",
                 description="Small", seed=8, study_uid=STUDY_UID, series_number=2)
    window, controller = _open(make_viewer, qtbot, folder)
    assert window.series.description == "Big"
    axial = _focus(window, qtbot, "axial")
    window.state.set_slice("axial", 3)
    _press(qtbot, axial, Qt.Key_M)
    big_entry = controller.aset.entries()[0][1]
    row = [s.description for s in window.study.series].index("Small")
    with qtbot.waitSignal(window.volume_changed, timeout=20000):
        window.open_series(row)
    assert controller.ref.acquisition_plane == "sagittal"
    assert window.views.slice_views["axial"].slider.marks == []  # Big's marks are not here
    sagittal = _focus(window, qtbot, "sagittal")
    window.state.set_slice("sagittal", 4)
    _press(qtbot, sagittal, Qt.Key_M)
    small = controller.aset.get_series(controller.ref.uid)
    assert small.entries[0].sop_instance_uids == (controller.ref.sop_instance_uids[4],)
    assert len(controller.aset.series) == 2
    assert controller.panel.tree.topLevelItemCount() == 2
    # choosing Big's entry in the list loads Big and shows the marked slice
    with qtbot.waitSignal(window.volume_changed, timeout=20000):
        assert controller.panel.select(big_entry.id)
    qtbot.waitUntil(lambda: window.state.slices["axial"] == 3, timeout=3000)
    assert window.series.description == "Big"
    assert window.views.slice_views["axial"].slider.marks == [3]


def test_a_failing_autosave_is_shown_and_closing_offers_export(make_viewer, qtbot,
                                                               study_folder, monkeypatch):
    import mprviewer.model.sidecar as sidecar_module

    window, controller = _open(make_viewer, qtbot, study_folder)

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sidecar_module, "save_sidecar", disk_full)
    axial = _focus(window, qtbot, "axial")
    _press(qtbot, axial, Qt.Key_M)
    assert "No space left on device" in controller.panel.saved_label.text()
    asked = []
    controller.confirm_close = lambda problem: asked.append(problem) or False
    window.close()
    assert window.isVisible() and len(asked) == 1  # kept open to export
    dialog = next(w for w in window.findChildren(ExportDialog) if w.isVisible())
    assert json.loads(dialog.preview.toPlainText())  # the marks are there to save
    dialog.reject()
    controller.confirm_close = lambda problem: True
    window.close()
    assert not window.isVisible()


def test_keys_mark_two_planes_of_the_demo_export_restart_import(make_viewer, qtbot, tmp_path,
                                                                 _private_data_dir):
    """The issue's done-when, on the built-in demo study (a zip: its sidecar goes to the
    per-user data folder, which the suite's conftest makes private to each test)."""
    import os

    from mprviewer.synthetic.demo import DEMO_LESION_LPS

    home = Path(os.environ["MPRVIEWER_HOME"])
    assert home == _private_data_dir
    window, controller = _open(make_viewer, qtbot, "demo")
    state = window.state
    assert window.series.description.startswith("Chest")
    # Mark the lesion's axial slice and its neighbours, and a coronal range through it.
    lesion = np.round(state.grid.lps_to_display(np.asarray(DEMO_LESION_LPS))).astype(int)
    axial_marks = [int(lesion[2]) - 1, int(lesion[2]), int(lesion[2]) + 1]
    coronal_from, coronal_to = int(lesion[1]) - 2, int(lesion[1]) + 2
    axial = _focus(window, qtbot, "axial")
    for index in axial_marks:
        state.set_slice("axial", index)
        _press(qtbot, axial, Qt.Key_M)
    coronal = _focus(window, qtbot, "coronal")
    state.set_slice("coronal", coronal_from)
    _press(qtbot, coronal, Qt.Key_M)
    state.set_slice("coronal", coronal_to)
    _press(qtbot, coronal, Qt.Key_M, Qt.ShiftModifier)
    coronal_marks = list(range(coronal_from, coronal_to + 1))
    assert _marks(controller, "axial") == axial_marks
    assert _marks(controller, "coronal") == coronal_marks
    assert window.views.slice_views["coronal"].slider.marks == coronal_marks
    # The autosave is in this test's data folder, not beside the shared demo zip.
    sidecar = controller.sidecar
    assert sidecar.is_file() and sidecar.is_relative_to(home / "annotations")
    saved = json.loads(sidecar.read_text())
    assert saved["study_uid"] == window.volume.study_uid != ""
    assert sorted(s for e in saved["series"][0]["entries"] for s in e["slices"]) == sorted(
        axial_marks + coronal_marks)

    target = tmp_path / "demo-marks.json"
    dialog = ExportDialog(controller, window)
    dialog.set_format("full")
    assert dialog.save_to(target) is not None
    uids = list(controller.ref.sop_instance_uids)
    window.close()
    qtbot.waitUntil(lambda: controller.aset is None, timeout=2000)
    for path in sidecar.parent.glob(sidecar.name + "*"):
        path.unlink()

    window2, controller2 = _open(make_viewer, qtbot, "demo")
    assert _marks(controller2, "axial") == [] and _marks(controller2, "coronal") == []
    assert import_file(controller2, target, confirm=lambda q: pytest.fail(q)) is not None
    assert _marks(controller2, "axial") == axial_marks
    assert _marks(controller2, "coronal") == coronal_marks
    assert list(controller2.ref.sop_instance_uids) == uids  # the same demo, slice for slice
    entry = next(e for _sa, e in controller2.aset.entries() if e.plane == "axial")
    grid = window2.state.grid
    assert entry.sop_instance_uids == tuple(
        uids[grid.acquisition_k("axial", s)] for s in axial_marks)
    assert window2.views.slice_views["axial"].slider.marks == axial_marks
    assert window2.views.slice_views["coronal"].marked == {s: ["Anomaly"] for s in coronal_marks}
