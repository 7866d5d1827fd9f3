"""DICOMDIR: open what the index references, leniently for copied CDs, never outside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet

import mprviewer
from mprviewer.io.dicomdir import dicomdir_files
from mprviewer.synthetic import writer as synthetic


def make_cd(tmp_path: Path) -> tuple[Path, np.ndarray, synthetic.WrittenSeries]:
    """A DICOMDIR written by pydicom's FileSet over a 5-slice CT, plus one unindexed file."""
    array = np.random.default_rng(5).integers(-1000, 2000, size=(5, 6, 7)).astype(np.int16)
    written = synthetic.write_series(tmp_path / "src", array, shuffle=1, seed=201,
                                     description="Indexed")
    fs = FileSet()
    for path in written:
        fs.add(pydicom.dcmread(path))
    cd = tmp_path / "cd"
    fs.write(cd)
    synthetic.write_series(cd / "EXTRA", np.zeros((2, 4, 4), np.int16), seed=202,
                           description="Not indexed")
    return cd, array, written


def test_dicomdir_opens_exactly_what_it_indexes(tmp_path: Path) -> None:
    cd, array, written = make_cd(tmp_path)
    assert len(dicomdir_files(cd / "DICOMDIR")) == 5
    study = mprviewer.open_study(cd / "DICOMDIR")
    assert [s.description for s in study.series] == ["Indexed"]
    volume = study.series[0].load()
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.affine, written.affine, atol=1e-6)


def test_dicomdir_on_a_copied_cd_with_changed_names(tmp_path: Path) -> None:
    """Lower-cased folders and files, ISO 9660 ';1' suffixes, and one file missing."""
    cd, array, _ = make_cd(tmp_path)
    files = sorted(p for p in cd.rglob("*") if p.is_file() and p.parent != cd
                   and "EXTRA" not in p.parts)
    for n, path in enumerate(files):
        suffix = ";1" if n % 2 else ""
        path.rename(path.with_name(path.name.lower() + suffix))
    for folder in sorted((p for p in cd.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        folder.rename(folder.with_name(folder.name.lower()))
    missing = sorted(p for p in cd.rglob("*") if p.is_file() and p.name != "DICOMDIR"
                     and "extra" not in p.parts)[0]
    missing.unlink()
    study = mprviewer.open_study(cd / "DICOMDIR")
    assert study.series[0].num_images == 4
    assert len(study.skipped) == 1 and "cannot be read" in study.skipped[0][1]
    volume = study.series[0].load()
    kept = [k for k in range(5) if any(np.array_equal(volume.array[m], array[k])
                                       for m in range(volume.shape[0]))]
    assert len(kept) >= 3  # every remaining slice is one of the originals (or interpolated)


def test_dicomdir_records_never_leave_the_medium(tmp_path: Path) -> None:
    cd, _, _ = make_cd(tmp_path)
    outside = synthetic.write_series(tmp_path / "secret", np.zeros((1, 4, 4), np.int16),
                                     seed=203)
    ds = pydicom.dcmread(cd / "DICOMDIR")
    record = ds.DirectoryRecordSequence[-1]
    record.ReferencedFileID = ["..", "secret", Path(outside[0]).name]
    ds.save_as(cd / "DICOMDIR")
    files = dicomdir_files(cd / "DICOMDIR")
    assert all(cd in p.parents for p in files)
    assert len(files) == 4


def test_damaged_dicomdir_falls_back_to_the_files_beside_it(tmp_path: Path) -> None:
    cd, _, _ = make_cd(tmp_path)
    (cd / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00garbage")
    study = mprviewer.open_study(cd / "DICOMDIR")
    assert sorted(s.description for s in study.series) == ["Indexed", "Not indexed"]


def test_pydicoms_bundled_dicomdir_opens_what_pydicoms_fileset_lists(tmp_path: Path) -> None:
    source = Path(get_testdata_file("DICOMDIR")).parent
    copy = tmp_path / "cd"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("DICOMDIR-*", "TINY_ALPHA"))
    reference = FileSet(pydicom.dcmread(copy / "DICOMDIR"))
    study = mprviewer.open_study(copy / "DICOMDIR")
    patients = {str(s.header.PatientID) for s in study.series}
    assert patients == set(reference.find_values("PatientID"))
    indexed = dicomdir_files(copy / "DICOMDIR")
    assert sum(s.num_images for s in study.series) == len(indexed) == len(reference)
    assert {str(s.modality) for s in study.series} == set(reference.find_values("Modality"))
    assert not study.skipped
    ct = [s for s in study.series if s.modality == "CT"]
    assert ct and all(s.load().units == "HU" for s in ct)


def test_a_dicomdir_under_another_name_says_how_to_open_it() -> None:
    path = get_testdata_file("DICOMDIR-implicit")
    with pytest.raises(mprviewer.DicomError, match="open the file named DICOMDIR"):
        mprviewer.open_study(path)


def test_folder_holding_a_dicomdir_skips_the_index_itself(tmp_path: Path) -> None:
    cd, _, _ = make_cd(tmp_path)
    study = mprviewer.open_study(cd)
    assert sorted(s.description for s in study.series) == ["Indexed", "Not indexed"]
    assert [r for _, r in study.skipped] == ["DICOMDIR (media directory), not an image"]


def _index(cd: Path, ids: list[list[str]]) -> None:
    """A DICOMDIR whose IMAGE records reference ``ids`` (written by hand: no FileSet
    checks, as on a hostile or damaged medium)."""
    from pydicom.dataset import Dataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    records = []
    for parts in ids:
        record = Dataset()
        record.DirectoryRecordType = "IMAGE"
        record.ReferencedFileID = parts
        records.append(record)
    ds.DirectoryRecordSequence = records
    ds.save_as(cd / "DICOMDIR", enforce_file_format=True)


def test_dicomdir_links_that_leave_the_medium_are_skipped_with_a_reason(tmp_path: Path) -> None:
    cd, _, _ = make_cd(tmp_path)
    secret = tmp_path / "other-patient"
    synthetic.write_series(secret, np.ones((2, 4, 4), np.int16), seed=204,
                           description="Other patient")
    (cd / "LINKED").symlink_to(secret, target_is_directory=True)
    ids = [list(Path(p).relative_to(cd).parts) for p in sorted(cd.rglob("*"))
           if p.is_file() and p.name != "DICOMDIR" and "EXTRA" not in p.parts]
    escape = sorted(p.name for p in secret.iterdir())[0]
    _index(cd, [*ids, ["LINKED", escape], ["..", "other-patient", escape],
                ["/", "etc", "passwd"], ["IMAGES\x00", "X"]])
    with mprviewer.open_study(cd / "DICOMDIR") as study:
        assert [s.description for s in study.series] == ["Indexed"]
        assert study.series[0].num_images == 5
        reasons = dict(study.skipped)
    assert "outside the medium's folder" in reasons[str(cd / "LINKED" / escape)]
    outside = [n for n, r in reasons.items() if "points outside the medium's folder" in r]
    assert len(outside) == 3, reasons


def test_dicomdir_with_a_thousand_root_folders_lists_each_folder_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cd = tmp_path / "cd"
    ids = []
    for n in range(1000):  # the names on disk differ in case and ';1': matched leniently
        folder = cd / f"p{n:04d}"
        folder.mkdir(parents=True)
        (folder / "im0001;1").write_bytes(b"")
        ids.append([f"P{n:04d}", "IM0001"])
    _index(cd, ids)
    listed: list[Path] = []
    original = Path.iterdir

    def counting_iterdir(self: Path):
        listed.append(self)
        return original(self)

    monkeypatch.setattr(Path, "iterdir", counting_iterdir)
    files = dicomdir_files(cd / "DICOMDIR")
    assert files == [cd / f"p{n:04d}" / "im0001;1" for n in range(1000)]
    assert len(listed) == len(set(listed)) == 1001  # the root once, each folder once
