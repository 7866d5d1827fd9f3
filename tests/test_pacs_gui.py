"""The Open from PACS dialog against a real Orthanc: search, browse series, open, errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import mprviewer
from mprviewer.synthetic.writer import write_series
from tests.gui_fixtures import make_viewer, qapp  # noqa: F401
from tests.orthanc import Orthanc, free_port
from tests.pacs_data import ct_series, module_home

pytestmark = pytest.mark.gui


class FakeMainWindow:
    """Stands in for the viewer window: retrieves what the dialog hands over, as the viewer's
    ``open_remote`` does, and records the cache folder and the series the dialog listed."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.listed: list[object] = []

    def open_remote(self, server, study_uid, series_uid=None, listed=None) -> None:
        from mprviewer.pacs import retrieve_to_cache

        folder = retrieve_to_cache(server, study_uid=study_uid, series_uid=series_uid)
        self.opened.append(str(folder))
        self.listed.append(listed)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    with module_home(tmp_path_factory):
        ct = ct_series(tmp_path_factory.mktemp("gui-ct"), slices=5, size=16, seed="gui-ct")
        with Orthanc() as orthanc:
            orthanc.upload(ct.files)
            yield orthanc, ct


@pytest.fixture
def dialog(qapp, qtbot):  # noqa: F811
    from mprviewer.gui.pacs_dialog import PacsDialog
    from mprviewer.gui.worker import running_workers

    window = FakeMainWindow()
    dlg = PacsDialog(window)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.reject()
    assert running_workers() == []


def test_search_expand_and_open_a_series(served, dialog, qtbot) -> None:
    orthanc, ct = served
    dialog.address_edit.setText(orthanc.dicomweb_url)
    dialog.patient_edit.setText("doe")
    dialog.modality_combo.setCurrentText("CT")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1, timeout=10000)
    study_item = dialog.tree.topLevelItem(0)
    assert [study_item.text(n) for n in range(4)] == ["2024-01-15", "DOE^JANE", "P-001", "CT"]
    assert study_item.text(5) == "5" and study_item.text(6) == ct.study_uid

    study_item.setExpanded(True)  # lists the series in the background
    qtbot.waitUntil(lambda: study_item.childCount() == 1, timeout=10000)
    series_item = study_item.child(0)
    assert (series_item.text(3), series_item.text(4), series_item.text(6)) == (
        "CT", "CT test series", ct.series_uid)

    dialog.tree.setCurrentItem(series_item)
    assert dialog.open_button.isEnabled()
    with qtbot.waitSignal(dialog.opened, timeout=20000) as opened:
        dialog.open_button.click()
    assert opened.args == [ct.study_uid]
    [folder] = map(Path, dialog.main_window.opened)
    [listed] = dialog.main_window.listed
    assert [s.series_uid for s in listed] == [ct.series_uid]  # the chosen row, as listed
    study = mprviewer.open_study(str(folder))
    try:
        [series] = study.series
        assert series.uid == ct.series_uid
        assert np.array_equal(series.load().array, ct.array)
    finally:
        study.close()


def test_search_error_is_shown_and_nothing_listed(dialog, qtbot) -> None:
    dialog.address_edit.setText(f"http://127.0.0.1:{free_port()}/dicom-web")
    dialog.search_button.click()
    qtbot.waitUntil(lambda: "connection refused" in dialog.status_label.text(), timeout=10000)
    assert dialog.tree.topLevelItemCount() == 0
    assert dialog.search_button.isEnabled()
    dialog.date_edit.setText("not a date")
    dialog.search_button.click()
    assert "YYYYMMDD" in dialog.status_label.text()


def test_save_and_pick_a_server(served, dialog) -> None:
    orthanc, _ct = served
    from mprviewer.pacs import saved_servers

    dialog.server_combo.setCurrentText("(new server)")
    dialog.name_edit.setText("lab")
    dialog.address_edit.setText(orthanc.dicomweb_url)
    dialog.user_edit.setText("alice")
    dialog.password_edit.setText("pw-123")
    dialog.save_button.click()
    assert "pw-123" not in dialog.status_label.text()
    [saved] = saved_servers()
    assert (saved.name, saved.address, saved.username, saved.password) == (
        "lab", orthanc.dicomweb_url, "alice", "pw-123")
    assert dialog.server_combo.currentText() == "lab"
    dialog.address_edit.clear()
    dialog.server_combo.setCurrentIndex(dialog.server_combo.findText("(new server)"))
    dialog.server_combo.setCurrentIndex(dialog.server_combo.findText("lab"))
    assert dialog.address_edit.text() == orthanc.dicomweb_url
    dialog.remove_button.click()
    assert saved_servers() == [] and dialog.server_combo.findText("lab") == -1


def test_send_key_images_from_the_viewer(served, qapp, qtbot, monkeypatch) -> None:  # noqa: F811
    """File > Send Key Images to PACS stores a KOS of the marked slices on the server."""
    from PyQt5.QtWidgets import QInputDialog, QMessageBox

    from mprviewer.gui.annotation_controller import install_annotations
    from mprviewer.gui.annotation_dialogs import ask_send_kos
    from mprviewer.gui.main_window import MainWindow
    from mprviewer.pacs import search_series

    orthanc, ct = served
    window = MainWindow()
    qtbot.addWidget(window)
    controller = install_annotations(window)
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(ct.folder))
    ref = next(iter(controller.refs.values()))
    controller.aset.mark(ref, ref.acquisition_plane, [1, 3], "Bleed")
    asked: list[str] = []
    monkeypatch.setattr(QInputDialog, "getItem",
                        lambda *a, **k: (asked.append("server") or orthanc.dicomweb_url, True))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: None)
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda _p, _t, text: pytest.fail(f"send failed: {text}"))
    ask_send_kos(controller)
    assert asked == ["server"]
    key_series = [s for s in search_series(orthanc.dicomweb_url, ct.study_uid)
                  if s.modality == "KO"]
    assert len(key_series) == 1 and key_series[0].num_instances == 1
    window.close()


# -- the viewer retrieving from the PACS -------------------------------------------------
def _local_study(folder: Path) -> Path:
    """A small study to have on screen before the PACS one (it must survive failures)."""
    write_series(folder, np.full((3, 8, 8), 7.0), description="local study", seed="local")
    return folder


@pytest.fixture
def local_viewer(make_viewer, qtbot, tmp_path):  # noqa: F811
    """A viewer showing a small local study: what a failed or cancelled PACS open must keep."""
    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=20000):
        window.open_source(str(_local_study(tmp_path / "local")))
    return window


def _hold_retrieval(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make retrieve_to_cache wait for ``release`` (so the test can look at the window)."""
    import mprviewer.pacs as pacs

    started, release = threading.Event(), threading.Event()
    real = pacs.retrieve_to_cache

    def held(*args, **kwargs):
        started.set()
        cancel = args[2] if len(args) > 2 else kwargs.get("cancel")
        while not release.wait(0.05):
            if cancel is not None and cancel.is_set():
                break
        return real(*args, **kwargs)

    monkeypatch.setattr(pacs, "retrieve_to_cache", held)
    return started, release


def _table_rows(window) -> list[list[str]]:
    table = window.series_table.table
    return [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def test_dialog_open_lists_the_series_before_the_images_arrive(
    served, local_viewer, qtbot, monkeypatch
) -> None:
    """The series table shows the server's series at once; the volume follows."""
    from mprviewer.gui.pacs_dialog import PacsDialog

    orthanc, ct = served
    window = local_viewer
    local_volume = window.volume
    started, release = _hold_retrieval(monkeypatch)
    dlg = PacsDialog(window)
    qtbot.addWidget(dlg)
    dlg.address_edit.setText(orthanc.dicomweb_url)
    dlg.search_button.click()
    qtbot.waitUntil(lambda: dlg.tree.topLevelItemCount() == 1, timeout=10000)
    dlg.tree.setCurrentItem(dlg.tree.topLevelItem(0))  # the study, its series not listed yet
    dlg.open_button.click()
    assert not dlg.isVisible()  # handed over: the viewer retrieves with its own progress

    qtbot.waitUntil(lambda: window.series_table.pending, timeout=10000)
    assert started.wait(10)
    [row] = _table_rows(window)
    assert row[1:4] == ["CT test series", "CT", "5 images"]
    assert window.volume is local_volume  # the images are not here yet
    window.series_table.table.cellDoubleClicked.emit(0, 1)  # a listed row cannot be loaded yet
    assert window.runner.busy and window.volume is local_volume

    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        release.set()
    assert not window.series_table.pending
    assert window.series.uid == ct.series_uid
    assert window.series.name == "1 CT test series"  # what annotations export keys on
    assert np.array_equal(window.volume.array, ct.array)
    [row] = _table_rows(window)
    assert row[1] == "CT test series" and row[3] == "16 × 16 × 5"
    assert f"study {ct.study_uid} on {orthanc.dicomweb_url}" in window.windowTitle()


def test_cancelled_retrieval_keeps_the_study_on_screen(
    served, local_viewer, qtbot, monkeypatch
) -> None:
    from mprviewer.pacs import cache, parse_server

    orthanc, ct = served
    window = local_viewer
    before, local_volume = _table_rows(window), window.volume
    started, _release = _hold_retrieval(monkeypatch)
    server = parse_server(orthanc.dicomweb_url)
    assert cache.entries() == []  # each test has its own cache
    window.open_remote(server, ct.study_uid)
    qtbot.waitUntil(lambda: window.series_table.pending, timeout=10000)
    assert started.wait(10)
    with qtbot.waitSignal(window.runner.cancelled, timeout=10000):
        window.runner.cancel()
    assert not window.series_table.pending and _table_rows(window) == before
    assert window.volume is local_volume
    assert cache.lookup(server.cache_key, ct.study_uid, None) is None


def test_failed_retrieval_keeps_the_study_on_screen(
    served, local_viewer, qtbot, monkeypatch
) -> None:
    import mprviewer.pacs as pacs

    orthanc, ct = served
    window = local_viewer
    before, local_volume = _table_rows(window), window.volume
    listed = threading.Event()

    def broken(*_args, **_kwargs):
        listed.set()
        raise pacs.PacsConnectionError("connection to the server was lost while retrieving")

    monkeypatch.setattr(pacs, "retrieve_to_cache", broken)
    with qtbot.waitSignal(window.load_failed, timeout=20000) as failure:
        window.open_source(f"{orthanc.dicomweb_url}/studies/{ct.study_uid}")
    assert listed.is_set() and "connection to the server was lost" in failure.args[0]
    assert not window.series_table.pending and _table_rows(window) == before
    assert window.volume is local_volume
    window.error_box.close()

    nowhere = f"http://127.0.0.1:{free_port()}/dicom-web/studies/{ct.study_uid}"
    with qtbot.waitSignal(window.load_failed, timeout=20000) as failure:
        window.open_source(nowhere)
    assert "cannot reach" in failure.args[0] and _table_rows(window) == before
    window.error_box.close()


def test_study_url_opens_with_its_name_and_no_password_kept(
    served, make_viewer, qtbot  # noqa: F811
) -> None:
    """``mprviewer view <DICOMweb study URL>``: the same progressive open; credentials in the
    URL are not shown in the window title nor kept in the recent list."""
    from mprviewer.gui import open_dialogs

    orthanc, ct = served
    url = f"{orthanc.dicomweb_url}/studies/{ct.study_uid}"
    with_password = url.replace("http://", "http://reader:pw-456@", 1)
    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(with_password)
    assert np.array_equal(window.volume.array, ct.array)
    assert url in window.windowTitle() and "pw-456" not in window.windowTitle()
    assert window.study.source_label == url
    recent = open_dialogs.recent_sources()
    assert recent[0] == url and not any("pw-456" in str(r) for r in recent)


def test_a_cached_study_opens_in_the_viewer_without_its_server(
    served, make_viewer, qtbot, monkeypatch  # noqa: F811
) -> None:
    """Offline reading: the second open of a study URL asks the server nothing."""
    import mprviewer.pacs.dicomweb as dicomweb
    from mprviewer.pacs import PacsConnectionError

    orthanc, ct = served
    url = f"{orthanc.dicomweb_url}/studies/{ct.study_uid}"
    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(url)

    def offline(*_args, **_kwargs):
        raise PacsConnectionError(f"cannot reach {orthanc.dicomweb_url}: the network is down")

    for name in ("search_series", "search_studies", "retrieve"):
        monkeypatch.setattr(dicomweb, name, offline)
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(url)
    assert np.array_equal(window.volume.array, ct.array)
    assert window.error_box is None


def test_a_late_listing_of_an_abandoned_retrieval_is_dropped(
    served, local_viewer, qtbot, monkeypatch, tmp_path
) -> None:
    """The user opens something else while the server is still listing: the late answer must
    not replace the series table of what the user chose."""
    import mprviewer.pacs as pacs

    orthanc, ct = served
    window = local_viewer
    asked, answer, answered = threading.Event(), threading.Event(), threading.Event()
    real = pacs.list_retrieval

    def slow_listing(*args, **kwargs):
        asked.set()
        answer.wait(20)
        try:
            return real(*args, **kwargs)
        finally:
            answered.set()

    monkeypatch.setattr(pacs, "list_retrieval", slow_listing)
    window.open_source(f"{orthanc.dicomweb_url}/studies/{ct.study_uid}")
    assert asked.wait(10)
    other = tmp_path / "other"
    write_series(other, np.full((4, 8, 8), 3.0), description="other study", seed="other")
    with qtbot.waitSignal(window.volume_changed, timeout=20000):
        window.open_source(str(other))
    answer.set()
    assert answered.wait(10)  # the abandoned job has its listing and hands it to the window
    qtbot.wait(200)
    assert not window.series_table.pending
    assert [row[1] for row in _table_rows(window)] == ["other study"]
