"""The pacs command and annotations send, in a subprocess, against a real Orthanc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mprviewer
from mprviewer.io.pacs import search_series
from tests.orthanc import Orthanc, free_port
from tests.pacs_data import ct_series, module_home

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    with module_home(tmp_path_factory):
        ct = ct_series(tmp_path_factory.mktemp("cli-ct"), slices=5, size=16, seed="cli-ct")
        with Orthanc() as orthanc:
            orthanc.upload(ct.files)
            yield orthanc, ct


def _run(*args: str, module: str = "mprviewer") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPRVIEWER_PACS_")}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL)


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
    assert folder.is_dir() and len(list(folder.glob("*.dcm"))) == 5
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
