"""Edits annotations with autosave in a loop until killed (used by the SIGKILL test).

Usage: python tests/_annotation_writer.py SIDECAR LIMIT

Loads SIDECAR, prints ``READY n`` (n = slices already marked), then marks axial slice n,
n + 1, ... one edit at a time and prints each number once its autosave has returned.
"""

from __future__ import annotations

import sys

from mprviewer.model.annotations import AnnotationSet, SeriesRef
from mprviewer.model.sidecar import Autosaver, load_sidecar

SIZE = 100_000


def main() -> int:
    path, limit = sys.argv[1], int(sys.argv[2])
    loaded = load_sidecar(path)
    if loaded.moved_aside or loaded.restored_from is not None:
        print("DAMAGED " + str(loaded), flush=True)
        return 1
    aset = loaded.aset or AnnotationSet(study_uid="1.2.3")
    ref = SeriesRef(
        uid="1.2.3.1",
        name="CT",
        study_uid="1.2.3",
        plane_sizes={"axial": SIZE, "coronal": 512, "sagittal": 512},
        sop_instance_uids=tuple(f"1.2.3.1.{m}" for m in range(SIZE)),
    )
    saver = Autosaver(aset, path)
    n = len(aset.slices_for(ref.uid, ref.name, "axial"))
    print(f"READY {n}", flush=True)
    while n < limit:
        aset.mark(ref, "axial", [n])
        if saver.last_error:
            print("FAILED " + saver.last_error, flush=True)
            return 1
        print(n, flush=True)
        n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
