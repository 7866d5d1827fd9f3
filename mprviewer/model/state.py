"""The one viewer state that 2D views, 3D planes, sliders and annotation marks all follow."""

from __future__ import annotations

import numpy as np

from mprviewer.model.events import Signal
from mprviewer.model.orientation import PLANE_AXIS, PLANES, DisplayGrid


class ViewerState:
    """Current slice per plane, window/level, threshold and display toggles.

    Slice indices are on the display grid (see ``mprviewer.model.orientation``). Setters
    clamp their input and emit only when something changed, so views can call them freely
    from their own events without feedback loops.
    """

    def __init__(
        self,
        grid: DisplayGrid,
        window: tuple[float, float] = (40.0, 400.0),
        threshold: float = 0.0,
    ) -> None:
        self.grid = grid
        self.slices: dict[str, int] = {p: grid.plane_size(p) // 2 for p in PLANES}
        self.window_center, self.window_width = float(window[0]), max(float(window[1]), 1e-6)
        self.threshold = float(threshold)
        self.threshold_overlay = False
        self.volume_opacity = False
        self.focused_plane = "axial"
        self.slice_changed = Signal()  # (plane, index)
        self.window_changed = Signal()  # (center, width)
        self.threshold_changed = Signal()  # (value)
        self.display_changed = Signal()  # (name, value) for overlay / opacity toggles
        self.focus_changed = Signal()  # (plane)

    # -- slices ------------------------------------------------------------------------
    def set_slice(self, plane: str, index: int) -> None:
        index = int(np.clip(int(index), 0, self.grid.plane_size(plane) - 1))
        if self.slices[plane] != index:
            self.slices[plane] = index
            self.slice_changed.emit(plane, index)

    def step(self, plane: str, delta: int) -> None:
        self.set_slice(plane, self.slices[plane] + int(delta))

    def set_cursor(self, xyz: tuple[float, float, float] | np.ndarray) -> None:
        """Move all three planes through display index (x, y, z)."""
        for plane in PLANES:
            self.set_slice(plane, round(float(xyz[PLANE_AXIS[plane]])))

    @property
    def cursor(self) -> tuple[int, int, int]:
        """Display index (x, y, z) where the three planes cross."""
        return (self.slices["sagittal"], self.slices["coronal"], self.slices["axial"])

    # -- display -----------------------------------------------------------------------
    def set_window(self, center: float, width: float) -> None:
        center, width = float(center), max(float(width), 1e-6)
        if (center, width) != (self.window_center, self.window_width):
            self.window_center, self.window_width = center, width
            self.window_changed.emit(center, width)

    def set_threshold(self, value: float) -> None:
        if float(value) != self.threshold:
            self.threshold = float(value)
            self.threshold_changed.emit(self.threshold)

    def set_threshold_overlay(self, on: bool) -> None:
        if bool(on) != self.threshold_overlay:
            self.threshold_overlay = bool(on)
            self.display_changed.emit("threshold_overlay", self.threshold_overlay)

    def set_volume_opacity(self, on: bool) -> None:
        if bool(on) != self.volume_opacity:
            self.volume_opacity = bool(on)
            self.display_changed.emit("volume_opacity", self.volume_opacity)

    def set_focus(self, plane: str) -> None:
        if plane != self.focused_plane:
            self.focused_plane = plane
            self.focus_changed.emit(plane)
