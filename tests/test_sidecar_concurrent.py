"""Two writers of one sidecar: every mark of both survives, removals too, none silently lost."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mprviewer import AnnotationError
from mprviewer.model.annotations import AnnotationSet
from mprviewer.model.sidecar import Autosaver, load_sidecar, lock_path, locked, restore_or_create
from tests.test_annotations_model import make_ref

ROOT = Path(__file__).resolve().parent.parent
WRITER = Path(__file__).with_name("_concurrent_writer.py")


def axial(path: Path, label: str | None = None) -> list[int]:
    aset = load_sidecar(path).aset
    assert aset is not None
    return aset.slices_for("1.2.3.1", "CT", "axial", label)


def test_two_processes_marking_at_once_keep_every_mark(tmp_path):
    path = tmp_path / "annotations-1.2.3.json"
    count = 40
    procs = [
        subprocess.Popen([sys.executable, str(WRITER), str(path), str(first), "2", str(count)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT)
        for first in (0, 1)  # one marks the even slices, the other the odd ones
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
    for proc in procs:  # both start from the same empty sidecar, together
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (out, err)
        assert out.startswith("DONE"), out
    assert axial(path) == list(range(2 * count))
    # the same label and plane from two writers is one entry, not two
    entries = load_sidecar(path).aset.entries()
    assert [(e.label, e.plane) for _sa, e in entries] == [("Bleed", "axial")]
    # the writers really overlapped: at least one of them had to merge the other's marks
    assert sum(int(out.split()[1]) for out, _err in outputs) > 0


def test_a_removal_by_one_process_is_not_undone_by_the_other(tmp_path):
    path = tmp_path / "annotations-1.2.3.json"
    first = subprocess.run([sys.executable, str(WRITER), str(path), "0", "1", "10"],
                           input="go\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert first.returncode == 0, first.stderr
    procs = [
        subprocess.Popen([sys.executable, str(WRITER), str(path), *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT)
        for args in (["100", "1", "20", "3"], ["200", "1", "20", "7"])
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "READY"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (out, err)
    expected = [s for s in range(10) if s not in (3, 7)] + list(range(100, 120)) + list(
        range(200, 220))
    assert axial(path) == expected


def two_windows(path: Path):
    ref = make_ref(n=50)
    a, saver_a, _ = restore_or_create(path, "1.2.3", [ref])
    b, saver_b, _ = restore_or_create(path, "1.2.3", [ref])
    return ref, (a, saver_a), (b, saver_b)


def marks(path: Path, ref) -> dict[str, list[int]]:
    aset = load_sidecar(path).aset
    return {label: aset.slices_for(ref.uid, ref.name, "axial", label)
            for label in ("Bleed", "Mass")}


def test_interleaved_edits_of_two_windows_merge_three_ways(tmp_path):
    path = tmp_path / "annotations-1.2.3.json"
    ref, (a, _saver_a), (b, _saver_b) = two_windows(path)
    a.mark(ref, "axial", [1, 2, 3], "Bleed")
    b.mark(ref, "axial", [10], "Bleed")  # b had never seen a's marks
    assert marks(path, ref)["Bleed"] == [1, 2, 3, 10]
    assert b.slices_for(ref.uid, ref.name, "axial") == [1, 2, 3, 10]  # b shows them now
    b.unmark(ref, "axial", [2])
    a.mark(ref, "axial", [20], "Mass")  # a must not bring slice 2 back
    assert marks(path, ref) == {"Bleed": [1, 3, 10], "Mass": [20]}
    point = b.add_point(ref, (1, 2, 3), (0.0, 0.0, 7.5), 40.0, "Bleed")
    a.delete(a.find(a.entries()[-1][1].id)[1])  # a deletes its Mass entry
    assert marks(path, ref) == {"Bleed": [1, 3, 10], "Mass": []}
    assert [p.id for _sa, p in load_sidecar(path).aset.points()] == [point.id]
    # undoing one's own edit does not drop the other's marks
    assert a.undo()  # brings Mass back
    assert marks(path, ref) == {"Bleed": [1, 3, 10], "Mass": [20]}
    assert [p.id for _sa, p in a.points()] == [point.id]


def test_a_writer_that_cannot_get_the_lock_says_so_and_keeps_its_marks(tmp_path, monkeypatch):
    import mprviewer.model.sidecar as sidecar

    monkeypatch.setattr(sidecar, "LOCK_TIMEOUT", 0.2)
    path = tmp_path / "annotations-1.2.3.json"
    ref = make_ref(n=50)
    aset = AnnotationSet(study_uid="1.2.3")
    saver = Autosaver(aset, path)
    failures: list[str] = []
    saver.failed.connect(failures.append)
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with locked(path, timeout=5):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_writer)
    thread.start()
    held.wait(5)
    try:
        aset.mark(ref, "axial", [4])
    finally:
        release.set()
        thread.join()
    assert not path.exists()
    assert len(failures) == 1 and "another mprviewer" in failures[0] and str(path) in failures[0]
    assert aset.slices_for(ref.uid, ref.name, "axial") == [4]  # still there, to save or export
    assert saver.save()  # once the other writer is done, saving works again
    assert load_sidecar(path).aset.slices_for(ref.uid, ref.name, "axial") == [4]
    assert lock_path(path).exists()


def test_the_lock_timeout_error_is_an_annotation_error(tmp_path):
    path = tmp_path / "s.json"
    with locked(path), pytest.raises(AnnotationError, match="is locked"), locked(path, 0.05):
        pass


def test_measurements_of_two_windows_both_survive_and_deletions_hold(tmp_path):
    path = tmp_path / "annotations-1.2.3.json"
    ref, (a, _saver_a), (b, _saver_b) = two_windows(path)
    ruler = a.add_ruler(ref, (0, 0, 5), (30, 40, 5), "axial", 2)
    b.add_ruler(ref, (0, 0, 10), (3, 4, 10), "axial", 4)
    b.mark(ref, "axial", [4], "Bleed")
    on_disk = load_sidecar(path).aset
    lengths = sorted(round(m.length_mm, 3) for _sa, m in on_disk.measurements())
    assert lengths == [5.0, 50.0]
    b.delete(b.find(ruler.id)[1])  # b removes a's ruler; a, saving next, must not revive it
    a.mark(ref, "axial", [5], "Bleed")
    on_disk = load_sidecar(path).aset
    assert [round(m.length_mm, 3) for _sa, m in on_disk.measurements()] == [5.0]
    assert on_disk.slices_for(ref.uid, ref.name, "axial") == [4, 5]
