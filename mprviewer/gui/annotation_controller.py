"""Annotation wiring: one AnnotationSet per open study, keys, clicks, marks on the views.

``install_annotations(window)`` gives a ``MainWindow`` what the original tool existed for:
the reader marks slices that show an anomaly, and the marks are kept safe.

- Each study has its own ``AnnotationSet``. It is restored from the study's sidecar when the
  study opens and autosaved to it after every change (``mprviewer.model.sidecar``), so a
  crash loses at most the last pick. Every loaded series is reconciled with its images.
- Keys (window shortcuts, so they work whichever view has the focus, but not while typing in
  a text field): M marks or unmarks the current slice of the focused 2D view with the
  current label, Shift+M marks the range from the last mark to here, Ctrl+Z / Ctrl+Shift+Z
  undo and redo. Alt+click (or Ctrl+Shift+click) in a 2D view stores a point pick.
- Marks show as ticks on the slice sliders, a frame and badge on a marked 2D slice and
  translucent slabs in 3D, through ``MainWindow.set_marked``.

The views are not changed: the controller watches their interactors with an event filter
(installed after the view's own, so it runs first and sees modifier clicks) and takes the
keys a 2D view passes on (``SliceView.key_pressed``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QEvent, QObject, Qt, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QMenu

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
from mprviewer.model.sidecar import (
    Autosaver,
    folder_is_writable,
    restore_or_create,
    sidecar_path,
)
from mprviewer.model.slice_ranges import format_slices, parse_slices

log = logging.getLogger(__name__)

READER_KEY = "annotations/reader"


# -- the controller -----------------------------------------------------------------------
class AnnotationController(QObject):
    """The open study's annotations and every way the window edits and shows them."""

    changed = pyqtSignal()  # the marks changed (or another study's marks are open)
    session_changed = pyqtSignal()  # another AnnotationSet is open
    message = pyqtSignal(str, bool)  # text, is a problem
    saved = pyqtSignal(str)  # autosave wrote this path
    plane_focused = pyqtSignal(str)  # the reader moved to another 2D view
    about_to_close = pyqtSignal()  # flush text being typed into the current set now

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.aset: AnnotationSet | None = None
        self.saver: Autosaver | None = None
        self.sidecar: Path | None = None
        self.save_problem = ""
        self.refs: dict[str, SeriesRef] = {}  # series key -> ref, loaded in this session
        self.ref: SeriesRef | None = None  # the series on screen
        self.label = DEFAULT_LABEL
        self.reader = ""
        with contextlib.suppress(Exception):
            from mprviewer.gui.open_dialogs import settings

            self.reader = str(settings().value(READER_KEY, "") or "")
        self._anchor: dict[tuple[str, str], int] = {}
        self._pending_jump: str | None = None
        self._closed = False
        self.panel: Any = None  # AnnotationsPanel, set by install_annotations
        self.file_actions: dict[str, QAction] = {}
        self._build_actions()
        window.volume_changed.connect(self._on_volume_changed)
        for view in window.views.slice_views.values():
            view.interactor.installEventFilter(self)
            view.key_pressed.connect(self._on_view_key)
        window.installEventFilter(self)

    # -- actions ---------------------------------------------------------------------------
    def _action(self, text: str, slot: Callable[[], Any], shortcuts: list[Any], tip: str
                ) -> QAction:
        action = QAction(text, self.window)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setStatusTip(tip)
        action.setToolTip(f"{tip} ({QKeySequence(shortcuts[0]).toString()})")
        action.triggered.connect(lambda _=False: slot())
        self.window.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.act_mark = self._action(
            "&Mark / Unmark Slice", self.toggle_current, ["M"],
            "Mark the focused view's slice with the current label, or unmark it")
        self.act_mark_range = self._action(
            "Mark &Range to Here", self.mark_range_to_current, ["Shift+M"],
            "Mark every slice from the last mark to the focused view's slice")
        self.act_undo = self._action(
            "&Undo Annotation", self.undo, ["Ctrl+Z"], "Undo the last annotation change")
        self.act_redo = self._action(
            "&Redo Annotation", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"],
            "Redo the annotation change just undone")
        self.menu = QMenu("&Annotations", self.window)
        for action in (self.act_mark, self.act_mark_range, self.act_undo, self.act_redo):
            self.menu.addAction(action)
        bar = self.window.menuBar()
        help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        if help_menu is not None:
            bar.insertMenu(help_menu, self.menu)
        else:
            bar.addMenu(self.menu)
        self._update_actions()

    def _update_actions(self) -> None:
        ready = self.aset is not None and self.ref is not None
        self.act_mark.setEnabled(ready)
        self.act_mark_range.setEnabled(ready)
        self.act_undo.setEnabled(self.aset is not None and self.aset.can_undo)
        self.act_redo.setEnabled(self.aset is not None and self.aset.can_redo)

    # -- sessions (one per study) ------------------------------------------------------------
    def _where(self, volume: Any) -> tuple[Path, str]:
        """The sidecar path and study UID for the study on screen: the series' own study, as
        a zip or folder of several cases holds one study per case."""
        study = self.window.study
        study_uid = str(getattr(volume, "study_uid", "") or getattr(study, "uid", "") or "")
        folder = getattr(study, "root_folder", None) if study is not None else None
        if folder is not None and folder_is_writable(folder):
            return sidecar_path(folder, study_uid, True), study_uid
        label = getattr(study, "source_label", None) or volume.series_uid or volume.name
        return sidecar_path(str(label or ""), study_uid, False), study_uid

    def _on_volume_changed(self, volume: Any) -> None:
        state = self.window.state
        series = self.window.series
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
            self.close_session()
            messages += self._open_session(path, study_uid, ref)
        else:
            messages += self.aset.reconcile(ref)
        self.ref = ref
        self.refs[ref.key] = ref
        if state is not None:
            state.focus_changed.connect(self.plane_focused.emit)
            self.plane_focused.emit(state.focused_plane)
        if messages:
            self.message.emit(" ".join(messages), True)
        self._update_actions()
        self.refresh_views()
        self.changed.emit()
        if self._pending_jump is not None:
            item, self._pending_jump = self._pending_jump, None
            self.jump_to(item)

    def _open_session(self, path: Path, study_uid: str, ref: SeriesRef) -> list[str]:
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
        aset.changed.connect(self._on_marks_changed)
        if saver is not None:
            saver.failed.connect(self._on_save_failed)
            saver.saved.connect(self._on_saved)
            saver.merged.connect(self._on_merged)
        self.session_changed.emit()
        return messages

    def close_session(self) -> None:
        """Stop following the current study's annotations (they are saved already)."""
        aset, saver = self.aset, self.saver
        if aset is not None:
            self.about_to_close.emit()  # a note being typed belongs to this study
            aset.changed.disconnect(self._on_marks_changed)
        if saver is not None:
            saver.failed.disconnect(self._on_save_failed)
            saver.saved.disconnect(self._on_saved)
            saver.merged.disconnect(self._on_merged)
            saver.close()
        self.aset = self.saver = None
        self.sidecar = None
        self.ref = None

    def _on_save_failed(self, text: str) -> None:
        self.save_problem = text
        self.message.emit(text, True)

    def _on_merged(self, summary: str) -> None:
        self.message.emit(summary, False)

    def _on_saved(self, path: str) -> None:
        self.save_problem = ""
        self.saved.emit(path)

    def _on_marks_changed(self) -> None:
        self._update_actions()
        self.refresh_views()
        self.changed.emit()

    # -- what the views show ---------------------------------------------------------------
    def marked(self, plane: str) -> dict[int, list[str]]:
        """Slice -> labels in ``plane`` of the series on screen."""
        if self.aset is None or self.ref is None:
            return {}
        return self.aset.marked_labels(self.ref.uid, self.ref.name, plane)

    def refresh_views(self) -> None:
        """Send the marks of the series on screen to the window: slider ticks, the 2D frame
        and badge, and the axial slabs in 3D (kept by the window until the 3D view exists)."""
        if self._closed or self.window.state is None:
            return
        for plane in PLANES:
            self.window.set_marked(plane, self.marked(plane))

    # -- events from the views and the window -----------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if obj is self.window:
            if kind == QEvent.Close and not self._closed:
                if self.save_problem and self.aset is not None and not self.aset.is_empty and (
                    not self.confirm_close(self.save_problem)
                ):
                    event.ignore()  # stay open so the reader can export the marks
                    from mprviewer.gui.annotation_dialogs import open_export_dialog

                    open_export_dialog(self)
                    return True
                self.shutdown()
            return False
        if kind == QEvent.MouseButtonPress and event.button() == Qt.LeftButton:
            mods = event.modifiers()
            point_click = bool(mods & Qt.AltModifier) or (
                mods & Qt.ControlModifier and mods & Qt.ShiftModifier)
            if point_click:
                for plane, view in self.window.views.slice_views.items():
                    if view.interactor is obj:
                        obj.setFocus(Qt.MouseFocusReason)
                        self.add_point_at(plane, view.pick(event.pos()))
                        return True
        return False

    def confirm_close(self, problem: str) -> bool:
        """Closing while the last changes are not saved: True closes anyway."""
        from PyQt5.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Warning, "Annotations not saved",
                          f"{problem}\n\nClose anyway and lose the marks made since the "
                          "last save, or export them first?", parent=self.window)
        export = box.addButton("Export…", QMessageBox.AcceptRole)
        box.addButton("Close Anyway", QMessageBox.DestructiveRole)
        box.setDefaultButton(export)
        box.exec_()
        return box.clickedButton() is not export

    def _on_view_key(self, plane: str, key: int, mods: int) -> None:
        """Keys a 2D view passed on: the same bindings as the shortcuts, for when the
        shortcut map did not see the key (the window was not the active one)."""
        mods &= int(Qt.ShiftModifier | Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)
        shift, ctrl = int(Qt.ShiftModifier), int(Qt.ControlModifier)
        if key == Qt.Key_M and mods == 0:
            self.toggle_current(plane)
        elif key == Qt.Key_M and mods == shift:
            self.mark_range_to_current(plane)
        elif key == Qt.Key_Z and mods == ctrl:
            self.undo()
        elif (key == Qt.Key_Z and mods == ctrl | shift) or (key == Qt.Key_Y and mods == ctrl):
            self.redo()

    def shutdown(self) -> None:
        """The window closes: keep what is pending, stop saving."""
        if self._closed:
            return
        self.close_session()
        self._closed = True

    # -- edits -------------------------------------------------------------------------------
    def _context(self, plane: str | None) -> tuple[AnnotationSet, SeriesRef, Any, str] | None:
        state = self.window.state
        if self.aset is None or self.ref is None or state is None:
            self.message.emit("Open a study before marking slices.", True)
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
            raise AnnotationError("open a study before marking slices.")
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
        value: float | None = None
        store = self.window.store
        with contextlib.suppress(Exception):
            raw = store.value_at(xyz) if store is not None else None
            value = None if raw is None or isinstance(raw, tuple) else float(raw)
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
        if self.aset is not None and note != self.aset.note:
            self._run(lambda: (self.aset.set_note(note), "")[1])  # type: ignore[union-attr]

    def set_reader(self, reader: str) -> None:
        reader = " ".join(reader.split())
        self.reader = reader
        with contextlib.suppress(Exception):
            from mprviewer.gui.open_dialogs import settings

            store = settings()
            store.setValue(READER_KEY, reader)
            store.sync()
        if self.aset is not None and reader != self.aset.reader:
            self._run(lambda: (self.aset.set_reader(reader), "")[1])  # type: ignore[union-attr]

    def set_label(self, label: str) -> None:
        self.label = " ".join(label.split()) or DEFAULT_LABEL

    def current_label(self) -> str:
        return self.label or DEFAULT_LABEL

    # -- navigation --------------------------------------------------------------------------
    def is_current(self, sa: SeriesAnnotations) -> bool:
        ref = self.ref
        if ref is None:
            return False
        if sa.uid and ref.uid:
            return sa.uid == ref.uid
        return bool(sa.name) and sa.name == ref.name

    def jump_to(self, item_id: str) -> bool:
        """Show an entry (its first slice, in its plane) or a point (all three planes through
        it); loads the entry's series first when another one is on screen."""
        if self.aset is None:
            return False
        try:
            sa, item = self.aset.find(item_id)
        except AnnotationError:
            return False
        state = self.window.state
        if not self.is_current(sa) or state is None:
            return self._open_series_of(sa, item_id)
        if isinstance(item, Entry):
            if not item.slices:
                return False
            current = state.slices[item.plane]
            later = [s for s in item.slices if s > current]
            # selecting the entry again from one of its slices steps through them
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
        study = self.window.study
        for index, series in enumerate(getattr(study, "series", None) or []):
            if (sa.uid and series.uid == sa.uid) or (not sa.uid and series.name == sa.name):
                self._pending_jump = item_id
                self.window.open_series(index)
                self.message.emit(f"Loading {series.name} to show the mark…", False)
                return True
        self.message.emit(f"Series {sa.label!r} is not in the open study.", True)
        return False

    # -- for files and dialogs ---------------------------------------------------------------
    def study_refs(self) -> list[SeriesRef]:
        """Every series of the open study: loaded ones as loaded, the others from their
        headers (so a file naming a series not shown yet imports, and export offers it)."""
        from mprviewer.model.annotations import study_refs

        study_uid = self.aset.study_uid if self.aset is not None else ""
        out = list(self.refs.values())
        keys = {r.key for r in out}
        series = getattr(self.window.study, "series", None) or []
        out += [r for r in study_refs(series, study_uid) if r.key not in keys]
        return out

    def known_series(self) -> list[tuple[str, str]]:
        """(uid, name) of every series of the open study (loaded or not)."""
        study = self.window.study
        study_uid = self.aset.study_uid if self.aset is not None else ""
        out = [(str(getattr(s, "uid", "")), str(getattr(s, "name", "")))
               for s in getattr(study, "series", None) or []
               if not study_uid or getattr(s, "study_uid", study_uid) == study_uid]
        out += [(r.uid, r.name) for r in self.refs.values()]
        return out


def install_annotations(window: Any) -> AnnotationController:
    """Add the annotations panel, keys, File menu entries and autosave to a MainWindow."""
    from mprviewer.gui.annotation_dialogs import install_file_actions
    from mprviewer.gui.annotations_panel import AnnotationsPanel

    controller = AnnotationController(window)
    controller.panel = AnnotationsPanel(controller, window)
    window.add_side_panel("Annotations", controller.panel, first=True)
    controller.file_actions = install_file_actions(controller)
    menu = controller.menu
    menu.addSeparator()
    for action in controller.file_actions.values():
        menu.addAction(action)
    menu.addSeparator()
    hint = menu.addAction("Point pick: Alt+click (or Ctrl+Shift+click) in a 2D view")
    hint.setEnabled(False)
    window.annotations = controller
    return controller
