"""Adjudication: the worklist of studies the readers disagree on, final labels recorded by an
adjudicator beside the readings, and ``export --final`` by rule, read back from the CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mprviewer.cli import main
from mprviewer.errors import ProjectError
from mprviewer.project import Project
from mprviewer.synthetic import writer as synthetic

SLICES = 6
LABELS = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adj-src") / "src"
    for n in range(6):
        synthetic.write_series(root / f"case{n}", np.full((SLICES, 6, 6), n, np.int16),
                               study_uid=synthetic.make_uid(8, "adj", n), seed=f"adj{n}")
    return root


def _sops(folder: Path) -> list[str]:
    """SOPInstanceUIDs of a study from inferior to superior (axial slice 0 first)."""
    found = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")]
    return [ds.SOPInstanceUID for ds in
            sorted(found, key=lambda ds: float(ds.ImagePositionPatient[2]))]


@pytest.fixture()
def read(source, tmp_path) -> Project:
    """ann, bob and cy read every study; dee adjudicates."""
    p = Project.create(tmp_path / "p", [str(source)])
    p.assign(["ann", "bob", "cy"], 3, adjudicators=["dee"])
    for reader, slices in (("ann", "0-2"), ("bob", "1-2"), ("cy", "2-3")):
        p.mark(0, "subdural", "1-2", reader)  # all agree
        p.mark(1, "subdural", slices, reader)  # they disagree
    p.mark(2, "epidural", "0", "ann")
    p.mark(3, "subdural", "4", "ann")
    for study in range(4):
        for reader in ("ann", "bob", "cy"):
            status = "done" if p.marks(study, reader) else "no finding"
            p.set_status(study, reader, status)
    p.mark(4, "subdural", "0", "ann")  # bob never finishes study 4
    p.set_status(4, "ann", "done")
    yield p
    p.close()


def test_the_worklist_holds_the_finished_studies_they_disagree_on(read, capsys):
    assert main(["project", "adjudicate", str(read.folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["index"], r["labels"], r["adjudicated"]) for r in rows] == [
        (1, ["subdural"], False), (2, ["epidural"], False), (3, ["subdural"], False)]
    assert all(r["readers"] == ["ann", "bob", "cy"] for r in rows)


def test_final_labels_are_recorded_beside_the_readings(read, capsys):
    before = read.marks()
    assert main(["project", "adjudicate", str(read.folder), "--study", "3", "--label",
                 "subdural", "--slices", "5", "--done", "--reader", "dee"]) == 0
    assert read.marks() == before  # readings untouched
    assert {r["index"]: r["adjudicated"] for r in read.adjudication()}[3] is True
    assert read.readers() == ["ann", "bob", "cy"]  # the adjudicator is not a reader
    assert main(["project", "adjudicate", str(read.folder), "--study", "1", "--label",
                 "subdural", "--slices", "0", "--reader", "ann"]) == 3
    assert "'ann' is not an adjudicator" in capsys.readouterr().err
    log = read.events(3)
    assert [(e["reader"], e["action"], e.get("stage")) for e in log[-2:]] == [
        ("dee", "mark", "final"), ("dee", "status", "final")]


@pytest.mark.parametrize("rule, expected", [
    ("majority", {0: {1, 2}, 1: {1, 2}, 2: set(), 3: {5}}),
    ("union", {0: {1, 2}, 1: {0, 1, 2, 3}, 2: set(), 3: {5}}),
    ("reader:bob", {0: {1, 2}, 1: {1, 2}, 2: set(), 3: {5}}),
    ("reader:ann", {0: {1, 2}, 1: {0, 1, 2}, 2: set(), 3: {5}, 4: {0}}),
])
def test_export_final_uses_adjudicated_labels_else_the_rule(read, source, tmp_path, capsys,
                                                            rule, expected):
    read.adjudicate(3, "dee", label="subdural", slices="5", done=True)
    out = tmp_path / "final.csv"
    assert main(["project", "export", str(read.folder), "--final", "--rule", rule, "--to",
                 "csv", str(out)]) == 0
    capsys.readouterr()
    table = {r[0]: int(r[1]) for r in list(csv.reader(io.StringIO(out.read_text())))[1:]}
    epidural_study_2 = rule == "union" or rule == "reader:ann"
    for study in range(6):
        sops = _sops(source / f"case{study}")
        if study not in expected:  # not finished by its readers (or by the named one)
            assert not any(f"ID_{sop}_subdural" in table for sop in sops)
            continue
        for n, sop in enumerate(sops):
            assert table[f"ID_{sop}_subdural"] == int(n in expected[study]), (study, n)
            epidural = study == 2 and n == 0 and epidural_study_2
            assert table[f"ID_{sop}_epidural"] == int(epidural), (study, n)
            assert table[f"ID_{sop}_any"] == int(n in expected[study] or epidural)
    assert len(table) == len(expected) * SLICES * len(LABELS)


def test_accepting_a_rule_records_it_as_final(read, source, tmp_path):
    read.adjudicate(1, "dee", accept="union")
    read.adjudicate(1, "dee", accept="majority")  # replaces the earlier verdict's marks
    read.export("csv", tmp_path / "f.csv", final="reader:cy")
    table = {r[0]: int(r[1]) for r in
             list(csv.reader(io.StringIO((tmp_path / "f.csv").read_text())))[1:]}
    sops = _sops(source / "case1")
    assert [table[f"ID_{sop}_subdural"] for sop in sops] == [0, 1, 1, 0, 0, 0]
    with pytest.raises(ProjectError, match="unknown rule 'most'"):
        read.adjudicate(2, "dee", accept="most")
