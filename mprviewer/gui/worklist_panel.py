"""The worklist panel: a labeling project's studies with the reader's status, marks and
progress, the label hotkeys, and buttons for the moves the keys also make.

A thin view over ``mprviewer.project.worklist.ProjectWorklist``: it reads rows from it and
emits what the reader asked for; the window decides how to open studies.
"""

from __future__ import annotations

from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QColor
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

STATUS_COLOURS = {
    "unread": None,
    "in progress": "#fff3c4",
    "done": "#d4f4d4",
    "no finding": "#dceeff",
    "unreadable": "#f8d0d0",
}
COLUMNS = ("#", "Study", "Status", "Marks", "Reader")


class WorklistPanel(QWidget):
    """Table of studies, progress, hotkey legend, and Previous / Next / No finding / Done."""

    open_requested = pyqtSignal(int)  # a row was double-clicked: open that study
    next_requested = pyqtSignal()
    previous_requested = pyqtSignal()
    status_requested = pyqtSignal(str)  # "done" or "no finding"

    def __init__(self, worklist: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("worklistPanel")
        self.worklist = worklist
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        project = worklist.project
        self.title = QLabel(f"<b>{project.name}</b> &mdash; reader <b>{worklist.reader}</b>")
        self.title.setTextFormat(Qt.RichText)
        layout.addWidget(self.title)
        row = QHBoxLayout()
        self.progress_label = QLabel()
        self.progress_label.setObjectName("worklistProgress")
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        row.addWidget(self.progress_label)
        row.addWidget(self.progress_bar, 1)
        layout.addLayout(row)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("worklistTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setFocusPolicy(Qt.NoFocus)  # keys belong to the views and the window
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.open_requested.emit(r))
        layout.addWidget(self.table, 1)
        self.legend = QLabel()
        self.legend.setObjectName("worklistLegend")
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        buttons = QHBoxLayout()
        self.previous_button = self._button("Previous", "Ctrl+Left", self.previous_requested.emit)
        self.next_button = self._button("Next", "N or Ctrl+Right", self.next_requested.emit)
        self.no_finding_button = self._button(
            "No finding", "Shift+0: nothing found; goes on to the next study",
            lambda: self.status_requested.emit("no finding"))
        self.done_button = self._button("Done", "D", lambda: self.status_requested.emit("done"))
        for b in (self.previous_button, self.next_button, self.no_finding_button,
                  self.done_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self._fill_legend()
        worklist.changed.connect(self.refresh)
        worklist.current_changed.connect(lambda _i: self.refresh())
        self.refresh()

    def _button(self, text: str, tip: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setFocusPolicy(Qt.NoFocus)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _fill_legend(self) -> None:
        parts = []
        for label in self.worklist.project.label_set.labels:
            key = f"<b>{label.hotkey}</b> " if label.hotkey else ""
            derived = " (derived)" if label.derived else ""
            parts.append(f"{key}<span style='color:{label.colour}'>&#9632;</span> "
                         f"{label.name}{derived}")
        self.legend.setText("Labels: " + " &nbsp; ".join(parts))

    def refresh(self) -> None:
        """Re-read the rows (statuses and mark counts) and the progress."""
        rows = self.worklist.rows()
        done, total = self.worklist.progress()
        self.progress_label.setText(self.worklist.progress_text())
        self.progress_bar.setMaximum(max(total, 1))
        self.progress_bar.setValue(done)
        self.table.setRowCount(len(rows))
        current = self.worklist.current
        for n, row in enumerate(rows):
            status = row["status"] + (f": {row['reason']}" if row.get("reason") else "")
            cells = (str(row["index"]), row["name"], status, str(row["marks"]),
                     self.worklist.reader)
            colour = STATUS_COLOURS.get(row["status"])
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (0, 3):
                    item.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))
                if colour:  # light tints: dark text whatever the theme
                    item.setBackground(QBrush(QColor(colour)))
                    item.setForeground(QBrush(QColor("#1a1a1a")))
                if row["index"] == current:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                item.setToolTip(row["study_uid"])
                self.table.setItem(n, c, item)
        at = [n for n, row in enumerate(rows) if row["index"] == current]
        if at:  # rows are the reader's studies: a row number is not a study index
            self.table.selectRow(at[0])
            self.table.scrollToItem(self.table.item(at[0], 0))


# -- the window side ----------------------------------------------------------------------
PREPARE_AFTER_MS = 1500  # start reading the next study once the reader is at work on this one


class WorklistController:
    """The desktop binding of a session's worklist (``mprviewer.session.worklist``): the
    side panel, the keys, the marks on the views, and when to read the next study ahead.

    Keys: 1-9 toggle that label on the current slice of the focused view; N or Ctrl+Right
    open the next unfinished study, Ctrl+Left the study before this one (whatever its
    status); Shift+0 records "no finding" and goes on; D marks the study done. A study that
    cannot be loaded becomes unreadable with the loader's message; the worklist goes on.
    """

    def __init__(self, window: Any, worklist: Any) -> None:
        from PyQt5.QtCore import QTimer

        from mprviewer.session.worklist import SessionWorklist

        self.window = window
        self.worklist = worklist
        self.bound = SessionWorklist(window.session, worklist)
        self.bound.runner = window.runner.start  # loads run in the window's worker
        self.panel = WorklistPanel(worklist)
        self._prepare_timer = QTimer(window)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.timeout.connect(self.bound.prepare_next)
        window.add_side_panel("Worklist", self.panel, first=True)
        self.panel.open_requested.connect(self.open_index)
        self.panel.next_requested.connect(self.next_study)
        self.panel.previous_requested.connect(self.previous_study)
        self.panel.status_requested.connect(self.set_status)
        self.bound.marks_changed.connect(self.show_marks)
        window.session.message.connect(self._on_message)
        window.volume_changed.connect(self._on_volume)
        window.load_failed.connect(self.bound.failed)
        window.slice_key.connect(self._on_view_key)
        window.destroyed.connect(lambda *_: self.close())
        self._install_keys()

    @property
    def last_open_prepared(self) -> bool:
        return self.bound.last_open_prepared

    # -- keys ----------------------------------------------------------------------------
    def _install_keys(self) -> None:
        from PyQt5.QtCore import Qt
        from PyQt5.QtGui import QKeySequence
        from PyQt5.QtWidgets import QAction

        def add(keys: list[str], slot: Any, text: str) -> None:
            action = QAction(text, self.window)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.WindowShortcut)
            action.triggered.connect(lambda _checked=False: slot())
            self.window.addAction(action)

        for digit in range(1, 10):
            add([str(digit)], lambda d=digit: self.toggle_label(d), f"Toggle label {digit}")
        add(["N", "Ctrl+Right"], self.next_study, "Next unread study")
        add(["Ctrl+Left"], self.previous_study, "Previous study")
        add(["Shift+0", ")"], lambda: self.set_status("no finding"), "No finding")
        add(["D"], lambda: self.set_status("done"), "Study done")

    def _on_view_key(self, _plane: str, key: int, mods: int) -> None:
        """The same keys when a 2D view had them (the shortcut map did not see them)."""
        from PyQt5.QtCore import Qt

        mods &= int(Qt.ShiftModifier | Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)
        shift, ctrl = int(Qt.ShiftModifier), int(Qt.ControlModifier)
        if mods == ctrl and key == Qt.Key_Right:
            self.next_study()
        elif mods == ctrl and key == Qt.Key_Left:
            self.previous_study()
        elif mods == 0 and Qt.Key_1 <= key <= Qt.Key_9:
            self.toggle_label(key - Qt.Key_0)
        elif mods == 0 and key == Qt.Key_N:
            self.next_study()
        elif mods == 0 and key == Qt.Key_D:
            self.set_status("done")
        elif (key == Qt.Key_0 and mods == shift) or key == Qt.Key_ParenRight:
            self.set_status("no finding")

    # -- actions (the session's worklist does the work) ----------------------------------
    def _on_message(self, text: str, problem: bool = False) -> None:
        status = getattr(self.window, "status", None) or self.window.statusBar()
        status.showMessage(text, 12000 if problem else 6000)

    def toggle_label(self, digit: int) -> None:
        self.bound.toggle_label(digit)

    def set_status(self, status: str) -> None:
        self.bound.set_status(status)

    def next_study(self) -> None:
        self._prepare_timer.stop()
        self.bound.next_study()

    def previous_study(self) -> None:
        self._prepare_timer.stop()
        self.bound.previous_study()

    def open_index(self, index: int) -> None:
        self._prepare_timer.stop()
        self.bound.open_index(index)

    def show_marks(self) -> None:
        """Put the reader's project marks of the series on screen on the views."""
        from mprviewer.model.orientation import PLANES

        if self.window.volume is None:
            return
        for plane in PLANES:
            self.window.set_marked(plane, self.bound.marked(plane))

    # -- window events -------------------------------------------------------------------
    def _on_volume(self, _volume: Any) -> None:
        self.show_marks()
        self._prepare_timer.start(PREPARE_AFTER_MS)

    def close(self) -> None:
        self._prepare_timer.stop()
        self.bound.close()


def install_worklist(window: Any, folder: str, reader: str | None = None,
                     start: bool = True) -> WorklistController:
    """Open the project in ``folder`` in the window: worklist panel, keys, and (``start``)
    the first study the reader has not finished."""
    from mprviewer.project import Project
    from mprviewer.project.worklist import ProjectWorklist

    project = Project.open(folder)
    worklist = ProjectWorklist(project, reader or project.default_reader())
    controller = WorklistController(window, worklist)
    window.worklist_controller = controller
    window.setWindowTitle(f"mprviewer — {project.name} ({worklist.reader})")
    window.destroyed.connect(lambda *_: project.close())
    if start:
        controller.next_study()
    return controller


def install_open_project_action(window: Any) -> Any:
    """File > Open Project…: a labeling project opens in a window of its own (its keys and
    marks belong to the project, not to the open study's annotations)."""
    from PyQt5.QtWidgets import QAction, QFileDialog

    def ask() -> None:
        folder = QFileDialog.getExistingDirectory(window, "Open a labeling project")
        if not folder:
            return
        from mprviewer.project import Project

        if not Project.is_project(folder):
            window.show_error("Not a labeling project",
                              f"{folder} holds no project.json; make a project with "
                              "'mprviewer project create DIR --studies SOURCE...'.")
            return
        import subprocess
        import sys

        subprocess.Popen([sys.executable, "-m", "mprviewer", "view", folder])
        window.statusBar().showMessage(f"Opening the project {folder} in a new window…", 8000)

    action = QAction("Open &Project…", window)
    action.setToolTip("Open a labeling project (its worklist) in a new window")
    action.triggered.connect(lambda _checked=False: ask())
    window.add_file_action(action)
    return action
