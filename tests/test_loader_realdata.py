"""The loader on real files: pydicom's test data (pydicom and pydicom-data) and the scanner
files nibabel ships (Siemens mosaics, a Philips enhanced MR), checked against SimpleITK,
nibabel and pydicom's own decoders."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

import mprviewer
from mprviewer.errors import DicomError, MissingCodecError
from mprviewer.io import pixels as pixels_module

pytestmark = pytest.mark.filterwarnings("ignore:The DICOM readers are highly experimental")


def data(name: str) -> str:
    path = get_testdata_file(name)
    assert path is not None, f"{name} is missing: install the test dependency pydicom-data"
    return str(path)


def nibabel_file(name: str, tmp_path: Path) -> Path:
    import nibabel

    source = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / name
    if name.endswith(".gz"):
        target = tmp_path / name[:-3]
        with gzip.open(source) as fh:
            target.write_bytes(fh.read())
        return target
    return source


def load_one(path: str | Path) -> mprviewer.io.volume.Volume:  # type: ignore[name-defined]
    study = mprviewer.open_study(path)
    assert len(study.series) == 1, [s.name for s in study.series]
    return study.series[0].load()


def index_map(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The 4x4 taking our (i, j, k) to the reference's voxel index of the same LPS point.

    It must be a signed permutation with integer offsets: the two grids share voxel centres.
    """
    mapping = np.linalg.inv(reference) @ ours
    assert np.allclose(mapping[:3, :3], np.round(mapping[:3, :3]), atol=2e-3), mapping
    assert np.allclose(mapping[:3, 3], np.round(mapping[:3, 3]), atol=2e-3), mapping
    assert np.allclose(np.abs(np.round(mapping[:3, :3])).sum(axis=0), 1)
    return np.round(mapping)


def same_voxels_in_patient(ours: np.ndarray, affine: np.ndarray, theirs: np.ndarray,
                           their_affine: np.ndarray) -> None:
    """Every voxel of ours equals the reference voxel at the same LPS point.

    ``theirs`` is indexed [x, y, z] by the reference affine's (index0, index1, index2).
    """
    mapping = index_map(affine, their_affine)
    k, j, i = np.indices(ours.shape[:3])
    ijk1 = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    idx = (mapping @ ijk1)[:3].astype(int)
    np.testing.assert_array_equal(ours.reshape(i.size, *ours.shape[3:]),
                                  theirs[idx[0], idx[1], idx[2]])


def sitk_affine(image) -> np.ndarray:
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine


# -- transfer syntaxes ----------------------------------------------------------------------
MR_SMALL_VARIANTS = [
    "MR_small_implicit.dcm",  # implicit VR little endian
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "MR_small_expb.dcm",  # explicit VR big endian
    "MR_small_RLE.dcm",  # RLE lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
]


@pytest.mark.parametrize("name", MR_SMALL_VARIANTS)
def test_lossless_syntaxes_give_the_same_voxels_as_explicit_little_endian(name: str) -> None:
    reference = load_one(data("MR_small.dcm"))
    volume = load_one(data(name))
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine, reference.affine)
    assert volume.array.dtype == np.int16  # signed 16-bit MR, no rescale


@pytest.mark.parametrize("name", ["JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
                                  "JPGExtended.dcm", "image_dfl.dcm",
                                  "JPEGLSNearLossless_16.dcm", "693_J2KI.dcm"])
def test_jpeg_family_and_deflate_match_pydicom_decoders(name: str) -> None:
    """JPEG lossless, extended (12-bit), near-lossless JPEG-LS, lossy J2K and deflate."""
    ds = pydicom.dcmread(data(name))
    expected = ds.pixel_array.astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    volume = load_one(data(name))
    assert volume.array.shape == (1, ds.Rows, ds.Columns)
    np.testing.assert_allclose(volume.array[0], expected * slope + intercept)


def test_damaged_jpeg_is_a_dicom_error_not_a_missing_codec() -> None:
    """JPEG-lossy.dcm has a broken scan header that every decoder refuses."""
    study = mprviewer.open_study(data("JPEG-lossy.dcm"))
    with pytest.raises(DicomError, match=r"JPEG-lossy\.dcm: pixel data cannot be decoded") as info:
        study.series[0].load()
    assert not isinstance(info.value, MissingCodecError)


def test_jpeg_2000_lossless_colour_equals_the_uncompressed_file() -> None:
    """US1: YBR_RCT in JPEG 2000 decodes to exactly the RGB of the uncompressed copy."""
    rgb = load_one(data("US1_UNCR.dcm"))
    j2k = load_one(data("US1_J2KR.dcm"))
    assert rgb.array.shape == (1, 480, 640, 3) and rgb.array.dtype == np.uint8
    np.testing.assert_array_equal(j2k.array, rgb.array)
    assert rgb.array.max() > 100  # a real image, not an empty frame


def test_missing_codec_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000Lossless

    decoder = get_decoder(JPEG2000Lossless)
    monkeypatch.setattr(decoder, "_available", {})
    study = mprviewer.open_study(data("MR_small_jp2klossless.dcm"))
    with pytest.raises(MissingCodecError, match="install pylibjpeg-openjpeg") as info:
        study.series[0].load()
    assert "MR_small_jp2klossless.dcm" in str(info.value)
    assert "JPEG 2000" in str(info.value)


# -- colour and value types -------------------------------------------------------------------
def test_ybr_full_and_422_become_rgb() -> None:
    truth = load_one(data("SC_rgb.dcm")).array.astype(int)
    for name in ("SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm",
                 "SC_rgb_jpeg_dcmtk.dcm"):  # the last one is JPEG baseline in YBR_FULL
        volume = load_one(data(name))
        assert volume.array.shape == truth.shape, name
        # YBR round trips (and JPEG) lose a few levels; a swapped or unconverted channel
        # would be off by ~100.
        assert np.abs(volume.array.astype(int) - truth).max() <= 6, name


def test_ybr_full_422_jpeg_baseline_multiframe_is_rgb() -> None:
    volume = load_one(data("examples_ybr_color.dcm"))
    ds = pydicom.dcmread(data("examples_ybr_color.dcm"))
    assert volume.array.shape == (30, 240, 320, 3)
    # Frames in order (no positions: InstanceNumber, then frame index); RGB as pydicom gives.
    np.testing.assert_array_equal(volume.array, ds.pixel_array)


def test_palette_colour_goes_through_its_lookup_table() -> None:
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(data("OBXXXX1A.dcm"))
    expected = apply_color_lut(ds.pixel_array, ds)
    volume = load_one(data("OBXXXX1A.dcm"))
    assert volume.array.shape == (1, 600, 800, 3)
    np.testing.assert_array_equal(volume.array[0], (expected >> 8).astype(np.uint8))


def test_rgb_16_and_32_bit_keep_their_values() -> None:
    for name in ("SC_rgb_16bit.dcm", "SC_rgb_32bit.dcm"):
        ds = pydicom.dcmread(data(name))
        volume = load_one(data(name))
        np.testing.assert_array_equal(volume.array[0], ds.pixel_array)


def test_monochrome1_real_cr_is_inverted() -> None:
    ds = pydicom.dcmread(data("RG1_UNCR.dcm"))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    volume = load_one(data("RG1_UNCR.dcm"))
    total = volume.array.astype(np.int64) + ds.pixel_array.astype(np.int64)
    assert np.ptp(total) == 0  # value = constant - stored: bright means dense
    assert any("MONOCHROME1" in w for w in volume.warnings)


def test_rt_dose_32_bit_scaled_to_gray() -> None:
    ds = pydicom.dcmread(data("rtdose.dcm"))
    volume = load_one(data("rtdose.dcm"))
    assert volume.array.shape == (15, 10, 10)
    np.testing.assert_allclose(volume.array, ds.pixel_array * float(ds.DoseGridScaling),
                               rtol=1e-6)
    image = sitk.ReadImage(data("rtdose.dcm"))  # frames along GridFrameOffsetVector
    np.testing.assert_allclose(volume.affine, sitk_affine(image), atol=1e-4)


# -- multi-frame ------------------------------------------------------------------------------
def test_multiframe_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = pixels_module.decode_instance

    def counting(frame):  # type: ignore[no-untyped-def]
        calls.append(frame.instance.member.name)
        return original(frame)

    monkeypatch.setattr(pixels_module, "decode_instance", counting)
    volume = load_one(data("emri_small_RLE.dcm"))
    assert volume.array.shape == (10, 64, 64)
    assert len(calls) == 1
    np.testing.assert_array_equal(volume.array, load_one(data("emri_small.dcm")).array)


def test_enhanced_ct_frames_sit_where_simpleitk_puts_them() -> None:
    path = data("eCT_Supplemental.dcm")
    volume = load_one(path)
    image = sitk.ReadImage(path)
    theirs = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))  # [x, y, z]
    # Shared PixelValueTransformation: intercept -1024 applied (HU).
    same_voxels_in_patient(volume.array, volume.affine, theirs, sitk_affine(image))
    assert volume.units == "HU" and volume.array.min() == -1024
    # Per-frame positions at z = -149 and -159; the normal (-x cross y) points to -z.
    np.testing.assert_allclose(volume.ijk_to_lps((0, 0, 0))[2], -149.0)
    np.testing.assert_allclose(volume.ijk_to_lps((0, 0, 1))[2], -159.0)


# nibabel says why it leaves the values unscaled (no Philips private scale factor).
@pytest.mark.filterwarnings("ignore:Unable to find Philips private scale factor")
def test_philips_enhanced_mr_geometry_matches_nibabel(tmp_path: Path) -> None:
    """Real Philips functional groups: our frames land where nibabel puts them.

    nibabel ships this file with all-zero pixels (to keep it small), so a voxel comparison
    would prove nothing; a copy with random 12-bit stored values is compared as well.
    """
    from nibabel.nicom import dicomwrappers

    path = nibabel_file("philips_mprage.dcm.gz", tmp_path)
    series = mprviewer.open_study(path).series
    assert len(series) == 1 and series[0].shape == (176, 256, 256)
    volume = series[0].load()
    wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(path))
    # nibabel indexes (row, column, slice); ours maps to it by a signed permutation.
    mapping = index_map(volume.affine, wrapper.affine)
    assert abs(mapping[1, 0]) == 1 and abs(mapping[0, 1]) == 1
    # Per-frame rescale (slope 2.1079...) gives float values.
    assert volume.array.dtype == np.float32

    ds = pydicom.dcmread(path)
    stored = np.random.default_rng(8).integers(0, 1 << int(ds.BitsStored),
                                               size=(int(ds.NumberOfFrames), ds.Rows,
                                                     ds.Columns))
    ds.PixelData = stored.astype("<u2").tobytes()
    filled = tmp_path / "philips_mprage_filled.dcm"
    ds.save_as(filled)
    transforms = {(float(f.PixelValueTransformationSequence[0].RescaleSlope),
                   float(f.PixelValueTransformationSequence[0].RescaleIntercept))
                  for f in ds.PerFrameFunctionalGroupsSequence}
    assert len(transforms) == 1  # one rescale for every frame
    slope, intercept = transforms.pop()
    filled_volume = load_one(filled)
    filled_wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(filled))
    # nibabel places the frames but leaves this file's values unscaled: the real-world
    # value is stored * slope + intercept, as the nearest float32.
    theirs = np.asarray(filled_wrapper.get_data())
    assert theirs.dtype == np.uint16 and theirs.max() > 0
    np.testing.assert_allclose(filled_volume.affine, volume.affine)
    same_voxels_in_patient(filled_volume.array, filled_volume.affine,
                           (theirs * slope + intercept).astype(np.float32),
                           filled_wrapper.affine)


# -- Siemens mosaics --------------------------------------------------------------------------
def test_siemens_mosaic_unpacked_like_nibabel(tmp_path: Path) -> None:
    from nibabel.nicom import dicomwrappers

    path = nibabel_file("siemens_dwi_1000.dcm.gz", tmp_path)
    series = mprviewer.open_study(path).series
    assert len(series) == 1
    volume = series[0].load()
    assert volume.array.shape == (48, 128, 128)
    assert any("mosaic unpacked into 48 slices" in w for w in volume.warnings)
    wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(path))
    theirs = np.asarray(wrapper.get_data())  # [row, column, slice]
    ours_as_xyz = volume.array  # compare through the LPS mapping
    mapping = index_map(volume.affine, wrapper.affine)
    assert np.allclose(np.abs(mapping[:3, :3]), [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    same_voxels_in_patient(ours_as_xyz, volume.affine, theirs, wrapper.affine)


def test_mosaic_that_cannot_be_cut_is_shown_tiled_with_a_warning() -> None:
    import nibabel

    path = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / "0.dcm"
    series = mprviewer.open_study(path).series[0]
    assert series.shape == (1, 256, 256)
    assert any("does not split" in w for w in series.warnings)
    assert "does not split" in series.metadata["Warnings"]


def test_anonymised_mosaic_reads_slice_count_from_series_protocol(tmp_path: Path) -> None:
    """An anonymiser stripped the image CSA header and every private creator: the slice count
    and direction come from the series CSA header's protocol, so the volume is the same."""
    source = nibabel_file("siemens_dwi_1000.dcm.gz", tmp_path)
    whole = load_one(source)
    ds = pydicom.dcmread(source)
    del ds[0x0029, 0x1010]
    for element in list(ds):
        if element.tag.is_private_creator:
            del ds[element.tag]
    assert (0x0029, 0x1020) in ds
    assert (0x0019, 0x0010) not in ds and (0x0029, 0x0010) not in ds
    stripped_path = tmp_path / "anonymised.dcm"
    ds.save_as(stripped_path)
    stripped = load_one(stripped_path)
    assert stripped.array.shape == (48, 128, 128)
    assert np.array_equal(stripped.array, whole.array)
    assert np.allclose(stripped.affine, whole.affine, atol=1e-4)
    assert not any("tiled" in w for w in stripped.warnings)


def test_mosaic_protocol_text_is_parsed_from_ascconv_block() -> None:
    from mprviewer.io.mosaic import parse_ascconv

    text = (b"junk sSliceArray.lSize = 99\n### ASCCONV BEGIN object=MrProtDataImpl ###\n"
            b"sSliceArray.lSize                        = 36\n"
            b'tProtocolName                            = ""ep2d""\n'
            b"sSliceArray.asSlice[0].sNormal.dTra      = -0.9\n### ASCCONV END ###")
    protocol = parse_ascconv(text)
    assert protocol["sSliceArray.lSize"] == "36"
    assert protocol["sSliceArray.asSlice[0].sNormal.dTra"] == "-0.9"
