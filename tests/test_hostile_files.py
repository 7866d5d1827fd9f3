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

import mprviewer
from mprviewer.io import synthetic
from mprviewer.io.limits import GIB, MIB

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
