"""``mprviewer screenshot`` run as users run it: a subprocess, DISPLAY unset, real DICOM files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mprviewer.io.synthetic import write_series
from mprviewer.render.probe import bright_spot, grey_mask, tile

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


def load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two series: 'block' (soft tissue with a bright blob on the patient's left, anterior,
    superior; 40x40x30, 2 mm slices) and a smaller 'small' series."""
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
    write_series(root / "small", np.zeros((6, 16, 16), np.int16), series_number=2, seed=2)
    return root


@pytest.fixture(scope="module")
def runs(study: Path, tmp_path_factory: pytest.TempPathFactory):
    """Every command of this module, started at once (a few in parallel) to save wall time.

    Returns {name: (future CompletedProcess, output path)}.
    """
    out = tmp_path_factory.mktemp("shots")
    marks = out / "marks.json"
    marks.write_text(json.dumps({"block": {"Anomaly": "nodule", "Slices": "20-21"}}))
    s = str(study)
    commands = {
        "quad": [s, "-o", "quad.png", "--size", "480x360", "--slice", SLICES, "--threshold", "500"],
        "axial": [
            s,
            "-o",
            "axial.png",
            "--view",
            "axial",
            "--slice",
            "axial=5",
            "--window",
            "400",
            "--level",
            "-60",
            "--size",
            "240x180",
        ],
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
    pool = ThreadPoolExecutor(max_workers=2)
    futures: dict[str, Future] = {
        name: pool.submit(run_cli, *args, cwd=out) for name, args in commands.items()
    }
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
