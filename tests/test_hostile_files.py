"""Crafted files and folders: symbolic links, header bombs, decoded-size bombs, deflate
bombs. Each ends as a clear error or a partial result with a reason, in bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

import mprviewer
from mprviewer.io.limits import GIB, MIB
from mprviewer.synthetic import writer as synthetic

ARRAY = np.arange(3 * 6 * 5, dtype=np.int16).reshape(3, 6, 5)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Bytes read per file name through the loader's member streams."""
    from mprviewer.io import sources

    counts: Counter = Counter()
    original = sources._file_opener

    class Counting:
        def __init__(self, path: Path) -> None:
            self._fh = open(path, "rb")  # noqa: SIM115
            self._name = str(path)

        def read(self, n: int = -1) -> bytes:
            data = self._fh.read(n)
            counts[self._name] += len(data)
            return data

        def __getattr__(self, name: str):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self._fh.close()

    monkeypatch.setattr(sources, "_file_opener", lambda path: lambda: Counting(path))
    assert original is not None
    return counts


# -- symbolic links ------------------------------------------------------------------------
def test_links_out_of_the_opened_folder_are_skipped_and_links_inside_followed(
        tmp_path: Path) -> None:
    root = tmp_path / "patient-a"
    synthetic.write_series(root / "CT", ARRAY, seed=31, series_number=1)
    synthetic.write_series(tmp_path / "patient-b" / "MR", ARRAY[:2], seed=32, series_number=2)
    synthetic.write_series(tmp_path / "inside-src", ARRAY[:2], seed=33, series_number=3)
    (root / "system").symlink_to("/usr", target_is_directory=True)
    (root / "neighbour").symlink_to(tmp_path / "patient-b", target_is_directory=True)
    other_file = sorted((tmp_path / "patient-b" / "MR").iterdir())[0]
    (root / "one.dcm").symlink_to(other_file)
    (root / "sub").mkdir()
    (root / "sub" / "up.dcm").symlink_to(other_file)  # a link deeper down, same rule
    inside = root / "kept"
    (tmp_path / "inside-src").rename(inside)
    (root / "alias").symlink_to(inside / sorted(p.name for p in inside.iterdir())[0])
    with mprviewer.open_study(root) as study:
        assert sorted(s.number for s in study.series) == [1, 3]
        assert sorted(s.num_images for s in study.series) == [2, 3]
        reasons = dict(study.skipped)
    for link in ("system", "neighbour", "one.dcm", "sub/up.dcm"):
        assert "outside the opened folder" in reasons[str(root / link)], (link, reasons)
    assert str(root / "alias") not in reasons  # inside: read (a duplicate of its target)
    assert not any(name.startswith("/usr") for name in reasons)


# -- endless headers -----------------------------------------------------------------------
def _sparse_zeros_after_dicm(path: Path, size: int) -> Path:
    """A file of ``size`` bytes, all zero but the DICM marker: sparse, nothing on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM")
        fh.truncate(size)
    return path


def test_gigabytes_of_zeros_after_dicm_are_skipped_after_a_few_kilobytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "study"
    synthetic.write_series(folder / "CT", ARRAY, seed=41)
    zeros = _sparse_zeros_after_dicm(folder / "zeros.dcm", 4 * GIB)
    reads = _count_reads(monkeypatch)
    with mprviewer.open_study(folder) as study:
        assert [s.num_images for s in study.series] == [3]
        reason = dict(study.skipped)[str(zeros)]
    assert "repeats one element" in reason and "zeros or junk" in reason
    assert reads[str(zeros)] < 1 * MIB  # bytes read from the 4 GiB file


@pytest.mark.parametrize("size", [4 * GIB, 16 * MIB])
def test_a_dicomdir_of_zeros_falls_back_to_the_files_beside_it(tmp_path: Path,
                                                               size: int) -> None:
    cd = tmp_path / "cd"
    synthetic.write_series(cd / "IMAGES", ARRAY, seed=42)
    _sparse_zeros_after_dicm(cd / "DICOMDIR", size)
    with mprviewer.open_study(cd / "DICOMDIR") as study:
        assert [s.num_images for s in study.series] == [3]
    result = _cli("info", str(_sparse_zeros_after_dicm(tmp_path / "alone" / "DICOMDIR", size)))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "not a readable DICOMDIR" in result.stderr


def test_a_header_past_the_cap_is_skipped_naming_the_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = b"x" * (2 * MIB)  # a large private value: a genuine, if unusual, header
    synthetic.write_series(tmp_path / "s", ARRAY, seed=43,
                           tags={(0x0009, 0x0010): ("LO", "BIG"), (0x0009, 0x1000): ("OB", big)})
    with mprviewer.open_study(tmp_path / "s") as study:
        assert study.series[0].num_images == 3
    monkeypatch.setenv("MPRVIEWER_MAX_HEADER_BYTES", "1M")
    result = _cli("info", str(tmp_path / "s"))
    assert result.returncode == 3, result.stderr
    assert "the header runs past 1 MiB without reaching the pixel data" in result.stderr
    assert "MPRVIEWER_MAX_HEADER_BYTES" in result.stderr


# -- decoded-size bombs --------------------------------------------------------------------
def _encapsulated(path: Path, streams: list[bytes], syntax: str, rows: int, columns: int,
                  frames: int | None = None, **tags) -> Path:
    """One greyscale 16-bit image file holding ``streams`` as encapsulated frames."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = frames or len(streams)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = encapsulate(streams)
    ds["PixelData"].VR = "OB"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _declaring(syntax: str, rows: int, columns: int) -> bytes:
    """A real 16x16 stream of the codec whose own header is patched to declare
    ``columns`` x ``rows``: a few hundred bytes that a decoder would blow up."""
    import imagecodecs

    small = np.zeros((16, 16), np.uint16)
    if syntax == JPEG2000Lossless:
        data = bytearray(imagecodecs.jpeg2k_encode(small, level=0, codecformat="J2K"))
        at = data.index(b"\xff\x4f\xff\x51") + 8  # Xsiz, Ysiz of the SIZ marker
        data[at:at + 8] = columns.to_bytes(4, "big") + rows.to_bytes(4, "big")
    else:
        data = bytearray(imagecodecs.jpegls_encode(small))
        at = data.index(b"\xff\xf7") + 5  # height, width of the JPEG-LS frame header
        data[at:at + 4] = rows.to_bytes(2, "big") + columns.to_bytes(2, "big")
    return bytes(data)


def _never_decode(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from mprviewer.io import pixels

    called: list[str] = []

    def decoder(ds, transfer_syntax):
        called.append(transfer_syntax)
        raise AssertionError("the decoder must not run on a bomb")

    monkeypatch.setattr(pixels, "_pixel_array", decoder)
    return called


def _run_measured(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """(exit status, stderr, peak resident KiB) of one CLI run.

    The peak is the process's own VmHWM, written at exit: a child's rusage would count the
    memory of the test process it was forked from.
    """
    import tempfile

    env = {**{k: v for k, v in os.environ.items() if k != "DISPLAY"}, **(env or {})}
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        code = (
            "import atexit, sys\n"
            "def peak():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            f"            open({str(peak_file)!r}, 'w').write(line.split()[1])\n"
            "atexit.register(peak)\n"
            "from mprviewer.cli import main\n"
            f"sys.exit(main({list(args)!r}))\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env=env, timeout=120)
        return result.returncode, result.stderr, int(peak_file.read_text())


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless])
def test_small_stream_of_a_huge_image_is_refused_before_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syntax: str) -> None:
    bomb = _encapsulated(tmp_path / "s" / "bomb.dcm", [_declaring(syntax, 16384, 16384)],
                         syntax, 16384, 16384)
    assert bomb.stat().st_size < 4096
    called = _never_decode(monkeypatch)
    with mprviewer.open_study(bomb.parent) as study, pytest.raises(
            mprviewer.DicomError) as caught:
        study.series[0].load()
    assert called == []
    message = str(caught.value)
    assert message.startswith(f"{bomb}: ") and "would decode to 512 MiB" in message
    assert "16384x16384 pixels x 1 frames" in message
    assert "MPRVIEWER_MAX_DECODED_RATIO" in message


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless])
def test_stream_declaring_more_than_the_header_is_refused_before_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syntax: str) -> None:
    bomb = _encapsulated(tmp_path / "s" / "bomb.dcm", [_declaring(syntax, 16, 16),
                                                       _declaring(syntax, 16384, 16384)],
                         syntax, 16, 16)
    called = _never_decode(monkeypatch)
    with mprviewer.open_study(bomb.parent) as study, pytest.raises(
            mprviewer.DicomError, match="a compressed frame declares 16384x16384 pixels but "
                                        "the header says 16x16"):
        study.series[0].load()
    assert called == []


def test_decoded_cap_counts_frames_and_real_sample_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 4 frames of 1024x1024 16-bit: 8 MiB decoded (not 4 frames x 8 bytes).
    streams = [_declaring(JPEG2000Lossless, 1024, 1024)] * 4
    bomb = _encapsulated(tmp_path / "s" / "four.dcm", streams, JPEG2000Lossless, 1024, 1024)
    called = _never_decode(monkeypatch)
    monkeypatch.setenv("MPRVIEWER_MAX_DECODED_BYTES", "7M")
    with pytest.raises(mprviewer.DicomError) as caught:  # refused when scanned already
        mprviewer.open_study(bomb.parent)
    assert "4 frames of 1024x1024 would take 8 MiB" in str(caught.value) and called == []
    assert "MPRVIEWER_MAX_DECODED_BYTES" in str(caught.value)
    monkeypatch.setenv("MPRVIEWER_MAX_DECODED_BYTES", "9M")  # fits: handed to the decoder
    with mprviewer.open_study(bomb.parent) as study, pytest.raises(
            mprviewer.DicomError, match="the decoder must not run"):
        study.series[0].load()
    assert called == [JPEG2000Lossless]


def test_a_genuine_compressed_series_still_loads_under_the_caps(tmp_path: Path) -> None:
    array = np.random.default_rng(51).integers(-1000, 1000, (3, 32, 32)).astype(np.int16)
    synthetic.write_series(tmp_path / "s", array, seed=51, transfer_syntax=JPEG2000Lossless)
    with mprviewer.open_study(tmp_path / "s") as study:
        np.testing.assert_array_equal(study.series[0].load().array, array)


def test_screenshot_of_a_decoded_size_bomb_exits_3_in_little_memory(tmp_path: Path) -> None:
    bomb = _encapsulated(tmp_path / "s" / "bomb.dcm",
                         [_declaring(JPEG2000Lossless, 16384, 16384)] * 4,
                         JPEG2000Lossless, 16384, 16384)
    code, err, peak_kib = _run_measured("screenshot", str(bomb.parent), "-o",
                                        str(tmp_path / "x.png"), "--size", "64x64")
    assert code == 3, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"mprviewer: {bomb}: ") and "2 GiB" in err
    assert peak_kib < 512 * 1024  # decoding would take 2 GiB, rendering several more
    assert not (tmp_path / "x.png").exists()


# -- frame counts ------------------------------------------------------------------------
def test_frame_count_beyond_what_the_file_holds_is_refused(tmp_path: Path) -> None:
    # 2000 frames of the smallest JPEG-LS stream cannot fit in a file of 200 tiny items.
    path = _encapsulated(tmp_path / "s" / "many.dcm", [b"\0" * 24] * 200, JPEGLSLossless,
                         2, 2, frames=2000)
    result = _cli("info", str(path.parent))
    assert result.returncode == 3, result.stderr
    assert "NumberOfFrames is 2000 but a" in result.stderr
    most = path.stat().st_size // (8 + 24)  # item header + the smallest JPEG-LS stream
    assert 200 <= most < 300
    assert f"a {path.stat().st_size}-byte file holds at most {most} frames of 2x2" in (
        result.stderr)


def test_as_many_frames_as_the_file_holds_are_listed(tmp_path: Path) -> None:
    frames = 20000  # 32 bytes a frame: as many as the bound allows
    path = _encapsulated(tmp_path / "s" / "many.dcm", [b"\0" * 24] * frames, JPEGLSLossless,
                         2, 2, ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                         ImagePositionPatient=[0, 0, 0], PixelSpacing=[1, 1],
                         SliceThickness=1)
    with mprviewer.open_study(path.parent) as study:
        assert study.series[0].shape == (frames, 2, 2)
        np.testing.assert_allclose(study.series[0].geometry.positions, np.arange(frames))


# -- deflated data sets --------------------------------------------------------------------
def _deflated(path: Path, body: bytes | None = None, zeros: int = 0) -> Path:
    """A deflated file: file meta, then ``body`` (a data set's bytes) and ``zeros`` zero
    bytes (whole MiBs), made of repeated deflate blocks: no zeros are ever in memory."""
    import zlib

    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=True)
    def block(data: bytes) -> bytes:  # byte-aligned and self-contained: blocks concatenate
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        return z.compress(data) + z.flush(zlib.Z_FULL_FLUSH)

    assert zeros % MIB == 0
    parts = [block(body or b""), block(bytes(MIB)) * (zeros // MIB),
             zlib.compressobj(9, zlib.DEFLATED, -15).flush()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + buf.getvalue() + b"".join(parts))
    return path


def _zero_valued_header(length: int) -> bytes:
    """The start of a data set whose private OB element holds ``length`` zero bytes (they
    follow); what a deflate bomb with a believable header looks like."""
    import struct

    private = struct.pack("<HH2sHI", 0x0009, 0x1000, b"OB", 0, length)
    creator = struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 4) + b"BIG "
    modality = struct.pack("<HH2sH", 0x0008, 0x0060, b"CS", 2) + b"OT"
    return modality + creator + private


@pytest.mark.parametrize("body", ["zeros", "header then zeros"])
def test_a_deflate_bomb_is_skipped_after_inflating_a_few_megabytes(
        tmp_path: Path, body: str) -> None:
    import tracemalloc

    folder = tmp_path / "study"
    synthetic.write_series(folder / "CT", ARRAY, seed=61)
    size = 256 * MIB
    # An element under the header cap (64 MiB), so that only the expansion ratio stops it.
    head = b"" if body == "zeros" else _zero_valued_header(48 * MIB)
    bomb = _deflated(folder / "bomb.dcm", head, size)
    assert bomb.stat().st_size < 512 * 1024
    tracemalloc.start()
    try:
        with mprviewer.open_study(folder) as study:
            assert [s.num_images for s in study.series] == [3]
            reason = dict(study.skipped)[str(bomb)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * MIB, peak  # the default ratio cap stops it past 8 MiB
    if body == "zeros":
        assert "repeats one element" in reason
    else:
        assert "deflated data set expanded" in reason and "deflate bomb" in reason
        assert "MPRVIEWER_MAX_ZIP_RATIO" in reason


def test_info_on_a_deflate_bomb_exits_3_with_one_line_in_little_memory(tmp_path: Path) -> None:
    bomb = _deflated(tmp_path / "s" / "bomb.dcm", _zero_valued_header(48 * MIB), 256 * MIB)
    code, err, peak_kib = _run_measured("info", str(bomb.parent))
    assert code == 3, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "deflate bomb" in err and str(bomb.parent) in err
    assert peak_kib < 256 * 1024  # inflating it whole, as before, takes 256 MiB and more


def test_genuine_deflated_series_load_and_trailing_zeros_stay_deflated(tmp_path: Path) -> None:
    import tracemalloc

    from pydicom import dcmread
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    array = np.random.default_rng(62).integers(-1000, 1000, (3, 128, 128)).astype(np.int16)
    files = synthetic.write_series(tmp_path / "s", array, seed=62,
                                   transfer_syntax=DeflatedExplicitVRLittleEndian)
    assert all(Path(f).stat().st_size > 16 * 1024 for f in files)  # past the quick prefix
    ds = dcmread(files[1])  # 32 MiB of trailing padding after the pixels: never inflated
    ds.DataSetTrailingPadding = bytes(32 * MIB)
    ds.save_as(files[1])
    assert Path(files[1]).stat().st_size < 1 * MIB
    tracemalloc.start()
    try:
        with mprviewer.open_study(tmp_path / "s") as study:
            volume = study.series[0].load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(volume.array, array)
    assert peak < 8 * MIB, peak


def test_a_billion_frames_in_a_sparse_file_are_refused_at_scan_time(tmp_path: Path) -> None:
    """A native file can hold as many 1x1 frames as it has bytes, and a sparse file has any
    number of bytes for free: the frames' memory is checked against the decoded cap."""
    import struct

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    frames = 2**31 - 1
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    ds.Rows = ds.Columns = ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = frames
    ds.PixelData = b"\0\0"
    path = tmp_path / "s" / "frames.dcm"
    path.parent.mkdir()
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    at = data.rindex(b"\xe0\x7f\x10\x00")
    struct.pack_into("<I", data, at + 8, frames + 1)  # the pixel data runs to the end ...
    with open(path, "wb") as fh:
        fh.write(data[:at + 12])
        fh.truncate(at + 12 + frames + 1)  # ... of a 2 GiB file that takes no disk
    code, err, peak_kib = _run_measured("info", str(path.parent))
    assert code == 3, err
    assert f"{frames} frames of 1x1 would take 32.0 TiB once loaded" in err
    assert "MPRVIEWER_MAX_DECODED_BYTES" in err
    assert peak_kib < 256 * 1024  # listing them took over 7 GB in a minute, and on
