"""DICOM Key Object Selection export: it must point at exactly the marked images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import mprviewer
from mprviewer import AnnotationError
from mprviewer.annotations import AnnotationSet, SeriesRef, write_kos
from mprviewer.io.kos import select_images
from mprviewer.synthetic import writer as synthetic
from tests.test_annotations_model import make_ref

KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def _referenced(ds: pydicom.Dataset) -> tuple[list[str], set[str]]:
    """UIDs in the content tree (in order) and in the evidence sequence."""
    content = [item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
               for item in ds.ContentSequence if item.ValueType == "IMAGE"]
    evidence = {
        sop.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    return content, evidence


@pytest.fixture
def sagittal_study(tmp_path: Path):
    """A sagittal series written in shuffled order, loaded the way the viewer loads it."""
    array = np.arange(7 * 5 * 6, dtype=np.int16).reshape(7, 5, 6)
    written = synthetic.write_series(
        tmp_path / "sag", array, orientation="sagittal", slice_spacing=2.0, shuffle=3, seed=11,
        patient={"PatientName": "Test^Kos", "PatientID": "KOS-1"},
    )
    study = mprviewer.open_study(tmp_path / "sag")
    series = study.series[0]
    volume = series.load()
    ref = SeriesRef.from_series(series, volume)
    assert ref.name == series.name
    assert ref.study_attributes["PatientID"] == "KOS-1"
    # the truth, from the files themselves: sagittal slice 0 is the patient's rightmost image
    by_x = sorted(
        (float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[0]),
         pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in written
    )
    yield ref, [uid for _x, uid in by_x], written
    study.close()


def test_kos_references_exactly_the_marked_acquired_images(tmp_path, sagittal_study):
    ref, uid_of_slice, written = sagittal_study
    assert ref.acquisition_plane == "sagittal"
    aset = AnnotationSet(study_uid=ref.study_uid, reader="Reader^A")
    aset.mark(ref, "sagittal", [0, 3, 4], "Fracture")
    aset.mark(ref, "axial", [2], "Fracture")  # a reformat: cannot be a key image
    out = tmp_path / "kos.dcm"
    returned = write_kos(aset, [ref], out, reader="Reader^A")
    ds = pydicom.dcmread(out)
    content, evidence = _referenced(ds)
    expected = [uid_of_slice[s] for s in (0, 3, 4)]
    assert content == expected
    assert evidence == set(expected)
    assert returned.SOPInstanceUID == ds.SOPInstanceUID
    # classes, study and series of what is referenced
    assert ds.SOPClassUID == KOS_CLASS and ds.Modality == "KO"
    assert {item.ReferencedSOPSequence[0].ReferencedSOPClassUID
            for item in ds.ContentSequence if item.ValueType == "IMAGE"} == {CT_CLASS}
    study_item = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert study_item.StudyInstanceUID == ds.StudyInstanceUID == written.study_uid
    assert study_item.ReferencedSeriesSequence[0].SeriesInstanceUID == written.series_uid
    assert ds.SeriesInstanceUID != written.series_uid
    # patient, title and description
    assert (str(ds.PatientName), ds.PatientID) == ("Test^Kos", "KOS-1")
    title = ds.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        "113000", "DCM", "Of Interest")
    texts = [item.TextValue for item in ds.ContentSequence if item.ValueType == "TEXT"]
    assert len(texts) == 1 and "Fracture" in texts[0] and "0; 3-4" in texts[0]
    assert "Reader^A" in [str(item.PersonName) for item in ds.ContentSequence
                          if item.ValueType == "PNAME"]
    # the reformatted mark is reported, not silently dropped
    assert any("axial 2" in s for s in select_images(aset, [ref]).skipped)


def test_marks_follow_their_images_after_reload_into_the_kos(sagittal_study):
    ref, uid_of_slice, _written = sagittal_study
    aset = AnnotationSet(study_uid=ref.study_uid)
    aset.mark(ref, "sagittal", [5], "Fracture")
    # the same images, listed from the other end (as another loader might): UIDs win
    reloaded = SeriesRef(
        uid=ref.uid, name=ref.name, study_uid=ref.study_uid, acquisition_plane="sagittal",
        plane_sizes=ref.plane_sizes, sop_instance_uids=tuple(reversed(ref.sop_instance_uids)),
        sop_class_uid=ref.sop_class_uid, study_attributes=ref.study_attributes,
    )
    aset.reconcile(reloaded)
    assert aset.slices_for(ref.uid, "", "sagittal") == [1]
    ds = write_kos(aset, [reloaded])
    assert _referenced(ds)[0] == [uid_of_slice[5]]


def test_one_label_only_and_bare_entries():
    ref = make_ref(study="1.2.3")
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(ref, "axial", [1], "Bleed")
    aset.mark(ref, "axial", [2, 3], "Edema")
    ds = write_kos(aset, [ref], label="Edema")
    assert _referenced(ds)[0] == ["1.2.3.1.2", "1.2.3.1.3"]
    entries = [e for _s, e in aset.entries() if e.label == "Bleed"]
    assert _referenced(write_kos(entries, [ref]))[0] == ["1.2.3.1.1"]


def test_nothing_referenceable_is_a_clear_error(tmp_path):
    ref = make_ref()
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(ref, "coronal", [4])
    with pytest.raises(AnnotationError, match="no marked images"):
        write_kos(aset, [ref], tmp_path / "k.dcm")
    assert not (tmp_path / "k.dcm").exists()
    name_only = AnnotationSet()
    name_only.mark("CT Head", "axial", [1])  # original-format marks, study not open
    with pytest.raises(AnnotationError, match="open the study"):
        write_kos(name_only, [])


def test_kos_export_never_overwrites_silently(tmp_path):
    ref = make_ref()
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(ref, "axial", [1])
    path = tmp_path / "k.dcm"
    path.write_bytes(b"keep")
    with pytest.raises(AnnotationError, match="already exists"):
        write_kos(aset, [ref], path)
    assert path.read_bytes() == b"keep"
    write_kos(aset, [ref], path, overwrite=True)
    assert pydicom.dcmread(path).SOPClassUID == KOS_CLASS


def test_non_ascii_labels_and_names_are_written_as_utf8(tmp_path):
    ref = SeriesRef(uid="1.2.3.1", name="CT", study_uid="1.2.3", plane_sizes={"axial": 5},
                    sop_instance_uids=tuple(f"1.2.3.1.{m}" for m in range(5)),
                    sop_class_uid=CT_CLASS, study_attributes={"PatientName": "Müller^Jörg"})
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(ref, "axial", [2], "Blutung")
    write_kos(aset, [ref], tmp_path / "k.dcm", reader="Łukasz")
    ds = pydicom.dcmread(tmp_path / "k.dcm")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Müller^Jörg"
    assert [str(i.PersonName) for i in ds.ContentSequence if i.ValueType == "PNAME"] == [
        "Łukasz^"]
