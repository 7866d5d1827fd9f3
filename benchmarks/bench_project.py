#!/usr/bin/env python3
"""Labeling project speed: ``project status`` and ``project export --to csv`` on a project of
1,000 studies of 40 images each, run as a user runs them (fresh ``mprviewer`` processes, so
start-up and imports count), plus the header scan of ``project create`` per study.

The 1,000-study index is written straight into the store (status and the CSV read only the
database, never the image files, so files add nothing to these two timings); the readers'
work is real events: about a third of the studies marked on a few slices and done, a third
"no finding", the rest unread. ``create`` is timed on real files (a few small studies).

    .venv/bin/python benchmarks/bench_project.py            # prints the figures
    .venv/bin/python benchmarks/bench.py --only project     # the same, into the report
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

STUDIES = 1000
IMAGES = 40
READER = "bench"


@dataclass
class ProjectRow:
    name: str
    seconds: float | None
    note: str = ""
    limit: float | None = None


def build(folder: Path, studies: int = STUDIES, images: int = IMAGES) -> Path:
    """A project of ``studies`` indexed studies with one reader's work in its event log."""
    from mprviewer.project import Project
    from mprviewer.project.indexer import SeriesRecord, StudyRecord

    records = []
    for n in range(studies):
        uid = f"1.2.826.0.1.3680043.10.999.{n + 1}"
        series = SeriesRecord(
            uid=f"{uid}.1", name="CT head", number=1, modality="CT",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2", folder=f"case{n:04d}",
            acquisition_plane="axial",
            plane_sizes={"axial": images, "coronal": 256, "sagittal": 256},
            images=[(k, f"{uid}.1.{k + 1}", None) for k in range(images)])
        records.append(StudyRecord(uid=uid, name=f"case{n:04d}",
                                   locations=[str(folder.parent / f"case{n:04d}")],
                                   attributes={"PatientID": f"P{n}"}, series=[series]))
    project = Project.create(folder, [], "ich")
    project.add_records("synthetic", "folder", str(folder.parent), records)
    studies_info = project.studies()
    rows = []
    for info in studies_info:
        series_id = project.series(info)[0].id
        kind = info.index % 3
        if kind == 0:
            first = images // 4
            marks = (("subdural", f"{first}-{min(images - 1, first + 4)}"),
                     ("subarachnoid", f"{images // 2}"))
            for label, slices in marks:
                rows.append({"reader": READER, "study_id": info.id, "series_id": series_id,
                             "action": "mark", "label": label, "plane": "axial",
                             "slices": slices})
            rows.append({"reader": READER, "study_id": info.id, "action": "status",
                         "status": "done"})
        elif kind == 1:
            rows.append({"reader": READER, "study_id": info.id, "action": "status",
                         "status": "no finding"})
    with project.store.write() as conn:
        project._append(conn, rows)
    project.close()
    return folder


def _cli(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mprviewer", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _median(fn, reps: int) -> float:
    fn()  # warm the page cache
    return statistics.median(fn() for _ in range(reps))


def time_create(workdir: Path, studies: int = 10, images: int = IMAGES) -> float:
    """Seconds per study of ``project create`` on real files (header scan and index)."""
    import numpy as np

    from mprviewer.project import Project
    from mprviewer.synthetic import writer

    src = workdir / "src"
    for n in range(studies):
        writer.write_series(src / f"case{n}", np.zeros((images, 64, 64), np.int16),
                            study_uid=writer.make_uid(5, "bench", n), seed=f"b{n}")
    start = time.perf_counter()
    Project.create(workdir / "made", [str(src)], "ich").close()
    return (time.perf_counter() - start) / studies


def run(reps: int = 5, studies: int = STUDIES, viewer: bool = True) -> list[ProjectRow]:
    """Build, time, clean up; the rows the report shows (``viewer``: also the worklist's
    next study in the viewer under a private Xvfb, when Xvfb is installed)."""
    workdir = Path(tempfile.mkdtemp(prefix="mprviewer-bench-project-"))
    try:
        folder = build(workdir / "project", studies)
        out = workdir / "labels.csv"
        status = _median(lambda: _cli("project", "status", str(folder), "--json"), reps)
        export = _median(lambda: _cli("project", "export", str(folder), "--to", "csv",
                                      str(out), "--force"), reps)
        rows_written = out.read_text().count("\n") - 1
        start = _median(lambda: _cli("--version"), reps)
        per_study = time_create(workdir / "create")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    what = f"{studies:,} studies x {IMAGES} images"
    rows = [
        ProjectRow(f"project status --json, {what}", status,
                   "fresh process: start-up, opening the store, statuses, JSON", 2.0),
        ProjectRow(f"project export --to csv, {what}", export,
                   f"fresh process; {rows_written:,} rows (the finished two thirds)", 2.0),
        ProjectRow("mprviewer --version (process start-up alone)", start,
                   "the floor both commands above include"),
        ProjectRow("project create, per study of 40 files", per_study,
                   "header scan and index of 10 small studies on disk, warm cache"),
    ]
    if viewer and shutil.which("Xvfb"):
        import bench_worklist

        moves = bench_worklist.measure(reps=max(1, min(reps, 3)))
        rows.append(ProjectRow(
            "viewer: next study (N), 256x256x128, read ahead", moves["read ahead"],
            f"N pressed after {bench_worklist.READ_FOR_S:g} s on the current study, to the "
            "first 2D frame; Xvfb", 0.5))
        rows.append(ProjectRow(
            "viewer: next study (N), 256x256x128, read when asked", moves["read when asked"],
            "the same without reading ahead (files in the page cache)"))
    return rows


def main() -> int:
    os.environ.setdefault("MPRVIEWER_READER", READER)
    for row in run():
        print(f"{row.name}: {row.seconds:.3f} s ({row.note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
