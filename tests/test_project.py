"""Labeling projects: indexing from headers, label sets, statuses, the event store, exports.

Every check reads what was written (files on disk, the SQLite database, the exported CSV,
JSON and DICOM SR) and compares it with facts taken from the DICOM files themselves.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mprviewer.errors import ProjectError
from mprviewer.model.label_sets import LabelSetError, built_in, load_label_set
from mprviewer.project import Project
from mprviewer.synthetic import writer as synthetic

READER = "ann"


def _study(folder: Path, n: int, slices: int = 6, **kw) -> list[Path]:
    array = np.full((slices, 8, 8), n, dtype=np.int16)
    return synthetic.write_series(folder, array, study_uid=synthetic.make_uid(7, "study", n),
                                  seed=f"s{n}", shuffle=n + 1, description=f"head {n}",
                                  patient={"PatientName": f"DOE^{n}", "PatientID": f"P{n}"},
                                  **kw)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four small studies: a folder, a zip, a study in two series folders, a multi-frame."""
    root = tmp_path_factory.mktemp("sources")
    src = root / "src"
    _study(src / "case_a", 0)
    _study(root / "zipped" / "case_b", 1)
    synthetic.zip_folders(src / "case_b.zip", [root / "zipped" / "case_b"])
    _study(src / "case_c" / "CT1", 2, series_number=1)
    _study(src / "case_c" / "CT2", 2, slices=4, series_number=2,
           series_uid=synthetic.make_uid(7, "other series"))
    mf = synthetic.write_multiframe(src / "case_d" / "mf.dcm",
                                    np.zeros((5, 8, 8), np.int16), frame_order="shuffled",
                                    seed=9, study_uid=synthetic.make_uid(7, "study", 3))
    more = root / "more"
    _study(more / "case_e", 4)
    return {"src": src, "more": more, "root": root, "mf": mf}  # type: ignore[dict-item]


@pytest.fixture()
def project(sources, tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "proj", [str(sources["src"])], "ich")
    yield p
    p.close()


def _files_by_z(folder: Path) -> list[pydicom.Dataset]:
    """The study's images sorted from inferior to superior (axial slice 0 first)."""
    found = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")]
    return sorted(found, key=lambda ds: float(ds.ImagePositionPatient[2]))


def _read_csv(path: Path) -> dict[str, int]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["ID", "Label"]
    out = {r[0]: int(r[1]) for r in rows[1:]}
    assert len(out) == len(rows) - 1  # no ID twice
    return out


# -- indexing ---------------------------------------------------------------------------------
def test_create_finds_each_study_once_by_uid_from_headers(project, sources):
    studies = project.studies()
    assert [s.name for s in studies] == ["case_a", "case_b.zip", "case_c", "case_d"]
    expected = {synthetic.make_uid(7, "study", n) for n in range(4)}
    assert {s.uid for s in studies} == expected
    case_c = project.series("case_c")
    assert sorted(s.n_images for s in case_c) == [4, 6]  # two series folders, one study
    assert {s.folder for s in case_c} == {"case_c/CT1", "case_c/CT2"}
    assert [s.folder for s in project.series("case_b.zip")] == ["case_b.zip/case_b"]
    assert all(loc.startswith(str(sources["src"])) for s in studies for loc in s.locations)
    assert not (project.folder / "case_a").exists()  # referenced in place, not copied


def test_add_skips_duplicates_and_appends_new_studies(project, sources):
    report = project.add([str(sources["src"]), str(sources["more"])])
    assert [s.name for s in report.added] == ["case_e"]
    assert report.added[0].index == 4
    assert len(report.duplicates) == 4
    assert len(project) == 5


def test_slice_numbers_follow_positions_not_file_order(project, sources):
    """Axial slice 0 is the most inferior image, whatever the (shuffled) file names."""
    by_z = _files_by_z(sources["src"] / "case_a")
    series = project.find_series("case_a")
    with project.store.read() as conn:
        from sqlalchemy import select

        from mprviewer.project import store

        rows = conn.execute(select(store.images.c.slice, store.images.c.sop_uid).where(
            store.images.c.series_id == series.id).order_by(store.images.c.slice)).all()
    assert [r[1] for r in rows] == [str(ds.SOPInstanceUID) for ds in by_z]
    names = sorted(p.name for p in (sources["src"] / "case_a").iterdir())
    assert [str(pydicom.dcmread(sources["src"] / "case_a" / n).SOPInstanceUID)
            for n in names] != [r[1] for r in rows]  # the files really are shuffled


def test_a_moved_folder_is_named_when_the_study_is_opened(sources, tmp_path):
    src = tmp_path / "copy"
    shutil.copytree(sources["src"] / "case_a", src / "case_a")
    shutil.copytree(sources["src"] / "case_d", src / "case_d")
    with Project.create(tmp_path / "p", [str(src)], "anomaly") as p:
        with p.open_study(0) as study:
            assert study.uid == p.study(0).uid
            assert study.series[0].num_images == 6
        (src / "case_a").rename(src / "renamed")
        with pytest.raises(ProjectError, match=r"case_a.*no longer exists"):
            p.open_study(0)
        p.mark(0, "Bleeding", "1", READER)  # the labels do not need the images
        assert p.status(0, READER) == ("in progress", "")
        report = p.add([str(src)])  # found again under its new name: the new place is kept
        assert report.added == [] and len(report.relocated) == 1
        assert report.duplicates == ["case_d (" + p.study(1).uid + ")"]
        assert p.study(0).locations == (str(src / "renamed"),)
        with p.open_study(0) as study:
            assert study.uid == p.study(0).uid
        assert [m.slices for m in p.marks(0, READER)] == [(1,)]


def test_a_project_inside_its_source_folder_is_not_a_study(sources, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(sources["src"] / "case_a", src / "case_a")
    with Project.create(src / "labels", [str(src)], "ich") as p:
        assert [s.name for s in p.studies()] == ["case_a"]
        report = p.add([str(src)])
        assert report.problems == [] and len(report.duplicates) == 1


def test_a_zip_given_alone_is_a_source(sources, tmp_path):
    with Project.create(tmp_path / "p", [str(sources["src"] / "case_b.zip")], "ich") as p:
        (study,) = p.studies()
        assert study.uid == synthetic.make_uid(7, "study", 1)
        assert study.locations == (str(sources["src"] / "case_b.zip"),)
        assert [s.folder for s in p.series(study)] == ["case_b.zip/case_b"]
        with p.open_study(study) as opened:
            assert opened.series[0].num_images == 6


def test_dicomdir_source(tmp_path):
    from pydicom.fileset import FileSet

    written = _study(tmp_path / "raw", 5)
    fs = FileSet()
    for path in written:
        fs.add(pydicom.dcmread(path))
    fs.write(tmp_path / "cd")
    with Project.create(tmp_path / "p", [str(tmp_path / "cd" / "DICOMDIR")], "ich") as p:
        (study,) = p.studies()
        assert study.uid == synthetic.make_uid(7, "study", 5)
        assert p.series(study)[0].n_images == 6


def test_create_refuses_a_missing_source_and_a_used_folder(sources, tmp_path):
    with pytest.raises(Exception, match="nowhere: no such file"):
        Project.create(tmp_path / "p", [str(tmp_path / "nowhere")], "ich")
    assert not (tmp_path / "p").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not empty"):
        Project.create(tmp_path / "full", [str(sources["more"])], "ich")
    assert (tmp_path / "full" / "x.txt").read_text() == "mine"


# -- label sets -------------------------------------------------------------------------------
def test_built_in_label_sets():
    ich = built_in("ich")
    assert ich.keys == ["epidural", "intraparenchymal", "intraventricular", "subarachnoid",
                        "subdural", "any"]
    assert [lab.key for lab in ich.derived] == ["any"]
    assert ich.by_hotkey(5).key == "subdural"
    assert not ich.free_text
    anomaly = built_in("anomaly")
    assert anomaly.keys == ["Bleeding"] and anomaly.free_text
    assert anomaly.check_markable("mass effect") == "mass effect"
    with pytest.raises(LabelSetError, match="unknown label 'mass effect'"):
        ich.check_markable("mass effect")
    with pytest.raises(LabelSetError, match="'any' is derived"):
        ich.check_markable("any")


@pytest.mark.parametrize("labels, message", [
    ([{"key": "a", "name": "A", "hotkey": 1}, {"key": "A", "name": "B", "hotkey": 2}],
     "duplicate key 'A'"),
    ([{"key": "a", "name": "A", "hotkey": 1}, {"key": "b", "name": "B", "hotkey": 1}],
     "duplicate hotkey 1"),
    ([{"key": "a", "name": "A", "hotkey": 10}], "10 is greater than the maximum of 9"),
    ([{"key": "a", "name": "A", "colour": "red"}], "does not match"),
])
def test_bad_label_set_files_are_clear_errors(tmp_path, labels, message):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"format": "mprviewer-labelset", "version": 1, "name": "x",
                                "labels": labels}))
    with pytest.raises(LabelSetError, match=message):
        load_label_set(path)


def test_a_label_set_file_is_used_by_the_project(sources, tmp_path):
    path = tmp_path / "lesions.json"
    path.write_text(json.dumps({"format": "mprviewer-labelset", "version": 1, "name": "les",
                                "labels": [{"key": "tumour", "name": "Tumour", "hotkey": 7}]}))
    with Project.create(tmp_path / "p", [str(sources["more"])], str(path)) as p:
        assert p.label_set.by_hotkey(7).key == "tumour"
    with Project.open(tmp_path / "p") as again:  # stored in the project, not re-read
        path.unlink()
        assert again.label_set.keys == ["tumour"]


# -- statuses and marks -----------------------------------------------------------------------
def test_statuses_are_per_reader_and_derived_from_events(project):
    assert project.summary()["counts"] == {}
    project.mark(0, "subdural", "1-2", READER)
    project.set_status(1, READER, "no finding")
    project.set_status(2, "bo", "unreadable", reason="motion")
    project.set_status(3, READER, "done")
    summary = project.summary()
    assert [s["statuses"] for s in summary["studies"]] == [
        {READER: "in progress", "bo": "unread"}, {READER: "no finding", "bo": "unread"},
        {READER: "unread", "bo": "unreadable"}, {READER: "done", "bo": "unread"}]
    assert summary["counts"][READER] == {"unread": 1, "in progress": 1, "done": 1,
                                         "no finding": 1, "unreadable": 0}
    assert project.status(2, "bo") == ("unreadable", "motion")
    with pytest.raises(ProjectError, match="needs a reason"):
        project.set_status(0, READER, "unreadable")
    with pytest.raises(ProjectError, match="2 marked slices by ann"):
        project.set_status(0, READER, "no finding")
    # marking a study closed as "no finding" reopens it
    project.mark(1, "epidural", "0", READER)
    assert project.status(1, READER)[0] == "in progress"
    # the next study to read skips finished and unreadable ones, and wraps round
    assert project.next_study(READER, after=1).index == 2  # unread for ann
    assert project.next_study("bo", after=1).index == 3
    assert project.next_study("bo", after=3).index == 0
    assert project.next_study(READER, after=1, backwards=True).index == 0


def test_marks_are_replayed_from_an_append_only_log(project):
    project.mark(0, "subdural", "0-3", READER)
    project.unmark(0, "subdural", "1", READER)
    project.mark(0, "subdural", [1, 5], READER)
    project.unmark(0, "subdural", "0", READER)
    (mark,) = project.marks(0, READER)
    assert mark.slices == (1, 2, 3, 5) and mark.label == "subdural" and mark.plane == "axial"
    events = project.events(0)
    assert [e["action"] for e in events] == ["mark", "unmark", "mark", "unmark"]
    assert [e["slices"] for e in events] == ["0-3", "1", "1; 5", "0"]
    assert all(e["reader"] == READER and e["study_uid"] == project.study(0).uid
               for e in events)
    assert len({e["event_uid"] for e in events}) == 4


def test_bad_requests_change_nothing(project):
    project.mark(0, "subdural", "1", READER)
    before = project.events()
    for call, message in [
        (lambda: project.mark(0, "subduralx", "1", READER), "unknown label 'subduralx'"),
        (lambda: project.mark(9, "subdural", "1", READER), "no study number 9"),
        (lambda: project.mark("1.2.3", "subdural", "1", READER), "no study '1.2.3'"),
        (lambda: project.mark(0, "subdural", "6", READER), "slice 6 is outside"),
        (lambda: project.mark(0, "subdural", "1", READER, series=3), "no series number 3"),
        (lambda: project.mark(0, "subdural", "1", READER, plane="oblique"), "unknown plane"),
        (lambda: project.set_status(0, READER, "finished"), "unknown status 'finished'"),
    ]:
        with pytest.raises(Exception, match=message):
            call()
    assert project.events() == before


def test_other_planes_use_their_own_sizes(project):
    mark = project.mark(0, "subdural", "7", READER, plane="coronal")  # 8 rows
    assert mark.plane == "coronal" and mark.slices == (7,)
    with pytest.raises(ProjectError, match=r"coronal slices .* it has 8"):
        project.mark(0, "subdural", "8", READER, plane="coronal")


# -- exports ----------------------------------------------------------------------------------
def test_csv_export_has_the_rsna_meaning(project, sources, tmp_path):
    uid = {s.name: s for s in project.studies()}
    project.mark("case_a", "subdural", "1-2", READER)
    project.mark("case_a", "epidural", "2", READER)
    project.mark("case_a", "subarachnoid", "4", READER, plane="coronal")
    project.set_status("case_a", READER, "done")
    project.set_status("case_b.zip", READER, "no finding")
    project.mark("case_c", "subdural", "0", READER)  # in progress: not exported
    project.mark("case_d", "intraventricular", "2", READER)
    project.set_status("case_d", READER, "done")
    project.set_status("case_c", "bo", "done")  # another reader's work stays out
    out = tmp_path / "labels.csv"
    result = project.export("csv", out, reader=READER)
    table = _read_csv(out)
    keys = ["epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural",
            "any"]
    a = [str(ds.SOPInstanceUID) for ds in _files_by_z(sources["src"] / "case_a")]
    expected = {}
    for n, sop in enumerate(a):
        for key in keys:
            on = (key == "subdural" and n in (1, 2)) or (key == "epidural" and n == 2) or (
                key == "any" and n in (1, 2))
            expected[f"ID_{sop}_{key}"] = int(on)
    b_files = [p for p in (sources["root"] / "zipped" / "case_b").iterdir()]
    for path in b_files:  # "no finding": every image, every label, all zero
        sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        expected.update({f"ID_{sop}_{key}": 0 for key in keys})
    mf = sources["mf"]
    for frame, (_stack, k) in enumerate(mf.frames):
        for key in keys:
            on = k == 2 and key in ("intraventricular", "any")
            expected[f"ID_{mf.sop_instance_uid}-{frame + 1}_{key}"] = int(on)
    assert table == expected  # case_c (in progress) and the other reader's study are absent
    assert result.studies == 3
    assert any("1 marked slices in planes other than the acquisition plane" in n
               for n in result.notes)
    assert uid["case_c"].uid not in out.read_text()


def test_original_export_keys_series_by_folder_and_names_collisions(project, tmp_path):
    project.mark("case_a", "subdural", "0-1; 4", READER)
    project.set_status("case_a", READER, "done")
    c1, _c2 = sorted(project.series("case_c"), key=lambda s: s.folder)
    project.mark("case_c", "epidural", "3", READER, series=c1.uid)
    project.mark("case_c", "subdural", "2-3", READER, series=c1.uid)
    project.set_status("case_c", READER, "done")
    out = tmp_path / "orig.json"
    result = project.export("original", out, reader=READER)
    assert json.loads(out.read_text()) == {
        "case_a": {"Anomaly": "subdural", "Slices": "0-1; 4"},
        "case_c/CT1": {"Anomaly": "any", "Slices": "2-3"},
    }
    assert any("folded into one per series" in n for n in result.notes)


def test_original_export_collision_is_an_error_naming_both(tmp_path):
    folder = tmp_path / "src" / "both"
    _study(folder, 6)
    _study(folder, 6, slices=3, series_number=2, series_uid=synthetic.make_uid(1, "x"),
           file_names="B%04d")
    with Project.create(tmp_path / "p", [str(tmp_path / "src")], "anomaly") as p:
        s1, s2 = p.series(0)
        p.mark(0, "Bleeding", "0", READER, series=s1.uid)
        p.mark(0, "Bleeding", "0", READER, series=s2.uid)
        p.set_status(0, READER, "done")
        with pytest.raises(ProjectError, match=rf"same folder 'both'.*{s1.name}.*{s2.name}"):
            p.export("original", tmp_path / "o.json", reader=READER)
        assert not (tmp_path / "o.json").exists()


def test_full_export_is_valid_and_holds_statuses_marks_and_events(project, tmp_path):
    import jsonschema

    project.mark("case_a", "subdural", "2", READER)
    project.set_status("case_a", READER, "done")
    project.set_status("case_b.zip", "bo", "unreadable", "truncated")
    out = tmp_path / "full.json"
    project.export("full", out)
    doc = json.loads(out.read_text())
    schema = json.loads((Path(__file__).parent.parent / "mprviewer" / "model" / "schema" /
                         "project-v1.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["format"] == "mprviewer-project" and doc["version"] == 1
    assert doc["label_set"]["name"] == "ich"
    a, b = doc["studies"][0], doc["studies"][1]
    assert a["statuses"][READER] == {"status": "done"}
    assert b["statuses"]["bo"] == {"status": "unreadable", "reason": "truncated"}
    (mark,) = a["series"][0]["marks"]
    assert mark["slices"] == [2] and mark["reader"] == READER
    assert [e["action"] for e in doc["events"]] == ["mark", "status", "status"]
    assert doc["readers"] == ["ann", "bo"]


def test_sr_export_references_the_marked_images(project, sources, tmp_path):
    import highdicom as hd

    project.mark("case_a", "subdural", "3", READER)
    project.set_status("case_a", READER, "done")
    project.set_status("case_b.zip", READER, "no finding")
    result = project.export("sr", tmp_path / "sr", reader=READER)
    assert len(result.files) == 2
    a = project.study("case_a")
    path = next(f for f in result.files if a.uid in f)
    sr = hd.sr.srread(path)
    assert sr.StudyInstanceUID == a.uid
    assert sr.PatientID == "P0"
    marked_sop = str(_files_by_z(sources["src"] / "case_a")[3].SOPInstanceUID)
    ds = pydicom.dcmread(path)
    text = str(ds)
    assert marked_sop in text
    evaluations = _evaluations(ds)
    assert evaluations == {"subdural": "Yes", "any": "Yes", "epidural": "No",
                           "intraparenchymal": "No", "intraventricular": "No",
                           "subarachnoid": "No"}
    evidence = {item.ReferencedSOPInstanceUID
                for study in ds.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for item in series.ReferencedSOPSequence}
    assert marked_sop in evidence and len(evidence) == 6
    nofinding = pydicom.dcmread(next(f for f in result.files if a.uid not in f))
    assert set(_evaluations(nofinding).values()) == {"No"}


def _evaluations(ds: pydicom.Dataset) -> dict[str, str]:
    """Label key -> Yes/No of every qualitative evaluation in the SR content tree."""
    found: dict[str, str] = {}

    def walk(items):
        for item in items:
            if item.ValueType == "CODE" and item.ConceptNameCodeSequence[0].CodingSchemeDesignator \
                    == "99MPRVIEWER":
                found[item.ConceptNameCodeSequence[0].CodeValue] = \
                    item.ConceptCodeSequence[0].CodeMeaning
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.ContentSequence)
    return found


def test_exports_with_several_readers_need_one_named(project, tmp_path):
    project.set_status(0, READER, "done")
    project.set_status(0, "bo", "done")
    with pytest.raises(ProjectError, match=r"several readers \(ann, bo\)"):
        project.export("csv", tmp_path / "x.csv")
    with pytest.raises(ProjectError, match="no reader 'cy'"):
        project.export("csv", tmp_path / "x.csv", reader="cy")
    assert not (tmp_path / "x.csv").exists()


# -- the store --------------------------------------------------------------------------------
def test_migrations_build_exactly_the_declared_schema(project):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mprviewer.project import store

    with project.store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.metadata)
        assert diff == []
        assert project.store.revision(conn) == store.HEAD


def test_a_database_from_a_newer_version_is_refused_unchanged(project):
    from sqlalchemy import text

    folder = project.folder
    with project.store.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    project.close()
    before = (folder / "labels.sqlite").read_bytes()
    with pytest.raises(ProjectError, match=r"revision 9999.*newer mprviewer"):
        Project.open(folder)
    assert (folder / "labels.sqlite").read_bytes() == before


def test_sqlite_runs_in_wal_mode(project):
    with project.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


MARKER = textwrap.dedent("""
    import sys
    import time
    from mprviewer.project import Project
    folder, reader, start = sys.argv[1], sys.argv[2], sys.argv[3]
    with Project.open(folder) as p:
        ready = p.folder / f"ready-{reader}"
        ready.write_text("")
        while not (p.folder / "go").exists():
            time.sleep(0.01)
        for n in range(200):
            study = n % 4
            p.mark(study, "subdural", str(n % 5), reader)
            p.mark(study, "epidural", str(n % 5), "shared")
""")


def test_two_processes_marking_at_once_lose_nothing(project):
    procs = [subprocess.Popen([sys.executable, "-c", MARKER, str(project.folder), name, "0"])
             for name in ("p1", "p2")]
    try:
        for name in ("p1", "p2"):
            deadline = 600
            while not (project.folder / f"ready-{name}").exists() and deadline:
                import time

                time.sleep(0.05)
                deadline -= 1
        (project.folder / "go").write_text("")
        for proc in procs:
            assert proc.wait(timeout=240) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    events = project.events()
    assert len(events) == 800
    assert len({e["event_uid"] for e in events}) == 800
    for reader in ("p1", "p2"):
        mine = [e for e in events if e["reader"] == reader]
        assert len(mine) == 200
        assert sorted((e["study_uid"], e["slices"]) for e in mine) == sorted(
            (project.study(n % 4).uid, str(n % 5)) for n in range(200))
    shared = project.marks(reader="shared")
    assert {(m.study_id, m.slices) for m in shared} == {
        (project.study(n).id, (0, 1, 2, 3, 4)) for n in range(4)}


def test_import_mprviewer_stays_light_and_project_is_lazy():
    code = ("import sys, mprviewer; assert 'sqlalchemy' not in sys.modules; "
            "P = mprviewer.Project; assert 'sqlalchemy' in sys.modules; "
            "print(P.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "mprviewer.project.project"


def test_toggle_and_worklist_rows_follow_the_log(project):
    assert project.toggle(0, "subdural", 3, READER) is True
    assert project.toggle(0, "epidural", 3, READER) is True
    assert project.toggle(0, "subdural", 3, READER) is False
    assert [m.slices for m in project.marks(0, READER)] == [(3,)]
    assert project.marks(0, READER)[0].label == "epidural"
    project.set_status(1, READER, "no finding")
    assert project.toggle(1, "subdural", 0, READER) is True  # reopens the study
    project.set_status(2, READER, "unreadable", "pixel data cannot be read")
    rows = project.worklist(READER)
    assert [(r["index"], r["status"], r["marks"]) for r in rows] == [
        (0, "in progress", 1), (1, "in progress", 1), (2, "unreadable", 0), (3, "unread", 0)]
    assert rows[2]["reason"] == "pixel data cannot be read"


def test_worklist_walks_unfinished_studies_and_prepares_the_next(sources, tmp_path):
    from mprviewer.project.worklist import Prepared, ProjectWorklist

    src = tmp_path / "src"
    for name in ("case_a", "case_c", "case_d"):
        shutil.copytree(sources["src"] / name, src / name)
    with Project.create(tmp_path / "p", [str(src)], "ich") as p:
        wl = ProjectWorklist(p, READER)
        seen = []
        wl.changed.connect(lambda: seen.append("changed"))
        first = wl.next_source()
        assert first.index == 0 and wl.current == 0
        with wl.open(first) as study:
            wl.opened()
            series = study.largest_series()
            assert wl.toggle(5, series.uid, series.name, "axial", 2) == ("subdural", True)
            assert wl.toggle(9, series.uid, series.name, "axial", 2) is None  # no label 9
            assert wl.marked(series.uid, series.name, "axial") == {2: ["subdural"]}
        assert p.status(0, READER)[0] == "in progress" and seen
        wl.set_status("done")
        assert wl.progress_text() == "1 / 3 done"
        wl.prepare_next()  # study 1 is read in the background
        target = wl.next_source()
        assert isinstance(target, Prepared) and target.index == 1
        assert target.done.wait(30) and target.error is None
        assert target.volume.array.shape == (6, 8, 8)  # the larger of case_c's two series
        wl.open(target).close()
        (src / "case_d").rename(src / "gone")  # study 2 cannot be opened now
        wl.set_status("no finding")
        wl.prepare_next()
        target = wl.next_source()
        assert target.index == 2
        with pytest.raises(ProjectError, match="no longer exists"):
            wl.open(target)
        wl.failed("case_d: its images are gone")
        assert p.status(2, READER) == ("unreadable", "case_d: its images are gone")
        assert wl.next_source() is None  # everything is finished or unreadable
        assert wl.progress() == (2, 3)
        assert wl.previous_source().index == 1  # back in list order, finished or not
        wl.current = 0
        assert wl.previous_source() is None
        wl.close()


def test_a_project_made_by_the_first_schema_still_opens(tmp_path):
    """tests/data/project-v1 was made by schema revision 0001 and is kept as it was."""
    folder = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "data" / "project-v1", folder)
    with Project.open(folder) as p:
        assert p.name == "made by schema 0001"
        assert [s.name for s in p.studies()] == ["case0", "case1"]
        assert [s["statuses"] for s in p.summary()["studies"]] == [{"ann": "done"},
                                                                   {"ann": "no finding"}]
        p.export("csv", tmp_path / "x.csv")
        table = _read_csv(tmp_path / "x.csv")
        assert {k for k, v in table.items() if v} == {
            "ID_1.2.826.0.1.3680043.10.777.1.1.2_subdural",
            "ID_1.2.826.0.1.3680043.10.777.1.1.2_any"}
        assert len(table) == 2 * 3 * 6
        p.mark(1, "epidural", "0", "bo")  # and takes new events


def test_project_files_are_readable_like_any_new_file(project):
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    mode = (project.folder / "project.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask  # not the 0600 of a temporary file
