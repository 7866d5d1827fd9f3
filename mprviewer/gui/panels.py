"""Side panel pieces: series table, DICOM data tables and the display controls.

Every control that changes what is shown calls a ``ViewerState`` setter and listens to the
state's signals, so the panel, the views and the 3D planes never fall out of step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PyQt5.QtCore import QSignalBlocker, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

WARNING_COLOR = QColor(255, 190, 60)
PENDING_COLOR = QColor(150, 150, 150)  # rows listed by a server, images not here yet
RESIZE_PRECISION = 200  # rows a column's width is fitted to (Qt's default looks at 1000)


def _fmt_mm(values: Sequence[float]) -> str:
    return " × ".join(f"{v:.3g}" for v in values)


# -- series ----------------------------------------------------------------------------
class SeriesTable(QWidget):
    """The study's series; choosing a row asks the window to load that series."""

    series_chosen = pyqtSignal(int)
    COLUMNS = ("#", "Series", "Mod.", "Size", "⚠")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        header.setStretchLastSection(False)
        self.table.setWordWrap(False)
        self.table.cellDoubleClicked.connect(lambda row, _col: self._choose(row))
        self.table.itemActivated.connect(lambda item: self._choose(item.row()))
        self.pending = False  # rows announced by a server, not loadable yet
        self._current = -1  # the row shown as loaded (bold)
        self.skipped_label = QLabel("", self)
        # A long server address or count must not widen the side panel: the text is clipped.
        self.skipped_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.skipped_button = QPushButton("Details…", self)
        self.skipped_button.clicked.connect(self._show_skipped)
        self.skipped_button.setVisible(False)
        foot = QHBoxLayout()
        foot.addWidget(self.skipped_label, 1)
        foot.addWidget(self.skipped_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(foot)
        self._skipped: list[tuple[str, str]] = []
        self.table.setToolTip("Double-click (or Enter) a series to load it")

    def _choose(self, row: int) -> None:
        if not self.pending:
            self.series_chosen.emit(row)

    def show_pending(self, rows: Sequence[Any], where: str) -> None:
        """List series a server announced (PACS metadata) while their images still arrive.

        ``rows`` carry ``number``, ``description``, ``modality`` and ``num_instances``; they
        cannot be chosen until the retrieved study replaces them through ``set_study``.
        """
        self.pending = True
        self._current = -1
        with self._bulk():
            self.table.setRowCount(len(rows))
            for row, series in enumerate(rows):
                count = getattr(series, "num_instances", None)
                values = [
                    "" if series.number is None else str(series.number),
                    series.description or series.series_uid,
                    series.modality,
                    "" if count is None else f"{count} images",
                    "…",
                ]
                tip = f"{series.series_uid}\nbeing retrieved from {where}"
                for col, text in enumerate(values):
                    item = QTableWidgetItem(text)
                    item.setToolTip(tip)
                    item.setForeground(PENDING_COLOR)
                    self.table.setItem(row, col, item)
        self.table.clearSelection()
        self._skipped = []
        self.skipped_label.setText(f"Retrieving {len(rows)} series from {where}…")
        self.skipped_label.setToolTip(self.skipped_label.text())
        self.skipped_button.setVisible(False)

    def _icon(self, warn: bool) -> Any:
        """The warning / all-right icon, made once (asking the style per row costs)."""
        if not hasattr(self, "_icons"):
            style = self.style()
            self._icons = (style.standardIcon(QStyle.SP_DialogApplyButton),
                           style.standardIcon(QStyle.SP_MessageBoxWarning))
        return self._icons[warn]

    @contextlib.contextmanager
    def _bulk(self) -> Iterator[None]:
        """Fill many rows at once: no repaint, and no column fitted to its contents after
        every cell (which made 10,000 rows take minutes); the columns are fitted once after."""
        header = self.table.horizontalHeader()
        self.table.setUpdatesEnabled(False)
        for col in range(len(self.COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.Interactive)
        try:
            yield
        finally:
            header.setResizeContentsPrecision(RESIZE_PRECISION)
            for col in range(len(self.COLUMNS)):
                header.setSectionResizeMode(
                    col, QHeaderView.Stretch if col == 1 else QHeaderView.ResizeToContents)
            self.table.setUpdatesEnabled(True)

    def set_study(self, study: Any, current: int = 0) -> None:
        """Fill the table from ``study.series``; ``current`` is the row shown as loaded."""
        self.pending = False
        series_list = list(getattr(study, "series", []) or [])
        self._current = -1
        with self._bulk():
            self.table.clearContents()
            self.table.setRowCount(len(series_list))
            for row, series in enumerate(series_list):
                shape = tuple(getattr(series, "shape", ()) or ())
                size = " × ".join(str(n) for n in reversed(shape)) if shape else ""
                spacing = getattr(series, "spacing", None)
                warnings = list(getattr(series, "warnings", []) or [])
                title = str(getattr(series, "description", "") or getattr(series, "name", ""))
                values = [
                    str(getattr(series, "number", "") or row + 1),
                    title,
                    str(getattr(series, "modality", "")),
                    size,
                    "",
                ]
                tip = (
                    f"{getattr(series, 'name', title)}\n{getattr(series, 'num_slices', '?')} "
                    f"images, {size} voxels" + (f", {_fmt_mm(spacing)} mm" if spacing else "")
                )
                for col, text in enumerate(values):
                    item = QTableWidgetItem(text)
                    item.setToolTip(tip)
                    self.table.setItem(row, col, item)
                self.set_warnings(row, warnings)
        self.skipped_label.setToolTip("")
        self._skipped = list(getattr(study, "skipped", []) or [])
        if self._skipped:
            self.skipped_label.setText(f"{len(self._skipped)} file(s) skipped")
        else:
            self.skipped_label.setText("")
        self.skipped_button.setVisible(bool(self._skipped))
        self.set_current(current)

    def _set_bold(self, row: int, bold: bool) -> None:
        for c in range(self.table.columnCount()):
            item = self.table.item(row, c)
            if item is not None:
                font = item.font()
                font.setBold(bold)
                item.setFont(font)

    def set_current(self, row: int) -> None:
        """Select and embolden ``row`` (only the old and the new row change)."""
        with QSignalBlocker(self.table):
            if 0 <= row < self.table.rowCount():
                self.table.selectRow(row)
        previous = getattr(self, "_current", -1)
        if 0 <= previous < self.table.rowCount() and previous != row:
            self._set_bold(previous, False)
        if 0 <= row < self.table.rowCount():
            self._set_bold(row, True)
        self._current = row

    def set_warnings(self, row: int, warnings: Sequence[str]) -> None:
        """Show a series' load warnings (missing slices, tilt...) in its row."""
        item = self.table.item(row, len(self.COLUMNS) - 1)
        if item is None:
            return
        warnings = list(dict.fromkeys(warnings))
        item.setText(f"⚠ {len(warnings)}" if warnings else "")
        item.setToolTip("\n".join(warnings) if warnings else "No warnings")
        if warnings:
            item.setForeground(WARNING_COLOR)
        item.setIcon(self._icon(bool(warnings)))

    def _show_skipped(self) -> None:
        box = QMessageBox(QMessageBox.Information, "Skipped files",
                          f"{len(self._skipped)} file(s) were not used.", QMessageBox.Ok, self)
        box.setDetailedText("\n".join(f"{name}: {reason}" for name, reason in self._skipped))
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()


# -- DICOM data ------------------------------------------------------------------------
class _FilterBox(QLineEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Filter (name, tag or value)…")
        self.setClearButtonEnabled(True)


class DataTable(QWidget):
    """The selected series' DICOM data (patient, study, series, geometry) as name/value rows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = _FilterBox(self)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(("Attribute", "Value"))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)
        self.filter.textChanged.connect(self._apply_filter)

    def set_metadata(self, metadata: dict[str, Any] | None) -> None:
        items = list((metadata or {}).items())
        self.table.setRowCount(len(items))
        for row, (name, value) in enumerate(items):
            self.table.setItem(row, 0, QTableWidgetItem(str(name)))
            value_item = QTableWidgetItem(str(value))
            value_item.setToolTip(str(value))
            self.table.setItem(row, 1, value_item)
        self._apply_filter(self.filter.text())

    def rows(self) -> list[tuple[str, str]]:
        """The table's content (tests, copy)."""
        return [
            (self.table.item(r, 0).text(), self.table.item(r, 1).text())
            for r in range(self.table.rowCount())
        ]

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            hay = " ".join(
                self.table.item(row, c).text().lower() for c in range(2) if self.table.item(row, c)
            )
            self.table.setRowHidden(row, bool(needle) and needle not in hay)


class TagBrowser(QWidget):
    """Every tag of the file behind the current acquisition slice, sequences as subtrees.

    The file is read (without pixel data) only while the browser is visible, and only after the
    slice has stopped changing for a moment, so scrolling never waits on the disk.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel("No slice", self)
        self.filter = _FilterBox(self)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(("Tag", "Name", "VR", "Value"))
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        self.filter.textChanged.connect(self._apply_filter)
        self._provider: Callable[[int], Any] | None = None
        self._pending: int | None = None
        self._shown: int | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self._refresh)

    def set_provider(self, provider: Callable[[int], Any] | None) -> None:
        """``provider(k)`` returns the pydicom Dataset of the volume's slice k, or None."""
        self._provider = provider
        self._shown = None
        self.tree.clear()
        self.caption.setText("No slice" if provider is None else "")

    def show_slice(self, k: int | None) -> None:
        """Ask for slice k's tags; the read happens later, once, if the browser is visible."""
        self._pending = k
        self._timer.start()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._timer.start()

    def _refresh(self) -> None:
        if not self.isVisible() or self._provider is None:
            return
        k = self._pending
        if k is None:
            self.caption.setText("This plane is a reformat: pick a slice in the acquisition plane")
            return
        if k == self._shown:
            return
        try:
            dataset = self._provider(k)
        except Exception as exc:  # a file that vanished or cannot be read: say so, go on
            self.tree.clear()
            self.caption.setText(f"Slice {k}: cannot read its file ({exc})")
            self._shown = None
            return
        self._shown = k
        self.tree.clear()
        if dataset is None:
            self.caption.setText(f"Slice {k}: no file (resampled or synthetic)")
            return
        source = getattr(dataset, "filename", "") or ""
        source = source if isinstance(source, str) else ""
        self.caption.setText(f"Acquisition slice k={k}  {source}")
        self.tree.setUpdatesEnabled(False)
        self._add_elements(self.tree.invisibleRootItem(), dataset)
        self.tree.setUpdatesEnabled(True)
        self._apply_filter(self.filter.text())

    def _add_elements(self, parent: QTreeWidgetItem, dataset: Any) -> None:
        for element in dataset:
            tag = f"({element.tag.group:04X},{element.tag.element:04X})"
            if element.VR == "SQ":
                count = f"{len(element.value)} item(s)"
                item = QTreeWidgetItem(parent, [tag, element.name, "SQ", count])
                for number, child in enumerate(element.value, start=1):
                    sub = QTreeWidgetItem(item, ["", f"Item {number}", "", ""])
                    self._add_elements(sub, child)
                continue
            if element.tag == 0x7FE00010:
                value = "(pixel data not read)"
            else:
                raw = element.value
                value = repr(raw) if isinstance(raw, bytes) else str(raw)
                if len(value) > 200:
                    value = value[:200] + "…"
            QTreeWidgetItem(parent, [tag, element.name, str(element.VR), value])

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            item = root.child(i)
            hay = " ".join(item.text(c).lower() for c in range(4))
            item.setHidden(bool(needle) and needle not in hay)


# -- display controls ------------------------------------------------------------------
CAMERA_PRESETS: tuple[tuple[str, str], ...] = (
    ("A", "anterior"),
    ("P", "posterior"),
    ("L", "left"),
    ("R", "right"),
    ("S", "superior"),
    ("I", "inferior"),
    ("3D", "iso"),
    ("Reset", "reset"),
)


class DisplayControls(QWidget):
    """Window/level, presets, threshold (in the data's units), overlay/opacity toggles, cameras."""

    camera_requested = pyqtSignal(str)
    preset_applied = pyqtSignal(str)

    SLIDER_STEPS = 1000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state: Any = None  # the session's ViewerState while bound (read only)
        self.session: Any = None
        self.volume: Any = None
        self._file_window: tuple[float, float] | None = None
        self._range = (0.0, 1.0)

        self.center = QDoubleSpinBox(self)
        self.width_box = QDoubleSpinBox(self)
        for box in (self.center, self.width_box):
            box.setRange(-1e6, 1e6)
            box.setDecimals(0)
            box.setKeyboardTracking(False)
            box.setAccelerated(True)
        self.width_box.setMinimum(1)
        self.center.setToolTip("Window centre (level); right-drag in a 2D view changes it too")
        self.width_box.setToolTip("Window width; right-drag left/right in a 2D view changes it")
        self.preset = QComboBox(self)
        self.preset.setToolTip("Window presets; 'file' is the DICOM's WindowCenter/Width")
        self.preset.activated.connect(self._on_preset)

        self.threshold_slider = QSlider(Qt.Horizontal, self)
        self.threshold_slider.setRange(0, self.SLIDER_STEPS)
        self.threshold_box = QDoubleSpinBox(self)
        self.threshold_box.setKeyboardTracking(False)
        self.threshold_box.setRange(-1e6, 1e6)
        self.threshold_box.setDecimals(0)
        self.threshold_slider.setToolTip(
            "Threshold: voxels above it are coloured in 2D (overlay) and opaque in 3D"
        )
        self.overlay = QCheckBox("Colour voxels above threshold in 2D", self)
        self.opacity = QCheckBox("Volume rendering in 3D (opacity from threshold)", self)

        self.center.valueChanged.connect(self._on_window_entry)
        self.width_box.valueChanged.connect(self._on_window_entry)
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider)
        self.threshold_box.valueChanged.connect(lambda v: self._tell("set_threshold", v))
        self.overlay.toggled.connect(lambda on: self._tell("set_threshold_overlay", on))
        self.opacity.toggled.connect(lambda on: self._tell("set_volume_opacity", on))

        window_row = QHBoxLayout()
        window_row.addWidget(QLabel("C", self))
        window_row.addWidget(self.center, 1)
        window_row.addWidget(QLabel("W", self))
        window_row.addWidget(self.width_box, 1)
        window_row.addWidget(self.preset, 2)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold_slider, 1)
        threshold_row.addWidget(self.threshold_box)
        cameras = QGridLayout()
        cameras.setSpacing(2)
        self.camera_buttons: dict[str, QPushButton] = {}
        for n, (text, name) in enumerate(CAMERA_PRESETS):
            button = QPushButton(text, self)
            button.setToolTip(f"3D camera: {name}")
            button.setMinimumWidth(30)
            button.clicked.connect(lambda _=False, c=name: self.camera_requested.emit(c))
            cameras.addWidget(button, 0, n)
            self.camera_buttons[name] = button

        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        form.setVerticalSpacing(4)
        form.addRow("Window", window_row)
        form.addRow("Threshold", threshold_row)
        form.addRow("", self.overlay)
        form.addRow("", self.opacity)
        form.addRow("3D view", cameras)
        self.setEnabled(False)

    # -- binding -----------------------------------------------------------------------
    def bind(self, session: Any, volume: Any) -> None:
        """Follow ``session`` (its ViewerState for ``volume``); replaces any previous binding.
        The widgets show the session's values and call its setters."""
        from mprviewer.model.presets import preset_names

        self.unbind()
        state = session.state
        self.session, self.state, self.volume = session, state, volume
        self._file_window = getattr(volume, "window", None)
        lo, hi = volume.value_range()
        self._range = (lo, hi if hi > lo else lo + 1.0)
        integer = np.issubdtype(volume.array.dtype, np.integer)
        span = self._range[1] - self._range[0]
        decimals = 0 if integer or span > 200 else (2 if span > 2 else 4)
        units = f" {volume.units}" if getattr(volume, "units", "") else ""
        with QSignalBlocker(self.preset):
            self.preset.clear()
            if self._file_window is not None:
                self.preset.addItem("DICOM", "file")
            for name in preset_names(getattr(volume, "modality", "") or ""):
                self.preset.addItem(name, name)
            self.preset.addItem("custom", "custom")
        for box in (self.center, self.width_box, self.threshold_box):
            with QSignalBlocker(box):
                box.setDecimals(decimals)
                box.setSuffix(units)
                box.setSingleStep(1.0 if decimals == 0 else 10.0 ** -(decimals - 1))
        with QSignalBlocker(self.threshold_box):
            self.threshold_box.setRange(*self._range)
        session.window_changed.connect(self._on_state_window)
        session.threshold_changed.connect(self._on_state_threshold)
        session.display_changed.connect(self._on_state_display)
        self._on_state_window(state.window_center, state.window_width)
        self._on_state_threshold(state.threshold)
        self._on_state_display("threshold_overlay", state.threshold_overlay)
        self._on_state_display("volume_opacity", state.volume_opacity)
        self._select_preset_matching()
        self.setEnabled(True)

    def unbind(self) -> None:
        session, self.state = self.session, None
        if session is not None:
            session.window_changed.disconnect(self._on_state_window)
            session.threshold_changed.disconnect(self._on_state_threshold)
            session.display_changed.disconnect(self._on_state_display)
        self.volume = None
        self.setEnabled(False)

    # -- presets -----------------------------------------------------------------------
    def apply_preset(self, name: str) -> None:
        """Set the window from a preset name ('file', 'auto', 'lung', ...)."""
        from mprviewer.model.presets import resolve_preset

        if self.state is None or self.volume is None or name == "custom":
            return
        if name == "file" and self._file_window is not None:
            center, width = self._file_window
        else:
            center, width = resolve_preset(name, self.volume.array)
        self.session.set_window(center, width)
        index = self.preset.findData(name)
        if index >= 0:
            with QSignalBlocker(self.preset):
                self.preset.setCurrentIndex(index)
        self.preset_applied.emit(name)

    def show_preset(self, name: str) -> None:
        """Name the preset the current window came from (``auto`` when the viewer chose it)."""
        index = self.preset.findData(name)
        if index >= 0:
            with QSignalBlocker(self.preset):
                self.preset.setCurrentIndex(index)

    def preset_names(self) -> list[str]:
        return [self.preset.itemData(i) for i in range(self.preset.count())]

    def _on_preset(self, index: int) -> None:
        self.apply_preset(self.preset.itemData(index))

    def _select_preset_matching(self) -> None:
        from mprviewer.model.presets import CT_PRESETS

        if self.state is None:
            return
        current = (self.state.window_center, self.state.window_width)
        name = "custom"
        if self._file_window is not None and np.allclose(current, self._file_window):
            name = "file"
        else:
            for preset, value in CT_PRESETS.items():
                if np.allclose(current, value) and self.preset.findData(preset) >= 0:
                    name = preset
                    break
        with QSignalBlocker(self.preset):
            self.preset.setCurrentIndex(max(0, self.preset.findData(name)))

    # -- widget -> session -------------------------------------------------------------
    def _tell(self, action: str, *args: Any) -> None:
        """Call a session setter while bound (the widgets change before a volume is shown)."""
        if self.session is not None and self.state is not None:
            getattr(self.session, action)(*args)

    def _on_window_entry(self, _value: float) -> None:
        self._tell("set_window", self.center.value(), self.width_box.value())

    def _slider_to_value(self, position: int) -> float:
        lo, hi = self._range
        return lo + (hi - lo) * position / self.SLIDER_STEPS

    def _value_to_slider(self, value: float) -> int:
        lo, hi = self._range
        return round((value - lo) / (hi - lo) * self.SLIDER_STEPS)

    def _on_threshold_slider(self, position: int) -> None:
        value = self._slider_to_value(position)
        if self.threshold_box.decimals() == 0:
            value = round(value)
        self._tell("set_threshold", value)

    # -- state -> widget ---------------------------------------------------------------
    def _on_state_window(self, center: float, width: float) -> None:
        with QSignalBlocker(self.center), QSignalBlocker(self.width_box):
            self.center.setValue(center)
            self.width_box.setValue(width)
        self._select_preset_matching()

    def _on_state_threshold(self, value: float) -> None:
        with QSignalBlocker(self.threshold_box), QSignalBlocker(self.threshold_slider):
            self.threshold_box.setValue(value)
            self.threshold_slider.setValue(self._value_to_slider(value))

    def _on_state_display(self, name: str, value: Any) -> None:
        box = {"threshold_overlay": self.overlay, "volume_opacity": self.opacity}.get(name)
        if box is not None:
            with QSignalBlocker(box):
                box.setChecked(bool(value))
