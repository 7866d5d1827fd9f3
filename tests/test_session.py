"""The viewing session alone, with no Qt application: a whole reading, as a front end drives it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mprviewer.errors import AnnotationError
from mprviewer.session import Session
from mprviewer.synthetic.demo import DEMO_LESION_LPS, DEMO_SHAPE


class Recorder:
    """Every event of a session, in order, as (name, args)."""

    NAMES = ("study_changed", "volume_changed", "slice_changed", "window_changed",
             "threshold_changed", "display_changed", "focus_changed", "camera_changed",
             "marks_changed", "message")

    def __init__(self, session: Session) -> None:
        self.events: list[tuple[str, tuple]] = []
        for name in self.NAMES:
            getattr(session, name).connect(lambda *a, n=name: self.events.append((n, a)))

    def of(self, name: str) -> list[tuple]:
        return [a for n, a in self.events if n == name]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture()
def reading() -> tuple[Session, Recorder]:
    session = Session(reader="Dr Reader")
    events = Recorder(session)
    session.open("demo")
    yield session, events
    session.close()


def test_a_whole_reading_through_the_session(reading) -> None:
    session, events = reading
    # Open the demo: the largest series is on screen, every plane at its middle slice.
    assert len(events.of("study_changed")) == 1 and len(events.of("volume_changed")) == 1
    assert session.volume.shape == DEMO_SHAPE
    assert session.state.slices["axial"] == DEMO_SHAPE[0] // 2

    # Step slices in the focused (axial) view; each step says which plane and where.
    session.focus("axial")
    start = session.state.slices["axial"]
    events.clear()
    for _ in range(3):
        session.next_slice()
    session.previous_slice()
    assert session.state.slices["axial"] == start + 2
    assert events.of("slice_changed") == [("axial", start + 1), ("axial", start + 2),
                                          ("axial", start + 3), ("axial", start + 2)]
    session.set_slice("axial", 10_000)  # clamped to the last slice
    assert session.state.slices["axial"] == DEMO_SHAPE[0] - 1
    session.set_slice("axial", start)

    # Window / level and threshold.
    session.set_window(50, 350)
    assert (session.state.window_center, session.state.window_width) == (50.0, 350.0)
    assert events.of("window_changed")[-1] == (50.0, 350.0)
    session.set_threshold(120)
    assert events.of("threshold_changed")[-1] == (120.0,)
    session.toggle_threshold_overlay()
    assert events.of("display_changed")[-1] == ("threshold_overlay", True)

    # Mark this slice, then a range to a slice five further on.
    assert session.toggle_mark() is True
    assert session.marked("axial") == {start: ["Anomaly"]}
    for _ in range(5):
        session.next_slice()
    assert session.mark_range_to_here() == list(range(start, start + 6))
    assert set(session.marked("axial")) == set(range(start, start + 6))
    assert session.marked("coronal") == {}

    # Undo takes the range back, redo restores it, undo again leaves the first mark.
    assert session.undo() is True
    assert session.marked("axial") == {start: ["Anomaly"]}
    assert session.redo() is True
    assert set(session.marked("axial")) == set(range(start, start + 6))
    assert session.undo() is True
    assert set(session.marked("axial")) == {start}

    # A typed range replaces the plane's marks; bad text changes nothing.
    assert session.apply_slices_text("axial", "2-4; 9") == [2, 3, 4, 9]
    assert set(session.marked("axial")) == {2, 3, 4, 9}
    with pytest.raises(AnnotationError):
        session.apply_slices_text("axial", "4-x")
    assert set(session.marked("axial")) == {2, 3, 4, 9}

    # Go to the mark from elsewhere: its first slice, in its plane, which takes the focus.
    session.focus("coronal")
    session.set_slice("axial", 60)
    (_sa, entry), = session.marks.aset.entries()
    assert session.go_to_mark(entry.id) is True
    assert session.state.slices["axial"] == 2
    assert session.focused_plane == "axial"
    assert session.go_to_mark(entry.id) is True  # again: the next of its slices
    assert session.state.slices["axial"] == 3

    # The marks are on disk: a second session on the same study finds them.
    saved = json.loads(session.marks.sidecar.read_text(encoding="utf-8"))
    assert "Dr Reader" in json.dumps(saved)
    again = Session()
    try:
        again.open("demo")
        assert set(again.marked("axial")) == {2, 3, 4, 9}
    finally:
        again.close()


def test_going_to_a_mark_on_another_series_opens_that_series(reading) -> None:
    session, _events = reading
    first = session.series_index
    session.set_slice("axial", 20)
    session.toggle_mark("axial")
    (_sa, entry), = session.marks.aset.entries()
    other = next(i for i in range(len(session.study.series)) if i != first)
    session.open_series(other)
    assert session.series_index == other
    assert session.marked("axial") == {}  # the other series has no marks
    session.set_slice("axial", 90)
    assert session.go_to_mark(entry.id) is True
    assert session.series_index == first
    assert session.state.slices["axial"] == 20
    assert session.marked("axial") == {20: ["Anomaly"]}


def test_a_point_pick_stores_voxel_position_and_value(reading) -> None:
    session, _events = reading
    grid = session.state.grid
    lesion = np.asarray(DEMO_LESION_LPS, dtype=float)
    ijk = np.round(np.linalg.solve(session.volume.affine, [*lesion, 1.0])[:3])
    xyz = np.round(grid.ijk_to_display(ijk)).astype(int)
    point = session.marks.add_point_at("axial", tuple(xyz))
    assert point is not None
    assert np.allclose(point.lps, lesion, atol=2.0)
    i, j, k = (int(v) for v in point.voxel)
    assert point.value == float(session.volume.array[k, j, i])
    session.set_cursor((0, 0, 0))
    assert session.go_to_mark(point.id) is True
    assert session.state.cursor == tuple(int(v) for v in xyz)


def test_series_switches_keep_display_choices_and_reset_window(reading) -> None:
    session, events = reading
    session.set_volume_opacity(True)
    session.set_window(1, 2)
    other = next(i for i in range(len(session.study.series)) if i != session.series_index)
    session.open_series(other)
    assert session.state.volume_opacity is True
    assert (session.state.window_center, session.state.window_width) != (1.0, 2.0)
    events.clear()
    session.set_slice("coronal", 3)  # the new state's events reach the session's listeners
    assert events.of("slice_changed") == [("coronal", 3)]
    session.set_camera("left")
    assert session.camera == "left" and events.of("camera_changed") == [("left",)]


def test_edits_without_a_study_say_so() -> None:
    session = Session()
    messages: list[tuple] = []
    session.message.connect(lambda *a: messages.append(a))
    assert session.toggle_mark() is None
    assert session.mark_range_to_here() == []
    assert session.undo() is False
    assert messages[0] == ("Open a study before marking slices.", True)
    session.next_slice()  # nothing open: nothing to step, no error
    assert session.state is None


def test_the_worklist_hook_opens_the_next_study() -> None:
    class Queue:
        def __init__(self) -> None:
            self.sources = ["demo"]

        def next_source(self):
            return self.sources.pop(0) if self.sources else None

    session = Session()
    try:
        assert session.next_study() is False  # no worklist yet
        session.worklist = Queue()
        assert session.next_study() is True
        assert session.volume is not None and session.volume.shape == DEMO_SHAPE
        assert session.next_study() is False  # the worklist is done
    finally:
        session.close()


def test_a_reading_loads_neither_qt_nor_vtk() -> None:
    code = (
        "import sys\n"
        "from mprviewer.session import Session\n"
        "s = Session(); s.open('demo'); s.next_slice(); s.toggle_mark(); s.undo()\n"
        "assert s.volume is not None\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules}\n"
        "      & {'PyQt5', 'pyvistaqt', 'qtpy', 'vtk', 'vtkmodules', 'pyvista'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
