"""A labeling project: a folder with settings, a database of studies and an event log.

``Project.create(folder, sources, labels)`` indexes the studies of the sources (headers only;
images stay where they are) and ``Project.open(folder)`` opens an existing one. Every change
a reader makes (a mark, an unmark, a status) is one appended event naming the reader; current
marks and statuses are derived from the log, so nothing is ever overwritten and two
processes marking at once lose nothing. No Qt, no VTK.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from mprviewer.errors import AnnotationError, ProjectError
from mprviewer.model.label_sets import LabelSet, load_label_set
from mprviewer.model.slice_ranges import format_slices, normalize_slices, parse_slices
from mprviewer.project import store as db
from mprviewer.project.common import FINISHED, PLANES, STATUSES, atomic_write_text, now

FOLDER_FORMAT = "mprviewer-project-folder"
FOLDER_FILE = "project.json"
DB_FILE = "labels.sqlite"
if TYPE_CHECKING:  # the indexer (and the loader it uses) is imported only to add studies
    from mprviewer.project.indexer import SourcePlan, StudyRecord

__all__ = ["FINISHED", "STATUSES", "AddReport", "Mark", "Project", "SeriesInfo", "StudyInfo"]
ENV_READER = "MPRVIEWER_READER"
MAX_READER = 128


def default_reader() -> str:
    """$MPRVIEWER_READER, else the login name."""
    name = os.environ.get(ENV_READER, "").strip()
    if name:
        return name
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "reader"


def check_reader(name: str) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise ProjectError("a reader name is needed (--reader NAME or $MPRVIEWER_READER)")
    if len(text) > MAX_READER:
        raise ProjectError(f"reader name {text[:40]!r}... is longer than {MAX_READER} "
                           "characters")
    return text


@dataclass(frozen=True)
class StudyInfo:
    """One study of the worklist."""

    id: int
    index: int
    uid: str
    name: str
    locations: tuple[str, ...]
    kind: str
    attributes: dict[str, str] = field(hash=False, compare=False)


@dataclass(frozen=True)
class SeriesInfo:
    """One series of a study, with what marking and exporting need."""

    id: int
    position: int
    uid: str
    name: str
    number: int | None
    modality: str
    sop_class_uid: str
    folder: str
    acquisition_plane: str
    plane_sizes: dict[str, int] = field(hash=False, compare=False)
    n_images: int = 0


@dataclass(frozen=True)
class Mark:
    """The slices one reader has marked with one label in one plane of one series."""

    reader: str
    study_id: int
    series_id: int
    label: str
    plane: str
    slices: tuple[int, ...]

    @property
    def ranges(self) -> str:
        return format_slices(self.slices)


@dataclass
class AddReport:
    """What ``create``/``add`` found."""

    added: list[StudyInfo] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    relocated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


Step = Callable[[str], None]


class Project:
    """A labeling project folder. Open with ``Project.open`` or make with ``Project.create``."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder = folder
        self.settings = settings
        self.store = db.Store(self._db_url(), label=str(folder))
        self._label_set: LabelSet | None = None

    # -- opening and creating ------------------------------------------------------------
    def _db_url(self) -> str:
        url = str(self.settings.get("database", DB_FILE))
        if "://" in url:
            return url
        return db.sqlite_url(self.folder / url)

    @staticmethod
    def is_project(folder: str | os.PathLike[str]) -> bool:
        """True when ``folder`` holds a project's settings file."""
        path = Path(folder).expanduser() / FOLDER_FILE
        if not path.is_file():
            return False
        try:
            return json.loads(path.read_text(encoding="utf-8")).get("format") == FOLDER_FORMAT
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        """Open an existing project folder (its database is upgraded if it is older)."""
        path = Path(folder).expanduser()
        settings_file = path / FOLDER_FILE
        if not path.is_dir():
            raise ProjectError(f"{folder}: no such project folder")
        if not settings_file.is_file():
            raise ProjectError(f"{folder}: not a labeling project (no {FOLDER_FILE}); make one "
                               "with 'mprviewer project create'")
        try:
            settings = json.loads(settings_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProjectError(f"{settings_file}: cannot be read ({exc})") from None
        if not isinstance(settings, dict) or settings.get("format") != FOLDER_FORMAT:
            raise ProjectError(f"{settings_file}: not a mprviewer project settings file")
        if int(settings.get("version", 1)) > 1:
            raise ProjectError(f"{settings_file}: made by a newer mprviewer (settings version "
                               f"{settings.get('version')}); update mprviewer to open it")
        project = cls(path.resolve(), settings)
        if project._setting("label_set") is None:
            raise ProjectError(f"{folder}: the project's database holds no label set; it was "
                               "not created completely")
        return project

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        sources: Iterable[str] = (),
        labels: str | LabelSet = "ich",
        *,
        pacs: Sequence[tuple[Any, Any]] = (),
        step: Step | None = None,
        name: str | None = None,
    ) -> Project:
        """Make a project in ``folder`` (new or empty) and add the studies of ``sources``.

        ``labels`` is a built-in set name (``ich``, ``anomaly``), a label set file or a
        LabelSet. ``pacs`` holds (server, StudyQuery) pairs whose matches are added.
        """
        from mprviewer.project.indexer import plan_source

        label_set = labels if isinstance(labels, LabelSet) else load_label_set(labels)
        path = Path(folder).expanduser()
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{folder}: exists and is not a folder")
        if path.is_dir() and any(path.iterdir()):
            if cls.is_project(path):
                raise ProjectError(f"{folder}: is a project already; add studies with "
                                   "'mprviewer project add'")
            raise ProjectError(f"{folder}: the folder is not empty; give a new or empty folder")
        sources = list(sources)
        plans = [plan_source(s) for s in sources]  # a missing source fails before anything
        path.mkdir(parents=True, exist_ok=True)
        settings = {"format": FOLDER_FORMAT, "version": 1, "name": name or path.name,
                    "database": DB_FILE, "created": now()}
        project = cls(path.resolve(), settings)
        with project.store.write() as conn:
            conn.execute(insert(db.settings), [
                {"key": "label_set", "value": json.dumps(label_set.as_dict())},
                {"key": "name", "value": settings["name"]},
                {"key": "created", "value": settings["created"]},
            ])
        atomic_write_text(path / FOLDER_FILE, json.dumps(settings, indent=2) + "\n")
        project.last_report = project._add_plans(plans, pacs, step)
        return project

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.folder)!r})"

    def _setting(self, key: str) -> str | None:
        with self.store.read() as conn:
            row = conn.execute(select(db.settings.c.value).where(db.settings.c.key == key)
                               ).first()
        return None if row is None else str(row[0])

    @property
    def name(self) -> str:
        return str(self.settings.get("name") or self.folder.name)

    @property
    def label_set(self) -> LabelSet:
        if self._label_set is None:
            text = self._setting("label_set")
            if text is None:
                raise ProjectError(f"{self.folder}: the project holds no label set")
            self._label_set = LabelSet.from_dict(json.loads(text), source=f"{self.folder}")
        return self._label_set

    # -- adding studies ------------------------------------------------------------------
    def add(self, sources: Iterable[str] = (), *, pacs: Sequence[tuple[Any, Any]] = (),
            step: Step | None = None) -> AddReport:
        """Add the studies of more sources; studies already in the project are skipped."""
        from mprviewer.project.indexer import plan_source

        plans = [plan_source(s) for s in sources]
        return self._add_plans(plans, pacs, step)

    def _known_uids(self) -> set[str]:
        with self.store.read() as conn:
            return {row[0] for row in conn.execute(select(db.studies.c.study_uid))}

    def _add_plans(self, plans: list[SourcePlan], pacs: Sequence[tuple[Any, Any]],
                   step: Step | None) -> AddReport:
        from mprviewer.project.indexer import scan_source

        report = AddReport()
        known = self._known_uids()
        for plan in plans:
            records, problems = scan_source(plan, step=step)
            report.problems.extend(problems)
            fresh = []
            for record in records:
                if record.uid in known:
                    if self._relocate(record):
                        report.relocated.append(f"{record.name} ({record.uid}): now "
                                                f"{', '.join(record.locations)}")
                    else:
                        report.duplicates.append(f"{record.name} ({record.uid})")
                    continue
                known.add(record.uid)
                fresh.append(record)
            report.added.extend(self.add_records(plan.spec, plan.kind, plan.root, fresh))
        for server, query in pacs:
            from mprviewer.project.remote import pacs_records

            spec, records = pacs_records(server, query)
            fresh = []
            for record in records:
                if record.uid in known:
                    report.duplicates.append(f"{record.name} ({record.uid})")
                    continue
                known.add(record.uid)
                fresh.append(record)
            if step:
                step(f"{spec}: {len(records)} studies match")
            report.added.extend(self.add_records(spec, "pacs", spec, fresh))
        return report

    def _relocate(self, record: StudyRecord) -> bool:
        """A known study found again where its recorded folders are gone: record the new
        place (its labels are untouched). False when it is simply a duplicate."""
        info = self.study(record.uid)
        if info.kind == "pacs" or any(Path(loc).exists() for loc in info.locations):
            return False
        with self.store.write() as conn:
            conn.execute(db.studies.update().where(db.studies.c.id == info.id).values(
                locations=json.dumps(record.locations)))
        return True

    def add_records(self, spec: str, kind: str, root: str,
                    records: Sequence[StudyRecord]) -> list[StudyInfo]:
        """Store indexed studies (one transaction); used by ``add`` and the benchmarks."""
        if not records:
            return []
        stamp = now()
        with self.store.write() as conn:
            source_id = conn.execute(insert(db.sources).values(
                spec=spec, kind=kind, root=root, added=stamp)).inserted_primary_key[0]
            position = conn.execute(select(func.max(db.studies.c.position))).scalar()
            position = -1 if position is None else int(position)
            existing = {r[0] for r in conn.execute(select(db.studies.c.study_uid))}
            for record in records:
                if record.uid in existing:  # another process added it meanwhile
                    continue
                existing.add(record.uid)
                position += 1
                study_id = conn.execute(insert(db.studies).values(
                    position=position, study_uid=record.uid, name=record.name,
                    source_id=source_id, locations=json.dumps(record.locations),
                    attributes=json.dumps(record.attributes), added=stamp,
                )).inserted_primary_key[0]
                self._insert_series(conn, study_id, record)
        uids = {r.uid for r in records}
        return [s for s in self.studies() if s.uid in uids]

    @staticmethod
    def _insert_series(conn: Any, study_id: int, record: StudyRecord) -> None:
        for n, s in enumerate(record.series):
            series_id = conn.execute(insert(db.series).values(
                study_id=study_id, position=n, series_uid=s.uid, name=s.name,
                number=s.number, modality=s.modality, sop_class_uid=s.sop_class_uid,
                folder=s.folder, acquisition_plane=s.acquisition_plane,
                plane_sizes=json.dumps(s.plane_sizes), n_images=len(s.images),
            )).inserted_primary_key[0]
            if s.images:
                conn.execute(insert(db.images), [
                    {"series_id": series_id, "slice": sl, "sop_uid": sop, "frame": fr}
                    for sl, sop, fr in s.images])

    # -- studies and series --------------------------------------------------------------
    def studies(self) -> list[StudyInfo]:
        """Every study in worklist order."""
        q = (select(db.studies.c.id, db.studies.c.position, db.studies.c.study_uid,
                    db.studies.c.name, db.studies.c.locations, db.sources.c.kind,
                    db.studies.c.attributes)
             .join(db.sources, db.sources.c.id == db.studies.c.source_id)
             .order_by(db.studies.c.position))
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        return [StudyInfo(id=r[0], index=n, uid=r[2], name=r[3],
                          locations=tuple(json.loads(r[4])), kind=r[5],
                          attributes=json.loads(r[6]))
                for n, r in enumerate(rows)]

    def __len__(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(db.studies)).scalar() or 0)

    def study(self, key: int | str | StudyInfo) -> StudyInfo:
        """A study by worklist index (0-based), StudyInstanceUID or name."""
        if isinstance(key, StudyInfo):
            return key
        found = self.studies()
        if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
            index = int(key)
            if 0 <= index < len(found):
                return found[index]
            raise ProjectError(f"no study number {index} in {self.name}: the project has "
                               f"{len(found)} studies (0-{len(found) - 1})")
        text = str(key).strip()
        for s in found:
            if s.uid == text:
                return s
        named = [s for s in found if s.name == text]
        if len(named) == 1:
            return named[0]
        raise ProjectError(f"no study {text!r} in {self.name} (give its worklist index, "
                           "StudyInstanceUID or name)")

    def series(self, study: int | str | StudyInfo) -> list[SeriesInfo]:
        """The series of a study, indexing it first if it came from a PACS and was not."""
        info = self.study(study)
        rows = self._series_rows(info.id)
        if not rows and info.kind == "pacs":
            self.index_study(info)
            rows = self._series_rows(info.id)
        return rows

    def _series_rows(self, study_id: int) -> list[SeriesInfo]:
        t = db.series.c
        q = (select(t.id, t.position, t.series_uid, t.name, t.number, t.modality,
                    t.sop_class_uid, t.folder, t.acquisition_plane, t.plane_sizes, t.n_images)
             .where(t.study_id == study_id).order_by(t.position))
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        return [SeriesInfo(id=r[0], position=r[1], uid=r[2], name=r[3], number=r[4],
                           modality=r[5], sop_class_uid=r[6], folder=r[7],
                           acquisition_plane=r[8], plane_sizes=json.loads(r[9]),
                           n_images=r[10]) for r in rows]

    def find_series(self, study: int | str | StudyInfo,
                    key: int | str | None = None) -> SeriesInfo:
        """A series by index in the study, SeriesInstanceUID or name; None = the largest."""
        info = self.study(study)
        found = self.series(info)
        if not found:
            raise ProjectError(f"study {info.index} ({info.name}) has no image series")
        if key is None:
            return max(found, key=lambda s: (s.n_images, -s.position))
        if isinstance(key, int) or str(key).strip().isdigit():
            index = int(key)
            if 0 <= index < len(found):
                return found[index]
            raise ProjectError(f"study {info.index} ({info.name}) has no series number "
                               f"{index}: it has {len(found)} (0-{len(found) - 1})")
        for s in found:
            if key in (s.uid, s.name):
                return s
        raise ProjectError(f"study {info.index} ({info.name}) has no series {key!r}")

    def series_for(self, study: int | str | StudyInfo, series_uid: str,
                   name: str = "") -> SeriesInfo | None:
        """The stored series matching a loaded one (UID and name, else UID alone)."""
        found = [s for s in self.series(study) if s.uid == series_uid]
        exact = [s for s in found if s.name == name]
        return (exact or found or [None])[0]

    # -- images on disk ------------------------------------------------------------------
    def check_locations(self, study: int | str | StudyInfo) -> None:
        """Raise naming the folder or file when a study's images are no longer where they were."""
        info = self.study(study)
        if info.kind == "pacs":
            return
        for location in info.locations:
            if not Path(location).exists():
                raise ProjectError(
                    f"study {info.index} ({info.name}): its images were in {location}, which "
                    "no longer exists; was it moved or renamed? Put it back, or record the "
                    "new place with 'mprviewer project add' on the folder that now holds it "
                    "(the project references images where they are; it does not copy them)")

    def open_study(self, study: int | str | StudyInfo, progress: Any = None,
                   cancel: Any = None) -> Any:
        """The study's images as a ``mprviewer`` Study (headers scanned, no pixels yet)."""
        from mprviewer.io.study import open_study

        info = self.study(study)
        self.check_locations(info)
        if info.kind == "pacs":
            from mprviewer.project.remote import retrieve_study

            folder = retrieve_study(info, progress=progress, cancel=cancel)
            opened = open_study(folder, progress=progress, cancel=cancel)
        else:
            locations = list(info.locations)
            opened = open_study(locations[0] if len(locations) == 1 else locations,
                                progress=progress, cancel=cancel)
        mine = [s for s in opened.series if s.study_uid == info.uid]
        if mine and len(mine) != len(opened.series):
            opened.series = mine
            opened.uid = info.uid
        return opened

    def index_study(self, study: int | str | StudyInfo) -> list[SeriesInfo]:
        """Record the series and images of a study added from a PACS (retrieving it)."""
        from mprviewer.project.indexer import StudyRecord, series_record

        info = self.study(study)
        if self._series_rows(info.id):
            return self._series_rows(info.id)
        with self.open_study(info) as opened:
            record = StudyRecord(uid=info.uid, name=info.name, locations=list(info.locations),
                                 attributes=info.attributes)
            root = str(opened.root_folder or "")
            record.series = [series_record(s, root) for s in opened.series]
        with self.store.write() as conn:
            if not conn.execute(select(db.series.c.id).where(
                    db.series.c.study_id == info.id)).first():
                self._insert_series(conn, info.id, record)
        return self._series_rows(info.id)

    # -- events --------------------------------------------------------------------------
    def _append(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        stamp = now()
        for row in rows:
            row.setdefault("event_uid", uuid.uuid4().hex)
            row.setdefault("time", stamp)
            for key in ("series_id", "label", "plane", "slices", "status", "reason"):
                row.setdefault(key, None)
        conn.execute(insert(db.events), rows)

    def _resolve_mark(self, study: int | str | StudyInfo, label: str, slices: Any,
                      series: int | str | SeriesInfo | None, plane: str | None,
                      ) -> tuple[StudyInfo, SeriesInfo, str, str, list[int]]:
        info = self.study(study)
        ser = series if isinstance(series, SeriesInfo) else self.find_series(info, series)
        key = self.label_set.check_markable(label)
        plane = (plane or ser.acquisition_plane).strip().lower()
        if plane not in PLANES:
            raise ProjectError(f"unknown plane {plane!r}: use axial, coronal or sagittal")
        try:
            numbers = parse_slices(slices) if isinstance(slices, str) else normalize_slices(
                int(s) for s in slices)
        except (AnnotationError, TypeError, ValueError) as exc:
            raise ProjectError(f"slices {slices!r}: {exc}") from None
        if not numbers:
            raise ProjectError("no slices given (write them like '0-3; 9')")
        size = int(ser.plane_sizes.get(plane, 0))
        bad = [s for s in numbers if s >= size]
        if bad:
            raise ProjectError(
                f"slice {bad[0]} is outside the {plane} slices of series {ser.name!r} of study "
                f"{info.index} ({info.name}): it has {size} (0-{size - 1})")
        return info, ser, key, plane, numbers

    def mark(self, study: int | str | StudyInfo, label: str, slices: str | Iterable[int],
             reader: str, *, series: int | str | SeriesInfo | None = None,
             plane: str | None = None, unmark: bool = False) -> Mark:
        """Add (or with ``unmark`` remove) marks; return the reader's marks of that label now.

        A mark on a study the reader had closed as "no finding" reopens it (in progress).
        """
        reader = check_reader(reader)
        info, ser, key, plane, numbers = self._resolve_mark(study, label, slices, series, plane)
        with self.store.write() as conn:
            status, _reason = self._status_in(conn, info.id, reader)
            rows = [{"reader": reader, "study_id": info.id, "series_id": ser.id,
                     "action": "unmark" if unmark else "mark", "label": key, "plane": plane,
                     "slices": format_slices(numbers)}]
            if not unmark and status == "no finding":
                rows.append({"reader": reader, "study_id": info.id, "action": "status",
                             "status": "in progress"})
            self._append(conn, rows)
            marks = self._marks_in(conn, study_id=info.id, reader=reader)
        current = marks.get((info.id, reader, ser.id, key, plane), set())
        return Mark(reader, info.id, ser.id, key, plane, tuple(sorted(current)))

    def unmark(self, study: int | str | StudyInfo, label: str, slices: str | Iterable[int],
               reader: str, *, series: int | str | SeriesInfo | None = None,
               plane: str | None = None) -> Mark:
        """Remove marks (slices not marked are ignored)."""
        return self.mark(study, label, slices, reader, series=series, plane=plane, unmark=True)

    def toggle(self, study: int | str | StudyInfo, label: str, slice_number: int, reader: str,
               *, series: int | str | SeriesInfo | None = None,
               plane: str | None = None) -> bool:
        """Mark one slice, or unmark it when the reader had marked it; True when now marked.

        Reading the current state and appending the event happen in one write transaction,
        so two toggles from two windows cannot both see the old state.
        """
        reader = check_reader(reader)
        info, ser, key, plane, numbers = self._resolve_mark(study, label, [slice_number],
                                                            series, plane)
        with self.store.write() as conn:
            marks = self._marks_in(conn, study_id=info.id, reader=reader)
            on = numbers[0] in marks.get((info.id, reader, ser.id, key, plane), set())
            status, _reason = self._status_in(conn, info.id, reader)
            rows = [{"reader": reader, "study_id": info.id, "series_id": ser.id,
                     "action": "unmark" if on else "mark", "label": key, "plane": plane,
                     "slices": str(numbers[0])}]
            if not on and status == "no finding":
                rows.append({"reader": reader, "study_id": info.id, "action": "status",
                             "status": "in progress"})
            self._append(conn, rows)
        return not on

    def set_status(self, study: int | str | StudyInfo, reader: str, status: str,
                   reason: str = "") -> None:
        """Record a reader's status for a study; "unreadable" needs a reason.

        "no finding" is refused while the reader has marks on the study (unmark them, or
        use "done").
        """
        reader = check_reader(reader)
        info = self.study(study)
        status = status.strip().lower().replace("_", " ").replace("-", " ")
        if status not in STATUSES:
            raise ProjectError(f"unknown status {status!r}: use {', '.join(STATUSES)}")
        reason = " ".join(str(reason or "").split())
        if status == "unreadable" and not reason:
            raise ProjectError("'unreadable' needs a reason (what is wrong with the study)")
        with self.store.write() as conn:
            if status == "no finding":
                marks = self._marks_in(conn, study_id=info.id, reader=reader)
                count = sum(len(v) for v in marks.values())
                if count:
                    raise ProjectError(
                        f"study {info.index} ({info.name}) has {count} marked slices by "
                        f"{reader}; 'no finding' would contradict them: unmark them first, "
                        "or mark the study done")
            self._append(conn, [{"reader": reader, "study_id": info.id, "action": "status",
                                 "status": status, "reason": reason or None}])

    # -- derived state -------------------------------------------------------------------
    @staticmethod
    def _replay(rows: Iterable[Any]) -> dict[tuple[int, str, int, str, str], set[int]]:
        """Current marks from mark/unmark events in log order."""
        marks: dict[tuple[int, str, int, str, str], set[int]] = defaultdict(set)
        for study_id, reader, series_id, action, label, plane, slices in rows:
            key = (study_id, reader, series_id, label, plane)
            numbers = parse_slices(slices or "")
            if action == "mark":
                marks[key].update(numbers)
            else:
                marks[key].difference_update(numbers)
        return {k: v for k, v in marks.items() if v}

    def _marks_in(self, conn: Any, study_id: int | None = None,
                  reader: str | None = None) -> dict[tuple[int, str, int, str, str], set[int]]:
        e = db.events.c
        q = (select(e.study_id, e.reader, e.series_id, e.action, e.label, e.plane, e.slices)
             .where(e.action.in_(("mark", "unmark"))).order_by(e.id))
        if study_id is not None:
            q = q.where(e.study_id == study_id)
        if reader is not None:
            q = q.where(e.reader == reader)
        return self._replay(conn.execute(q))

    def marks(self, study: int | str | StudyInfo | None = None,
              reader: str | None = None) -> list[Mark]:
        """Current marks (of one study and/or reader), derived from the event log."""
        study_id = None if study is None else self.study(study).id
        with self.store.read() as conn:
            found = self._marks_in(conn, study_id=study_id, reader=reader)
        return [Mark(r, st, se, label, plane, tuple(sorted(v)))
                for (st, r, se, label, plane), v in sorted(found.items(),
                                                           key=lambda kv: kv[0])]

    def _status_in(self, conn: Any, study_id: int, reader: str) -> tuple[str, str]:
        e = db.events.c
        row = conn.execute(select(e.status, e.reason).where(
            e.study_id == study_id, e.reader == reader, e.action == "status"
        ).order_by(e.id.desc()).limit(1)).first()
        if row is not None:
            return str(row[0]), str(row[1] or "")
        any_event = conn.execute(select(e.id).where(e.study_id == study_id,
                                                    e.reader == reader).limit(1)).first()
        return ("in progress" if any_event else "unread"), ""

    def status(self, study: int | str | StudyInfo, reader: str) -> tuple[str, str]:
        """(status, reason) of a study for a reader."""
        info = self.study(study)
        with self.store.read() as conn:
            return self._status_in(conn, info.id, check_reader(reader))

    def statuses(self) -> dict[int, dict[str, tuple[str, str]]]:
        """study id -> reader -> (status, reason), for every reader with events."""
        e = db.events.c
        last = (select(func.max(e.id)).where(e.action == "status")
                .group_by(e.study_id, e.reader))
        with self.store.read() as conn:
            explicit = conn.execute(select(e.study_id, e.reader, e.status, e.reason)
                                    .where(e.id.in_(last))).all()
            active = conn.execute(select(e.study_id, e.reader).distinct()).all()
            ids = [r[0] for r in conn.execute(select(db.studies.c.id))]
        readers = sorted({r[1] for r in active})
        out: dict[int, dict[str, tuple[str, str]]] = {i: {r: ("unread", "") for r in readers}
                                                      for i in ids}
        for study_id, reader in active:
            out[study_id][reader] = ("in progress", "")
        for study_id, reader, status, reason in explicit:
            out[study_id][reader] = (str(status), str(reason or ""))
        return out

    def readers(self) -> list[str]:
        """Everyone who has recorded anything in this project."""
        with self.store.read() as conn:
            return sorted(r[0] for r in conn.execute(select(db.events.c.reader).distinct()))

    def summary(self) -> dict[str, Any]:
        """Counts per reader and status, and one row per study (``project status --json``)."""
        statuses = self.statuses()
        readers = self.readers()
        counts = {r: dict.fromkeys(STATUSES, 0) for r in readers}
        rows = []
        for info in self.studies():
            per = statuses.get(info.id, {})
            for r in readers:
                counts[r][per.get(r, ("unread", ""))[0]] += 1
            rows.append({"index": info.index, "study_uid": info.uid, "name": info.name,
                         "statuses": {r: per[r][0] for r in readers if r in per}})
        return {"studies": rows, "counts": counts}

    def worklist(self, reader: str) -> list[dict[str, Any]]:
        """One row per study for a worklist view: index, name, uid, the reader's status and
        reason, and how many slices the reader has marked."""
        reader = check_reader(reader)
        statuses = self.statuses()
        marked: dict[int, int] = defaultdict(int)
        with self.store.read() as conn:
            for (study_id, *_rest), slices in self._marks_in(conn, reader=reader).items():
                marked[study_id] += len(slices)
        rows = []
        for info in self.studies():
            status, reason = statuses.get(info.id, {}).get(reader, ("unread", ""))
            rows.append({"index": info.index, "name": info.name, "study_uid": info.uid,
                         "status": status, "reason": reason, "marks": marked[info.id]})
        return rows

    def next_study(self, reader: str, after: int | None = None,
                   backwards: bool = False, unread_only: bool = True) -> StudyInfo | None:
        """The next study (after worklist index ``after``) the reader has not finished.

        Studies done, with no finding or unreadable are skipped; with ``unread_only`` False
        every study counts. The search wraps round the end of the list once.
        """
        studies = self.studies()
        if not studies:
            return None
        statuses = self.statuses()
        n = len(studies)
        start = (-1 if not backwards else n) if after is None else after
        for step in range(1, n + 1):
            index = (start - step if backwards else start + step) % n
            info = studies[index]
            if after is not None and index == after:
                continue
            status = statuses.get(info.id, {}).get(reader, ("unread", ""))[0]
            if not unread_only or status in ("unread", "in progress"):
                return info
        return None

    def events(self, study: int | str | StudyInfo | None = None) -> list[dict[str, Any]]:
        """The event log, oldest first, with study and series UIDs."""
        e, s, se = db.events.c, db.studies.c, db.series.c
        q = (select(e.id, e.event_uid, e.time, e.reader, s.study_uid, se.series_uid, se.name,
                    e.action, e.label, e.plane, e.slices, e.status, e.reason)
             .join(db.studies, db.studies.c.id == e.study_id)
             .outerjoin(db.series, db.series.c.id == e.series_id)
             .order_by(e.id))
        if study is not None:
            q = q.where(e.study_id == self.study(study).id)
        keys = ("id", "event_uid", "time", "reader", "study_uid", "series_uid", "series_name",
                "action", "label", "plane", "slices", "status", "reason")
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        return [{k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in rows]

    # -- exports -------------------------------------------------------------------------
    def export(self, fmt: str, out: str | os.PathLike[str], reader: str | None = None,
               overwrite: bool = False) -> Any:
        """Write ``csv``, ``original``, ``full`` or ``sr`` (see mprviewer.project.exports)."""
        from mprviewer.project.exports import export

        return export(self, fmt, out, reader=reader, overwrite=overwrite)
