"""mprviewer: a DICOM viewer with axial, coronal, sagittal and 3D views and slice annotations.

The top level stays cheap to import: numpy, pydicom, VTK and Qt are loaded only when the
function that needs them is called.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from mprviewer.errors import (
    AnnotationError,
    DicomError,
    GeometryError,
    LoadCancelled,
    MissingCodecError,
    MprviewerError,
    NoImagesError,
    NotDicomError,
    ProjectError,
    SourceError,
)

__version__ = "0.1.0"

__all__ = [
    "AnnotationError",
    "DicomError",
    "GeometryError",
    "LoadCancelled",
    "MissingCodecError",
    "MprviewerError",
    "NoImagesError",
    "NotDicomError",
    "Project",
    "ProjectError",
    "SourceError",
    "__version__",
    "demo_path",
    "open_study",
]

if TYPE_CHECKING:
    from mprviewer.io.study import Study
    from mprviewer.project import Project


def __getattr__(name: str) -> Any:
    """``mprviewer.Project`` is imported on first use (SQLAlchemy is not light)."""
    if name == "Project":
        from mprviewer.project import Project

        return Project
    raise AttributeError(f"module 'mprviewer' has no attribute {name!r}")


def open_study(source: Any, progress: Any = None, cancel: Any = None) -> Study:
    """Scan SOURCE (folder, zip, file, list of files, URL or "demo") into a Study.

    ``progress(done, total)`` is called while scanning; ``cancel`` is a threading.Event.
    """
    from mprviewer.io.remote import is_url
    from mprviewer.io.study import open_study as _open_study

    if is_url(source) and importlib.util.find_spec("mprviewer.pacs") is not None:
        import mprviewer.pacs  # noqa: F401  (registers DICOMweb study URLs with io.remote)

    return _open_study(source, progress=progress, cancel=cancel)


def demo_path() -> str:
    """Path of the built-in demo study zip, generated and cached on first use."""
    from mprviewer.synthetic.demo import demo_path as _demo_path

    return str(_demo_path())
