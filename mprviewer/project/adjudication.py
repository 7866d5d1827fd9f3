"""Adjudication: studies the readers disagree on, final labels, and exports of them.

A study is ready for adjudication when every one of its readers (assigned, or everyone who
read in a project without assignments) has finished it. The readers disagree when their
marks differ anywhere (a slice, a label, a plane). An adjudicator records final labels as
events of their own (``stage = "final"``), beside the readings, never over them. ``FinalView``
presents the final labels to the exports as one reader, ``final``: the adjudicated labels
where a study was adjudicated (final status done), else the user's rule over the readings
(``majority``: marked by more than half of the study's readers; ``union``: by any;
``reader:NAME``: that reader's).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from mprviewer.errors import ProjectError
from mprviewer.project.common import FINISHED, Mark

# The Project is passed in (typed Any: this module sits below project.py, which imports it
# on demand).
Project = Any
StudyInfo = Any

FINAL = "final"
RULES = ("majority", "union", "reader:NAME")
MarkKey = tuple[int, int, str, str]  # study id, series id, label, plane


def check_rule(rule: str) -> str:
    rule = str(rule or "").strip()
    if rule in ("majority", "union") or (rule.startswith("reader:") and rule[7:].strip()):
        return rule
    raise ProjectError(f"unknown rule {rule!r}: use majority, union or reader:NAME")


def study_readers(project: Project) -> dict[int, list[str]]:
    """study id -> its readers: the assigned ones, or everyone who has read."""
    assigned = project.assignments()
    if assigned:
        return assigned
    everyone = project.readers()
    return {info.id: list(everyone) for info in project.studies()}


def readings(project: Project) -> dict[int, dict[str, dict[tuple[int, str, str], set[int]]]]:
    """study id -> reader -> (series id, label, plane) -> marked slices."""
    out: dict[int, dict[str, dict[tuple[int, str, str], set[int]]]] = defaultdict(
        lambda: defaultdict(dict))
    for m in project.marks():
        out[m.study_id][m.reader][(m.series_id, m.label, m.plane)] = set(m.slices)
    return out


def ready(project: Project) -> list[StudyInfo]:
    """Studies finished by every one of their (two or more) readers."""
    statuses = project.statuses()
    per_study = study_readers(project)
    out = []
    for info in project.studies():
        names = per_study.get(info.id, [])
        per = statuses.get(info.id, {})
        if len(names) >= 2 and all(per.get(r, ("unread", ""))[0] in FINISHED for r in names):
            out.append(info)
    return out


def final_state(project: Project) -> tuple[dict[int, str], dict[MarkKey, set[int]]]:
    """(study id -> latest final status, final marks) from the adjudicators' events."""
    statuses = {sid: per[FINAL][0] for sid, per in _final_statuses(project).items()}
    with project.store.read() as conn:
        found = project._marks_in(conn, stage=FINAL)
    merged: dict[MarkKey, set[int]] = defaultdict(set)
    for (study_id, _reader, series_id, label, plane), slices in found.items():
        merged[(study_id, series_id, label, plane)].update(slices)
    return statuses, dict(merged)


def _final_statuses(project: Project) -> dict[int, dict[str, tuple[str, str]]]:
    from sqlalchemy import select

    from mprviewer.project import store as db

    e = db.events.c
    with project.store.read() as conn:
        rows = conn.execute(select(e.study_id, e.status).where(
            e.action == "status", e.stage == FINAL).order_by(e.id)).all()
    out: dict[int, dict[str, tuple[str, str]]] = {}
    for study_id, status in rows:
        out[study_id] = {FINAL: (str(status), "")}  # the latest verdict wins
    return out


def worklist(project: Project) -> list[dict[str, Any]]:
    """The studies ready for adjudication on which the readers disagree: index, name, uid,
    readers, the labels they disagree on, and whether a final verdict is recorded."""
    per_study = study_readers(project)
    marks = readings(project)
    verdicts, _ = final_state(project)
    rows = []
    for info in ready(project):
        names = per_study[info.id]
        keys = set().union(*(marks[info.id].get(r, {}).keys() for r in names))
        labels = sorted({k[1] for k in keys
                         if len({frozenset(marks[info.id].get(r, {}).get(k, set()))
                                 for r in names}) > 1})
        if not labels:
            continue
        rows.append({"index": info.index, "name": info.name, "study_uid": info.uid,
                     "readers": sorted(names), "labels": labels,
                     "adjudicated": verdicts.get(info.id) == "done"})
    return rows


def by_rule(project: Project, info: StudyInfo, rule: str,
            marks: dict[int, dict[str, dict[tuple[int, str, str], set[int]]]] | None = None,
            ) -> dict[tuple[int, str, str], set[int]] | None:
    """The labels of a study by ``rule`` over its readings (None: the rule has no answer,
    e.g. the named reader did not read it)."""
    rule = check_rule(rule)
    names = study_readers(project).get(info.id, [])
    marks = readings(project) if marks is None else marks
    mine = marks.get(info.id, {})
    if rule.startswith("reader:"):
        name = rule[7:].strip()
        if name not in names:
            return None
        return {k: set(v) for k, v in mine.get(name, {}).items()}
    votes: dict[tuple[int, str, str], Counter[int]] = defaultdict(Counter)
    for reader in names:
        for key, slices in mine.get(reader, {}).items():
            votes[key].update(slices)
    need = len(names) // 2 + 1 if rule == "majority" else 1
    out = {k: {s for s, n in c.items() if n >= need} for k, c in votes.items()}
    return {k: v for k, v in out.items() if v}


class FinalView:
    """The project as the exports see it with one reader, ``final``: adjudicated labels,
    else the rule's. Everything else is the project's own."""

    def __init__(self, project: Project, rule: str) -> None:
        self._project = project
        self.rule = check_rule(rule)
        verdicts, final_marks = final_state(project)
        marks = readings(project)
        self.final: dict[int, dict[tuple[int, str, str], set[int]]] = {}
        self.adjudicated: set[int] = set()
        for info in ready(project) if not self.rule.startswith("reader:") else \
                _finished_by(project, self.rule[7:].strip()):
            if verdicts.get(info.id) == "done":
                self.final[info.id] = {(se, lab, pl): set(s) for (st, se, lab, pl), s
                                       in final_marks.items() if st == info.id and s}
                self.adjudicated.add(info.id)
                continue
            found = by_rule(project, info, self.rule, marks)
            if found is not None:
                self.final[info.id] = found
        for study_id, verdict in verdicts.items():  # adjudicated before everyone finished
            if verdict == "done" and study_id not in self.final:
                self.final[study_id] = {(se, lab, pl): set(s) for (st, se, lab, pl), s
                                        in final_marks.items() if st == study_id and s}
                self.adjudicated.add(study_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._project, name)

    def readers(self) -> list[str]:
        return [FINAL]

    def statuses(self, stage: str | None = None) -> dict[int, dict[str, tuple[str, str]]]:
        out: dict[int, dict[str, tuple[str, str]]] = {s.id: {} for s in self.studies()}
        for study_id, found in self.final.items():
            out[study_id] = {FINAL: ("done" if found else "no finding", "")}
        return out

    def _marks_in(self, conn: Any, study_id: int | None = None, reader: str | None = None,
                  stage: str | None = None) -> dict[tuple[int, str, int, str, str], set[int]]:
        out = {}
        if reader not in (None, FINAL):
            return out
        for sid, found in self.final.items():
            if study_id is not None and sid != study_id:
                continue
            for (series_id, label, plane), slices in found.items():
                if slices:
                    out[(sid, FINAL, series_id, label, plane)] = set(slices)
        return out

    def marks(self, study: Any = None, reader: str | None = None) -> list[Mark]:
        study_id = None if study is None else self._project.study(study).id
        found = self._marks_in(None, study_id=study_id, reader=reader)
        return [Mark(r, st, se, label, plane, tuple(sorted(v)))
                for (st, r, se, label, plane), v in sorted(found.items())]


def _finished_by(project: Project, reader: str) -> list[StudyInfo]:
    statuses = project.statuses()
    return [s for s in project.studies()
            if statuses.get(s.id, {}).get(reader, ("unread", ""))[0] in FINISHED]
