"""Status bar: voxel (i, j, k), patient position in mm and the value under the mouse; warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget


def describe_voxel(store: Any, xyz: Sequence[int] | None) -> str:
    """'i, j, k | L/P/S mm | value units' for a display voxel, or '' outside the image.

    i, j, k are the volume's own indices (column, row, slice of the files), so they match what
    other DICOM tools show; x, y, z of the display grid are only the views' internal order.
    """
    if store is None or xyz is None or not store.contains(tuple(int(v) for v in xyz)):
        return ""
    grid = store.grid
    i, j, k = (round(v) for v in grid.display_to_ijk(np.asarray(xyz, dtype=float)))
    lps = grid.display_to_lps(np.asarray(xyz, dtype=float))
    value = store.value_at(tuple(int(v) for v in xyz))
    if isinstance(value, tuple):
        value_text = "RGB " + ", ".join(str(v) for v in value)
    elif isinstance(value, float) and not value.is_integer():
        value_text = f"{value:.4g}"
    else:
        value_text = str(int(value))
    units = f" {store.units}" if store.units else ""
    return (
        f"voxel i,j,k {i}, {j}, {k}   |   "
        f"LPS {lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f} mm   |   "
        f"value {value_text}{units}"
    )


class ElidedLabel(QLabel):
    """One line of text cut with "…" to the width it is given (the whole text in the tip)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setMinimumWidth(40)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text if len(text) > 60 else "")
        self._fit()

    def _fit(self) -> None:
        self.setText(self.fontMetrics().elidedText(self.full_text, Qt.ElideRight,
                                                   max(self.width(), 40)))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()


class ViewerStatusBar(QStatusBar):
    """Messages on the left, load warnings in the middle, the cursor read-out on the right.

    Messages go into a label of their own that takes the room the other two leave and elides
    what does not fit (QStatusBar paints its temporary message under the permanent widgets,
    so a long one ran under the read-out); a new message replaces the last one.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_label = ElidedLabel(self)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clearMessage)
        self.addWidget(self.message_label, 1)
        self.warnings_label = QLabel("", self)
        self.warnings_label.setStyleSheet("color: #e0a030;")
        self.warnings_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.cursor_label = QLabel("", self)
        self.cursor_label.setMinimumWidth(460)
        self.cursor_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.addPermanentWidget(self.warnings_label)
        self.addPermanentWidget(self.cursor_label)
        self.store: Any = None

    # -- messages (QStatusBar's API, shown in the message label) ----------------------------
    def showMessage(self, text: str, timeout: int = 0) -> None:
        self.message_label.set_full_text(" ".join(str(text).split()))
        if timeout > 0:
            self._message_timer.start(int(timeout))
        else:
            self._message_timer.stop()

    def clearMessage(self) -> None:
        self._message_timer.stop()
        self.message_label.set_full_text("")

    def currentMessage(self) -> str:
        return self.message_label.full_text

    def new_study(self) -> None:
        """Forget what the last study said: messages, warnings and the read-out."""
        self.clearMessage()
        self.set_warnings([])
        self.cursor_label.setText("")

    def set_store(self, store: Any) -> None:
        self.store = store
        self.cursor_label.setText("")

    def show_voxel(self, plane: str, xyz: Any) -> None:
        """Hover read-out of a 2D view; leaving the image keeps the last text dimmed."""
        text = describe_voxel(self.store, xyz)
        if text:
            self.cursor_label.setText(f"{plane}: {text}")
            self.cursor_label.setStyleSheet("")
        else:
            self.cursor_label.setStyleSheet("color: #888;")

    def set_warnings(self, warnings: Sequence[str]) -> None:
        warnings = list(dict.fromkeys(warnings))
        if not warnings:
            self.warnings_label.setText("")
            self.warnings_label.setToolTip("")
            return
        first = warnings[0] if len(warnings[0]) < 90 else warnings[0][:89] + "…"
        more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
        self.warnings_label.setText(f"⚠ {first}{more}")
        self.warnings_label.setToolTip("\n".join(warnings))
