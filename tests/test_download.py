"""Downloads against a local HTTP server: files, errors, caps, timeouts, Google Drive links."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

import mprviewer
from mprviewer.errors import LoadCancelled, SourceError
from mprviewer.io import download as dl
from mprviewer.io import tempfiles
from mprviewer.io.limits import LimitExceeded, Limits
from mprviewer.synthetic import writer as synthetic
from tests.local_http import serving

ARRAY = np.random.default_rng(5).integers(-1000, 1000, (4, 8, 6)).astype(np.int16)
FILES: dict[str, bytes] = {}
synthetic.write_series("CT", ARRAY, seed=5, sink=lambda n, d: FILES.update({n: d}))


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in FILES.items():
            zf.writestr(f"CT/{name}", data)
    return buffer.getvalue()


ZIP = _zip_bytes()
DICOM = FILES[sorted(FILES)[0]]
DRIVE_ID = "1AbC_dEf-GhIjKlMnOp"
TOKEN = "t0k3n"
ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
              b"<body>Please try again</body></html>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/octet-stream",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout tests)
            self.close_connection = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path == "/study.zip":
            self._send(200, ZIP, "application/zip")
        elif path == "/image":
            self._send(200, DICOM, "application/dicom")
        elif path == "/hostile-name":
            self._send(200, ZIP, headers={"Content-Disposition":
                                          'attachment; filename="../../../evil.zip"'})
        elif path == "/missing":
            self._send(404, b"<html><title>Not Found</title></html>", "text/html")
        elif path == "/error-page":
            self._send(200, ERROR_PAGE, "text/html; charset=utf-8")
        elif path == "/pdf":
            self._send(200, b"%PDF-1.4\n" + bytes(2000), "application/pdf")
        elif path == "/gzip":
            self._send(200, b"\x1f\x8b\x08\x00" + bytes(100), "application/gzip")
        elif path == "/slow":
            time.sleep(3)
            self._send(200, ZIP)
        elif path == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.end_headers()
            chunk = ZIP[:4] + bytes(64 * 1024 - 4)
            try:
                for _ in range(100_000):
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
        elif path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024**3))
            self.end_headers()
            self.close_connection = True
        elif path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", str(len(ZIP)))
            self.end_headers()
            self.wfile.write(ZIP[: len(ZIP) // 2])
            self.close_connection = True
        elif path.startswith("/loop"):
            n = int(path[5:] or 0)
            self.send_response(302)
            self.send_header("Location", f"/loop{n + 1}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/redirect-once":
            self.send_response(301)
            self.send_header("Location", "/study.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/uc":  # fake Google Drive
            self._drive(query)
        elif path == "/download" and query.get("confirm") == TOKEN and query.get("id") == DRIVE_ID:
            self._send(200, ZIP, headers={"Content-Disposition":
                                          'attachment; filename="drive study.zip"'})
        else:
            self._send(404, b"no such route", "text/plain")

    def _drive(self, query: dict[str, str]) -> None:
        file_id = query.get("id", "")
        if file_id == "quota":
            page = (b"<html><title>Google Drive - Quota exceeded</title><body>"
                    b"<p class=\"uc-error-subcaption\">Too many users have viewed or downloaded"
                    b" this file recently.</p></body></html>")
            self._send(200, page, "text/html; charset=utf-8")
            return
        if file_id == "cookie":  # the older flow: a download_warning cookie, then confirm=
            if query.get("confirm") == TOKEN:
                self._send(200, ZIP, headers={"Content-Disposition":
                                              'attachment; filename="c.zip"'})
            else:
                self._send(200, b"<html><title>Google Drive - Virus scan warning</title>"
                           b"<body>Cannot scan</body></html>", "text/html",
                           {"Set-Cookie": f"download_warning_123_{file_id}={TOKEN}; Path=/"})
            return
        if file_id != DRIVE_ID:
            self._send(404, b"<html><title>Not Found</title></html>", "text/html")
            return
        port = self.server.server_address[1]
        page = f"""<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
            </head><body><p>study.zip (1.2G) is too large for Google to scan for viruses.</p>
            <form id="download-form" action="http://127.0.0.1:{port}/download" method="get">
            <input type="submit" value="Download anyway"/>
            <input type="hidden" name="id" value="{DRIVE_ID}">
            <input type="hidden" name="export" value="download">
            <input type="hidden" name="confirm" value="{TOKEN}">
            <input type="hidden" name="uuid" value="5f0c-22"></form></body></html>"""
        self._send(200, page.encode(), "text/html; charset=utf-8")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


@pytest.fixture
def fake_drive(server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Route Google Drive links to the local server."""
    monkeypatch.setattr(dl, "DRIVE_DOWNLOAD_URL", f"{server}/uc")
    return server


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Path]]:
    """Temp folders of this test go into a folder of its own; returns it and a list that
    receives every folder a download makes."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    made: list[Path] = []
    real = dl.make_temp_dir

    def recording(purpose: str = "tmp"):
        folder, cleanup = real(purpose)
        made.append(folder)
        return folder, cleanup

    monkeypatch.setattr(dl, "make_temp_dir", recording)
    return root, made


def _no_new_temp(before: list[Path], temp_root: tuple[Path, list[Path]]) -> None:
    """The failed download made its private folder in the temp root, and nothing of it is
    left: not on disk, not in the registry of live folders."""
    root, made = temp_root
    assert tempfiles.live_folders() == before
    assert made, "the download made no temp folder"
    for folder in made:
        assert folder.parent == root and folder.name.startswith("mprviewer-download-")
        assert not folder.exists()
    assert sorted(p.name for p in root.iterdir()) == []
    made.clear()


def test_zip_download_opens_as_a_study_and_close_removes_it(server: str) -> None:
    path, cleanup = dl.download(f"{server}/study.zip")
    assert path.read_bytes() == ZIP
    assert path.name == "study.zip"
    assert path.parent.stat().st_mode & 0o777 == 0o700
    cleanup()
    assert not path.parent.exists()
    study = mprviewer.open_study(f"{server}/study.zip")
    folder = Path(study._expanded.members[0].name.split("!/")[0]).parent
    assert folder.exists() and study.source_label == f"{server}/study.zip"
    np.testing.assert_array_equal(study.series[0].load().array, ARRAY)
    study.close()
    assert not folder.exists()


def test_single_dicom_file_and_one_redirect(server: str) -> None:
    with mprviewer.open_study(f"{server}/image") as study:
        assert study.series[0].num_slices == 1
        np.testing.assert_array_equal(study.series[0].load().array[0], ARRAY[0])
    path, cleanup = dl.download(f"{server}/redirect-once")
    assert path.read_bytes() == ZIP
    cleanup()


def test_hostile_file_name_stays_in_the_private_folder(server: str) -> None:
    path, cleanup = dl.download(f"{server}/hostile-name")
    assert path.parent.name.startswith("mprviewer-download-")
    assert path.name == "evil.zip" and path.read_bytes() == ZIP
    cleanup()


@pytest.mark.parametrize(("route", "expected"), [
    ("/missing", r"not found \(HTTP 404\)"),
    ("/error-page", r"web page \('Service Unavailable'\) instead of a file"),
    ("/pdf", r"neither a zip archive nor a DICOM file \(it starts with b'%PDF"),
    ("/gzip", r"sent a gzip file"),
    ("/loop", r"more than 10 redirects"),
    ("/to-file", r"not an http\(s\) URL"),
    ("/short", r"ended early"),
])
def test_bad_answers_are_clear_errors_that_hide_secrets(server: str, route: str, expected: str,
                                                        temp_root) -> None:
    before = tempfiles.live_folders()
    host = server.removeprefix("http://")
    url = f"http://reader:s3cret@{host}{route}?token=PRIVATE#frag"
    with pytest.raises(SourceError, match=expected) as caught:
        dl.download(url)
    message = str(caught.value)
    assert message.startswith(f"http://{host}{route}: ")
    assert "s3cret" not in message and "PRIVATE" not in message and "reader" not in message
    _no_new_temp(before, temp_root)


def test_silent_server_times_out(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"did not answer within 0\.5 s"):
        dl.download(f"{server}/slow", limits=Limits(read_timeout=0.5))
    assert time.monotonic() - start < 2.5


def test_connection_refused_names_the_cause() -> None:
    with pytest.raises(SourceError, match=r"127\.0\.0\.1:9/x: cannot connect \(.*refused"):
        dl.download("http://127.0.0.1:9/x", limits=Limits(connect_timeout=2))


def test_connection_that_hangs_times_out_at_the_connect_limit(temp_root) -> None:
    """A listener nobody accepts from, its queue full: the kernel drops further SYNs, so a
    connect neither succeeds nor is refused."""
    before = tempfiles.live_folders()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host, port = listener.getsockname()
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):
                sock = socket.socket()
                sock.settimeout(0.2)
                fillers.append(sock)
                try:
                    sock.connect((host, port))
                except TimeoutError:
                    break  # the queue is full: the next connect hangs too
            else:
                raise AssertionError("could not make a connection that hangs")
            start = time.monotonic()
            with pytest.raises(SourceError) as caught:
                dl.download(f"http://{host}:{port}/study.zip?token=PRIVATE",
                            limits=Limits(connect_timeout=0.5, read_timeout=30))
            elapsed = time.monotonic() - start
        finally:
            for sock in fillers:
                sock.close()
    assert str(caught.value) == (f"http://{host}:{port}/study.zip: no connection within 0.5 s; "
                                 "check the network and the address")
    assert 0.45 <= elapsed < 1.5  # waited for the connect limit, not the read limit
    _no_new_temp(before, temp_root)


def test_endless_body_stops_at_the_size_cap(server: str, temp_root) -> None:
    before = tempfiles.live_folders()
    start = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"past the limit of 2 MiB.*MAX_DOWNLOAD_BYTES"):
        dl.download(f"{server}/endless", limits=Limits(max_download_bytes=2 * 1024**2))
    assert time.monotonic() - start < 5
    _no_new_temp(before, temp_root)
    with pytest.raises(LimitExceeded, match=r"the file is 50 GiB, more than the download"):
        dl.download(f"{server}/huge")
    _no_new_temp(before, temp_root)


def test_progress_reports_bytes_and_cancel_removes_the_partial_file(server: str,
                                                                    temp_root) -> None:
    calls: list[tuple[int, int]] = []
    _, cleanup = dl.download(f"{server}/study.zip", progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, len(ZIP)) and calls[-1] == (len(ZIP), len(ZIP))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    cleanup()
    _no_new_temp(tempfiles.live_folders(), temp_root)  # the cleanup removed it
    before = tempfiles.live_folders()
    cancel = threading.Event()
    seen: list[int] = []

    def stop_after_first(done: int, total: int) -> None:
        seen.append(done)
        if done > 0:
            cancel.set()

    with pytest.raises(LoadCancelled, match="cancelled"):
        dl.download(f"{server}/endless", progress=stop_after_first, cancel=cancel)
    assert 0 < max(seen) <= 2 * dl.CHUNK
    _no_new_temp(before, temp_root)


def test_only_http_and_https(server: str) -> None:
    for url in ("ftp://example.org/a.zip", "file:///etc/passwd", "javascript:alert(1)"):
        with pytest.raises(SourceError, match="only http and https"):
            dl.download(url)
    with pytest.raises(SourceError, match="only http and https"):
        mprviewer.open_study("ftp://example.org/study.zip")


@pytest.mark.parametrize("link", [
    f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing",
    f"https://drive.google.com/open?id={DRIVE_ID}",
    f"https://drive.google.com/uc?id={DRIVE_ID}&export=download",
    f"https://docs.google.com/uc?export=download&id={DRIVE_ID}",
])
def test_google_drive_links_pass_the_confirmation_page(fake_drive: str, link: str) -> None:
    assert dl.google_drive_id(link) == DRIVE_ID
    path, cleanup = dl.download(link)
    assert path.read_bytes() == ZIP and path.name == "drive_study.zip"
    cleanup()


def test_google_drive_cookie_flow_and_quota_page(fake_drive: str) -> None:
    path, cleanup = dl.download("https://drive.google.com/file/d/cookie/view")
    assert path.read_bytes() == ZIP
    cleanup()
    with pytest.raises(SourceError, match=r"Google refused the download: Too many users"):
        dl.download("https://drive.google.com/open?id=quota")
    with pytest.raises(SourceError, match="Google Drive folder"):
        dl.download("https://drive.google.com/drive/folders/abc")


def test_google_drive_study_opens(fake_drive: str) -> None:
    with mprviewer.open_study(f"https://drive.google.com/file/d/{DRIVE_ID}/view") as study:
        np.testing.assert_array_equal(study.series[0].load().array, ARRAY)


def test_downloads_left_open_are_removed_at_exit(server: str, tmp_path: Path) -> None:
    code = ("import sys; from mprviewer.io.download import download\n"
            f"path, _ = download({server + '/study.zip'!r})\n"
            "print(path.parent)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    folder = Path(out.stdout.strip())
    assert folder.parent == tmp_path and folder.name.startswith("mprviewer-download-")
    assert not folder.exists()
