"""The core loader: sources, grouping, geometry against SimpleITK, pixel values, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import mprviewer
from mprviewer.errors import DicomError, LoadCancelled, NoImagesError, SourceError
from mprviewer.synthetic import writer as synthetic


def _ramp(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Distinct values per voxel so any misplaced slice, row or column shows."""
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1500, size=shape).astype(np.int16)


def _sitk_read(folder: Path):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _sitk_affine(image) -> np.ndarray:
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine


OBLIQUE = (0.8660254, 0.5, 0.0, -0.1710101, 0.2961981, -0.9396926)


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal", OBLIQUE])
def test_geometry_and_voxels_agree_with_simpleitk(tmp_path: Path, orientation) -> None:
    array = _ramp((9, 12, 14))
    written = synthetic.write_series(
        tmp_path / "series", array, orientation=orientation, origin=(-40.5, 12.25, 87.0),
        pixel_spacing=(0.7, 0.9), slice_spacing=2.5, rescale=(1.0, -1024.0), signed=False,
        shuffle=7, instance_numbers="scrambled", file_names="uid", seed=11,
    )
    study = mprviewer.open_study(tmp_path / "series")
    assert len(study.series) == 1
    volume = study.series[0].load()
    image = _sitk_read(tmp_path / "series")
    np.testing.assert_allclose(volume.affine, _sitk_affine(image), atol=1e-4)
    np.testing.assert_allclose(volume.affine, written.affine, atol=1e-4)
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_array_equal(volume.array, array)
    assert volume.sop_instance_uids == [written.sop_instance_uids[k] for k in range(9)]


def test_reversed_slice_direction_sorts_by_position_not_instance_number(tmp_path: Path) -> None:
    array = _ramp((6, 5, 4), seed=3)
    # Slices written with a negative step: k = 0 is the most superior file.
    written = synthetic.write_series(tmp_path / "s", array, slice_spacing=-3.0,
                                     instance_numbers="slice", shuffle=1, seed=2)
    volume = mprviewer.open_study(tmp_path / "s").series[0].load()
    # The loader orders along +normal, so its k = 0 is the file written last.
    np.testing.assert_array_equal(volume.array, array[::-1])
    assert volume.affine[2, 2] == pytest.approx(3.0)
    lps_first = written.affine @ np.array([0, 0, 5, 1.0])
    np.testing.assert_allclose(volume.affine[:3, 3], lps_first[:3])


def test_ct_values_are_hounsfield_in_int16(tmp_path: Path) -> None:
    hu = np.array([[[-1024, -1000], [0, 3071]]] * 3, dtype=np.int16)
    synthetic.write_series(tmp_path / "ct", hu, rescale=(1.0, -1024.0), signed=False,
                           bits_stored=12, high_bit_noise=True, seed=5)
    volume = mprviewer.open_study(tmp_path / "ct").series[0].load()
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, hu)
    assert volume.units == "HU"


def test_fractional_rescale_gives_float32(tmp_path: Path) -> None:
    values = np.array([[[0.0, 0.5], [10.25, -3.75]]] * 2, dtype=np.float64)
    synthetic.write_series(tmp_path / "pet", values, modality="PT", rescale=(0.25, 0.0), seed=6)
    volume = mprviewer.open_study(tmp_path / "pet").series[0].load()
    assert volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.array, values)


def test_signed_bits_stored_are_sign_extended(tmp_path: Path) -> None:
    values = np.array([[[-2048, -1], [0, 2047]]] * 2, dtype=np.int16)
    synthetic.write_series(tmp_path / "s", values, signed=True, bits_stored=12, seed=8)
    volume = mprviewer.open_study(tmp_path / "s").series[0].load()
    np.testing.assert_array_equal(volume.array, values)


def test_monochrome1_is_inverted_so_bright_means_dense(tmp_path: Path) -> None:
    values = np.array([[[0, 100], [200, 4095]]] * 2, dtype=np.int16)
    synthetic.write_series(tmp_path / "cr", values, modality="CR", photometric="MONOCHROME1",
                           signed=False, bits_stored=12, seed=9)
    volume = mprviewer.open_study(tmp_path / "cr").series[0].load()
    np.testing.assert_array_equal(volume.array, 4095 - values)
    assert any("MONOCHROME1" in w for w in volume.warnings)


def _two_series_zip(tmp_path: Path) -> Path:
    a = synthetic.write_series(tmp_path / "src" / "CT_SOFT", _ramp((4, 6, 6)), seed=21,
                               series_number=2, description="Soft")
    synthetic.write_series(tmp_path / "src" / "CT_LUNG", _ramp((5, 6, 6)), seed=22,
                           series_number=3, description="Lung", study_uid=a.study_uid)
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "src").rglob("*.dcm")):
            zf.write(path, f"export/{path.relative_to(tmp_path / 'src')}")
        zf.writestr("__MACOSX/export/._IM0001.dcm", b"junk")
        zf.writestr("export/README.txt", b"not dicom")
    return archive


def test_zip_with_series_folders_names_series_by_folder(tmp_path: Path) -> None:
    study = mprviewer.open_study(_two_series_zip(tmp_path))
    assert sorted(s.name for s in study.series) == ["CT_LUNG", "CT_SOFT"]
    assert {s.num_slices for s in study.series} == {4, 5}
    assert [Path(name).name for name, _ in study.skipped] == ["README.txt"]
    lung = study.find_series("CT_LUNG").load()
    assert lung.array.shape == (5, 6, 6)
    study.close()


def test_nested_zip_is_opened(tmp_path: Path) -> None:
    inner = _two_series_zip(tmp_path)
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "cd/inner.zip")
    study = mprviewer.open_study(outer)
    assert sorted(s.name for s in study.series) == ["CT_LUNG", "CT_SOFT"]
    assert study.series[0].load().array.shape[1:] == (6, 6)


def test_files_are_grouped_by_series_uid_not_folder(tmp_path: Path) -> None:
    written = synthetic.write_series(tmp_path / "a", _ramp((6, 4, 4)), seed=31,
                                     series_number=7, description="Split")
    (tmp_path / "b").mkdir()
    for path in list(written)[:3]:
        shutil.move(path, tmp_path / "b" / Path(path).name)
    study = mprviewer.open_study(tmp_path)
    assert len(study.series) == 1
    assert study.series[0].name == "7 Split"
    assert study.series[0].num_slices == 6


def test_two_series_in_one_folder_get_number_and_description(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path, _ramp((3, 4, 4)), seed=41, series_number=1,
                           description="Axial", file_names="A%03d")
    synthetic.write_series(tmp_path, _ramp((3, 4, 4)), seed=42, series_number=2,
                           description="Axial", file_names="B%03d")
    names = [s.name for s in mprviewer.open_study(tmp_path).series]
    assert names == ["1 Axial", "2 Axial"]


def test_files_without_preamble_or_extension_and_lists_of_files(tmp_path: Path) -> None:
    array = _ramp((4, 5, 5), seed=4)
    written = synthetic.write_series(tmp_path / "raw", array, with_preamble=False,
                                     extension="", seed=51)
    study = mprviewer.open_study([str(p) for p in written])
    np.testing.assert_array_equal(study.series[0].load().array, array)
    single = mprviewer.open_study(written[0])
    assert single.series[0].num_slices == 1


def test_gap_is_reported_with_its_place(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path / "g", _ramp((8, 4, 4)), skip=[4], seed=61)
    series = mprviewer.open_study(tmp_path / "g").series[0]
    assert any("missing slice" in w and "k=3" in w for w in series.warnings)


def test_progress_and_cancel(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path / "p", _ramp((10, 4, 4)), seed=71)
    calls: list[tuple[int, int]] = []
    study = mprviewer.open_study(tmp_path / "p", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (10, 10)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled):
        study.series[0].load(cancel=cancel)
    with pytest.raises(LoadCancelled):
        mprviewer.open_study(tmp_path / "p", cancel=cancel)


def test_user_errors_are_dicom_errors_that_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        mprviewer.open_study(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoImagesError, match="no files found"):
        mprviewer.open_study(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("hello")
    with pytest.raises(NoImagesError, match="not a DICOM file"):
        mprviewer.open_study(tmp_path / "text")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(SourceError, match=r"broken\.zip"):
        mprviewer.open_study(broken)
    synthetic.write_series(tmp_path / "ok", _ramp((2, 4, 4)), seed=81)
    study = mprviewer.open_study(tmp_path / "ok")
    with pytest.raises(DicomError, match="no series number 5"):
        study.find_series(5)


def test_series_metadata_holds_the_patient_table(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path / "m", _ramp((3, 4, 4)), seed=91, description="Chest",
                           patient={"PatientName": "Doe^Jane", "PatientID": "P42"})
    meta = mprviewer.open_study(tmp_path / "m").series[0].metadata
    assert meta["Patient name"] == "Doe^Jane"
    assert meta["Patient ID"] == "P42"
    assert meta["Series description"] == "Chest"
    assert meta["Size (columns x rows x slices)"] == "4 x 4 x 3"


def test_info_command_prints_table_and_exits_3_on_bad_input(tmp_path: Path) -> None:
    """The table row says index, name, description, modality, size (columns x rows x
    slices) and spacing (column, row, slice mm) of the series, in the header's order; a
    non-square, non-cubic series shows any swapped axis."""
    nk, rows, cols = 3, 4, 5
    row_mm, col_mm, slice_mm = 0.7, 0.9, 2.5
    synthetic.write_series(tmp_path / "CT_X", _ramp((nk, rows, cols)), seed=95,
                           description="Chest", pixel_spacing=(row_mm, col_mm),
                           slice_spacing=slice_mm)
    (tmp_path / "bad.txt").write_text("x")
    run = [sys.executable, "-m", "mprviewer", "info"]
    ok = subprocess.run([*run, str(tmp_path)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "CT_X" in ok.stdout and "bad.txt: not a DICOM file" in ok.stdout
    lines = ok.stdout.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("#"))
    assert [c.strip() for c in lines[header].split("  ") if c.strip()] == [
        "#", "name", "description", "mod", "size", "spacing (mm)", "orientation"]
    assert lines[header + 1].split() == ["0", "CT_X", "Chest", "CT", f"{cols}x{rows}x{nk}",
                                         f"{col_mm:g}x{row_mm:g}x{slice_mm:g}", "axial"]
    bad = subprocess.run([*run, str(tmp_path / "nope")], capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 3
    assert bad.stderr.strip().count("\n") == 0 and "no such file" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_loading_layers_import_neither_qt_nor_vtk() -> None:
    code = (
        "import sys, mprviewer, mprviewer.io.study, mprviewer.io.pixels, mprviewer.model.state\n"
        "import mprviewer.model.orientation, mprviewer.model.presets\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('vtk', 'vtkmodules', 'pyvista', 'pyvistaqt', 'PyQt5', 'qtpy')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
