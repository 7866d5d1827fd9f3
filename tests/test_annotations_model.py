"""The annotation model: marks, undo of every change, signals, reconcile after reload, merge."""

from __future__ import annotations

import numpy as np
import pytest

from mprviewer import AnnotationError
from mprviewer.annotations import AnnotationSet, SeriesRef, to_json_text
from mprviewer.io.volume import Volume
from mprviewer.model.orientation import DisplayGrid

SIZES = {"axial": 20, "coronal": 64, "sagittal": 48}


def make_ref(uid="1.2.3.1", name="CT Head", n=20, first=0, uid_root="1.2.3.1.", spacing=2.5,
             study="1.2.3"):
    """A series of n axial images; image m has UID <root>m and sits at z = m * spacing."""
    images = range(first, first + n)
    return SeriesRef(
        uid=uid,
        name=name,
        study_uid=study,
        acquisition_plane="axial",
        plane_sizes={**SIZES, "axial": n},
        sop_instance_uids=tuple(f"{uid_root}{m}" for m in images),
        slice_positions=tuple(m * spacing for m in images),
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
    )


def state(aset: AnnotationSet) -> str:
    """Everything the set holds except timestamps, for exact comparisons."""
    import json

    doc = json.loads(to_json_text(aset))

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("created", "modified")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(doc), sort_keys=True)


@pytest.fixture
def aset():
    return AnnotationSet(study_uid="1.2.3", reader="Reader A")


def test_mark_keeps_slices_sorted_unique_with_their_images(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [5, 3, 4], "Bleed")
    entry = aset.mark(ref, "axial", [4, 7], "Bleed")
    assert entry.slices == (3, 4, 5, 7)
    assert entry.ranges == "3-5; 7"
    assert entry.sop_instance_uids == ("1.2.3.1.3", "1.2.3.1.4", "1.2.3.1.5", "1.2.3.1.7")
    assert entry.positions == (7.5, 10.0, 12.5, 17.5)
    assert len(aset.entries()) == 1


def test_reformatted_planes_store_no_image_uids(aset):
    entry = aset.mark(make_ref(), "coronal", [30, 31], "Fracture")
    assert entry.plane == "coronal"
    assert entry.sop_instance_uids == ()
    assert entry.positions == ()


def test_slices_outside_the_plane_are_refused_and_change_nothing(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1])
    before = state(aset)
    with pytest.raises(AnnotationError, match="has 20 slices"):
        aset.mark(ref, "axial", [19, 20])
    with pytest.raises(AnnotationError, match="unknown plane"):
        aset.mark(ref, "oblique", [1])
    with pytest.raises(AnnotationError):
        aset.mark(ref, "axial", [-1])
    assert state(aset) == before


def test_unmark_one_label_or_all(aset):
    ref = make_ref()
    aset.mark(ref, "axial", range(0, 6), "Bleed")
    aset.mark(ref, "axial", range(4, 9), "Edema")
    assert aset.unmark(ref, "axial", [4], "Bleed") == 1
    assert aset.slices_for(ref.uid, ref.name, "axial", "Bleed") == [0, 1, 2, 3, 5]
    assert aset.slices_for(ref.uid, ref.name, "axial", "Edema") == [4, 5, 6, 7, 8]
    assert aset.unmark(ref, "axial", [5, 6]) == 3
    assert aset.marked_labels(ref.uid, ref.name, "axial") == {
        0: ["Bleed"], 1: ["Bleed"], 2: ["Bleed"], 3: ["Bleed"], 4: ["Edema"], 7: ["Edema"],
        8: ["Edema"],
    }
    # the remaining UIDs still belong to the remaining slices
    _sa, bleed = next((s, e) for s, e in aset.entries() if e.label == "Bleed")
    assert bleed.sop_instance_uids == tuple(f"1.2.3.1.{s}" for s in (0, 1, 2, 3))
    # unmarking everything of an entry removes it
    aset.unmark(ref, "axial", range(20), "Edema")
    assert [e.label for _s, e in aset.entries()] == ["Bleed"]


def test_toggle_marks_then_unmarks(aset):
    ref = make_ref()
    assert aset.toggle(ref, "sagittal", 10, "Bleed") is True
    assert aset.slices_for(ref.uid, "", "sagittal") == [10]
    assert aset.toggle(ref, "sagittal", 10, "Edema") is True  # other label: marks
    assert aset.marked_labels(ref.uid, "", "sagittal") == {10: ["Bleed", "Edema"]}
    assert aset.toggle(ref, "sagittal", 10, "Bleed") is False
    assert aset.marked_labels(ref.uid, "", "sagittal") == {10: ["Edema"]}


def test_set_slices_replaces_one_label_as_one_step(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1, 2, 3], "Bleed")
    aset.mark(ref, "axial", [2], "Edema")
    entry = aset.set_slices(ref, "axial", [3, 4, 10], "Bleed")
    assert entry.slices == (3, 4, 10)
    assert entry.sop_instance_uids == ("1.2.3.1.3", "1.2.3.1.4", "1.2.3.1.10")
    assert aset.slices_for(ref.uid, "", "axial", "Edema") == [2]
    assert aset.set_slices(ref, "axial", [], "Bleed") is None
    assert aset.slices_for(ref.uid, "", "axial", "Bleed") == []
    aset.undo()
    assert aset.slices_for(ref.uid, "", "axial", "Bleed") == [3, 4, 10]
    aset.undo()
    assert aset.slices_for(ref.uid, "", "axial", "Bleed") == [1, 2, 3]


def test_mark_range_in_either_order(aset):
    ref = make_ref()
    aset.mark_range(ref, "coronal", 12, 9, "Bleed")
    assert aset.slices_for(ref.uid, ref.name, "coronal") == [9, 10, 11, 12]


def test_every_change_emits_changed_and_is_undoable(aset):
    ref = make_ref()
    other = make_ref(uid="1.2.3.2", name="CT Lung", uid_root="1.2.3.2.")
    calls = []
    aset.changed.connect(lambda: calls.append(aset.last_change))
    states = [state(aset)]
    entry = aset.mark(ref, "axial", [1, 2, 3], "Bleed")
    states.append(state(aset))
    aset.mark_range(ref, "coronal", 5, 8)
    states.append(state(aset))
    aset.toggle(other, "axial", 4, "Edema")
    states.append(state(aset))
    aset.unmark(ref, "axial", [2])
    states.append(state(aset))
    point = aset.add_point(ref, (10, 20, 3), (-12.5, 30.0, 7.5), 55.0, "Bleed", "dense")
    states.append(state(aset))
    aset.relabel(entry, "Haemorrhage")
    states.append(state(aset))
    aset.set_note("check with prior", ref)
    states.append(state(aset))
    aset.set_note("whole study looked at", None)
    states.append(state(aset))
    aset.set_note("tiny", point)
    states.append(state(aset))
    aset.delete(point)
    states.append(state(aset))
    aset.delete(entry.id)
    states.append(state(aset))
    assert len(calls) == len(states) - 1
    assert len(set(states)) == len(states)  # every step changed something
    for expected in reversed(states[:-1]):
        assert aset.undo()
        assert state(aset) == expected
    assert not aset.undo()
    for expected in states[1:]:
        assert aset.redo()
        assert state(aset) == expected
    assert not aset.redo()
    assert calls[-1] == "redo"


def test_no_change_means_no_undo_step_and_no_signal(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1, 2])
    calls = []
    aset.changed.connect(lambda: calls.append(1))
    aset.mark(ref, "axial", [2])
    aset.unmark(ref, "axial", [9])
    aset.mark(ref, "axial", [])
    assert calls == []
    assert aset.undo()
    assert aset.is_empty


def test_a_new_edit_clears_redo(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1])
    aset.undo()
    aset.mark(ref, "axial", [2])
    assert not aset.can_redo
    assert aset.slices_for(ref.uid, "", "axial") == [2]


def test_relabel_into_an_existing_label_merges(aset):
    ref = make_ref()
    a = aset.mark(ref, "axial", [1, 2], "Bleed")
    aset.mark(ref, "axial", [5], "Haemorrhage")
    aset.relabel(a, "Haemorrhage")
    entries = [e for _s, e in aset.entries()]
    assert [(e.label, e.slices) for e in entries] == [("Haemorrhage", (1, 2, 5))]
    assert entries[0].sop_instance_uids == ("1.2.3.1.1", "1.2.3.1.2", "1.2.3.1.5")


def test_labels_used_default_and_order(aset):
    assert aset.labels_used() == ["Anomaly"]
    ref = make_ref()
    aset.mark(ref, "axial", [1], "Fracture")
    aset.mark(ref, "axial", [2, 3, 4], "Bleed")
    aset.mark(ref, "axial", [9], None)  # no label: the default one
    assert aset.labels_used() == ["Bleed", "Fracture", "Anomaly"]


def test_labels_are_tidied_and_bounded(aset):
    ref = make_ref()
    entry = aset.mark(ref, "axial", [1], "  small   bleed ")
    assert entry.label == "small bleed"
    with pytest.raises(AnnotationError, match="longer than"):
        aset.mark(ref, "axial", [1], "x" * 500)


def test_series_found_by_uid_first_then_name(aset):
    aset.mark("CT Head", "axial", [3])  # known by name only (original format)
    assert aset.slices_for("", "CT Head", "axial") == [3]
    assert aset.slices_for("9.9.9", "CT Head", "axial") == [3]  # name, stored without UID
    ref = make_ref()
    aset.mark(ref, "axial", [4])  # the UID meets the name-only series: adopted
    assert [sa.key for sa in aset.series] == [ref.uid]
    assert aset.slices_for(ref.uid, "other name", "axial") == [3, 4]
    assert aset.slices_for("9.9.9", "CT Head", "axial") == []  # a different UID is another series


def test_points_keep_voxel_position_and_value(aset):
    ref = make_ref()
    p = aset.add_point(ref, (1, 2, 3), (4.5, -5.5, 6.0), -1000.0, "Air", plane="axial")
    ((_sa, stored),) = aset.points()
    assert stored == p
    assert (p.voxel, p.lps, p.value, p.label, p.plane) == (
        (1, 2, 3), (4.5, -5.5, 6.0), -1000.0, "Air", "axial")
    with pytest.raises(AnnotationError):
        aset.add_point(ref, (1, 2), (0, 0, 0))
    with pytest.raises(AnnotationError):
        aset.add_point(ref, (1, 2, 3), ("x", 0, 0))


def test_timestamps_are_iso_utc(aset):
    entry = aset.mark(make_ref(), "axial", [1])
    for stamp in (aset.created, aset.modified, entry.created, entry.modified):
        assert stamp.endswith("Z") and stamp[10] == "T"


# -- SeriesRef from a loaded volume -------------------------------------------------------
def test_series_ref_from_volume_indexes_by_display_slice_number():
    # k runs from superior to inferior: display axial 0 (most inferior) is the last k
    nk = 5
    affine = np.eye(4)
    affine[2, 2] = -3.0
    affine[2, 3] = 100.0
    vol = Volume(
        array=np.zeros((nk, 4, 6), dtype=np.int16),
        affine=affine,
        series_uid="1.2.3.4",
        study_uid="1.2.3",
        name="CT",
        sop_instance_uids=[f"uid-k{k}" for k in range(nk)],
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        slice_positions=np.array([100.0 - 3 * k for k in range(nk)]),
    )
    grid = DisplayGrid.for_volume(vol)
    ref = SeriesRef.from_volume(vol, grid, study_attributes={"PatientID": "P1"})
    assert ref.acquisition_plane == "axial"
    assert ref.plane_sizes == {"axial": 5, "coronal": 4, "sagittal": 6}
    assert ref.sop_instance_uids == ("uid-k4", "uid-k3", "uid-k2", "uid-k1", "uid-k0")
    assert ref.slice_positions == (88.0, 91.0, 94.0, 97.0, 100.0)
    # axial slice 0 is the most inferior image
    assert grid.display_to_lps((0, 0, 0))[2] == pytest.approx(88.0)
    assert (ref.uid, ref.study_uid, ref.name, ref.study_attributes) == (
        "1.2.3.4", "1.2.3", "CT", {"PatientID": "P1"})


# -- reconcile -------------------------------------------------------------------------------
def test_reconcile_follows_the_images_when_slices_go_missing(aset):
    first = make_ref()
    aset.mark(first, "axial", [5, 6], "Bleed")
    aset.mark(first, "coronal", [30], "Bleed")
    # reloaded without the two lowest images: image 5 is now slice 3
    second = make_ref(n=18, first=2)
    report = aset.reconcile(second)
    assert aset.slices_for(second.uid, second.name, "axial") == [3, 4]
    (e,) = [x[1] for x in aset.entries() if x[1].plane == "axial"]
    assert e.sop_instance_uids == ("1.2.3.1.5", "1.2.3.1.6")
    assert aset.slices_for(second.uid, second.name, "coronal") == [30]  # reformat: unchanged
    assert any("5->3" in line for line in report)


def test_reconcile_falls_back_to_positions(aset):
    first = make_ref()
    aset.mark(first, "axial", [10], "Bleed")
    # re-exported: new UIDs, and one image fewer at the bottom
    second = make_ref(n=19, first=1, uid_root="9.9.9.")
    aset.reconcile(second)
    assert aset.slices_for(first.uid, "", "axial") == [9]
    ((_sa, entry),) = aset.entries()
    assert entry.positions == (25.0,)


def test_reconcile_adopts_a_name_only_series_and_fills_uids(aset):
    aset.mark("CT Head", "axial", [2, 3])
    ref = make_ref()
    aset.reconcile(ref)
    ((sa, entry),) = aset.entries()
    assert sa.uid == ref.uid
    assert sa.acquisition_plane == "axial"
    assert entry.sop_instance_uids == ("1.2.3.1.2", "1.2.3.1.3")


def test_original_marks_follow_the_acquisition_plane():
    aset = AnnotationSet()
    aset.mark("Sag T1", "axial", [2])  # original files carry no plane: read as axial
    ref = SeriesRef(uid="7.7", name="Sag T1", acquisition_plane="sagittal",
                    plane_sizes={"axial": 100, "coronal": 100, "sagittal": 12},
                    sop_instance_uids=tuple(f"7.7.{m}" for m in range(12)))
    aset.reconcile(ref)
    ((_sa, entry),) = aset.entries()
    assert (entry.plane, entry.slices, entry.sop_instance_uids) == ("sagittal", (2,), ("7.7.2",))


def test_reconcile_rewrites_the_undo_history_too(aset):
    first = make_ref()
    aset.mark(first, "axial", [5])
    aset.mark(first, "axial", [6])
    aset.reconcile(make_ref(n=18, first=2))
    assert aset.slices_for(first.uid, "", "axial") == [3, 4]
    aset.undo()
    assert aset.slices_for(first.uid, "", "axial") == [3]


def test_reconcile_with_the_same_images_changes_nothing(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [5])
    calls = []
    aset.changed.connect(lambda: calls.append(1))
    assert aset.reconcile(ref) == []
    assert calls == []


# -- merge --------------------------------------------------------------------------------------
def test_merge_unions_marks_in_one_undo_step(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1, 2], "Bleed")
    other = AnnotationSet(study_uid="1.2.3")
    other.mark(ref, "axial", [2, 3], "Bleed")
    other.mark(ref, "sagittal", [7], "Edema")
    other.add_point(ref, (1, 1, 1), (0.0, 0.0, 0.0), 1.0)
    before = state(aset)
    aset.merge(other)
    assert aset.slices_for(ref.uid, "", "axial", "Bleed") == [1, 2, 3]
    assert aset.slices_for(ref.uid, "", "sagittal", "Edema") == [7]
    assert len(aset.points()) == 1
    ids = [it.id for _s, it in aset.entries()] + [p.id for _s, p in aset.points()]
    assert len(ids) == len(set(ids))
    aset.undo()
    assert state(aset) == before


def test_merge_refuses_another_study_unless_forced(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1])
    other = AnnotationSet(study_uid="4.5.6")
    other.mark(ref, "axial", [9])
    before = state(aset)
    with pytest.raises(AnnotationError, match=r"4\.5\.6") as info:
        aset.merge(other)
    assert "1.2.3" in str(info.value)
    assert state(aset) == before
    aset.merge(other, force=True)
    assert aset.slices_for(ref.uid, "", "axial") == [1, 9]


def test_merge_name_only_marks_into_a_uid_series(aset):
    ref = make_ref()
    aset.mark(ref, "axial", [1])
    other = AnnotationSet()
    other.mark("CT Head", "axial", [4])
    aset.merge(other)
    assert [sa.key for sa in aset.series] == [ref.uid]
    assert aset.slices_for(ref.uid, "", "axial") == [1, 4]


def test_annotations_import_no_qt_vtk_or_highdicom():
    import subprocess
    import sys

    code = (
        "import sys, mprviewer.annotations, mprviewer.model.sidecar;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PyQt5', 'qtpy', 'vtk', 'vtkmodules', 'pyvista', 'highdicom')];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_multiframe_slices_sharing_one_uid_keep_their_numbers_on_reconcile():
    """An enhanced MR stores all slices in one SOP instance: its UID names no single slice,
    so marks are matched by position (or keep their numbers), not all sent to one slice."""
    frames = SeriesRef(uid="1.2.9", name="emri", study_uid="1.2.3", acquisition_plane="axial",
                       plane_sizes={**SIZES, "axial": 10},
                       sop_instance_uids=("1.2.9.1",) * 10,
                       slice_positions=tuple(float(k) * 1.2 for k in range(10)))
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(frames, "axial", [2, 6], "Lesion")
    report = aset.reconcile(frames)
    assert aset.slices_for("1.2.9", "emri", "axial", "Lesion") == [2, 6]
    assert not any("moved" in line for line in report)
    no_positions = SeriesRef(uid="1.2.9", name="emri", study_uid="1.2.3",
                             acquisition_plane="axial", plane_sizes={**SIZES, "axial": 10},
                             sop_instance_uids=("1.2.9.1",) * 10)
    aset.reconcile(no_positions)
    assert aset.slices_for("1.2.9", "emri", "axial", "Lesion") == [2, 6]
