"""The synthetic writer must write what it says: geometry, values, syntaxes, file layout.

Geometry is checked against an independent reader (SimpleITK/GDCM), values against pydicom.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from mprviewer.io.synthetic import (
    affine_for,
    encodable_syntaxes,
    orientation_cosines,
    write_series,
)


def _volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Values that make any transposition, flip or shift of the stack visible."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(shape)
    return (k * 1000 + j * 30 + i - 1500 + rng.integers(0, 3, size=shape)).astype(np.int16)


def _read_sitk(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


OBLIQUE = (0.9, 0.3, 0.3162, -0.35, 0.95, 0.1)


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal", OBLIQUE])
def test_geometry_matches_simpleitk(tmp_path, orientation):
    array = _volume((7, 24, 32))
    written = write_series(
        tmp_path,
        array,
        orientation=orientation,
        origin=(-12.5, 40.0, 103.25),
        pixel_spacing=(0.6, 0.8),
        slice_spacing=2.5,
        shuffle=5,
        instance_numbers="scrambled",
        seed=3,
    )
    image = _read_sitk(tmp_path)
    affine = written.affine
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    np.testing.assert_allclose(image.GetOrigin(), affine[:3, 3], atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), spacing, atol=1e-5)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(direction, affine[:3, :3] / spacing, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)
    # A voxel's position agrees between both readers' geometry.
    ijk = (5, 17, 4)
    expected = (affine @ np.array([*ijk, 1.0]))[:3]
    np.testing.assert_allclose(image.TransformIndexToPhysicalPoint(ijk), expected, atol=1e-4)


def test_shuffled_names_and_scrambled_numbers_do_not_follow_slices(tmp_path):
    array = _volume((12, 8, 8))
    written = write_series(tmp_path, array, shuffle=1, instance_numbers="scrambled", seed=1)
    names = [p.name for p in written]  # in slice order
    assert names != sorted(names)
    numbers = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in written]
    assert sorted(numbers) == list(range(1, 13))
    assert numbers != sorted(numbers) and numbers != sorted(numbers, reverse=True)
    # Each file still holds its own slice at its own position.
    for k, path in zip(written.ks, written, strict=True):
        ds = pydicom.dcmread(path)
        np.testing.assert_array_equal(ds.pixel_array, array[k])
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient],
            written.affine[:3, 3] + k * written.affine[:3, 2],
        )


def test_affine_for_places_voxels_along_cosines():
    row, col = orientation_cosines("coronal")
    affine = affine_for((1.0, 2.0, 3.0), row, col, (0.5, 0.25), 4.0)
    # Column i steps along the row cosine by the column spacing, j along the column cosine.
    np.testing.assert_allclose(affine @ [1, 0, 0, 1], [1.25, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(affine @ [0, 1, 0, 1], [1.0, 2.0, 2.5, 1.0])
    # Slices step along row x column = +y (posterior) for a coronal stack.
    np.testing.assert_allclose(affine @ [0, 0, 1, 1], [1.0, 6.0, 3.0, 1.0])


def test_rescaled_values_round_trip_as_hu(tmp_path):
    hu = ((_volume((3, 16, 16)) + 500) // 2 * 2).astype(np.float64)
    written = write_series(tmp_path, hu, rescale=(2.0, -1024.0), signed=False)
    for k, path in enumerate(written):
        ds = pydicom.dcmread(path)
        assert ds.PixelRepresentation == 0
        assert float(ds.RescaleSlope) == 2.0 and float(ds.RescaleIntercept) == -1024.0
        np.testing.assert_array_equal(ds.pixel_array, (hu[k] + 1024) / 2)
        np.testing.assert_array_equal(pydicom.pixels.apply_modality_lut(ds.pixel_array, ds), hu[k])


def test_values_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(ValueError, match="do not fit"):
        write_series(tmp_path, np.full((1, 4, 4), -2000.0), rescale=(1.0, -1024.0), signed=False)


LOSSLESS = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
]


def test_claimed_syntaxes_are_installed():
    assert set(LOSSLESS) | {JPEG2000} <= set(encodable_syntaxes())


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda uid: uid.name)
@pytest.mark.parametrize("signed", [True, False])
def test_transfer_syntax_decodes_to_the_same_pixels(tmp_path, syntax, signed):
    array = _volume((2, 40, 48))
    if not signed:
        array = (array.astype(np.int32) + 1600).astype(np.uint16)
    written = write_series(tmp_path, array, transfer_syntax=syntax, signed=signed, bits_stored=16)
    for k, path in enumerate(written):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == syntax
        np.testing.assert_array_equal(ds.pixel_array, array[k])
    if syntax == ExplicitVRBigEndian:
        raw = pydicom.dcmread(written[0]).PixelData
        assert raw[:2] == int(array[0, 0, 0]).to_bytes(2, "big", signed=signed)


def test_lossy_jpeg2000_stays_close(tmp_path):
    array = np.tile(np.linspace(0, 2000, 64, dtype=np.float64), (2, 64, 1)).astype(np.uint16)
    written = write_series(tmp_path, array, transfer_syntax=JPEG2000, signed=False)
    decoded = pydicom.dcmread(written[1]).pixel_array.astype(np.float64)
    assert np.abs(decoded - array[1]).mean() < 20


def test_files_without_preamble_are_bare_datasets(tmp_path):
    array = _volume((2, 8, 8))
    for syntax in (ImplicitVRLittleEndian, ExplicitVRLittleEndian):
        folder = tmp_path / syntax.name
        written = write_series(
            folder, array, with_preamble=False, extension="", transfer_syntax=syntax
        )
        data = written[1].read_bytes()
        assert data[128:132] != b"DICM" and not written[1].suffix
        ds = pydicom.dcmread(written[1], force=True)
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        np.testing.assert_array_equal(ds.pixel_array, array[1])


def test_high_bits_hold_junk_but_stored_bits_hold_values(tmp_path):
    array = (np.arange(2 * 16 * 16).reshape(2, 16, 16) * 7 % 4096).astype(np.uint16)
    written = write_series(tmp_path, array, signed=False, bits_stored=12, high_bit_noise=True)
    ds = pydicom.dcmread(written[0])
    assert (ds.BitsStored, ds.HighBit) == (12, 11)
    raw = np.frombuffer(ds.PixelData, dtype="<u2").reshape(16, 16)
    assert (raw >> 12).min() > 0
    np.testing.assert_array_equal(raw & 0x0FFF, array[0])


def test_same_seed_writes_identical_files(tmp_path):
    array = _volume((4, 8, 8))
    a = write_series(tmp_path / "a", array, seed=9, shuffle=2)
    b = write_series(tmp_path / "b", array, seed=9, shuffle=2)
    c = write_series(tmp_path / "c", array, shuffle=2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a.series_uid == b.series_uid != c.series_uid
    assert len(set(a.sop_instance_uids)) == 4


def test_gantry_tilt_shears_positions_along_the_column_axis(tmp_path):
    array = _volume((5, 16, 16))
    written = write_series(tmp_path, array, slice_spacing=2.0, tilt=15.0, seed=1)
    ipps = np.array([[float(v) for v in pydicom.dcmread(p).ImagePositionPatient] for p in written])
    steps = np.diff(ipps, axis=0)
    np.testing.assert_allclose(steps, [[0.0, 2.0 * np.tan(np.radians(15.0)), 2.0]] * 4, atol=1e-5)
    assert float(pydicom.dcmread(written[0]).GantryDetectorTilt) == 15.0
    np.testing.assert_allclose(written.affine[:3, 2], steps[0], atol=1e-5)


def test_skipped_slices_leave_a_gap(tmp_path):
    array = _volume((6, 8, 8))
    written = write_series(tmp_path, array, skip=[2, 3], slice_spacing=3.0)
    assert written.ks == [0, 1, 4, 5] and len(list(tmp_path.iterdir())) == 4
    z = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in written]
    assert z == [0.0, 3.0, 12.0, 15.0]


def test_monochrome1_rgb_ybr_and_float(tmp_path):
    gray = _volume((2, 8, 8)).astype(np.uint16) % 1000
    m1 = write_series(tmp_path / "m1", gray, photometric="MONOCHROME1", signed=False)
    ds = pydicom.dcmread(m1[0])
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_array_equal(ds.pixel_array, gray[0])

    rgb = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    rgb[:, :, 4:, 2] = 255  # blue right half
    for photometric in ("RGB", "YBR_FULL"):
        written = write_series(tmp_path / photometric, rgb, photometric=photometric, modality="OT")
        ds = pydicom.dcmread(written[1])
        assert ds.PhotometricInterpretation == photometric and ds.SamplesPerPixel == 3
        stored = np.frombuffer(ds.PixelData, dtype=np.uint8).reshape(8, 8, 3)
        back = pydicom.pixels.convert_color_space(stored, photometric, "RGB")
        assert np.abs(back.astype(int) - rgb[1]).max() <= 2
        assert np.array_equal(stored, rgb[1]) == (photometric == "RGB")
        # pydicom's pixel_array converts YBR to RGB itself.
        assert np.abs(ds.pixel_array.astype(int) - rgb[1]).max() <= 2

    values = np.linspace(-1.5, 3.25, 2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    written = write_series(tmp_path / "f", values, float_pixels="float32", modality="MR")
    ds = pydicom.dcmread(written[1])
    assert "FloatPixelData" in ds and "PixelData" not in ds
    np.testing.assert_array_equal(ds.pixel_array, values[1])
