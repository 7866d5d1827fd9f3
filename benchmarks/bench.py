#!/usr/bin/env python3
"""Benchmark mprviewer's loading, interaction and start-up next to SimpleITK, VTK and the
original pydicom approach, and write BENCHMARKS.md.

A benchmark, not a test: nothing here fails on a slow number. Run on a quiet machine:

    ./scripts/setup && .venv/bin/python benchmarks/bench.py            # full run, ~10 minutes
    .venv/bin/python benchmarks/bench.py --quick                        # small smoke run
    .venv/bin/python benchmarks/bench.py --only load --reps 7           # one part
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

PARTS = ("load", "interaction", "startup", "project", "process", "codecs", "4d", "batch",
         "window")
# Parts written into their own section of BENCHMARKS.md (bench_whole); a run of only these
# replaces that section and keeps the rest of the file.
WHOLE_PARTS = ("process", "codecs", "4d", "batch", "window")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time mprviewer against SimpleITK, vtkDICOMImageReader, the original "
        "pydicom approach and the raw-bytes floor; write BENCHMARKS.md.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="small data and 2 repetitions: checks the machinery in a minute")
    parser.add_argument("--only", action="append", choices=PARTS, metavar="PART",
                        help="run only this part (load, interaction, startup, project, "
                             "process, codecs, 4d, batch, window); repeatable")
    parser.add_argument("--large", action="store_true",
                        help="also load a 512x512x1000 series (about 500 MB of files)")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per candidate (default 5, 2 with --quick)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where generated series are cached (default bench-data/)")
    parser.add_argument("--output", type=Path, default=None,
                        help="report path (default BENCHMARKS.md; "
                             "bench-data/BENCHMARKS-quick.md with --quick)")
    parser.add_argument("--size", default="1000x800",
                        help="off-screen window size for the interaction part (WxH)")
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # No display for the in-process parts: VTK renders through EGL (the viewer's own
    # start-up is measured under a private Xvfb).
    os.environ.pop("DISPLAY", None)
    os.environ.pop("WAYLAND_DISPLAY", None)

    import bench_data
    import bench_report

    parts = tuple(args.only or PARTS)
    reps = args.reps or (2 if args.quick else 5)
    root = args.data_dir or bench_data.DEFAULT_ROOT
    output = args.output or (root / "BENCHMARKS-quick.md" if args.quick
                             else bench_data.REPO / "BENCHMARKS.md")
    specs = list(bench_data.QUICK if args.quick else bench_data.FULL)
    if args.large:
        specs.append(bench_data.LARGE)
    size = tuple(int(v) for v in args.size.lower().split("x"))

    report = bench_report.Report(
        command="benchmarks/bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        reps=reps,
    )
    report.load_average.append(bench_report.load_average())
    needs_data = {"load", "interaction"} & set(parts)
    folders = ({spec.name: bench_data.ensure_dataset(spec, root) for spec in specs}
               if needs_data else {})

    if "load" in parts:
        print("loading (imports done; timing starts)")
        for spec in specs:
            _guard(report, f"load {spec.label}", lambda s=spec: _load(report, s, folders, reps))
    renderer = None
    if "interaction" in parts:
        renderer = _guard(report, "interaction", lambda: _interaction(
            report, specs[0], folders, size, 10 if args.quick else 30, reps))
    if "startup" in parts:
        import bench_startup

        print("start-up (fresh processes)")
        startup_reps = max(1, min(reps, 3)) if args.quick else reps
        _guard(report, "start-up", lambda: report.startup.extend(
            bench_startup.run_startup(root / "home", startup_reps)))
        if parts == ("startup",):  # only this part: replace its section, keep the rest
            bench_startup.update_section(
                output, bench_startup.render_section(report.startup, report.command))
            print(f"updated the Start-up section of {output}")
            return 0
    if "project" in parts:
        import bench_project

        print("labeling project (fresh processes)")
        rows = _guard(report, "project", lambda: bench_project.run(
            reps=max(1, min(reps, 3)) if args.quick else reps,
            studies=200 if args.quick else bench_project.STUDIES))
        for row in rows or []:
            print(f"  {row.name}: {row.seconds:.3f} s")
        report.project.extend(rows or [])
    whole = None
    if any(p in WHOLE_PARTS for p in parts):
        import bench_whole

        whole = _guard(report, "whole processes, codecs, 4D, batch", lambda: bench_whole.run(
            tuple(p for p in parts if p in WHOLE_PARTS), reps, root))
    if all(p in WHOLE_PARTS for p in parts) and whole is not None:
        import bench_whole

        bench_whole.update_section(output, bench_whole.render(whole, report.command))
        print(f"updated the section of {output}")
        return 0
    if renderer is None and "interaction" not in parts:
        try:
            import bench_render

            renderer = bench_render.renderer_string()
        except Exception as exc:  # the report still says what it can
            renderer = f"unknown ({type(exc).__name__})"
    report.machine = bench_report.machine_info(renderer)
    report.versions = bench_report.versions()
    report.load_average.append(bench_report.load_average())
    path = bench_report.write(report, output)
    if whole is not None:
        import bench_whole

        bench_whole.update_section(path, bench_whole.render(whole, report.command))
    print(f"wrote {path}")
    return 0


def _guard(report, part: str, fn):
    """Run one part; a failure is written into the report instead of losing the others."""
    try:
        return fn()
    except Exception as exc:
        import traceback

        traceback.print_exc()
        report.failures.append(f"{part}: {type(exc).__name__}: {exc}")
        return None


def _load(report, spec, folders, reps: int) -> None:
    import bench_load
    from bench_measure import median

    result = bench_load.run_load(spec, folders[spec.name], reps)
    report.loads.append(result)
    result.check = bench_load.check_against_simpleitk(folders[spec.name])
    for name, samples in result.samples.items():
        print(f"  {spec.name}: {name}: {median([s.seconds for s in samples]):.3f} s")
    print(f"  {spec.name}: voxels equal to SimpleITK: {result.check['voxels_equal']}, "
          f"affine diff {result.check['affine_max_diff']:.1e}")


def _interaction(report, spec, folders, size, frames: int, reps: int) -> str:
    import bench_load
    import bench_render

    renderer = bench_render.renderer_string()
    volume = bench_load.load_mprviewer(folders[spec.name])
    print(f"interaction at {size[0]}x{size[1]} on {spec.label} ({renderer})")
    report.interaction_note = (
        f"{size[0]}x{size[1]} (EGL, no display) on the {spec.label} volume; "
        f"{frames} frames per block for 2D and plane moves, blocks of change and floor "
        f"alternating, {reps} blocks each; after every frame the GL pipeline is drained "
        "(glFinish)")
    report.interaction.extend(bench_render.run_interaction(volume, size, frames, reps))
    return renderer


if __name__ == "__main__":
    sys.exit(main())
