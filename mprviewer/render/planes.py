"""Where the camera of each 2D view sits: the radiological convention in one place.

World axes are LPS (x toward the patient's Left, y Posterior, z Superior).

- axial: camera below the feet looking up (+z), anterior at the top (view-up -y), so the
  patient's left is on the screen's right;
- coronal: camera in front of the patient looking posterior (+y), superior up, patient's
  left on the screen's right;
- sagittal: camera at the patient's left looking toward the right (-x), superior up, so
  anterior is on the screen's left.

Orientation letters are derived from the same vectors, so they cannot disagree with the image.
"""

from __future__ import annotations

import numpy as np

VIEW_DIRECTION: dict[str, tuple[float, float, float]] = {
    "axial": (0.0, 0.0, 1.0),
    "coronal": (0.0, 1.0, 0.0),
    "sagittal": (-1.0, 0.0, 0.0),
}
VIEW_UP: dict[str, tuple[float, float, float]] = {
    "axial": (0.0, -1.0, 0.0),
    "coronal": (0.0, 0.0, 1.0),
    "sagittal": (0.0, 0.0, 1.0),
}
PLANE_COLORS: dict[str, tuple[float, float, float]] = {
    "axial": (0.95, 0.3, 0.3),
    "coronal": (0.35, 0.85, 0.35),
    "sagittal": (0.95, 0.85, 0.25),
}
# 3D camera presets: (direction from the focal point to the camera in LPS, view-up).
CAMERAS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    "iso": ((0.55, -1.0, 0.6), (0.0, 0.0, 1.0)),
}
CAMERA_NAMES: tuple[str, ...] = (*CAMERAS, "reset")
_LETTER = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


def screen_axes(plane: str) -> tuple[np.ndarray, np.ndarray]:
    """World directions of the screen's right and up in this plane's view."""
    d = np.asarray(VIEW_DIRECTION[plane])
    up = np.asarray(VIEW_UP[plane])
    return np.cross(d, up), up


def letter(direction: np.ndarray) -> str:
    """The patient direction letter (L, R, P, A, S, I) of an axis-aligned world vector."""
    axis = int(np.argmax(np.abs(direction)))
    return _LETTER[(axis, 1 if direction[axis] > 0 else -1)]


def edge_letters(plane: str) -> dict[str, str]:
    """Letters for the left, right, top and bottom edges of a plane's view."""
    right, up = screen_axes(plane)
    return {
        "left": letter(-right),
        "right": letter(right),
        "top": letter(up),
        "bottom": letter(-up),
    }


def screen_display_axes(plane: str) -> tuple[int, int]:
    """Display axes (0 = x, 1 = y, 2 = z) running along the screen's horizontal and vertical."""
    right, up = screen_axes(plane)
    return int(np.argmax(np.abs(right))), int(np.argmax(np.abs(up)))
