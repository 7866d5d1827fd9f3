"""The adjudication view: the studies readers disagree on, each reader's marks side by side
(a colour per reader), and the adjudicator's final labels.

``mprviewer view PROJECT --adjudicate`` shows it. The panel lists the adjudication worklist;
opening a study puts every reader's marks on the slice views (labelled ``reader: label``) and
fills a table with one row per marked slice and one column per reader, each reader in their
own colour, beside the final labels recorded so far. Buttons take the majority, the union or
one reader's labels as final; Done records the verdict. The readings are never changed.
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
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

READER_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
FINAL_COLOUR = "#ffd54f"


def reader_colour(readers: list[str], reader: str) -> str:
    """The colour of a reader: by their place among the project's readers."""
    names = sorted(readers)
    return READER_COLOURS[names.index(reader) % len(READER_COLOURS)] if reader in names \
        else "#888888"


def _rgb(colour: str) -> tuple[float, float, float]:
    """A '#rrggbb' colour as RGB in 0-1 (the views' colours)."""
    color = QColor(colour)
    return (color.redF(), color.greenF(), color.blueF())


def _tint(colour: str) -> QColor:
    """A light shade of a reader's colour, for a cell that carries dark text."""
    return QColor(colour).lighter(175)


class AdjudicationPanel(QWidget):
    """The adjudication worklist and the side-by-side readings of the open study."""

    open_requested = pyqtSignal(int)
    accept_requested = pyqtSignal(str)
    done_requested = pyqtSignal()

    def __init__(self, project: Any, judge: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.judge = judge
        self.current: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title = QLabel(f"<b>Adjudication</b> by {judge}")
        layout.addWidget(self.title)
        self.studies = QTableWidget(0, 4)
        self.studies.setHorizontalHeaderLabels(["#", "study", "disagree on", "state"])
        self.studies.verticalHeader().setVisible(False)
        self.studies.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.studies.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.studies.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.studies.cellDoubleClicked.connect(self._open_row)
        layout.addWidget(self.studies, 2)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        layout.addWidget(self.legend)
        self.readings = QTableWidget(0, 0)
        self.readings.verticalHeader().setVisible(False)
        self.readings.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.readings.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        layout.addWidget(self.readings, 3)
        buttons = QHBoxLayout()
        self.rule_buttons: dict[str, QPushButton] = {}
        for rule, text in (("majority", "Majority"), ("union", "Union")):
            self.rule_buttons[rule] = self._button(buttons, text, rule)
        layout.addLayout(buttons)
        self.reader_buttons = QHBoxLayout()
        layout.addLayout(self.reader_buttons)
        done = QPushButton("Done")
        done.setToolTip("the final labels of this study are complete")
        done.setFocusPolicy(Qt.NoFocus)
        done.clicked.connect(lambda _c=False: self.done_requested.emit())
        layout.addWidget(done)
        self._rows: list[dict[str, Any]] = []

    def _button(self, layout: Any, text: str, rule: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(f"take the {rule} labels as final")
        button.setFocusPolicy(Qt.NoFocus)
        button.clicked.connect(lambda _c=False: self.accept_requested.emit(rule))
        layout.addWidget(button)
        return button

    def _open_row(self, row: int, _column: int = 0) -> None:
        if 0 <= row < len(self._rows):
            self.open_requested.emit(int(self._rows[row]["index"]))

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def refresh(self) -> None:
        """Re-read the adjudication worklist and the open study's readings."""
        self._rows = self.project.adjudication()
        self.studies.setRowCount(len(self._rows))
        for n, row in enumerate(self._rows):
            state = "adjudicated" if row["adjudicated"] else "open"
            cells = (str(row["index"]), row["name"], ", ".join(row["labels"]), state)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row["study_uid"])
                if row["index"] == self.current:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.studies.setItem(n, c, item)
        at = [n for n, r in enumerate(self._rows) if r["index"] == self.current]
        if at:
            self.studies.selectRow(at[0])
        self.fill_readings()

    def readings_of_current(self) -> tuple[list[str], dict[tuple[int, str, str], dict[str,
                                                                                   set[int]]],
                                          dict[tuple[int, str, str], set[int]]]:
        """(readers, (series id, label, plane) -> reader -> slices, final marks)."""
        from mprviewer.project.adjudication import final_state, readings, study_readers

        if self.current is None:
            return [], {}, {}
        info = self.project.study(self.current)
        readers = sorted(study_readers(self.project).get(info.id, []))
        per: dict[tuple[int, str, str], dict[str, set[int]]] = {}
        for reader, marks in readings(self.project).get(info.id, {}).items():
            for key, slices in marks.items():
                per.setdefault(key, {})[reader] = set(slices)
        _verdicts, final = final_state(self.project)
        mine = {(se, lab, pl): s for (st, se, lab, pl), s in final.items() if st == info.id}
        return readers, per, mine

    def fill_readings(self) -> None:
        """One row per marked slice, one column per reader (in the reader's colour), and the
        final labels."""
        readers, per, final = self.readings_of_current()
        self.legend.setText("Readers: " + " &nbsp; ".join(
            f"<span style='color:{reader_colour(readers, r)}'>&#9632;</span> {r}"
            for r in readers) + f" &nbsp; <span style='color:{FINAL_COLOUR}'>&#9632;</span> "
            "final" if readers else "")
        cells: dict[tuple[int, str, int], dict[str, list[str]]] = {}
        for (series_id, label, plane), by_reader in per.items():
            for reader, slices in by_reader.items():
                for s in slices:
                    cells.setdefault((series_id, plane, s), {}).setdefault(reader, []).append(
                        label)
        for (series_id, label, plane), slices in final.items():
            for s in slices:
                cells.setdefault((series_id, plane, s), {}).setdefault("final", []).append(
                    label)
        columns = ["series", "plane", "slice", *readers, "final"]
        self.readings.clear()
        self.readings.setColumnCount(len(columns))
        self.readings.setHorizontalHeaderLabels(columns)
        keys = sorted(cells)
        self.readings.setRowCount(len(keys))
        series_pos = {}
        if self.current is not None:
            series_pos = {s.id: s.position for s in self.project.series(self.current)}
        for n, key in enumerate(keys):
            series_id, plane, s = key
            values = [str(series_pos.get(series_id, series_id)), plane, str(s)]
            for c, text in enumerate(values):
                self.readings.setItem(n, c, QTableWidgetItem(text))
            for c, who in enumerate([*readers, "final"], start=3):
                labels = sorted(cells[key].get(who, []))
                item = QTableWidgetItem(", ".join(labels))
                if labels:
                    colour = FINAL_COLOUR if who == "final" else reader_colour(readers, who)
                    item.setBackground(QBrush(_tint(colour)))
                    item.setForeground(QBrush(QColor("#101010")))
                self.readings.setItem(n, c, item)
        while self.reader_buttons.count():
            widget = self.reader_buttons.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for reader in readers:
            self._button(self.reader_buttons, f"Take {reader}'s", f"reader:{reader}")


class AdjudicationController:
    """Binds the panel to the viewer window: opens studies, shows every reader's marks."""

    def __init__(self, window: Any, project: Any, judge: str) -> None:
        self.window = window
        self.project = project
        self.judge = judge
        self.panel = AdjudicationPanel(project, judge)
        window.add_side_panel("Adjudication", self.panel, first=True)
        self.panel.open_requested.connect(self.open_index)
        self.panel.accept_requested.connect(self.accept)
        self.panel.done_requested.connect(self.done)
        window.volume_changed.connect(lambda _v: self.show_marks())
        self.panel.refresh()

    def _message(self, text: str, ms: int = 8000) -> None:
        status = getattr(self.window, "status", None) or self.window.statusBar()
        status.showMessage(text, ms)

    def next_open(self) -> None:
        """Open the first study not adjudicated yet."""
        rows = [r for r in self.panel.rows() if not r["adjudicated"]]
        if not rows:
            self._message("Nothing to adjudicate: the readers agree on every finished study.")
            return
        self.open_index(int(rows[0]["index"]))

    def open_index(self, index: int) -> None:
        from mprviewer.session.loading import load_study

        project = self.project
        self.panel.current = index
        self.panel.refresh()
        info = project.study(index)

        def job(progress: Any, cancel: Any) -> Any:
            study = project.open_study(info, progress=progress, cancel=cancel)
            return load_study(study, progress, cancel)

        self.window.runner.start(job, f"Opening study {index} ({info.name}) to adjudicate")

    def show_marks(self) -> None:
        """Every reader's marks on the views, as ``reader: label`` (the final ones too)."""
        from mprviewer.model.orientation import PLANES

        series = self.window.series
        if series is None or self.panel.current is None:
            return
        stored = self.project.series_for(self.panel.current, series.uid, series.name)
        if stored is None:
            return
        readers, per, final = self.panel.readings_of_current()
        colors: dict[str, tuple[float, float, float]] = {}  # each reader's, as in the table
        by_plane: dict[str, dict[int, list[str]]] = {}
        for plane in PLANES:
            marked = by_plane[plane] = {}
            for (series_id, label, pl), by_reader in per.items():
                if series_id != stored.id or pl != plane:
                    continue
                for reader, slices in sorted(by_reader.items()):
                    colors[f"{reader}: {label}"] = _rgb(reader_colour(readers, reader))
                    for s in slices:
                        marked.setdefault(s, []).append(f"{reader}: {label}")
            for (series_id, label, pl), slices in final.items():
                if series_id == stored.id and pl == plane:
                    colors[f"final: {label}"] = _rgb(FINAL_COLOUR)
                    for s in slices:
                        marked.setdefault(s, []).append(f"final: {label}")
        for plane, marked in by_plane.items():
            self.window.set_marked(plane, marked, colors)

    def accept(self, rule: str) -> None:
        if self.panel.current is None:
            self._message("Open a study of the adjudication list first.")
            return
        try:
            self.project.adjudicate(self.panel.current, self.judge, accept=rule)
        except Exception as exc:  # a ProjectError: say it, keep going
            self._message(str(exc), 12000)
            return
        self._message(f"Study {self.panel.current}: {rule} taken as final.")
        self.panel.refresh()
        self.show_marks()

    def done(self) -> None:
        if self.panel.current is None:
            self._message("Open a study of the adjudication list first.")
            return
        try:
            self.project.adjudicate(self.panel.current, self.judge, done=True)
        except Exception as exc:
            self._message(str(exc), 12000)
            return
        self._message(f"Study {self.panel.current}: final labels done.")
        self.panel.refresh()


def install_adjudication(window: Any, folder: str, judge: str | None = None,
                         start: bool = True) -> AdjudicationController:
    """Open the project in ``folder`` for adjudication (``start``: the first open study)."""
    from mprviewer.project import Project

    project = Project.open(folder)
    name = judge or project.default_reader()
    controller = AdjudicationController(window, project, name)
    window.adjudication_controller = controller
    window.setWindowTitle(f"mprviewer — {project.name} (adjudication by {name})")
    window.destroyed.connect(lambda *_: project.close())
    if start:
        controller.next_open()
    return controller
