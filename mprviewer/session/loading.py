"""Opening a study for a session: scan the source, choose the series, read its pixels.

Runs on any thread and changes nothing: a front end calls :func:`load_source` (or
:func:`load_series`) in a worker and hands the :class:`LoadResult` to ``Session.show`` on its
own thread, so a failed or cancelled load leaves the study on screen as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mprviewer.errors import MprviewerError

# What can be opened: a path, a list of paths, a URL, or "demo".
Source = Any


@dataclass
class LoadResult:
    """What a load hands back: a new study (or None for another series of the same one)."""

    study: Any
    series_index: int
    volume: Any
    source: Source | None = None
    of_study: Any = None  # for another series: the study it belongs to


def series_by_size(study: Any) -> list[int]:
    """Series rows, the one with the most voxels first: the sensible one to show."""
    sizes = [s.shape[0] * s.shape[1] * s.shape[2] for s in study.series]
    return sorted(range(len(sizes)), key=lambda n: -sizes[n])


def default_series_index(study: Any) -> int:
    order = series_by_size(study)
    return order[0] if order else 0


def load_source(
    source: Source, progress: Any, cancel: Any, series: int | None = None
) -> LoadResult:
    """Scan ``source`` and read the chosen series' pixels (see :func:`load_study`)."""
    from mprviewer import open_study

    study = open_study(source, progress=progress, cancel=cancel)
    return load_study(study, progress, cancel, series, source)


def load_study(
    study: Any, progress: Any, cancel: Any, series: int | None = None,
    source: Source | None = None,
) -> LoadResult:
    """Read the pixels of the series to show of a study just opened; the study is closed
    when that fails.

    Without a choice, the largest series is shown; if its pixels cannot be read, the next
    one is tried, and the volume's warnings say which series failed and why.
    """
    from mprviewer.errors import DicomError, LoadCancelled

    try:
        if series is not None and not 0 <= series < len(study.series):
            raise MprviewerError(
                f"{study.source_label}: no series {series}; the study has "
                f"{len(study.series)} (0-{len(study.series) - 1})"
            )
        order = [series] if series is not None else series_by_size(study)
        failures: list[str] = []
        first_error: DicomError | None = None
        for index in order:
            try:
                volume = study.series[index].load(progress=progress, cancel=cancel)
            except LoadCancelled:
                raise
            except DicomError as exc:
                first_error = first_error or exc
                failures.append(f"series {study.series[index].name!r} not shown: {exc}")
                continue
            volume.warnings = [*failures, *volume.warnings]
            return LoadResult(study, index, volume, source)
        if first_error is None:
            raise MprviewerError(f"{study.source_label}: no image series to show")
        raise first_error
    except BaseException:
        study.close()
        raise


def load_series(study: Any, index: int, progress: Any, cancel: Any) -> LoadResult:
    """Read the pixels of another series of an open study."""
    volume = study.series[index].load(progress=progress, cancel=cancel)
    return LoadResult(None, index, volume, of_study=study)


def default_threshold(volume: Any) -> float:
    """A useful first threshold: bone and contrast for CT, the bright tail otherwise."""
    import numpy as np

    lo, hi = volume.value_range()
    if getattr(volume, "units", "") == "HU" and lo < 300 < hi:
        return 300.0
    flat = np.asarray(volume.array).reshape(-1)
    sample = flat[:: max(1, flat.size // 1_000_000)]
    value = float(np.percentile(sample, 95))
    return round(value) if np.issubdtype(volume.array.dtype, np.integer) else value
