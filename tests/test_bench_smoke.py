"""A tiny run of the benchmark machinery: data, every loader, the SimpleITK check, the report.

No timing assertions: what counts here is that the benchmark measures the right thing (each
loader really returns the series, mprviewer's volume is SimpleITK's voxel for voxel and
equals the values written) and that the report says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_data
import bench_load
import bench_report
from bench_measure import measure

TINY_CT = bench_data.DatasetSpec("tiny-ct", (9, 40, 48), spacing=(2.5, 1.2, 0.9), seed=3)
TINY_J2K = bench_data.DatasetSpec("tiny-j2k", (5, 40, 48), bench_data.JPEG2000_LOSSLESS,
                                  spacing=(2.5, 1.2, 0.9), seed=4)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench-data")
    return {spec.name: bench_data.ensure_dataset(spec, root, log=lambda _m: None)
            for spec in (TINY_CT, TINY_J2K)}


def test_dataset_is_cached_and_deterministic(folders, tmp_path):
    folder = folders[TINY_CT.name]
    files = sorted(p.name for p in bench_data.dicom_files(folder))
    stamp_before = {p.name: p.stat().st_mtime_ns for p in bench_data.dicom_files(folder)}
    again = bench_data.ensure_dataset(TINY_CT, folder.parent, log=lambda _m: None)
    assert again == folder
    assert {p.name: p.stat().st_mtime_ns for p in bench_data.dicom_files(folder)} == stamp_before
    other = bench_data.ensure_dataset(TINY_CT, tmp_path, log=lambda _m: None)
    assert sorted(p.name for p in bench_data.dicom_files(other)) == files
    for name in files[:3]:
        assert (other / name).read_bytes() == (folder / name).read_bytes()


def test_mprviewer_equals_simpleitk_and_the_written_values(folders):
    for spec in (TINY_CT, TINY_J2K):
        check = bench_load.check_against_simpleitk(folders[spec.name])
        assert check["voxels_equal"], check
        assert check["affine_ok"], check
        assert check["shape"] == spec.shape
        volume = bench_load.load_mprviewer(folders[spec.name])
        np.testing.assert_array_equal(volume.array, bench_data.hu_volume(spec))


def test_every_loader_returns_the_series(folders):
    folder = folders[TINY_CT.name]
    truth = bench_data.hu_volume(TINY_CT)
    original = bench_load.load_original(folder)
    assert original.dtype == np.float64
    np.testing.assert_array_equal(original, truth)
    image = bench_load.load_vtk(folder)
    assert image.GetDimensions() == (48, 40, 9)
    total = bench_load.read_all_bytes(folder)
    assert total == sum(p.stat().st_size for p in bench_data.dicom_files(folder))
    assert total > truth.nbytes  # the files hold at least the pixels


def test_peak_memory_sees_c_allocations():
    n = 40 * 1024 * 1024
    sample, held = measure(lambda: np.ones(n, dtype=np.uint8))
    assert held.nbytes == n
    assert 0.9 * n <= sample.peak_bytes <= 1.5 * n
    assert sample.seconds >= 0 and sample.cpu_seconds >= 0


def test_report_lists_every_candidate_and_target(folders, tmp_path):
    report = bench_report.Report(command="benchmarks/bench.py --test", reps=1)
    for spec in (TINY_CT, TINY_J2K):
        result = bench_load.run_load(spec, folders[spec.name], reps=1, log=lambda _m: None)
        result.check = bench_load.check_against_simpleitk(folders[spec.name])
        report.loads.append(result)
    report.machine = bench_report.machine_info("test renderer")
    report.versions = bench_report.versions()
    report.load_average = ["0 0 0", "0 0 0"]
    path = bench_report.write(report, tmp_path / "BENCHMARKS.md")
    text = path.read_text()

    ct, j2k = report.loads
    assert set(ct.samples) == {c.name for c in bench_load.CANDIDATES}
    assert bench_load.VTK in j2k.skipped and bench_load.VTK not in j2k.samples
    for cand in bench_load.CANDIDATES:
        assert f"| {cand.name} |" in text
    assert text.count("every voxel equal") == 2
    assert "SimpleITK: " in text and "numpy: " in text and "CPU: " in text
    assert ".venv/bin/python benchmarks/bench.py" in text
    goals = bench_report.targets(report)
    names = [g[0] for g in goals]
    assert any("3x faster than SimpleITK" in n for n in names)
    assert any("1.5x faster than vtkDICOMImageReader" in n for n in names)
    assert any("raw-bytes floor" in n for n in names)
    assert sum("peak memory" in n for n in names) == 2
    assert all(ok is not None for _n, _m, ok in goals)  # all measured in this run
    equal_rows = [g for g in goals if "voxel for voxel" in g[0]]
    assert [ok for _n, _m, ok in equal_rows] == [True, True]


def test_project_benchmark_builds_what_it_says_and_times_the_commands(tmp_path):
    """The benchmark's project: a third done with marks, a third no finding, the rest unread;
    the CSV it times holds every image of the finished studies."""
    import bench_project

    from mprviewer.project import Project

    folder = bench_project.build(tmp_path / "p", studies=6, images=4)
    with Project.open(folder) as project:
        counts = project.summary()["counts"][bench_project.READER]
        assert counts == {"unread": 2, "in progress": 0, "done": 2, "no finding": 2,
                          "unreadable": 0}
        project.export("csv", tmp_path / "x.csv")
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 * 4 * 6  # 4 finished studies x 4 images x 6 labels
    # per done study: subdural on slices 1-3 (and so any), subarachnoid on slice 2
    assert sum(line.endswith(",1") for line in lines) == 2 * (3 * 2 + 1)


def test_startup_section_pairs_the_viewer_with_the_bare_window_and_keeps_the_rest(tmp_path):
    """The Start-up section: both rows with their spread, the ratio of the medians against
    the target, the steps of each process, and a reason when missed; a run of only this
    part replaces its section and leaves the others as they were."""
    import bench_startup as bs

    assert bs._parse_steps("run 0.07, window: views built 1.20, first 2D frame 1.50") == {
        "run": 0.07, "window: views built": 1.2, "first 2D frame": 1.5}
    compile(bs.BARE_WINDOW, "bare_window.py", "exec")  # the peer is a script that runs
    pair = bs.PairedFirstFrame([1.5, 1.7, 1.6], [1.0, 1.2, 1.1],
                               {"run": 0.1, "load: started": 0.2, "load: done": 1.2,
                                "first 2D frame": 1.6},
                               {"imports": 0.8, "first frame": 1.1})
    assert pair.ratio == pytest.approx(1.6 / 1.1) and not pair.met
    bs.LAST_PAIR[:] = [pair]
    rows = [bs.StartupRow(bs.VIEWER_NAME, 1.6, "viewer", spread=(1.5, 1.7)),
            bs.StartupRow(bs.BARE_NAME, 1.1, "bare", spread=(1.0, 1.2))]
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# b\n\n## Start-up\n\nold figures\n\n## Labeling project\n\nkept\n")
    bs.update_section(path, bs.render_section(rows, "benchmarks/bench.py --only startup"))
    text = path.read_text()
    assert "old figures" not in text and "## Labeling project\n\nkept" in text
    assert f"| {bs.VIEWER_NAME} | 1.60 | 1.50-1.70 |" in text
    assert f"| {bs.BARE_NAME} | 1.10 | 1.00-1.20 |" in text
    assert "**1.45x**" in text and "1.42x-1.50x" in text and "**not met**" in text
    assert "- viewer, main thread: run 0.10 (+0.10), first 2D frame 1.60 (+1.50)" in text
    assert "- viewer, loading thread: load: started 0.20 (+0.20), load: done 1.20 (+1.00)" in text
    assert "Why it is missed (by 0.23 s)" in text and "loading thread took 1.00 s" in text
    bs.LAST_PAIR[:] = [bs.PairedFirstFrame([1.2], [1.0], {}, {})]
    text = "\n".join(bs.render_section(rows))
    assert "**met**" in text and "Why it is missed" not in text
    bs.LAST_PAIR.clear()


def test_scripts_bench_runs_the_benchmark_entry_point():
    """``scripts/bench.py`` is the benchmark under its documented name: same options."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
    result = subprocess.run([sys.executable, str(script), "--only", "nothing"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "invalid choice: 'nothing'" in result.stderr and "window" in result.stderr
