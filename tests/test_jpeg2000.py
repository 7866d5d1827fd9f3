"""The imagecodecs JPEG 2000 plugin decodes exactly what pydicom's pylibjpeg plugin does."""

from __future__ import annotations

import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.pixels import pixel_array
from pydicom.uid import JPEG2000, JPEG2000Lossless

import mprviewer
from mprviewer.io import jpeg2000
from mprviewer.io.pixels import _pixel_array
from mprviewer.synthetic import writer as synthetic


def _j2k_test_files() -> list[Path]:
    found = []
    for name in pydicom.data.get_testdata_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(name, stop_before_pixels=True)
        except Exception:
            continue
        if ds.file_meta.get("TransferSyntaxUID") in jpeg2000.SYNTAXES:
            found.append(Path(name))
    return found


def test_plugin_is_registered_for_jpeg2000() -> None:
    """imagecodecs is a runtime dependency: its JPEG 2000 codec must be there and used."""
    assert imagecodecs.JPEG2K.available
    assert jpeg2000.plugin_for(JPEG2000Lossless) == jpeg2000.PLUGIN
    assert jpeg2000.plugin_for(JPEG2000) == jpeg2000.PLUGIN
    assert jpeg2000.plugin_for("1.2.840.10008.1.2.4.50") == ""


def test_same_pixels_as_pylibjpeg_on_pydicom_test_files() -> None:
    paths = _j2k_test_files()
    assert len(paths) >= 10
    compared = 0
    for path in paths:
        ds = pydicom.dcmread(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = pixel_array(ds, as_rgb=True, decoding_plugin="pylibjpeg")
        except Exception:
            continue  # pydicom's own plugin cannot read it either
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = pixel_array(ds, as_rgb=True, decoding_plugin=jpeg2000.PLUGIN)
            loader = _pixel_array(ds, str(ds.file_meta.TransferSyntaxUID))
        assert ours.dtype == expected.dtype, path.name
        np.testing.assert_array_equal(ours, expected, err_msg=path.name)
        np.testing.assert_array_equal(loader, expected, err_msg=path.name)
        compared += 1
    assert compared >= 10


@pytest.mark.parametrize("signed", [False, True])
def test_a_jpeg2000_series_loads_its_values(tmp_path: Path, signed: bool) -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(-1024 if signed else 0, 3000, size=(4, 40, 48)).astype(np.float64)
    synthetic.write_series(tmp_path / "j2k", values, transfer_syntax=JPEG2000Lossless,
                           signed=signed, bits_stored=12 if not signed else 16, seed=2)
    with mprviewer.open_study(str(tmp_path / "j2k")) as study:
        volume = study.series[0].load()
    np.testing.assert_array_equal(volume.array, values)
