"""`mprviewer info` on bad input: exit 3, one line on stderr naming the input, no traceback."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom.data
import pytest

from mprviewer.synthetic import writer as synthetic
from tests.local_http import serving
from tests.test_download import Handler

ARRAY = np.random.default_rng(9).integers(-1000, 1000, (3, 8, 8)).astype(np.int16)


def _series_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    synthetic.write_series("s", ARRAY, seed=9, sink=lambda n, d: files.update({n: d}))
    return files


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _set_zip_flags(path: Path, flag: int = 0, method: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        pos = data.find(sig)
        while pos != -1:
            data[pos + flag_at] |= flag
            if method is not None:
                data[pos + method_at : pos + method_at + 2] = method.to_bytes(2, "little")
            pos = data.find(sig, pos + 4)
    path.write_bytes(bytes(data))


def _make_inputs(root: Path) -> dict[str, tuple[str, str]]:
    """name -> (argument, text the one-line message must contain)."""
    files = _series_files()
    cases: dict[str, tuple[str, str]] = {}
    (root / "notes.txt").write_text("not an image")
    cases["text file"] = (str(root / "notes.txt"), "not a DICOM file")
    (root / "empty").mkdir()
    cases["empty folder"] = (str(root / "empty"), "no files found")
    junk = root / "junk"
    junk.mkdir()
    (junk / "a.dcm").write_bytes(b"\x00" * 300)
    (junk / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    cases["only junk"] = (str(junk), "no DICOM images found")
    reports = root / "reports"
    reports.mkdir()
    for name in ("test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm"):
        shutil.copy(pydicom.data.get_testdata_file(name), reports / name)
    cases["objects without pixels"] = (str(reports), "without image pixels")
    bomb = _zip(root / "bomb.zip", {**files, "big.dcm": bytes(48 * 1024 * 1024)})
    cases["zip bomb"] = (str(bomb), "zip bomb")
    whole = _zip(root / "whole.zip", files).read_bytes()
    (root / "cut.zip").write_bytes(whole[: len(whole) // 2])
    cases["truncated zip"] = (str(root / "cut.zip"), "truncated")
    locked = _zip(root / "locked.zip", files)
    _set_zip_flags(locked, flag=0x1)
    cases["encrypted zip"] = (str(locked), "encrypted")
    deflate64 = _zip(root / "d64.zip", files)
    _set_zip_flags(deflate64, method=9)
    cases["unsupported compression"] = (str(deflate64), "deflate64")
    deep = _zip(root / "z1.zip", files)
    for n in range(2, 6):
        deep = _zip(root / f"z{n}.zip", {f"z{n - 1}.zip": deep.read_bytes()})
    cases["nested too deep"] = (str(deep), "nested more than 3 levels")
    loops = root / "loops"
    loops.mkdir()
    (loops / "self").symlink_to(loops, target_is_directory=True)
    (loops / "x.dcm").symlink_to(loops / "y.dcm")
    (loops / "y.dcm").symlink_to(loops / "x.dcm")
    cases["symlink loops only"] = (str(loops), "symbolic link loop")
    os.mkfifo(root / "pipe")
    cases["named pipe"] = (str(root / "pipe"), "not a regular file")
    (root / "study.tar.gz").write_bytes(gzip.compress(b"tar data"))
    cases["tar.gz"] = (str(root / "study.tar.gz"), "gzip file")
    cases["missing"] = (str(root / "nope"), "no such file")
    return cases


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


def _run_all(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, tuple]:
    """Run the CLI for every case, a few at a time."""
    results: dict[str, tuple] = {}
    names = list(commands)
    for start in range(0, len(names), 4):
        running = {name: subprocess.Popen([sys.executable, "-m", "mprviewer", *commands[name]],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=env)
                   for name in names[start : start + 4]}
        for name, proc in running.items():
            out, err = proc.communicate(timeout=60)
            results[name] = (proc.returncode, out, err)
    return results


def test_every_bad_input_exits_3_with_one_line(tmp_path: Path, server: str) -> None:
    cases = _make_inputs(tmp_path)
    commands = {name: ["info", arg] for name, (arg, _) in cases.items()}
    expected = {name: text for name, (_, text) in cases.items()}
    for name, route, text in (("url 404", "/missing", "HTTP 404"),
                              ("url web page", "/error-page", "web page"),
                              ("url not dicom", "/pdf", "neither a zip"),
                              ("url redirect loop", "/loop", "redirects"),
                              ("url endless", "/endless", "past the limit of 1 MiB")):
        commands[name] = ["info", f"{server}{route}?key=SECRET"]
        expected[name] = text
    commands["ftp url"] = ["info", "ftp://example.org/study.zip"]
    expected["ftp url"] = "only http and https"
    env = {**os.environ, "MPRVIEWER_MAX_DOWNLOAD_BYTES": "1M"}
    results = _run_all(commands, env)
    for name, (code, out, err) in results.items():
        line = err.strip()
        assert code == 3, f"{name}: exit {code}, stderr {err!r}"
        assert "\n" not in line and "Traceback" not in err, f"{name}: {err!r}"
        assert line.startswith("mprviewer: "), f"{name}: {line!r}"
        assert expected[name] in line, f"{name}: {line!r}"
        assert "SECRET" not in line
        assert out == ""


def test_bad_settings_and_series_exit_3(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path / "CT", ARRAY, seed=9)
    env = {**os.environ, "MPRVIEWER_MAX_ZIP_RATIO": "lots"}
    archive = _zip(tmp_path / "s.zip", _series_files())
    code, _, err = _run_all({"bad setting": ["info", str(archive)]}, env)["bad setting"]
    assert code == 3 and "MPRVIEWER_MAX_ZIP_RATIO='lots'" in err and err.count("\n") == 1
    command = ["info", str(tmp_path / "CT"), "--series", "7"]
    code, _, err = _run_all({"series": command}, dict(os.environ))["series"]
    assert code == 3 and "no series number 7" in err and err.count("\n") == 1


def test_partly_bad_study_opens_and_lists_what_was_skipped(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path / "CT", ARRAY, seed=9)
    (tmp_path / "notes.txt").write_text("x")
    shutil.copy(pydicom.data.get_testdata_file("test-SR.dcm"), tmp_path / "report.dcm")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    locked = _zip(tmp_path / "locked.zip", {"IM1.dcm": b"secret"})
    _set_zip_flags(locked, flag=0x1)
    results = _run_all({"mixed": ["info", str(tmp_path)]}, dict(os.environ))
    code, out, err = results["mixed"]
    assert code == 0, err
    assert "CT" in out and "1 series" in out
    assert "notes.txt: not a DICOM file" in out
    assert "report.dcm: DICOM SR without image pixels" in out
    assert "loop: symbolic link loop" in out
    assert "locked.zip!/IM1.dcm: encrypted" in out


def _damaged_pixels(root: Path) -> dict[str, Path]:
    """Series whose pixels cannot be read: name -> the damaged file."""
    damaged = {}
    files = synthetic.write_series(root / "cut", ARRAY, seed=9)
    files[1].write_bytes(files[1].read_bytes()[:-50])  # the end of the pixel data is missing
    damaged["truncated pixel data"] = files[1]
    for length in (100, ARRAY[0].nbytes - 1):  # fewer bytes than 8x8 int16, and one short
        files = synthetic.write_series(root / f"len{length}", ARRAY, seed=9)
        data = bytearray(files[0].read_bytes())
        at = data.rindex(b"\xe0\x7f\x10\x00")  # PixelData, explicit VR OW: length at +8
        data[at + 8 : at + 12] = length.to_bytes(4, "little")
        files[0].write_bytes(bytes(data))  # the bytes past the stated length stay
        damaged[f"pixel data length {length}"] = files[0]
    return damaged


def test_screenshot_of_damaged_pixels_exits_3_with_one_line(tmp_path: Path) -> None:
    damaged = _damaged_pixels(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    commands = {name: ["screenshot", str(path.parent), "-o", str(tmp_path / f"{n}.png"),
                       "--size", "64x64"]
                for n, (name, path) in enumerate(damaged.items())}
    results = _run_all(commands, env)
    for n, (name, path) in enumerate(damaged.items()):
        code, out, err = results[name]
        line = err.strip()
        assert code == 3, f"{name}: exit {code}, stderr {err!r}"
        assert "\n" not in line and "Traceback" not in err, f"{name}: {err!r}"
        assert line.startswith(f"mprviewer: {path}: pixel data cannot be decoded"), line
        assert out == "" and not (tmp_path / f"{n}.png").exists()


def test_screenshot_of_all_series_skips_the_damaged_one_and_exits_3(tmp_path: Path) -> None:
    study = tmp_path / "study"
    damaged = _damaged_pixels(study)["truncated pixel data"]
    synthetic.write_series(study / "good", ARRAY[::-1], seed=10, series_number=5)
    for folder in study.iterdir():  # keep the good series and the truncated one
        if folder.name not in ("good", "cut"):
            shutil.rmtree(folder)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out_dir = tmp_path / "shots"
    command = ["screenshot", str(study), "--all-series", "--out-dir", str(out_dir),
               "--size", "64x64"]
    code, out, err = _run_all({"batch": command}, env)["batch"]
    assert code == 3, err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err, err
    assert re.fullmatch(rf"mprviewer: series \d cut: {re.escape(str(damaged))}: pixel data "
                        r"cannot be decoded .*", line), line
    written = sorted(p.name for p in out_dir.iterdir())
    assert len(written) == 1 and written[0].endswith("_good.png")
    assert f"wrote {out_dir / written[0]}" in out
