"""header_value gives what Dataset.get gives, for every keyword it decodes itself."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from mprviewer.io.quick_values import KEYWORDS, header_value
from mprviewer.synthetic import writer as synthetic


def _plain(value: Any) -> Any:
    """pydicom's value types (IS, DSfloat, UID, MultiValue) as plain Python values."""
    if isinstance(value, (list, tuple, MultiValue)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # both NaN
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _get(ds: Dataset, keyword: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _plain(ds.get(keyword, "absent"))
    except Exception as exc:
        return type(exc)


def _quick(ds: Dataset, keyword: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _plain(header_value(ds, keyword, "absent"))
    except Exception as exc:
        return type(exc)


def _headers() -> list[Dataset]:
    found = []
    for name in pydicom.data.get_testdata_files():
        if not Path(name).is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found.append(pydicom.dcmread(name, stop_before_pixels=True, force=True))
        except Exception:
            continue
    return found


def test_same_values_as_pydicom_on_its_test_files() -> None:
    headers = _headers()
    assert len(headers) > 100
    for ds in headers:
        for container in (ds, getattr(ds, "file_meta", None)):
            if container is None:
                continue
            for keyword in KEYWORDS:
                # Both on a fresh raw element: reading converts it in place.
                quick = _quick(container, keyword)
                assert _same(quick, _get(container, keyword)), (ds.filename, keyword)


def _raw(tag: int, vr: str | None, value: bytes) -> RawDataElement:
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, vr is None, True)


@pytest.mark.parametrize(("keyword", "vr", "raw"), [
    ("Rows", "US", b"\x00\x02"),
    ("Rows", None, b"\x00\x02"),
    ("Rows", "US", b"\x00\x02\x00\x01"),  # two values: pydicom's list
    ("Rows", "SS", b"\xff\xff"),  # a VR the dictionary does not give: left to pydicom
    ("InstanceNumber", "IS", b" 12 "),
    ("InstanceNumber", "IS", b"12.0"),
    ("InstanceNumber", "IS", b"1\\2 "),
    ("InstanceNumber", "IS", b"  "),
    ("NumberOfFrames", "IS", b"7\x00"),
    ("ImagePositionPatient", "DS", b"-125.5\\ 1e2\\0 "),
    ("ImagePositionPatient", "DS", b"1\\\\2 "),
    ("ImagePositionPatient", "DS", b"1\\x\\2 "),
    ("RescaleSlope", "DS", b"1.00000"),
    ("RescaleSlope", "DS", b"nan "),
    ("SOPInstanceUID", "UI", b"1.2.3.4\x00"),
    ("SOPInstanceUID", "UI", b"1.2\\3.4 "),
    ("ImageType", "CS", b"ORIGINAL\\PRIMARY\\AXIAL "),
    ("ImageType", "CS", b"DERIVED"),
    ("Modality", "CS", b" CT "),
    ("PhotometricInterpretation", "CS", b"MONOCHROME2\xe9"),
    ("Modality", "UN", b"CT"),
])
def test_same_values_as_pydicom_on_odd_encodings(keyword: str, vr: str | None,
                                                 raw: bytes) -> None:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    quick, slow = Dataset(), Dataset()
    quick[tag] = _raw(tag, vr, raw)
    slow[tag] = _raw(tag, vr, raw)
    for ds in (quick, slow):
        ds.set_original_encoding(vr is None, True, "iso8859")
    assert _same(_quick(quick, keyword), _get(slow, keyword))


def test_absent_and_converted_elements(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path, np.zeros((2, 4, 4), np.int16), rescale=(2.0, -10.0))
    path = sorted(tmp_path.iterdir())[0]
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert header_value(ds, "DoseGridScaling", "none") == "none"
    assert header_value(ds, "RescaleSlope") == 2.0
    ds.RescaleSlope = 3  # a converted element is returned as it is
    assert header_value(ds, "RescaleSlope") == 3
    assert header_value(ds, "PatientID") == ds.get("PatientID")  # not a decoded keyword
