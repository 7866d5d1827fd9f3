"""A labeling project's worklist in the viewing session: the current study, next and previous
study, label hotkeys on the slice on screen, statuses, and the next study read ahead.

``SessionWorklist`` binds a :class:`~mprviewer.project.worklist.ProjectWorklist` (the
reader's walk through a project) to a :class:`~mprviewer.session.Session`; every front end
(the desktop window, the browser) calls these methods from its keys and buttons and shows
``marked(plane)``. No Qt, no VTK: loading goes through ``runner(job, title)`` (the front
end's background worker; without one it runs at once), and the read-ahead is a plain thread
started by ``prepare_next()`` when the front end decides the reader is at work.

Events: ``marks_changed()`` after a label key; messages go out on ``session.message``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mprviewer.model.events import Signal
from mprviewer.session.loading import LoadResult, load_study

Job = Callable[[Any, Any], LoadResult]


class SessionWorklist:
    """The worklist of one reader, driving one session (``session.worklist`` is this)."""

    def __init__(self, session: Any, worklist: Any) -> None:
        self.session = session
        self.worklist = worklist
        self.runner: Callable[[Job, str], None] | None = session.runner
        self.loading: int | None = None  # worklist index of the load in flight
        self.last_open_prepared = False  # the last study opened had been read ahead
        self.marks_changed = Signal()
        session.worklist = self
        session.volume_changed.connect(self._on_volume)

    @property
    def project(self) -> Any:
        return self.worklist.project

    def _say(self, text: str, problem: bool = False) -> None:
        self.session.message.emit(text, problem)

    # -- the worklist protocol of Session --------------------------------------------------
    def next_source(self) -> Any:
        """What ``Session.next_study`` opens: the next unfinished study's images (without
        the read-ahead; front ends call :meth:`next_study`)."""
        index = self.worklist.next_index()
        if index is None:
            return None
        info = self.worklist.go_to(index)
        self.loading = index
        locations = list(getattr(info, "locations", ()))
        return locations[0] if len(locations) == 1 else locations

    # -- moving ----------------------------------------------------------------------------
    def next_study(self) -> bool:
        """Open the next study the reader has not finished; False when none is left."""
        index = self.worklist.next_index()
        if index is None:
            self._say(f"Every study is finished ({self.worklist.progress_text()}).")
            return False
        self.open_index(index)
        return True

    def previous_study(self) -> bool:
        """Open the study before the current one (whatever its status)."""
        index = self.worklist.previous_index()
        if index is None:
            self._say("This is the first study of the worklist.")
            return False
        self.open_index(index)
        return True

    def open_index(self, index: int) -> None:
        """Open study ``index`` (at once when it was read ahead)."""
        from mprviewer.project.worklist import Prepared

        worklist = self.worklist
        target = worklist.go_to(index)
        self.loading = index
        self.last_open_prepared = isinstance(target, Prepared)

        def job(progress: Any, cancel: Any) -> LoadResult:
            if isinstance(target, Prepared):
                study = worklist.open(target)
                if target.volume is not None:
                    return LoadResult(study, target.series_index, target.volume)
            else:
                study = worklist.open(target, progress=progress, cancel=cancel)
            return load_study(study, progress, cancel)

        title = f"Opening study {index} ({worklist.project.study(index).name})"
        if self.runner is not None:
            self.runner(job, title)
        else:
            self.session.show(job(None, None))

    def prepare_next(self) -> None:
        """Start reading the next unfinished study in the background, through the same
        loader as opening it (a largest series that cannot be read falls back to the next)."""
        self.worklist.prepare_next(load=_read_ahead)

    # -- what the reader does --------------------------------------------------------------
    def toggle_label(self, digit: int) -> bool | None:
        """Toggle the label of key ``digit`` on the focused view's current slice; the new
        state, or None when nothing was done (the reason goes out as a message)."""
        session = self.session
        label = self.worklist.label_for_key(digit)
        if label is None:
            self._say(f"No label on key {digit}.")
            return None
        if session.volume is None or session.state is None or self.worklist.current is None:
            self._say("Open a study of the worklist first (N).")
            return None
        refused = session.marking_refusal()
        if refused:  # tilted planes or a reslice: not the acquired slices the marks name
            self._say(f"Not marked: {refused}.", True)
            return None
        plane = session.focused_plane
        index = int(session.state.slices[plane])
        series = session.series
        try:
            result = self.worklist.toggle(digit, series.uid, series.name, plane, index)
        except Exception as exc:  # a ProjectError: say it, keep going
            self._say(str(exc), True)
            return None
        if result is None:
            return None
        on = result[1]
        self._say(f"{label.name} {'marked' if on else 'removed'} on {plane} slice {index}.")
        self.marks_changed.emit()
        self._say_offline()
        return on

    def _say_offline(self) -> None:
        """While changes wait for a shared database that cannot be reached, say so."""
        project = self.project
        waiting, refused = project.pending(), project.conflicts()
        if waiting:
            self._say(f"Offline: the project's database cannot be reached; {waiting} changes "
                      "are kept on this computer and sent when it is back.", True)
        elif refused:
            self._say(f"{len(refused)} changes made offline were refused by the database (the "
                      "study was reassigned or closed meanwhile); they are kept in "
                      f"{project.queue.conflicts_path}.", True)

    def marked(self, plane: str) -> dict[int, list[str]]:
        """Slice -> label keys the reader has marked in ``plane`` of the series on screen."""
        series = self.session.series
        if series is None or self.session.volume is None or self.session.display_only:
            return {}  # a reslice's slices are not the acquired ones the marks name
        return self.worklist.marked(series.uid, series.name, plane)

    def set_status(self, status: str) -> bool:
        """Record the reader's status for the study on screen; "no finding" goes on to the
        next study."""
        if self.worklist.current is None:
            self._say("Open a study of the worklist first (N).")
            return False
        try:
            self.worklist.set_status(status)
        except Exception as exc:
            self._say(str(exc), True)
            return False
        self._say(f"Study {self.worklist.current}: {status}.")
        self._say_offline()
        if status == "no finding":
            self.next_study()
        return True

    def failed(self, message: str) -> None:
        """The front end's load of a worklist study failed: the study becomes unreadable."""
        if self.loading is None:
            return
        index, self.loading = self.loading, None
        self.worklist.failed(message)
        self._say(f"Study {index} is unreadable: {message}. N goes on.", True)

    def _on_volume(self, _volume: Any) -> None:
        if self.loading is not None:
            self.loading = None
            self.worklist.opened()

    def close(self) -> None:
        self.worklist.close()
        if self.session.worklist is self:
            self.session.worklist = None


def _read_ahead(study: Any, cancel: Any) -> tuple[int, Any]:
    result = load_study(study, None, cancel)
    return result.series_index, result.volume
