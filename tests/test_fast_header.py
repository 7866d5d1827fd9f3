"""The struct-based header reader builds exactly the Dataset pydicom builds, or declines."""

from __future__ import annotations

import io
import random
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from mprviewer.io.fast_header import parse_header
from mprviewer.io.scan import HEADER_PREFIX, read_header
from mprviewer.io.sources import Member
from mprviewer.synthetic import writer as synthetic

VOLUME = np.arange(3 * 6 * 5, dtype=np.int16).reshape(3, 6, 5)


def _reference(path: Path) -> tuple[Dataset, int]:
    """pydicom's own reading, as the loader's fallback path does it, and where it stopped."""
    with open(path, "rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        return ds, fh.tell()


def _value(ds: Dataset, tag: Any) -> Any:
    """An element's converted value, or the kind of error converting it raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ds[tag].value
    except Exception as exc:  # both readers must fail alike
        return type(exc)


def _assert_same(fast: Dataset, ref: Dataset, where: str) -> None:
    tags = list(ref.keys())
    assert list(fast.keys()) == tags, where
    for tag in tags:
        fast_value, ref_value = _value(fast, tag), _value(ref, tag)
        assert fast[tag].VR == ref[tag].VR, f"{where} {tag}"
        assert fast[tag].is_undefined_length == ref[tag].is_undefined_length, f"{where} {tag}"
        if isinstance(ref_value, Sequence):
            assert isinstance(fast_value, Sequence), f"{where} {tag}"
            assert len(fast_value) == len(ref_value), f"{where} {tag}"
            for n, (a, b) in enumerate(zip(fast_value, ref_value, strict=True)):
                _assert_same(a, b, f"{where} {tag}[{n}]")
        else:
            assert fast_value == ref_value, f"{where} {tag}"


def _check(path: Path) -> bool:
    """Compare the fast reader with pydicom on one file; True when it did not decline."""
    data = path.read_bytes()
    prefix = data[:HEADER_PREFIX]
    fast = parse_header(prefix, complete=len(data) <= len(prefix))
    if fast is None:
        return False
    ref, offset = _reference(path)
    name = path.name
    assert fast.pixel_offset == offset, name
    assert type(fast.dataset) is type(ref), name
    _assert_same(fast.dataset.file_meta, ref.file_meta, f"{name} file meta")
    _assert_same(fast.dataset, ref, name)
    assert fast.dataset.original_encoding == ref.original_encoding, name
    assert fast.dataset.original_character_set == ref.original_character_set, name
    assert fast.dataset.preamble == ref.preamble, name
    return True


def test_pydicom_test_files_match_or_fall_back() -> None:
    paths = [Path(p) for p in pydicom.data.get_testdata_files() if Path(p).is_file()]
    assert len(paths) > 50
    read = [p.name for p in paths if _check(p)]
    # Most of pydicom's own files have the common layout; the rest are its odd cases.
    assert len(read) > len(paths) // 2, read


def _sequence_item(n: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = f"1.2.3.{n}"
    return item


def _with_sequences(ds: Dataset, undefined: bool) -> Dataset:
    """Nested sequences, of undefined length (items too) when asked."""
    inner = _sequence_item(9)
    outer = _sequence_item(1)
    outer.ReferencedImageSequence = [inner]
    ds.ReferencedImageSequence = [outer, _sequence_item(2)]
    ds.SourceImageSequence = []
    for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
        ds[keyword].is_undefined_length = undefined
    outer["ReferencedImageSequence"].is_undefined_length = undefined
    for item in (outer, inner, ds.ReferencedImageSequence[1]):
        item.is_undefined_length_sequence_item = undefined
    ds.add_new(0x00091010, "LO", "PRIVATE CREATOR")
    ds.add_new(0x00091011, "UN", b"\x01\x02\x03\x04")
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("undefined", [False, True])
def test_synthetic_series_with_sequences_use_the_fast_path(
        tmp_path: Path, syntax: str, undefined: bool) -> None:
    written = synthetic.write_series(
        tmp_path / "s", VOLUME, transfer_syntax=syntax, rescale=(1.0, -1024.0),
        window=(40.0, 400.0), description="fast header",
        patient={"PatientName": "Müller^Jörg"}, tags={"SpecificCharacterSet": "ISO_IR 100"})
    paths = sorted((tmp_path / "s").iterdir())
    assert written is not None and paths
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.save_as(path, enforce_file_format=True)
        assert _check(path), path.name
        ds = _with_sequences(ds, undefined)
        ds.save_as(path, enforce_file_format=True)
        assert _check(path), path.name


def test_generated_mosaic_and_multiframe_files_match_or_fall_back(tmp_path: Path) -> None:
    synthetic.write_mosaic(tmp_path / "mosaic", np.zeros((4, 8, 8), np.int16))
    synthetic.write_multiframe(tmp_path / "enhanced.dcm", np.zeros((3, 8, 8), np.int16))
    paths = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert paths
    assert all(_check(p) for p in paths)  # sequences and CSA blocks are ordinary elements


def test_header_longer_than_the_bytes_read_falls_back() -> None:
    path = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    data = path.read_bytes()
    _, offset = _reference(path)
    assert parse_header(data[: offset - 10], complete=False) is None
    assert parse_header(data[: offset + 12], complete=False) is not None  # sees PixelData
    assert parse_header(data[: offset - 10], complete=True) is None  # cut inside an element


def test_loader_header_matches_pydicom(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path / "s", VOLUME)
    path = sorted((tmp_path / "s").iterdir())[0]
    member = Member(name=path.name, folder=str(tmp_path / "s"), path=path,
                    size=path.stat().st_size, opener=partial(path.open, "rb"))
    ds = read_header(member)
    ref, offset = _reference(path)
    assert ds.__dict__["_mprviewer_pixel_offset"] == offset
    assert ds.__dict__["_mprviewer_pixel_keyword"] == "PixelData"
    _assert_same(ds, ref, path.name)


def test_damaged_headers_never_raise() -> None:
    """Whatever the bytes, the reader returns a header or declines; it never raises."""
    rng = random.Random(7)
    sources = [Path(pydicom.data.get_testdata_file(n)) for n in
               ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "emri_small.dcm")]
    for path in sources:
        data = path.read_bytes()[:HEADER_PREFIX]
        end = min(len(data), 2048)
        for _ in range(300):
            buf = bytearray(data)
            for _ in range(rng.randint(1, 6)):
                buf[rng.randrange(128, end)] = rng.randrange(256)
            cut = rng.choice([len(buf), rng.randrange(132, len(buf))])
            result = parse_header(bytes(buf[:cut]), complete=rng.random() < 0.5)
            if result is not None:
                list(result.dataset.keys())


def test_not_a_dicom_file_is_declined() -> None:
    assert parse_header(b"", complete=True) is None
    assert parse_header(b"\0" * 128 + b"DICM", complete=True) is None
    assert parse_header(io.BytesIO(b"x" * 400).getvalue(), complete=True) is None
