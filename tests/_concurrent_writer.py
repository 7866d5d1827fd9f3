"""One of several processes autosaving marks of the same study to one sidecar at once.

Usage: python tests/_concurrent_writer.py SIDECAR FIRST STEP COUNT [UNMARK]

Opens the sidecar as the viewer does, waits for a ``go`` line on stdin (so the writers start
together), then marks axial slices FIRST, FIRST + STEP, ... (COUNT of them) one edit at a
time, each autosaved; with UNMARK, it then unmarks slice UNMARK. Prints ``DONE`` and the
messages of merges, or ``FAILED`` with the reason.
"""

from __future__ import annotations

import sys

from mprviewer.model.annotations import SeriesRef
from mprviewer.model.sidecar import restore_or_create

SIZE = 2000


def main() -> int:
    path, first, step, count = sys.argv[1], *(int(v) for v in sys.argv[2:5])
    unmark = int(sys.argv[5]) if len(sys.argv) > 5 else None
    ref = SeriesRef(
        uid="1.2.3.1",
        name="CT",
        study_uid="1.2.3",
        plane_sizes={"axial": SIZE, "coronal": 64, "sagittal": 64},
        sop_instance_uids=tuple(f"1.2.3.1.{m}" for m in range(SIZE)),
    )
    aset, saver, _loaded = restore_or_create(path, "1.2.3", [ref])
    merges: list[str] = []
    saver.merged.connect(merges.append)
    print("READY", flush=True)
    sys.stdin.readline()
    for n in range(count):
        aset.mark(ref, "axial", [first + n * step], "Bleed")
        if saver.last_error:
            print("FAILED " + saver.last_error, flush=True)
            return 1
    if unmark is not None:
        aset.unmark(ref, "axial", [unmark])
        if saver.last_error:
            print("FAILED " + saver.last_error, flush=True)
            return 1
    print(f"DONE {len(merges)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
