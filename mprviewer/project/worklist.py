"""One reader's walk through a project: the current study, next and previous, label hotkeys,
statuses, and the background preparation of the next study.

``ProjectWorklist`` is what a viewer binds to: ``mprviewer.session.worklist`` puts it in the
viewing session, whose front ends (the desktop worklist panel and keys) drive it. It knows no
Qt and no VTK: events are ``mprviewer.model.events.Signal``; loading the next study ahead is
a plain thread that scans its headers and reads the pixels of its largest series, so moving
on only puts the volume on screen.

Events: ``changed()`` (rows, statuses or marks changed), ``current_changed(index)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mprviewer.errors import DicomError, ProjectError
from mprviewer.model.events import Signal
from mprviewer.project.common import FINISHED


class Prepared:
    """A study opened and its default series loaded ahead of time (or the error met)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.study: Any = None
        self.series_index = -1
        self.volume: Any = None
        self.error: str | None = None
        self.done = threading.Event()
        self.cancel = threading.Event()

    def discard(self) -> None:
        self.cancel.set()
        if self.done.is_set() and self.study is not None:
            self.study.close()
            self.study = None


class ProjectWorklist:
    """The worklist of one reader over a ``Project``."""

    def __init__(self, project: Any, reader: str) -> None:
        from mprviewer.project.project import check_reader

        self.project = project
        self.reader = check_reader(reader)
        self.current: int | None = None
        self.changed = Signal()
        self.current_changed = Signal()
        self._prepared: Prepared | None = None
        self._rows: list[dict[str, Any]] | None = None

    # -- what the panel shows --------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """index, name, study_uid, status, reason and marks of every study (cached until a
        change)."""
        if self._rows is None:
            self._rows = self.project.worklist(self.reader)
        return self._rows

    def progress(self) -> tuple[int, int]:
        """(studies finished by the reader, studies in the project)."""
        rows = self.rows()
        return sum(r["status"] in FINISHED for r in rows), len(rows)

    def progress_text(self) -> str:
        done, total = self.progress()
        return f"{done} / {total} done"

    def _refresh(self) -> None:
        self._rows = None
        self.changed.emit()

    # -- moving --------------------------------------------------------------------------
    def next_index(self, backwards: bool = False) -> int | None:
        """The next (or previous) study the reader has not finished, from the current one."""
        info = self.project.next_study(self.reader, after=self.current, backwards=backwards)
        return None if info is None else info.index

    def go_to(self, index: int) -> Any:
        """Make study ``index`` current; returns what to open (a prepared load or the study)."""
        info = self.project.study(index)
        self.current = info.index
        self.current_changed.emit(info.index)
        prepared = self._prepared
        if prepared is not None and prepared.index == info.index:
            self._prepared = None
            return prepared
        if prepared is not None:
            prepared.discard()
            self._prepared = None
        return info

    def next_source(self) -> Any:
        """The next unfinished study as something to open (None when none is left)."""
        index = self.next_index()
        return None if index is None else self.go_to(index)

    def previous_index(self) -> int | None:
        """The study before the current one in worklist order, whatever its status (to go
        back to the study just finished); None at the start."""
        if self.current is None or self.current <= 0:
            return None
        return self.current - 1

    def previous_source(self) -> Any:
        index = self.previous_index()
        return None if index is None else self.go_to(index)

    def open(self, target: Any, progress: Any = None, cancel: Any = None) -> Any:
        """A Study for what ``go_to`` returned (a prepared one is already scanned)."""
        if isinstance(target, Prepared):
            target.done.wait()
            if target.error is not None:
                raise ProjectError(target.error)
            return target.study
        return self.project.open_study(target, progress=progress, cancel=cancel)

    # -- preparing the next study --------------------------------------------------------
    def prepare_next(
        self, load: Callable[[Any, threading.Event], tuple[int, Any]] | None = None,
    ) -> None:
        """Start opening the next unfinished study in a background thread.

        ``load(study, cancel) -> (series index, volume)`` reads the pixels the viewer will
        show (default: the largest series).
        """
        index = self.next_index()
        if index is None or (self._prepared is not None and self._prepared.index == index):
            return
        if self._prepared is not None:
            self._prepared.discard()
        prepared = self._prepared = Prepared(index)

        def work() -> None:
            try:
                study = self.project.open_study(index, cancel=prepared.cancel)
                prepared.study = study
                if load is not None:
                    prepared.series_index, prepared.volume = load(study, prepared.cancel)
                else:
                    largest = study.largest_series()
                    prepared.series_index = study.series.index(largest)
                    prepared.volume = largest.load(cancel=prepared.cancel)
            except (DicomError, ProjectError, OSError) as exc:
                prepared.error = str(exc)
            except Exception as exc:  # a damaged study must not stop the worklist
                prepared.error = f"{type(exc).__name__}: {exc}"
            finally:
                prepared.done.set()
                if prepared.cancel.is_set() and prepared.study is not None:
                    prepared.study.close()
                    prepared.study = None

        threading.Thread(target=work, name="mprviewer-prepare-next", daemon=True).start()

    def close(self) -> None:
        if self._prepared is not None:
            self._prepared.discard()
            self._prepared = None

    # -- labels and statuses ---------------------------------------------------------------
    def label_for_key(self, digit: int) -> Any:
        """The label with this hotkey (1-9), or None."""
        return self.project.label_set.by_hotkey(digit)

    def toggle(self, digit: int, series_uid: str, series_name: str, plane: str,
               slice_number: int) -> tuple[str, bool] | None:
        """Toggle the hotkey's label on a slice of the current study: (label, now marked),
        or None when no label has that key."""
        label = self.label_for_key(digit)
        if label is None or self.current is None:
            return None
        series = self.project.series_for(self.current, series_uid, series_name)
        if series is None:
            raise ProjectError(f"series {series_name!r} is not part of study {self.current} "
                               "of the project")
        on = self.project.toggle(self.current, label.key, slice_number, self.reader,
                                 series=series, plane=plane)
        self._refresh()
        return label.key, on

    def marked(self, series_uid: str, series_name: str, plane: str) -> dict[int, list[str]]:
        """Slice -> label keys the reader has marked in ``plane`` of that series."""
        if self.current is None:
            return {}
        series = self.project.series_for(self.current, series_uid, series_name)
        if series is None:
            return {}
        out: dict[int, list[str]] = {}
        for mark in self.project.marks(self.current, self.reader):
            if mark.series_id == series.id and mark.plane == plane:
                for s in mark.slices:
                    out.setdefault(s, []).append(mark.label)
        return out

    def set_status(self, status: str, reason: str = "") -> None:
        if self.current is None:
            raise ProjectError("no study of the worklist is open")
        self.project.set_status(self.current, self.reader, status, reason)
        self._refresh()

    def opened(self) -> None:
        """The current study is on screen: an unread study becomes "in progress"."""
        if self.current is not None and self.project.status(self.current, self.reader)[0] \
                == "unread":
            self.project.set_status(self.current, self.reader, "in progress")
            self._refresh()

    def failed(self, message: str) -> None:
        """The current study could not be loaded: unreadable, with the loader's message."""
        if self.current is not None:
            self.project.set_status(self.current, self.reader, "unreadable",
                                    message.strip() or "cannot be loaded")
            self._refresh()
