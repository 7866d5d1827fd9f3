"""The pydicom-free header reader: same values, same volume and affine as the pydicom path,
and pydicom for every file layout it does not read."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

import mprviewer
from mprviewer.io import scan as scan_module
from mprviewer.io.lite_header import TAGS, LiteHeader, parse_lite
from mprviewer.io.scan import HEADER_PREFIX
from mprviewer.synthetic import writer as synthetic


def _ramp(shape: tuple[int, int, int], lo: int = -1000, hi: int = 2000) -> np.ndarray:
    values = np.linspace(lo, hi, num=int(np.prod(shape)))
    return np.round(values).astype(np.int32).reshape(shape)


def _load(folder: Path, monkeypatch: pytest.MonkeyPatch | None = None, lite: bool = True):
    """(study, volume) through the lite reader, or with it switched off (pydicom only)."""
    if not lite:
        assert monkeypatch is not None
        monkeypatch.setattr(scan_module, "parse_lite", lambda buf, complete: None)
    study = mprviewer.open_study(folder)
    volume = study.series[0].load()
    if monkeypatch is not None:
        monkeypatch.undo()
    return study, volume


def _sitk(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return sitk.GetArrayFromImage(image), affine


def test_the_tag_table_is_pydicoms_dictionary() -> None:
    for keyword, (tag, vr) in TAGS.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert dictionary_VR(tag) == vr, keyword


# layout -> (writer options, lowest and highest value of the volume written)
LAYOUTS: dict[str, tuple[dict, int, int]] = {
    "explicit VR, CT rescale, unsigned": (dict(rescale=(1.0, -1024.0), signed=False),
                                          -1000, 2000),
    "implicit VR, signed, no rescale": (dict(transfer_syntax=ImplicitVRLittleEndian,
                                             signed=True), -1000, 2000),
    "fractional rescale (float output)": (dict(rescale=(0.5, -1024.25), signed=False,
                                               bits_stored=12), -1000, 900),
    "12 of 16 bits with junk above": (dict(signed=False, bits_stored=12, high_bit_noise=True),
                                      0, 4000),
    "8-bit unsigned, implicit VR": (dict(transfer_syntax=ImplicitVRLittleEndian,
                                         bits_allocated=8, signed=False), 0, 250),
    "oblique, shuffled files": (dict(orientation=(0.8660254, 0.5, 0.0, -0.1710101, 0.2961981,
                                                  -0.9396926), shuffle=3,
                                     instance_numbers="scrambled"), -1000, 2000),
    "MONOCHROME1 with a window": (dict(photometric="MONOCHROME1", window=(40.0, 400.0),
                                       signed=False, rescale=(2.0, -1100.0)), -1000, 2000),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_volume_and_affine_equal_the_pydicom_path_and_simpleitk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    options, lo, hi = LAYOUTS[layout]
    array = _ramp((7, 10, 12), lo, hi)
    folder = tmp_path / "series"
    written = synthetic.write_series(folder, array, origin=(-30.5, 12.0, 80.0),
                                     pixel_spacing=(0.7, 0.9), slice_spacing=2.5, seed=5,
                                     description="  head CT ", **options)
    study, volume = _load(folder)
    assert all(isinstance(f.instance.facts, LiteHeader) for f in study.series[0].frames)
    _, reference = _load(folder, monkeypatch, lite=False)
    assert volume.array.dtype == reference.array.dtype
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_array_equal(volume.affine, reference.affine)
    assert volume.window == reference.window and volume.units == reference.units
    assert volume.warnings == reference.warnings
    assert volume.sop_instance_uids == reference.sop_instance_uids
    np.testing.assert_allclose(volume.affine, written.affine, atol=1e-4)
    if options.get("photometric") != "MONOCHROME1":  # mprviewer inverts, SimpleITK not
        voxels, affine = _sitk(folder)
        np.testing.assert_allclose(volume.affine, affine, atol=1e-4)
        np.testing.assert_allclose(volume.array, voxels, atol=1e-3)


def test_the_series_table_and_full_header_are_the_pydicom_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "series"
    synthetic.write_series(folder, _ramp((5, 8, 8)), rescale=(1.0, -1024.0), signed=False,
                           description="Thorax  ", series_number=7, seed=2,
                           patient={"PatientName": "Doe^Jane"})
    study = mprviewer.open_study(folder)
    series = study.series[0]
    facts = series.frames[0].instance.facts
    assert isinstance(facts, LiteHeader) and not facts.full_loaded
    monkeypatch.setattr(scan_module, "parse_lite", lambda buf, complete: None)
    reference = mprviewer.open_study(folder).series[0]
    monkeypatch.undo()
    assert (series.name, series.description, series.number, series.modality) == (
        reference.name, reference.description, reference.number, reference.modality)
    assert series.shape == reference.shape and series.orientation == reference.orientation
    assert series.metadata == reference.metadata  # the data table reads the full header
    assert facts.full_loaded
    header = series.header
    assert isinstance(header, pydicom.Dataset)
    assert str(header.PatientName) == "Doe^Jane"
    assert header.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "PixelData" not in header  # read up to the pixels, as before


def test_uneven_spacing_is_handled_as_on_the_pydicom_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "series"
    positions = np.array([[0.0, 0.0, z] for z in (0.0, 1.0, 2.0, 4.5, 5.5, 9.0)])
    synthetic.write_series(folder, _ramp((6, 8, 8)), positions=positions, seed=4)
    study, volume = _load(folder)
    reference_study, reference = _load(folder, monkeypatch, lite=False)
    assert volume.warnings == reference.warnings and volume.warnings
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_array_equal(volume.affine, reference.affine)
    assert study.skipped == reference_study.skipped


# Values pydicom and the lite reader must read alike: numbers with odd spacing, several
# values, codes, text with spaces.
_number = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False).map(lambda v: f"{v:.6g}")
_padded = st.tuples(st.sampled_from(["", " ", "  "]), _number,
                    st.sampled_from(["", " "])).map("".join)
_text = st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="\\"),
                max_size=20)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=st.lists(_padded, min_size=1, max_size=3),
       slope=st.one_of(_padded, st.just("")), description=_text, image_type=st.lists(
           st.sampled_from(["ORIGINAL", "PRIMARY", "AXIAL", "LOCALIZER", ""]), min_size=1,
           max_size=4),
       instance=st.integers(-5, 100000), implicit=st.booleans(),
       charset=st.sampled_from([None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"]))
def test_every_value_equals_pydicoms(tmp_path: Path, window, slope, description, image_type,
                                     instance, implicit, charset) -> None:
    ds = pydicom.Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.ImageType = image_type
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.Modality = "CT"
    ds.SeriesDescription = description
    ds.StudyDescription = description[::-1]
    if charset != "ISO 2022 IR 87":  # pydicom's writer cannot encode a name under it
        ds.PatientName = "".join(c for c in description if c.isalnum()) + "^Jo Ann"
    ds.PatientID = description[:8]
    ds.StudyDate = "20240115" if instance % 2 else ""
    ds.InstanceNumber = str(instance)
    ds.ImagePositionPatient = ["-12.5", "3", "1e2"]
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.PixelRepresentation = 4, 4, 16, 1
    ds.WindowCenter = window
    ds.RescaleSlope = slope
    ds.RescaleIntercept = "-1024"
    ds.PixelData = bytes(32)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (
        ExplicitVRLittleEndian)
    path = tmp_path / "one.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    parsed = parse_lite(data[:HEADER_PREFIX], complete=len(data) < HEADER_PREFIX)
    assert parsed is not None and parsed.has_pixels
    reference = pydicom.dcmread(path, stop_before_pixels=True)
    assert data[parsed.pixel_offset:parsed.pixel_offset + 4] == b"\xe0\x7f\x10\x00"
    parsed.header.set_loader(lambda: reference)
    for keyword in TAGS:
        if keyword in ("MediaStorageSOPClassUID", "TransferSyntaxUID"):
            assert parsed.header.file_meta.get(keyword) == reference.file_meta.get(keyword)
            continue
        assert (keyword in parsed.header) == (keyword in reference), keyword
        assert parsed.header.get(keyword, "absent") == reference.get(keyword, "absent"), (
            keyword)


@pytest.mark.parametrize("case", ["big endian", "deflated", "RLE", "no preamble",
                                  "long header"])
def test_other_layouts_go_to_pydicom_and_load_the_same(tmp_path: Path, case: str) -> None:
    options: dict = {}
    if case == "big endian":
        options["transfer_syntax"] = ExplicitVRBigEndian
    elif case == "deflated":
        options["transfer_syntax"] = DeflatedExplicitVRLittleEndian
    elif case == "RLE":
        options["transfer_syntax"] = RLELossless
    elif case == "no preamble":
        options["with_preamble"] = False
    else:  # a header past the bytes read in one go
        options["tags"] = {"ImageComments": "x" * (HEADER_PREFIX + 100)}
    array = _ramp((4, 8, 8))
    folder = tmp_path / "series"
    written = synthetic.write_series(folder, array, rescale=(1.0, -1024.0), signed=False,
                                     seed=1, **options)
    study = mprviewer.open_study(folder)
    series = study.series[0]
    assert not any(isinstance(f.instance.facts, LiteHeader) for f in series.frames)
    volume = series.load()
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.affine, written.affine, atol=1e-4)


def test_damaged_or_cut_headers_are_left_to_pydicom(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    synthetic.write_series(folder, _ramp((1, 8, 8)), seed=3)
    data = next(folder.iterdir()).read_bytes()
    assert parse_lite(data, complete=True) is not None
    assert parse_lite(data[:300], complete=False) is None  # cut inside the header
    assert parse_lite(data[:128] + b"XXXX" + data[132:], complete=True) is None
    bad_vr = bytearray(data)
    at = bytes(bad_vr).index(b"\x08\x00\x60\x00")  # Modality: VR "CS" -> "Q!"
    bad_vr[at + 4:at + 6] = b"Q!"
    assert parse_lite(bytes(bad_vr), complete=True) is None


def test_an_ordinary_folder_loads_without_importing_pydicom(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    synthetic.write_series(folder, _ramp((5, 8, 8)), rescale=(1.0, -1024.0), signed=False,
                           seed=6)
    code = ("import sys, mprviewer\n"
            f"s = mprviewer.open_study({str(folder)!r}); v = s.series[0].load()\n"
            "print(v.array.shape, 'pydicom' in sys.modules)\n"
            "h = s.series[0].header\n"
            "print(type(h).__name__, 'pydicom' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["(5, 8, 8) False", "FileDataset True"]


def test_full_headers_still_read_after_a_zip_source_is_closed(tmp_path: Path) -> None:
    import zipfile

    folder = tmp_path / "series"
    synthetic.write_series(folder, _ramp((3, 8, 8)), seed=8, description="from a zip",
                           patient={"PatientID": "P-77"})
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"case/{path.name}")
    study = mprviewer.open_study(archive)
    series = study.series[0]
    assert isinstance(series.frames[0].instance.facts, LiteHeader)
    study.close()
    assert series.header.PatientID == "P-77"
    assert [series.slice_header(k).SOPInstanceUID for k in range(3)] == (
        series.sop_instance_uids)


ODD_VALUES = {
    "ImageType": [b" ORIGINAL \\ PRIMARY ", b"ORIGINAL\\\\AXIAL", b"\\", b"A\x00", b"  ",
                  b"A \\B", b"A\x00\\B"],
    "Modality": [b" CT ", b"CT\x00", b"CT\\MR", b""],
    "SeriesDescription": [b" head ", b"a\\b", b"  ", b"x\x00", "Sch\u00e4del".encode("latin-1")],
    "PatientName": [b"Doe^Jane ", b"Doe^J=Yamada^T", b"", b"A\\B", "M\u00fcller".encode("latin-1")],
    "StudyDate": [b"20240115", b"", b"2024-01-15 "],
    "RescaleSlope": [b" 1.5", b"+1e2", b"1 \\ 2", b" ", b".5", b"-0", b"0x1", b"1_0",
                     b"inf", b"1e999", b""],
    "InstanceNumber": [b"+5", b" 7 ", b"1.0", b"007", b"1_0", b"5\\6", b""],
    "SOPInstanceUID": [b"1.2.3\x00", b"1.2.3 ", b" 1.2", b"\x001.2", b"1.2\\3"],
    "Rows": [b"\x00\x02", b"\x00\x02\x00\x01", b"\x00", b""],
    "DiffusionBValue": [bytes(8), b"\x00" * 7 + b"\x40"],
}


def _outcome(header, keyword: str) -> object:
    """header.get(keyword), or the type of what it raised (refused alike is read alike)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return header.get(keyword)
        except Exception as exc:
            return type(exc)


@pytest.mark.parametrize("keyword,raw", [(k, v) for k, vs in ODD_VALUES.items() for v in vs])
def test_odd_values_read_as_pydicom_reads_them(keyword: str, raw: bytes) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    tag, vr = TAGS[keyword]
    ds = pydicom.Dataset()
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)
    ds.set_original_encoding(False, True, "iso8859")
    lite = LiteHeader(raw, {tag: (vr.encode(), 0, len(raw))}, implicit=False)
    lite.set_loader(lambda: ds)
    expected = _outcome(ds, keyword)
    assert _outcome(lite, keyword) == expected
    assert type(_outcome(lite, keyword)) in (type(expected), list, float, int, str, type(None))


def test_mutated_headers_read_alike_or_go_to_pydicom(tmp_path: Path) -> None:
    """Bytes flipped in the header: whatever the lite reader accepts, pydicom parses into
    the same pixel offset and the same values (a seeded run over both encodings)."""
    import io
    import random

    from mprviewer.io.sources import Member

    seeds = []
    for name, syntax in (("e", ExplicitVRLittleEndian), ("i", ImplicitVRLittleEndian)):
        synthetic.write_series(tmp_path / name, _ramp((1, 8, 8)), seed=name, window=(40, 400),
                               transfer_syntax=syntax, description="mutated")
        seeds.append(next((tmp_path / name).iterdir()).read_bytes())
    rng = random.Random(20261203)
    accepted = 0
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(128, min(len(data), 1200))] = rng.randrange(256)
        raw = bytes(data)
        lite = parse_lite(raw, complete=True)
        if lite is None:
            continue
        accepted += 1
        member = Member(name="m", folder="", size=len(raw), opener=lambda raw=raw: io.BytesIO(raw))
        full = scan_module._header_from(member, lite.header.header_bytes,
                                        complete=not lite.has_pixels)
        assert full.__dict__["_mprviewer_pixel_offset"] == lite.pixel_offset
        lite.header.set_loader(lambda full=full: full)
        for keyword in TAGS:
            if keyword not in ("MediaStorageSOPClassUID", "TransferSyntaxUID"):
                expected = _outcome(full, keyword)
                if expected == expected:  # NaN is NaN whoever reads it
                    assert _outcome(lite.header, keyword) == expected, keyword
    assert accepted > 50  # the run tried the lite reader, not only pydicom


def test_caps_and_geometry_checks_hold_on_the_lite_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mprviewer.errors import DicomError

    folder = tmp_path / "series"
    synthetic.write_series(folder, _ramp((4, 16, 16)), seed=9)
    study = mprviewer.open_study(folder)
    assert isinstance(study.series[0].frames[0].instance.facts, LiteHeader)
    monkeypatch.setenv("MPRVIEWER_MAX_DECODED_BYTES", "1K")  # 4x16x16x2 bytes = 2 KiB
    with pytest.raises(DicomError, match="MPRVIEWER_MAX_DECODED_BYTES"):
        study.series[0].load()
    monkeypatch.delenv("MPRVIEWER_MAX_DECODED_BYTES")
    # A slice whose orientation is not a pair of unit vectors is refused, as by pydicom.
    bad = tmp_path / "bad"
    synthetic.write_series(bad, _ramp((4, 16, 16)), seed=10, per_slice=lambda k: (
        {"ImageOrientationPatient": ["0", "0", "0", "0", "1", "0"]} if k == 2 else {}))
    lite_study = mprviewer.open_study(bad)
    monkeypatch.setattr(scan_module, "parse_lite", lambda buf, complete: None)
    reference = mprviewer.open_study(bad)
    assert lite_study.skipped == reference.skipped
    assert any("IM0002" in name for name, _ in lite_study.skipped)
    assert lite_study.series[0].num_images == 3


@pytest.mark.parametrize("kind", ["enhanced", "legacy"])
def test_multiframe_objects_load_as_on_the_pydicom_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    folder = tmp_path / "mf"
    folder.mkdir()
    synthetic.write_multiframe(folder / "mf.dcm", _ramp((6, 8, 10)), kind=kind, seed=12,
                               rescale=(1.0, -1024.0), signed=False, slice_spacing=2.0,
                               frame_order="shuffled" if kind == "enhanced" else "stacked")
    study, volume = _load(folder)
    assert isinstance(study.series[0].frames[0].instance.facts, LiteHeader)
    _, reference = _load(folder, monkeypatch, lite=False)
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_array_equal(volume.affine, reference.affine)
    np.testing.assert_array_equal(volume.array, _ramp((6, 8, 10)))


def test_real_files_read_alike() -> None:
    """pydicom's and pydicom-data's test files (scanner output of many makes, and odd ones):
    every file the lite reader accepts gives pydicom's pixel offset, presence and values."""
    import io

    import data_store  # pydicom-data, a test dependency

    from mprviewer.io.sources import Member
    folders = [Path(pydicom.__file__).parent / "data" / "test_files",
               Path(data_store.__file__).parent / "data"]
    paths = sorted(str(p) for folder in folders for p in folder.rglob("*") if p.is_file())
    accepted = 0
    for path in paths:
        raw = Path(path).read_bytes()
        lite = parse_lite(raw[:HEADER_PREFIX], complete=len(raw) < HEADER_PREFIX)
        if lite is None:
            continue
        accepted += 1
        member = Member(name=path, folder="", size=len(raw),
                        opener=lambda raw=raw: io.BytesIO(raw))
        full = scan_module.read_header(member)
        assert full.__dict__["_mprviewer_pixel_offset"] == lite.pixel_offset, path
        lite.header.set_loader(lambda full=full: full)
        for keyword in TAGS:
            meta = keyword in ("MediaStorageSOPClassUID", "TransferSyntaxUID")
            ours, theirs = ((lite.header.file_meta, full.file_meta) if meta
                            else (lite.header, full))
            assert (keyword in ours) == (keyword in theirs), (path, keyword)
            expected = _outcome(theirs, keyword)
            if expected == expected:
                assert _outcome(ours, keyword) == expected, (path, keyword)
    assert accepted > 100


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_nested_undefined_length_sequences_are_stepped_over(tmp_path: Path, syntax: str) -> None:
    """Sequences of undefined length, items too, nested two deep and before the pixels: the
    lite reader steps over them to pydicom's pixel offset and keeps the values after them."""
    from tests.test_fast_header import _with_sequences

    synthetic.write_series(tmp_path / "s", _ramp((2, 8, 10)), transfer_syntax=syntax,
                           seed=5, description="after the sequences")
    path = sorted((tmp_path / "s").iterdir())[0]
    ds = _with_sequences(pydicom.dcmread(path), undefined=True)
    ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    lite = parse_lite(raw[:HEADER_PREFIX], complete=len(raw) < HEADER_PREFIX)
    assert lite is not None, "nested sequences sent the file to pydicom"
    import io

    from mprviewer.io.sources import Member

    member = Member(name=str(path), folder="", size=len(raw),
                    opener=lambda: io.BytesIO(raw))
    full = scan_module.read_header(member)
    assert lite.pixel_offset == full.__dict__["_mprviewer_pixel_offset"]
    assert lite.header.get("SeriesDescription") == "after the sequences"
    # A delimiter missing from the bytes leaves the file to pydicom.
    cut = raw.replace(b"\xfe\xff\xdd\xe0", b"\xfe\xff\xdd\xef", 1)
    assert parse_lite(cut[:HEADER_PREFIX], complete=len(cut) < HEADER_PREFIX) is None
