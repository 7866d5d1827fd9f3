"""Reading DICOM sources into series and volumes (no Qt, no VTK).

pydicom imports ``requests`` when it is installed, only to download its own test files,
which mprviewer never asks for; that costs about 0.1 s of every process that reads a
header. pydicom is therefore imported here with ``requests`` hidden (it then downloads
with urllib if anyone asks); modules that need requests import it themselves.
"""

from __future__ import annotations

import sys


def _import_pydicom_without_requests() -> None:
    if "pydicom" in sys.modules or "requests" in sys.modules:
        return
    sys.modules["requests"] = None  # type: ignore[assignment]  (import requests fails)
    try:
        import pydicom  # noqa: F401
    except ImportError:
        pass  # the module that needs pydicom says so
    finally:
        if "requests" in sys.modules and sys.modules["requests"] is None:
            del sys.modules["requests"]


_import_pydicom_without_requests()
