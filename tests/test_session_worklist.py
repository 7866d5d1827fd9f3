"""A labeling project's worklist in the viewing session, with no front end: the keys' actions
act on the session's study and slice and land in the project's event log."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mprviewer.errors import ProjectError
from mprviewer.project import Project
from mprviewer.project.worklist import ProjectWorklist
from mprviewer.session import Session
from mprviewer.session.worklist import SessionWorklist

READER = "ann"


@pytest.fixture
def bound(tmp_path: Path):
    from mprviewer.synthetic.writer import make_uid, write_series

    for n in range(4):
        write_series(tmp_path / "src" / f"case{n}", np.full((10, 12, 14), n, np.int16),
                     study_uid=make_uid(41, "sw", n), seed=f"sw{n}", shuffle=n + 1)
    project = Project.create(tmp_path / "proj", [str(tmp_path / "src")], "ich")
    project.set_status(1, READER, "done")
    session = Session(annotate=False)
    messages: list[str] = []
    session.message.connect(lambda text, problem: messages.append(text))
    sw = SessionWorklist(session, ProjectWorklist(project, READER))
    yield sw, session, project, messages, tmp_path
    sw.close()
    session.close()
    project.close()


def test_keys_act_on_the_session_slice_and_statuses_move_on(bound):
    sw, session, project, messages, _ = bound
    assert sw.next_study() and session.study.uid == project.study(0).uid
    assert project.status(0, READER)[0] == "in progress"
    changed = []
    sw.marks_changed.connect(lambda: changed.append(1))
    session.set_slice("axial", 6)
    assert sw.toggle_label(5) is True
    session.focus("coronal")
    session.set_slice("coronal", 2)
    assert sw.toggle_label(3) is True
    assert sw.toggle_label(9) is None and messages[-1] == "No label on key 9."
    assert sw.marked("axial") == {6: ["subdural"]}
    assert sw.marked("coronal") == {2: ["intraventricular"]}
    assert len(changed) == 2
    # the axial mark is on the image at slice 6 of the volume on screen
    (mark,) = [m for m in project.marks(0, READER) if m.plane == "axial"]
    assert mark.slices == (6,)
    assert sw.set_status("done")
    assert sw.next_study() and session.study.uid == project.study(2).uid  # 1 was done
    assert sw.set_status("no finding")  # and on to study 3
    assert session.study.uid == project.study(3).uid
    assert sw.previous_study() and session.study.uid == project.study(2).uid
    assert sw.set_status("done") and sw.next_study()
    assert session.study.uid == project.study(3).uid
    assert sw.set_status("done")
    assert not sw.next_study() and messages[-1] == "Every study is finished (4 / 4 done)."


def test_session_next_study_uses_the_worklist_and_failures_become_unreadable(bound):
    sw, session, project, _messages, tmp_path = bound
    assert session.next_study()  # the Session's own "next" asks the worklist
    assert session.study.uid == project.study(0).uid
    assert project.status(0, READER)[0] == "in progress"
    shutil.rmtree(tmp_path / "src" / "case2")
    sw.worklist.set_status("done")
    with pytest.raises(ProjectError, match="no longer exists"):
        sw.next_study()  # no runner: the load runs here and raises
    sw.failed("case2: its images are gone")
    assert project.status(2, READER) == ("unreadable", "case2: its images are gone")
    assert sw.next_study() and session.study.uid == project.study(3).uid


def test_project_marks_are_refused_on_tilted_planes_and_hidden_on_a_reslice(bound):
    sw, session, project, messages, _ = bound
    assert sw.next_study()
    session.set_slice("axial", 6)
    assert sw.toggle_label(5) is True
    session.rotate_crosshair("axial", 25.0)
    assert sw.toggle_label(3) is None and "tilted" in messages[-1]
    assert session.reset_oblique()
    # the same volume shown as a display-only resample (what an oblique series' reslice is)
    session.show_volume(session.volume, display_only=True)
    assert sw.marked("axial") == {}
    assert sw.toggle_label(3) is None and "acquisition grid" in messages[-1]
    assert [m.slices for m in project.marks(0, READER)] == [(6,)]


def test_a_study_whose_largest_series_cannot_be_read_shows_the_next_one():
    """Worklist and adjudication open studies through the same loader as a source: a series
    that fails to decode is named in the warnings and the next largest is shown."""
    from types import SimpleNamespace

    from mprviewer.errors import DicomError
    from mprviewer.session.loading import load_study

    class Series:
        def __init__(self, name, shape, fails):
            self.name, self.shape, self.fails = name, shape, fails

        def load(self, progress=None, cancel=None):
            if self.fails:
                raise DicomError(f"{self.name}: pixel data cannot be decoded")
            return SimpleNamespace(warnings=["kept"])

    closed = []
    study = SimpleNamespace(
        series=[Series("small", (4, 8, 8), False), Series("big", (40, 64, 64), True)],
        source_label="case07", close=lambda: closed.append(True))
    result = load_study(study, None, None)
    assert result.series_index == 0
    assert result.volume.warnings[0].startswith("series 'big' not shown: big: pixel data")
    assert result.volume.warnings[1:] == ["kept"] and closed == []

    study.series[0].fails = True
    with pytest.raises(DicomError, match="big: pixel data"):
        load_study(study, None, None)
    assert closed == [True]  # a study that shows nothing is closed, not leaked


def test_read_ahead_falls_back_to_the_next_series_like_opening(tmp_path, monkeypatch):
    """The next study read in the background shows what opening it would show: its largest
    series cannot be decoded, so the smaller one, with a warning naming the first."""
    from mprviewer.errors import DicomError
    from mprviewer.io.series import Series
    from mprviewer.synthetic.writer import make_uid, write_series

    write_series(tmp_path / "src" / "case0", np.full((6, 8, 8), 1, np.int16),
                 study_uid=make_uid(42, "ra", 0), seed="ra0")
    study_uid = make_uid(42, "ra", 1)
    write_series(tmp_path / "src" / "case1" / "small", np.full((6, 8, 8), 7, np.int16),
                 study_uid=study_uid, seed="ra1", series_number=1, description="small")
    write_series(tmp_path / "src" / "case1" / "big", np.full((12, 16, 16), 9, np.int16),
                 study_uid=study_uid, seed="ra2", series_number=2, description="big")
    real_load = Series.load

    def load(self, *args, **kwargs):
        if self.shape[0] == 12:
            raise DicomError(f"{self.name}: pixel data cannot be decoded")
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Series, "load", load)
    project = Project.create(tmp_path / "proj", [str(tmp_path / "src")], "ich")
    session = Session(annotate=False)
    sw = SessionWorklist(session, ProjectWorklist(project, READER))
    try:
        assert sw.next_study()
        sw.prepare_next()
        prepared = sw.worklist._prepared
        assert prepared is not None and prepared.done.wait(30)
        assert prepared.error is None
        assert sw.set_status("done") and sw.next_study()
        assert sw.last_open_prepared
        assert session.study.uid == study_uid
        assert int(session.volume.array.max()) == 7  # the small series' voxels
        assert any("not shown" in w and "pixel data cannot be decoded" in w
                   for w in session.volume.warnings)
    finally:
        sw.close()
        session.close()
        project.close()
