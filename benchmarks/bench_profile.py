#!/usr/bin/env python3
"""Where mprviewer's load time goes: each phase timed, then a function profile.

    .venv/bin/python benchmarks/bench_profile.py [bench-data/ct-512x512x300] [--top 25]

Phases (median of a few runs, wall and CPU): listing the folder, the header scan with 1 and 2
threads, grouping into series, the geometry sort, and the pixel load (``load_frames``) with 1
and 2 threads, split into reading stored values and the modality rescale. Then cProfile of
the whole load with one thread (cProfile sees only the thread it runs in), sorted by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from bench_measure import median  # noqa: E402

from mprviewer.io import pixels  # noqa: E402
from mprviewer.io.scan import scan_members  # noqa: E402
from mprviewer.io.series import group_series  # noqa: E402
from mprviewer.io.sources import expand_source  # noqa: E402


def timed(fn, reps: int):
    walls, cpus, result = [], [], None
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return median(walls), median(cpus), result


def read_only(frames, workers: int) -> np.ndarray:
    """load_frames' first half: stored values into one array, no rescale."""
    from concurrent.futures import ThreadPoolExecutor

    first = frames[0].instance
    formats = pixels.pixel_formats(frames)
    raw = np.empty((len(frames), first.rows, first.columns), pixels.stored_dtype(formats))

    def read(k: int) -> None:
        pixels.read_stored_into(raw[k], frames[k], formats[k], first.rows, first.columns)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(read, range(len(frames))))
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path,
                        default=HERE.parent / "bench-data" / "ct-512x512x300")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    folder, reps = args.folder, args.reps

    rows = []
    wall, cpu, expanded = timed(lambda: expand_source(str(folder)), reps)
    rows.append(("list the folder (expand_source)", wall, cpu))
    members = expanded.members
    for workers in (1, 2):
        wall, cpu, scanned = timed(lambda w=workers: scan_members(members, workers=w), reps)
        rows.append((f"header scan, {workers} thread(s) (scan_members)", wall, cpu))
    instances, _ = scanned
    wall, cpu, grouped = timed(lambda: group_series(instances), reps)
    rows.append(("group into series (group_series)", wall, cpu))
    series = grouped[0][0]

    def geometry():
        series._geometry = None
        return series.geometry

    wall, cpu, geo = timed(geometry, reps)
    rows.append(("geometry sort (build_geometry)", wall, cpu))
    frames = geo.frames
    for workers in (1, 2):
        wall, cpu, _ = timed(lambda w=workers: read_only(frames, w), reps)
        rows.append((f"read stored values, {workers} thread(s)", wall, cpu))
    for workers in (1, 2):
        wall, cpu, _ = timed(lambda w=workers: pixels.load_frames(frames, workers=w), reps)
        rows.append((f"load_frames (read + rescale), {workers} thread(s)", wall, cpu))
    raw = read_only(frames, 2)
    fmt = pixels.PixelFormat(frames[0].instance.header)
    out = raw.view(np.int16)

    def rescale():
        for k in range(len(frames)):
            pixels._rescale_slice(raw[k], out[k], fmt, None)

    # Runs on already-rescaled values after the first pass: the cost is the same.
    wall, cpu, _ = timed(rescale, reps)
    rows.append(("modality rescale alone, 1 thread (_rescale_slice per slice)", wall, cpu))

    print(f"{folder}: {len(frames)} frames, reps={reps} (median)")
    print(f"{'phase':62s} {'wall s':>8s} {'cpu s':>8s}")
    for name, wall, cpu in rows:
        print(f"{name:62s} {wall:8.3f} {cpu:8.3f}")

    from mprviewer.io.scan import Instance, scan_one

    def whole():
        """The same work as open_study + load, all in this thread so cProfile sees it."""
        found = [r for r in map(scan_one, expand_source(str(folder)).members)
                 if isinstance(r, Instance)]
        one = group_series(found)[0][0]
        todo = one.geometry.frames
        first = todo[0].instance
        formats = pixels.pixel_formats(todo)
        raw = np.empty((len(todo), first.rows, first.columns), pixels.stored_dtype(formats))
        view = raw.view(np.int16)
        for k, frame in enumerate(todo):
            pixels.read_stored_into(raw[k], frame, formats[k], first.rows, first.columns)
        for k in range(len(todo)):
            pixels._rescale_slice(raw[k], view[k], formats[k], None)
        return view

    profile = cProfile.Profile()
    profile.enable()
    whole()
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
    print("\ncProfile of scan + sort + read + rescale in one thread, by own time:")
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
