"""DICOMweb against a real Orthanc on 127.0.0.1: QIDO-RS search, WADO-RS retrieval, STOW-RS."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

import mprviewer
from mprviewer.pacs import (
    PacsCancelled,
    PacsNoImagesError,
    PacsNotFoundError,
    StudyQuery,
    cache,
    dicomweb,
    parse_server,
    retrieve_to_cache,
    search_series,
    search_studies,
    send_datasets,
    study_url,
)
from tests.orthanc import Orthanc
from tests.pacs_data import SeriesOnDisk, ct_series, extract_zip, module_home


@dataclass
class Pacs:
    orthanc: Orthanc
    ct: SeriesOnDisk
    mr: SeriesOnDisk
    demo_dir: Path
    demo_study_uid: str

    @property
    def url(self) -> str:
        return self.orthanc.dicomweb_url


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory):
    with module_home(tmp_path_factory):
        data = tmp_path_factory.mktemp("pacs-data")
        ct = ct_series(data / "ct")
        mr = ct_series(data / "mr", slices=3, size=16, seed="pacs-mr", modality="MR",
                       patient=("SMITH^JOHN", "P-002"), accession="ACC-MR-1", date="20230610")
        demo_dir = data / "demo"
        demo_files = extract_zip(mprviewer.demo_path(), demo_dir)
        demo_uid = str(pydicom.dcmread(demo_files[0], stop_before_pixels=True).StudyInstanceUID)
        with Orthanc() as orthanc:
            orthanc.upload([*ct.files, *mr.files, *demo_files])
            yield Pacs(orthanc, ct, mr, demo_dir, demo_uid)


def _load_all(source: str | Path) -> dict[str, object]:
    study = mprviewer.open_study(str(source))
    try:
        return {series.uid: series.load() for series in study.series}
    finally:
        study.close()


def test_qido_search_by_patient_modality_date_accession(pacs: Pacs) -> None:
    def uids(**filters: str) -> set[str]:
        return {s.study_uid for s in search_studies(pacs.url, StudyQuery(**filters))}

    everything = {pacs.ct.study_uid, pacs.mr.study_uid, pacs.demo_study_uid}
    assert uids() == everything
    assert uids(patient_name="doe") == {pacs.ct.study_uid}
    assert uids(patient_name="SMITH^*") == {pacs.mr.study_uid}
    assert uids(modality="MR") == {pacs.mr.study_uid}
    assert uids(modality="CT") == {pacs.ct.study_uid, pacs.demo_study_uid}
    assert uids(patient_name="doe", modality="MR") == set()
    assert uids(patient_id="P-002") == {pacs.mr.study_uid}
    assert uids(accession="ACC-CT-1") == {pacs.ct.study_uid}
    assert uids(date="20230101-20231231") == {pacs.mr.study_uid}

    [ct] = search_studies(pacs.url, StudyQuery(patient_name="doe"))
    assert (ct.patient_name, ct.patient_id, ct.date, ct.modalities) == (
        "DOE^JANE", "P-001", "20240115", ["CT"])
    assert (ct.num_series, ct.num_instances) == (1, len(pacs.ct.files))


def test_series_of_a_study(pacs: Pacs) -> None:
    [series] = search_series(pacs.url, pacs.ct.study_uid)
    assert (series.series_uid, series.modality, series.description) == (
        pacs.ct.series_uid, "CT", "CT test series")
    assert series.num_instances == len(pacs.ct.files)
    demo_series = search_series(pacs.url, pacs.demo_study_uid)
    assert len(demo_series) == 2
    assert sum(s.num_instances or 0 for s in demo_series) == 256


def test_wado_retrieval_equals_the_files_on_disk(pacs: Pacs, monkeypatch) -> None:
    seen: list[tuple[int, int]] = []
    folder = retrieve_to_cache(study_url(pacs.url, pacs.ct.study_uid),
                               progress=lambda done, total: seen.append((done, total)))
    assert folder.parent == cache.cache_root()
    assert [p.name for p in folder.iterdir()] == ["1 CT test series"]  # filed by series
    assert len(list((folder / "1 CT test series").glob("*.dcm"))) == len(pacs.ct.files)
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)

    from_pacs = _load_all(folder)[pacs.ct.series_uid]
    from_disk = _load_all(pacs.ct.folder)[pacs.ct.series_uid]
    assert np.array_equal(from_pacs.array, from_disk.array)
    np.testing.assert_allclose(from_pacs.affine, from_disk.affine)
    assert np.array_equal(from_pacs.array, pacs.ct.array)  # the known HU values

    # reopening is served by the cache, without the server
    def offline(*args, **kwargs):
        raise AssertionError("the server was contacted for a cached study")

    monkeypatch.setattr(dicomweb, "retrieve", offline)
    assert retrieve_to_cache(study_url(pacs.url, pacs.ct.study_uid)) == folder


def test_demo_study_via_wado_equals_the_zip_voxel_for_voxel(pacs: Pacs) -> None:
    folder = retrieve_to_cache(study_url(pacs.url, pacs.demo_study_uid))
    from_pacs = _load_all(folder)
    from_zip = _load_all(mprviewer.demo_path())
    assert set(from_pacs) == set(from_zip) and len(from_zip) == 2
    for uid, volume in from_zip.items():
        assert from_pacs[uid].array.shape == volume.array.shape
        assert np.array_equal(from_pacs[uid].array, volume.array)
        np.testing.assert_allclose(from_pacs[uid].affine, volume.affine)
        assert from_pacs[uid].sop_instance_uids == volume.sop_instance_uids


def test_series_url_retrieves_that_series_only(pacs: Pacs) -> None:
    demo_series = search_series(pacs.url, pacs.demo_study_uid)
    wanted = demo_series[-1]
    url = study_url(pacs.url, pacs.demo_study_uid, wanted.series_uid)
    folder = retrieve_to_cache(url)
    [series_folder] = folder.iterdir()
    assert series_folder.name == f"{wanted.number} {wanted.description}"
    assert len(list(series_folder.glob("*.dcm"))) == wanted.num_instances
    study = mprviewer.open_study(str(folder))
    try:
        assert [s.uid for s in study.series] == [wanted.series_uid]
        assert study.series[0].name == series_folder.name  # the name the server lists
    finally:
        study.close()


def test_cancel_keeps_nothing(pacs: Pacs) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 1:
            cancel.set()

    with pytest.raises(PacsCancelled, match="cancelled"):
        retrieve_to_cache(study_url(pacs.url, pacs.demo_study_uid), progress=progress,
                          cancel=cancel, refresh=True)
    assert cache.lookup(parse_server(pacs.url).cache_key, pacs.demo_study_uid) is None
    assert not list(cache.cache_root().glob(".partial-*"))


def test_unknown_study_is_named(pacs: Pacs) -> None:
    missing = "1.2.3.4.5.6.7.8.9"
    with pytest.raises(PacsNotFoundError, match=r"has no study 1\.2\.3\.4\.5\.6\.7\.8\.9") as info:
        retrieve_to_cache(study_url(pacs.url, missing))
    assert pacs.url in str(info.value)
    assert cache.entries() == []


def _kos_for_ct(pacs: Pacs, slices: list[int]):
    from mprviewer.io.kos import write_kos
    from mprviewer.model.annotations import AnnotationSet, SeriesRef

    volume = _load_all(pacs.ct.folder)[pacs.ct.series_uid]
    ref = SeriesRef.from_volume(volume, name="CT test series", study_attributes={
        "PatientName": "DOE^JANE", "PatientID": "P-001", "StudyDate": "20240115"})
    marks = AnnotationSet(study_uid=pacs.ct.study_uid)
    marks.mark(ref, "axial", slices, "Anomaly")
    kos = write_kos(marks, [ref])
    expected = {ref.sop_instance_uids[s] for s in slices}
    return kos, expected


def _referenced_sops(ds) -> set[str]:
    found = set()
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.get("ReferencedSeriesSequence", []):
            for item in series.get("ReferencedSOPSequence", []):
                found.add(str(item.ReferencedSOPInstanceUID))
    return found


def test_stow_of_the_kos_then_found_by_search(pacs: Pacs) -> None:
    kos, expected = _kos_for_ct(pacs, [1, 2, 4])
    assert send_datasets(pacs.url, [kos]) == 1
    series = {s.series_uid: s for s in search_series(pacs.url, pacs.ct.study_uid)}
    assert set(series) == {pacs.ct.series_uid, str(kos.SeriesInstanceUID)}
    stored = series[str(kos.SeriesInstanceUID)]
    assert (stored.modality, stored.num_instances) == ("KO", 1)
    [study] = search_studies(pacs.url, StudyQuery(patient_name="doe"))
    assert set(study.modalities) == {"CT", "KO"}
    # what the server holds references exactly the marked images
    client = dicomweb.make_client(parse_server(pacs.url))
    back = client.retrieve_instance(pacs.ct.study_uid, str(kos.SeriesInstanceUID),
                                    str(kos.SOPInstanceUID))
    assert _referenced_sops(back) == expected


def test_study_holding_only_a_key_object_has_no_images(pacs: Pacs) -> None:
    from pydicom.uid import generate_uid

    kos, _expected = _kos_for_ct(pacs, [0])
    kos.StudyInstanceUID = generate_uid()
    kos.SeriesInstanceUID = generate_uid()
    kos.SOPInstanceUID = generate_uid()
    kos.file_meta.MediaStorageSOPInstanceUID = kos.SOPInstanceUID
    send_datasets(pacs.url, [kos])
    with pytest.raises(PacsNoImagesError, match="holds no images") as info:
        retrieve_to_cache(study_url(pacs.url, str(kos.StudyInstanceUID)))
    assert isinstance(info.value, mprviewer.NoImagesError)
    assert cache.entries() == []


def test_open_study_takes_a_dicomweb_study_url(pacs: Pacs) -> None:
    url = study_url(pacs.url, pacs.ct.study_uid)
    study = mprviewer.open_study(url)
    try:
        assert study.source_label == url
        volume = study.find_series(pacs.ct.series_uid).load()
    finally:
        study.close()
    assert np.array_equal(volume.array, pacs.ct.array)


def test_the_series_of_a_study_are_fetched_in_parallel(pacs: Pacs, monkeypatch) -> None:
    """Each series of the two-series demo study streams on its own worker thread, at the same
    time: every worker waits at its first instance until another worker has one too."""
    writers: dict[str, set[str]] = {}
    lock = threading.Lock()
    together = threading.Barrier(2, timeout=5)
    waited: set[str] = set()
    original = dicomweb._write_instance

    def recording_write(ds, *args):
        thread = threading.current_thread().name
        with lock:
            first = thread not in waited
            waited.add(thread)
            writers.setdefault(str(ds.SeriesInstanceUID), set()).add(thread)
        if first:
            with contextlib.suppress(threading.BrokenBarrierError):
                together.wait()  # a lone (sequential) writer gives up after 5 s
        return original(ds, *args)

    monkeypatch.setattr(dicomweb, "_write_instance", recording_write)
    folder = retrieve_to_cache(study_url(pacs.url, pacs.demo_study_uid), refresh=True)
    assert len(list(folder.glob("*/*.dcm"))) == 256
    demo_series = {s.series_uid for s in search_series(pacs.url, pacs.demo_study_uid)}
    assert set(writers) == demo_series and len(demo_series) == 2
    # one worker per series, and two different workers
    assert all(len(threads) == 1 for threads in writers.values()), writers
    assert len(set.union(*writers.values())) == 2, writers
    assert not together.broken, "the two series were not being written at the same time"
