"""Stored values read in place and rescaled in place give the values, and the dtype, that
the modality rescale defines, whatever the bit layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mprviewer
from mprviewer.synthetic import writer as synthetic


def _values(lo: int, hi: int) -> np.ndarray:
    ramp = np.linspace(lo, hi, 3 * 6 * 7).round().astype(np.int64)
    return ramp.reshape(3, 6, 7)


# The expected dtype is the smallest that holds the output values exactly, with uint8 only
# for 8-bit unsigned stored data (CT in HU therefore comes out as int16).
CASES = [
    # (bits_allocated, bits_stored, signed, slope, intercept, output lo, output hi, dtype)
    (16, 12, False, 1.0, -1024.0, -1024, 3071, np.int16),  # CT: the in-place int16 path
    (16, 12, False, 2.0, -1024.0, -1024, 7166, np.int16),
    (16, 12, False, -1.0, 4095.0, 0, 4095, np.int16),
    (16, 16, False, 1.0, -1024.0, -1024, 64511, np.int32),  # needs int32 for the full range
    (16, 16, False, 1.0, -1024.0, -1024, 2000, np.int16),  # ... but the data fit int16
    (16, 12, True, 1.0, 100.0, -1948, 2147, np.int16),
    (16, 16, True, 3.0, -7.0, -30000, 30000, np.int16),
    (8, 8, False, 1.0, 10.0, 10, 265, np.int16),  # 265 does not fit uint8
    (8, 8, False, -1.0, 255.0, 0, 255, np.uint8),
    (8, 7, True, 1.0, -5.0, -69, 58, np.int16),  # signed 8-bit: no uint8, no int8
]


@pytest.mark.parametrize(("bits", "stored", "signed", "slope", "intercept", "lo", "hi",
                          "dtype"), CASES)
@pytest.mark.parametrize("noise", [False, True])
def test_rescaled_values_and_dtype(tmp_path: Path, bits: int, stored: int, signed: bool,
                                   slope: float, intercept: float, lo: int, hi: int,
                                   dtype: type, noise: bool) -> None:
    """Every voxel holds stored * slope + intercept, in the case's own expected dtype."""
    values = _values(lo, hi)
    values -= (values - int(intercept)) % int(abs(slope))  # on the slope's grid
    synthetic.write_series(tmp_path / "s", values.astype(np.float64), rescale=(slope, intercept),
                           bits_allocated=bits, bits_stored=stored, signed=signed,
                           high_bit_noise=noise and stored < bits, seed=3)
    with mprviewer.open_study(str(tmp_path / "s")) as study:
        volume = study.series[0].load()
    np.testing.assert_array_equal(volume.array, values)
    assert volume.array.dtype == np.dtype(dtype)


def test_monochrome1_is_inverted_in_the_general_path(tmp_path: Path) -> None:
    values = _values(0, 4095)
    synthetic.write_series(tmp_path / "s", values.astype(np.float64), rescale=(1.0, 0.0),
                           photometric="MONOCHROME1", bits_stored=12, signed=False, seed=4)
    with mprviewer.open_study(str(tmp_path / "s")) as study:
        volume = study.series[0].load()
    np.testing.assert_array_equal(volume.array, 4095 - values)
