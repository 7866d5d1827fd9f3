"""Server-side render windows for the page: one per view, streamed as images by trame-rca.

A ``WebView`` is the small part of a plotter the scenes use (``renderer``, ``render_window``,
``render``), like ``mprviewer.render.offscreen.BarePlotter``, but ``render()`` only asks the
trame-rca scheduler for a frame: the scheduler renders, reads back and encodes once per
burst of changes, so a held key never queues stale frames. Multisampling is off (it costs
about 4x on Mesa and slice images do not need it).
"""

from __future__ import annotations

from typing import Any

from mprviewer.render.offscreen import prepare_offscreen

VIEW_NAMES: tuple[str, ...] = ("axial", "coronal", "sagittal", "3d")


class WebView:
    """One off-screen render window with one renderer, driven by a trame-rca handler."""

    def __init__(self, name: str, interactive_camera: bool) -> None:
        prepare_offscreen()
        import vtkmodules.vtkInteractionStyle
        import vtkmodules.vtkRenderingFreeType
        import vtkmodules.vtkRenderingOpenGL2
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow
        from vtkmodules.vtkRenderingUI import vtkGenericRenderWindowInteractor

        self.name = name
        self.render_window = vtkRenderWindow()
        self.render_window.SetOffScreenRendering(True)
        self.render_window.SetMultiSamples(0)
        self.render_window.SetSize(400, 400)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.render_window.AddRenderer(self.renderer)
        self.interactor = vtkGenericRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.render_window)
        if interactive_camera:
            from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera

            self.interactor.SetInteractorStyle(vtkInteractorStyleTrackballCamera())
        else:
            # The 2D views' mouse and keys are the page's (slices, focus), not VTK's camera.
            self.interactor.SetInteractorStyle(None)
        self.iren = self.interactor
        self.handler: Any = None

    @property
    def ren_win(self) -> Any:
        return self.render_window

    def render(self) -> None:
        """Ask for a new frame (rendered and pushed by the scheduler, coalesced)."""
        if self.handler is not None:
            self.handler.schedule_render()

    def close(self) -> None:
        self.handler = None
        self.render_window.Finalize()


def camera_events_only(handler: Any) -> None:
    """Let a view's handler pass mouse events to VTK but never keys (VTK's own key bindings
    would switch to wireframe or stereo); the page's keys go to the session instead."""
    forward = handler.on_interaction

    def on_interaction(origin: Any, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if "Key" in kind or "Char" in kind:
            return
        forward(origin, event)

    handler.on_interaction = on_interaction
