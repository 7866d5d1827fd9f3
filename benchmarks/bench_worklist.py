#!/usr/bin/env python3
"""Moving on in the viewer's worklist: from "next study" to the new study's first 2D frame,
for 256x256x128 studies, with the next study read in the background while the reader looks
at the current one (a few seconds), and without (read when asked).

The viewer runs in a child process under a private Xvfb (``bench_startup.Xvfb``); the time
is measured inside it, from the call that N makes to ``first_frame_shown``.

    .venv/bin/python benchmarks/bench_worklist.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SHAPE = (128, 256, 256)
READ_FOR_S = 3.0  # how long the "reader" looks at a study before pressing N


def make_project(folder: Path, studies: int = 3) -> Path:
    import numpy as np

    from mprviewer.project import Project
    from mprviewer.synthetic import writer

    rng = np.random.default_rng(1)
    for n in range(studies):
        array = rng.integers(-100, 200, size=SHAPE, dtype=np.int16)
        writer.write_series(folder / "src" / f"case{n}", array, slice_spacing=1.0,
                            study_uid=writer.make_uid(31, "wl", n), seed=f"w{n}",
                            window=(40, 400))
    Project.create(folder / "proj", [str(folder / "src")], "ich").close()
    return folder / "proj"


def child(project: str, prepare: bool) -> None:
    """In the viewer process: open study 0, read for a while, press N, time the frame."""
    import time

    from PyQt5.QtCore import QEventLoop, QTimer

    from mprviewer.gui import worklist_panel
    from mprviewer.gui.app import ensure_app
    from mprviewer.gui.main_window import MainWindow

    if not prepare:
        worklist_panel.PREPARE_AFTER_MS = 10**9
    app = ensure_app()
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()

    def wait(signal: object, timeout_ms: int = 120_000) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec_()

    controller = worklist_panel.install_worklist(window, project, "bench", start=False)
    controller.next_study()
    wait(window.first_frame_shown)
    end = time.monotonic() + READ_FOR_S
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    start = time.perf_counter()
    controller.next_study()
    wait(window.first_frame_shown)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "prepared": controller.last_open_prepared}))
    window.close()


def measure(reps: int = 3) -> dict[str, float]:
    """Median seconds from N to the first frame, read ahead and not."""
    import statistics

    from bench_startup import Xvfb

    workdir = Path(tempfile.mkdtemp(prefix="mprviewer-bench-worklist-"))
    xvfb = Xvfb()
    try:
        make_project(workdir)
        env = dict(os.environ, DISPLAY=xvfb.display, MPRVIEWER_HOME=str(workdir / "home"))
        out: dict[str, float] = {}
        for prepare in (True, False):
            samples = []
            for rep in range(reps):
                proj = workdir / f"proj-{prepare}-{rep}"
                shutil.copytree(workdir / "proj", proj)
                result = subprocess.run(
                    [sys.executable, __file__, "--child", str(proj),
                     "--prepare" if prepare else "--no-prepare"],
                    env=env, capture_output=True, text=True, timeout=300, check=True)
                line = [ln for ln in result.stdout.splitlines() if ln.startswith("{")][-1]
                found = json.loads(line)
                assert found["prepared"] == prepare, found
                samples.append(found["seconds"])
            out["read ahead" if prepare else "read when asked"] = statistics.median(samples)
        return out
    finally:
        xvfb.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3] == "--prepare")
    else:
        for name, seconds in measure().items():
            print(f"next study, 256x256x128, {name}: {seconds:.3f} s to the first 2D frame")
