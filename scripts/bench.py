#!/usr/bin/env python3
"""The benchmark's short name: runs ``benchmarks/bench.py`` with the same arguments (see that
file, or ``--help``), which writes BENCHMARKS.md."""

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"

if __name__ == "__main__":
    sys.argv[0] = str(BENCH)
    runpy.run_path(str(BENCH), run_name="__main__")
