"""Autosave sidecar: where it lives, atomic saves, recovery, and a SIGKILL test."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mprviewer.annotations import (
    AnnotationSet,
    Autosaver,
    load_sidecar,
    restore_or_create,
    sidecar_path,
)
from mprviewer.model.sidecar import backup_path, folder_is_writable
from mprviewer.paths import sub_dir
from tests.test_annotations_model import make_ref

ROOT = Path(__file__).resolve().parent.parent
WRITER = Path(__file__).with_name("_annotation_writer.py")


# -- where ---------------------------------------------------------------------------------
def test_a_writable_study_folder_keeps_its_sidecar_beside_the_images(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    assert folder_is_writable(study)
    path = sidecar_path(study, "1.2.840.99", writable_folder=True)
    assert path == study / ".mprviewer" / "annotations-1.2.840.99.json"


def test_zips_urls_and_read_only_sources_use_the_data_folder(tmp_path):
    folder = sub_dir("annotations")
    zip_path = tmp_path / "study.zip"
    zip_path.write_bytes(b"PK")
    assert sidecar_path(zip_path, "1.2.3", writable_folder=True) == folder / "1.2.3.json"
    assert sidecar_path(tmp_path, "1.2.3", writable_folder=False) == folder / "1.2.3.json"
    assert sidecar_path("https://example.org/study", "1.2.3", True) == folder / "1.2.3.json"
    assert sidecar_path(None, "1.2.3", False) == folder / "1.2.3.json"
    assert str(folder).startswith(os.environ["MPRVIEWER_HOME"])
    assert not folder_is_writable(zip_path)


def test_a_study_in_the_pacs_cache_keeps_its_marks_outside_the_cache():
    """The cache evicts whole study folders: a sidecar inside one would be deleted with it."""
    from mprviewer.pacs import cache

    study = cache.cache_root() / "0123abcd"
    study.mkdir(parents=True)
    assert os.access(study, os.W_OK)
    assert not folder_is_writable(study)
    assert sidecar_path(study, "1.2.3", folder_is_writable(study)) == (
        sub_dir("annotations") / "1.2.3.json")


def test_sidecar_names_are_safe_and_stable(tmp_path):
    folder = sub_dir("annotations")
    hostile = sidecar_path(None, "../../etc/passwd", False)
    assert hostile.parent == folder
    assert "/" not in hostile.name and not hostile.name.startswith(".")
    a1 = sidecar_path(tmp_path / "a.zip", "", False)
    a2 = sidecar_path(tmp_path / "a.zip", "", False)
    b = sidecar_path(tmp_path / "b.zip", "", False)
    assert a1 == a2 != b
    assert a1.parent == folder


# -- saving ---------------------------------------------------------------------------------
def test_every_change_is_saved_with_the_previous_version_as_backup(tmp_path):
    path = tmp_path / "study" / ".mprviewer" / "annotations-1.2.3.json"
    aset = AnnotationSet(study_uid="1.2.3")
    saver = Autosaver(aset, path)
    ref = make_ref()
    aset.mark(ref, "axial", [1])
    aset.mark(ref, "axial", [2])
    aset.add_point(ref, (1, 2, 3), (1.0, 2.0, 3.0), 5.0)
    assert saver.save_count == 3
    saved = load_sidecar(path).aset
    assert saved.slices_for(ref.uid, "", "axial") == [1, 2]
    assert len(saved.points()) == 1
    backup = load_sidecar(backup_path(path)).aset
    assert backup.slices_for(ref.uid, "", "axial") == [1, 2]
    assert backup.points() == []
    aset.undo()
    aset.undo()
    assert load_sidecar(path).aset.slices_for(ref.uid, "", "axial") == [1]
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_opening_without_marking_creates_no_file(tmp_path):
    path = tmp_path / ".mprviewer" / "annotations.json"
    aset = AnnotationSet()
    Autosaver(aset, path).save()
    assert not path.exists()
    aset.mark(make_ref(), "axial", [1])
    aset.undo()  # back to empty: the file must say so, not keep the mark
    assert path.exists()
    assert load_sidecar(path).aset.is_empty


def test_a_save_that_fails_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    aset = AnnotationSet()
    saver = Autosaver(aset, blocker / "annotations.json")
    messages = []
    saver.failed.connect(messages.append)
    aset.mark(make_ref(), "axial", [1])  # must not raise into the editing code
    assert aset.slices_for("1.2.3.1", "", "axial") == [1]
    assert len(messages) == 1 and "could not be saved" in messages[0]
    assert saver.last_error == messages[0]


# -- recovery -----------------------------------------------------------------------------------
def _saved_with_edits(path: Path, n: int) -> AnnotationSet:
    aset = AnnotationSet(study_uid="1.2.3")
    Autosaver(aset, path)
    for s in range(n):
        aset.mark(make_ref(), "axial", [s])
    return aset


def test_a_half_written_sidecar_is_kept_aside_and_the_backup_restored(tmp_path):
    path = tmp_path / "annotations.json"
    _saved_with_edits(path, 4)
    damaged = path.read_bytes()[: len(path.read_bytes()) // 2]
    path.write_bytes(damaged)
    result = load_sidecar(path)
    assert result.restored_from == backup_path(path)
    assert result.aset.slices_for("1.2.3.1", "", "axial") == [0, 1, 2]  # only the last edit lost
    (aside,) = result.moved_aside
    assert aside.read_bytes() == damaged  # kept, never deleted
    assert "damaged" in str(result) and "restored" in str(result)
    # the restored sidecar is good again
    assert load_sidecar(path).aset.slices_for("1.2.3.1", "", "axial") == [0, 1, 2]
    assert load_sidecar(path).moved_aside == []


@pytest.mark.parametrize("junk", [b"", b"\x00" * 100, b'{"format": "mprviewer-annotations"', b"[]"])
def test_damaged_sidecar_and_backup_are_both_kept_and_annotations_start_empty(tmp_path, junk):
    path = tmp_path / "annotations.json"
    path.write_bytes(junk)
    backup_path(path).write_bytes(b"{broken")
    result = load_sidecar(path)
    assert result.aset is None
    assert sorted(p.read_bytes() for p in result.moved_aside) == sorted([junk, b"{broken"])
    assert not path.exists() and not backup_path(path).exists()
    assert "start empty" in str(result)


def test_a_sidecar_damaged_while_open_is_kept_aside_on_the_next_save(tmp_path):
    path = tmp_path / "annotations.json"
    aset = _saved_with_edits(path, 2)
    path.write_bytes(b"edited by hand, badly")
    aset.mark(make_ref(), "axial", [9])
    (aside,) = tmp_path.glob("annotations.json.corrupt-*")
    assert aside.read_bytes() == b"edited by hand, badly"
    assert load_sidecar(path).aset.slices_for("1.2.3.1", "", "axial") == [0, 1, 9]


def test_two_recoveries_in_the_same_second_keep_both_damaged_files(tmp_path):
    path = tmp_path / "annotations.json"
    path.write_bytes(b"one")
    first = load_sidecar(path).moved_aside
    path.write_bytes(b"two")
    second = load_sidecar(path).moved_aside
    assert first[0] != second[0]
    assert {first[0].read_bytes(), second[0].read_bytes()} == {b"one", b"two"}


def test_stale_temporary_files_are_cleared_but_fresh_ones_kept(tmp_path):
    path = tmp_path / "annotations.json"
    _saved_with_edits(path, 1)
    stale = tmp_path / f".{path.name}.abc.tmp"
    fresh = tmp_path / f".{path.name}.def.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    load_sidecar(path)
    assert not stale.exists() and fresh.exists()


def test_reopening_the_study_restores_marks_on_the_same_images(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    path = sidecar_path(study, "1.2.3", writable_folder=True)
    first = make_ref()
    aset, saver, loaded = restore_or_create(path, "1.2.3", [first])
    assert loaded.aset is None
    aset.mark(first, "axial", [5, 6], "Bleed")
    saver.close()
    # reopened with the two lowest images missing: image 5 is now slice 3
    second = make_ref(n=18, first=2)
    again, _saver2, loaded2 = restore_or_create(path, "1.2.3", [second])
    assert again.slices_for(second.uid, "", "axial", "Bleed") == [3, 4]
    assert not again.can_undo
    assert any("5->3" in m for m in loaded2.messages)
    again.mark(second, "axial", [10])
    assert load_sidecar(path).aset.slices_for(second.uid, "", "axial") == [3, 4, 10]


# -- a kill at any moment loses at most the last edit ------------------------------------------
def test_sigkill_at_random_moments_loses_at_most_the_last_edit(tmp_path):
    path = tmp_path / "study" / ".mprviewer" / "annotations-1.2.3.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    stored = 0
    edits_seen = 0
    for _round in range(10):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), "100000"],
            stdout=subprocess.PIPE, env=env, cwd=str(tmp_path),
        )
        ready = proc.stdout.readline().decode()
        assert ready == f"READY {stored}\n", f"seed {seed}: {ready!r}"
        time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        acked = [int(v) for v in out.split()]
        last_acked = acked[-1] if acked else stored - 1
        edits_seen += len(acked)
        loaded = load_sidecar(path)
        assert loaded.moved_aside == [] and loaded.restored_from is None, f"seed {seed}"
        slices = loaded.aset.slices_for("1.2.3.1", "CT", "axial") if loaded.aset else []
        count = len(slices)
        assert slices == list(range(count)), f"seed {seed}: marks out of order"
        # every edit confirmed as saved is there; only the one in flight may be missing
        assert last_acked + 1 <= count <= last_acked + 2, f"seed {seed}"
        stored = count
    assert edits_seen >= 10, "the writer was killed before it made edits"
    doc = json.loads(path.read_text())
    assert doc["series"][0]["entries"][0]["slices"] == list(range(stored))
