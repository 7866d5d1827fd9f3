"""The annotations side panel: label, mark buttons, the list of marks, range text, note.

A thin view over ``AnnotationController``: every button calls a controller method, and the
panel redraws itself from the AnnotationSet whenever the controller says it changed.
"""

from __future__ import annotations

from typing import Any

from PyQt5.QtCore import QEvent, QObject, QSignalBlocker, QSize, Qt, QTimer
from PyQt5.QtGui import QBrush, QColor, QFont, QKeySequence
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QShortcut,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mprviewer.errors import AnnotationError
from mprviewer.model.annotations import DEFAULT_LABEL, PLANES
from mprviewer.model.slice_ranges import format_slices

ERROR_STYLE = "color: #ff7070;"
OK_STYLE = "color: #9ab;"
ID_ROLE = Qt.UserRole + 1
NOTE_DELAY_MS = 700


def _breakable(path: Any) -> str:
    """A path the label may wrap after any '/' or '.' (a 64-digit study UID in a file name
    would otherwise make the side panel as wide as the name)."""
    return str(path).replace("/", "/\u200b").replace(".", ".\u200b")


class _WindowShortcuts(QObject):
    """Lets the window's Ctrl+<letter> shortcuts through a text box that would take them."""

    KEYS = (Qt.Key_E, Qt.Key_I)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.ShortcutOverride and event.key() in self.KEYS and (
            event.modifiers() & (Qt.ControlModifier | Qt.AltModifier | Qt.ShiftModifier)
            == Qt.ControlModifier
        ):
            event.ignore()  # not wanted by the box: the shortcut map runs the window's action
            return True
        return False


class AnnotationsPanel(QWidget):
    """Marks of the open study, per series; edits go through the controller."""

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._build()
        controller.changed.connect(self.refresh)
        controller.session_changed.connect(self._on_session)
        controller.message.connect(self.show_message)
        controller.saved.connect(self._on_saved)
        controller.about_to_close.connect(self.flush)
        controller.plane_focused.connect(self.follow_plane)
        self._on_session()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.controller
        self.reader_edit = QLineEdit(self)
        self.reader_edit.setPlaceholderText("your name, stored with the marks")
        self.reader_edit.setText(c.reader)
        self.reader_edit.editingFinished.connect(lambda: c.set_reader(self.reader_edit.text()))

        self.label_box = QComboBox(self)
        self.label_box.setEditable(True)
        self.label_box.setInsertPolicy(QComboBox.NoInsert)
        self.label_box.addItem(DEFAULT_LABEL)
        self.label_box.setToolTip("Label for new marks: pick one used before or type a new one")
        self.label_box.lineEdit().setPlaceholderText(DEFAULT_LABEL)
        self.label_box.currentTextChanged.connect(self._on_label)

        self.mark_button = QPushButton("Mark slice (M)", self)
        self.mark_button.setToolTip("Mark the focused view's slice with the label, or unmark "
                                    "it if it has the label already (M)")
        self.mark_button.clicked.connect(lambda: c.toggle_current())
        self.range_button = QPushButton("Range to here (⇧M)", self)
        self.range_button.setToolTip("Mark every slice from the last mark to the focused "
                                     "view's slice (Shift+M)")
        self.range_button.clicked.connect(lambda: c.mark_range_to_current())
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setToolTip("Undo the last annotation change (Ctrl+Z)")
        self.undo_button.clicked.connect(c.undo)
        self.redo_button = QPushButton("Redo", self)
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(c.redo)

        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Label", "Plane", "Slices / position"])
        self.tree.setRootIsDecorated(True)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        self.tree.setToolTip("Click a mark to show it; Delete removes it, F2 relabels it")
        self.tree.currentItemChanged.connect(self._on_current_item)
        self.tree.itemClicked.connect(lambda item, _col: self._jump(item))
        self.tree.itemActivated.connect(lambda item, _col: self._jump(item))
        QShortcut(QKeySequence.Delete, self.tree, self.delete_selected,
                  context=Qt.WidgetShortcut)
        QShortcut(QKeySequence("F2"), self.tree, self.ask_relabel, context=Qt.WidgetShortcut)
        self.relabel_button = QPushButton("Relabel…", self)
        self.relabel_button.clicked.connect(self.ask_relabel)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete_selected)

        self.plane_box = QComboBox(self)
        for plane in PLANES:
            self.plane_box.addItem(plane.capitalize(), plane)
        self.plane_box.currentIndexChanged.connect(lambda _i: self.refresh_range())
        self.range_edit = QLineEdit(self)
        self.range_edit.setPlaceholderText("e.g. 0-11; 57-59; 112")
        self.range_edit.setToolTip("Slices with the label in this plane of the series on "
                                   "screen, in the original syntax; Enter applies")
        self.range_edit.returnPressed.connect(self._apply_and_return)
        # QLineEdit takes Ctrl+E (end of line) and Ctrl+I for itself; the window's export and
        # import shortcuts must still work while the box has the focus
        self._window_keys = _WindowShortcuts(self)
        self.range_edit.installEventFilter(self._window_keys)
        self.reader_edit.installEventFilter(self._window_keys)
        self.range_edit.textEdited.connect(lambda _t: self.range_error.setText(""))
        self.range_apply = QPushButton("Apply", self)
        self.range_apply.clicked.connect(self.apply_range)
        self.range_error = QLabel("", self)
        self.range_error.setWordWrap(True)
        self.range_error.setStyleSheet(ERROR_STYLE)

        self.note_edit = QPlainTextEdit(self)
        self.note_edit.installEventFilter(self._window_keys)
        self.note_edit.setPlaceholderText("note on this study (saved with the marks)")
        self.note_edit.setFixedHeight(54)
        self.note_edit.textChanged.connect(self._on_note_typed)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.setInterval(NOTE_DELAY_MS)
        self._note_timer.timeout.connect(self.flush_note)

        self.series_label = QLabel("", self)
        self.series_label.setWordWrap(True)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.saved_label = QLabel("", self)
        self.saved_label.setWordWrap(True)
        self.saved_label.setStyleSheet(OK_STYLE)
        self.saved_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Reader", self.reader_edit)
        form.addRow("Label", self.label_box)
        marks = QHBoxLayout()
        marks.addWidget(self.mark_button)
        marks.addWidget(self.range_button)
        history = QHBoxLayout()
        history.addWidget(self.undo_button)
        history.addWidget(self.redo_button)
        history.addStretch(1)
        history.addWidget(self.relabel_button)
        history.addWidget(self.delete_button)
        ranges = QHBoxLayout()
        ranges.addWidget(self.plane_box)
        ranges.addWidget(self.range_edit, 1)
        ranges.addWidget(self.range_apply)
        # The panel scrolls when the side panel is short (a laptop screen) instead of squeezing
        # its rows on top of each other.
        from PyQt5.QtWidgets import QFrame, QScrollArea

        class HeightScroll(QScrollArea):
            """Scrolls up and down only: as wide as its rows need."""

            def minimumSizeHint(self) -> QSize:
                hint = self.widget().minimumSizeHint()
                bar = self.verticalScrollBar().sizeHint().width()
                return QSize(hint.width() + bar, min(hint.height(), 120))

        inner = QWidget(self)
        scroll = HeightScroll(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(marks)
        layout.addWidget(self.series_label)
        layout.addWidget(self.tree, 1)
        layout.addLayout(history)
        self.range_title = QLabel("Slices", self)
        layout.addWidget(self.range_title)
        layout.addLayout(ranges)
        layout.addWidget(self.range_error)
        layout.addWidget(QLabel("Note", self))
        layout.addWidget(self.note_edit)
        layout.addWidget(self.status)
        layout.addWidget(self.saved_label)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

    # -- controller -> panel -----------------------------------------------------------------
    def _on_session(self) -> None:
        aset = self.controller.aset
        with QSignalBlocker(self.note_edit):
            self.note_edit.setPlainText(aset.note if aset is not None else "")
        if aset is not None and aset.reader:
            self.reader_edit.setText(aset.reader)
        sidecar = self.controller.sidecar
        self.saved_label.setText(f"Autosave: {_breakable(sidecar)}" if sidecar is not None else "")
        self.saved_label.setToolTip("Every change is saved here at once; the marks come back "
                                    "when the study is opened again")
        self.refresh()

    def _on_saved(self, path: str) -> None:
        self.saved_label.setStyleSheet(OK_STYLE)
        self.saved_label.setText(f"Autosaved to {_breakable(path)}")

    def show_message(self, text: str, problem: bool) -> None:
        self.status.setStyleSheet(ERROR_STYLE if problem else "")
        self.status.setText(text)
        status_bar = getattr(self.window(), "status", None)
        if status_bar is not None and hasattr(status_bar, "showMessage"):
            status_bar.showMessage(text, 15000 if problem else 6000)
        if self.controller.save_problem:
            self.saved_label.setStyleSheet(ERROR_STYLE)
            self.saved_label.setText(self.controller.save_problem)

    def refresh(self) -> None:
        """Redraw everything from the AnnotationSet."""
        c = self.controller
        aset = c.aset
        ready = aset is not None and c.ref is not None
        for widget in (self.mark_button, self.range_button, self.range_edit, self.range_apply,
                       self.plane_box):
            widget.setEnabled(ready)
        self.undo_button.setEnabled(aset is not None and aset.can_undo)
        self.redo_button.setEnabled(aset is not None and aset.can_redo)
        self.series_label.setText(f"Series on screen: <b>{c.ref.label}</b>" if c.ref else
                                  "Open a study to mark slices.")
        self._fill_labels()
        self._fill_tree()
        if aset is not None and not self.note_edit.hasFocus() and (
            self.note_edit.toPlainText() != aset.note and not self._note_timer.isActive()
        ):
            with QSignalBlocker(self.note_edit):
                self.note_edit.setPlainText(aset.note)
        self.refresh_range()

    def _fill_labels(self) -> None:
        aset = self.controller.aset
        used = aset.labels_used() if aset is not None else [DEFAULT_LABEL]
        if DEFAULT_LABEL not in used:
            used.append(DEFAULT_LABEL)
        current = self.label_box.currentText()
        if [self.label_box.itemText(i) for i in range(self.label_box.count())] != used:
            with QSignalBlocker(self.label_box):
                self.label_box.clear()
                self.label_box.addItems(used)
                self.label_box.setEditText(current)

    def _fill_tree(self) -> None:
        c = self.controller
        aset = c.aset
        selected = self.selected_id()
        with QSignalBlocker(self.tree):
            self.tree.clear()
            if aset is None:
                return
            bold = QFont(self.tree.font())
            bold.setBold(True)
            keep = None
            from mprviewer.model.annotation_files import natural_key

            for sa in sorted(aset.series, key=lambda x: natural_key(x.label)):
                if not sa.entries and not sa.points and not sa.clean:
                    continue
                clean = sa.clean and not sa.entries and not sa.points
                top = QTreeWidgetItem([f"{sa.label}   (read, no anomaly)" if clean else sa.label,
                                       "", ""])
                top.setFirstColumnSpanned(True)
                top.setFlags(Qt.ItemIsEnabled)
                top.setToolTip(0, f"{sa.label}\n{sa.uid}" if sa.uid else sa.label)
                if c.is_current(sa):
                    top.setFont(0, bold)
                else:
                    top.setForeground(0, QBrush(QColor(150, 150, 150)))
                self.tree.addTopLevelItem(top)
                for e in sa.entries:
                    item = QTreeWidgetItem([e.label, e.plane, e.ranges])
                    item.setData(0, ID_ROLE, e.id)
                    item.setToolTip(2, f"{len(e.slices)} {e.plane} slice(s): {e.ranges}"
                                    + (f"\n{e.note}" if e.note else ""))
                    top.addChild(item)
                    keep = item if e.id == selected else keep
                for p in sa.points:
                    value = "" if p.value is None else f" = {p.value:g}"
                    item = QTreeWidgetItem([p.label, "point",
                                            f"voxel {p.voxel[0]}, {p.voxel[1]}, {p.voxel[2]}"
                                            f"{value}"])
                    item.setData(0, ID_ROLE, p.id)
                    item.setToolTip(2, "LPS " + ", ".join(f"{v:.1f}" for v in p.lps) + " mm")
                    top.addChild(item)
                    keep = item if p.id == selected else keep
                top.setExpanded(True)
            if keep is not None:
                self.tree.setCurrentItem(keep)
        has_item = self.selected_id() is not None
        self.relabel_button.setEnabled(has_item)
        self.delete_button.setEnabled(has_item)

    def refresh_range(self) -> None:
        """Show the label's slices of the chosen plane, unless the reader is typing there."""
        c = self.controller
        plane = self.plane_box.currentData() or "axial"
        label = c.current_label()
        self.range_title.setText(f"Slices marked {label!r} in this plane (Enter applies)")
        if self.range_edit.hasFocus() and self.range_edit.isModified():
            return
        aset, ref = c.aset, c.ref
        text = ""
        if aset is not None and ref is not None:
            text = format_slices(aset.slices_for(ref.uid, ref.name, plane, label))
        if text != self.range_edit.text():
            self.range_edit.setText(text)
        self.range_edit.setModified(False)

    def follow_plane(self, plane: str) -> None:
        """The range box follows the focused view unless the reader is typing there."""
        if self.range_edit.hasFocus() and self.range_edit.isModified():
            return
        index = self.plane_box.findData(plane)
        if index >= 0 and index != self.plane_box.currentIndex():
            self.plane_box.setCurrentIndex(index)

    # -- panel -> controller -----------------------------------------------------------------
    def _on_label(self, text: str) -> None:
        self.controller.set_label(text)
        self.refresh_range()

    def _apply_and_return(self) -> None:
        """Enter applies the range and hands the keys back to the view that had them."""
        if self.apply_range():
            window = self.controller.window
            state = getattr(window, "state", None)
            views = getattr(getattr(window, "views", None), "slice_views", {})
            plane = getattr(state, "focused_plane", None) or "axial"
            view = views.get(plane)
            if view is not None:
                view.interactor.setFocus(Qt.OtherFocusReason)

    def apply_range(self) -> bool:
        """Set the label's slices in the chosen plane from the text box; errors stay inline."""
        plane = self.plane_box.currentData() or "axial"
        try:
            self.controller.set_slices_text(plane, self.range_edit.text())
        except AnnotationError as exc:
            self.range_error.setText(str(exc))
            return False
        self.range_error.setText("")
        self.range_edit.setModified(False)
        self.refresh_range()
        return True

    def selected_id(self) -> str | None:
        item = self.tree.currentItem()
        value = item.data(0, ID_ROLE) if item is not None else None
        return str(value) if value else None

    def select(self, item_id: str) -> bool:
        """Make the mark with this id the current row (and show it)."""
        for n in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(n)
            for m in range(top.childCount()):
                child = top.child(m)
                if child.data(0, ID_ROLE) == item_id:
                    self.tree.setCurrentItem(child)
                    return True
        return False

    def _on_current_item(self, item: QTreeWidgetItem | None, _prev: Any = None) -> None:
        has_item = item is not None and bool(item.data(0, ID_ROLE))
        self.relabel_button.setEnabled(has_item)
        self.delete_button.setEnabled(has_item)
        if has_item:
            self._jump(item)

    def _jump(self, item: QTreeWidgetItem) -> None:
        item_id = item.data(0, ID_ROLE)
        if item_id:
            self.controller.jump_to(str(item_id))

    def ask_relabel(self) -> None:
        item_id = self.selected_id()
        aset = self.controller.aset
        if item_id is None or aset is None:
            return
        try:
            _sa, item = aset.find(item_id)
        except AnnotationError:
            return
        labels = aset.labels_used()
        current = labels.index(item.label) if item.label in labels else 0
        label, ok = QInputDialog.getItem(self, "Relabel", "New label:", labels, current, True)
        if ok and label.strip():
            self.controller.relabel(item_id, label)

    def delete_selected(self) -> None:
        item_id = self.selected_id()
        if item_id is not None:
            self.controller.delete(item_id)

    def _on_note_typed(self) -> None:
        self._note_timer.start()

    def flush_note(self) -> None:
        self._note_timer.stop()
        self.controller.set_note(self.note_edit.toPlainText())

    def flush(self) -> None:
        """Save what is being typed (the window closes or another study opens)."""
        if self._note_timer.isActive():
            self.flush_note()
        if self.reader_edit.isModified():
            self.controller.set_reader(self.reader_edit.text())
            self.reader_edit.setModified(False)
