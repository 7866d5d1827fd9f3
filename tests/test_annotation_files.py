"""Annotation files: both formats both ways, schema errors, hostile input, import by merge."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mprviewer import AnnotationError
from mprviewer.annotations import (
    AnnotationSet,
    SeriesRef,
    detect_format,
    export_report,
    import_into,
    read_annotation_file,
    to_json_text,
    write_annotation_file,
)
from mprviewer.model.annotation_files import SCHEMA_PATH, build_document
from tests.test_annotations_model import make_ref, state

ORIGINAL = {
    "CT Head": {"Anomaly": "Bleed", "Slices": "0-11; 57-59; 112"},
    "CT Lung": {"Anomaly": "Nodule", "Slices": "3"},
}


def write(path: Path, doc) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def rich() -> AnnotationSet:
    aset = AnnotationSet(study_uid="1.2.3", reader="Reader A")
    head = make_ref(n=120)
    lung = make_ref(uid="1.2.3.2", name="CT Lung", uid_root="1.2.3.2.", n=80)
    aset.mark(head, "axial", [*range(0, 12), 57, 58, 59, 112], "Bleed")
    aset.mark(head, "axial", [20, 21], "Fracture")
    aset.mark(head, "coronal", [30, 31, 32], "Bleed")
    aset.mark(lung, "axial", [3], "Nodule")
    aset.add_point(head, (10, 20, 5), (-1.5, 2.25, 12.5), 61.0, "Bleed", "rim", "axial")
    aset.set_note("second read", head)
    aset.set_note("all series reviewed")
    return aset


def test_full_format_round_trip_is_exact(tmp_path, rich):
    path = tmp_path / "marks.json"
    report = write_annotation_file(rich, path)
    assert report.complete
    back = read_annotation_file(path)
    assert state(back) == state(rich)
    assert (back.created, back.modified) == (rich.created, rich.modified)
    assert [e.id for _s, e in back.entries()] == [e.id for _s, e in rich.entries()]
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"], doc["study_uid"], doc["reader"]) == (
        "mprviewer-annotations", 1, "1.2.3", "Reader A")
    head = doc["series"][0]
    assert (head["uid"], head["name"]) == ("1.2.3.1", "CT Head")
    bleed = head["entries"][0]
    assert bleed["ranges"] == "0-11; 57-59; 112"
    assert bleed["sop_instance_uids"][-1] == "1.2.3.1.112"
    assert bleed["positions"][-1] == pytest.approx(112 * 2.5)


def test_written_full_files_follow_the_shipped_schema(tmp_path, rich):
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(build_document(rich, "full")[0])
    assert SCHEMA_PATH.parent.name == "schema"
    assert SCHEMA_PATH.is_file()


def test_original_format_round_trip_is_exact(tmp_path):
    src = write(tmp_path / "in.json", ORIGINAL)
    aset = read_annotation_file(src)
    assert aset.slices_for("", "CT Head", "axial") == [*range(12), 57, 58, 59, 112]
    out = tmp_path / "out.json"
    report = write_annotation_file(aset, out, fmt="original")
    assert report.complete
    assert json.loads(out.read_text()) == ORIGINAL


def test_original_export_writes_the_main_label_and_reports_the_rest(rich):
    doc, report = build_document(rich, "original")
    assert doc == {
        "CT Head": {"Anomaly": "Bleed", "Slices": "0-11; 57-59; 112"},
        "CT Lung": {"Anomaly": "Nodule", "Slices": "3"},
    }
    assert not report.complete
    text = "\n".join(report.not_written)
    assert "Fracture, axial 20-21" in text
    assert "Bleed, coronal 30-32" in text
    assert "point Bleed at voxel (10, 20, 5)" in text
    assert "second read" in text and "all series reviewed" in text
    assert str(export_report(rich, "original")) == str(report)
    assert "Not written" in str(report)


def test_original_export_of_a_sagittal_series_writes_sagittal_slices():
    aset = AnnotationSet()
    ref = SeriesRef(uid="7.7", name="Sag T1", acquisition_plane="sagittal",
                    plane_sizes={"axial": 90, "coronal": 90, "sagittal": 12})
    aset.mark(ref, "sagittal", [4, 5])
    aset.mark(ref, "axial", [40])
    doc, report = build_document(aset, "original")
    assert doc == {"Sag T1": {"Anomaly": "Anomaly", "Slices": "4-5"}}
    assert any("axial 40" in line for line in report.not_written)


def test_reading_with_refs_places_original_marks_on_images(tmp_path):
    src = write(tmp_path / "in.json", {"CT Head": {"Anomaly": "Bleed", "Slices": "5-6"}})
    ref = make_ref()
    aset = read_annotation_file(src, refs=[ref])
    ((sa, entry),) = aset.entries()
    assert sa.uid == ref.uid
    assert entry.sop_instance_uids == ("1.2.3.1.5", "1.2.3.1.6")
    assert not aset.can_undo


def test_reading_with_refs_refuses_unknown_series_and_foreign_slices(tmp_path):
    ref = make_ref()
    src = write(tmp_path / "a.json", {"MR Knee": {"Anomaly": "Tear", "Slices": "1"}})
    with pytest.raises(AnnotationError, match="'MR Knee' is not in the open study"):
        read_annotation_file(src, refs=[ref])
    assert read_annotation_file(src, refs=[ref], allow_unknown_series=True).slices_for(
        "", "MR Knee", "axial") == [1]
    src = write(tmp_path / "b.json", {"CT Head": {"Anomaly": "Bleed", "Slices": "15-25"}})
    with pytest.raises(AnnotationError, match="beyond its 20 slices"):
        read_annotation_file(src, refs=[ref])


def test_detect_format(tmp_path, rich):
    full = tmp_path / "full.json"
    write_annotation_file(rich, full)
    assert detect_format(full) == "full"
    assert detect_format(write(tmp_path / "o.json", ORIGINAL)) == "original"
    assert detect_format({}) == "original"
    with pytest.raises(AnnotationError, match="neither mprviewer annotations nor the original"):
        detect_format({"CT": [1, 2]})
    with pytest.raises(AnnotationError, match="version 3"):
        detect_format({"format": "mprviewer-annotations", "version": 3, "series": []})


def test_export_never_overwrites_silently(tmp_path, rich):
    path = write(tmp_path / "precious.json", "keep me")
    with pytest.raises(AnnotationError, match="already exists"):
        write_annotation_file(rich, path)
    assert path.read_text() == "keep me"
    write_annotation_file(rich, path, overwrite=True)
    assert read_annotation_file(path).slices_for("1.2.3.1", "", "coronal") == [30, 31, 32]
    with pytest.raises(AnnotationError, match="is a folder"):
        write_annotation_file(rich, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["precious.json"]  # no temp file left


def test_export_into_a_missing_folder_is_a_clear_error(tmp_path, rich):
    with pytest.raises(AnnotationError, match="cannot write"):
        write_annotation_file(rich, tmp_path / "no" / "such" / "marks.json")


def test_preview_text_is_what_gets_written(tmp_path, rich):
    for fmt in ("full", "original"):
        path = tmp_path / f"{fmt}.json"
        write_annotation_file(rich, path, fmt=fmt)
        assert path.read_text(encoding="utf-8") == to_json_text(rich, fmt)
    with pytest.raises(AnnotationError, match="unknown annotation format"):
        to_json_text(rich, "xml")


# -- what goes wrong, and how it is told ---------------------------------------------------
def _full(**entry):
    base = {"label": "Bleed", "plane": "axial", "slices": [1, 2]}
    base.update(entry)
    return {"format": "mprviewer-annotations", "version": 1, "study_uid": "1.2.3",
            "series": [{"uid": "1.2.3.1", "name": "CT", "entries": [base]}]}


@pytest.mark.parametrize(
    ("doc", "where", "why"),
    [
        (_full(slices=[1, "2"]), "$.series[0].entries[0].slices[1]", "not of type 'integer'"),
        (_full(plane="oblique"), "$.series[0].entries[0].plane", "is not one of"),
        (_full(slices=[100000]), "$.series[0].entries[0].slices[0]", "maximum"),
        (_full(ranges="1-3"), "$.series[0].entries[0]", "ranges and slices disagree"),
        (_full(sop_instance_uids=["1"]), "sop_instance_uids", "has 1 items but slices has 2"),
        (_full(colour="red"), "$.series[0].entries[0]", "'colour' was unexpected"),
        ({"format": "mprviewer-annotations", "version": 1}, "$", "'series' is a required"),
        ({"CT": {"Anomaly": "Bleed", "Slices": "1-3; four"}}, '$["CT"].Slices', "'four'"),
        ({"CT": {"Anomaly": 7, "Slices": "1"}}, '$["CT"].Anomaly', "label text"),
        ({"CT": {"Anomaly": "x", "Slices": {"a": 1}}}, '$["CT"].Slices', "not dict"),
        ([1, 2], "$", "annotations are a JSON object"),
    ],
)
def test_invalid_documents_name_the_file_and_the_first_problem(tmp_path, doc, where, why):
    path = write(tmp_path / "bad.json", doc)
    with pytest.raises(AnnotationError) as info:
        read_annotation_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert where in message
    assert why in message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"CT": {"Anomaly": "x", "Slices": "1"}', "not valid JSON"),
        ('{"CT": {"Slices": "1"}, "CT": {"Slices": "2"}}', "appears twice"),
        ('{"format": "mprviewer-annotations", "version": 1e999, "series": []}', "out of range"),
        ('{"format": "mprviewer-annotations", "version": NaN, "series": []}', "NaN"),
        ('{"CT": {"Slices": [' + "9" * 5000 + "]}}", "far too large"),
        ("[" * 200_000 + "]" * 200_000, "nested"),
        ('{"a": ' * 50 + "1" + "}" * 50, "nested more than"),
    ],
)
def test_hostile_json_is_refused_quickly(tmp_path, text, why, rich):
    path = write(tmp_path / "hostile.json", text)
    start = time.perf_counter()
    with pytest.raises(AnnotationError, match=why):
        read_annotation_file(path)
    assert time.perf_counter() - start < 2.0
    # imported into an open set (as the viewer does): refused, and the set is as it was:
    # the same marks, no change announced, and no import step on the undo stack
    refs = [make_ref(n=120), make_ref(uid="1.2.3.2", name="CT Lung", uid_root="1.2.3.2.", n=80)]
    before = (state(rich), rich.modified, rich.can_undo, rich.can_redo)
    changes = []
    rich.changed.connect(lambda *args: changes.append(args))
    start = time.perf_counter()
    for force in (False, True):
        with pytest.raises(AnnotationError, match=why):
            import_into(rich, path, refs=refs, force=force)
    assert time.perf_counter() - start < 4.0
    assert (state(rich), rich.modified, rich.can_undo, rich.can_redo) == before
    assert changes == [] and rich.last_change != "import"
    rich.undo()  # the last step is still the study note set by the fixture
    assert rich.note == ""


def test_a_huge_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: 1 GB on paper, nothing on disk
        fh.truncate(1024**3)
    start = time.perf_counter()
    with pytest.raises(AnnotationError, match="1074 MB"):
        read_annotation_file(path)
    assert time.perf_counter() - start < 0.5


def test_not_utf8_and_unreadable_files(tmp_path):
    with pytest.raises(AnnotationError, match="not valid JSON"):
        read_annotation_file(write(tmp_path / "empty.json", ""))
    (tmp_path / "latin.json").write_bytes(b'{"CT \xe9": {"Slices": "1"}}')
    with pytest.raises(AnnotationError, match="not UTF-8"):
        read_annotation_file(tmp_path / "latin.json")
    with pytest.raises(AnnotationError, match="cannot be read"):
        read_annotation_file(tmp_path / "missing.json")
    with pytest.raises(AnnotationError, match="is a folder"):
        read_annotation_file(tmp_path)


def test_a_bom_is_accepted(tmp_path):
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(ORIGINAL).encode())
    assert read_annotation_file(tmp_path / "bom.json").slices_for("", "CT Lung", "axial") == [3]


# -- import merges into what is open -------------------------------------------------------
def test_import_merges_as_one_undoable_step(tmp_path):
    ref = make_ref()
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(ref, "axial", [1])
    src = write(tmp_path / "in.json", {"CT Head": {"Anomaly": "Anomaly", "Slices": "4-5"}})
    summary = import_into(aset, src, refs=[ref])
    assert "merged" in summary
    assert aset.slices_for(ref.uid, "", "axial") == [1, 4, 5]
    aset.undo()
    assert aset.slices_for(ref.uid, "", "axial") == [1]


def test_import_of_another_study_says_so_and_changes_nothing(tmp_path, rich):
    other = AnnotationSet(study_uid="9.8.7")
    other.mark(make_ref(study="9.8.7"), "axial", [3])
    path = tmp_path / "other.json"
    write_annotation_file(other, path)
    before = state(rich)
    with pytest.raises(AnnotationError, match=r"belong to study 9\.8\.7"):
        import_into(rich, path)
    assert state(rich) == before
    import_into(rich, path, force=True)
    assert rich.slices_for("1.2.3.1", "", "axial", "Anomaly") == [3]


# -- property-based: random and mutated documents ------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
keys = st.sampled_from(["format", "version", "series", "uid", "name", "entries", "label",
                        "plane", "slices", "ranges", "points", "voxel", "lps", "Anomaly",
                        "Slices", "sop_instance_uids", "positions", "note", "value"])


def _mutations(doc):
    """Paths to every value in doc."""
    out = [()]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += [(k, *p) for p in _mutations(v)]
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += [(i, *p) for p in _mutations(v)]
    return out


def _replace(doc, path, value):
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def _base_documents():
    aset = AnnotationSet(study_uid="1.2.3")
    ref = make_ref()
    aset.mark(ref, "axial", [1, 2, 5], "Bleed")
    aset.add_point(ref, (1, 2, 3), (0.5, 1.5, 2.5), 3.0)
    return [build_document(aset, "full")[0], dict(ORIGINAL)]


BASES = _base_documents()


def _assert_import_is_all_or_nothing(tmp_path: Path, text: str) -> None:
    ref = make_ref(n=120)
    aset = AnnotationSet(study_uid="1.2.3")
    aset.mark(ref, "axial", [7], "Keep")
    before = state(aset)
    path = tmp_path / "fuzz.json"
    path.write_text(text, encoding="utf-8")
    try:
        import_into(aset, path, refs=[ref])
    except AnnotationError as exc:
        assert str(exc).startswith(str(path))
        assert state(aset) == before
    else:
        assert aset.slices_for(ref.uid, "", "axial", "Keep") == [7]


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys | st.text(max_size=8), json_values, max_size=6) | json_values)
def test_random_documents_raise_only_annotation_errors(tmp_path, doc):
    _assert_import_is_all_or_nothing(tmp_path, json.dumps(doc))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(range(len(BASES))), st.data(), json_values)
def test_mutated_valid_documents_raise_only_annotation_errors(tmp_path, which, data, value):
    base = BASES[which]
    path = data.draw(st.sampled_from(_mutations(base)))
    _assert_import_is_all_or_nothing(tmp_path, json.dumps(_replace(base, path, value)))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(range(len(BASES))), st.integers(0, 10_000), st.binary(max_size=4))
def test_damaged_bytes_raise_only_annotation_errors(tmp_path, which, at, junk):
    raw = json.dumps(BASES[which]).encode()
    at %= len(raw)
    damaged = raw[:at] + junk + raw[at + len(junk):]
    path = tmp_path / "damaged.json"
    path.write_bytes(damaged)
    with contextlib.suppress(AnnotationError):
        read_annotation_file(path)


def test_file_size_check_uses_stat_not_read(tmp_path, monkeypatch):
    import mprviewer.model.annotation_files as files

    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    path = write(tmp_path / "big.json", {"CT": {"Slices": "1", "pad": "x" * 200}})
    assert os.path.getsize(path) > 100
    with pytest.raises(AnnotationError, match=r"annotation files are at most"):
        read_annotation_file(path)
