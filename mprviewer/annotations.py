"""Anomaly annotations: the public entry points in one place.

>>> from mprviewer.annotations import parse_slices, format_slices
>>> parse_slices("0-3; 7; 5-4")
[0, 1, 2, 3, 4, 5, 7]
>>> format_slices([0, 1, 2, 57])
'0-2; 57'

The model (``AnnotationSet``, ``SeriesRef``), the JSON formats, the autosave sidecar and the
DICOM Key Object Selection export live in ``mprviewer.model`` and ``mprviewer.io``; this module
re-exports them. ``write_kos`` is imported on first use (it needs highdicom).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mprviewer.errors import AnnotationError
from mprviewer.model.annotation_files import (
    ExportReport,
    build_document,
    detect_format,
    export_report,
    import_into,
    read_annotation_file,
    to_json_text,
    write_annotation_file,
)
from mprviewer.model.annotations import (
    DEFAULT_LABEL,
    AnnotationSet,
    Entry,
    Point,
    SeriesAnnotations,
    SeriesRef,
)
from mprviewer.model.sidecar import (
    Autosaver,
    SidecarLoad,
    folder_is_writable,
    load_sidecar,
    restore_or_create,
    sidecar_path,
)
from mprviewer.model.slice_ranges import format_slices, parse_slices

if TYPE_CHECKING:
    from mprviewer.io.kos import write_kos

__all__ = [
    "DEFAULT_LABEL",
    "AnnotationError",
    "AnnotationSet",
    "Autosaver",
    "Entry",
    "ExportReport",
    "Point",
    "SeriesAnnotations",
    "SeriesRef",
    "SidecarLoad",
    "build_document",
    "detect_format",
    "export_report",
    "folder_is_writable",
    "format_slices",
    "import_into",
    "load_sidecar",
    "parse_slices",
    "read_annotation_file",
    "restore_or_create",
    "sidecar_path",
    "to_json_text",
    "write_annotation_file",
    "write_kos",
]


def __getattr__(name: str) -> Any:
    if name == "write_kos":
        from mprviewer.io.kos import write_kos

        return write_kos
    raise AttributeError(f"module 'mprviewer.annotations' has no attribute {name!r}")
