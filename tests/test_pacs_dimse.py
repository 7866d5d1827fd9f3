"""DIMSE against a real Orthanc on 127.0.0.1: C-FIND, C-GET into the cache, C-STORE, refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import mprviewer
from mprviewer.pacs import (
    PacsAuthError,
    PacsCancelled,
    PacsConnectionError,
    PacsNotFoundError,
    StudyQuery,
    cache,
    dicomweb,
    dimse,
    parse_server,
    retrieve_to_cache,
    search_series,
    search_studies,
    send_datasets,
)
from tests.orthanc import Orthanc, free_port
from tests.pacs_data import SeriesOnDisk, ct_series, module_home

OUR_AET = "MPRTEST"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Peer:
    orthanc: Orthanc
    ct: SeriesOnDisk
    mr: SeriesOnDisk

    @property
    def spec(self) -> str:
        return f"{self.orthanc.dimse_spec}?calling={OUR_AET}"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory):
    with module_home(tmp_path_factory):
        data = tmp_path_factory.mktemp("dimse-data")
        ct = ct_series(data / "ct", slices=12, size=48, seed="dimse-ct")
        mr = ct_series(data / "mr", slices=3, size=16, seed="dimse-mr", modality="MR",
                       patient=("SMITH^JOHN", "P-002"), accession="ACC-MR-1", date="20230610")
        # Orthanc answers C-FIND/C-GET only for AE titles it knows
        with Orthanc(modalities={"viewer": (OUR_AET, free_port())}) as orthanc:
            orthanc.upload([*ct.files, *mr.files])
            yield Peer(orthanc, ct, mr)


def _volume(folder) -> object:
    study = mprviewer.open_study(str(folder))
    try:
        [series] = study.series
        return series.load()
    finally:
        study.close()


def test_c_find_studies_and_series(peer: Peer) -> None:
    def uids(**filters: str) -> set[str]:
        return {s.study_uid for s in search_studies(peer.spec, StudyQuery(**filters))}

    assert uids() == {peer.ct.study_uid, peer.mr.study_uid}
    assert uids(patient_name="doe") == {peer.ct.study_uid}
    assert uids(patient_name="SMITH^J*") == {peer.mr.study_uid}
    assert uids(modality="MR") == {peer.mr.study_uid}
    assert uids(date="20240101-") == {peer.ct.study_uid}
    assert uids(accession="ACC-MR-1", modality="CT") == set()
    [ct] = search_studies(peer.spec, StudyQuery(patient_id="P-001"))
    assert (ct.patient_name, ct.modalities, ct.num_instances) == ("DOE^JANE", ["CT"], 12)
    [series] = search_series(peer.spec, peer.ct.study_uid)
    assert (series.series_uid, series.modality, series.num_instances) == (
        peer.ct.series_uid, "CT", 12)


def test_c_get_into_the_cache_equals_the_files(peer: Peer) -> None:
    seen: list[tuple[int, int]] = []
    folder = retrieve_to_cache(peer.spec, progress=lambda d, t: seen.append((d, t)),
                               study_uid=peer.ct.study_uid)
    assert len(list((folder / "1 CT test series").glob("*.dcm"))) == 12
    assert seen[0] == (0, 12) and seen[-1] == (12, 12)
    from_pacs = _volume(folder)
    from_disk = _volume(peer.ct.folder)
    assert np.array_equal(from_pacs.array, from_disk.array)
    assert np.array_equal(from_pacs.array, peer.ct.array)
    np.testing.assert_allclose(from_pacs.affine, from_disk.affine)
    # the same study asked for again comes from the cache
    assert retrieve_to_cache(peer.spec, study_uid=peer.ct.study_uid) == folder


def test_c_get_of_one_series(peer: Peer) -> None:
    folder = retrieve_to_cache(peer.spec, study_uid=peer.mr.study_uid,
                               series_uid=peer.mr.series_uid)
    assert [p.name for p in folder.iterdir()] == ["1 MR test series"]
    assert sorted(p.name for p in (folder / "1 MR test series").iterdir()) == sorted(
        f"{_sop(p)}.dcm" for p in peer.mr.files)


def _sop(path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_c_get_cancel_keeps_nothing(peer: Peer) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 2:
            cancel.set()

    with pytest.raises(PacsCancelled):
        retrieve_to_cache(peer.spec, progress=progress, cancel=cancel,
                          study_uid=peer.ct.study_uid, refresh=True)
    assert cache.entries() == [] and not list(cache.cache_root().glob(".partial-*"))


def test_c_store_then_found(peer: Peer) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(peer.mr.files[0])
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = "sent back"
    ds.SeriesNumber = 77
    assert send_datasets(peer.spec, [ds]) == 1
    found = {s.series_uid: s for s in search_series(peer.spec, peer.mr.study_uid)}
    assert found[str(ds.SeriesInstanceUID)].description == "sent back"
    assert found[str(ds.SeriesInstanceUID)].num_instances == 1


def test_unknown_study(peer: Peer) -> None:
    with pytest.raises(PacsNotFoundError, match=r"has no study 9\.9\.9"):
        retrieve_to_cache(peer.spec, study_uid="9.9.9")


def test_wrong_called_ae_title_is_rejected(peer: Peer) -> None:
    wrong = f"dimse://NOTORTHANC@127.0.0.1:{peer.orthanc.dicom_port}?calling={OUR_AET}"
    with pytest.raises(PacsAuthError, match="rejected the association") as info:
        search_studies(wrong)
    assert f"dimse://NOTORTHANC@127.0.0.1:{peer.orthanc.dicom_port}" in str(info.value)


def test_reject_read_as_reject_when_the_socket_closes_first(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orthanc closes right after A-ASSOCIATE-RJ; a slow requestor must still report a reject."""
    import time

    from pynetdicom.acse import ACSE

    send_request = ACSE.send_request

    def slow_send_request(self: ACSE) -> None:
        send_request(self)
        time.sleep(0.5)  # the peer answers and hangs up before pynetdicom looks again

    monkeypatch.setattr(ACSE, "send_request", slow_send_request)
    wrong = f"dimse://NOTORTHANC@127.0.0.1:{peer.orthanc.dicom_port}?calling={OUR_AET}"
    with pytest.raises(PacsAuthError, match="rejected the association"):
        search_studies(wrong)


def test_unknown_calling_ae_title_is_refused(peer: Peer) -> None:
    stranger = f"{peer.orthanc.dimse_spec}?calling=STRANGER"
    with pytest.raises(PacsAuthError, match="our AE title 'STRANGER'") as info:
        retrieve_to_cache(stranger, study_uid=peer.ct.study_uid)
    assert peer.orthanc.dimse_spec in str(info.value)
    assert cache.entries() == []


def test_nothing_listening(peer: Peer) -> None:
    server = parse_server(f"dimse://ORTHANC@127.0.0.1:{free_port()}")
    server = server.__class__(**{**server.__dict__, "timeout": 3.0})
    with pytest.raises(PacsConnectionError, match="cannot reach"):
        dimse.search_studies(server)


# --- the `mprviewer` command over DIMSE ---------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess:
    """``python -m mprviewer ARGS`` as a user runs it (no PACS settings from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPRVIEWER_PACS_")}
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL)


def _search_json(peer: Peer, *filters: str) -> list[dict]:
    found = _run("pacs", "search", "--server", peer.spec, *filters, "--json")
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def test_cli_search_by_patient_id_and_accession(peer: Peer) -> None:
    ct = {"study_uid": peer.ct.study_uid, "patient_name": "DOE^JANE", "patient_id": "P-001",
          "accession": "ACC-CT-1", "date": "20240115"}
    mr = {"study_uid": peer.mr.study_uid, "patient_name": "SMITH^JOHN", "patient_id": "P-002",
          "accession": "ACC-MR-1", "date": "20230610"}

    def studies(*filters: str) -> list[dict]:
        return [{k: r[k] for k in ct} for r in _search_json(peer, *filters)]

    assert studies() == [ct, mr]  # newest first
    assert studies("--patient-id", "P-002") == [mr]
    assert studies("--patient-id", "P-001") == [ct]
    assert studies("--accession", "ACC-CT-1") == [ct]
    assert studies("--accession", "ACC-MR-1") == [mr]
    assert studies("--patient-id", "P-001", "--accession", "ACC-MR-1") == []
    assert studies("--patient-id", "P-003") == []
    [record] = _search_json(peer, "--accession", "ACC-CT-1", "--series")
    assert (record["modalities"], record["num_instances"]) == (["CT"], 12)
    assert [(s["series_uid"], s["modality"], s["num_instances"]) for s in record["series"]] == [
        (peer.ct.series_uid, "CT", 12)]


def test_cli_retrieve_over_dimse_fills_the_cache(peer: Peer) -> None:
    result = _run("pacs", "retrieve", "--server", peer.spec, "--study", peer.ct.study_uid)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder.parent == cache.cache_root()
    assert cache.lookup(parse_server(peer.spec).cache_key, peer.ct.study_uid) == folder
    assert [p.name for p in folder.iterdir()] == ["1 CT test series"]
    assert sorted(p.name for p in (folder / "1 CT test series").iterdir()) == sorted(
        f"{_sop(p)}.dcm" for p in peer.ct.files)
    from_pacs = _volume(folder)
    from_disk = _volume(peer.ct.folder)
    assert np.array_equal(from_pacs.array, from_disk.array)
    assert np.array_equal(from_pacs.array, peer.ct.array)
    np.testing.assert_allclose(from_pacs.affine, from_disk.affine)
    assert from_pacs.sop_instance_uids == from_disk.sop_instance_uids


def test_cli_annotations_send_by_c_store(peer: Peer, tmp_path) -> None:
    """`mprviewer annotations send marks.json --server dimse://...`: the study comes by C-GET,
    the KOS goes back by C-STORE, and C-FIND finds it in the marked study."""
    from mprviewer.model.annotation_files import to_json_text
    from mprviewer.model.annotations import AnnotationSet, SeriesRef

    volume = _volume(peer.mr.folder)
    ref = SeriesRef.from_volume(volume, name="MR test series")
    marks = AnnotationSet(study_uid=peer.mr.study_uid)
    marks.mark(ref, "axial", [0, 2], "Lesion")
    expected = {ref.sop_instance_uids[0], ref.sop_instance_uids[2]}
    json_path = tmp_path / "marks.json"
    json_path.write_text(to_json_text(marks))
    before = {s.series_uid for s in search_series(peer.spec, peer.mr.study_uid)}

    sent = _run("annotations", "send", str(json_path), "--server", peer.spec)
    assert sent.returncode == 0, sent.stderr
    match = re.fullmatch(r"stored key object document referencing 2 images \(([0-9.]+)\) on "
                         + re.escape(peer.orthanc.dimse_spec), sent.stdout.strip())
    assert match, sent.stdout

    new = [s for s in search_series(peer.spec, peer.mr.study_uid) if s.series_uid not in before]
    assert [(s.modality, s.num_instances) for s in new] == [("KO", 1)]
    # what the server holds (read back over its DICOMweb side) references the marked images
    client = dicomweb.make_client(parse_server(peer.orthanc.dicomweb_url))
    stored = client.retrieve_instance(peer.mr.study_uid, new[0].series_uid, match[1])
    assert str(stored.SOPClassUID) == "1.2.840.10008.5.1.4.1.1.88.59"
    [evidence] = stored.CurrentRequestedProcedureEvidenceSequence
    [series] = evidence.ReferencedSeriesSequence
    assert str(series.SeriesInstanceUID) == peer.mr.series_uid
    assert {str(i.ReferencedSOPInstanceUID) for i in series.ReferencedSOPSequence} == expected
