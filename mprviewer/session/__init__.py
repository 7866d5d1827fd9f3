"""One reader's viewing session, shared by every front end (desktop now, browser next).

:class:`Session` holds what is open and shown and exposes the reader's actions as methods with
events; the desktop window (``mprviewer.gui``) and the web page bind to it. No Qt, no VTK.
See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Any

from mprviewer.session.loading import LoadResult, default_threshold, load_series, load_source
from mprviewer.session.session import Session, Worklist

__all__ = ["LoadResult", "Marks", "Session", "Worklist", "default_threshold", "load_series",
           "load_source"]


def __getattr__(name: str) -> Any:
    if name == "Marks":  # the annotation model is imported only when marks are used
        from mprviewer.session.marks import Marks

        return Marks
    raise AttributeError(f"module 'mprviewer.session' has no attribute {name!r}")
