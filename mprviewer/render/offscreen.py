"""Off-screen plotters that work with no X server, no GPU and no Qt.

VTK's render window factory tries X11 first and logs "bad X server connection" to stderr
before falling back to EGL. When there is no display we ask for EGL directly, which keeps
stderr clean for scripts and batch jobs.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def prepare_offscreen() -> None:
    """Choose the EGL render window when no display is available (call before any window)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def offscreen_plotter(size: tuple[int, int], shape: tuple[int, int] = (1, 1)) -> Any:
    """A pyvista Plotter rendering off screen, without multisampling, black background."""
    prepare_offscreen()
    import pyvista as pv

    theme = pv.themes.Theme()
    theme.multi_samples = 0
    theme.background = "black"
    theme.font.color = "white"
    plotter = pv.Plotter(
        off_screen=True,
        window_size=[int(size[0]), int(size[1])],
        shape=shape,
        border=False,
        theme=theme,
        lighting="light kit",
    )
    plotter.render_window.SetMultiSamples(0)
    return plotter


def render_image(plotter: Any) -> Any:
    """Render now and return the window as an (h, w, 3) uint8 array."""
    if getattr(plotter, "_first_time", False):
        return plotter.screenshot(return_img=True)
    plotter.render()
    return plotter.screenshot(return_img=True)
