"""Generated series with known truth: gantry tilt, gaps, uneven spacing, 4D splits, localizers,
mosaics, enhanced multi-frame objects, float and 32-bit pixels. Each checks voxels at known
patient (LPS) points, not just shapes."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import mprviewer
from mprviewer.io import pixels as pixels_module
from mprviewer.synthetic import writer as synthetic


def blob_volume(shape: tuple[int, int, int], k: int, j: int, i: int) -> np.ndarray:
    """Air everywhere and a bright 3x3 block centred on (i, j) in slice k."""
    array = np.full(shape, -1000, dtype=np.int16)
    array[k, j - 1:j + 2, i - 1:i + 2] = 1000
    return array


def centroid(image: np.ndarray) -> tuple[float, float]:
    """(i, j) centre of mass of what is brighter than air in one slice."""
    weights = np.clip(image.astype(np.float64) + 1000.0, 0, None)
    jj, ii = np.indices(image.shape)
    return float((weights * ii).sum() / weights.sum()), float((weights * jj).sum() / weights.sum())


# -- gantry tilt ------------------------------------------------------------------------------
def test_gantry_tilt_is_corrected_onto_an_orthogonal_grid(tmp_path: Path) -> None:
    array = blob_volume((10, 40, 20), k=7, j=11, i=6)
    written = synthetic.write_series(tmp_path / "tilt", array, tilt=15.0, slice_spacing=2.0,
                                     pixel_spacing=(0.5, 0.8), origin=(-8.0, -10.0, 40.0),
                                     shuffle=3, seed=101)
    truth = (written.affine @ np.array([6.0, 11.0, 7.0, 1.0]))[:3]  # the blob's LPS centre
    series = mprviewer.open_study(tmp_path / "tilt").series[0]
    volume = series.load()
    direction = volume.affine[:3, :3]
    gram = direction.T @ direction
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)  # orthogonal
    np.testing.assert_allclose(volume.spacing, (0.8, 0.5, 2.0), atol=1e-6)
    # Slices slide 9 * 2 * tan(15 deg) = 4.82 mm along the columns: ~10 more rows, none cut.
    assert volume.shape == series.shape == (10, 50, 20)
    i, j, k = volume.lps_to_ijk(truth)
    assert abs(k - 7) < 1e-6
    ci, cj = centroid(volume.array[7])
    assert abs(ci - i) < 0.05 and abs(cj - j) < 0.1, (ci, cj, i, j)
    assert any("gantry tilt 15.0 deg corrected" in w for w in volume.warnings)
    # The tilt-corrected slices are still the original images: their UIDs stay.
    assert volume.sop_instance_uids == written.sop_instance_uids
    assert "in-plane shift for gantry tilt" in series.metadata["Resampled"]


def test_a_regular_untilted_ct_is_not_resampled_and_reads_natively(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path: one readinto per file, no decoder, no resampling."""
    array = np.arange(6 * 8 * 8, dtype=np.int16).reshape(6, 8, 8) - 100
    synthetic.write_series(tmp_path / "ct", array, rescale=(1.0, -1024.0), signed=False,
                           seed=102)

    def no_decoding(frame):  # type: ignore[no-untyped-def]
        raise AssertionError("native files must not go through a decoder")

    monkeypatch.setattr(pixels_module, "decode_instance", no_decoding)
    series = mprviewer.open_study(tmp_path / "ct").series[0]
    assert series.geometry.plan is None
    volume = series.load()
    np.testing.assert_array_equal(volume.array, array)
    assert volume.array.dtype == np.int16


# -- gaps and uneven spacing ------------------------------------------------------------------
def test_missing_slices_are_filled_at_their_true_positions(tmp_path: Path) -> None:
    values = (np.arange(12, dtype=np.int16) * 100)[:, None, None] * np.ones((1, 6, 5), np.int16)
    written = synthetic.write_series(tmp_path / "gap", values, skip=[4, 5], slice_spacing=2.5,
                                     origin=(3.0, -4.0, -20.0), shuffle=5, seed=103)
    series = mprviewer.open_study(tmp_path / "gap").series[0]
    assert series.num_images == 10 and series.shape == (12, 6, 5)
    volume = series.load()
    np.testing.assert_allclose(volume.affine, written.affine, atol=1e-6)
    np.testing.assert_array_equal(volume.array, values)  # linear between 300 and 600
    uids = dict(zip(written.ks, written.sop_instance_uids, strict=True))
    assert volume.sop_instance_uids == [uids.get(k, "") for k in range(12)]
    np.testing.assert_allclose(volume.slice_positions, -20.0 + 2.5 * np.arange(12))
    text = " | ".join(volume.warnings)
    assert "missing slice(s): about 2 between k=3 and k=4" in text
    assert "interpolated at k=4-5" in text
    assert series.slice_header(4) is None
    assert series.slice_header(6).SOPInstanceUID == uids[6]


def test_uneven_spacing_is_resampled_onto_a_regular_grid(tmp_path: Path) -> None:
    z = np.array([0.0, 1.0, 2.0, 3.4, 4.4, 5.4])
    values = np.rint(100 * z).astype(np.int16)[:, None, None] * np.ones((1, 4, 4), np.int16)
    positions = np.stack([np.zeros(6), np.zeros(6), z], axis=1)
    synthetic.write_series(tmp_path / "uneven", values, positions=positions, seed=104)
    volume = mprviewer.open_study(tmp_path / "uneven").series[0].load()
    assert volume.shape[0] == 6  # 5.4 mm at the usual 1 mm step: 6 slices 1.08 mm apart
    np.testing.assert_allclose(np.diff(volume.slice_positions), 1.08)
    np.testing.assert_allclose(volume.affine[:3, 2], (0, 0, 1.08))
    # Linear data stays linear: each slice holds 100 x its true z (rounded to integers).
    for k in range(6):
        z_k = volume.ijk_to_lps((0, 0, k))[2]
        assert abs(float(volume.array[k].mean()) - 100 * z_k) <= 0.5, k
    assert any("uneven slice spacing" in w for w in volume.warnings)
    assert any("resampled onto a regular grid of 6 slices 1.080 mm apart; interpolated at k=1-4"
               in w for w in volume.warnings)


# -- several stacks in one series ---------------------------------------------------------------
def coded_volume(shape: tuple[int, int, int], volume: int) -> np.ndarray:
    """Values that differ by 1000 from slice to slice and by 100 from volume to volume (and
    by row and column), so a slice out of place or taken from another volume shows."""
    k, j, i = np.indices(shape)
    return (1000 * k + 100 * volume + 7 * j + i).astype(np.int16)


# One place for the repeated volumes: coronal, non-unit spacings, off the origin.
REPEAT_GEOMETRY = {"orientation": "coronal", "origin": (-7.5, 12.0, 30.0),
                   "pixel_spacing": (0.8, 0.6), "slice_spacing": 2.5}


def _two_timepoints(tmp_path: Path, keyword: str,
                    values: tuple) -> list[tuple[np.ndarray, synthetic.WrittenSeries]]:
    """Two volumes at the same positions in one series, told apart only by ``keyword``."""
    uid = synthetic.make_uid(105, "4d")
    written = []
    for n, value in enumerate(values):
        array = coded_volume((5, 4, 4), n + 1)
        written.append((array, synthetic.write_series(
            tmp_path / "fmri", array, series_uid=uid, seed=f"t{n}", modality="MR",
            series_number=9, description="BOLD", tags={keyword: value},
            file_names=f"T{n}_%03d", shuffle=n + 1, **REPEAT_GEOMETRY)))
    return written


@pytest.mark.parametrize(("keyword", "values", "label"), [
    ("TemporalPositionIdentifier", (1, 2), "time point"),
    ("EchoNumbers", (1, 2), "echo"),
    ("AcquisitionNumber", (3, 4), "acquisition"),
])
def test_repeated_positions_split_into_labelled_stacks(tmp_path: Path, keyword: str,
                                                       values: tuple, label: str) -> None:
    """Each split Series is exactly one written volume: its voxels, slice for slice, and
    its affine."""
    written = _two_timepoints(tmp_path, keyword, values)
    study = mprviewer.open_study(tmp_path / "fmri")
    assert [s.name for s in study.series] == [f"fmri [{label} {values[0]}]",
                                              f"fmri [{label} {values[1]}]"]
    for n, series in enumerate(study.series):
        volume = series.load()
        assert volume.shape == (5, 4, 4)
        array, files = written[n]
        np.testing.assert_array_equal(volume.array, array)  # volume n's values, nothing else
        np.testing.assert_allclose(volume.affine, files.affine, atol=1e-6)
        assert volume.sop_instance_uids == files.sop_instance_uids
        assert not any("missing slice" in w for w in volume.warnings)
        assert any("holds 2 stacks" in w for w in volume.warnings)
        assert series.metadata["Split"].endswith(f"{label} {values[n]}")


def test_diffusion_directions_split_and_name_b_value_and_gradient(tmp_path: Path) -> None:
    """Three volumes (b0 and two gradients) at the same positions: each labelled split
    Series holds exactly its own volume's voxels and affine."""
    uid = synthetic.make_uid(106, "dwi")
    volumes = [(0, None), (1000, [1.0, 0.0, 0.0]), (1000, [0.0, 1.0, 0.0])]
    expected = {}
    for n, (b, gradient) in enumerate(volumes):
        tags: dict = {"DiffusionBValue": b}
        if gradient is not None:
            tags["DiffusionGradientOrientation"] = gradient
        array = coded_volume((4, 4, 4), n)
        files = synthetic.write_series(tmp_path / "dwi", array, tags=tags,
                                       series_uid=uid, seed=f"d{n}", modality="MR",
                                       file_names=f"D{n}_%03d", shuffle=n + 3,
                                       **REPEAT_GEOMETRY)
        expected[n] = (array, files)
    series = mprviewer.open_study(tmp_path / "dwi").series
    labels = sorted(s.split_label for s in series)
    assert labels == ["b-value 0", "b-value 1000, gradient 0\\1\\0",
                      "b-value 1000, gradient 1\\0\\0"]
    by_label = {s.split_label: s.load() for s in series}
    volume_of = {"b-value 0": 0, "b-value 1000, gradient 1\\0\\0": 1,
                 "b-value 1000, gradient 0\\1\\0": 2}
    for label, n in volume_of.items():
        array, files = expected[n]
        np.testing.assert_array_equal(by_label[label].array, array, err_msg=label)
        np.testing.assert_allclose(by_label[label].affine, files.affine, atol=1e-6,
                                   err_msg=label)


def test_localizer_in_an_axial_series_becomes_its_own_series(tmp_path: Path) -> None:
    uid = synthetic.make_uid(107, "ct")
    axial = synthetic.write_series(tmp_path / "ct", np.full((8, 16, 16), 5, np.int16),
                                   series_uid=uid, seed="ax", slice_spacing=3.0)
    synthetic.write_series(tmp_path / "ct", np.full((2, 16, 16), 7, np.int16),
                           series_uid=uid, seed="loc", orientation="sagittal",
                           tags={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
                           file_names="LOC%03d", study_uid=axial.study_uid)
    series = mprviewer.open_study(tmp_path / "ct").series
    assert sorted(s.split_label for s in series) == ["axial 16x16", "localizer sagittal"]
    main = next(s for s in series if s.split_label == "axial 16x16")
    volume = main.load()
    assert volume.shape == (8, 16, 16) and np.all(volume.array == 5)
    np.testing.assert_allclose(volume.affine, axial.affine, atol=1e-6)
    assert not any("missing" in w or "uneven" in w for w in volume.warnings)


def test_stacks_of_different_sizes_split(tmp_path: Path) -> None:
    uid = synthetic.make_uid(108, "mixed")
    synthetic.write_series(tmp_path / "m", np.zeros((6, 8, 8), np.int16), series_uid=uid,
                           seed="a")
    synthetic.write_series(tmp_path / "m", np.zeros((5, 12, 10), np.int16), series_uid=uid,
                           seed="b", file_names="B%03d", origin=(0, 0, 100))
    series = mprviewer.open_study(tmp_path / "m").series
    assert sorted((s.split_label, s.shape) for s in series) == [
        ("axial 10x12", (5, 12, 10)), ("axial 8x8", (6, 8, 8))]


# -- Siemens mosaic ---------------------------------------------------------------------------
def csa2(tags: dict[str, list[str]]) -> bytes:
    """A minimal Siemens CSA2 ("SV10") header."""
    out = b"SV10\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77)
    for name, values in tags.items():
        out += name.encode().ljust(64, b"\0")
        out += struct.pack("<i4siii", len(values), b"FD\0\0", 4, len(values), 77)
        for value in values:
            raw = value.encode() + b"\0"
            out += struct.pack("<4i", len(raw), len(raw), 77, len(raw))
            out += raw + b"\0" * (-len(raw) % 4)
    return out


def test_mosaic_tiles_land_at_their_true_positions(tmp_path: Path) -> None:
    """5 slices of 6x4 in a 3x3 mosaic, acquired head to foot (CSA normal -z)."""
    n, tr, tc, side = 5, 6, 4, 3
    tiles = np.arange(n, dtype=np.int16)[:, None, None] * 100 + np.zeros((1, tr, tc), np.int16)
    tiles[1, 2, 3] = 999  # bright voxel: tile 1, row 2, column 3
    mosaic = np.zeros((side * tr, side * tc), np.int16)
    for t in range(n):
        r, c = divmod(t, side)
        mosaic[r * tr:(r + 1) * tr, c * tc:(c + 1) * tc] = tiles[t]
    p0 = np.array([10.0, 20.0, 30.0])  # true position of tile 0, rows 2 mm, columns 3 mm
    corner = p0 - np.array([1, 0, 0]) * 3.0 * (side * tc - tc) / 2 \
        - np.array([0, 1, 0]) * 2.0 * (side * tr - tr) / 2
    written = synthetic.write_series(
        tmp_path / "epi", mosaic[None], modality="MR", origin=corner, pixel_spacing=(2.0, 3.0),
        slice_spacing=4.0, tags={"ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"],
                                 "SpacingBetweenSlices": "4", "Manufacturer": "SIEMENS"},
        seed=109)
    ds = pydicom.dcmread(written[0])
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", n)
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(
        0x10, "OB", csa2({"NumberOfImagesInMosaic": ["5"],
                          "SliceNormalVector": ["0.0", "0.0", "-1.0"]}))
    ds.save_as(written[0])
    volume = mprviewer.open_study(tmp_path / "epi").series[0].load()
    assert volume.shape == (n, tr, tc)
    # Sorted along +z (foot to head): k = 0 is the last acquired tile.
    for k in range(n):
        assert volume.array[k, 0, 0] == 100 * (n - 1 - k)
    i, j, k = np.rint(volume.lps_to_ijk(p0 + np.array([3 * 3.0, 2 * 2.0, -4.0]))).astype(int)
    assert volume.array[k, j, i] == 999
    np.testing.assert_allclose(volume.affine[:3, 2], (0, 0, 4.0))
    np.testing.assert_allclose(volume.ijk_to_lps((0, 0, n - 1)), p0)


# -- enhanced multi-frame -----------------------------------------------------------------------
def _item(**attrs: object) -> Dataset:
    ds = Dataset()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def write_enhanced(path: Path, stored: np.ndarray, z: list[float], times: list[int],
                   rescale: list[tuple[float, float]], order: list[int]) -> None:
    """An Enhanced MR object: frames written in ``order``, each with its own position,
    temporal position and rescale in per-frame functional groups."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", 4, "perfusion"
    ds.Rows, ds.Columns = stored.shape[1:]
    ds.NumberOfFrames = len(order)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=[0.5, 0.25], SliceThickness=2)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
    )])
    ds.DimensionIndexSequence = Sequence([
        _item(DimensionIndexPointer=0x00209128, FunctionalGroupPointer=0x00209111),
        _item(DimensionIndexPointer=0x00209057, FunctionalGroupPointer=0x00209111),
    ])
    per_frame = []
    for n in order:
        slope, intercept = rescale[n]
        per_frame.append(_item(
            FrameContentSequence=Sequence([_item(
                StackID="1", InStackPositionNumber=z.index(z[n]) + 1,
                TemporalPositionIndex=times[n], DimensionIndexValues=[times[n], 1])]),
            PlanePositionSequence=Sequence([_item(ImagePositionPatient=[-5, 7, z[n]])]),
            PixelValueTransformationSequence=Sequence([_item(
                RescaleSlope=slope, RescaleIntercept=intercept, RescaleType="US")]),
        ))
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = np.ascontiguousarray(stored[order]).astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_object_with_two_time_points_and_per_frame_rescale(tmp_path: Path) -> None:
    z = [0.0, 3.0, 6.0, 0.0, 3.0, 6.0]
    times = [1, 1, 1, 2, 2, 2]
    rescale = [(1.0, 0.0), (2.0, 0.0), (0.5, 10.0), (1.0, -5.0), (1.0, 0.0), (3.0, 1.0)]
    stored = np.stack([np.full((3, 4), 10 + n, np.uint16) for n in range(6)])
    (tmp_path / "enh").mkdir()
    write_enhanced(tmp_path / "enh" / "mf.dcm", stored, z, times, rescale,
                   order=[4, 0, 5, 2, 1, 3])
    series = mprviewer.open_study(tmp_path / "enh").series
    assert [s.split_label for s in series] == ["time point 1", "time point 2"]
    for t, s in enumerate(series):
        volume = s.load()
        assert volume.shape == (3, 3, 4)
        np.testing.assert_allclose(volume.spacing, (0.25, 0.5, 3.0))
        for k in range(3):
            n = 3 * t + k  # frame at z = 3k of time point t + 1
            expected = (10 + n) * rescale[n][0] + rescale[n][1]
            assert np.all(volume.array[k] == expected), (t, k)
            np.testing.assert_allclose(volume.ijk_to_lps((0, 0, k)), (-5, 7, 3.0 * k))


# -- value types ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["float32", "float64"])
def test_float_pixel_data_is_kept_exact(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0, 1e3, size=(3, 5, 6)).astype(kind)
    synthetic.write_series(tmp_path / "f", values, float_pixels=kind, modality="MR", seed=110)
    volume = mprviewer.open_study(tmp_path / "f").series[0].load()
    assert volume.array.dtype == np.dtype(kind)
    np.testing.assert_array_equal(volume.array, values)


def test_32_bit_integers_are_kept_exact(tmp_path: Path) -> None:
    values = np.array([[[-2_000_000, 0], [65_536, 2_000_000_000]]] * 3, dtype=np.int32)
    synthetic.write_series(tmp_path / "i32", values, bits_allocated=32, signed=True,
                           modality="MR", seed=111)
    volume = mprviewer.open_study(tmp_path / "i32").series[0].load()
    assert volume.array.dtype == np.int32
    np.testing.assert_array_equal(volume.array, values)


LOSSLESS = {
    "1.2.840.10008.1.2": "implicit VR little endian",
    "1.2.840.10008.1.2.2": "explicit VR big endian",
    "1.2.840.10008.1.2.1.99": "deflated explicit VR little endian",
    "1.2.840.10008.1.2.5": "RLE lossless",
    "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
}


# Lossy syntaxes are checked against pydicom's decoders in the real-data tests.
@pytest.mark.parametrize("syntax", sorted(LOSSLESS))
def test_every_lossless_syntax_round_trips(tmp_path: Path, syntax: str) -> None:
    assert syntax in synthetic.encodable_syntaxes(), f"cannot write {LOSSLESS[syntax]}"
    values = np.random.default_rng(3).integers(-1024, 3000, size=(3, 40, 48)).astype(np.int16)
    synthetic.write_series(tmp_path / "s", values, transfer_syntax=syntax, shuffle=2,
                           rescale=(1.0, -1024.0), signed=False, seed=112)
    volume = mprviewer.open_study(tmp_path / "s").series[0].load()
    np.testing.assert_array_equal(volume.array, values)


# -- what the user sees -------------------------------------------------------------------------
def test_info_lists_splits_resampling_and_tilt(tmp_path: Path) -> None:
    """The series table tells the user about a tilt, a gap and a series split into two time
    points: one row per time point, each saying what the split is."""
    synthetic.write_series(tmp_path / "study" / "TILT", blob_volume((6, 12, 10), 3, 5, 5),
                           tilt=20.0, slice_spacing=2.0, seed=113, series_number=1)
    synthetic.write_series(tmp_path / "study" / "GAP", np.zeros((8, 4, 4), np.int16),
                           skip=[3], seed=114, series_number=2)
    uid = synthetic.make_uid(116, "4d")
    for t in (1, 2):
        synthetic.write_series(tmp_path / "study" / "FMRI", coded_volume((5, 4, 4), t),
                               series_uid=uid, seed=f"info-t{t}", modality="MR",
                               series_number=3, tags={"TemporalPositionIdentifier": t},
                               file_names=f"T{t}_%03d", shuffle=t)
    out = subprocess.run([sys.executable, "-m", "mprviewer", "info", str(tmp_path / "study")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "warning: gantry tilt 20.0 deg corrected" in out.stdout
    assert "warning: missing slice(s): about 1 between k=2 and k=3" in out.stdout
    assert "interpolated at k=3" in out.stdout
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert lines[0].endswith(": 4 series")
    for t in (1, 2):
        rows = [line.split() for line in lines if f"FMRI [time point {t}]" in line]
        assert rows == [[str(t + 1), "FMRI", "[time", "point", f"{t}]", "MR", "4x4x5",
                         "1x1x1", "axial"]], rows  # indices 0, 1: TILT, GAP
        assert lines.count(f"warning: series {uid} holds 2 stacks; this one is: "
                           f"time point {t}") == 1


def _patient_centroid(values: np.ndarray, to_lps: np.ndarray) -> np.ndarray:
    """Centre of mass (above air) in LPS; ``to_lps`` maps the array's index order."""
    weights = np.clip(values.astype(np.float64) + 1000.0, 0, None).ravel()
    idx = np.indices(values.shape).reshape(values.ndim, -1).T
    centre = (idx * weights[:, None]).sum(0) / weights.sum()
    return (to_lps @ np.append(centre, 1.0))[:3]


def test_tilt_correction_agrees_with_dcm2niix(tmp_path: Path) -> None:
    import nibabel

    exe = Path(sys.executable).parent / "dcm2niix"
    assert exe.exists(), "dcm2niix is a test dependency (pip install dcm2niix)"
    array = blob_volume((10, 40, 20), k=7, j=11, i=6)
    written = synthetic.write_series(tmp_path / "dcm", array, tilt=15.0, slice_spacing=2.0,
                                     pixel_spacing=(0.5, 0.8), origin=(-8.0, -10.0, 40.0),
                                     seed=115)
    truth = (written.affine @ np.array([6.0, 11.0, 7.0, 1.0]))[:3]
    subprocess.run([str(exe), "-z", "n", "-o", str(tmp_path), "-f", "out", str(tmp_path / "dcm")],
                   capture_output=True, check=True)
    image = nibabel.load(tmp_path / "out_Tilt_1.nii")
    ras_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    theirs = _patient_centroid(np.asarray(image.get_fdata()), ras_to_lps @ image.affine)
    volume = mprviewer.open_study(tmp_path / "dcm").series[0].load()
    ijk_order = np.eye(4)[[2, 1, 0, 3]]  # array[k, j, i] -> (i, j, k)
    ours = _patient_centroid(volume.array, volume.affine @ ijk_order)
    # The same grid as dcm2niix's tilt-corrected output (x, y, z = i, j, k there).
    assert image.shape == volume.shape[::-1]
    np.testing.assert_allclose(ours, truth, atol=0.02)
    np.testing.assert_allclose(theirs, truth, atol=0.25)  # within half a 0.5 mm row
