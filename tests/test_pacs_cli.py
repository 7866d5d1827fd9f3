"""The pacs command and annotations send, in a subprocess, against a real Orthanc."""

from __future__ import annotations

import http.server
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

import mprviewer
from mprviewer.pacs import cache, dicomweb, parse_server, search_series, study_url
from tests.local_http import send_html, serving
from tests.orthanc import Orthanc, free_port
from tests.pacs_data import ct_series, module_home

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "alice", "s3cret-cli-pw"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    with module_home(tmp_path_factory):
        ct = ct_series(tmp_path_factory.mktemp("cli-ct"), slices=5, size=16, seed="cli-ct")
        with Orthanc() as orthanc:
            orthanc.upload(ct.files)
            yield orthanc, ct


def _run(*args: str, module: str = "mprviewer", input: str | None = None,
         ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPRVIEWER_PACS_")}
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60, **stdin)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mprviewer: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_search_table_and_json(served) -> None:
    orthanc, ct = served
    table = _run("pacs", "search", "--server", orthanc.dicomweb_url, "--patient", "doe",
                 "--series")
    assert table.returncode == 0, table.stderr
    header, study_row, _series_header, series_row = table.stdout.strip().splitlines()
    assert header.split()[:3] == ["Date", "Patient", "Patient"]
    assert study_row.split()[:4] == ["2024-01-15", "DOE^JANE", "P-001", "ACC-CT-1"]
    assert study_row.split()[-1] == ct.study_uid
    assert series_row.split()[-1] == ct.series_uid and series_row.split()[2] == "5"
    found = _run("pacs", "search", "--server", orthanc.dicomweb_url, "--modality", "CT",
                 "--date", "20240101-20241231", "--json")
    assert found.returncode == 0, found.stderr
    records = json.loads(found.stdout)
    assert [(r["study_uid"], r["num_instances"]) for r in records] == [(ct.study_uid, 5)]
    none = _run("pacs", "search", "--server", orthanc.dicomweb_url, "--modality", "MR",
                "--json")
    assert none.returncode == 0 and json.loads(none.stdout) == []


def test_search_through_dimse_needs_a_known_ae_title(served) -> None:
    orthanc, _ct = served
    refused = _run("pacs", "search", "--server", orthanc.dimse_spec)
    line = _one_line_error(refused)
    assert "MPRVIEWER" in line and orthanc.dimse_spec in line


def test_retrieve_prints_the_cached_folder(served) -> None:
    orthanc, ct = served
    result = _run("pacs", "retrieve", "--server", orthanc.dicomweb_url, "--study", ct.study_uid)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert [p.name for p in folder.iterdir()] == ["1 CT test series"]  # filed by series
    assert len(list((folder / "1 CT test series").glob("*.dcm"))) == 5
    study = mprviewer.open_study(str(folder))
    try:
        assert [s.uid for s in study.series] == [ct.series_uid]
    finally:
        study.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["search", "--server", "http://127.0.0.1:{port}/dicom-web"], "connection refused"),
        (["search", "--server", "http://u:topsecret@127.0.0.1:{port}/dicom-web"], "refused"),
        (["search", "--server", "{orthanc}", "--date", "yesterday"], "YYYYMMDD"),
        (["retrieve", "--server", "{orthanc}", "--study", "1.2.3.4"], "has no study 1.2.3.4"),
        (["search", "--server", "gopher://host/x"], "unknown scheme"),
    ],
)
def test_errors_exit_3_with_one_line(served, args: list[str], words: str) -> None:
    orthanc, _ct = served
    filled = [a.format(port=free_port(), orthanc=orthanc.dicomweb_url) for a in args]
    line = _one_line_error(_run("pacs", *filled))
    assert words in line and "topsecret" not in line


def test_usage_errors_exit_2(served) -> None:
    assert _run("pacs", "search").returncode == 2  # no server
    assert _run("pacs", "retrieve", "--server", "x").returncode == 2  # no --study


def test_saved_server_by_name(served, tmp_path) -> None:
    orthanc, ct = served
    added = _run("pacs", "servers", "add", "lab", orthanc.dicomweb_url)
    assert added.returncode == 0, added.stderr
    listed = _run("pacs", "servers", "list")
    assert listed.stdout.splitlines()[1].split()[:2] == ["lab", orthanc.dicomweb_url]
    found = _run("pacs", "search", "--server", "lab", "--json")
    assert [r["study_uid"] for r in json.loads(found.stdout)] == [ct.study_uid]


def _send(*args: str) -> subprocess.CompletedProcess:
    return _run("send", *args, module="mprviewer.commands._annotations_send")


def test_annotations_send_kos_file_and_json(served, tmp_path) -> None:
    from mprviewer.io.kos import write_kos
    from mprviewer.model.annotation_files import to_json_text
    from mprviewer.model.annotations import AnnotationSet, SeriesRef

    orthanc, ct = served
    study = mprviewer.open_study(str(ct.folder))
    try:
        [series] = study.series
        ref = SeriesRef.from_volume(series.load(), name=series.name, study_attributes={
            "PatientName": "DOE^JANE", "PatientID": "P-001"})
    finally:
        study.close()
    marks = AnnotationSet(study_uid=ct.study_uid)
    marks.mark(ref, "axial", [0, 3], "Nodule")

    kos_path = tmp_path / "kos.dcm"
    write_kos(marks, [ref], kos_path)
    sent = _send(str(kos_path), "--server", orthanc.dicomweb_url)
    assert sent.returncode == 0, sent.stderr
    assert "referencing 2 images" in sent.stdout

    json_path = tmp_path / "marks.json"
    json_path.write_text(to_json_text(marks))
    sent = _send(str(json_path), "--server", orthanc.dicomweb_url, "--save",
                 str(tmp_path / "built.dcm"))
    assert sent.returncode == 0, sent.stderr
    assert "referencing 2 images" in sent.stdout and (tmp_path / "built.dcm").exists()

    key_objects = [s for s in search_series(orthanc.dicomweb_url, ct.study_uid)
                   if s.modality == "KO"]
    assert len(key_objects) == 2 and all(s.num_instances == 1 for s in key_objects)

    line = _one_line_error(_send(str(kos_path), "--server",
                                 f"http://127.0.0.1:{free_port()}/dicom-web"))
    assert "storing instances" in line


# --- the real `mprviewer` entry, info on a study URL, search filters ----------------------------


def _ct_marks(ct, slices: list[int]):
    """Marks on the CT series, and the SOP instance UIDs of the marked images."""
    from mprviewer.model.annotations import AnnotationSet, SeriesRef

    study = mprviewer.open_study(str(ct.folder))
    try:
        [series] = study.series
        ref = SeriesRef.from_volume(series.load(), name=series.name)
    finally:
        study.close()
    marks = AnnotationSet(study_uid=ct.study_uid)
    marks.mark(ref, "axial", slices, "Nodule")
    return marks, {ref.sop_instance_uids[s] for s in slices}


def _referenced_sops(ds) -> set[str]:
    return {str(item.ReferencedSOPInstanceUID)
            for study in ds.get("CurrentRequestedProcedureEvidenceSequence", [])
            for series in study.get("ReferencedSeriesSequence", [])
            for item in series.get("ReferencedSOPSequence", [])}


def _delete_instance(orthanc: Orthanc, sop_uid: str) -> None:
    """Remove an instance through Orthanc's REST API (keeps the module's study as uploaded)."""
    found = requests.post(f"{orthanc.http_url}/tools/lookup", data=sop_uid, auth=orthanc.auth,
                          timeout=10)
    found.raise_for_status()
    for hit in found.json():
        requests.delete(f"{orthanc.http_url}/instances/{hit['ID']}", auth=orthanc.auth,
                        timeout=10).raise_for_status()


def test_annotations_send_through_the_mprviewer_command(served, tmp_path) -> None:
    """`python -m mprviewer annotations send marks.json --server URL`, as a user types it: the
    study is fetched from the server, and the stored KOS references exactly the marked images."""
    from mprviewer.model.annotation_files import to_json_text

    orthanc, ct = served
    marks, expected = _ct_marks(ct, [1, 4])
    json_path = tmp_path / "marks.json"
    json_path.write_text(to_json_text(marks))
    sent = _run("annotations", "send", str(json_path), "--server", orthanc.dicomweb_url)
    assert sent.returncode == 0, sent.stderr
    match = re.fullmatch(r"stored key object document referencing 2 images \(([0-9.]+)\) on "
                         + re.escape(orthanc.dicomweb_url), sent.stdout.strip())
    assert match, sent.stdout
    sop_uid = match[1]
    try:
        client = dicomweb.make_client(parse_server(orthanc.dicomweb_url))
        [hit] = client.search_for_instances(study_instance_uid=ct.study_uid,
                                            search_filters={"SOPInstanceUID": sop_uid})
        series_uid = hit["0020000E"]["Value"][0]
        listed = {s.series_uid: s for s in search_series(orthanc.dicomweb_url, ct.study_uid)}
        assert (listed[series_uid].modality, listed[series_uid].num_instances) == ("KO", 1)
        stored = client.retrieve_instance(ct.study_uid, series_uid, sop_uid)
        assert _referenced_sops(stored) == expected
        [evidence] = stored.CurrentRequestedProcedureEvidenceSequence
        assert [str(s.SeriesInstanceUID) for s in evidence.ReferencedSeriesSequence] == [
            ct.series_uid]
    finally:
        _delete_instance(orthanc, sop_uid)


def test_info_on_a_dicomweb_study_url(served) -> None:
    orthanc, ct = served
    url = study_url(orthanc.dicomweb_url, ct.study_uid)
    table = _run("info", url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"{url}: 1 series"
    row = lines[2].split()
    assert row[0] == "0" and "16x16x5" in row and "CT" in row
    assert lines[3].split() == ["uid", ct.series_uid]
    as_json = _run("info", url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert (info["source"], info["study_uid"]) == (url, ct.study_uid)
    assert [(s["uid"], s["size"], s["modality"]) for s in info["series"]] == [
        (ct.series_uid, [16, 16, 5], "CT")]
    assert info["series"][0]["spacing"] == pytest.approx([0.7, 0.8, 2.5])


def _search_json(server: str, *filters: str) -> list[dict]:
    found = _run("pacs", "search", "--server", server, *filters, "--json")
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def test_search_by_patient_id_and_accession(served) -> None:
    orthanc, ct = served
    url = orthanc.dicomweb_url
    # (the study's series count changes as other tests store key objects in it)
    known = {"study_uid": ct.study_uid, "patient_name": "DOE^JANE", "patient_id": "P-001",
             "accession": "ACC-CT-1", "date": "20240115"}
    for filters in (["--patient-id", "P-001"], ["--accession", "ACC-CT-1"],
                    ["--patient-id", "P-001", "--accession", "ACC-CT-1"]):
        [record] = _search_json(url, *filters)
        assert {k: record[k] for k in known} == known, filters
        assert "CT" in record["modalities"]
    assert _search_json(url, "--patient-id", "P-002") == []
    assert _search_json(url, "--accession", "ACC-CT-2") == []
    assert _search_json(url, "--patient-id", "P-001", "--accession", "ACC-MR-1") == []


# --- a server that forbids access ---------------------------------------------------------------


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """Answers every request with 403 and an HTML page, as a hospital proxy would."""

    def _forbid(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        send_html(self, 403, b"<html><body><h1>403 Forbidden</h1></body></html>")

    do_GET = do_POST = _forbid

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def forbidding():
    with serving(_Forbidden) as url:
        yield f"{url}/dicom-web"


def test_http_403_names_the_server_and_the_refusal(forbidding, served) -> None:
    _orthanc, ct = served
    with_password = forbidding.replace("http://", "http://u:topsecret@")
    attempts = {
        "searching studies": ("pacs", "search", "--server", with_password),
        f"listing the instances of study {ct.study_uid}": (
            "pacs", "retrieve", "--server", forbidding, "--study", ct.study_uid),
        "storing instances (STOW-RS)": (
            "annotations", "send", str(ct.files[0]), "--server", with_password),
    }
    for doing, args in attempts.items():
        line = _one_line_error(_run(*args))
        assert line == (f"mprviewer: {forbidding} forbids this (HTTP 403 Forbidden) while "
                        f"{doing}: the account lacks the right to do it"), line
    assert cache.entries() == [] and not list(cache.cache_root().glob(".partial-*"))


# --- credentials saved with the server ----------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    """An Orthanc that wants HTTP basic credentials, holding one small CT study."""
    with module_home(tmp_path_factory):
        ct = ct_series(tmp_path_factory.mktemp("cli-secure"), slices=3, size=16,
                       seed="cli-secure")
        with Orthanc(users={USER: PASSWORD}) as orthanc:
            orthanc.upload(ct.files)
            yield orthanc, ct


def test_credentials_saved_with_the_server(secured) -> None:
    orthanc, ct = secured
    url = orthanc.dicomweb_url
    outputs: list[str] = []

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        result = _run(*args, input=input)
        outputs.extend([result.stdout, result.stderr])
        return result

    # the server really wants them: without credentials it refuses
    refused = run("pacs", "search", "--server", url)
    assert "HTTP 401" in _one_line_error(refused)

    added = run("pacs", "servers", "add", "secure", url, "--user", USER, "--password-stdin",
                input=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    config = Path(os.environ["MPRVIEWER_HOME"]) / "pacs.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    [entry] = json.loads(config.read_text())["servers"]
    assert (entry["name"], entry["url"], entry["username"]) == ("secure", url, USER)

    listed = run("pacs", "servers", "list")
    assert listed.stdout.splitlines()[1].split() == ["secure", url, USER, "password"]

    found = run("pacs", "search", "--server", "secure", "--json")
    assert found.returncode == 0, found.stderr
    assert [(r["study_uid"], r["num_instances"]) for r in json.loads(found.stdout)] == [
        (ct.study_uid, 3)]
    retrieved = run("pacs", "retrieve", "--server", "secure", "--study", ct.study_uid)
    assert retrieved.returncode == 0, retrieved.stderr
    study = mprviewer.open_study(retrieved.stdout.strip())
    try:
        [series] = study.series
        assert np.array_equal(series.load().array, ct.array)
    finally:
        study.close()

    # a wrong saved password is refused, and named as the credentials' fault
    wrong = run("pacs", "servers", "add", "secure", url, "--user", USER, "--password-stdin",
                input="wrong-pw\n")
    assert wrong.returncode == 0, wrong.stderr
    line = _one_line_error(run("pacs", "search", "--server", "secure"))
    assert "HTTP 401" in line and f"secure ({url})" in line and "check the user name" in line

    assert all(PASSWORD not in text and "wrong-pw" not in text for text in outputs)


def test_a_terminal_is_asked_for_credentials_on_401(secured) -> None:
    """At a terminal, a server that answers 401 gets one prompt for user and password; the
    password is not echoed and the search then succeeds."""
    import pty
    import select
    import time

    orthanc, _ct = secured
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPRVIEWER_PACS_")}
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mprviewer", "pacs", "search", "--server", orthanc.dicomweb_url],
        stdin=child, stdout=subprocess.PIPE, stderr=child, env=env, cwd=ROOT,
        start_new_session=True)  # no controlling terminal: getpass uses this pty, not ours
    os.close(child)
    seen = b""

    def read_until(text: bytes, timeout: float = 30.0) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < end, f"no {text!r} in {seen!r}"
            if select.select([main], [], [], 0.2)[0]:
                try:
                    seen += os.read(main, 4096)
                except OSError:  # the child closed the terminal
                    break

    try:
        read_until(b"User [")
        os.write(main, USER.encode() + b"\n")
        read_until(b"Password:")
        os.write(main, PASSWORD.encode() + b"\n")
        out, _ = proc.communicate(timeout=60)
        read_until(b"", timeout=1)
    finally:
        proc.kill()
        os.close(main)
    assert proc.returncode == 0, seen.decode(errors="replace")
    assert b"asks for a user name and password" in seen
    assert b"DOE^JANE" in out and b"User [" not in out  # results on stdout, prompts not
    assert PASSWORD.encode() not in seen + out  # not echoed, not printed
