"""Damaged and odd files next to a good series: each is skipped with a reason or fails its own
series with a DicomError, and the good series still opens with the right voxels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import mprviewer
from mprviewer.errors import DicomError

GOOD = np.random.default_rng(1).integers(-1000, 1000, (5, 16, 16)).astype(np.int16)
BAD = np.random.default_rng(2).integers(-1000, 1000, (3, 16, 16)).astype(np.int16)


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    from mprviewer.synthetic import writer as synthetic

    synthetic.write_series(tmp_path / "good", GOOD, seed=1, series_number=1, description="Good")
    return tmp_path


def _bad_series(folder: Path) -> list[Path]:
    from mprviewer.synthetic import writer as synthetic

    return [Path(p) for p in synthetic.write_series(folder / "bad", BAD, seed=2,
                                                     series_number=2, description="Bad")]


def _open(folder: Path):
    """Open, check that the good series is intact, return (study, skipped reasons by name)."""
    study = mprviewer.open_study(folder)
    good = study.find_series("good")
    np.testing.assert_array_equal(good.load().array, GOOD)
    return study, {Path(name).name: reason for name, reason in study.skipped}


def _pixel_offset(data: bytes) -> int:
    return data.rindex(b"\xe0\x7f\x10\x00")


def test_files_that_are_not_dicom(study_dir: Path) -> None:
    (study_dir / "notes.txt").write_text("radiology report")
    (study_dir / "empty.dcm").write_bytes(b"")
    (study_dir / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    (study_dir / "noise.dcm").write_bytes(np.random.default_rng(3).bytes(5000))
    (study_dir / "page.dcm").write_bytes(b"<html><body>login</body></html>")
    study, reasons = _open(study_dir)
    assert len(study.series) == 1
    assert reasons == {name: "not a DICOM file"
                       for name in ("notes.txt", "empty.dcm", "scan.png", "noise.dcm",
                                    "page.dcm")}


def _non_image(path: Path, sop_class: str, modality: str) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


def test_a_zip_name_on_other_bytes_says_it_is_not_a_zip(study_dir: Path) -> None:
    (study_dir / "export.zip").write_bytes(np.random.default_rng(4).bytes(5000))
    _, reasons = _open(study_dir)
    assert reasons["export.zip"].startswith("not a zip archive nor a DICOM file")
    with pytest.raises(DicomError, match=r"export\.zip: .*not a zip archive nor a DICOM"):
        mprviewer.open_study(study_dir / "export.zip")


def test_dicom_objects_without_pixels(study_dir: Path) -> None:
    for name in ("test-SR.dcm", "reportsi.dcm", "rtplan.dcm", "rtstruct.dcm",
                 "waveform_ecg.dcm", "rtplan_truncated.dcm"):
        shutil.copy(pydicom.data.get_testdata_file(name), study_dir / name)
    _non_image(study_dir / "kos.dcm", "1.2.840.10008.5.1.4.1.1.88.59", "KO")
    _non_image(study_dir / "gsps.dcm", "1.2.840.10008.5.1.4.1.1.11.1", "PR")
    study, reasons = _open(study_dir)
    assert len(study.series) == 1
    assert reasons["kos.dcm"] == "Key Object Selection document, not an image"
    assert reasons["gsps.dcm"] == "presentation state, not an image"
    for name, kind in (("test-SR.dcm", "SR"), ("reportsi.dcm", "SR"), ("rtplan.dcm", "RTPLAN"),
                       ("rtstruct.dcm", "RTSTRUCT"), ("waveform_ecg.dcm", "ECG")):
        assert reasons[name] == f"DICOM {kind} without image pixels"


def test_truncated_pixel_data_fails_its_series_only(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    data = files[1].read_bytes()
    files[1].write_bytes(data[:-100])
    study, reasons = _open(study_dir)
    assert reasons == {}
    bad = study.find_series("bad")
    assert bad.num_slices == 3
    with pytest.raises(DicomError, match=files[1].name):
        bad.load()


def test_file_cut_inside_its_header_is_skipped(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    files[1].write_bytes(files[1].read_bytes()[:400])
    study, reasons = _open(study_dir)
    assert files[1].name in reasons
    bad = study.find_series("bad").load()
    # The two intact slices keep their values; the missing one is reported, not invented.
    np.testing.assert_array_equal(bad.array[[0, -1]], BAD[[0, 2]])


@pytest.mark.parametrize("length", [0x7FFF0000, 100, 511])
def test_wrong_pixel_data_length_fails_its_series_only(study_dir: Path, length: int) -> None:
    files = _bad_series(study_dir)
    data = bytearray(files[0].read_bytes())
    at = _pixel_offset(data)
    data[at + 8 : at + 12] = length.to_bytes(4, "little")
    files[0].write_bytes(bytes(data))
    study, reasons = _open(study_dir)
    try:
        bad = study.find_series("bad")
    except DicomError:  # or the damaged file was already skipped while scanning
        assert files[0].name in reasons
        return
    try:
        volume = bad.load()
    except DicomError as exc:
        assert files[0].name in str(exc) or "'bad'" in str(exc)
    else:  # a length running past the end is read up to the end: the true values, no garbage
        assert length > len(data)
        np.testing.assert_array_equal(volume.array, BAD)


def test_wrong_length_inside_the_header(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    data = bytearray(files[2].read_bytes())
    at = data.index(b"\x28\x00\x10\x00US")  # Rows, explicit VR: its 2-byte length follows
    data[at + 6 : at + 8] = (200).to_bytes(2, "little")
    files[2].write_bytes(bytes(data))
    study, reasons = _open(study_dir)
    assert files[2].name in reasons
    assert study.find_series("bad").num_slices == 2


def test_unknown_vr_in_the_file_meta_still_reads(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    data = bytearray(files[0].read_bytes())
    at = data.index(b"\x02\x00\x02\x00UI")  # MediaStorageSOPClassUID, read lazily
    data[at + 4 : at + 6] = b"UY"
    files[0].write_bytes(bytes(data))
    study, reasons = _open(study_dir)
    assert reasons == {}
    np.testing.assert_array_equal(study.find_series("bad").load().array, BAD)


def test_frame_count_larger_than_the_file_is_skipped(study_dir: Path) -> None:
    """A header claiming millions of frames must not make millions of frame records."""
    files = _bad_series(study_dir)
    ds = pydicom.dcmread(files[1])
    ds.NumberOfFrames = 99999999
    ds.save_as(files[1])
    study, reasons = _open(study_dir)
    assert "NumberOfFrames is 99999999" in reasons[files[1].name]
    most = int(reasons[files[1].name].split("at most ")[1].split()[0])
    assert 1 <= most <= files[1].stat().st_size // (16 * 16 * 2)
    assert study.find_series("bad").num_slices == 2


def test_unknown_vr_of_a_header_value_is_read_as_bytes(study_dir: Path) -> None:
    """pydicom converts values lazily; a damaged VR must not raise where the value is used."""
    files = _bad_series(study_dir)
    for path in files:
        data = bytearray(path.read_bytes())
        at = data.index(b"\x20\x00\x11\x00IS")  # SeriesNumber
        data[at + 4 : at + 6] = b"IR"
        path.write_bytes(bytes(data))
    study, reasons = _open(study_dir)
    assert reasons == {}
    bad = next(s for s in study.series if s.name != "good")
    bad.header.get("SeriesNumber")  # reading the damaged element later must not raise
    np.testing.assert_array_equal(bad.load().array, BAD)


def _delete(path: Path, *tags: str) -> None:
    ds = pydicom.dcmread(path)
    for tag in tags:
        del ds[tag]
    ds.save_as(path)


@pytest.mark.parametrize(("tags", "reason"), [
    (("Rows",), "DICOM CT with pixel data but no Rows (0028,0010): the image size is unknown"),
    (("Columns",),
     "DICOM CT with pixel data but no Columns (0028,0011): the image size is unknown"),
    (("SOPClassUID", "Rows", "Columns"), "DICOM CT with pixel data but no Rows (0028,0010) and "
                                         "Columns (0028,0011): the image size is unknown"),
])
def test_missing_image_size_skips_the_file(study_dir: Path, tags: tuple[str, ...],
                                           reason: str) -> None:
    """Without Rows or Columns the pixels cannot be laid out: the file is skipped, and the
    reason names the missing tags."""
    files = _bad_series(study_dir)
    _delete(files[1], *tags)
    study, reasons = _open(study_dir)
    assert reasons == {files[1].name: reason}
    np.testing.assert_array_equal(study.find_series("bad").load().array, BAD[[0, 2]])


def test_missing_sop_class_alone_still_reads(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    _delete(files[1], "SOPClassUID")
    study, reasons = _open(study_dir)
    assert reasons == {}
    np.testing.assert_array_equal(study.find_series("bad").load().array, BAD)


def test_missing_pixel_data_skips_that_file_only(study_dir: Path) -> None:
    """An image header with no pixel data element: skipped with the reason, at scan time, so
    the rest of the series still loads."""
    files = _bad_series(study_dir)
    _delete(files[0], "PixelData")
    study, reasons = _open(study_dir)
    assert reasons == {files[0].name: "DICOM CT image header without Pixel Data (7FE0,0010)"}
    bad = study.find_series("bad")
    assert bad.num_slices == 2
    np.testing.assert_array_equal(bad.load().array, BAD[[1, 2]])


def test_missing_geometry_opens_with_a_warning(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient, ds.ImageOrientationPatient
        ds.save_as(path)
    study, _ = _open(study_dir)
    volume = study.find_series("bad").load()
    np.testing.assert_array_equal(volume.array, BAD)
    assert any("ImagePositionPatient" in w for w in volume.warnings)


def test_inconsistent_rows_inside_a_series(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    ds = pydicom.dcmread(files[1])
    ds.Rows = 8
    ds.PixelData = BAD[1, :8].tobytes()
    ds.save_as(files[1])
    study, reasons = _open(study_dir)
    bad = [s for s in study.series if s.uid == ds.SeriesInstanceUID]
    # The odd slice is set apart (its own stack, or skipped); the rest loads intact.
    main = max(bad, key=lambda s: s.num_slices)
    assert main.num_slices == 2 and main.shape[1:] == (16, 16)
    np.testing.assert_array_equal(main.load().array, BAD[[0, 2]])
    odd = [s for s in bad if s is not main]
    assert (odd and odd[0].shape == (1, 8, 16)) or files[1].name in reasons


@pytest.mark.parametrize("name", ["emri_small_jpeg_2k_lossless_too_short.dcm",
                                  "JPEG2000-embedded-sequence-delimiter.dcm"])
def test_damaged_compressed_pixels_fail_their_series_only(study_dir: Path, name: str) -> None:
    shutil.copy(pydicom.data.get_testdata_file(name), study_dir / name)
    study, _ = _open(study_dir)
    others = [s for s in study.series if s.name != "good"]
    assert others
    for series in others:
        with pytest.raises(DicomError, match=name.replace(".", r"\.")):
            series.load()


def test_a_slice_without_pixel_representation_reads_like_its_series(tmp_path):
    """Type 1 but sometimes dropped by anonymisers: the DICOM default (unsigned) would turn
    that slice's negative HU into 64000s; it is read as signed like its neighbours, and said."""
    from mprviewer.synthetic import writer as synthetic

    rng = np.random.default_rng(7)
    array = rng.integers(-1000, 2000, size=(4, 16, 16)).astype(np.float64)
    files = synthetic.write_series(tmp_path / "ct", array, seed="no-pr")
    stripped = sorted(files)[1]
    ds = pydicom.dcmread(stripped)
    del ds.PixelRepresentation
    ds.save_as(stripped, enforce_file_format=False)
    with mprviewer.open_study(str(tmp_path / "ct")) as study:
        [series] = study.series
        volume = series.load()
    assert np.array_equal(volume.array, array)
    [note] = [w for w in volume.warnings if "Pixel Representation" in w]
    assert Path(stripped).name in note and "signed" in note


@pytest.mark.parametrize("keep", [700, 900, 1100])
def test_file_cut_before_its_pixel_data_is_reported_as_truncated(
        study_dir: Path, keep: int) -> None:
    files = _bad_series(study_dir)
    whole = files[1].read_bytes()
    assert keep < _pixel_offset(whole)
    files[1].write_bytes(whole[:keep])
    _study, reasons = _open(study_dir)
    assert reasons[files[1].name].startswith("truncated DICOM file"), reasons
    assert "without Pixel Data" not in reasons[files[1].name]


def test_file_cut_inside_its_pixel_data_fails_as_truncated(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    files[1].write_bytes(files[1].read_bytes()[:-100])
    study, _reasons = _open(study_dir)
    with pytest.raises(DicomError, match=rf"{files[1].name}: pixel data cannot be decoded \(the "
                       r"file is truncated: its pixel data holds \d+ of the \d+ bytes"):
        study.find_series("bad").load()


def test_pydicom_truncated_mr_is_named_truncated(tmp_path: Path) -> None:
    shutil.copy(pydicom.data.get_testdata_file("MR_truncated.dcm"), tmp_path / "mr.dcm")
    with pytest.raises(DicomError, match="the file is truncated"):
        mprviewer.open_study(tmp_path).series[0].load()
