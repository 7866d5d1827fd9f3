"""The labeling worklist in the real viewer: label keys on the slice on screen, next study,
statuses, background preparation, and a study that fails to load."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from mprviewer.gui import worklist_panel
from mprviewer.gui.worklist_panel import install_worklist
from mprviewer.project import Project
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui
READER = "ann"


@pytest.fixture
def project_folder(tmp_path: Path) -> Path:
    """Five small studies (12 axial slices of 24 x 28); study 1 already done."""
    from mprviewer.synthetic.writer import make_uid, write_series

    for n in range(5):
        array = np.full((12, 24, 28), 40, dtype=np.int16)
        array[:, 6:18, 6 + n:20] = 300
        write_series(tmp_path / "src" / f"case{n}", array, slice_spacing=2.0,
                     study_uid=make_uid(21, "wl", n), seed=f"wl{n}", window=(40, 400))
    with Project.create(tmp_path / "proj", [str(tmp_path / "src")], "ich") as p:
        p.set_status(1, READER, "done")
    return tmp_path / "proj"


def _start(make_viewer, qtbot, folder: Path):
    window = make_viewer()
    window.activateWindow()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        controller = install_worklist(window, str(folder), READER)
    return window, controller


def _focus(window, qtbot, plane: str):
    interactor = window.views.slice_views[plane].interactor
    interactor.setFocus(Qt.OtherFocusReason)
    window.state.set_focus(plane)
    qtbot.waitUntil(lambda: window.state.focused_plane == plane, timeout=2000)
    return interactor


def _opened(window, qtbot, controller, index: int) -> None:
    qtbot.waitUntil(lambda: controller.worklist.current == index
                    and window.study is not None
                    and window.study.uid == controller.worklist.project.study(index).uid,
                    timeout=30000)


def test_hotkeys_toggle_labels_on_the_slice_on_screen(make_viewer, qtbot, project_folder):
    window, controller = _start(make_viewer, qtbot, project_folder)
    project = controller.worklist.project
    assert controller.worklist.current == 0
    assert window.study.uid == project.study(0).uid
    assert project.status(0, READER)[0] == "in progress"  # opened
    panel = controller.panel
    assert panel.progress_label.text() == "1 / 5 done"
    axial = _focus(window, qtbot, "axial")
    window.state.set_slice("axial", 7)
    qtbot.keyClick(axial, Qt.Key_5)  # subdural
    window.state.set_slice("axial", 8)
    qtbot.keyClick(axial, Qt.Key_5)
    qtbot.keyClick(axial, Qt.Key_1)  # epidural on 8 too
    qtbot.keyClick(axial, Qt.Key_1)  # and off again
    coronal = _focus(window, qtbot, "coronal")
    window.state.set_slice("coronal", 3)
    qtbot.keyClick(coronal, Qt.Key_4)  # subarachnoid in the coronal plane
    marks = {(m.label, m.plane): m.slices for m in project.marks(0, READER)}
    assert marks == {("subdural", "axial"): (7, 8), ("subarachnoid", "coronal"): (3,)}
    # what the views show is the project's marks
    assert window.views.slice_views["axial"].marked == {7: ["subdural"], 8: ["subdural"]}
    assert window.views.slice_views["coronal"].marked == {3: ["subarachnoid"]}
    assert panel.table.item(0, 3).text() == "3"
    # the marked axial slices are the images at those positions: slice 7 is the 8th from
    # inferior, whatever the file order
    series = project.find_series(0)
    assert window.volume.sop_instance_uids[7] in _sops_marked(project, series.id)


def _sops_marked(project, series_id: int) -> set[str]:
    from sqlalchemy import select

    from mprviewer.project import store

    with project.store.read() as conn:
        rows = conn.execute(select(store.images.c.slice, store.images.c.sop_uid).where(
            store.images.c.series_id == series_id)).all()
    marked = {s for m in project.marks(0, READER) if m.plane == "axial" for s in m.slices}
    return {sop for sl, sop in rows if sl in marked}


def test_next_skips_finished_studies_and_statuses_move_on(make_viewer, qtbot, project_folder,
                                                         monkeypatch):
    monkeypatch.setattr(worklist_panel, "PREPARE_AFTER_MS", 0)
    window, controller = _start(make_viewer, qtbot, project_folder)
    project = controller.worklist.project
    axial = _focus(window, qtbot, "axial")
    qtbot.keyClick(axial, Qt.Key_D)
    assert project.status(0, READER)[0] == "done"
    # the next study (2: study 1 is done) was read in the background meanwhile
    qtbot.waitUntil(lambda: controller.worklist._prepared is not None
                    and controller.worklist._prepared.index == 2
                    and controller.worklist._prepared.done.is_set(), timeout=30000)
    qtbot.keyClick(axial, Qt.Key_N)
    _opened(window, qtbot, controller, 2)
    assert controller.last_open_prepared
    axial = _focus(window, qtbot, "axial")
    qtbot.keyClick(axial, Qt.Key_0, Qt.ShiftModifier)  # no finding, and on to study 3
    assert project.status(2, READER)[0] == "no finding"
    _opened(window, qtbot, controller, 3)
    axial = _focus(window, qtbot, "axial")
    qtbot.keyClick(axial, Qt.Key_Left, Qt.ControlModifier)  # back to the study just closed
    _opened(window, qtbot, controller, 2)
    axial = _focus(window, qtbot, "axial")
    qtbot.keyClick(axial, Qt.Key_Right, Qt.ControlModifier)  # next unfinished after 2: 3
    _opened(window, qtbot, controller, 3)
    qtbot.keyClick(_focus(window, qtbot, "axial"), Qt.Key_N)
    _opened(window, qtbot, controller, 4)
    assert controller.panel.progress_label.text() == "3 / 5 done"


def test_a_study_that_fails_to_load_becomes_unreadable(make_viewer, qtbot, project_folder):
    src = project_folder.parent / "src"
    shutil.rmtree(src / "case2")
    (src / "case3" / sorted(p.name for p in (src / "case3").iterdir())[0]).write_bytes(b"x")
    window, controller = _start(make_viewer, qtbot, project_folder)
    project = controller.worklist.project
    with qtbot.waitSignal(window.load_failed, timeout=30000):
        controller.next_study()  # study 2: its folder is gone
    status, reason = project.status(2, READER)
    assert status == "unreadable" and "case2" in reason and "no longer exists" in reason
    if window.error_box is not None:
        window.error_box.close()
    controller.next_study()  # the worklist goes on
    _opened(window, qtbot, controller, 3)
    assert controller.panel.table.item(2, 2).text().startswith("unreadable: ")


def test_file_menu_opens_a_project_in_a_new_window(make_viewer, qtbot, project_folder,
                                                   monkeypatch):
    import subprocess

    from PyQt5.QtWidgets import QFileDialog

    window = make_viewer()
    action = worklist_panel.install_open_project_action(window)
    assert action in window.file_menu.actions()
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kw: started.append(argv))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(project_folder))
    action.trigger()
    assert started and started[0][-3:] == ["mprviewer", "view", str(project_folder)]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(project_folder.parent / "src"))
    action.trigger()
    assert len(started) == 1  # not a project: an error, no window
    assert "holds no project.json" in window.error_box.text()
    window.error_box.close()


def test_view_command_opens_a_project_folder(project_folder, tmp_path):
    import subprocess
    import sys

    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "mprviewer", "view", str(project_folder), "--reader", "cy",
         "--size", "900x600", "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000
    with Project.open(project_folder) as p:  # cy's first unfinished study was opened
        assert p.status(0, "cy")[0] == "in progress"
        assert p.status(0, READER)[0] == "unread"
    bad = subprocess.run([sys.executable, "-m", "mprviewer", "view", str(project_folder),
                          "--series", "1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--series does not apply to a project" in bad.stderr
