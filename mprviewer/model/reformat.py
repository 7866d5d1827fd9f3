"""Oblique reformat state (the double-oblique MPR of 3D Slicer and Horos), Qt- and VTK-free.

``ReformatPlanes`` holds, for each of the axial, coronal and sagittal views, a frame of three
world directions: the screen's right, the screen's up and the view direction (the plane's
normal, from the camera into the scene). Rotating the crosshair in one view by an angle
turns the other two frames about that view's normal, so the three planes stay mutually
perpendicular while the view rotated in keeps its own picture (only its crosshair lines
turn). ``reset`` makes all three orthogonal again. The session owns one; the render layer's
``ObliqueSlice`` draws it.

Marks stay defined on the orthogonal grid: while any plane is tilted marking is refused
(``MARKING_REFUSED`` says why).
"""

from __future__ import annotations

import numpy as np

from mprviewer.model.events import Signal

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
TILT_EPS_DEG = 0.05
"""Frames closer than this to their orthogonal position count as not tilted."""
LETTER_MIN = 0.2
"""A patient direction enters an oblique edge's letters when its share passes this."""
MARKING_REFUSED = ("the planes are tilted (oblique reformat) and marks belong to the "
                   "orthogonal slices: press Reset oblique (Shift+O) first")

_LETTER = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


# The radiological views (mprviewer.render.planes, kept equal by a test): screen right, screen
# up and view direction of each plane in LPS.
BASE_FRAMES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (-1.0, 0.0, 0.0)),
}


def _base_frame(plane: str) -> np.ndarray:
    return np.column_stack([np.asarray(v, dtype=np.float64) for v in BASE_FRAMES[plane]])


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """3x3 right-handed rotation by ``degrees`` about the unit vector ``axis``."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(t) * k + (1.0 - np.cos(t)) * (k @ k)


def oblique_letters(direction: np.ndarray | tuple[float, float, float]) -> str:
    """Patient letters of a world direction, strongest first ('L', 'LP', 'SLA').

    A direction along an axis gives one letter, as on an orthogonal view; a tilted one gives
    every axis whose component passes ``LETTER_MIN`` (Horos and Slicer write it the same
    way), so 'LP' reads "left and somewhat posterior".
    """
    v = np.asarray(direction, dtype=np.float64)
    v = v / np.linalg.norm(v)
    order = np.argsort(-np.abs(v))
    out = [_LETTER[(int(d), 1 if v[d] > 0 else -1)] for d in order if abs(v[d]) >= LETTER_MIN]
    return "".join(out) or _LETTER[(int(order[0]), 1 if v[order[0]] > 0 else -1)]


class ReformatPlanes:
    """Orientation of the three 2D views' planes; orthogonal until a crosshair is rotated."""

    def __init__(self) -> None:
        self._frames = {p: _base_frame(p) for p in PLANES}
        self.changed = Signal()  # () after every change of any frame

    # -- facts -------------------------------------------------------------------------
    def frame(self, plane: str) -> np.ndarray:
        """3x3 array whose columns are the world directions of the view's right, up and
        normal (view direction)."""
        return self._frames[plane].copy()

    def normal(self, plane: str) -> np.ndarray:
        return self._frames[plane][:, 2].copy()

    def right(self, plane: str) -> np.ndarray:
        return self._frames[plane][:, 0].copy()

    def up(self, plane: str) -> np.ndarray:
        return self._frames[plane][:, 1].copy()

    def tilt_deg(self, plane: str) -> float:
        """Angle between the plane's frame and its orthogonal one (0 when not tilted)."""
        r = self._frames[plane] @ _base_frame(plane).T
        cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
        return float(np.degrees(np.arccos(cos)))

    def is_tilted(self, plane: str) -> bool:
        return self.tilt_deg(plane) > TILT_EPS_DEG

    @property
    def is_oblique(self) -> bool:
        """True when any plane is tilted: marking is refused then."""
        return any(self.is_tilted(p) for p in PLANES)

    def edge_letters(self, plane: str) -> dict[str, str]:
        """Letters for the left, right, top and bottom edges of the plane's view."""
        right, up = self.right(plane), self.up(plane)
        return {"left": oblique_letters(-right), "right": oblique_letters(right),
                "top": oblique_letters(up), "bottom": oblique_letters(-up)}

    # -- actions -----------------------------------------------------------------------
    def rotate(self, plane: str, degrees: float) -> None:
        """Turn the crosshair of ``plane``'s view by ``degrees`` counter-clockwise on the
        screen: the two other planes turn about this plane's normal."""
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; use axial, coronal or sagittal")
        degrees = float(degrees)
        if not np.isfinite(degrees) or degrees == 0.0:
            return
        # Counter-clockwise as seen by the camera, which looks along the normal.
        turn = rotation(-self._frames[plane][:, 2], degrees)
        for other in PLANES:
            if other != plane:
                self._frames[other] = turn @ self._frames[other]
        self.changed.emit()

    def reset(self) -> None:
        """All three planes orthogonal again."""
        if not self.is_oblique:
            return
        self._frames = {p: _base_frame(p) for p in PLANES}
        self.changed.emit()


__all__ = ["MARKING_REFUSED", "ReformatPlanes", "oblique_letters", "rotation"]
