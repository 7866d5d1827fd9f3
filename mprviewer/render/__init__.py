"""Scenes built on a pyvista Plotter: 2D slice views, the 3D view and off-screen screenshots.

No Qt here: the GUI embeds these scenes in pyvistaqt widgets, scripts render them off screen.
VTK and pyvista are imported only when a name below is first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["save_screenshot", "screenshot"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import importlib

        module = importlib.import_module("mprviewer.render.screenshot")
        return getattr(module, name)
    raise AttributeError(f"module 'mprviewer.render' has no attribute {name!r}")
