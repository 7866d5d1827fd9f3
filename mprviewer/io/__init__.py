"""Reading DICOM sources into series and volumes (no Qt, no VTK).

pydicom is imported only when something needs it: the common file layout is scanned and
loaded without it (``lite_header``). pydicom imports ``requests`` when it is installed, only
to download its own test files, which mprviewer never asks for; that costs about 0.1 s of
every process that reads a header through pydicom. Once this package is imported, the first
``import pydicom`` (by any module) therefore runs with ``requests`` hidden (pydicom then
downloads with urllib if anyone asks); modules that need requests import it themselves.
A process that only uses the light modules here (temporary files, URLs) never pays for
pydicom, and ``mprviewer view`` imports it in its loading thread, not before the window.
"""

from __future__ import annotations

import importlib.machinery
import sys
from typing import Any


class _LoaderWithoutRequests:
    """pydicom's own loader, run while ``import requests`` fails (importlib.abc, which
    would only add base classes, costs 10 ms to import)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # is_package, get_resource_reader, ...
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        hide = "requests" not in sys.modules
        if hide:
            sys.modules["requests"] = None  # type: ignore[assignment]  (import requests fails)
        try:
            self._loader.exec_module(module)
        finally:
            if hide and "requests" in sys.modules and sys.modules["requests"] is None:
                del sys.modules["requests"]


class _PydicomWithoutRequests:
    """Finds pydicom once, the usual way, and wraps its loader."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "pydicom":
            return None
        _remove_finder()
        if "requests" in sys.modules:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _LoaderWithoutRequests(spec.loader)
        return spec


def _remove_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PydicomWithoutRequests)]


if "pydicom" not in sys.modules and "requests" not in sys.modules:
    sys.meta_path.insert(0, _PydicomWithoutRequests())
