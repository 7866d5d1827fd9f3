"""Annotation keys, menu and panel for the desktop window: a Qt binding of ``Session.marks``.

``install_annotations(window)`` gives a ``MainWindow`` what the original tool existed for:
the reader marks slices that show an anomaly, and the marks are kept safe. What is marked,
where it is saved and every edit live in ``mprviewer.session.marks.Marks`` (shared with the
web front end); this module only turns Qt input into calls on it and its events into Qt
signals:

- Keys (window shortcuts, so they work whichever view has the focus, but not while typing in
  a text field): M marks or unmarks the current slice of the focused 2D view with the
  current label, Shift+M marks the range from the last mark to here, Ctrl+Z / Ctrl+Shift+Z
  undo and redo. Alt+click (or Ctrl+Shift+click) in a 2D view stores a point pick.
- Marks show as ticks on the slice sliders, a frame and badge on a marked 2D slice and
  translucent slabs in 3D; the window draws them from the session.
- Closing while autosave cannot write asks to export first.

The views are not changed: the controller watches their interactors with an event filter
(installed after the view's own, so it runs first and sees modifier clicks) and takes the
keys a 2D view passes on (``SliceView.key_pressed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QEvent, QObject, Qt, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QMenu

READER_KEY = "annotations/reader"


# -- the controller -----------------------------------------------------------------------
class AnnotationController(QObject):
    """Qt signals, actions and input for the session's marks (``window.session.marks``).

    Attributes and methods not defined here (``aset``, ``ref``, ``sidecar``, ``refs``,
    ``toggle_current``, ``jump_to``, ``set_slices_text``...) are the marks' own.
    """

    changed = pyqtSignal()  # the marks changed (or another study's marks are open)
    session_changed = pyqtSignal()  # another AnnotationSet is open
    message = pyqtSignal(str, bool)  # text, is a problem
    saved = pyqtSignal(str)  # autosave wrote this path
    plane_focused = pyqtSignal(str)  # the reader moved to another 2D view
    about_to_close = pyqtSignal()  # flush text being typed into the current set now

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.marks = window.session.marks
        reader = ""
        with contextlib.suppress(Exception):
            from mprviewer.gui.open_dialogs import settings

            reader = str(settings().value(READER_KEY, "") or "")
        self.marks.enable(reader)
        self._closed = False
        self.panel: Any = None  # AnnotationsPanel, set by install_annotations
        self.file_actions: dict[str, QAction] = {}
        self._build_actions()
        marks, session = self.marks, self.session
        marks.changed.connect(self._on_marks_changed)
        marks.opened.connect(self.session_changed.emit)
        marks.message.connect(self.message.emit)
        marks.saved.connect(self.saved.emit)
        marks.about_to_close.connect(self.about_to_close.emit)
        marks.reader_changed.connect(self._remember_reader)
        session.focus_changed.connect(self.plane_focused.emit)
        session.volume_changed.connect(lambda _v: self.plane_focused.emit(session.focused_plane))
        for view in window.views.slice_views.values():
            view.interactor.installEventFilter(self)
            view.key_pressed.connect(self._on_view_key)
        window.installEventFilter(self)

    def __getattr__(self, name: str) -> Any:
        marks = self.__dict__.get("marks")
        if marks is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(marks, name)

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
        session = self.session
        self.act_mark = self._action(
            "&Mark / Unmark Slice", session.toggle_mark, ["M"],
            "Mark the focused view's slice with the current label, or unmark it")
        self.act_mark_range = self._action(
            "Mark &Range to Here", session.mark_range_to_here, ["Shift+M"],
            "Mark every slice from the last mark to the focused view's slice")
        self.act_undo = self._action(
            "&Undo Annotation", session.undo, ["Ctrl+Z"], "Undo the last annotation change")
        self.act_redo = self._action(
            "&Redo Annotation", session.redo, ["Ctrl+Shift+Z", "Ctrl+Y"],
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
        self.act_mark.setEnabled(self.marks.ready)
        self.act_mark_range.setEnabled(self.marks.ready)
        self.act_undo.setEnabled(self.marks.can_undo)
        self.act_redo.setEnabled(self.marks.can_redo)

    def _on_marks_changed(self) -> None:
        self._update_actions()
        self.changed.emit()

    def _remember_reader(self, reader: str) -> None:
        with contextlib.suppress(Exception):
            from mprviewer.gui.open_dialogs import settings

            store = settings()
            store.setValue(READER_KEY, reader)
            store.sync()

    # -- events from the views and the window -----------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if obj is self.window:
            if kind == QEvent.Close and not self._closed:
                if self.marks.must_export_before_close and (
                    not self.confirm_close(self.marks.save_problem)
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
                        self.marks.add_point_at(plane, view.pick(event.pos()))
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
        session = self.session
        if key == Qt.Key_M and mods == 0:
            session.toggle_mark(plane)
        elif key == Qt.Key_M and mods == shift:
            session.mark_range_to_here(plane)
        elif key == Qt.Key_Z and mods == ctrl:
            session.undo()
        elif (key == Qt.Key_Z and mods == ctrl | shift) or (key == Qt.Key_Y and mods == ctrl):
            session.redo()

    def shutdown(self) -> None:
        """The window closes: keep what is pending, stop saving."""
        if self._closed:
            return
        self.marks.shutdown()
        self._closed = True


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
