"""Reading DICOM sources into series and volumes (no Qt, no VTK).

pydicom imports ``requests`` when it is installed, only to download its own test files,
which mprviewer never asks for; that costs about 0.1 s of every process that reads a
header. pydicom is therefore imported with ``requests`` hidden (it then downloads with
urllib if anyone asks); modules that need requests import it themselves.

Importing this package does not import pydicom: modules that need it import it, and the
finder below hides ``requests`` while pydicom's package runs. So a process that only uses
the light modules here (temporary files, URLs) does not pay the 0.1-0.3 s pydicom costs,
and ``mprviewer view`` reads pydicom in its loading thread, not before the window.
"""

from __future__ import annotations

import importlib.machinery
import sys
from typing import Any


class _PydicomWithoutRequests:
    """A meta path finder for ``pydicom`` alone: its module runs with ``requests`` hidden."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "pydicom":
            return None
        _uninstall()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module: Any) -> None:
            hide = "requests" not in sys.modules
            if hide:
                sys.modules["requests"] = None  # type: ignore[assignment]  (import fails)
            try:
                run_module(module)
            finally:
                if hide and "requests" in sys.modules and sys.modules["requests"] is None:
                    del sys.modules["requests"]

        loader.exec_module = exec_module
        return spec


def _uninstall() -> None:
    if _PydicomWithoutRequests in sys.meta_path:
        sys.meta_path.remove(_PydicomWithoutRequests)


if "pydicom" not in sys.modules and "requests" not in sys.modules:
    sys.meta_path.insert(0, _PydicomWithoutRequests)  # type: ignore[arg-type]
