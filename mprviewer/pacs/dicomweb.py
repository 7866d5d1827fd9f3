"""DICOMweb: QIDO-RS search, WADO-RS retrieval (parallel, with progress and cancel), STOW-RS.

Searching and storing are dicomweb-client's work; this module adds the session (credentials,
TLS, timeouts, no silent retries, answers read under a cap), turns every failure into a
:class:`PacsError` naming the server, and retrieves series itself: each multipart answer is
streamed into files under the download cap and minimum rate, and a file is named after its
SOPInstanceUID only once that is a valid UID.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from mprviewer.io.limits import LimitExceeded, Limits, cap_hint, describe_size
from mprviewer.io.safe_paths import child_path, is_dicom_uid, quiet_uid_warnings
from mprviewer.io.transfer import Transfer, hang_up_response, read_some, track_sockets
from mprviewer.pacs.errors import (
    PacsAuthError,
    PacsCancelled,
    PacsConnectionError,
    PacsError,
    PacsNoImagesError,
    PacsNotFoundError,
    PacsProtocolError,
)
from mprviewer.pacs.multipart import CHUNK, MultipartFiles
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
    session.hooks["response"].append(_answer_reader(server))
    session.headers["User-Agent"] = "mprviewer"
    return session


def _answer_reader(server: Server) -> Callable[..., Any]:
    """A response hook that reads a whole answer (QIDO JSON, STOW reply) under the caps.

    requests reads a non-streamed body into memory however long it is; an answer that never
    ends grew without bound. Read here, it is stopped past ``max_answer_bytes`` (or the
    download cap), below the minimum rate, or on cancel. Multipart retrievals stream to
    files instead (:func:`_stream_series`) and are left alone.
    """

    def read(response: Any, *args: Any, **kwargs: Any) -> Any:
        accept = str(response.request.headers.get("Accept", "")) if response.request else ""
        if "multipart" in accept.lower() or getattr(response, "_content", False) is not False:
            return response
        limits = Limits.from_env()
        cap = min(limits.max_download_bytes, limits.max_answer_bytes)
        transfer = Transfer(f"the answer of {server.label}", limits)
        data = bytearray()
        with transfer.stream(hang_up_response(response)) as stream:
            while True:
                try:
                    chunk = read_some(response, CHUNK)
                except Exception:
                    transfer.check()
                    raise
                if not chunk:
                    transfer.check()
                    break
                transfer.add(len(chunk), stream)
                data += chunk
                if len(data) > cap:
                    response.close()
                    raise LimitExceeded(
                        f"{server.label} sent an answer of more than {describe_size(cap)}; "
                        f"stopped. {cap_hint('max_answer_bytes')}"
                    )
        response._content = bytes(data)
        response._content_consumed = True
        return response

    return read


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
    quiet_uid_warnings()
    instances = list_instances(server, study_uid, series_uid)
    if not instances:
        _raise_missing(server, study_uid, series_uid, what)
    if not any(is_image_sop_class(sop_class) for _s, _i, sop_class in instances):
        raise PacsNoImagesError(
            f"{what} on {server.label} holds no images (only reports, key objects or similar)"
        )
    expected: dict[str, int] = {}
    for series, _sop, _cls in instances:
        if not is_dicom_uid(series):  # it becomes part of the next request's path
            raise PacsProtocolError(
                f"{server.label} listed a SeriesInstanceUID {series[:80]!r} that is not a valid "
                f"DICOM UID in {what}; refused"
            )
        expected[series] = expected.get(series, 0) + 1
    total = len(instances)
    if progress:
        progress(0, total)
    stop = threading.Event()
    lock = threading.Lock()
    counter = [0]
    transfer = Transfer(
        f"{what} from {server.label}", cancel=cancel,
        cancelled=lambda: PacsCancelled(f"retrieval of {what} from {server.label} was cancelled"),
    )

    def fetch(series: str) -> None:
        doing = f"retrieving series {series} of study {study_uid}"
        received = 0

        def on_file(part: Path) -> None:
            nonlocal received
            _file_instance(part, dest, server)
            received += 1
            with lock:
                counter[0] += 1

        with translate_errors(server, doing, f"it has no series {series}"):
            _stream_series(server, study_uid, series, dest, transfer, on_file, stop)
        if stop.is_set():
            return
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
                transfer.check()
            for future in finished:
                future.result()  # re-raises the first failure
            with lock:
                done = counter[0]
            if progress and done != reported:
                reported = done
                progress(min(done, total), total)
    except BaseException as exc:
        transfer.stop(exc)  # hang up the other series' connections at once
        raise
    finally:
        stop.set()
        # Wait for the other series' threads (their connections are already hung up): one
        # still writing after the caller removed the partial folder would leave files behind.
        pool.shutdown(wait=True, cancel_futures=True)
    with lock:
        done = counter[0]
    if progress and done != reported:
        progress(done, max(done, total))
    return done


def _truncated(ds: Any, size: int) -> bool:
    """True when uncompressed pixel data is shorter than the image attributes require.

    ``ds`` was read with large values deferred: the check compares where the pixel data
    would end with the file's ``size`` rather than loading it.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if "PixelData" not in ds or syntax is None or syntax.is_compressed:
        return False
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        need = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                * int(ds.BitsAllocated) * frames + 7) // 8
        element = ds.get_item("PixelData")
        start = getattr(element, "value_tell", None)
        if start is None:
            return len(ds.PixelData) < need
        return min(int(element.length), size - int(start)) < need
    except (AttributeError, TypeError, ValueError):
        return False


# What filing a received instance needs; the rest of a (possibly huge) header is skipped.
_FILING_TAGS = ("SOPInstanceUID", "SeriesInstanceUID", "Rows", "Columns", "SamplesPerPixel",
                "BitsAllocated", "NumberOfFrames", "PixelData")


def _file_instance(part: Path, dest: Path, server: Server) -> Path:
    """Read the header of one received part (large values left on disk) and file it."""
    import pydicom

    ds = pydicom.dcmread(part, defer_size=4096, specific_tags=list(_FILING_TAGS))
    return _write_instance(ds, part, dest, server)


def _write_instance(ds: Any, part: Path, dest: Path, server: Server) -> Path:
    """Name one received instance ``<SOPInstanceUID>.dcm`` in ``dest``, bytes as sent.

    The UID comes from the server, so it must be a DICOM UID before it names a file; a
    server sending ``../../x`` gets an error and nothing is written outside ``dest``.
    """
    uid = str(ds.get("SOPInstanceUID", "") or "").strip("\x00 ")
    if not is_dicom_uid(uid):
        raise PacsProtocolError(
            f"{server.label} sent an instance whose SOPInstanceUID {uid[:80]!r} is not a valid "
            "DICOM UID; refused (nothing was written outside the cache)"
        )
    if _truncated(ds, part.stat().st_size):
        raise PacsConnectionError(
            f"instance {uid} from {server.label} arrived truncated: the transfer was cut short"
        )
    path = child_path(dest, f"{uid}.dcm")
    part.replace(path)
    return path


def _stream_series(server: Server, study_uid: str, series_uid: str, dest: Path,
                   transfer: Transfer, on_file: Callable[[Path], None],
                   stop: threading.Event) -> None:
    """WADO-RS one series, writing each part of the multipart answer to a file as it arrives.

    dicomweb-client gathers each part in memory, so a part that never ends grew without
    bound; here memory holds one chunk at a time, every byte counts against the download
    cap and the minimum rate, and cancel hangs the connection up at once.
    """
    url = f"{server.url}/studies/{study_uid}/series/{series_uid}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    session = _session(server)
    hang_up_all = track_sockets(session)
    try:
        # until the headers arrive only cancel (and the timeouts) apply, not the rate
        try:
            with transfer.stream(hang_up_all, check_rate=False):
                response = session.get(url, headers={"Accept": accept}, stream=True,
                                       timeout=(min(10.0, server.timeout), server.timeout))
        except Exception:
            transfer.check()  # a hang-up (cancel) is the reason, not the broken connection
            raise
        try:
            transfer.check()
            response.raise_for_status()
            content_type = response.headers.get("Content-Type", "")
            splitter = MultipartFiles(content_type, dest, on_file, server.label)
            try:
                with transfer.stream(hang_up_response(response)) as stream:
                    while not stop.is_set():
                        try:
                            chunk = read_some(response, CHUNK)
                        except Exception:
                            transfer.check()  # cancel, too slow or too big: that is the reason
                            raise
                        if not chunk:
                            transfer.check()
                            break
                        transfer.add(len(chunk), stream)
                        splitter.feed(chunk)
            except BaseException:
                splitter.discard()
                raise
            if stop.is_set():
                splitter.discard()
            else:
                splitter.close()
        finally:
            response.close()
    finally:
        session.close()


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
