"""Every compressed syntax loads the same voxels as SimpleITK (GDCM), through the direct
imagecodecs path (unsigned greyscale single-frame files) and through pydicom's plugins."""

from __future__ import annotations

import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pydicom.data
import pytest
import SimpleITK as sitk
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array

import mprviewer
from mprviewer.io import fast_decoders
from mprviewer.synthetic import writer as synthetic

OURS = {  # encoded here with imagecodecs (pydicom has no encoder for them)
    "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.51": "JPEG extended 12-bit",
    "1.2.840.10008.1.2.4.57": "JPEG lossless",
    "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
}
WRITER = {  # encoded by the synthetic writer (pydicom's encoders), signed or not
    "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
    "1.2.840.10008.1.2.5": "RLE lossless",
}


def _sitk(folder: Path) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def _load(folder: Path) -> np.ndarray:
    with mprviewer.open_study(folder) as study:
        return study.series[0].load().array


def _textured(shape: tuple[int, int, int], top: int) -> np.ndarray:
    """Smooth structure plus noise: lossy JPEG keeps it recognisable, nothing is constant."""
    k, j, i = np.indices(shape)
    smooth = (np.sin(i / 5.0) + np.cos(j / 7.0) + k) * top / 8 + top / 3
    noise = np.random.default_rng(7).integers(0, top // 20, size=shape)
    return np.clip(smooth + noise, 0, top).astype(np.int16)


@pytest.mark.parametrize("syntax", sorted(OURS))
def test_jpeg_processes_equal_simpleitk(tmp_path: Path, syntax: str) -> None:
    eight = syntax == "1.2.840.10008.1.2.4.50"
    top = 255 if eight else 3000
    values = _textured((3, 48, 56), top) - (0 if eight else 1000)  # HU for 12 bits
    folder = tmp_path / "s"
    synthetic.write_series(folder, values, signed=False, seed=41, shuffle=1,
                           bits_allocated=8 if eight else 16, bits_stored=8 if eight else 12,
                           rescale=(1, 0) if eight else (1, -1024))
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        frame = ds.pixel_array
        if eight:
            stream = imagecodecs.jpeg8_encode(frame, level=90)
        elif syntax == "1.2.840.10008.1.2.4.51":
            stream = imagecodecs.jpeg8_encode(frame, level=90, bitspersample=12)
        else:
            stream = imagecodecs.ljpeg_encode(frame, bitspersample=12)
        ds.PixelData = encapsulate([stream])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(path, enforce_file_format=True)
    ours, reference = _load(folder), _sitk(folder)
    assert ours.shape == reference.shape == values.shape
    np.testing.assert_array_equal(ours, reference)
    if syntax in ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"):
        np.testing.assert_array_equal(ours, values)
    else:  # lossy: close to what was written, not equal
        assert np.abs(ours - values.astype(np.float64)).mean() < top * 0.02


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("syntax", sorted(WRITER))
def test_writer_syntaxes_equal_simpleitk(tmp_path: Path, syntax: str, signed: bool) -> None:
    """Unsigned files take the direct path, signed ones pydicom's plugins."""
    values = np.random.default_rng(3).integers(-1024, 3000, size=(3, 40, 48)).astype(np.int16)
    synthetic.write_series(tmp_path / "s", values, transfer_syntax=syntax, shuffle=2,
                           rescale=(1.0, -1024.0) if not signed else (1.0, 0.0),
                           signed=signed, bits_stored=12 if not signed else 16, seed=112)
    ours, reference = _load(tmp_path / "s"), _sitk(tmp_path / "s")
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(ours, values)


def test_jpeg2000_series_longer_than_a_task_equals_simpleitk(tmp_path: Path) -> None:
    """JPEG 2000 files are decoded one a task: every slice still lands in its place, the
    volume equals SimpleITK's and the written values, and progress counts file by file."""
    from mprviewer.io.pixels import FILES_PER_TASK

    count = 2 * FILES_PER_TASK + 3
    values = np.random.default_rng(5).integers(-1024, 3000, size=(count, 40, 48)).astype(
        np.int16)
    synthetic.write_series(tmp_path / "s", values, transfer_syntax="1.2.840.10008.1.2.4.90",
                           shuffle=3, rescale=(1.0, -1024.0), signed=False, bits_stored=12,
                           seed=17)
    seen: list[tuple[int, int]] = []
    with mprviewer.open_study(tmp_path / "s") as study:
        ours = study.series[0].load(progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(ours.array, _sitk(tmp_path / "s"))
    np.testing.assert_array_equal(ours.array, values)
    assert sorted(done for done, _ in seen) == list(range(1, count + 1))
    assert {total for _, total in seen} == {count}


def test_plugin_gives_the_bytes_pylibjpeg_gives_on_pydicom_test_files() -> None:
    """Greyscale JPEG and JPEG-LS files of pydicom's test set: the imagecodecs plugin's
    frames equal those of pydicom's pylibjpeg plugin (the lossy 12-bit file aside: its
    inverse DCT rounds differently, see test_loader_realdata)."""
    assert fast_decoders.register()
    compared = 0
    for name in pydicom.data.get_testdata_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(name)
        except Exception:
            continue
        ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
        if ts not in fast_decoders.SYNTAXES or ds.get("SamplesPerPixel", 1) != 1:
            continue
        if ts == "1.2.840.10008.1.2.4.51" and int(ds.BitsStored) > 8:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = pixel_array(ds, decoding_plugin="pylibjpeg")
        except Exception:
            continue  # pydicom's own plugin cannot read it either
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = pixel_array(ds, decoding_plugin=fast_decoders.PLUGIN)
        assert ours.dtype == expected.dtype, name
        np.testing.assert_array_equal(ours, expected, err_msg=name)
        compared += 1
    assert compared >= 6
