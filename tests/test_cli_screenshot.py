"""``mprviewer screenshot`` run as users run it: a subprocess, DISPLAY unset, real DICOM files."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from mprviewer.model.presets import CT_PRESETS
from mprviewer.render.probe import bright_spot, grey_mask, tile
from mprviewer.synthetic.writer import write_series

pytestmark = pytest.mark.render

SLICES = "axial=21,coronal=9,sagittal=29"


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run(
        [sys.executable, "-m", "mprviewer", "screenshot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )


def run_in_terminal(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Like run_cli, but stdout and stderr are a terminal (a pty); returns what it showed."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mprviewer", "screenshot", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, code, shown.decode(errors="replace"), "")


def load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two series: 'block' (soft tissue with a bright blob on the patient's left, anterior,
    superior; 40x40x30, 2 mm slices) and a smaller 'small' series (its own bright block on the
    patient's right, posterior, in every slice; no window in the file)."""
    root = tmp_path_factory.mktemp("cli-study")
    arr = np.full((30, 40, 40), -1000, np.int16)
    arr[3:27, 5:35, 5:35] = 40
    arr[20:24, 8:12, 28:32] = 1200  # i = x (toward L), j = y (toward P), k = z (toward S)
    write_series(
        root / "block",
        arr,
        origin=(-20, -20, -30),
        slice_spacing=2.0,
        window=(40.0, 400.0),
        series_number=1,
        seed=1,
        shuffle=3,
    )
    small = np.zeros((6, 16, 16), np.int16)
    small[:, 11:15, 1:5] = 1200  # on the patient's right, posterior: the screen's bottom left
    write_series(root / "small", small, series_number=2, seed=2)
    return root


@pytest.fixture(scope="module")
def small_uid(study: Path) -> str:
    return str(pydicom.dcmread(next((study / "small").iterdir())).SeriesInstanceUID)


@pytest.fixture(scope="module")
def runs(study: Path, small_uid: str, tmp_path_factory: pytest.TempPathFactory):
    """Every command of this module, started at once (a few in parallel) to save wall time.

    Returns {name: (future CompletedProcess, output path)}.
    """
    out = tmp_path_factory.mktemp("shots")
    marks = out / "marks.json"
    marks.write_text(json.dumps({"block": {"Anomaly": "nodule", "Slices": "20-21"}}))
    s = str(study)
    quad = [s, "--size", "480x360", "--slice", SLICES, "--threshold", "500"]
    axial = [s, "--view", "axial", "--window", "400", "--level", "-60", "--size", "240x180"]
    one_view = ["--view", "axial", "--size", "200x200"]
    commands = {
        "quad": [*quad, "-o", "quad.png"],
        "quad-again": [*quad, "-o", "quad-again.png"],  # another process, the same picture
        "axial": [*axial, "-o", "axial.png", "--slice", "axial=5"],
        "axial-blob": [*axial, "-o", "axial-blob.png", "--slice", "axial=21"],
        "lung": [s, "-o", "lung.png", "--view", "axial", "--size", "240x180", "--preset", "lung"],
        "series-index": [s, "-o", "series-index.png", "--series", "1", *one_view],
        "series-uid": [s, "-o", "series-uid.png", "--series", small_uid, *one_view],
        "all": [s, "--all-series", "--out-dir", "all", *one_view],
        "3d-left": [s, "-o", "3d-left.png", "--view", "3d", "--size", "200x200",
                    "--camera", "left", "--threshold", "500"],
        "3d-left-plain": [s, "-o", "3d-left-plain.png", "--view", "3d", "--size", "200x200",
                          "--camera", "left", "--no-opacity"],
        "3d-plain": [
            s,
            "-o",
            "3d-plain.png",
            "--view",
            "3d",
            "--size",
            "200x200",
            "--camera",
            "anterior",
            "--no-opacity",
        ],
        "3d-low": [
            s,
            "-o",
            "3d-low.png",
            "--view",
            "3d",
            "--size",
            "200x200",
            "--camera",
            "anterior",
            "--threshold",
            "-500",
        ],
        "3d-high": [
            s,
            "-o",
            "3d-high.png",
            "--view",
            "3d",
            "--size",
            "200x200",
            "--camera",
            "anterior",
            "--threshold",
            "500",
        ],
        "marked": [
            s,
            "--all-series",
            "--marked-slices",
            "--annotations",
            str(marks),
            "--out-dir",
            "marked",
            "--size",
            "200x200",
        ],
        "demo": ["demo", "-o", "demo.png", "--size", "400x300", "--preset", "lung"],
        "no-output": [s],
        "out-of-range": [s, "-o", "never.png", "--slice", "axial=30"],
        "missing": [str(out / "nothing-here"), "-o", "never.png"],
    }
    pool = ThreadPoolExecutor(max_workers=3)
    futures: dict[str, Future] = {
        name: pool.submit(run_cli, *args, cwd=out) for name, args in commands.items()
    }
    futures["all-tty"] = pool.submit(
        run_in_terminal, s, "--all-series", "--out-dir", "all-tty", *one_view, cwd=out
    )
    yield {name: (future, out) for name, future in futures.items()}
    pool.shutdown(wait=True)


def result_of(runs, name: str) -> tuple[subprocess.CompletedProcess, Path]:
    future, folder = runs[name]
    return future.result(), folder


@pytest.fixture(scope="module")
def quad(runs):
    result, folder = result_of(runs, "quad")
    return result, folder / "quad.png"


def test_quad_has_the_size_and_radiological_orientation(quad) -> None:
    result, out = quad
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no X server or VTK warnings
    assert "wrote" in result.stdout and "block" in result.stdout  # the largest series
    img = load_png(out)
    assert img.shape == (360, 480, 3)
    axial, coronal, sagittal = (bright_spot(tile(img, n), min_level=230) for n in range(3))
    assert axial[0] > 120 and axial[1] < 90  # patient's left on the right, anterior at the top
    assert coronal[0] > 120 and coronal[1] < 90  # left on the right, superior up
    assert sagittal[0] < 120 and sagittal[1] < 90  # anterior on the left, superior up


def test_slice_and_window_options_change_the_image(quad, runs) -> None:
    _, quad_png = quad
    result, folder = result_of(runs, "axial")
    assert result.returncode == 0, result.stderr
    img = load_png(folder / "axial.png")
    assert img.shape == (180, 240, 3)
    # slice 5 is below the blob: nothing bright inside the body
    assert grey_mask(img[40:140, 60:180], min_level=230).sum() == 0
    # slice 21 goes through it (the default centre slice, 15, does not): 4x4 voxels of
    # about 4 px each, on the patient's left (screen right) and anterior (top)
    result, _ = result_of(runs, "axial-blob")
    assert result.returncode == 0, result.stderr
    blob = load_png(folder / "axial-blob.png")
    assert grey_mask(blob[40:140, 60:180], min_level=230).sum() > 150
    column, row = bright_spot(blob, min_level=230)
    assert column > 140 and row < 70
    # the same window: the soft tissue away from the blob is the same grey in both
    assert abs(blob[70:110, 100:140].mean() - img[70:110, 100:140].mean()) < 2
    # 40 HU: mid grey at the file's window (L 40), three quarters up at L -60
    before = tile(load_png(quad_png), 0)[70:110, 100:140].mean()
    after = img[70:110, 100:140].mean()
    assert 115 < before < 140 and 175 < after < 205


def test_3d_view_shows_outline_and_threshold_opacity(runs) -> None:
    images = {}
    for name in ("plain", "low", "high"):
        result, folder = result_of(runs, f"3d-{name}")
        assert result.returncode == 0, result.stderr
        images[name] = load_png(folder / f"3d-{name}.png").astype(int)
    plain = images["plain"]
    white = plain.min(axis=2) > 200
    rows, cols = np.nonzero(white)
    assert rows.size > 100 and cols.max() - cols.min() > 100  # the outline box

    def opaque(img: np.ndarray) -> int:
        changed = np.abs(img - plain).max(axis=2) > 30
        changed[-60:, :60] = False  # the orientation marker's corner
        changed[:40, :120] = False  # the text naming the threshold
        return int(changed.sum())

    assert opaque(images["high"]) > 20  # the blob
    assert opaque(images["low"]) > 3 * opaque(images["high"])  # the whole block


def _opaque_spot(runs, name: str, plain_name: str) -> tuple[float, float, float]:
    """(column, row) of what threshold opacity adds to the plain 3D view, and the box
    centre column (from the white outline of the plain view)."""
    images = {}
    for run in (name, plain_name):
        result, folder = result_of(runs, run)
        assert result.returncode == 0, result.stderr
        images[run] = load_png(folder / f"{run}.png").astype(int)
    plain = images[plain_name]
    changed = np.abs(images[name] - plain).max(axis=2) > 30
    changed[-60:, :60] = False  # the orientation marker's corner
    changed[:30, :] = False  # the text naming the threshold
    rows, cols = np.nonzero(changed)
    assert rows.size > 50, name
    _, edges = np.nonzero(plain[60:140].min(axis=2) > 200)  # the box's sides, below the text
    return float(np.median(cols)), float(np.median(rows)), (edges.min() + edges.max()) / 2


def test_camera_presets_look_from_that_side(runs) -> None:
    """The blob is on the patient's left, anterior, superior. From the front (anterior) the
    patient's left is on the screen's right; from the left side anterior is on the screen's
    left. Superior is up from both."""
    front_col, front_row, centre = _opaque_spot(runs, "3d-high", "3d-plain")
    side_col, side_row, side_centre = _opaque_spot(runs, "3d-left", "3d-left-plain")
    assert front_col > centre + 15
    assert side_col < side_centre - 15
    assert front_row < 90 and abs(front_row - side_row) <= 3


def test_screenshots_are_the_same_in_two_processes(quad, runs) -> None:
    result, folder = result_of(runs, "quad-again")
    assert result.returncode == 0, result.stderr
    first, again = load_png(quad[1]), load_png(folder / "quad-again.png")
    assert first.shape == again.shape and np.array_equal(first, again)


def test_preset_sets_the_window(runs) -> None:
    result, folder = result_of(runs, "lung")
    assert result.returncode == 0, result.stderr
    img = load_png(folder / "lung.png").astype(float)
    centre, width = CT_PRESETS["lung"]

    def grey(hu: float) -> float:
        return float(np.clip((hu - (centre - width / 2)) / width * 255, 0, 255))

    tissue = np.median(img[70:110, 100:140], axis=(0, 1))  # 40 HU
    air = np.median(img[70:110, 42:54], axis=(0, 1))  # -1000 HU, inside the image
    assert np.all(np.abs(tissue - grey(40)) < 4), tissue
    assert np.all(np.abs(air - grey(-1000)) < 4), air


def test_series_option_renders_the_chosen_series(runs) -> None:
    images = []
    for name in ("series-index", "series-uid"):
        result, folder = result_of(runs, name)
        assert result.returncode == 0, result.stderr
        assert "series 1 small" in result.stdout
        images.append(load_png(folder / f"{name}.png"))
    by_index, by_uid = images
    assert np.array_equal(by_index, by_uid)
    # the small series' bright block: the patient's right (screen left), posterior (bottom)
    column, row = bright_spot(by_index, min_level=230)
    assert column < 80 and row > 120
    assert grey_mask(by_index[100:, 100:], min_level=230).sum() < 20  # nothing bright elsewhere


def test_all_series_writes_one_png_per_series(runs) -> None:
    result, folder = result_of(runs, "all")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out_dir = folder / "all"
    assert sorted(p.name for p in out_dir.iterdir()) == ["0_block.png", "1_small.png"]
    # piped: one plain log line per image, no terminal bar
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "\r" not in result.stdout
    assert lines[0].startswith("[1/2] wrote") and lines[0].endswith("0_block.png")
    assert lines[1].startswith("[2/2] wrote") and lines[1].endswith("1_small.png")
    # each image is its own series: small as rendered with --series 1, block's soft tissue
    # at the file's window (40 HU at L 40: mid grey) with nothing bright on its centre slice
    series_one, _ = result_of(runs, "series-index")
    assert series_one.returncode == 0, series_one.stderr
    small = load_png(out_dir / "1_small.png")
    assert np.array_equal(small, load_png(folder / "series-index.png"))
    block = load_png(out_dir / "0_block.png")
    assert 115 < np.median(block[80:120, 80:120]) < 140
    assert grey_mask(block[30:170, 30:170], min_level=230).sum() == 0


def test_progress_bar_on_a_terminal(runs) -> None:
    result, folder = result_of(runs, "all-tty")
    assert result.returncode == 0, result.stdout
    shown = result.stdout
    bars = re.findall(r"\r\x1b\[K\[([#-]{30})\] (\d)/2 wrote (\S+)", shown)
    assert [(bar.count("#"), n) for bar, n, _ in bars] == [(15, "1"), (30, "2")]
    assert bars[0][2].endswith("0_block.png") and bars[1][2].endswith("1_small.png")
    assert "[1/2] wrote" not in shown  # no plain log lines on a terminal
    assert "Traceback" not in shown
    for name in ("0_block.png", "1_small.png"):
        assert np.array_equal(load_png(folder / "all-tty" / name), load_png(folder / "all" / name))


def test_usage_and_input_errors_exit_cleanly(runs) -> None:
    missing_output, folder = result_of(runs, "no-output")
    assert missing_output.returncode == 2
    assert "-o OUT.png" in missing_output.stderr and "Traceback" not in missing_output.stderr
    out_of_range, _ = result_of(runs, "out-of-range")
    assert out_of_range.returncode == 2
    assert "0-29" in out_of_range.stderr and "Traceback" not in out_of_range.stderr
    missing, _ = result_of(runs, "missing")
    assert missing.returncode == 3
    assert len(missing.stderr.strip().splitlines()) == 1 and "nothing-here" in missing.stderr
    assert not (folder / "never.png").exists()


def test_marked_slices_for_all_series_with_a_log(runs) -> None:
    result, folder = result_of(runs, "marked")
    out_dir = folder / "marked"
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out_dir.iterdir())
    assert len(names) == 3
    assert names[0].endswith("block_axial_0020.png") and names[1].endswith("block_axial_0021.png")
    assert names[2].endswith("block_contact_sheet.png")
    # piped: plain log lines, no terminal bar
    assert "[1/3] wrote" in result.stdout and "\r" not in result.stdout + result.stderr
    assert "small: no marked slices" in result.stdout
    img = load_png(out_dir / names[0]).astype(int)
    frame = (img[:, :4, 0] > 200) & (img[:, :4, 2] < 60)
    assert frame.mean() > 0.5  # the marked-slice frame
    assert bright_spot(img, min_level=230)[0] > 100  # the blob, on the screen's right


def test_demo_study(runs) -> None:
    result, folder = result_of(runs, "demo")
    out = folder / "demo.png"
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    img = load_png(out)
    assert img.shape == (300, 400, 3)
    axial = tile(img, 0).astype(int)
    yellow = (axial[..., 0] > 180) & (axial[..., 1] > 150) & (axial[..., 2] < 120)
    assert yellow[:25, 80:120].sum() > 5 and yellow[60:90, -25:].sum() > 5  # "A" and "L"


def test_help_is_complete(capsys: pytest.CaptureFixture[str]) -> None:
    from mprviewer.cli import main

    assert main(["screenshot", "-h"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--series",
        "--view",
        "--slice",
        "--window",
        "--level",
        "--preset",
        "--threshold",
        "--opacity",
        "--size",
        "--annotations",
        "--camera",
        "--all-series",
        "--out-dir",
        "--marked-slices",
        "examples:",
    ):
        assert option in text
