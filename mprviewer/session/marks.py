"""The marks of a session: one AnnotationSet per open study and every edit a reader makes.

- Each study has its own ``AnnotationSet``, restored from the study's sidecar when the study
  opens and autosaved to it after every change (``mprviewer.model.sidecar``), so a crash loses
  at most the last pick. Every series shown is reconciled with its images.
- Edits act on the series on screen and the focused plane's current slice: mark or unmark
  it with the current label, mark the range from the last mark to here, make a plane's marks
  exactly a slice-range text, store a point; undo and redo; relabel, delete, go to a mark.
- Events (``mprviewer.model.events.Signal``) tell front ends what happened; messages are
  plain text for a status line, with a flag for problems. Nothing here knows Qt or VTK.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mprviewer.errors import AnnotationError
from mprviewer.model.annotations import (
    DEFAULT_LABEL,
    PLANES,
    AnnotationSet,
    Entry,
    Point,
    SeriesAnnotations,
    SeriesRef,
)
from mprviewer.model.events import Signal
from mprviewer.model.sidecar import (
    Autosaver,
    folder_is_writable,
    restore_or_create,
    sidecar_path,
)
from mprviewer.model.slice_ranges import format_slices, parse_slices

log = logging.getLogger(__name__)


class _Viewing(Protocol):
    """What the marks need of the session that owns them (``Session``, which imports this)."""

    study: Any
    series: Any
    state: Any

    def open_series(self, index: int) -> None: ...

    def value_at_ijk(self, ijk: Any) -> float | None: ...


class Marks:
    """The open study's annotations, what the views show of them, and the edits on them."""

    def __init__(self, session: _Viewing, reader: str = "") -> None:
        self.session = session
        self.aset: AnnotationSet | None = None
        self.saver: Autosaver | None = None
        self.sidecar: Path | None = None
        self.save_problem = ""
        self.refs: dict[str, SeriesRef] = {}  # series key -> ref, shown in this session
        self.ref: SeriesRef | None = None  # the series on screen
        self.label = DEFAULT_LABEL
        self.reader = " ".join(str(reader).split())
        self._anchor: dict[tuple[str, str], int] = {}
        self._pending_jump: str | None = None
        self._closed = False
        self.enabled = False
        self.changed = Signal()  # () the marks changed, or another study's marks are open
        self.opened = Signal()  # () another AnnotationSet is open
        self.message = Signal()  # (text, is_problem)
        self.saved = Signal()  # (path) autosave wrote this file
        self.about_to_close = Signal()  # () flush text being typed into the current set now
        self.reader_changed = Signal()  # (name) for front ends that remember it

    def events(self) -> tuple[Signal, ...]:
        return (self.changed, self.opened, self.message, self.saved, self.about_to_close,
                self.reader_changed)

    def enable(self, reader: str | None = None) -> None:
        """Keep marks for every volume shown from now on (a sidecar per study)."""
        if reader is not None:
            self.reader = " ".join(reader.split())
        self.enabled = True

    # -- which set, for which study ----------------------------------------------------------
    def _where(self, volume: Any) -> tuple[Path, str]:
        """The sidecar path and study UID for the study on screen: the series' own study, as
        a zip or folder of several cases holds one study per case."""
        study = self.session.study
        study_uid = str(getattr(volume, "study_uid", "") or getattr(study, "uid", "") or "")
        folder = getattr(study, "root_folder", None) if study is not None else None
        if folder is not None and folder_is_writable(folder):
            return sidecar_path(folder, study_uid, True), study_uid
        label = getattr(study, "source_label", None) or volume.series_uid or volume.name
        return sidecar_path(str(label or ""), study_uid, False), study_uid

    def follow(self, volume: Any) -> None:
        """Another volume is on screen: open its study's set, or reconcile the series."""
        if not self.enabled or self._closed:
            return
        state, series = self.session.state, self.session.series
        grid = state.grid if state is not None else None
        try:
            if series is not None and getattr(series, "uid", None) == volume.series_uid:
                ref = SeriesRef.from_series(series, volume, grid)
            else:
                ref = SeriesRef.from_volume(volume, grid)
        except Exception as exc:  # header oddities must not cost the reader the marks
            log.warning("series reference from the header failed: %s", exc)
            ref = SeriesRef.from_volume(volume, grid)
        path, study_uid = self._where(volume)
        messages: list[str] = []
        if self.aset is None or path != self.sidecar:
            self.close_set()
            messages += self._open_set(path, study_uid, ref)
        else:
            messages += self.aset.reconcile(ref)
        self.ref = ref
        self.refs[ref.key] = ref
        if messages:
            self.message.emit(" ".join(messages), True)
        self.changed.emit()
        if self._pending_jump is not None:
            item, self._pending_jump = self._pending_jump, None
            self.jump_to(item)

    def _open_set(self, path: Path, study_uid: str, ref: SeriesRef) -> list[str]:
        self.refs.clear()
        self._anchor.clear()
        self.save_problem = ""
        try:
            aset, saver, loaded = restore_or_create(path, study_uid, [ref], reader=self.reader)
            messages = list(loaded.messages)
        except (OSError, AnnotationError) as exc:
            # Keep working in memory, loudly: the reader must export before closing.
            aset, saver = AnnotationSet(study_uid=study_uid, reader=self.reader), None
            self.save_problem = (f"Annotations cannot be autosaved ({path}: {exc}). "
                                 "Export them (File > Export Annotations) before closing.")
            messages = [self.save_problem]
        else:
            from mprviewer.paths import folder_problem

            problem = folder_problem(path.parent)
            if problem:  # say so now, not at the first mark
                self.save_problem = (f"Marks cannot be autosaved ({problem}). Export them "
                                     "(File > Export Annotations) before closing.")
                messages.append(self.save_problem)
        if self.reader and not aset.reader:
            aset.set_reader(self.reader)
            aset.clear_history()
        self.aset, self.saver, self.sidecar = aset, saver, path
        aset.changed.connect(self._on_set_changed)
        if saver is not None:
            saver.failed.connect(self._on_save_failed)
            saver.saved.connect(self._on_saved)
            saver.merged.connect(self._on_merged)
        self.opened.emit()
        return messages

    def close_set(self) -> None:
        """Stop following the current study's annotations (they are saved already)."""
        aset, saver = self.aset, self.saver
        if aset is not None:
            self.about_to_close.emit()  # a note being typed belongs to this study
            aset.changed.disconnect(self._on_set_changed)
        if saver is not None:
            saver.failed.disconnect(self._on_save_failed)
            saver.saved.disconnect(self._on_saved)
            saver.merged.disconnect(self._on_merged)
            saver.close()
        self.aset = self.saver = None
        self.sidecar = None
        self.ref = None

    def shutdown(self) -> None:
        """The session ends: keep what is pending, stop saving."""
        if self._closed:
            return
        self.close_set()
        self._closed = True

    @property
    def must_export_before_close(self) -> bool:
        """Marks exist that autosave could not write: closing now would lose them."""
        return bool(self.save_problem) and self.aset is not None and not self.aset.is_empty

    def _on_save_failed(self, text: str) -> None:
        self.save_problem = text
        self.message.emit(text, True)

    def _on_merged(self, summary: str) -> None:
        """Another window or process saved marks of this study; they are in ours now."""
        self.message.emit(summary, False)

    def _on_saved(self, path: str) -> None:
        self.save_problem = ""
        self.saved.emit(path)

    def _on_set_changed(self) -> None:
        self.changed.emit()

    # -- what the views show -------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """A series is on screen and its marks are open: the edits below can act."""
        return self.aset is not None and self.ref is not None

    @property
    def can_undo(self) -> bool:
        return self.aset is not None and self.aset.can_undo

    @property
    def can_redo(self) -> bool:
        return self.aset is not None and self.aset.can_redo

    def marked(self, plane: str) -> dict[int, list[str]]:
        """Slice -> labels in ``plane`` of the series on screen."""
        if self.aset is None or self.ref is None or self._closed:
            return {}
        return self.aset.marked_labels(self.ref.uid, self.ref.name, plane)

    def is_current(self, sa: SeriesAnnotations) -> bool:
        ref = self.ref
        if ref is None:
            return False
        if sa.uid and ref.uid:
            return sa.uid == ref.uid
        return bool(sa.name) and sa.name == ref.name

    def study_refs(self) -> list[SeriesRef]:
        """Every series of the open study: shown ones as shown, the others from their
        headers (so a file naming a series not shown yet imports, and export offers it)."""
        from mprviewer.model.annotations import study_refs

        study_uid = self.aset.study_uid if self.aset is not None else ""
        out = list(self.refs.values())
        keys = {r.key for r in out}
        series = getattr(self.session.study, "series", None) or []
        out += [r for r in study_refs(series, study_uid) if r.key not in keys]
        return out

    def known_series(self) -> list[tuple[str, str]]:
        """(uid, name) of every series of the open study (shown or not)."""
        study = self.session.study
        study_uid = self.aset.study_uid if self.aset is not None else ""
        out = [(str(getattr(s, "uid", "")), str(getattr(s, "name", "")))
               for s in getattr(study, "series", None) or []
               if not study_uid or getattr(s, "study_uid", study_uid) == study_uid]
        out += [(r.uid, r.name) for r in self.refs.values()]
        return out

    # -- edits ---------------------------------------------------------------------------
    def _context(self, plane: str | None) -> tuple[AnnotationSet, SeriesRef, Any, str] | None:
        state = self.session.state
        if self.aset is None or self.ref is None or state is None:
            self.message.emit("Open a study before marking slices.", True)
            return None
        refusal = getattr(self.session, "marking_refusal", None)
        refused = refusal() if refusal is not None else ""
        if refused:
            self.message.emit(f"Not marked: {refused}.", True)
            return None
        plane = plane or state.focused_plane
        if plane not in PLANES:
            plane = "axial"
        return self.aset, self.ref, state, plane

    def _run(self, edit: Callable[[], str]) -> bool:
        """Run an edit; AnnotationErrors become a message instead of an exception."""
        try:
            text = edit()
        except AnnotationError as exc:
            self.message.emit(str(exc), True)
            return False
        if text:
            self.message.emit(text, False)
        return True

    def toggle_current(self, plane: str | None = None) -> bool | None:
        """Mark the current slice of ``plane`` (default: the focused view) with the current
        label, or remove that label if the slice has it. True if now marked."""
        ctx = self._context(plane)
        if ctx is None:
            return None
        aset, ref, state, plane = ctx
        index = state.slices[plane]
        result: dict[str, bool] = {}

        def edit() -> str:
            marked = aset.toggle(ref, plane, index, self.label)
            result["marked"] = marked
            if marked:
                self._anchor[(ref.key, plane)] = index
            verb = "Marked" if marked else "Unmarked"
            return f"{verb} {plane} slice {index} ({self.current_label()})."

        if not self._run(edit):
            return None
        return result["marked"]

    def mark_range_to_current(self, plane: str | None = None) -> list[int]:
        """Mark from the last mark in this plane (or the nearest marked slice) to here."""
        ctx = self._context(plane)
        if ctx is None:
            return []
        aset, ref, state, plane = ctx
        index = state.slices[plane]
        label = self.current_label()
        anchor = self._anchor.get((ref.key, plane))
        if anchor is None:
            have = aset.slices_for(ref.uid, ref.name, plane, label)
            if have:
                anchor = min(have, key=lambda s: abs(s - index))
        start = index if anchor is None else anchor
        lo, hi = sorted((start, index))

        def edit() -> str:
            aset.mark_range(ref, plane, lo, hi, label)
            self._anchor[(ref.key, plane)] = index
            return f"Marked {plane} slices {format_slices(range(lo, hi + 1))} ({label})."

        return list(range(lo, hi + 1)) if self._run(edit) else []

    def set_slices_text(self, plane: str, text: str) -> list[int]:
        """Make the current label's marks in ``plane`` exactly the slices of ``text``
        ("0-11; 57-59; 112"). Raises AnnotationError (nothing changed) on bad text."""
        ctx = self._context(plane)
        if ctx is None:
            refusal = getattr(self.session, "marking_refusal", None)
            raise AnnotationError((refusal() if refusal is not None else "")
                                  or "open a study before marking slices.")
        aset, ref, _state, plane = ctx
        slices = parse_slices(text) if text.strip() else []
        aset.set_slices(ref, plane, slices, self.current_label())
        self.message.emit(
            f"{plane.capitalize()} slices with {self.current_label()}: "
            f"{format_slices(slices) or 'none'}.", False)
        return slices

    def add_point_at(self, plane: str, xyz: Any) -> Point | None:
        """Store a point pick at display voxel ``xyz`` (None: outside the image)."""
        ctx = self._context(plane)
        if ctx is None:
            return None
        aset, ref, state, plane = ctx
        if xyz is None:
            self.message.emit("Click inside the image to pick a point.", True)
            return None
        import numpy as np

        grid = state.grid
        xyz = tuple(int(v) for v in xyz)
        ijk = [round(float(v)) for v in grid.display_to_ijk(np.asarray(xyz, dtype=float))]
        lps = [float(v) for v in grid.display_to_lps(np.asarray(xyz, dtype=float))]
        value = self.session.value_at_ijk(ijk)
        out: dict[str, Point] = {}

        def edit() -> str:
            out["p"] = aset.add_point(ref, ijk, lps, value, self.current_label(), plane=plane)
            shown = "" if value is None else f", value {value:g}"
            return (f"Point {self.current_label()} at voxel {tuple(ijk)}, LPS "
                    f"{lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f} mm{shown}.")

        return out.get("p") if self._run(edit) else None

    def undo(self) -> bool:
        if self.aset is None or not self.aset.undo():
            self.message.emit("Nothing to undo.", False)
            return False
        self.message.emit("Undone (Ctrl+Shift+Z redoes).", False)
        return True

    def redo(self) -> bool:
        if self.aset is None or not self.aset.redo():
            self.message.emit("Nothing to redo.", False)
            return False
        self.message.emit("Redone.", False)
        return True

    def relabel(self, item_id: str, label: str) -> bool:
        aset = self.aset
        if aset is None:
            return False
        return self._run(lambda: (aset.relabel(item_id, label), f"Relabelled as {label}.")[1])

    def delete(self, item_id: str) -> bool:
        aset = self.aset
        if aset is None:
            return False
        return self._run(lambda: (aset.delete(item_id), "Deleted (Ctrl+Z brings it back).")[1])

    def set_note(self, note: str) -> None:
        aset = self.aset
        if aset is not None and note != aset.note:
            self._run(lambda: (aset.set_note(note), "")[1])

    def set_reader(self, reader: str) -> None:
        """Who reads: stored with the marks (and remembered by the front end)."""
        reader = " ".join(reader.split())
        self.reader = reader
        self.reader_changed.emit(reader)
        aset = self.aset
        if aset is not None and reader != aset.reader:
            self._run(lambda: (aset.set_reader(reader), "")[1])

    def set_label(self, label: str) -> None:
        self.label = " ".join(label.split()) or DEFAULT_LABEL

    def current_label(self) -> str:
        return self.label or DEFAULT_LABEL

    # -- going to a mark -------------------------------------------------------------------
    def jump_to(self, item_id: str) -> bool:
        """Show an entry (its first slice, in its plane) or a point (all three planes through
        it); opens the entry's series first when another one is on screen."""
        if self.aset is None:
            return False
        try:
            sa, item = self.aset.find(item_id)
        except AnnotationError:
            return False
        state = self.session.state
        if not self.is_current(sa) or state is None:
            return self._open_series_of(sa, item_id)
        if isinstance(item, Entry):
            if not item.slices:
                return False
            current = state.slices[item.plane]
            later = [s for s in item.slices if s > current]
            # going to the entry again from one of its slices steps through them
            target = (later or [item.slices[0]])[0] if current in item.slices else item.slices[0]
            state.set_focus(item.plane)
            state.set_slice(item.plane, target)
        else:
            import numpy as np

            xyz = state.grid.ijk_to_display(np.asarray(item.voxel, dtype=float))
            state.set_cursor(np.round(xyz))
            if item.plane:
                state.set_focus(item.plane)
        return True

    def _open_series_of(self, sa: SeriesAnnotations, item_id: str) -> bool:
        study = self.session.study
        for index, series in enumerate(getattr(study, "series", None) or []):
            if (sa.uid and series.uid == sa.uid) or (not sa.uid and series.name == sa.name):
                self._pending_jump = item_id
                self.session.open_series(index)
                if self._pending_jump is not None:  # a front end loads it in the background
                    self.message.emit(f"Loading {series.name} to show the mark…", False)
                return True
        self.message.emit(f"Series {sa.label!r} is not in the open study.", True)
        return False
