"""Status bar: voxel (i, j, k), patient position in mm and the value under the mouse; warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QLabel, QStatusBar, QWidget


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


class ViewerStatusBar(QStatusBar):
    """Permanent cursor read-out on the right, load warnings in the middle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.warnings_label = QLabel("", self)
        self.warnings_label.setStyleSheet("color: #e0a030;")
        self.warnings_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.cursor_label = QLabel("", self)
        self.cursor_label.setMinimumWidth(460)
        self.cursor_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.addPermanentWidget(self.warnings_label)
        self.addPermanentWidget(self.cursor_label)
        self.store: Any = None

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
