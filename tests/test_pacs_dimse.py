"""DIMSE against a real Orthanc on 127.0.0.1: C-FIND, C-GET into the cache, C-STORE, refusals."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

import mprviewer
from mprviewer.io.pacs import (
    PacsAuthError,
    PacsCancelled,
    PacsConnectionError,
    PacsNotFoundError,
    StudyQuery,
    cache,
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
    assert len(list(folder.glob("*.dcm"))) == 12
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
    assert sorted(p.name for p in folder.iterdir()) == sorted(
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
