"""Servers that never stop, trickle, or stall: every download obeys the byte cap and the minimum
rate, memory stays bounded, and Cancel hangs up at once (plain URLs, DICOMweb and DIMSE).

The servers run on loopback, started by each test; windows are a second so tests stay short.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from mprviewer.errors import LoadCancelled, SourceError
from mprviewer.io import download as dl
from mprviewer.io.limits import LimitExceeded, Limits
from mprviewer.io.transfer import TooSlow
from mprviewer.pacs import PacsCancelled, retrieve_to_cache
from tests.hostile_pacs import STUDY, Instance, WebBehaviour, dicomweb_server, dimse_peer
from tests.local_http import serving

MIB = 1024 * 1024


class Trickle(BaseHTTPRequestHandler):
    """``/slow``: a 1 MB zip promised, one byte every 50 ms (20 bytes/s).
    ``/steady``: 1.5 MiB at about 600 KiB/s in 64 KiB pieces, a fine connection."""

    protocol_version = "HTTP/1.1"
    disconnected = threading.Event()
    first_byte = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        steady = self.path.startswith("/steady")
        size = 24 * 65536 if steady else 1_000_000
        self.send_response(200)
        page = self.path.startswith("/uc")  # a Google Drive confirmation page, trickled
        self.send_header("Content-Type", "text/html" if page else "application/zip")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            if steady:
                import io
                import zipfile

                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
                    archive.writestr("noise.bin", os.urandom(size - 200))
                body = buffer.getvalue()
                body = body + b"\0" * (size - len(body)) if len(body) < size else body[:size]
                for start in range(0, size, 65536):
                    self.wfile.write(body[start:start + 65536])
                    self.wfile.flush()
                    time.sleep(0.1)
                return
            for i in range(size):
                self.wfile.write(b"PK\x03\x04"[i:i + 1] or b"\0")
                self.wfile.flush()
                Trickle.first_byte.set()
                time.sleep(0.05)
        except OSError:
            Trickle.disconnected.set()


@pytest.fixture()
def trickle() -> str:
    Trickle.disconnected.clear()
    Trickle.first_byte.clear()
    with serving(Trickle) as url:
        yield url


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=timeout)


# -- the minimum rate ----------------------------------------------------------------------
def test_rate_settings_come_from_the_environment() -> None:
    default = Limits.from_env({})
    assert (default.min_download_rate, default.min_rate_window) == (1024, 30.0)
    assert default.max_answer_bytes == 256 * MIB
    limits = Limits.from_env({"MPRVIEWER_MIN_DOWNLOAD_RATE": "2K",
                              "MPRVIEWER_MIN_RATE_WINDOW": "1.5",
                              "MPRVIEWER_MAX_ANSWER_BYTES": "16M"})
    assert (limits.min_download_rate, limits.min_rate_window) == (2048, 1.5)
    assert limits.max_answer_bytes == 16 * MIB
    assert Limits.from_env({"MPRVIEWER_MIN_DOWNLOAD_RATE": "off"}).min_download_rate == 0
    with pytest.raises(SourceError, match="MPRVIEWER_MIN_RATE_WINDOW='soon' is not a valid"):
        Limits.from_env({"MPRVIEWER_MIN_RATE_WINDOW": "soon"})


def test_a_trickling_download_is_cut_off_by_the_minimum_rate(trickle: str) -> None:
    with pytest.raises(TooSlow) as info:
        dl.download(f"{trickle}/slow.zip", limits=Limits(min_rate_window=1.0))
    message = str(info.value)
    assert "less than the minimum of 1 KiB/s" in message and "1 s" in message
    assert "MPRVIEWER_MIN_DOWNLOAD_RATE" in message
    assert Trickle.disconnected.wait(10), "the connection was not closed"


def test_a_trickling_web_page_is_cut_off_too(trickle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page Google Drive shows before a large file is read under the same rate."""
    monkeypatch.setattr(dl, "DRIVE_DOWNLOAD_URL", f"{trickle}/uc")
    with pytest.raises(TooSlow, match="less than the minimum"):
        dl.download("https://drive.google.com/file/d/abcdef123/view",
                    limits=Limits(min_rate_window=1.0))
    assert Trickle.disconnected.wait(10), "the connection was not closed"


def test_a_trickling_download_through_the_cli_is_exit_3(trickle: str) -> None:
    result = _cli("info", f"{trickle}/slow.zip",
                  env={"MPRVIEWER_MIN_RATE_WINDOW": "1", "MPRVIEWER_MIN_DOWNLOAD_RATE": "2K"})
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "less than the minimum of 2 KiB/s" in lines[0], result.stderr


def test_a_steady_connection_is_not_cut_off(trickle: str) -> None:
    """600 KiB/s over 2.4 s with a 1 s window and 16 KiB/s minimum: never below the rate."""
    path, cleanup = dl.download(f"{trickle}/steady.zip",
                                limits=Limits(min_rate_window=1.0, min_download_rate=16 * 1024))
    try:
        assert path.stat().st_size == 24 * 65536
    finally:
        cleanup()
    watchdogs = [t for t in threading.enumerate() if t.name == "transfer-watchdog"]
    for thread in watchdogs:  # each ends once its transfer has no connection left
        thread.join(10)
    assert not any(t.is_alive() for t in watchdogs)


def test_cancel_hangs_up_at_once_in_the_middle_of_a_slow_chunk(trickle: str) -> None:
    """No rate check and a long read timeout: only the hang-up can end the read."""
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            dl.download(f"{trickle}/slow.zip", cancel=cancel,
                        limits=Limits(min_download_rate=0, read_timeout=600))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert Trickle.first_byte.wait(10)
    cancel.set()
    worker.join(60)
    assert not worker.is_alive(), "cancel did not stop a read waiting for data"
    assert len(outcome) == 1 and isinstance(outcome[0], LoadCancelled), outcome
    assert Trickle.disconnected.wait(10), "the connection was left open"


class Silent(BaseHTTPRequestHandler):
    """Takes the request and never answers; notes when the client hangs up."""

    asked = threading.Event()
    hung_up = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Silent.asked.set()
        self.connection.settimeout(60)
        try:
            if self.connection.recv(1) == b"":
                Silent.hung_up.set()
        except OSError:
            Silent.hung_up.set()
        self.close_connection = True


def test_cancel_hangs_up_while_the_server_has_not_answered_yet() -> None:
    """Before any header arrives there is no response to close: the socket is shut all the same."""
    Silent.asked.clear()
    Silent.hung_up.clear()
    cancel = threading.Event()
    outcome: list[BaseException] = []
    with serving(Silent) as url:
        def run() -> None:
            try:
                dl.download(f"{url}/study.zip", cancel=cancel, limits=Limits(read_timeout=600))
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        assert Silent.asked.wait(10)
        cancel.set()
        worker.join(60)
        assert not worker.is_alive(), "cancel waited for the server's answer"
        assert Silent.hung_up.wait(10), "the connection was left open"
    assert len(outcome) == 1 and isinstance(outcome[0], LoadCancelled), outcome


def test_a_trickling_dicomweb_server_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRVIEWER_MIN_RATE_WINDOW", "1")
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], trickle=0.05)
    with dicomweb_server(behaviour) as root, pytest.raises(TooSlow) as info:
        retrieve_to_cache(f"{root}/studies/{STUDY}")
    assert "less than the minimum" in str(info.value) and root in str(info.value)
    assert behaviour.sent[0] < 1000  # cut off long before the ~1.5 KB answer was through


def test_cancel_stops_a_dicomweb_retrieval_waiting_for_data(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRVIEWER_MIN_DOWNLOAD_RATE", "0")
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], trickle=0.5)
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            retrieve_to_cache(f"{root}/studies/{STUDY}", cancel=cancel)
        except BaseException as exc:
            outcome.append(exc)

    with dicomweb_server(behaviour) as root:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        deadline = time.monotonic() + 10
        while behaviour.sent[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        cancel.set()
        worker.join(60)
        assert not worker.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], PacsCancelled), outcome
        assert behaviour.disconnected.wait(10), "the connection was left open"


def test_a_stalling_dimse_peer_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer answers C-FIND, then sits on the C-GET: the association is aborted."""
    monkeypatch.setenv("MPRVIEWER_MIN_RATE_WINDOW", "1")
    instances = [Instance("1.2.3.4"), Instance("1.2.3.5", slice_index=1)]
    with dimse_peer(instances, stall=20) as spec, pytest.raises(TooSlow) as info:
        retrieve_to_cache(spec, study_uid=STUDY)
    assert "less than the minimum" in str(info.value) and spec in str(info.value)


def test_cancel_aborts_a_stalled_c_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRVIEWER_MIN_DOWNLOAD_RATE", "0")
    cancel = threading.Event()
    outcome: list[BaseException] = []
    instances = [Instance("1.2.3.4")]
    with dimse_peer(instances, stall=20) as spec:
        def run() -> None:
            try:
                retrieve_to_cache(spec, study_uid=STUDY, cancel=cancel)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        time.sleep(1.0)
        cancel.set()
        worker.join(15)
        assert not worker.is_alive(), "cancel waited for the stalled peer"
    assert len(outcome) == 1 and isinstance(outcome[0], PacsCancelled), outcome


# -- the byte cap and memory ---------------------------------------------------------------
def _warm_up() -> None:
    """One ordinary retrieval, so the modules it imports are loaded before memory is traced."""
    with dicomweb_server(WebBehaviour(instances=[Instance("1.2.3.9")])) as root:
        retrieve_to_cache(f"{root}/studies/{STUDY}")


def test_an_endless_dicomweb_part_stops_at_the_cap_in_bounded_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 8 * MIB
    monkeypatch.setenv("MPRVIEWER_MAX_DOWNLOAD_BYTES", str(cap))
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], endless=True)
    _warm_up()  # imports and first-use caches are not what is measured
    tracemalloc.start()
    try:
        with dicomweb_server(behaviour) as root, pytest.raises(LimitExceeded) as info:
            retrieve_to_cache(f"{root}/studies/{STUDY}")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "went past the limit of 8 MiB" in str(info.value)
    assert "MPRVIEWER_MAX_DOWNLOAD_BYTES" in str(info.value)
    assert behaviour.sent[0] > cap  # the server did send more than the cap ...
    assert peak < 2 * MIB, peak  # ... and memory held a small part of it


def test_an_endless_search_answer_stops_at_the_answer_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 4 * MIB
    monkeypatch.setenv("MPRVIEWER_MAX_ANSWER_BYTES", str(cap))
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], endless_search=True)
    _warm_up()  # imports and first-use caches are not what is measured
    tracemalloc.start()
    try:
        with dicomweb_server(behaviour) as root, pytest.raises(LimitExceeded) as info:
            retrieve_to_cache(f"{root}/studies/{STUDY}")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "sent an answer of more than 4 MiB" in str(info.value)
    assert "MPRVIEWER_MAX_ANSWER_BYTES" in str(info.value)
    assert behaviour.sent[0] > cap
    assert peak < 4 * cap, peak
    assert behaviour.disconnected.wait(10), "the connection was left open"


def test_a_dimse_peer_that_never_stops_answering_c_find_meets_the_answer_cap() -> None:
    instances = [Instance(f"1.2.3.{n}", slice_index=n) for n in range(50)]
    with dimse_peer(instances, endless_find=True) as spec:
        result = _cli("pacs", "retrieve", "--server", spec, "--study", STUDY,
                      env={"MPRVIEWER_MAX_ANSWER_BYTES": "128K"})
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "went past the limit of 128 KiB" in lines[0] and "MPRVIEWER_MAX_ANSWER_BYTES" in lines[0]


def test_an_endless_dicomweb_part_through_the_cli_is_exit_3() -> None:
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], endless=True)
    with dicomweb_server(behaviour) as root:
        result = _cli("info", f"{root}/studies/{STUDY}",
                      env={"MPRVIEWER_MAX_DOWNLOAD_BYTES": "4M"})
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "went past the limit of 4 MiB" in lines[0], result.stderr
    home = Path(os.environ["MPRVIEWER_HOME"])
    assert [p for p in (home / "pacs-cache").rglob("*") if p.is_file()] == []


# -- SIGTERM / SIGHUP in the middle of a download ---------------------------------------------
def _wait_for(predicate, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_during_a_download_leaves_no_temporary_folder(
        trickle: str, tmp_path: Path, signame: str) -> None:
    import signal

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "MPRVIEWER_MIN_DOWNLOAD_RATE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "mprviewer", "info", f"{trickle}/slow.zip"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: any(tmp.glob("mprviewer-download-*/*"))), "no download began"
        assert Trickle.first_byte.wait(30)
        proc.send_signal(getattr(signal, signame))
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -getattr(signal, signame)  # died of the signal, as expected
    assert list(tmp.iterdir()) == []


def test_sigterm_during_a_pacs_retrieval_leaves_no_partial_folder(tmp_path: Path) -> None:
    import signal

    home = tmp_path / "home"
    env = {**os.environ, "MPRVIEWER_HOME": str(home), "MPRVIEWER_MIN_DOWNLOAD_RATE": "0"}
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], trickle=0.02)
    with dicomweb_server(behaviour) as root:
        proc = subprocess.Popen([sys.executable, "-m", "mprviewer", "info",
                                 f"{root}/studies/{STUDY}"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            cache = home / "pacs-cache"
            assert _wait_for(lambda: any(cache.glob(".partial-*/.part-*"))), "no retrieval began"
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM
    assert list(cache.iterdir()) == []
