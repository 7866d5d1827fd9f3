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
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from mprviewer.synthetic.writer import (
    affine_for,
    encodable_syntaxes,
    orientation_cosines,
    write_4d,
    write_mosaic,
    write_multiframe,
    write_series,
    write_with_localizer,
    zip_folders,
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
    JPEGLosslessSV1,
]


def test_claimed_syntaxes_are_installed():
    assert set(LOSSLESS) | {JPEG2000, JPEGBaseline8Bit} <= set(encodable_syntaxes())


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


@pytest.mark.parametrize("syntax", [JPEG2000, JPEGLSNearLossless], ids=lambda uid: uid.name)
def test_lossy_syntaxes_stay_close(tmp_path, syntax):
    array = np.tile(np.linspace(0, 2000, 64, dtype=np.float64), (2, 64, 1)).astype(np.uint16)
    array[:, 20:30, 20:30] += 700
    written = write_series(tmp_path, array, transfer_syntax=syntax, signed=False)
    ds = pydicom.dcmread(written[1])
    assert ds.file_meta.TransferSyntaxUID == syntax
    decoded = ds.pixel_array.astype(np.float64)
    assert np.abs(decoded - array[1]).mean() < 20
    if syntax == JPEGLSNearLossless:
        assert np.abs(decoded - array[1]).max() <= 2  # the promised error bound


def test_lossy_jpeg_baseline_stays_close(tmp_path):
    gray = np.tile(np.linspace(0, 250, 32), (2, 32, 1)).astype(np.uint8)
    written = write_series(
        tmp_path / "g", gray, transfer_syntax=JPEGBaseline8Bit, bits_allocated=8, signed=False
    )
    ds = pydicom.dcmread(written[0])
    assert ds.LossyImageCompression == "01"
    assert np.abs(ds.pixel_array.astype(int) - gray[0]).mean() < 3
    rgb = np.zeros((1, 16, 16, 3), dtype=np.uint8)
    rgb[..., 0], rgb[:, :, 8:, 2] = 200, 255
    written = write_series(
        tmp_path / "c", rgb, photometric="RGB", transfer_syntax=JPEGBaseline8Bit, modality="OT"
    )
    ds = pydicom.dcmread(written[0])
    assert ds.PhotometricInterpretation == "YBR_FULL"
    assert np.abs(ds.pixel_array.astype(int) - rgb[0]).max() < 12


@pytest.mark.parametrize("signed", [True, False])
def test_lossless_jpeg_of_12_bit_data_decodes_with_gdcm_too(tmp_path, signed):
    rng = np.random.default_rng(4)
    low, high = (-2048, 2047) if signed else (0, 4095)
    array = rng.integers(low, high + 1, size=(3, 21, 19)).astype(np.int16 if signed else np.uint16)
    array[1, :8, :8] = high  # flat runs and extremes
    written = write_series(
        tmp_path, array, transfer_syntax=JPEGLosslessSV1, signed=signed, bits_stored=12
    )
    for k, path in enumerate(written):
        np.testing.assert_array_equal(pydicom.dcmread(path).pixel_array, array[k])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(_read_sitk(tmp_path)), array)


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


# -- several volumes, localizers, mosaics, multi-frame, zips ---------------------------


def _position(ds) -> np.ndarray:
    return np.array([float(v) for v in ds.ImagePositionPatient])


def test_4d_series_repeats_positions_with_volume_tags(tmp_path):
    base = _volume((4, 16, 16))
    data = np.stack([base, base + 3000, base + 6000])
    volumes = write_4d(tmp_path, data, kind="time", values=[0, 1500, 3000], shuffle=4, seed=2)
    assert len({w.series_uid for w in volumes}) == 1
    files = sorted(tmp_path.iterdir())
    assert len(files) == 12
    seen = {}
    for path in files:
        ds = pydicom.dcmread(path)
        v = int(ds.TemporalPositionIdentifier) - 1
        k = round(_position(ds)[2])  # axial, 1 mm slices from z = 0
        assert float(ds.TriggerTime) == [0, 1500, 3000][v] and int(ds.AcquisitionNumber) == v + 1
        np.testing.assert_array_equal(ds.pixel_array, data[v, k])
        seen[(v, k)] = int(ds.InstanceNumber)
    assert sorted(seen.values()) == list(range(1, 13))
    # Names are shuffled across volumes, not grouped by volume.
    first = [int(pydicom.dcmread(p).TemporalPositionIdentifier) for p in files[:6]]
    assert len(set(first)) > 1


def test_4d_echoes_and_diffusion_tags(tmp_path):
    data = np.stack([_volume((2, 8, 8))] * 3)
    echoes = write_4d(tmp_path / "e", data, kind="echo", values=[12.0, 40.0, 90.0])
    ds = pydicom.dcmread(echoes[2][0])
    assert (int(ds.EchoNumbers), float(ds.EchoTime), ds.Modality) == (3, 90.0, "MR")
    dwi = write_4d(tmp_path / "d", data, kind="diffusion", values=[0, 800, 800])
    b0, b1, b2 = (pydicom.dcmread(w[0]) for w in dwi)
    assert (b0.DiffusionBValue, b1.DiffusionBValue) == (0.0, 800.0)
    assert "DiffusionGradientOrientation" not in b0
    assert list(b1.DiffusionGradientOrientation) != list(b2.DiffusionGradientOrientation)
    assert b2[0x0019, 0x100C].value == 800 and b2[0x0019, 0x0010].value == "SIEMENS MR HEADER"


def test_localizer_is_mixed_into_the_stack(tmp_path):
    array = _volume((6, 16, 20))
    stack, localizer = write_with_localizer(
        tmp_path, array, slice_spacing=3.0, pixel_spacing=(1.0, 1.0), shuffle=2, seed=1
    )
    assert len(list(tmp_path.iterdir())) == 7 and localizer[0].parent == stack[0].parent
    loc = pydicom.dcmread(localizer[0])
    assert loc.ImageType[2] == "LOCALIZER" and loc.SeriesInstanceUID == stack.series_uid
    assert [float(v) for v in loc.ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
    assert (loc.Rows, loc.Columns) != (16, 20)
    for k, path in zip(stack.ks, stack, strict=True):
        ds = pydicom.dcmread(path)
        assert "LOCALIZER" not in ds.ImageType
        np.testing.assert_allclose(_position(ds), [0.0, 0.0, 3.0 * k])
    # The localizer is centred on the stack: its centre pixel maps to the volume centre.
    centre = _position(loc) + (np.array([1, 0, 0]) * (loc.Columns - 1) + np.array(
        [0, 0, -1]) * (loc.Rows - 1)) * float(loc.PixelSpacing[0]) / 2  # fmt: skip
    np.testing.assert_allclose(centre, [9.5, 7.5, 7.5], atol=1e-6)


def test_mosaic_tiles_and_documented_position_correction(tmp_path):
    volume = _volume((10, 12, 14))
    orientation = (1.0, 0.0, 0.0, 0.0, 0.8, 0.6)
    written = write_mosaic(
        tmp_path,
        np.stack([volume, volume + 7]),
        origin=(10.0, -20.0, 30.0),
        orientation=orientation,
        pixel_spacing=(2.0, 2.5),
        slice_spacing=4.0,
        seed=1,
    )
    assert len(written) == 2
    ds = pydicom.dcmread(written[1])
    assert "MOSAIC" in ds.ImageType and ds[0x0019, 0x100A].value == 10
    assert (ds.Rows, ds.Columns) == (4 * 12, 4 * 14)
    mosaic = ds.pixel_array
    for s in range(10):
        r, c = divmod(s, 4)
        np.testing.assert_array_equal(mosaic[r * 12 : (r + 1) * 12, c * 14 : (c + 1) * 14],
                                      volume[s] + 7)  # fmt: skip
    assert not mosaic[36:, 28:].any()  # unused tiles
    # The formula in mosaic_corner's docstring recovers the first slice's true position.
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_sp, col_sp = (float(v) for v in ds.PixelSpacing)
    true = (
        _position(ds)
        + iop[3:] * row_sp * (ds.Rows - 12) / 2
        + iop[:3] * col_sp * (ds.Columns - 14) / 2
    )
    np.testing.assert_allclose(true, [10.0, -20.0, 30.0], atol=1e-5)
    assert not np.allclose(_position(ds), true)
    np.testing.assert_allclose(written.affine[:3, 2], 4.0 * np.cross(iop[:3], iop[3:]))


def test_enhanced_multiframe_geometry_matches_simpleitk(tmp_path):
    array = _volume((6, 20, 24)) + 600  # HU from -900
    written = write_multiframe(
        tmp_path / "ct.dcm",
        array,
        origin=(5.0, 6.0, 7.0),
        orientation="sagittal",
        pixel_spacing=(0.5, 0.6),
        slice_spacing=1.5,
        rescale=(1.0, -1024.0),
        signed=False,
        window=(40, 400),
    )
    ds = pydicom.dcmread(written.path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2.1" and int(ds.NumberOfFrames) == 6
    assert "ImagePositionPatient" not in ds and "PixelSpacing" not in ds
    image = sitk.ReadImage(str(written.path))
    affine = written.affines[0]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    np.testing.assert_allclose(image.GetOrigin(), affine[:3, 3], atol=1e-5)
    np.testing.assert_allclose(image.GetSpacing(), spacing, atol=1e-5)
    np.testing.assert_allclose(
        np.reshape(image.GetDirection(), (3, 3)), affine[:3, :3] / spacing, atol=1e-6
    )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)


@pytest.mark.parametrize("dimension", ["stack", "time"])
def test_enhanced_multiframe_with_several_stacks_in_shuffled_frames(tmp_path, dimension):
    from mprviewer.synthetic.writer import Grid

    a, b = _volume((5, 16, 16)), _volume((5, 16, 16), seed=1) + 500
    if dimension == "stack":
        grids = [Grid.build(origin=(0, 0, 0)), Grid.build(origin=(1, 2, 3), orientation="coronal")]
    else:
        grids = [Grid.build(origin=(0, 0, 0), slice_spacing=2.0)] * 2
    written = write_multiframe(
        tmp_path / "mf.dcm",
        [a, b],
        grids=grids,
        stack_dimension=dimension,
        frame_order="shuffled",
        modality="MR",
        transfer_syntax=RLELossless,
        seed=3,
    )
    ds = pydicom.dcmread(written.path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1"
    assert [sk for sk in written.frames] != sorted(written.frames)
    pointers = [int(item.DimensionIndexPointer) for item in ds.DimensionIndexSequence]
    assert pointers == [0x00209128 if dimension == "time" else 0x00209056, 0x00209057]
    pixels = ds.pixel_array
    for f, (s, k) in enumerate(written.frames):
        item = ds.PerFrameFunctionalGroupsSequence[f]
        assert list(item.FrameContentSequence[0].DimensionIndexValues) == [s + 1, k + 1]
        expected = (written.affines[s] @ np.array([0, 0, k, 1.0]))[:3]
        np.testing.assert_allclose(_position(item.PlanePositionSequence[0]), expected)
        orientation = item if dimension == "stack" else ds.SharedFunctionalGroupsSequence[0]
        iop = [float(v) for v in orientation.PlaneOrientationSequence[0].ImageOrientationPatient]
        np.testing.assert_allclose(iop[:3], written.affines[s][:3, 0] / 1.0)
        np.testing.assert_array_equal(pixels[f], (a, b)[s][k])


def test_legacy_multiframe_keeps_classic_geometry(tmp_path):
    array = _volume((4, 12, 12))
    written = write_multiframe(
        tmp_path / "legacy.dcm", array, kind="legacy", origin=(1, 2, 3), slice_spacing=2.5
    )
    ds = pydicom.dcmread(written.path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3" and int(ds.NumberOfFrames) == 4
    np.testing.assert_allclose(_position(ds), [1, 2, 3])
    assert float(ds.SpacingBetweenSlices) == 2.5 and ds.FrameIncrementPointer == 0x00182005
    assert [float(v) for v in ds.SliceLocationVector] == [3.0, 5.5, 8.0, 10.5]
    np.testing.assert_array_equal(ds.pixel_array, array)


def test_zip_folders_nests_and_adds_junk_deterministically(tmp_path):
    import zipfile

    a = write_series(tmp_path / "A", _volume((2, 8, 8)), seed=1)
    b = write_series(tmp_path / "B", _volume((3, 8, 8)), seed=2)
    inner = zip_folders(tmp_path / "inner.zip", [a.folder])
    outer = zip_folders(
        tmp_path / "outer.zip", {"CT_B": b.folder, "more/inner.zip": inner}, junk=True
    )
    again = zip_folders(
        tmp_path / "again.zip", {"CT_B": b.folder, "more/inner.zip": inner}, junk=True
    )
    assert outer.read_bytes() == again.read_bytes()
    with zipfile.ZipFile(outer) as zf:
        names = zf.namelist()
        assert sorted(n for n in names if n.startswith("CT_B/")) == [
            f"CT_B/{p.name}" for p in sorted(b, key=lambda p: p.name)
        ]
        assert "__MACOSX/._IM0001" in names and ".DS_Store" in names
        with zipfile.ZipFile(zf.open("more/inner.zip")) as nested:
            assert sorted(nested.namelist()) == sorted(f"A/{p.name}" for p in a)
