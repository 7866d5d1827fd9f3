"""Off-screen rendering that works with no X server, no GPU and no Qt.

VTK's render window factory tries X11 first and logs "bad X server connection" to stderr
before falling back to EGL. When there is no display we ask for EGL directly, which keeps
stderr clean for scripts and batch jobs.

``BarePlotter`` is the small part of ``pyvista.Plotter`` the scenes use (``renderer``,
``render_window``, ``subplot``, ``render``), built from vtkmodules alone: importing
pyvista's plotting layer pulls in matplotlib and costs seconds, which a one-shot
``mprviewer screenshot`` should not pay. The scenes work the same on a pyvista Plotter or a
pyvistaqt QtInteractor.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


def prepare_offscreen() -> None:
    """Choose the EGL render window when no display is available (call before any window)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


class BarePlotter:
    """Renderers in a grid of viewports of one off-screen render window, no multisampling."""

    def __init__(self, size: tuple[int, int], shape: tuple[int, int] = (1, 1)) -> None:
        prepare_offscreen()
        # Importing these registers the OpenGL implementations of the rendering classes.
        import vtkmodules.vtkRenderingFreeType
        import vtkmodules.vtkRenderingOpenGL2
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (ray cast image display)
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

        self.shape = (int(shape[0]), int(shape[1]))
        self.render_window = vtkRenderWindow()
        self.render_window.SetOffScreenRendering(True)
        self.render_window.SetMultiSamples(0)
        self.render_window.SetSize(int(size[0]), int(size[1]))
        self.render_window.SetNumberOfLayers(2)
        self.renderers: list[Any] = []
        rows, cols = self.shape
        for r in range(rows):
            for c in range(cols):
                renderer = vtkRenderer()
                renderer.SetViewport(c / cols, 1 - (r + 1) / rows, (c + 1) / cols, 1 - r / rows)
                renderer.SetBackground(0.0, 0.0, 0.0)
                self.render_window.AddRenderer(renderer)
                self.renderers.append(renderer)
        self.renderer = self.renderers[0]
        self.iren = None
        self._closed = False
        self._held = False

    @property
    def ren_win(self) -> Any:
        return self.render_window

    def subplot(self, row: int, col: int) -> None:
        """Make the renderer at (row, col) the one new scenes attach to."""
        self.renderer = self.renderers[row * self.shape[1] + col]

    def render(self) -> None:
        if not self._closed and not self._held:
            self.render_window.Render()

    @contextlib.contextmanager
    def renders_held(self) -> Iterator[None]:
        """Scenes' render requests inside the block are dropped: the caller renders once
        afterwards (a batch of screenshots changes a slice, then grabs the image)."""
        self._held = True
        try:
            yield
        finally:
            self._held = False

    def image(self) -> np.ndarray:
        """Render and read the window back as an (height, width, 3) uint8 array, top row first."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        self.render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(self.render_window)
        grab.SetInputBufferTypeToRGB()
        grab.ReadFrontBufferOff()
        grab.ShouldRerenderOff()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        pixels = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)
        return np.ascontiguousarray(pixels[::-1, :, :3])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.render_window.Finalize()


def offscreen_plotter(size: tuple[int, int], shape: tuple[int, int] = (1, 1)) -> BarePlotter:
    """An off-screen plotter for scenes (see ``BarePlotter``)."""
    return BarePlotter(size, shape)


def pyvista_plotter(size: tuple[int, int], shape: tuple[int, int] = (1, 1)) -> Any:
    """An off-screen pyvista Plotter (with an interactor, as the viewer has), no MSAA."""
    prepare_offscreen()
    import pyvista as pv

    theme = pv.themes.Theme()
    theme.multi_samples = 0
    plotter = pv.Plotter(
        off_screen=True,
        window_size=[int(size[0]), int(size[1])],
        shape=shape,
        border=False,
        theme=theme,
    )
    plotter.render_window.SetMultiSamples(0)
    return plotter


def render_image(plotter: Any) -> np.ndarray:
    """Render now and return the window as an (h, w, 3) uint8 array (BarePlotter or pyvista)."""
    if isinstance(plotter, BarePlotter):
        return plotter.image()
    plotter.render()
    return np.asarray(plotter.screenshot(return_img=True))[..., :3]
