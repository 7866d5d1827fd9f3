"""Studies on a PACS: search, retrieve into the per-user cache, and send instances back.

One interface over two protocols: DICOMweb (``http(s)://host:port/dicom-web``; QIDO-RS, WADO-RS,
STOW-RS via dicomweb-client) and DIMSE (``dimse://AET@host:port``; C-FIND, C-GET, C-STORE via
pynetdicom). Every failure is a :class:`PacsError` (a ``DicomError``) that names the server,
never its credentials. The protocol libraries are imported only when a server is contacted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mprviewer.io.remote import register_opener, url_label
from mprviewer.io.safe_paths import is_dicom_uid
from mprviewer.pacs.errors import (
    PacsAuthError,
    PacsCancelled,
    PacsConnectionError,
    PacsError,
    PacsNoImagesError,
    PacsNotFoundError,
    PacsProtocolError,
)
from mprviewer.pacs.results import SeriesResult, StudyQuery, StudyResult
from mprviewer.pacs.servers import Server, parse_server, saved_servers
from mprviewer.pacs.urls import is_dicomweb_study_url, parse_study_url, study_url

__all__ = [
    "PacsAuthError",
    "PacsCancelled",
    "PacsConnectionError",
    "PacsError",
    "PacsNoImagesError",
    "PacsNotFoundError",
    "PacsProtocolError",
    "SeriesResult",
    "Server",
    "StudyQuery",
    "StudyResult",
    "cached_retrieval",
    "is_dicomweb_study_url",
    "list_retrieval",
    "parse_server",
    "parse_study_url",
    "retrieve_to_cache",
    "saved_servers",
    "search_series",
    "search_studies",
    "send_datasets",
    "study_url",
]

Progress = Callable[[int, int], Any]


def _backend(server: Server) -> Any:
    if server.kind == "dimse":
        from mprviewer.pacs import dimse

        return dimse
    from mprviewer.pacs import dicomweb

    return dicomweb


def search_studies(server: str | Server, query: StudyQuery | None = None) -> list[StudyResult]:
    """Studies on the server matching ``query`` (QIDO-RS or C-FIND), newest first."""
    server = parse_server(server)
    return _backend(server).search_studies(server, query or StudyQuery())


def search_series(server: str | Server, study_uid: str) -> list[SeriesResult]:
    """The series of one study on the server, by series number."""
    server = parse_server(server)
    return _backend(server).search_series(server, study_uid)


def _resolve(
    url_or_spec: str | Server, study_uid: str | None, series_uid: str | None
) -> tuple[Server, str, str | None]:
    if isinstance(url_or_spec, str) and study_uid is None:
        ref = parse_study_url(url_or_spec)
        if ref is None:
            raise PacsError(
                f"'{url_label(url_or_spec)}' names no study: use a DICOMweb URL "
                "ending in /studies/<StudyInstanceUID> (optionally /series/<SeriesInstanceUID>), "
                "or give the study UID"
            )
        server, study_uid, series_uid = (
            parse_server(ref.root), ref.study_uid, series_uid or ref.series_uid)
    elif not study_uid:
        raise PacsError("no study given: pass the StudyInstanceUID to retrieve")
    else:
        server = parse_server(url_or_spec)
    for what, uid in (("StudyInstanceUID", study_uid), ("SeriesInstanceUID", series_uid)):
        if uid is not None and not is_dicom_uid(uid):  # it goes into request paths
            raise PacsError(f"{what} {uid[:80]!r} is not a valid DICOM UID (digits and dots, "
                            "at most 64 characters)")
    return server, study_uid, series_uid


def cached_retrieval(
    url_or_spec: str | Server,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Path | None:
    """The cache folder of an earlier complete retrieval of the same study (or series), if any.

    Asks nothing of the server, so a cached study opens offline.
    """
    from mprviewer.pacs import cache

    server, study, series = _resolve(url_or_spec, study_uid, series_uid)
    return cache.lookup(server.cache_key, study, series)


def list_retrieval(
    url_or_spec: str | Server,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[SeriesResult]:
    """The series a retrieval of the same arguments would bring, from the server's metadata.

    A quick query (QIDO-RS or C-FIND) that lets a viewer show what is coming before the
    instances arrive; a series URL lists that series only.
    """
    server, study, series = _resolve(url_or_spec, study_uid, series_uid)
    found = _backend(server).search_series(server, study)
    return [s for s in found if series is None or s.series_uid == series]


def retrieve_to_cache(
    url_or_spec: str | Server,
    progress: Progress | None = None,
    cancel: Any = None,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    refresh: bool = False,
) -> Path:
    """A local folder holding the study (or series), one subfolder per series; cached or retrieved.

    ``url_or_spec`` is a DICOMweb study/series URL, or a server spec with ``study_uid`` (and
    optionally ``series_uid``). ``progress(done, total)`` counts instances; ``cancel`` is a
    threading.Event. The cache only ever holds complete retrievals: on any error or cancel
    nothing is left behind. ``refresh`` fetches again even when cached.
    """
    from mprviewer.pacs import cache

    server, study, series = _resolve(url_or_spec, study_uid, series_uid)
    if cancel is not None and cancel.is_set():
        raise PacsCancelled(f"retrieval of study {study} from {server.label} was cancelled")
    cached = cache.lookup(server.cache_key, study, series)
    if cached is not None:
        if not refresh:
            return cached
        cache.remove(cached)
    info = {"label": server.address}
    from mprviewer.pacs.layout import file_by_series

    with cache.writing(server.cache_key, study, series, info) as pending:
        _backend(server).retrieve(server, study, series, pending.folder, progress, cancel)
        file_by_series(pending.folder)  # series then take the names the server lists
    assert pending.path is not None
    return pending.path


def _ready_to_send(ds: Any) -> Any:
    """A dataset with file meta information, as both STOW-RS and C-STORE need it."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    if not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
        raise PacsError("cannot send a dataset without SOPClassUID and SOPInstanceUID")
    meta = getattr(ds, "file_meta", None)
    if meta is None or not meta.get("TransferSyntaxUID"):
        ds = ds.copy()
        ds.file_meta = FileMetaDataset(meta) if meta is not None else FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def send_datasets(server_spec: str | Server, datasets: Iterable[Any]) -> int:
    """Store datasets (e.g. the annotations' KOS) on the server: STOW-RS or C-STORE.

    Returns how many were stored; raises a PacsError naming the server if any was refused.
    """
    server = parse_server(server_spec)
    prepared = [_ready_to_send(ds) for ds in datasets]
    return _backend(server).store(server, prepared)


def _open_study_url(url: str, progress: Any, cancel: Any) -> Path | None:
    """io's hook for URLs: a DICOMweb study URL is retrieved into the cache, others are not ours."""
    if not is_dicomweb_study_url(url):
        return None
    return retrieve_to_cache(url, progress=progress, cancel=cancel)


register_opener(_open_study_url)
