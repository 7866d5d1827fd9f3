"""Opening studies in the window: background loading, series switching, errors, cancel, drops."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PyQt5.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt5.QtGui import QDragEnterEvent, QDropEvent

from mprviewer.errors import LoadCancelled
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui


@pytest.fixture
def small_study(tmp_path):
    """Two tiny series in a folder: 12 axial slices of 32x32 and 8 of 24x24."""
    from mprviewer.synthetic.writer import write_series

    rng = np.random.default_rng(5)
    first = rng.integers(-100, 100, size=(12, 32, 32)).astype(np.int16)
    first[6, 10:20, 20:28] = 900
    write_series(tmp_path / "study" / "a", first, slice_spacing=2.0, series_number=1,
                 description="First", window=(40, 400), seed=1, study_uid="1.2.826.0.1.9")
    second = rng.integers(0, 50, size=(8, 24, 24)).astype(np.int16)
    write_series(tmp_path / "study" / "b", second, series_number=2, description="Second",
                 seed=2, study_uid="1.2.826.0.1.9")
    return tmp_path / "study"


def _open(window, qtbot, source, timeout=30000):
    with qtbot.waitSignal(window.volume_changed, timeout=timeout) as blocker:
        window.open_source(str(source))
    return blocker.args[0]


def test_open_folder_in_background_then_switch_series(make_viewer, qtbot, small_study):
    window = make_viewer()
    volume = _open(window, qtbot, small_study)
    assert volume.shape == (12, 32, 32)  # the largest series first
    assert window.series_table.table.rowCount() == 2
    assert window.study is not None and window.series.description == "First"
    assert (window.state.window_center, window.state.window_width) == (40.0, 400.0)
    data = dict(window.data_table.rows())
    assert "First" in " ".join(data.values())
    from mprviewer.gui.open_dialogs import recent_sources

    assert recent_sources()[0] == str(small_study)

    row = [s.description for s in window.study.series].index("Second")
    with qtbot.waitSignal(window.volume_changed, timeout=20000) as blocker:
        window.series_table.series_chosen.emit(row)
    assert blocker.args[0].shape == (8, 24, 24)
    assert window.series_index == row and window.series.description == "Second"
    assert window.state.grid.plane_size("axial") == 8
    assert window.views.slice_views["axial"].slider.maximum() == 7


def test_slice_tags_follow_the_acquisition_slice(make_viewer, qtbot, small_study):
    window = make_viewer()
    volume = _open(window, qtbot, small_study)
    window.side_tabs.setCurrentWidget(window.tag_browser)
    window.state.set_slice("axial", 3)
    k = window.state.grid.acquisition_k("axial", 3)

    def shown_uid():
        tree = window.tag_browser.tree
        for n in range(tree.topLevelItemCount()):
            item = tree.topLevelItem(n)
            if item.text(0) == "(0008,0018)":
                return item.text(3)
        return None

    qtbot.waitUntil(lambda: shown_uid() == volume.sop_instance_uids[k], timeout=5000)


def test_first_slice_shows_before_the_panels_then_the_window_completes(make_viewer, qtbot,
                                                                        small_study):
    """``mprviewer view SOURCE``: the 2D views show the study while the side panel and the
    3D view wait; right after the first frame they appear, filled, and the 3D scene follows."""
    window = make_viewer(source=str(small_study), panels_after_first_frame=True)
    at_first_frame: dict = {}

    def note(_seconds):
        at_first_frame.update(
            dock=window.dock.isVisible(), view_3d=window.views.volume_view.isVisible(),
            series_rows=window.series_table.table.rowCount(),
            data=dict(window.data_table.rows()), volume=window.volume)

    window.first_frame_shown.connect(note)
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=30000)
    assert at_first_frame["volume"] is window.volume
    assert at_first_frame["volume"].shape == (12, 32, 32)  # the largest series
    assert not at_first_frame["dock"] and not at_first_frame["view_3d"]
    assert at_first_frame["series_rows"] == 0 and "First" not in " ".join(
        at_first_frame["data"].values())
    qtbot.waitUntil(lambda: window.dock.isVisible() and window.views.volume_view.isVisible(),
                    timeout=5000)
    assert window.series_table.table.rowCount() == 2
    assert "First" in " ".join(dict(window.data_table.rows()).values())
    # the axial view shows the middle slice: the bright block (900 HU at 40/400) is white
    axial = window.views.slice_views["axial"]
    assert window.state.slices["axial"] == 6
    assert (axial.grab_image() >= 250).all(axis=2).sum() > 20


def test_load_error_keeps_the_previous_study(make_viewer, qtbot, small_study, tmp_path):
    window = make_viewer()
    volume = _open(window, qtbot, small_study)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not an image")
    with qtbot.waitSignal(window.load_failed, timeout=20000) as blocker:
        window.open_source(str(junk))
    assert "junk" in blocker.args[0]
    box = window.error_box
    assert box is not None and box.isVisible()
    assert "junk" in box.text() and "previous study stays open" in box.informativeText()
    assert window.volume is volume and window.study.series[0].description == "First"
    assert window.views.slice_views["axial"].scene is not None
    box.button(box.Ok).click()
    qtbot.waitUntil(lambda: window.error_box is None, timeout=2000)
    # The window still works after the error.
    window.state.step("axial", 1)
    assert window.views.slice_views["axial"].slider.value() == window.state.slices["axial"]


def test_a_load_can_be_cancelled(make_viewer, qtbot, small_study, monkeypatch):
    window = make_viewer()
    volume = _open(window, qtbot, small_study)
    reached = threading.Event()

    def slow_load(source, progress, cancel, series=None):
        for n in range(500):
            progress(n, 500)
            reached.set()
            time.sleep(0.01)
        raise AssertionError("the job was not cancelled")

    import mprviewer.gui.main_window as main_window

    monkeypatch.setattr(main_window, "load_source", slow_load)
    with qtbot.waitSignal(window.runner.cancelled, timeout=10000):
        window.open_source("slow")
        qtbot.waitUntil(lambda: window.runner.dialog is not None
                        and window.runner.dialog.isVisible(), timeout=5000)
        assert reached.is_set()
        qtbot.waitUntil(lambda: "files read" in window.runner.dialog.labelText(), timeout=5000)
        assert window.runner.dialog.maximum() == 500
        # The user presses Cancel in the progress dialog.
        window.runner.dialog.canceled.emit()
    assert not window.runner.busy
    assert window.volume is volume
    assert window.error_box is None  # cancelling is not an error
    assert window.runner.dialog is None


def test_cancel_reaches_the_real_loader(make_viewer, qtbot):
    from mprviewer.gui.main_window import load_source

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled):
        load_source("demo", lambda done, total: None, cancel)


def test_dropping_a_folder_opens_it(make_viewer, qtbot, small_study):
    window = make_viewer()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_study))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    text_only = QMimeData()
    text_only.setText("hello")
    refused = QDragEnterEvent(QPoint(20, 20), Qt.CopyAction, text_only, Qt.LeftButton,
                              Qt.NoModifier)
    window.dragEnterEvent(refused)
    assert not refused.isAccepted()
    drop = QDropEvent(QPointF(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.volume_changed, timeout=30000) as blocker:
        window.dropEvent(drop)
    assert blocker.args[0].shape == (12, 32, 32)


def test_demo_study_opens_with_both_series(make_viewer, qtbot):
    window = make_viewer()
    with qtbot.waitSignal(window.first_frame_shown, timeout=60000):
        window.open_source("demo")
    assert window.series_table.table.rowCount() == 2
    assert window.volume.units == "HU"
    nk, nj, ni = window.volume.shape
    assert ni >= 256 and nj >= 256 and nk >= 120
    assert window.controls.preset.currentData() in ("file", "custom")
    qtbot.waitUntil(lambda: window.is_3d_ready or "not available"
                    in window.views.volume_view.info.text(), timeout=20000)


def test_unreadable_largest_series_falls_back_to_the_next(make_viewer, qtbot, small_study,
                                                          monkeypatch):
    from mprviewer.errors import DicomError
    from mprviewer.io.series import Series

    real_load = Series.load

    def load(self, progress=None, cancel=None):
        if self.description == "First":
            raise DicomError(f"series {self.name!r}: pixel data cannot be read (damaged)")
        return real_load(self, progress=progress, cancel=cancel)

    monkeypatch.setattr(Series, "load", load)
    window = make_viewer()
    volume = _open(window, qtbot, small_study)
    assert volume.shape == (8, 24, 24) and window.series.description == "Second"
    assert any("damaged" in w for w in volume.warnings)
    assert "damaged" in window.status.warnings_label.toolTip()
    assert window.series_table.table.rowCount() == 2  # the other series can still be chosen


def test_skipped_files_are_named_with_their_reason(make_viewer, qtbot, tmp_path):
    from PyQt5.QtWidgets import QMessageBox

    from mprviewer.synthetic.writer import write_series

    folder = tmp_path / "mixed"
    write_series(folder, np.arange(6 * 16 * 16, dtype=np.int16).reshape(6, 16, 16), seed=9)
    (folder / "scanner-notes.txt").write_text("not an image")
    window = make_viewer()
    volume = _open(window, qtbot, folder)
    assert volume.shape == (6, 16, 16)  # the good slices, all of them
    table = window.series_table
    assert table.skipped_label.text() == "1 file(s) skipped"
    assert table.skipped_button.isVisible()
    qtbot.mouseClick(table.skipped_button, Qt.LeftButton)
    box = next(w for w in table.findChildren(QMessageBox) if w.isVisible())
    lines = box.detailedText().splitlines()
    assert len(lines) == 1
    name, reason = lines[0].rsplit(": ", 1)
    assert name.endswith("scanner-notes.txt") and reason == "not a DICOM file"
    box.close()


def test_a_missing_slice_is_shown_in_the_series_row_and_status_bar(make_viewer, qtbot,
                                                                    small_study, tmp_path):
    from mprviewer.synthetic.writer import write_series

    values = np.zeros((10, 16, 16), dtype=np.int16)
    write_series(small_study / "gap", values, skip=[4], slice_spacing=2.5, series_number=3,
                 description="Gappy", seed=4, study_uid="1.2.826.0.1.9")
    window = make_viewer()
    _open(window, qtbot, small_study)
    table = window.series_table.table
    rows = {table.item(r, 1).text(): r for r in range(table.rowCount())}
    assert set(rows) == {"First", "Second", "Gappy"}
    flag = table.item(rows["Gappy"], table.columnCount() - 1)
    warnings = window.study.series[rows["Gappy"]].warnings
    # k=3 is the last image before the gap (slice 4 of 10 was never written).
    gap = next(w for w in warnings if w.startswith("missing slice"))
    assert "k=3" in gap
    assert flag.text() == f"⚠ {len(warnings)}" and flag.toolTip().splitlines() == warnings
    assert table.item(rows["First"], table.columnCount() - 1).text() == ""
    assert window.status.warnings_label.text() == ""  # "First" is shown: no warning
    with qtbot.waitSignal(window.volume_changed, timeout=20000):
        window.series_table.series_chosen.emit(rows["Gappy"])
    label = window.status.warnings_label
    assert len(window.volume.warnings) > 1  # the gap, and how it was filled
    assert label.text().startswith(f"⚠ {gap[:40]}")
    assert label.text().endswith(f"(+{len(window.volume.warnings) - 1} more)")
    assert gap in label.toolTip().splitlines()
    assert flag.text() == f"⚠ {len(window.volume.warnings)}" and gap in flag.toolTip()
