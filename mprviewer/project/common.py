"""Names and small helpers the project modules share (statuses, time stamps, safe writes)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mprviewer.model.slice_ranges import format_slices

STATUSES: tuple[str, ...] = ("unread", "in progress", "done", "no finding", "unreadable")
FINISHED: tuple[str, ...] = ("done", "no finding")
PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class Mark:
    """The slices one reader has marked with one label in one plane of one series."""

    reader: str
    study_id: int
    series_id: int
    label: str
    plane: str
    slices: tuple[int, ...]

    @property
    def ranges(self) -> str:
        return format_slices(self.slices)


def now() -> str:
    """UTC time with milliseconds, ISO 8601 (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def application() -> str:
    """``mprviewer <version>`` for the files the project writes."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mprviewer {version('mprviewer')}"
    except PackageNotFoundError:
        return "mprviewer"


def atomic_write_text(path: Path, text: str) -> None:
    """Write so that ``path`` holds the old or the new content, never a mix: a temporary
    file in the same folder, fsync, rename over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file (mkstemp makes it 0600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
