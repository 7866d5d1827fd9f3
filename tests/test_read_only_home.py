"""A per-user data folder that cannot be written: the viewer starts and says marks cannot be
autosaved; ``pacs`` commands give one line and exit 3."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from mprviewer.paths import data_dir_problem, folder_problem
from tests import gui_fixtures
from tests.orthanc import free_port
from tests.readonly import read_only_folder

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def read_only_home(tmp_path, monkeypatch):
    with read_only_folder(tmp_path / "home") as home:
        monkeypatch.setenv("MPRVIEWER_HOME", str(home))
        before = sorted(os.listdir(home)) if home.is_dir() else None
        yield home
        assert (sorted(os.listdir(home)) if home.is_dir() else None) == before


def test_the_problem_is_found_by_writing(read_only_home, tmp_path):
    assert str(read_only_home) in data_dir_problem()
    assert folder_problem(tmp_path) == ""
    assert folder_problem(tmp_path / "not" / "yet") == ""  # its parent can be written
    assert not (tmp_path / "not").exists()  # and nothing was created to find out


def _pacs(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPRVIEWER_PACS_")}
    return subprocess.run([sys.executable, "-m", "mprviewer", "pacs", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [
    ["cache"],
    ["retrieve", "--server", "http://127.0.0.1:{port}/dicom-web", "--study", "1.2.3"],
    ["servers", "add", "mine", "http://127.0.0.1:{port}/dicom-web"],
])
def test_pacs_commands_say_so_in_one_line(read_only_home, args):
    port = free_port()  # nothing listens: the data folder is refused before any connection
    result = _pacs(*(a.format(port=port) for a in args))
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("mprviewer: ")
    assert "MPRVIEWER_HOME" in lines[0] and str(read_only_home) in lines[0]


@pytest.fixture
def study_zip(tmp_path) -> Path:
    """A study in a zip: its marks would be autosaved in the data folder."""
    from mprviewer.synthetic.writer import write_series

    folder = tmp_path / "study"
    write_series(folder / "ct", (np.arange(6 * 16 * 16) % 300).reshape(6, 16, 16)
                 .astype(np.int16), seed="ro-home", study_uid="1.2.826.0.1.3680043.8.498.5")
    path = tmp_path / "study.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(folder.rglob("*")):
            zf.write(file, file.relative_to(folder).as_posix())
    return path


@pytest.mark.gui
def test_the_viewer_starts_and_says_marks_cannot_be_autosaved(read_only_home, study_zip,
                                                              make_viewer, qtbot):
    from mprviewer.gui.annotation_controller import install_annotations

    window = make_viewer()
    assert str(read_only_home) in window.data_folder_problem
    assert "cannot be autosaved" in window.status.currentMessage()
    controller = install_annotations(window)
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(study_zip))
    assert "cannot be autosaved" in controller.save_problem
    assert "cannot be autosaved" in controller.panel.saved_label.text()
    axial = window.views.slice_views["axial"].interactor
    axial.setFocus(Qt.OtherFocusReason)
    window.state.set_focus("axial")
    qtbot.keyClick(axial, Qt.Key_M)  # marking still works, in memory
    ref = controller.ref
    assert controller.aset.slices_for(ref.uid, ref.name, "axial") == [
        window.state.slices["axial"]]
    controller.confirm_close = lambda problem: True  # the export offer is tested elsewhere
