"""What goes wrong with servers: credentials, wrong ports and roots, TLS, HTML, timeouts, a server
that dies mid-transfer. Each error names the server (never the password) and leaves no cache entry.
"""

from __future__ import annotations

import http.server
import time
from dataclasses import replace

import pytest

import mprviewer
from mprviewer.pacs import (
    PacsAuthError,
    PacsConnectionError,
    PacsError,
    PacsNotFoundError,
    PacsProtocolError,
    StudyQuery,
    cache,
    dicomweb,
    dimse,
    parse_server,
    retrieve_to_cache,
    search_studies,
    study_url,
)
from tests.local_http import send_html, serving
from tests.orthanc import Orthanc, free_port
from tests.pacs_data import ct_series, module_home

USER, PASSWORD = "alice", "s3cret-pw"
OUR_AET = "MPRTEST"


@pytest.fixture(autouse=True)
def _no_pacs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MPRVIEWER_PACS_USER", "MPRVIEWER_PACS_PASSWORD", "MPRVIEWER_PACS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    """An Orthanc that wants HTTP basic credentials, holding one small CT study."""
    with module_home(tmp_path_factory):
        ct = ct_series(tmp_path_factory.mktemp("err-ct"), slices=4, size=16, seed="err-ct")
        with Orthanc(users={USER: PASSWORD}) as orthanc:
            orthanc.upload(ct.files)
            yield orthanc, ct


def _assert_clean(message: str) -> None:
    assert PASSWORD not in message and "wrong-pw" not in message
    assert cache.entries() == [] and not list(cache.cache_root().glob(".partial-*"))


def test_right_credentials_from_the_environment(secured, monkeypatch) -> None:
    orthanc, ct = secured
    monkeypatch.setenv("MPRVIEWER_PACS_USER", USER)
    monkeypatch.setenv("MPRVIEWER_PACS_PASSWORD", PASSWORD)
    assert [s.study_uid for s in search_studies(orthanc.dicomweb_url)] == [ct.study_uid]
    folder = retrieve_to_cache(study_url(orthanc.dicomweb_url, ct.study_uid))
    assert len(list(folder.glob("*/*.dcm"))) == 4


def test_wrong_password(secured) -> None:
    orthanc, ct = secured
    url = orthanc.dicomweb_url.replace("http://", f"http://{USER}:wrong-pw@")
    with pytest.raises(PacsAuthError, match="401") as info:
        retrieve_to_cache(study_url(url, ct.study_uid))
    message = str(info.value)
    assert orthanc.dicomweb_url in message and "check the user name and password" in message
    _assert_clean(message)


def test_no_credentials_says_how_to_give_them(secured) -> None:
    orthanc, _ct = secured
    with pytest.raises(PacsAuthError, match="MPRVIEWER_PACS_USER") as info:
        search_studies(orthanc.dicomweb_url, StudyQuery(patient_name="doe"))
    assert isinstance(info.value, mprviewer.DicomError)


def test_wrong_token(secured, monkeypatch) -> None:
    orthanc, _ct = secured
    monkeypatch.setenv("MPRVIEWER_PACS_TOKEN", "not-a-valid-token")
    with pytest.raises(PacsAuthError, match="401") as info:
        search_studies(orthanc.dicomweb_url)
    assert "not-a-valid-token" not in str(info.value)


def test_wrong_root_is_a_404(secured, monkeypatch) -> None:
    orthanc, _ct = secured
    monkeypatch.setenv("MPRVIEWER_PACS_USER", USER)
    monkeypatch.setenv("MPRVIEWER_PACS_PASSWORD", PASSWORD)
    with pytest.raises(PacsNotFoundError, match="DICOMweb root"):
        search_studies(f"{orthanc.http_url}/not-dicom-web")


def test_wrong_port() -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(PacsConnectionError, match="connection refused") as info:
        retrieve_to_cache(study_url(url, "1.2.3"))
    assert url in str(info.value)
    _assert_clean(str(info.value))


def test_tls_to_a_plain_http_server(secured) -> None:
    orthanc, _ct = secured
    with pytest.raises(PacsConnectionError, match="TLS error"):
        search_studies(orthanc.dicomweb_url.replace("http://", "https://"))


class _WebSite(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an HTML page; /slow/ first waits 3 seconds."""

    def do_GET(self) -> None:
        if self.path.startswith("/slow/"):
            time.sleep(3)
        send_html(self, 200, b"<html><body><h1>Welcome to our hospital</h1></body></html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def website():
    with serving(_WebSite) as url:
        yield url


def test_html_instead_of_dicomweb(website) -> None:
    with pytest.raises(PacsProtocolError, match="web page") as info:
        search_studies(f"{website}/portal")
    assert f"{website}/portal" in str(info.value)
    with pytest.raises(PacsProtocolError, match="web page"):
        retrieve_to_cache(study_url(f"{website}/portal", "1.2.3"))
    _assert_clean(str(info.value))


def test_timeout(website) -> None:
    server = replace(parse_server(f"{website}/slow/dicom-web"), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(PacsConnectionError, match="did not answer within 1 s"):
        dicomweb.search_studies(server)
    assert time.monotonic() - started < 2.5


@pytest.fixture(scope="module")
def big_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, str]:
    """Two series of 40 slices, 12 MB each: more than socket buffers hold, so a transfer is
    still running when the server dies."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path_factory.mktemp("big")
    first = ct_series(folder / "a", slices=40, size=384, seed="doomed")
    second = ct_series(folder / "b", slices=40, size=384, seed="doomed")  # same study
    series_uid = generate_uid()
    for path in second.files:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(path)
    return [*first.files, *second.files], first.study_uid


@pytest.fixture
def doomed(big_study):
    """An Orthanc of its own for a test that kills it mid-transfer."""
    files, study_uid = big_study
    with Orthanc(modalities={"viewer": (OUR_AET, free_port())}) as orthanc:
        orthanc.upload(files)
        yield orthanc, study_uid


def test_orthanc_killed_during_wado_retrieval(doomed, monkeypatch) -> None:
    orthanc, study_uid = doomed
    written = []
    original = dicomweb._write_instance

    def write_then_kill(*args):
        path = original(*args)
        written.append(path)
        if len(written) == 3:
            orthanc.kill()
        return path

    monkeypatch.setattr(dicomweb, "_write_instance", write_then_kill)
    with pytest.raises(PacsConnectionError) as info:
        retrieve_to_cache(study_url(orthanc.dicomweb_url, study_uid))
    assert orthanc.dicomweb_url in str(info.value)
    assert 3 <= len(written) < 80
    _assert_clean(str(info.value))
    assert not any(p.exists() for p in written)


def test_orthanc_killed_during_c_get(doomed, monkeypatch) -> None:
    orthanc, study_uid = doomed
    written = []
    original = dimse._write_instance

    def write_then_kill(event, dest):
        path = original(event, dest)
        written.append(path)
        if len(written) == 3:
            orthanc.kill()
        return path

    monkeypatch.setattr(dimse, "_write_instance", write_then_kill)
    spec = f"{orthanc.dimse_spec}?calling={OUR_AET}"
    with pytest.raises(PacsError) as info:
        retrieve_to_cache(spec, study_uid=study_uid)
    assert orthanc.dimse_spec in str(info.value)
    assert 3 <= len(written) < 80
    _assert_clean(str(info.value))
