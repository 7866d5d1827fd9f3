"""DICOMweb: QIDO-RS search, WADO-RS retrieval (parallel, with progress and cancel), STOW-RS.

The protocol work is dicomweb-client's; this module adds the session (credentials, TLS, timeouts,
no silent retries), turns every failure into a :class:`PacsError` naming the server, and writes
retrieved instances into a folder.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from mprviewer.pacs.errors import (
    PacsAuthError,
    PacsCancelled,
    PacsConnectionError,
    PacsError,
    PacsNoImagesError,
    PacsNotFoundError,
    PacsProtocolError,
)
from mprviewer.pacs.results import (
    SERIES_FIELDS,
    STUDY_FIELDS,
    SeriesResult,
    StudyQuery,
    StudyResult,
    is_image_sop_class,
    series_from_dataset,
    sort_series,
    sort_studies,
    study_from_dataset,
)
from mprviewer.pacs.servers import ENV_PASSWORD, ENV_TOKEN, ENV_USER, Server

Progress = Callable[[int, int], Any]
DEFAULT_WORKERS = 4
AS_STORED = (("application/dicom", "*"),)  # instances in the transfer syntax they were stored in


class _HtmlAnswer(Exception):
    """Raised from the response hook: the server sent a web page where DICOM was expected."""

    def __init__(self, status: int, content_type: str) -> None:
        super().__init__(f"HTTP {status} {content_type}")
        self.status = status
        self.content_type = content_type


def _reject_html(response: Any, *args: Any, **kwargs: Any) -> Any:
    content_type = response.headers.get("Content-Type", "")
    if response.ok and content_type.split(";")[0].strip().lower() in ("text/html", "text/xml"):
        response.close()
        raise _HtmlAnswer(response.status_code, content_type)
    return response


def _literal_wildcards(url: str) -> str:
    """Send QIDO wildcards ``*``/``?`` and value lists ``,`` unescaped in the query string.

    Both forms are valid URLs, but some servers (Orthanc 1.10 with its DICOMweb plugin 1.7)
    match ``%2A`` literally, so ``PatientName=doe%2A`` finds nothing.
    """
    if "?" not in url:
        return url
    base, query = url.split("?", 1)
    for escaped, char in (("%2A", "*"), ("%2a", "*"), ("%3F", "?"), ("%3f", "?"), ("%2C", ",")):
        query = query.replace(escaped, char)
    return f"{base}?{query}"


def _portable_filters(filters: dict[str, str]) -> dict[str, str]:
    """Match ``^`` and spaces with the one-character wildcard ``?``.

    They must be percent-encoded in a URL, and some servers (Orthanc 1.10) do not decode
    query values, so ``DOE^JANE`` would never match. ``DOE?JANE`` matches the same names on
    every server, plus the rare name that differs only in that one character.
    """
    out = {}
    for key, value in filters.items():
        if key in ("PatientName", "PatientID", "AccessionNumber"):
            value = value.replace("^", "?").replace(" ", "?")
        out[key] = value
    return out


def _session(server: Server) -> Any:
    """A requests session with the server's credentials and TLS settings."""
    import requests
    from requests.auth import AuthBase, HTTPBasicAuth

    class _Bearer(AuthBase):
        def __init__(self, token: str) -> None:
            self._token = token

        def __call__(self, request: Any) -> Any:
            request.headers["Authorization"] = f"Bearer {self._token}"
            return request

    class _Session(requests.Session):
        def prepare_request(self, request: Any) -> Any:
            prepared = super().prepare_request(request)
            prepared.url = _literal_wildcards(prepared.url)
            return prepared

    session = _Session()
    if server.token:
        session.auth = _Bearer(server.token)
    elif server.username:
        session.auth = HTTPBasicAuth(server.username, server.password or "")
    session.verify = server.verify
    session.trust_env = False  # no proxies or netrc credentials picked up behind the user's back
    session.hooks["response"].append(_reject_html)
    session.headers["User-Agent"] = "mprviewer"
    return session


def make_client(server: Server) -> Any:
    """A dicomweb-client for the server: one attempt per request, connect and read timeouts."""
    from dicomweb_client.api import DICOMwebClient

    if server.kind != "dicomweb":
        raise PacsError(f"{server.label} is not a DICOMweb server")
    client = DICOMwebClient(
        url=server.url,
        session=_session(server),
        timeout=(min(10.0, server.timeout), server.timeout),
    )
    client.set_http_retry_params(retry=False)
    return client


def _credentials_hint(server: Server) -> str:
    if server.has_credentials:
        return "check the user name and password (or token)"
    return (
        f"give credentials: set {ENV_USER} and {ENV_PASSWORD} (or {ENV_TOKEN}), "
        "or save them with the server"
    )


@contextlib.contextmanager
def translate_errors(server: Server, what: str, missing: str | None = None) -> Iterator[None]:
    """Turn requests/dicomweb-client/pydicom failures into PacsError subclasses.

    ``what`` says what was being done ("searching studies"); ``missing`` what a 404 means.
    """
    import requests
    from pydicom.errors import InvalidDicomError

    label = server.label
    try:
        yield
    except PacsError:
        raise
    except _HtmlAnswer as exc:
        raise PacsProtocolError(
            f"{label} answered with a web page ({exc.content_type.split(';')[0]}) instead of "
            f"DICOM while {what}: is this the DICOMweb root (for Orthanc "
            "http://host:8042/dicom-web)?"
        ) from None
    except requests.exceptions.SSLError as exc:
        reason = _short(exc)
        raise PacsConnectionError(
            f"TLS error with {label} while {what}: {reason}; check the server's certificate "
            "(or its CA bundle in the saved server's 'verify' setting)"
        ) from None
    except requests.exceptions.Timeout:
        raise PacsConnectionError(
            f"{label} did not answer within {server.timeout:g} s while {what}; "
            "the server is down or overloaded"
        ) from None
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        if "Connection refused" in text or "Failed to establish" in text:
            reason = "connection refused: is the server running, and is the port right?"
        elif "Name or service not known" in text or "getaddrinfo" in text:
            reason = "unknown host name"
        else:
            reason = f"connection lost ({_short(exc)})"
        raise PacsConnectionError(f"cannot reach {label} while {what}: {reason}") from None
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 401:
            raise PacsAuthError(
                f"{label} refused access (HTTP 401 Unauthorized) while {what}: "
                f"{_credentials_hint(server)}"
            ) from None
        if status == 403:
            raise PacsAuthError(
                f"{label} forbids this (HTTP 403 Forbidden) while {what}: the account lacks "
                "the right to do it"
            ) from None
        if status == 404:
            raise PacsNotFoundError(
                f"{label} answered 404 Not Found while {what}: "
                + (missing or "is this the DICOMweb root (for Orthanc http://host:8042/dicom-web)?")
            ) from None
        reason = exc.response.reason if exc.response is not None else ""
        raise PacsError(f"{label} failed while {what}: HTTP {status} {reason}".strip()) from None
    except requests.exceptions.RequestException as exc:
        raise PacsConnectionError(
            f"connection to {label} failed while {what}: {_short(exc)}"
        ) from None
    except (ValueError, KeyError, InvalidDicomError) as exc:
        raise PacsProtocolError(
            f"{label} sent an answer that is not valid DICOMweb while {what} ({_short(exc)})"
        ) from None


def _short(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, one line, no URL noise."""
    text = str(exc.args[0] if exc.args else exc)
    for marker in ("Caused by ", "reason: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return " ".join(text.split())[:200]


def _datasets(items: list[dict]) -> list[Any]:
    from pydicom import Dataset

    if not isinstance(items, list):
        raise ValueError("expected a JSON array of DICOM data sets")
    return [Dataset.from_json(item) for item in items]


# --- QIDO-RS -----------------------------------------------------------------------------------


def search_studies(server: Server, query: StudyQuery | None = None) -> list[StudyResult]:
    """Studies matching the query, newest first."""
    query = query or StudyQuery()
    client = make_client(server)
    with translate_errors(server, "searching studies"):
        items = client.search_for_studies(
            fields=list(STUDY_FIELDS),
            search_filters=_portable_filters(query.filters()),
            limit=query.limit,
        )
        return sort_studies([study_from_dataset(ds) for ds in _datasets(items)])


def search_series(server: Server, study_uid: str) -> list[SeriesResult]:
    """The series of one study, by series number."""
    client = make_client(server)
    with translate_errors(server, f"listing the series of study {study_uid}"):
        items = client.search_for_series(
            study_instance_uid=study_uid, fields=list(SERIES_FIELDS)
        )
        return sort_series([series_from_dataset(ds) for ds in _datasets(items)])


def list_instances(
    server: Server, study_uid: str, series_uid: str | None = None
) -> list[tuple[str, str, str]]:
    """(series UID, SOP instance UID, SOP class UID) of every instance of a study or series."""
    client = make_client(server)
    what = f"series {series_uid}" if series_uid else f"study {study_uid}"
    with translate_errors(server, f"listing the instances of {what}", f"it has no {what}"):
        items = client.search_for_instances(
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            fields=["SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"],
        )
        found = []
        for ds in _datasets(items):
            sop = str(ds.get("SOPInstanceUID", "") or "")
            series = str(ds.get("SeriesInstanceUID", "") or series_uid or "")
            if sop and series:
                found.append((series, sop, str(ds.get("SOPClassUID", "") or "")))
    return found


# --- WADO-RS -----------------------------------------------------------------------------------


def retrieve(
    server: Server,
    study_uid: str,
    series_uid: str | None,
    dest: Path,
    progress: Progress | None = None,
    cancel: Any = None,
    workers: int = DEFAULT_WORKERS,
) -> int:
    """Fetch every instance of a study (or series) into ``dest`` as ``<SOPInstanceUID>.dcm``.

    Each series comes as one streamed multipart answer (far fewer round trips than one request
    per instance), up to ``workers`` series at a time, each instance written as it arrives.
    ``progress(done, total)`` is called from this thread; ``cancel`` (a threading.Event) stops
    the transfer with :class:`PacsCancelled`. Returns the number of files written. On error
    some files may be in ``dest``: callers write into a temporary folder (see ``cache``).
    """
    what = f"series {series_uid} of study {study_uid}" if series_uid else f"study {study_uid}"
    instances = list_instances(server, study_uid, series_uid)
    if not instances:
        _raise_missing(server, study_uid, series_uid, what)
    if not any(is_image_sop_class(sop_class) for _s, _i, sop_class in instances):
        raise PacsNoImagesError(
            f"{what} on {server.label} holds no images (only reports, key objects or similar)"
        )
    expected: dict[str, int] = {}
    for series, _sop, _cls in instances:
        expected[series] = expected.get(series, 0) + 1
    total = len(instances)
    if progress:
        progress(0, total)
    stop = threading.Event()
    lock = threading.Lock()
    counter = [0]

    def fetch(series: str) -> None:
        client = make_client(server)
        doing = f"retrieving series {series} of study {study_uid}"
        received = 0
        with translate_errors(server, doing, f"it has no series {series}"):
            stream = client.iter_series(study_uid, series, media_types=AS_STORED)
            try:
                for ds in stream:
                    if stop.is_set() or (cancel is not None and cancel.is_set()):
                        return
                    _write_instance(ds, dest, f"instance-{series}-{received}", server)
                    received += 1
                    with lock:
                        counter[0] += 1
            finally:
                stream.close()
        if received < expected[series]:
            raise PacsConnectionError(
                f"{server.label} sent {received} of {expected[series]} instances of series "
                f"{series}: the transfer was cut short"
            )

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(expected))),
                              thread_name_prefix="wado")
    try:
        pending: set[Future] = {pool.submit(fetch, series) for series in expected}
        reported = 0
        while pending:
            finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            if cancel is not None and cancel.is_set():
                raise PacsCancelled(f"retrieval of {what} from {server.label} was cancelled")
            for future in finished:
                future.result()  # re-raises the first failure
            with lock:
                done = counter[0]
            if progress and done != reported:
                reported = done
                progress(min(done, total), total)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
    with lock:
        done = counter[0]
    if progress and done != reported:
        progress(done, max(done, total))
    return done


def _truncated(ds: Any) -> bool:
    """True when uncompressed pixel data is shorter than the image attributes require."""
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if "PixelData" not in ds or syntax is None or syntax.is_compressed:
        return False
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        need = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                * int(ds.BitsAllocated) * frames + 7) // 8
        return len(ds.PixelData) < need
    except (AttributeError, TypeError, ValueError):
        return False


def _write_instance(ds: Any, dest: Path, fallback: str, server: Server) -> Path:
    """Save one retrieved instance as ``<SOPInstanceUID>.dcm``, as the server sent it."""
    if _truncated(ds):
        raise PacsConnectionError(
            f"instance {ds.get('SOPInstanceUID', '?')} from {server.label} arrived truncated: "
            "the transfer was cut short"
        )
    path = dest / f"{ds.get('SOPInstanceUID', '') or fallback}.dcm"
    ds.save_as(path, enforce_file_format=False)
    return path


def _raise_missing(server: Server, study_uid: str, series_uid: str | None, what: str) -> None:
    studies = search_studies(server, StudyQuery(study_uid=study_uid))
    if not studies:
        raise PacsNotFoundError(f"{server.label} has no study {study_uid}")
    if series_uid:
        known = {s.series_uid for s in search_series(server, study_uid)}
        if series_uid not in known:
            raise PacsNotFoundError(
                f"{server.label} has no series {series_uid} in study {study_uid}"
            )
    raise PacsNoImagesError(f"{what} on {server.label} holds no instances")


# --- STOW-RS -----------------------------------------------------------------------------------


def store(server: Server, datasets: Sequence[Any]) -> int:
    """Store datasets on the server; returns how many it accepted, raises if any failed."""
    datasets = list(datasets)
    if not datasets:
        return 0
    client = make_client(server)
    with translate_errors(server, "storing instances (STOW-RS)"):
        response = client.store_instances(datasets)
    failed = list(getattr(response, "FailedSOPSequence", []) or [])
    if failed:
        reasons = ", ".join(
            f"{item.get('ReferencedSOPInstanceUID', '?')} "
            f"(failure 0x{int(item.get('FailureReason', 0)):04X})"
            for item in failed[:3]
        )
        raise PacsError(
            f"{server.label} refused {len(failed)} of {len(datasets)} instances: {reasons}"
        )
    return len(datasets)
