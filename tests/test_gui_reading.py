"""The viewer as a reader uses it on real datasets: several cases in one zip, files of the
original tool, the keys and clicks of a reading session, the window on a small screen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, QPointF, QRect, Qt
from PyQt5.QtGui import QMouseEvent, QWheelEvent
from PyQt5.QtWidgets import QApplication

from mprviewer.gui.annotation_controller import install_annotations
from mprviewer.gui.annotation_dialogs import ExportDialog, import_file
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui


def _cases(root: Path) -> dict[str, str]:
    """Two patients, each a folder with CT_LUNG (8 axial slices) and T1 (6 slices)."""
    from mprviewer.synthetic.writer import write_series

    uids = {}
    for n, case in enumerate(("case1", "case2")):
        ct = np.zeros((8, 24, 24), np.int16)
        ct[:, 6:18, 6:18] = 100 + 50 * np.arange(8)[:, None, None]  # each slice its own value
        first = write_series(root / case / "CT_LUNG", ct, seed=f"{case}ct", series_number=2,
                             patient={"PatientName": f"Doe^Case{n + 1}", "PatientID": f"P{n}",
                                      "PatientBirthDate": "19700606"},
                             tags={"StudyDate": "20240131"})
        write_series(root / case / "T1", np.full((6, 16, 16), 50, np.int16), modality="MR",
                     seed=f"{case}t1", series_number=3, study_uid=first.study_uid,
                     patient={"PatientName": f"Doe^Case{n + 1}", "PatientID": f"P{n}"})
        uids[case] = first.study_uid
    return uids


def _open(make_viewer, qtbot, source: Path, series: int | None = None):
    window = make_viewer()
    controller = install_annotations(window)
    window.activateWindow()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(source), series)
    window.activateWindow()  # keys and focus go to the active window only
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    return window, controller


def _show_series(window, qtbot, name: str) -> None:
    index = next(n for n, s in enumerate(window.study.series) if s.name == name)
    if index == window.series_index:
        return
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_series(index)


@pytest.fixture
def cases_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "dataset"
    return root, _cases(root)


def test_marks_on_the_second_case_go_to_its_own_autosave(make_viewer, qtbot, cases_folder):
    root, uids = cases_folder
    window, controller = _open(make_viewer, qtbot, root)
    assert [s.name for s in window.study.series if s.name.endswith("T1")] == [
        "case1/T1", "case2/T1"]
    _show_series(window, qtbot, "case1/CT_LUNG")
    first_file = controller.sidecar
    assert controller.aset.study_uid == uids["case1"]
    controller.aset.mark(controller.ref, "axial", [1], "Nodule")
    _show_series(window, qtbot, "case2/CT_LUNG")
    assert controller.aset.study_uid == uids["case2"]
    assert controller.sidecar != first_file
    controller.aset.mark(controller.ref, "axial", [4, 5], "Nodule")
    qtbot.waitUntil(lambda: controller.sidecar.exists() and first_file.exists(), timeout=5000)
    saved = {p: json.loads(p.read_text()) for p in (first_file, controller.sidecar)}
    assert saved[first_file]["study_uid"] == uids["case1"]
    assert [e["slices"] for s in saved[first_file]["series"] for e in s["entries"]] == [[1]]
    assert saved[controller.sidecar]["study_uid"] == uids["case2"]
    assert [s["name"] for s in saved[controller.sidecar]["series"]] == ["case2/CT_LUNG"]
    assert [e["slices"] for s in saved[controller.sidecar]["series"]
            for e in s["entries"]] == [[4, 5]]


def test_import_names_a_series_not_shown_yet_and_export_offers_every_series(
        make_viewer, qtbot, tmp_path):
    root = tmp_path / "dataset"
    _cases(root)
    window, controller = _open(make_viewer, qtbot, root / "case1")
    _show_series(window, qtbot, "T1")
    marks = tmp_path / "original.json"
    marks.write_text(json.dumps({"CT_LUNG": {"Anomaly": "Nodule", "Slices": "2-3"},
                                 "T1": {"Anomaly": "", "Slices": ""}}))
    import_file(controller, marks, confirm=lambda question: False)  # nothing to confirm
    ct = next(s for s in window.study.series if s.name == "CT_LUNG")
    assert controller.aset.slices_for(ct.uid, ct.name, "axial", "Nodule") == [2, 3]
    assert controller.aset.get_series(series_name="T1").clean
    tree = controller.panel.tree
    rows = [tree.topLevelItem(n).text(0) for n in range(tree.topLevelItemCount())]
    assert rows == ["CT_LUNG", "T1   (read, no anomaly)"]
    dialog = ExportDialog(controller, window)
    dialog.set_format("original")
    assert dialog.included() == ["CT_LUNG", "T1"]
    assert json.loads(dialog.text()) == {"CT_LUNG": {"Anomaly": "Nodule", "Slices": "2-3"},
                                         "T1": {"Anomaly": "", "Slices": ""}}
    dialog.set_included(["CT_LUNG"])
    assert json.loads(dialog.text()) == {"CT_LUNG": {"Anomaly": "Nodule", "Slices": "2-3"}}
    dialog.close()
    # the marks show once the series is opened, on the images they were made on
    _show_series(window, qtbot, "CT_LUNG")
    assert sorted(window.views.slice_views["axial"].marked) == [2, 3]


def test_patient_strip_shows_the_case_with_readable_dates(make_viewer, qtbot, cases_folder):
    root, _uids = cases_folder
    window, _controller = _open(make_viewer, qtbot, root / "case2")
    assert window.patient_bar.isVisible()
    text = window.patient_label.full_text
    assert "Doe Case2" in text and "P1" in text and "1970-06-06" in text
    assert "2024-01-31" in text and "19700606" not in text
    assert window.series.metadata["Birth date"] == "1970-06-06"


def test_status_messages_fit_beside_the_readout_and_go_with_the_study(
        make_viewer, qtbot, cases_folder):
    root, _uids = cases_folder
    window, _controller = _open(make_viewer, qtbot, root / "case1")
    status = window.status
    status.set_warnings(["slice spacing varies"])
    status.cursor_label.setText("axial: voxel i,j,k 1, 2, 3")
    status.showMessage("A long message " * 40)
    qtbot.waitUntil(lambda: status.message_label.text() != "", timeout=2000)
    message = status.message_label.geometry()
    for other in (status.warnings_label, status.cursor_label):
        assert not message.intersects(other.geometry())
    shown = status.message_label.text()
    assert shown.endswith("…")
    assert status.message_label.fontMetrics().horizontalAdvance(shown) <= message.width()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(root / "case2"))
    assert "A long message" not in status.currentMessage()
    assert status.warnings_label.text() == ""


def test_ctrl_e_from_the_range_box_exports_and_enter_returns_keys_to_the_view(
        make_viewer, qtbot, cases_folder, monkeypatch):
    root, _uids = cases_folder
    window, controller = _open(make_viewer, qtbot, root / "case1")
    opened = []
    monkeypatch.setattr("mprviewer.gui.annotation_dialogs.open_export_dialog", opened.append)
    panel = controller.panel
    window.side_tabs.setCurrentWidget(panel)
    axial = window.views.slice_views["axial"].interactor
    panel.range_edit.setFocus(Qt.OtherFocusReason)
    qtbot.waitUntil(lambda: panel.range_edit.hasFocus(), timeout=2000)
    qtbot.keyClick(panel.range_edit, Qt.Key_E, Qt.ControlModifier)
    assert opened == [controller]
    panel.range_edit.setText("1-2")
    qtbot.keyClick(panel.range_edit, Qt.Key_Return)
    qtbot.waitUntil(lambda: axial.hasFocus(), timeout=2000)
    assert controller.aset.slices_for(controller.ref.uid, controller.ref.name, "axial",
                                      controller.current_label()) == [1, 2]
    before = window.state.slices["axial"]
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Up)  # a key for the view, not the box
    assert window.state.slices["axial"] != before
    assert panel.range_edit.text() == "1-2"


def test_title_bar_click_focuses_a_view_without_moving_the_crosshair(
        make_viewer, qtbot, cases_folder):
    root, _uids = cases_folder
    window, _controller = _open(make_viewer, qtbot, root / "case1")
    window.state.set_focus("axial")
    cursor = tuple(window.state.cursor)
    slices = dict(window.state.slices)
    coronal = window.views.slice_views["coronal"]
    qtbot.mouseClick(coronal.bar, Qt.LeftButton, pos=QPoint(40, 8))
    qtbot.waitUntil(lambda: window.state.focused_plane == "coronal", timeout=2000)
    assert coronal.interactor.hasFocus()
    assert tuple(window.state.cursor) == cursor and window.state.slices == slices


def test_voxel_readout_follows_the_mouse_wheel(make_viewer, qtbot, cases_folder):
    root, _uids = cases_folder
    window, _controller = _open(make_viewer, qtbot, root / "case1")
    _show_series(window, qtbot, "CT_LUNG")
    axial = window.views.slice_views["axial"]
    qtbot.waitUntil(lambda: axial.interactor.width() > 100, timeout=3000)
    centre = QPointF(axial.interactor.width() / 2, axial.interactor.height() / 2)
    QApplication.sendEvent(axial.interactor, QMouseEvent(
        QMouseEvent.MouseMove, centre, Qt.NoButton, Qt.NoButton, Qt.NoModifier))
    qtbot.waitUntil(lambda: "value" in window.status.cursor_label.text(), timeout=2000)
    before = window.status.cursor_label.text()
    slice_before = window.state.slices["axial"]
    wheel = QWheelEvent(centre, axial.interactor.mapToGlobal(centre.toPoint()), QPoint(0, 0),
                        QPoint(0, 120), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(axial.interactor, wheel)
    assert window.state.slices["axial"] != slice_before
    after = window.status.cursor_label.text()
    assert after != before
    k = int(after.split("voxel i,j,k ")[1].split("|")[0].split(",")[2])
    value = int(after.split("value ")[1].split()[0])
    assert value == window.volume.array[k, 12, 12]  # the slice the wheel went to


def test_first_window_fits_a_laptop_screen(make_viewer, qtbot):
    from mprviewer.gui.app import fit_to_screen

    window = make_viewer(show=False)
    install_annotations(window)
    screen = QRect(0, 0, 1280, 720)
    fit_to_screen(window, screen)
    window.show()
    qtbot.waitExposed(window)
    assert window.frameGeometry().height() <= screen.height()
    bar = window.status.geometry()
    assert bar.height() > 0 and window.mapTo(window, bar.bottomLeft()).y() <= window.height()


def test_open_folder_starts_beside_the_last_study(qapp, tmp_path, monkeypatch):
    from mprviewer.gui import open_dialogs

    monkeypatch.setenv("MPRVIEWER_HOME", str(tmp_path / "home"))
    case = tmp_path / "dataset" / "case7"
    case.mkdir(parents=True)
    open_dialogs.remember_source(str(case))
    assert Path(open_dialogs.start_dir()) == case.parent.resolve()


def test_coronal_marks_reach_the_3d_view(make_viewer, qtbot, cases_folder):
    root, _uids = cases_folder
    window, controller = _open(make_viewer, qtbot, root / "case1")
    _show_series(window, qtbot, "CT_LUNG")
    controller.aset.mark(controller.ref, "coronal", [3], "Nodule")
    controller.aset.mark(controller.ref, "sagittal", [5], "Cyst")
    volume_view = window.views.volume_view
    assert volume_view.marked["coronal"] == {3: ["Nodule"]}
    assert volume_view.marked["sagittal"] == {5: ["Cyst"]}


def test_viewer_window_is_the_median_of_the_per_slice_windows(make_viewer, qtbot, tmp_path):
    from tests.test_scanner_windows import _t1_with_edge_windows

    _t1_with_edge_windows(tmp_path / "t1")
    window, _controller = _open(make_viewer, qtbot, tmp_path / "t1")
    assert (window.state.window_center, window.state.window_width) == (801.0, 1550.0)
