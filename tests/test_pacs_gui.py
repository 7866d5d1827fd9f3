"""The Open from PACS dialog against a real Orthanc: search, browse series, open, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mprviewer
from tests.gui_fixtures import qapp  # noqa: F401
from tests.orthanc import Orthanc, free_port
from tests.pacs_data import ct_series, module_home

pytestmark = pytest.mark.gui


class FakeMainWindow:
    """Stands in for the viewer window: records what the dialog asks it to open."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def open_source(self, source: str) -> None:
        self.opened.append(source)


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
    folder = Path(opened.args[0])
    assert dialog.main_window.opened == [str(folder)]
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
    from mprviewer.io.pacs import saved_servers

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
    from mprviewer.io.pacs import search_series

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
