"""Headers that lie about geometry and decoders that panic: a DicomError or a skip with a
reason, never an exception of another kind or a runaway allocation."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

import mprviewer
from mprviewer.errors import DicomError
from tests.test_bad_files import BAD, _bad_series, _open


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    from mprviewer.synthetic import writer as synthetic
    from tests.test_bad_files import GOOD

    synthetic.write_series(tmp_path / "good", GOOD, seed=1, series_number=1, description="Good")
    return tmp_path


def test_positions_drifting_far_sideways_are_not_taken_for_a_tilt(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    ds = pydicom.dcmread(files[2])
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    # Far sideways yet inside the +-1e6 mm any position must lie in (beyond, the slice
    # alone is dropped: tests/test_hostile_geometry.py).
    ds.ImagePositionPatient = [x + 1e5, y, z]
    ds.save_as(files[2])
    study, reasons = _open(study_dir)
    assert len(study.series) == 1
    assert all("far more than a gantry tilt" in reasons[f.name] for f in files)


def test_a_panicking_decoder_is_a_dicom_error(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """Rust decoders raise pyo3's PanicException, which is not an Exception subclass."""
    import pydicom.pixels
    from pydicom.uid import RLELossless

    from mprviewer.synthetic import writer as synthetic

    class PanicException(BaseException):
        pass

    def panic(*args, **kwargs):
        raise PanicException("index out of bounds: the len is 8192 but the index is 8192")

    synthetic.write_series(tmp_path / "rle", BAD, seed=3, transfer_syntax=RLELossless)
    study = mprviewer.open_study(tmp_path)
    monkeypatch.setattr(pydicom.pixels, "pixel_array", panic)
    with pytest.raises(DicomError, match="PanicException: index out of bounds"):
        study.series[0].load()


def test_a_multi_valued_samples_per_pixel_does_not_break_grouping(study_dir: Path) -> None:
    files = _bad_series(study_dir)
    ds = pydicom.dcmread(files[0])
    ds["SamplesPerPixel"].value = [1, 1]
    ds.save_as(files[0])
    study, reasons = _open(study_dir)
    assert files[0].name not in reasons
    # the damaged image cannot stack with its neighbours: it is a series of its own
    assert sorted(s.num_images for s in study.series) == [1, 2, 5]


def test_a_sequence_that_fails_when_first_read_skips_its_file(study_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Sequences are parsed when first read, during grouping: a damaged one (as pydicom
    reports it, an OSError) skips its file with the reason, and the rest still opens."""
    from mprviewer.io import multiframe

    files = _bad_series(study_dir)
    real = multiframe.expand_frames

    def expand(instance):
        if instance.member.name == str(files[1]):
            raise OSError("No tag to read at file position A1D")
        return real(instance)

    monkeypatch.setattr(multiframe, "expand_frames", expand)
    study, reasons = _open(study_dir)
    assert reasons[files[1].name] == ("damaged multi-frame or mosaic header: OSError: No tag "
                                      "to read at file position A1D")
    assert study.find_series("bad").num_images == 2
