"""Labeling projects: a worklist of studies, a fixed label set, statuses per reader, exports.

``Project`` is the whole API; the command line (``mprviewer project``) and the viewer's
worklist call it. The store is SQLAlchemy (an embedded SQLite file by default), migrated
with Alembic. No Qt, no VTK.
"""

from __future__ import annotations

from mprviewer.errors import ProjectError
from mprviewer.project.project import (
    FINISHED,
    STATUSES,
    AddReport,
    Mark,
    Project,
    SeriesInfo,
    StudyInfo,
    default_reader,
)

__all__ = [
    "FINISHED",
    "STATUSES",
    "AddReport",
    "Mark",
    "Project",
    "ProjectError",
    "SeriesInfo",
    "StudyInfo",
    "default_reader",
]
