"""A 4D series (64x64x30 at 100 time points, 3000 files): time to the first volume in memory,
mprviewer next to a plain pydicom script that groups the files by time point."""

from __future__ import annotations

import time
from pathlib import Path

import bench_data
import numpy as np

SHAPE = (30, 64, 64)
TIMES = 100


def ensure_4d_dataset(root: Path = bench_data.DEFAULT_ROOT, log=print) -> Path:
    from mprviewer.synthetic import writer as synthetic

    folder = Path(root) / "mr4d-64x64x30x100"
    stamp = folder.with_name(folder.name + ".complete.json")
    if stamp.is_file():
        return folder
    log(f"writing a 64x64x30x{TIMES} series into {folder} ...")
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    uid = synthetic.make_uid("bench-4d", "series")
    rng = np.random.default_rng(4)
    base = rng.integers(0, 2000, size=SHAPE).astype(np.int16)
    for t in range(1, TIMES + 1):
        synthetic.write_series(
            folder, base + t, series_uid=uid, seed=f"bench-4d-{t}", modality="MR",
            signed=True, tags={"TemporalPositionIdentifier": t,
                               "NumberOfTemporalPositions": TIMES},
            file_names=f"T{t:03d}_%03d", shuffle=t, description="benchmark 4D")
    stamp.write_text("{}")
    return folder


def load_mprviewer(folder: Path) -> np.ndarray:
    import mprviewer

    with mprviewer.open_study(folder) as study:
        first = study.series[0]
        return first.load().array


def load_pydicom(folder: Path) -> np.ndarray:
    """dcmread every header, group by TemporalPositionIdentifier, sort the first time
    point by position along the normal, read its pixels, rescale."""
    import pydicom

    groups: dict[int, list] = {}
    for path in Path(folder).iterdir():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        groups.setdefault(int(ds.TemporalPositionIdentifier), []).append((path, ds))
    first = groups[min(groups)]
    row, col = (np.array(ds.ImageOrientationPatient[:3], float),
                np.array(ds.ImageOrientationPatient[3:], float))
    normal = np.cross(row, col)
    first.sort(key=lambda pd: float(np.dot(np.array(pd[1].ImagePositionPatient, float),
                                           normal)))
    slices = []
    for path, _ in first:
        full = pydicom.dcmread(path)
        slope = float(full.get("RescaleSlope", 1) or 1)
        intercept = float(full.get("RescaleIntercept", 0) or 0)
        slices.append(full.pixel_array * slope + intercept)
    return np.stack(slices).astype(np.int16)


def run_4d(reps: int, root: Path = bench_data.DEFAULT_ROOT) -> dict[str, list[float]]:
    folder = ensure_4d_dataset(root)
    ours, theirs = load_mprviewer(folder), load_pydicom(folder)
    assert np.array_equal(ours, theirs), "first volumes differ"
    times: dict[str, list[float]] = {"mprviewer": [], "pydicom grouping": []}
    order = [("mprviewer", load_mprviewer), ("pydicom grouping", load_pydicom)]
    for n in range(reps):
        for name, fn in order if n % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fn(folder)
            times[name].append(time.perf_counter() - t0)
    for name, values in times.items():
        print(f"  4D first volume: {name}: {np.median(values):.3f} s "
              f"({min(values):.3f}-{max(values):.3f})")
    return times


if __name__ == "__main__":
    import sys

    run_4d(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
