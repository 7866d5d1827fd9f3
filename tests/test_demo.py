"""The built-in demo study: what it holds, where its lesion is, and how its cache behaves."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import mprviewer
from mprviewer.synthetic import demo, phantom


def _series_files(zf: zipfile.ZipFile) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for name in zf.namelist():
        folder, _, base = name.partition("/")
        assert base and "/" not in base, name
        folders.setdefault(folder, []).append(name)
    return folders


def _headers(zf: zipfile.ZipFile, names: list[str]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(io.BytesIO(zf.read(n))) for n in names]


@pytest.fixture
def demo_zip() -> Path:
    """The shared cached demo zip (built once per test session)."""
    return Path(mprviewer.demo_path())


def test_demo_zip_holds_two_series_folders_of_full_size(demo_zip):
    assert demo_zip.parent == Path(os.environ["MPRVIEWER_HOME"]) / "demo"
    with zipfile.ZipFile(demo_zip) as zf:
        folders = _series_files(zf)
        assert sorted(folders) == sorted(s.folder for s in demo.DEMO_SERIES)
        for spec in demo.DEMO_SERIES:
            names = folders[spec.folder]
            assert len(names) >= 120
            first = pydicom.dcmread(io.BytesIO(zf.read(names[0])))
            assert (first.Rows, first.Columns) >= (256, 256)
            assert float(first.WindowCenter) == spec.window[0]
            assert float(first.WindowWidth) == spec.window[1]
            assert first.SeriesDescription == spec.description
            assert first.ConvolutionKernel == spec.kernel


def test_demo_files_carry_real_ct_tags(demo_zip):
    with zipfile.ZipFile(demo_zip) as zf:
        folders = _series_files(zf)
        soft, lung = (_headers(zf, folders[s.folder][:3]) for s in demo.DEMO_SERIES)
    ds = soft[0]
    assert ds.Modality == "CT" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert (ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored) == (0, 16, 12)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    for keyword in (
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
        "StudyDescription", "AccessionNumber", "InstitutionName", "Manufacturer",
        "ReferringPhysicianName", "StudyID", "SeriesNumber", "BodyPartExamined", "KVP",
    ):  # fmt: skip
        assert str(ds.data_element(keyword).value).strip(), keyword
    # One study, one frame of reference, two series.
    assert {d.StudyInstanceUID for d in soft + lung} == {ds.StudyInstanceUID}
    assert {d.FrameOfReferenceUID for d in soft + lung} == {ds.FrameOfReferenceUID}
    assert len({d.SeriesInstanceUID for d in soft + lung}) == 2
    assert len({d.SOPInstanceUID for d in soft + lung}) == 6


def test_file_names_are_not_in_slice_order(demo_zip):
    with zipfile.ZipFile(demo_zip) as zf:
        names = sorted(_series_files(zf)[demo.DEMO_SERIES[0].folder])
        z = [float(d.ImagePositionPatient[2]) for d in _headers(zf, names[:10])]
    assert z != sorted(z) and z != sorted(z, reverse=True)


def _slice_nearest(zf: zipfile.ZipFile, folder: str, z: float) -> pydicom.Dataset:
    names = _series_files(zf)[folder]
    best = None
    for name in names:
        ds = pydicom.dcmread(io.BytesIO(zf.read(name)), stop_before_pixels=True)
        dz = abs(float(ds.ImagePositionPatient[2]) - z)
        if best is None or dz < best[0]:
            best = (dz, name)
    assert best is not None
    return pydicom.dcmread(io.BytesIO(zf.read(best[1])))


def _hu_at(ds: pydicom.Dataset, x: float, y: float) -> float:
    """HU at LPS (x, y) in an axial slice, located through the file's own geometry."""
    ipp = [float(v) for v in ds.ImagePositionPatient]
    row_sp, col_sp = (float(v) for v in ds.PixelSpacing)
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    i = round((x - ipp[0]) / col_sp)
    j = round((y - ipp[1]) / row_sp)
    hu = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)
    return float(hu[j - 1 : j + 2, i - 1 : i + 2].mean())


def test_lesion_is_bright_and_on_the_patients_left(demo_zip):
    x, y, z = demo.DEMO_LESION_LPS
    assert x > 20.0  # LPS: +x is the patient's left
    # Superior half of the scanned range.
    z_range = demo.DEMO_ORIGIN[2], demo.DEMO_ORIGIN[2] + (demo.DEMO_SHAPE[0] - 1) * 2.5
    assert z > (z_range[0] + z_range[1]) / 2
    with zipfile.ZipFile(demo_zip) as zf:
        ds = _slice_nearest(zf, demo.DEMO_SERIES[0].folder, z)
        assert abs(float(ds.ImagePositionPatient[2]) - z) <= 1.25
        assert _hu_at(ds, x, y) > 150  # the lesion
        assert _hu_at(ds, -x, y) < -600  # mirrored to the right: lung
        assert _hu_at(ds, x, y - 2 * demo.DEMO_LESION_RADIUS_MM) < -600  # in the left lung


def test_simpleitk_reads_the_demo_with_the_documented_geometry(demo_zip, tmp_path):
    folder = demo.DEMO_SERIES[0].folder
    with zipfile.ZipFile(demo_zip) as zf:
        zf.extractall(tmp_path, [n for n in zf.namelist() if n.startswith(folder + "/")])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / folder)))
    image = reader.Execute()
    affine = demo.DEMO_AFFINE
    np.testing.assert_allclose(image.GetOrigin(), affine[:3, 3], atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), np.diag(affine)[:3], atol=1e-5)
    hu = sitk.GetArrayFromImage(image)
    assert hu.shape == demo.DEMO_SHAPE
    # SimpleITK applies the rescale: the lesion is bright at the documented voxel.
    i, j, k = np.rint(phantom.lesion_center_ijk(demo.DEMO_SHAPE, demo.DEMO_SPACING)).astype(int)
    assert hu[k, j, i] > 150
    assert hu.min() >= -1024 and hu[0, 0, 0] < -900  # air in the corner
    # The noise-free phantom and the soft-tissue series agree within the noise.
    clean = phantom.ct_phantom(demo.DEMO_SHAPE, demo.DEMO_SPACING)
    assert abs(float(np.mean(hu[k] - clean[k]))) < 2.0
    assert 5.0 < float(np.std(hu[k].astype(np.float32) - clean[k])) < 20.0


def test_generation_is_deterministic(demo_zip, tmp_path):
    again = demo.build_demo_zip(tmp_path / "again.zip")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (demo_zip, again)]
    assert digest[0] == digest[1]


@pytest.fixture
def small_demo(monkeypatch):
    """A private demo folder and a small phantom, so cache tests are quick and isolated."""
    home = Path(os.environ["MPRVIEWER_HOME"])
    link = home / "demo"
    if link.is_symlink():
        link.unlink()
    monkeypatch.setattr(demo, "DEMO_SHAPE", (12, 64, 64))
    return home / "demo"


def test_missing_or_corrupt_cache_is_regenerated(small_demo):
    path = demo.demo_path()
    assert path.parent == small_demo and path.is_file()
    good = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    assert demo.demo_path() == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    path.write_bytes(good[: len(good) // 2])  # a killed copy
    assert demo.demo_path().read_bytes() == good
    path.unlink()
    assert demo.demo_path().read_bytes() == good
    assert not [p for p in small_demo.iterdir() if p.name.endswith(".part")]


def test_a_new_generator_version_replaces_the_old_cache(small_demo, monkeypatch):
    old = demo.demo_path()
    monkeypatch.setattr(demo, "GENERATOR_VERSION", "999")
    monkeypatch.setattr(demo, "_ZIP_COMMENT", b"mprviewer demo study, generator 999")
    new = demo.demo_path()
    assert new != old and new.is_file() and not old.exists()
    with zipfile.ZipFile(new) as zf:
        assert zf.comment.endswith(b"999")


def test_phantom_is_fast_and_deterministic():
    import time

    start = time.perf_counter()
    a = phantom.ct_phantom((128, 256, 256))
    elapsed = time.perf_counter() - start
    assert np.array_equal(a, phantom.ct_phantom((128, 256, 256)))
    assert elapsed < 5.0  # about 0.5 s here; generous for a loaded machine
    # Anatomy by HU: air, lungs, soft tissue and bone are all present in sensible amounts.
    fractions = {
        "air": np.mean(a <= -990),
        "lung": np.mean((a > -900) & (a < -800)),
        "soft": np.mean((a > 0) & (a < 100)),
        "bone": np.mean(a >= 500),
    }
    assert 0.15 < fractions["air"] < 0.6 and 0.05 < fractions["lung"] < 0.3
    assert 0.15 < fractions["soft"] < 0.6 and 0.003 < fractions["bone"] < 0.08
