"""How much the readers of a project agree: kappa and percent agreement per label.

Over the studies finished (done or no finding) by every reader of the study (its assigned
readers, or everyone who read in a project without assignments):

- image level: one unit per acquisition-plane slice of every series; a reader rates it
  positive for a label when they marked that slice with it;
- study level: one unit per study; positive when the reader marked the label anywhere in it.

``any`` is positive whenever some label is (the label set's derived label when it has one).
With two readers in all the statistic is Cohen's kappa, with three or more Fleiss' kappa
(units rated by the most common number of readers). Agreement is the fraction of units on
which all their readers gave the same rating. A kappa the data cannot define (every rating
the same) is None. No Qt, no VTK, no NumPy needed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from mprviewer.project.common import FINISHED

# The Project is passed in (typed Any: this module sits below project.py, which imports it
# on demand).
Project = Any
StudyInfo = Any

ANY = "any"


def cohen_kappa(a: list[int], b: list[int]) -> float | None:
    """Cohen's kappa of two raters' ratings of the same units (None when undefined)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[c] * cb[c] for c in set(ca) | set(cb)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(table: list[list[int]]) -> float | None:
    """Fleiss' kappa of a units x categories table of counts, the same number of ratings
    in every row (None when undefined)."""
    if not table:
        return None
    raters = sum(table[0])
    units = len(table)
    if raters < 2:
        return None
    totals = [sum(row[j] for row in table) for j in range(len(table[0]))]
    p = [t / (units * raters) for t in totals]
    per_unit = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in table]
    observed = sum(per_unit) / units
    expected = sum(x * x for x in p)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def ratings(project: Project) -> dict[str, Any]:
    """Every unit's ratings: ``{"readers": [...], "labels": [...], "image": [...],
    "study": [...]}`` where each unit is ``{reader: {label: 0 or 1}}``."""
    label_set = project.label_set
    derived = {lab.key for lab in label_set.derived}
    keys = [lab.key for lab in label_set.labels]
    if ANY not in keys:
        keys.append(ANY)
    any_key = next(iter(derived), ANY)
    assigned = project.assignments()
    everyone = project.readers()
    statuses = project.statuses()
    marks = project.marks()
    by_study: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for m in marks:
        by_study[m.study_id][m.reader].append(m)
    image_units: list[dict[str, dict[str, int]]] = []
    study_units: list[dict[str, dict[str, int]]] = []
    readers_seen: set[str] = set()
    for info in project.studies():
        readers = assigned.get(info.id) if assigned else everyone
        if not readers or len(readers) < 2:
            continue
        per = statuses.get(info.id, {})
        if any(per.get(r, ("unread", ""))[0] not in FINISHED for r in readers):
            continue
        readers_seen.update(readers)
        study_unit: dict[str, dict[str, int]] = {}
        for r in readers:
            found = {m.label for m in by_study[info.id].get(r, [])}
            row = {k: int(k in found) for k in keys}
            row[any_key] = int(bool(found - {any_key}) or any_key in found)
            study_unit[r] = row
        study_units.append(study_unit)
        for series in project.series(info):
            plane = series.acquisition_plane
            size = int(series.plane_sizes.get(plane, series.n_images))
            marked = {r: defaultdict(set) for r in readers}
            for r in readers:
                for m in by_study[info.id].get(r, []):
                    if m.series_id == series.id and m.plane == plane:
                        marked[r][m.label].update(m.slices)
            for sl in range(size):
                unit = {}
                for r in readers:
                    row = {k: int(sl in marked[r].get(k, ())) for k in keys}
                    row[any_key] = int(any(sl in slices for slices in marked[r].values()))
                    unit[r] = row
                image_units.append(unit)
    return {"readers": sorted(readers_seen), "labels": keys, "image": image_units,
            "study": study_units}


def _statistics(units: list[dict[str, dict[str, int]]], key: str,
                readers: list[str]) -> dict[str, Any]:
    if len(readers) <= 2:
        values = [[u[r][key] for r in readers] for u in units if set(u) == set(readers)]
        n = len(values)
        kappa = cohen_kappa([v[0] for v in values], [v[1] for v in values]) if n else None
    else:
        common = Counter(len(u) for u in units).most_common(1)
        size = common[0][0] if common else 0
        values = [[u[r][key] for r in u] for u in units if len(u) == size]
        n = len(values)
        kappa = fleiss_kappa([[v.count(0), v.count(1)] for v in values]) if n else None
    agreement = sum(len(set(v)) == 1 for v in values) / n if n else None
    return {"kappa": kappa, "agreement": agreement, "n": n}


def agreement(project: Project) -> dict[str, Any]:
    """``{"readers": [...], "labels": {key: {"image": {"kappa", "agreement", "n"},
    "study": {...}}}}`` (``project agreement --json``)."""
    data = ratings(project)
    readers = data["readers"]
    out: dict[str, Any] = {"readers": readers, "labels": {}}
    for key in data["labels"]:
        out["labels"][key] = {level: _statistics(data[level], key, readers)
                              for level in ("image", "study")}
    return out
