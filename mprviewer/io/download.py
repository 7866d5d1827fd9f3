"""Download a study from an http(s) URL or a Google Drive share link into a private temp folder.

Everything a server can do wrong ends in a ``SourceError`` that names the URL (without
passwords or query tokens) and says why: no connection, silence beyond the read timeout,
a redirect loop, a 404 or other HTTP error, a web page instead of a file, a body larger
than the cap or one that never ends, content that is neither a zip nor DICOM. The file
goes into a folder made by ``tempfile.mkdtemp`` that the returned cleanup removes, and
that is removed at exit in any case; a failed or cancelled download removes it at once.
"""

from __future__ import annotations

import html
import re
import shutil
import threading
import urllib.parse
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mprviewer.errors import LoadCancelled, SourceError
from mprviewer.io.credentials import url_label
from mprviewer.io.limits import LimitExceeded, Limits, cap_hint, describe_size
from mprviewer.io.safe_paths import child_path
from mprviewer.io.sources import sniff_bytes
from mprviewer.io.tempfiles import make_temp_dir
from mprviewer.io.transfer import Transfer, hang_up_response, read_some, track_sockets

CHUNK = 256 * 1024
SNIFF_BYTES = 4096  # enough for the magic numbers and a web page's title
HTML_LIMIT = 2 * 1024 * 1024  # the most of a web page read to find a confirmation form
DISK_CHECK_EVERY = 64 * 1024 * 1024
# Google Drive: the hosts of share links, and where a file id is downloaded from.
DRIVE_HOSTS = {"drive.google.com", "docs.google.com", "drive.usercontent.google.com"}
DRIVE_DOWNLOAD_URL = "https://drive.google.com/uc"

Progress = Callable[[int, int], None]


# -- URLs --------------------------------------------------------------------------------
def redact(url: str) -> str:
    """The URL as messages show it: no user name or password, no query, no fragment."""
    try:
        parts = urllib.parse.urlsplit(url_label(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def google_drive_id(url: str) -> str | None:
    """The file id of a Google Drive share or download link, None for other URLs."""
    parts = urllib.parse.urlsplit(url)
    if (parts.netloc or "").lower() not in DRIVE_HOSTS:
        return None
    match = re.search(r"/file/(?:u/\d+/)?d/([A-Za-z0-9_-]+)", parts.path)
    if match:
        return match.group(1)
    ids = urllib.parse.parse_qs(parts.query).get("id")
    if ids and re.fullmatch(r"[A-Za-z0-9_-]+", ids[0]):
        return ids[0]
    if "/folders/" in parts.path:
        raise SourceError(f"{redact(url)}: this is a Google Drive folder; mprviewer downloads "
                          f"single files: share the zip of the study instead")
    return None


def _check_url(url: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise SourceError(f"{redact(url)}: not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise SourceError(f"{redact(url)}: only http and https URLs can be downloaded")
    if not parts.hostname:
        raise SourceError(f"{redact(url)}: the URL names no server")


# -- errors ------------------------------------------------------------------------------
HTTP_REASONS = {
    400: "the server did not understand the request (HTTP 400); check the link",
    401: "the server asks for a login (HTTP 401); mprviewer downloads public links only",
    403: "access is denied (HTTP 403); the link may have expired or need a login",
    404: "not found (HTTP 404); check the link",
    410: "the file is gone (HTTP 410)",
    429: "too many requests (HTTP 429); wait a while and try again",
}


def _http_reason(status: int) -> str:
    if status in HTTP_REASONS:
        return HTTP_REASONS[status]
    if status >= 500:
        return f"the server failed (HTTP {status}); try again later"
    return f"the server refused the download (HTTP {status})"


def _network_reason(exc: BaseException) -> str:
    """A short cause (e.g. 'Connection refused') without the URL that requests puts in."""
    seen = exc
    for _ in range(8):
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        nxt = seen.__cause__ or seen.__context__
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        if nxt is None:
            break
        seen = nxt
    text = str(seen)
    match = re.search(r"\[Errno -?\d+\] ([^')\]]+)", text)
    if match:
        return match.group(1).strip()
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "the server name cannot be resolved"
    return type(seen).__name__


def _request_error(exc: Exception, shown: str, limits: Limits) -> SourceError:
    import requests

    exceptions = requests.exceptions
    if isinstance(exc, exceptions.TooManyRedirects):
        return SourceError(f"{shown}: more than {limits.max_redirects} redirects (a redirect "
                           f"loop?); the link does not lead to a file")
    if isinstance(exc, exceptions.ConnectTimeout):
        return SourceError(f"{shown}: no connection within {limits.connect_timeout:g} s; check "
                           f"the network and the address")
    if isinstance(exc, exceptions.ReadTimeout):
        return SourceError(f"{shown}: the server did not answer within "
                           f"{limits.read_timeout:g} s; try again later")
    if isinstance(exc, exceptions.SSLError):
        return SourceError(f"{shown}: the secure connection failed (certificate problem)")
    if isinstance(exc, (exceptions.InvalidSchema, exceptions.InvalidURL,
                        exceptions.MissingSchema)):
        return SourceError(f"{shown}: the server redirected to an address that is not an "
                           f"http(s) URL; not followed")
    if isinstance(exc, (exceptions.ChunkedEncodingError, exceptions.ContentDecodingError)):
        return SourceError(f"{shown}: the connection broke off during the download; try again")
    if isinstance(exc, exceptions.ConnectionError) and "timed out" in str(exc).lower():
        return SourceError(f"{shown}: the server stopped sending for "
                           f"{limits.read_timeout:g} s; try again later")
    if isinstance(exc, exceptions.ConnectionError):
        return SourceError(f"{shown}: cannot connect ({_network_reason(exc)})")
    return SourceError(f"{shown}: the download failed ({type(exc).__name__})")


# -- Google Drive confirmation pages -------------------------------------------------------
class _FormFinder(HTMLParser):
    """Collects the download form (action and hidden inputs), links, title and error text."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        self.in_form = False
        self.links: list[str] = []
        self.title = ""
        self.error = ""
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and (a.get("id") == "download-form" or self.action is None):
            self.action, self.in_form = a.get("action", ""), True
            self.inputs = {}
        elif tag == "input" and self.in_form and a.get("name"):
            self.inputs[a["name"]] = a.get("value", "")
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "title":
            self._capture = "title"
        elif "uc-error-subcaption" in a.get("class", ""):
            self._capture = "error"

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture == "title":
            self.title += data
        elif self._capture == "error":
            self.error += data


def _drive_next_url(page: str, response_url: str, cookies: Any, file_id: str) -> str | None:
    """The URL that confirms a large-file download, from the page or cookies; None if none."""
    finder = _FormFinder()
    try:
        finder.feed(page)
    except Exception:  # a broken page is simply one without a form
        finder = _FormFinder()
    if finder.error.strip():
        raise SourceError(f"Google Drive file {file_id[:12]}: Google refused the download: "
                          f"{' '.join(finder.error.split())}")
    if finder.action and "confirm" in finder.inputs:
        action = urllib.parse.urljoin(response_url, html.unescape(finder.action))
        query = urllib.parse.urlencode(finder.inputs)
        return f"{action}{'&' if '?' in action else '?'}{query}"
    for name, value in cookies.items():
        if name.startswith("download_warning"):
            return _with_params(DRIVE_DOWNLOAD_URL, id=file_id, export="download",
                                confirm=value)
    for href in finder.links:
        href = html.unescape(href)
        if "confirm=" in href and ("export=download" in href or "/download" in href):
            return urllib.parse.urljoin(response_url, href)
    match = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if match:
        return _with_params(DRIVE_DOWNLOAD_URL, id=file_id, export="download",
                            confirm=match.group(1))
    match = re.search(r'"downloadUrl":"([^"]+)"', page)
    if match:
        return match.group(1).encode().decode("unicode_escape")
    return None


def _with_params(base: str, **params: str) -> str:
    return f"{base}?{urllib.parse.urlencode(params)}"


# -- saving ------------------------------------------------------------------------------
def _file_name(response: Any, url: str) -> str:
    """A safe local file name from Content-Disposition or the URL path (never a path)."""
    disposition = response.headers.get("Content-Disposition", "")
    name = ""
    match = re.search(r"filename\*\s*=\s*[^']*'[^']*'([^;]+)", disposition)
    if match:
        name = urllib.parse.unquote(match.group(1).strip().strip('"'))
    else:
        match = re.search(r'filename\s*=\s*"?([^";]+)"?', disposition)
        if match:
            name = match.group(1)
    if not name:
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")[:100]
    if not name or name.upper() == "DICOMDIR":
        name = f"{name or 'download'}.dcm"
    return name


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A bare data set (no preamble) starts with a group 0002 or 0008 element."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] != b"\x00\x00"


def _content_problem(head: bytes, content_type: str) -> str | None:
    """Why the first bytes are not a zip or DICOM file, or None when they are."""
    kind = sniff_bytes(head)
    if kind in ("zip", "dicom") or (kind is None and _looks_like_raw_dicom(head)):
        return None
    if kind is not None:
        return f"the server sent {kind}; mprviewer opens zip archives and DICOM files"
    text = head.lstrip()[:200].lower()
    if "html" in content_type.lower() or text.startswith((b"<!doctype html", b"<html")):
        match = re.search(rb"<title[^>]*>([^<]{1,120})", head, re.IGNORECASE)
        title = ""
        if match:
            title = " ".join(html.unescape(match.group(1).decode("utf-8", "replace")).split())
        about = f" ({title!r})" if title else ""
        return (f"the server sent a web page{about} instead of a file; the link may be a "
                f"preview page, need a login, or have expired")
    if not head:
        return "the server sent an empty file"
    return (f"the content is neither a zip archive nor a DICOM file "
            f"(it starts with {head[:8]!r}); check the link")


def _read_error(exc: Exception, shown: str, limits: Limits, done: int, total: int) -> SourceError:
    """The message for a connection that failed in the middle of the body."""
    text = f"{type(exc).__name__} {exc}".lower()
    if "timeout" in text or "timed out" in text:
        return SourceError(f"{shown}: the server stopped sending for "
                           f"{limits.read_timeout:g} s; try again later")
    if total and done < total:
        return SourceError(f"{shown}: the download ended early ({describe_size(done)} of "
                           f"{describe_size(total)}); try again")
    return SourceError(f"{shown}: the connection broke off during the download; try again")


def _save(response: Any, folder: Path, shown: str, limits: Limits,
          progress: Progress | None, transfer: Transfer) -> Path:
    length_text = response.headers.get("Content-Length", "")
    total = int(length_text) if length_text.isdigit() else 0
    if total > limits.max_download_bytes:
        raise LimitExceeded(f"{shown}: the file is {describe_size(total)}, more than the "
                            f"download limit of {describe_size(limits.max_download_bytes)}. "
                            f"{cap_hint('max_download_bytes')}")
    free = shutil.disk_usage(folder).free
    if total and total + limits.min_free_disk_bytes > free:
        raise SourceError(f"{shown}: not enough free disk space for {describe_size(total)} in "
                          f"{folder.parent} ({describe_size(free)} free)")
    path = child_path(folder, _file_name(response, response.url or shown))
    done = 0
    checked_at = 0
    head = b""
    if progress:
        progress(0, total)
    with transfer.stream(hang_up_response(response)) as stream, open(path, "wb") as out:
        while True:
            try:
                chunk = read_some(response, CHUNK)
            except Exception as exc:
                transfer.check()  # the watchdog's reason (cancel, too slow, cap) comes first
                raise _read_error(exc, shown, limits, done, total) from None
            if not chunk:
                transfer.check()
                break
            transfer.add(len(chunk), stream)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:
                    _raise_if_wrong_content(head, response, shown)
            done += len(chunk)
            if done - checked_at >= DISK_CHECK_EVERY:
                checked_at = done
                if shutil.disk_usage(folder).free < limits.min_free_disk_bytes:
                    raise SourceError(f"{shown}: the disk is almost full; the download was "
                                      f"stopped and removed")
            out.write(chunk)
            if progress:
                progress(done, total)
    if len(head) < SNIFF_BYTES:
        _raise_if_wrong_content(head, response, shown)
    if total and done < total:
        raise SourceError(f"{shown}: the download ended early ({describe_size(done)} of "
                          f"{describe_size(total)}); try again")
    return path


def _raise_if_wrong_content(head: bytes, response: Any, shown: str) -> None:
    problem = _content_problem(head, response.headers.get("Content-Type", ""))
    if problem is not None:
        raise SourceError(f"{shown}: {problem}")


# -- the public function -------------------------------------------------------------------
def download(
    url: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    limits: Limits | None = None,
) -> tuple[Path, Callable[[], None]]:
    """Fetch ``url`` into a new private temp folder; return (file path, cleanup).

    ``progress(done_bytes, total_bytes)`` is called as data arrives (total 0 when the
    server does not say); setting ``cancel`` stops the download, removes the partial file
    and raises ``LoadCancelled``. Google Drive share links (``/file/d/<id>/view``,
    ``open?id=``, ``uc?id=``) are turned into direct downloads, answering the
    confirmation page Google shows for large files.
    """
    import requests

    limits = limits or Limits.from_env()
    _check_url(url)
    drive_id = google_drive_id(url)
    shown = f"Google Drive file {drive_id[:12]}" if drive_id else redact(url)
    first = _with_params(DRIVE_DOWNLOAD_URL, id=drive_id, export="download") if drive_id else url
    folder, cleanup = make_temp_dir("download")
    try:
        with requests.Session() as session:
            session.hang_up = track_sockets(session)
            session.max_redirects = limits.max_redirects
            session.headers.update({"User-Agent": "mprviewer", "Accept-Encoding": "identity"})
            response = _get(session, first, shown, limits, cancel)
            for _ in range(3):
                if not drive_id or not _is_html(response):
                    break
                try:
                    page = _read_text(response, Transfer(shown, limits, cancel))
                except requests.exceptions.RequestException as exc:
                    raise _request_error(exc, shown, limits) from None
                next_url = _drive_next_url(page, response.url, session.cookies, drive_id)
                if next_url is None:
                    raise SourceError(_drive_page_problem(page, response.url, shown))
                response = _get(session, next_url, shown, limits, cancel)
            try:
                path = _save(response, folder, shown, limits, progress,
                             Transfer(shown, limits, cancel))
            except requests.exceptions.RequestException as exc:
                raise _request_error(exc, shown, limits) from None
            finally:
                response.close()
    except OSError as exc:
        cleanup()
        raise SourceError(f"{shown}: cannot save the download ({exc.strerror or exc})") from exc
    except BaseException:
        cleanup()
        raise
    return path, cleanup


def _get(session: Any, url: str, shown: str, limits: Limits,
         cancel: threading.Event | None) -> Any:
    import requests

    if cancel is not None and cancel.is_set():
        raise LoadCancelled(f"{shown}: the download was cancelled")
    waiting = Transfer(shown, limits, cancel)
    try:
        # until the headers arrive only Cancel and the timeouts apply, not the rate
        with waiting.stream(session.hang_up, check_rate=False):
            response = session.get(url, stream=True,
                                   timeout=(limits.connect_timeout, limits.read_timeout))
    except requests.exceptions.RequestException as exc:
        waiting.check()
        raise _request_error(exc, shown, limits) from None
    if waiting.stopped is not None or (cancel is not None and cancel.is_set()):
        response.close()  # cancelled as the headers came in: hang up all the same
        waiting.check()
    if response.status_code >= 400:
        response.close()
        raise SourceError(f"{shown}: {_http_reason(response.status_code)}")
    final = urllib.parse.urlsplit(response.url or url)
    if final.scheme not in ("http", "https"):
        response.close()
        raise SourceError(f"{shown}: redirected to a non-http(s) address; not followed")
    return response


def _is_html(response: Any) -> bool:
    return ("text/html" in response.headers.get("Content-Type", "").lower()
            and "attachment" not in response.headers.get("Content-Disposition", "").lower())


def _read_text(response: Any, transfer: Transfer) -> str:
    """At most ``HTML_LIMIT`` of a web page, under the same rate and cancel rules."""
    data = bytearray()
    try:
        with transfer.stream(hang_up_response(response)) as stream:
            while len(data) <= HTML_LIMIT:
                try:
                    chunk = read_some(response, CHUNK)
                except Exception as exc:
                    transfer.check()
                    raise _read_error(exc, transfer.shown, transfer.limits, 0, 0) from None
                if not chunk:
                    transfer.check()
                    break
                transfer.add(len(chunk), stream)
                data += chunk
    finally:
        response.close()  # a page cut off for its rate is hung up, not left to the collector
    return bytes(data).decode(response.encoding or "utf-8", "replace")


def _drive_page_problem(page: str, url: str, shown: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host.startswith("accounts.") or "ServiceLogin" in url or "signin" in url.lower():
        return (f"{shown}: Google asks to sign in; share the file with 'Anyone with the link' "
                f"and try again")
    problem = _content_problem(page.encode("utf-8", "replace")[:SNIFF_BYTES], "text/html")
    return f"{shown}: {problem or 'Google Drive did not offer the file for download'}"
