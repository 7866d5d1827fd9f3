"""``open_study``: from a source to a Study whose series are ready to load."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from mprviewer.errors import DicomError, NoImagesError, SourceError
from mprviewer.io.scan import scan_members
from mprviewer.io.series import Series, group_series
from mprviewer.io.sources import ExpandedSource, expand_source


class Study:
    """What was found in a source: series (one 3D stack each) and the files skipped."""

    def __init__(self, expanded: ExpandedSource, series: list[Series],
                 skipped: list[tuple[str, str]]) -> None:
        self._expanded = expanded
        self.series = series
        self.skipped = skipped
        self.source_label = expanded.label
        self.root_folder = expanded.root_folder
        uids = {s.study_uid for s in series}
        self.uid: str = next(iter(uids)) if len(uids) == 1 else (series[0].study_uid if series
                                                                 else "")

    @property
    def study_uids(self) -> list[str]:
        """Every StudyInstanceUID in the source, in the order of the series table (a zip or
        folder of several cases holds several studies)."""
        return list(dict.fromkeys(s.study_uid for s in self.series))

    def series_of_study(self, study_uid: str) -> list[Series]:
        """The series of one study of the source."""
        return [s for s in self.series if s.study_uid == study_uid]

    def find_series(self, key: str | int) -> Series:
        """A series by table index (0-based), SeriesInstanceUID or name."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
            if 0 <= index < len(self.series):
                return self.series[index]
            raise DicomError(f"{self.source_label}: no series number {index}; "
                             f"the study has {len(self.series)} (0-{len(self.series) - 1})")
        for s in self.series:
            if key in (s.uid, s.name):
                return s
        raise DicomError(f"{self.source_label}: no series with UID or name {key!r}")

    def largest_series(self) -> Series:
        """The series with the most voxels: the sensible default to show."""
        return max(self.series, key=lambda s: (s.shape[0] * s.shape[1] * s.shape[2]))

    def close(self) -> None:
        """Release archives and temporary files."""
        self._expanded.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Study({self.source_label!r}, {len(self.series)} series)"


def open_study(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Study:
    """Scan a source's headers (no pixel data) and group them into series."""
    try:
        expanded = _expand(source, progress, cancel)
    except DicomError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        from mprviewer.io.remote import url_label

        shown = url_label(source) if isinstance(source, str) else source
        raise SourceError(f"{shown}: cannot be read ({exc})") from exc
    try:
        instances, skipped = scan_members(expanded.members, progress=progress, cancel=cancel)
        series, more_skipped = group_series(instances)
    except BaseException:
        expanded.close()
        raise
    skipped = [*expanded.skipped, *skipped, *more_skipped]
    if not series:
        expanded.close()
        if not expanded.members and not skipped:
            raise NoImagesError(f"{expanded.label}: no files found")
        reasons = _summarise_reasons(skipped)
        raise NoImagesError(f"{expanded.label}: no DICOM images found ({reasons})")
    return Study(expanded, series, skipped)


def _expand(source: Any, progress: Any, cancel: threading.Event | None) -> ExpandedSource:
    from mprviewer.io.remote import expand_remote

    remote = expand_remote(source, progress=progress, cancel=cancel)
    if remote is not None:
        return remote
    return expand_source(source, cancel=cancel)


def _summarise_reasons(skipped: list[tuple[str, str]]) -> str:
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    parts = [f"{n} {'file' if n == 1 else 'files'}: {reason}"
             for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])[:3]]
    return "; ".join(parts) if parts else "nothing readable"
