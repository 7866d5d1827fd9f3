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
                if n == current:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                item.setToolTip(row["study_uid"])
                self.table.setItem(n, c, item)
        if current is not None and 0 <= current < len(rows):
            self.table.selectRow(current)
            self.table.scrollToItem(self.table.item(current, 0))
