"""PACS pieces that need no server: server specs, credentials, study URLs, queries, the cache."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from mprviewer.errors import DicomError
from mprviewer.pacs import cache
from mprviewer.pacs.errors import PacsError
from mprviewer.pacs.results import StudyQuery, normalize_date
from mprviewer.pacs.servers import (
    Server,
    describe,
    parse_server,
    remove_saved_server,
    save_server,
    saved_servers,
)
from mprviewer.pacs.urls import is_dicomweb_study_url, parse_study_url, study_url

STUDY = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
SERIES = "1.2.840.113619.2.55.3.604688119.969.1268071029.321"


@pytest.fixture(autouse=True)
def _no_pacs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MPRVIEWER_PACS_USER", "MPRVIEWER_PACS_PASSWORD", "MPRVIEWER_PACS_TOKEN",
                 "MPRVIEWER_PACS_AET", "MPRVIEWER_PACS_CACHE_MB"):
        monkeypatch.delenv(name, raising=False)


def test_dicomweb_spec_keeps_root_and_hides_credentials() -> None:
    server = parse_server("https://alice:pa%40ss@pacs.example.org:8443/dicom-web/")
    assert server.kind == "dicomweb"
    assert server.url == "https://pacs.example.org:8443/dicom-web"
    assert (server.host, server.port) == ("pacs.example.org", 8443)
    assert (server.username, server.password) == ("alice", "pa@ss")
    for text in (server.label, str(server), repr(server), json.dumps(describe(server))):
        assert "pa@ss" not in text and "pa%40ss" not in text
    assert describe(server)["password"] == "set"


def test_dimse_spec_with_and_without_calling_aet() -> None:
    server = parse_server("dimse://ORTHANC@127.0.0.1:4242")
    assert (server.kind, server.called_aet, server.host, server.port) == (
        "dimse", "ORTHANC", "127.0.0.1", 4242)
    assert server.calling_aet == "MPRVIEWER"
    assert server.address == "dimse://ORTHANC@127.0.0.1:4242"
    mine = parse_server("dimse://ORTHANC@127.0.0.1:4242?calling=READER1")
    assert mine.calling_aet == "READER1"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("ftp://host/dicom-web", "unknown scheme"),
        ("dimse://127.0.0.1:104", "AE title"),
        ("dimse://ORTHANC@127.0.0.1", "no port"),
        ("dimse://A_TITLE_LONGER_THAN_16@host:104", "not valid"),
        ("http://host:99999/dicom-web", "invalid port"),
        ("no-such-saved-server", "not a saved server"),
        ("", "no server"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, words: str) -> None:
    with pytest.raises(PacsError, match=words) as info:
        parse_server(spec)
    assert isinstance(info.value, DicomError)


def test_environment_fills_credentials_but_never_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRVIEWER_PACS_USER", "bob")
    monkeypatch.setenv("MPRVIEWER_PACS_PASSWORD", "env-secret")
    server = parse_server("http://127.0.0.1:8042/dicom-web")
    assert (server.username, server.password) == ("bob", "env-secret")
    own = parse_server("http://carol:own@127.0.0.1:8042/dicom-web")
    assert (own.username, own.password) == ("carol", "own")
    monkeypatch.setenv("MPRVIEWER_PACS_TOKEN", "tok")
    assert parse_server("http://127.0.0.1:8042/dicom-web").token == "tok"
    assert "env-secret" not in repr(server) and "tok" not in server.label


def test_saved_servers_round_trip_owner_only_file() -> None:
    web = parse_server("http://127.0.0.1:8042/dicom-web", name="lab", use_env=False)
    save_server(web.with_credentials("alice", "s3cret"))
    save_server(parse_server("dimse://PACS@10.0.0.5:104?calling=ME", name="hospital"))
    from mprviewer.pacs.servers import config_path

    mode = stat.S_IMODE(os.stat(config_path()).st_mode)
    assert mode == 0o600
    by_name = {s.name: s for s in saved_servers()}
    assert set(by_name) == {"lab", "hospital"}
    assert (by_name["lab"].username, by_name["lab"].password) == ("alice", "s3cret")
    assert by_name["hospital"].calling_aet == "ME"
    resolved = parse_server("lab")
    assert resolved.url == "http://127.0.0.1:8042/dicom-web" and resolved.password == "s3cret"
    assert resolved.label == "lab (http://127.0.0.1:8042/dicom-web)"
    save_server(web)  # replacing by name keeps one entry
    assert [s.name for s in saved_servers()].count("lab") == 1
    assert remove_saved_server("lab") and not remove_saved_server("lab")
    assert [s.name for s in saved_servers()] == ["hospital"]


def test_broken_settings_file_is_named(tmp_path) -> None:
    from mprviewer.pacs.servers import config_path

    config_path().write_text("{not json")
    with pytest.raises(PacsError, match=r"pacs\.json"):
        parse_server("lab")


def test_study_urls() -> None:
    ref = parse_study_url(f"http://127.0.0.1:8042/dicom-web/studies/{STUDY}")
    assert ref is not None
    assert (ref.root, ref.study_uid, ref.series_uid) == (
        "http://127.0.0.1:8042/dicom-web", STUDY, None)
    ref = parse_study_url(f"https://h/dicomweb/studies/{STUDY}/series/{SERIES}/")
    assert ref is not None and (ref.root, ref.series_uid) == ("https://h/dicomweb", SERIES)
    assert study_url("https://h/dicomweb/", STUDY, SERIES) == (
        f"https://h/dicomweb/studies/{STUDY}/series/{SERIES}")
    assert is_dicomweb_study_url(f"http://h/studies/{STUDY}")
    for other in (
        "http://example.org/study.zip",
        f"ftp://h/dicom-web/studies/{STUDY}",
        f"http://h/dicom-web/studies/{STUDY}/instances/1.2",
        "http://h/dicom-web/studies/not-a-uid",
        "/local/folder",
        None,
    ):
        assert not is_dicomweb_study_url(other), other


def test_query_filters() -> None:
    query = StudyQuery(patient_name="doe", patient_id="P1", modality="ct",
                       date="2024-01-01..2024-12-31", accession="A7")
    assert query.filters() == {
        "PatientName": "doe*", "PatientID": "P1", "ModalitiesInStudy": "CT",
        "StudyDate": "20240101-20241231", "AccessionNumber": "A7",
    }
    assert StudyQuery(patient_name="DOE^J?NE").filters() == {"PatientName": "DOE^J?NE"}
    assert normalize_date("-20241231") == "-20241231"
    assert normalize_date("20240101-") == "20240101-"
    with pytest.raises(PacsError, match="not a calendar date"):
        StudyQuery(date="20241301")
    with pytest.raises(PacsError, match="YYYYMMDD"):
        StudyQuery(date="last week")


def test_cache_commits_complete_entries_only() -> None:
    with cache.writing("srv", "1.2.3") as pending:
        (pending.folder / "x.dcm").write_bytes(b"1234")
    assert pending.path is not None and pending.path.is_dir()
    assert cache.lookup("srv", "1.2.3") == pending.path
    assert [p.name for p in pending.path.iterdir()] == ["x.dcm"]  # nothing but the files
    info = json.loads((pending.path.parent / f"{pending.path.name}.json").read_text())
    assert (info["study_uid"], info["files"], info["size"]) == ("1.2.3", 1, 4)

    with pytest.raises(RuntimeError), cache.writing("srv", "4.5.6") as failing:
        (failing.folder / "y.dcm").write_bytes(b"partial")
        raise RuntimeError("connection lost")
    assert cache.lookup("srv", "4.5.6") is None
    assert not failing.folder.exists()
    assert sorted(p.name for p in cache.cache_root().iterdir()) == sorted(
        [pending.path.name, f"{pending.path.name}.json"])
    # the key depends on server, study and series
    assert len({cache.entry_key("a", "1"), cache.entry_key("b", "1"),
                cache.entry_key("a", "1", "2")}) == 3


def test_cache_evicts_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRVIEWER_PACS_CACHE_MB", str(2500 / (1024 * 1024)))  # 2500 bytes
    paths = {}
    for n, uid in enumerate(("1.1", "2.2", "3.3")):
        with cache.writing("srv", uid) as pending:
            (pending.folder / "f.dcm").write_bytes(b"\0" * 1000)
        paths[uid] = pending.path
        os.utime(pending.path, (time.time() - 100 + n, time.time() - 100 + n))
    # three entries of 1000 bytes do not fit in 2500: the oldest (1.1) went when 3.3 came
    assert cache.lookup("srv", "1.1") is None
    assert cache.lookup("srv", "2.2") == paths["2.2"]  # used now: the newest
    with cache.writing("srv", "4.4") as pending:
        (pending.folder / "f.dcm").write_bytes(b"\0" * 1000)
    remaining = {e.info["study_uid"] for e in cache.entries()}
    assert remaining == {"2.2", "4.4"}
    assert sum(e.size for e in cache.entries()) <= 2500


def test_stale_partial_folders_are_removed() -> None:
    root = cache.cache_root()
    dead = root / ".partial-999999999-abc"  # no such process
    dead.mkdir()
    (dead / "half.dcm").write_bytes(b"x")
    alive = root / f".partial-{os.getpid()}-xyz"
    alive.mkdir()
    cache.clean_partials()
    assert not dead.exists() and alive.exists()
    assert cache.entries() == []


def test_server_equality_ignores_secrets() -> None:
    a = Server(kind="dicomweb", url="http://h/dw", username="u", password="p1")
    b = Server(kind="dicomweb", url="http://h/dw", username="u", password="p2")
    assert a == b and a.cache_key == b.cache_key == "http://h/dw"


# -- cache layout: one folder per series, named for people -------------------------------
def test_series_folder_names_are_what_a_person_reads_and_safe() -> None:
    from mprviewer.pacs.layout import series_folder_name

    assert series_folder_name(3, "Chest 2.5mm lung", "1.2.3") == "3 Chest 2.5mm lung"
    assert series_folder_name(None, "", "1.2.3") == "1.2.3"
    assert series_folder_name(7, "a/b\\c:..", "1.2") == "7 a_b_c_"
    assert series_folder_name("", "..", "1.2") == "1.2"
    assert len(series_folder_name(1, "x" * 500, "1.2")) <= 80


def test_retrieved_files_are_filed_by_series_and_load_with_those_names(tmp_path) -> None:
    import numpy as np

    import mprviewer
    from mprviewer.pacs.layout import file_by_series
    from mprviewer.synthetic.writer import make_uid, write_series

    flat = tmp_path / "entry"
    study = make_uid("layout", "study")
    for n, (seed, desc) in enumerate([("a", "Axial"), ("b", "Axial"), ("c", "Lung")]):
        write_series(flat, np.full((2, 4, 4), float(n)), study_uid=study, seed=seed,
                     series_uid=make_uid(seed, "series"), series_number=2 if n < 2 else 5,
                     description=desc, file_names=seed + "-%04d")
    (flat / "junk.dcm").write_bytes(b"not dicom")
    assert file_by_series(flat) == 3
    folders = sorted(p.name for p in flat.iterdir() if p.is_dir())
    assert folders == ["2 Axial", "2 Axial (2)", "5 Lung"]
    assert (flat / "junk.dcm").is_file()  # unreadable files stay for the loader to report
    with mprviewer.open_study(str(flat)) as opened:
        assert sorted(s.name for s in opened.series) == folders
        assert [p for p, _why in opened.skipped] and "junk.dcm" in str(opened.skipped[0][0])


def test_labels_drop_http_credentials_but_keep_ae_titles() -> None:
    from mprviewer.io.remote import url_label

    assert url_label("https://alice:pw@pacs:8042/dicom-web?x=1") == "https://pacs:8042/dicom-web?x=1"
    assert url_label("http://token@pacs/dicom-web") == "http://pacs/dicom-web"
    assert url_label("dimse://ORTHANC@pacs:4242") == "dimse://ORTHANC@pacs:4242"
    assert url_label("/data/study@home") == "/data/study@home"
    assert url_label("http://a:b@[::1") == "<invalid URL>"
