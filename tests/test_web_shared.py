"""Series shared between sessions: the same bytes map one read-only file, other bytes not."""

from __future__ import annotations

import numpy as np
import pytest

import mprviewer
from mprviewer.synthetic import writer as synthetic
from mprviewer.web.shared import VolumeCache, source_identity, upload_identity


@pytest.fixture
def series_folder(tmp_path):
    array = (np.arange(6 * 10 * 12, dtype=np.int16).reshape(6, 10, 12) * 3) - 100
    synthetic.write_series(tmp_path / "CT", array, seed="share", window=(40, 400))
    return tmp_path / "CT", array


def test_same_source_is_decoded_once_and_mapped_read_only(series_folder, tmp_path):
    folder, array = series_folder
    cache = VolumeCache(tmp_path / "cache")
    identity = source_identity(str(folder))
    with mprviewer.open_study(str(folder)) as study:
        series = study.series[0]
        first = cache.load(series, identity)
        second = cache.load(series, identity)
        fresh = series.load()
    assert isinstance(first.array, np.memmap) and not first.array.flags.writeable
    assert first.array.filename == second.array.filename
    np.testing.assert_array_equal(second.array, array)
    np.testing.assert_array_equal(second.affine, fresh.affine)
    assert (second.series_uid, second.name, second.window, second.units) == (
        fresh.series_uid, fresh.name, fresh.window, fresh.units)
    assert second.sop_instance_uids == fresh.sop_instance_uids
    np.testing.assert_array_equal(second.slice_positions, fresh.slice_positions)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_other_bytes_or_unknown_sources_are_not_shared(series_folder, tmp_path):
    folder, _array = series_folder
    cache = VolumeCache(tmp_path / "cache")
    with mprviewer.open_study(str(folder)) as study:
        series = study.series[0]
        a = cache.load(series, "sha256:" + "a" * 64)
        b = cache.load(series, "sha256:" + "b" * 64)
        url = cache.load(series, None)
    assert a.array.filename != b.array.filename
    assert not isinstance(url.array, np.memmap)


def test_upload_identity_comes_from_the_launchers_digest_only(tmp_path):
    (tmp_path / "uploads").mkdir()
    (tmp_path / "digests").mkdir()
    upload = tmp_path / "uploads" / "a.zip"
    upload.write_bytes(b"PK")
    assert upload_identity(upload) is None  # nothing recorded: nothing shared
    (tmp_path / "uploads" / "a.zip.sha256").write_text("c" * 64)  # written by an upload
    assert upload_identity(upload) is None
    (tmp_path / "digests" / "a.zip").write_text("d" * 64)
    assert upload_identity(upload) == "sha256:" + "d" * 64


def test_a_folder_keeps_its_identity_while_only_entries_beside_its_files_come_and_go(
    series_folder,
):
    folder, _array = series_folder
    before = source_identity(str(folder))
    probe = folder / "probe.tmp"  # a writability check: written and removed again
    probe.write_bytes(b"x")
    probe.unlink()
    (folder / ".mprviewer").mkdir()
    (folder / ".mprviewer" / "annotations-1.2.3.json").write_text("{}")  # an autosave
    assert source_identity(str(folder)) == before
    image = sorted(p for p in folder.iterdir() if p.is_file())[0]
    image.write_bytes(image.read_bytes() + b"\0\0")  # an image that changed is other bytes
    assert source_identity(str(folder)) != before
