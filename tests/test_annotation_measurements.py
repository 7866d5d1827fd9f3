"""Rulers, ROIs and hematoma volumes stored with the marks: version 2 of the full format, undo,
delete, merge, and the original format listing them as not written."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from mprviewer import AnnotationError, measure
from mprviewer.annotations import (
    AnnotationSet,
    import_into,
    read_annotation_file,
    write_annotation_file,
)
from mprviewer.io.volume import Volume
from mprviewer.model.annotation_files import SCHEMA_PATH, SCHEMA_V2_PATH, build_document
from tests.test_annotations_model import make_ref


@pytest.fixture
def measured() -> AnnotationSet:
    volume = Volume(array=np.arange(20 * 30 * 30, dtype=np.int16).reshape(20, 30, 30),
                    affine=np.diag([0.7, 0.7, 2.5, 1.0]))
    stats = measure.roi_stats(volume, (10.0, 9.5, 20.0), 4.0, "axial")
    aset = AnnotationSet(study_uid="1.2.3", reader="Reader A")
    head = make_ref(n=120)
    aset.mark(head, "axial", [57, 58, 59], "Bleed")
    a = aset.add_ruler(head, (-10.0, 4.5, 142.5), (22.0, -3.5, 142.5), "axial", 57, "A")
    b = aset.add_ruler(head, (5.0, -12.0, 142.5), (5.0, 14.0, 142.5), "axial", 57, "B")
    aset.add_roi(head, (1.0, 2.0, 142.5), 5.0, "axial", 57, stats, "HU", "Bleed core")
    aset.add_hematoma(head, a.length_mm, b.length_mm, 7.5, (57, 59), (a.id, b.id))
    return aset


def test_measurements_survive_save_and_reload(tmp_path: Path, measured: AnnotationSet) -> None:
    path = tmp_path / "marks.json"
    report = write_annotation_file(measured, path)
    assert report.complete
    doc = json.loads(path.read_text())
    assert doc["version"] == 2
    jsonschema.Draft202012Validator(json.loads(SCHEMA_V2_PATH.read_text())).validate(doc)
    back = read_annotation_file(path)
    assert [m for _s, m in back.measurements()] == [m for _s, m in measured.measurements()]
    sa = back.series[0]
    ruler_a, ruler_b = sa.rulers
    assert ruler_a.a == (-10.0, 4.5, 142.5) and ruler_a.b == (22.0, -3.5, 142.5)
    assert ruler_a.length_mm == pytest.approx(np.hypot(32.0, 8.0))
    assert (ruler_a.plane, ruler_a.slice, ruler_a.label) == ("axial", 57, "A")
    (roi,) = sa.rois
    assert roi.center == (1.0, 2.0, 142.5) and roi.radius_mm == 5.0 and roi.units == "HU"
    stored = measured.series[0].rois[0].stats
    assert roi.stats == stored and set(stored) == {"mean", "sd", "min", "max", "area_mm2"}
    (bleed,) = sa.hematomas
    assert bleed.volume_ml == pytest.approx(ruler_a.length_mm * ruler_b.length_mm * 7.5 / 2000)
    assert bleed.ruler_ids == (ruler_a.id, ruler_b.id) and bleed.slices == (57, 59)
    assert doc["series"][0]["hematomas"][0]["volume_ml"] == pytest.approx(bleed.volume_ml)
    assert back.slices_for("1.2.3.1", "", "axial", "Bleed") == [57, 58, 59]


def test_a_set_without_measurements_is_still_written_as_version_1(tmp_path: Path) -> None:
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(make_ref(n=120), "axial", [3], "Bleed")
    doc = build_document(aset, "full")[0]
    assert doc["version"] == 1
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)


def test_version_1_files_keep_reading(tmp_path: Path) -> None:
    doc = {"format": "mprviewer-annotations", "version": 1, "series": [
        {"uid": "1.2.3.1", "name": "CT Head", "entries": [
            {"label": "Bleed", "plane": "axial", "slices": [4, 5]}]}]}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(doc))
    back = read_annotation_file(path)
    assert back.slices_for("1.2.3.1", "", "axial") == [4, 5]
    assert back.measurements() == []
    # measurements need version 2: a version 1 file holding them does not follow its schema
    doc["series"][0]["rulers"] = [{"a": [0, 0, 0], "b": [1, 0, 0], "plane": "axial", "slice": 0}]
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="rulers"):
        read_annotation_file(path)


def test_original_format_lists_every_measurement_it_cannot_hold(measured) -> None:
    doc, report = build_document(measured, "original")
    assert doc == {"CT Head": {"Anomaly": "Bleed", "Slices": "57-59"}}
    left_out = "\n".join(report.not_written)
    assert "ruler A 33.0 mm (axial 57)" in left_out and "ruler B 26.0 mm (axial 57)" in left_out
    assert "ROI Bleed core r 5.0 mm" in left_out
    assert f"hematoma {33.0 * 26.0 * 7.5 / 2000:.1f} mL" in left_out
    assert "rulers, ROIs or hematoma volumes" in str(report)


def test_delete_undo_and_relabel_of_measurements(measured) -> None:
    ruler = measured.series[0].rulers[0]
    measured.delete(ruler.id)
    assert [r.label for r in measured.series[0].rulers] == ["B"]
    assert measured.undo()
    assert [r.label for r in measured.series[0].rulers] == ["A", "B"]
    measured.relabel(ruler.id, "Midline shift")
    assert measured.series[0].rulers[0].label == "Midline shift"
    assert measured.series[0].rulers[0].a == ruler.a
    measured.set_note("from the septum", ruler.id)
    assert measured.find(ruler.id)[1].note == "from the septum"


def test_importing_the_same_file_twice_adds_no_duplicates(tmp_path, measured) -> None:
    path = tmp_path / "m.json"
    write_annotation_file(measured, path)
    other = AnnotationSet(study_uid="1.2.3")
    import_into(other, path)
    summary = import_into(other, path)
    assert "0 points" in summary and "measurement" not in summary
    assert len(other.measurements()) == 4


@pytest.mark.parametrize(
    ("kind", "obj", "problem"),
    [("rulers", {"a": [0, 0], "b": [1, 0, 0], "plane": "axial", "slice": 0}, "rulers"),
     ("rois", {"center": [0, 0, 0], "radius_mm": 0, "plane": "axial", "slice": 0}, "radius"),
     ("rois", {"center": [0, 0, 0], "radius_mm": 2, "plane": "oblique", "slice": 0}, "plane"),
     ("hematomas", {"a_mm": -1, "b_mm": 1, "c_mm": 1}, "a_mm")],
)
def test_bad_measurements_in_a_file_name_the_place(tmp_path, kind, obj, problem) -> None:
    doc = {"format": "mprviewer-annotations", "version": 2, "series": [
        {"uid": "1.2.3.1", "name": "CT", "entries": [], kind: [obj]}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError) as info:
        read_annotation_file(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_adding_bad_measurements_is_refused_with_a_message(measured) -> None:
    ref = make_ref(n=120)
    before = measured.measurements()
    with pytest.raises(AnnotationError, match="three finite"):
        measured.add_ruler(ref, (0, 0, float("inf")), (1, 2, 3), "axial", 3)
    with pytest.raises(AnnotationError, match="positive"):
        measured.add_roi(ref, (0, 0, 0), -2.0, "axial", 3)
    with pytest.raises(AnnotationError, match="unknown plane"):
        measured.add_ruler(ref, (0, 0, 0), (1, 2, 3), "transverse", 3)
    assert measured.measurements() == before


def test_cli_show_lists_and_convert_reports_measurements(tmp_path, measured) -> None:
    from tests.test_cli_annotations import run

    path = tmp_path / "m.json"
    write_annotation_file(measured, path)
    shown = run("show", str(path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "MEASUREMENT" in shown.stdout
    assert "ruler A 33.0 mm (axial 57)" in shown.stdout
    assert "ROI Bleed core r 5.0 mm (axial 57), mean" in shown.stdout
    out = tmp_path / "orig.json"
    done = run("convert", str(path), str(out), "--to", "original", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == {"CT Head": {"Anomaly": "Bleed", "Slices": "57-59"}}
    assert "ruler B 26.0 mm" in done.stdout and "hematoma 3.2 mL" in done.stdout
    assert "warning: 4 items could not be written" in done.stderr
