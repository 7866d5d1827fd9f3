"""Inter-reader agreement: the values equal scikit-learn's Cohen's kappa and statsmodels'
Fleiss' kappa computed here from the marks the test itself chose, at image and study level."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from mprviewer.cli import main
from mprviewer.project import Project
from mprviewer.synthetic import writer as synthetic

SLICES = 6
STUDIES = 6
LABELS = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agree-src") / "src"
    for n in range(STUDIES):
        synthetic.write_series(root / f"case{n}", np.full((SLICES, 6, 6), n, np.int16),
                               study_uid=synthetic.make_uid(6, "agree", n), seed=f"ag{n}")
    return root


def _read(project: Project, readers: list[str], seed: int, unfinished: tuple[int, int]):
    """Random, correlated marks; returns truth[reader][study][label] = set of slices.
    Study ``unfinished[0]`` is left in progress by reader ``unfinished[1]``."""
    rng = random.Random(seed)
    truth: dict[str, dict[int, dict[str, set[int]]]] = {r: {} for r in readers}
    for study in range(STUDIES):
        base = {lab: {s for s in range(SLICES) if rng.random() < 0.3} for lab in LABELS}
        base["subdural"] = set(range(SLICES)) if study % 3 == 0 else base["subdural"]
        base["intraventricular"] = set()  # nobody ever marks it: kappa undefined
        for reader in readers:
            mine = {}
            for lab in LABELS:
                keep = {s for s in base[lab] if rng.random() < 0.8}
                extra = {s for s in range(SLICES) if rng.random() < 0.08}
                mine[lab] = keep | extra if lab != "intraventricular" else set()
                if mine[lab]:
                    project.mark(study, lab, sorted(mine[lab]), reader)
            truth[reader][study] = mine
            if (study, reader) != (unfinished[0], readers[unfinished[1]]):
                project.set_status(study, reader, "done")
    return truth


def _units(truth, readers, studies, key):
    """image rows (one per slice) and study rows, each a list with one rating per reader."""
    def value(reader, study, sl=None):
        marks = truth[reader][study]
        labels = LABELS if key == "any" else (key,)
        if sl is None:
            return int(any(marks[lab] for lab in labels))
        return int(any(sl in marks[lab] for lab in labels))

    image = [[value(r, st, sl) for r in readers] for st in studies for sl in range(SLICES)]
    study = [[value(r, st) for r in readers] for st in studies]
    return np.array(image), np.array(study)


def _same(ours, theirs):
    if math.isnan(theirs):
        return ours is None
    return ours is not None and ours == pytest.approx(theirs, abs=1e-12)


def test_two_readers_match_scikit_learns_cohen_kappa(source, tmp_path, capsys):
    readers = ["ann", "bob"]
    with Project.create(tmp_path / "p", [str(source)]) as p:
        truth = _read(p, readers, seed=11, unfinished=(4, 1))
        folder = p.folder
    assert main(["project", "agreement", str(folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"readers", "labels"}
    assert doc["readers"] == readers
    assert list(doc["labels"]) == [*LABELS, "any"]
    finished = [s for s in range(STUDIES) if s != 4]
    defined = 0
    for key in [*LABELS, "any"]:
        image, study = _units(truth, readers, finished, key)
        for level, table in (("image", image), ("study", study)):
            got = doc["labels"][key][level]
            assert set(got) == {"kappa", "agreement", "n"}
            assert got["n"] == len(table) == (len(finished) * (SLICES if level == "image" else 1))
            assert got["agreement"] == pytest.approx(np.mean(table[:, 0] == table[:, 1]))
            with _quiet():
                expected = cohen_kappa_score(table[:, 0], table[:, 1])
            assert _same(got["kappa"], expected), (key, level, got, expected)
            if level == "image" and key != "intraventricular":
                defined += got["kappa"] is not None
    assert doc["labels"]["intraventricular"]["image"] == {"kappa": None, "agreement": 1.0,
                                                         "n": len(finished) * SLICES}
    assert defined == len(LABELS)  # the data is not degenerate


def test_three_readers_match_statsmodels_fleiss_kappa(source, tmp_path, capsys):
    readers = ["ann", "bob", "cy"]
    with Project.create(tmp_path / "p", [str(source)]) as p:
        truth = _read(p, readers, seed=5, unfinished=(2, 2))
        folder = p.folder
    assert main(["project", "agreement", str(folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["readers"] == readers
    finished = [s for s in range(STUDIES) if s != 2]
    for key in [*LABELS, "any"]:
        image, study = _units(truth, readers, finished, key)
        for level, table in (("image", image), ("study", study)):
            got = doc["labels"][key][level]
            assert got["n"] == len(table)
            assert got["agreement"] == pytest.approx(np.mean(table.min(1) == table.max(1)))
            counts, _ = aggregate_raters(table, n_cat=2)
            with _quiet():
                expected = fleiss_kappa(counts, method="fleiss")
            assert _same(got["kappa"], expected), (key, level, got, expected)
    assert main(["project", "agreement", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "Fleiss' kappa" in text and "subdural" in text


def test_assigned_pairs_out_of_three_readers_use_fleiss_over_each_studys_pair(source,
                                                                             tmp_path):
    with Project.create(tmp_path / "p", [str(source)]) as p:
        p.assign(["ann", "bob", "cy"], 2, seed=2)
        pairs = {info.index: p.assignments()[info.id] for info in p.studies()}
        rng = random.Random(3)
        rows = []
        for study, pair in pairs.items():
            marked = {s for s in range(SLICES) if rng.random() < 0.5}
            chosen = []
            for n, reader in enumerate(pair):
                mine = marked if n == 0 else {s for s in marked if rng.random() < 0.7}
                chosen.append(mine)
                if mine:
                    p.mark(study, "subdural", sorted(mine), reader)
                p.set_status(study, reader, "done")
            rows += [[int(s in chosen[0]), int(s in chosen[1])] for s in range(SLICES)]
        doc = p.agreement()
    table = np.array(rows)
    counts, _ = aggregate_raters(table, n_cat=2)
    assert doc["readers"] == ["ann", "bob", "cy"]
    assert doc["labels"]["subdural"]["image"]["n"] == STUDIES * SLICES
    assert doc["labels"]["subdural"]["image"]["kappa"] == pytest.approx(
        fleiss_kappa(counts, method="fleiss"))


class _quiet:
    """Silence the 0/0 warnings the libraries give for an undefined kappa."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
