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
from mprviewer.project.common import FINISHED, PLANES, STATUSES, Mark, atomic_write_text, now
from mprviewer.project.offline import OfflineQueue

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

    def __init__(self, folder: Path, settings: dict[str, Any], url: str | None = None) -> None:
        self.folder = folder
        self.settings = settings
        self.store = db.Store(url or self._db_url(), label=str(folder))
        self._label_set: LabelSet | None = None
        self._studies_cache: list[StudyInfo] | None = None
        self._series_cache: dict[int, list[SeriesInfo]] = {}
        self._known_marks: dict[tuple[int, str], dict[Any, set[int]]] = {}
        self._last_rows: dict[str, list[dict[str, Any]]] = {}
        self.queue = OfflineQueue(folder) if self.store.postgres else None
        if self.queue is not None and self._setting("label_set") is not None:
            _ = self.label_set  # kept in memory: marking goes on when the database is away
            self.studies()
            self._warm_series()
            if self.queue.path.exists():  # changes kept while the database was away
                try:
                    self.send_queue()
                except Exception as exc:
                    if not self._offline_ok(exc):
                        raise

    def _warm_series(self) -> None:
        """Every study's series in memory (one query), for marking while offline."""
        t = db.series.c
        with self.store.read() as conn:
            rows = conn.execute(select(t.study_id, t.id, t.position, t.series_uid, t.name,
                                       t.number, t.modality, t.sop_class_uid, t.folder,
                                       t.acquisition_plane, t.plane_sizes, t.n_images)
                                .order_by(t.study_id, t.position)).all()
        cache: dict[int, list[SeriesInfo]] = defaultdict(list)
        for r in rows:
            cache[r[0]].append(SeriesInfo(id=r[1], position=r[2], uid=r[3], name=r[4],
                                          number=r[5], modality=r[6], sop_class_uid=r[7],
                                          folder=r[8], acquisition_plane=r[9],
                                          plane_sizes=json.loads(r[10]), n_images=r[11]))
        self._series_cache.update(cache)

    # -- opening and creating ------------------------------------------------------------
    def _db_url(self) -> str:
        url = str(self.settings.get("database", DB_FILE))
        if "://" in url:
            return url
        return db.sqlite_url(self.folder / url)

    @property
    def shared(self) -> bool:
        """True when the labels live in a shared PostgreSQL database."""
        return self.store.postgres

    @property
    def database(self) -> str:
        """Where the labels are: the SQLite file, or the server's address without password."""
        return db.public_url(self.store.url) if self.shared else str(self.folder / DB_FILE)

    def default_reader(self) -> str:
        """On a shared project the reader is the database role; else $MPRVIEWER_READER or
        the login name."""
        return self.store.user if self.shared and self.store.user else default_reader()

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
        database: str | None = None,
    ) -> Project:
        """Make a project in ``folder`` (new or empty) and add the studies of ``sources``.

        ``labels`` is a built-in set name (``ich``, ``anomaly``), a label set file or a
        LabelSet. ``pacs`` holds (server, StudyQuery) pairs whose matches are added.
        ``database`` is a ``postgresql://USER@HOST:PORT/DB`` address of an empty database
        for a shared project (default: a SQLite file in the folder); a password in it is
        used for this call only, the folder keeps the address without it.
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
        if database is not None and not db.is_postgres(database):
            raise ProjectError(f"--db {db.public_url(database)!r}: give a PostgreSQL address "
                               "like postgresql://USER@HOST:PORT/DATABASE (without --db the "
                               "labels are kept in the project folder)")
        if database is not None:
            _check_empty_database(database, str(folder))
        path.mkdir(parents=True, exist_ok=True)
        settings = {"format": FOLDER_FORMAT, "version": 1, "name": name or path.name,
                    "database": db.public_url(database) if database else DB_FILE,
                    "created": now()}
        project = cls(path.resolve(), settings, url=database)
        with project.store.write() as conn:
            conn.execute(insert(db.settings), [
                {"key": "label_set", "value": json.dumps(label_set.as_dict())},
                {"key": "name", "value": settings["name"]},
                {"key": "created", "value": settings["created"]},
            ])
        atomic_write_text(path / FOLDER_FILE, json.dumps(settings, indent=2) + "\n")
        project.last_report = project._add_plans(plans, pacs, step)
        return project

    @classmethod
    def join(cls, url: str, folder: str | os.PathLike[str]) -> Project:
        """Make ``folder`` (new or empty) a reader's way into the shared project at ``url``:
        it holds the settings and the address (never a password), no labels."""
        if not db.is_postgres(url):
            raise ProjectError(f"{db.public_url(url)!r}: join a shared project by its "
                               "postgresql://USER@HOST:PORT/DATABASE address")
        path = Path(folder).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ProjectError(f"{folder}: give a new or empty folder to join the project in")
        store = db.Store(url, label=db.public_url(url), upgrade=False)
        try:
            with store.read() as conn:
                if store.revision(conn) is None:
                    raise ProjectError(f"{db.public_url(url)}: holds no mprviewer project "
                                       "(make one with 'mprviewer project create DIR --db')")
                rows = dict(conn.execute(select(db.settings.c.key, db.settings.c.value)).all())
        finally:
            store.dispose()
        if "label_set" not in rows:
            raise ProjectError(f"{db.public_url(url)}: the project was not created completely "
                               "(it holds no label set)")
        path.mkdir(parents=True, exist_ok=True)
        settings = {"format": FOLDER_FORMAT, "version": 1,
                    "name": rows.get("name") or path.name,
                    "database": db.public_url(url), "created": rows.get("created") or now(),
                    "joined": now()}
        atomic_write_text(path / FOLDER_FILE, json.dumps(settings, indent=2) + "\n")
        return cls(path.resolve(), settings, url=url)

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
        try:
            with self.store.read() as conn:
                rows = conn.execute(q).all()
        except Exception as exc:
            if not self._offline_ok(exc):
                raise
            if self._studies_cache is not None:
                return list(self._studies_cache)  # the database is away: the last list seen
            raise self._unreachable(exc) from None
        found = [StudyInfo(id=r[0], index=n, uid=r[2], name=r[3],
                           locations=tuple(json.loads(r[4])), kind=r[5],
                           attributes=json.loads(r[6]))
                 for n, r in enumerate(rows)]
        self._studies_cache = found
        return list(found)

    def __len__(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(db.studies)).scalar() or 0)

    def study(self, key: int | str | StudyInfo) -> StudyInfo:
        """A study by worklist index (0-based), StudyInstanceUID or name."""
        if isinstance(key, StudyInfo):
            return key
        if self.queue is not None and self._studies_cache:
            # shared: studies are only ever appended, so a study found in the list last
            # read is still the same one (no round trip per mark)
            hit = _find_study(self._studies_cache, key)
            if hit is not None:
                return hit
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

    def _study_by_id(self, study_id: int) -> StudyInfo:
        for info in self.studies():
            if info.id == study_id:
                return info
        raise ProjectError(f"no study with id {study_id} in {self.name}")

    # -- readers and assignments ---------------------------------------------------------
    def assign(self, readers: Sequence[str], per_study: int, seed: int | None = None,
               adjudicators: Sequence[str] = ()) -> dict[str, int]:
        """Give every study not yet assigned to ``per_study`` of ``readers``, balanced (each
        reader's count differs by at most one from the others', counting earlier
        assignments); returns the number of studies per reader. On a shared project each
        reader and adjudicator gets a database role (without a password: the server's
        administrator sets one) with the rights the blinding policies allow."""
        import random

        names = [check_reader(r) for r in readers]
        if not names:
            raise ProjectError("give the readers: --readers A,B,C")
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ProjectError(f"reader {twice[0]!r} is named twice in --readers")
        if not 1 <= per_study <= len(names):
            raise ProjectError(f"--per-study {per_study}: give 1 to {len(names)} (the number "
                               "of readers)")
        judges = [check_reader(a) for a in adjudicators]
        if self.shared:
            self._check_owner("assign readers")
        rng = random.Random(seed)
        stamp = now()
        a = db.assignments.c
        with self.store.write() as conn:
            done = conn.execute(select(a.study_id, a.reader)).all()
            load = dict.fromkeys(names, 0)
            for _study_id, reader in done:
                if reader in load:
                    load[reader] += 1
            taken = {r[0] for r in done}
            todo = [r[0] for r in conn.execute(select(db.studies.c.id)
                                               .order_by(db.studies.c.position))
                    if r[0] not in taken]
            rng.shuffle(todo)
            rows = []
            for study_id in todo:
                order = list(names)
                rng.shuffle(order)  # ties go to a random reader, not the first named
                chosen = sorted(order, key=lambda n: load[n])[:per_study]
                for reader in chosen:
                    load[reader] += 1
                    rows.append({"study_id": study_id, "reader": reader, "assigned": stamp})
            if rows:
                conn.execute(insert(db.assignments), rows)
            known = {r[0] for r in conn.execute(select(db.members.c.name))}
            fresh = [{"name": j, "role": "adjudicator"} for j in judges if j not in known]
            if fresh:
                conn.execute(insert(db.members), fresh)
            if self.shared:
                self._grant(conn, [*names, *judges])
        return load

    def _check_owner(self, what: str) -> None:
        """Refuse, in one line, what only the role owning the project's tables may do."""
        from sqlalchemy import text

        with self.store.read() as conn:
            owner = conn.execute(text(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'events' "
                "AND schemaname = current_schema()")).scalar()
            mine = conn.execute(text("SELECT pg_has_role(current_user, :o, 'USAGE')"),
                                {"o": owner}).scalar() if owner else False
        if not mine:
            raise ProjectError(f"only the project's owner ({owner}) can {what}; "
                               f"{self.store.user} is a reader")

    def _grant(self, conn: Any, roles: Iterable[str]) -> None:
        """A login role per reader with read access to the project and INSERT on events
        (row-level security decides which rows); no UPDATE or DELETE anywhere."""
        from sqlalchemy import text

        database = conn.execute(text("SELECT current_database()")).scalar()
        tables = ", ".join(t.name for t in db.metadata.sorted_tables if t.name != "events")
        for role in dict.fromkeys(roles):
            quoted = '"' + role.replace('"', '""') + '"'
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                  {"r": role}).first()
            if not exists:
                conn.execute(text(f"CREATE ROLE {quoted} LOGIN"))
            db_name = '"' + str(database).replace('"', '""') + '"'
            conn.execute(text(f"GRANT CONNECT ON DATABASE {db_name} TO {quoted}"))
            conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
            conn.execute(text(f"GRANT SELECT ON {tables}, alembic_version TO {quoted}"))
            conn.execute(text(f"GRANT SELECT, INSERT ON events TO {quoted}"))
            conn.execute(text(f"GRANT USAGE ON SEQUENCE events_id_seq TO {quoted}"))

    def assignments(self) -> dict[int, list[str]]:
        """study id -> the readers it is assigned to (empty when nothing is assigned)."""
        a = db.assignments.c
        out: dict[int, list[str]] = defaultdict(list)
        with self.store.read() as conn:
            for study_id, reader in conn.execute(select(a.study_id, a.reader).order_by(a.id)):
                out[study_id].append(reader)
        return dict(out)

    def assigned(self, reader: str) -> set[int] | None:
        """Ids of the studies assigned to ``reader``; None when the project assigns nothing
        (then every reader reads every study)."""
        found = self.assignments()
        if not found:
            return None
        return {study_id for study_id, names in found.items() if reader in names}

    def adjudicators(self) -> list[str]:
        with self.store.read() as conn:
            return sorted(r[0] for r in conn.execute(
                select(db.members.c.name).where(db.members.c.role == "adjudicator")))

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
        try:
            with self.store.read() as conn:
                rows = conn.execute(q).all()
        except Exception as exc:
            if not self._offline_ok(exc):
                raise
            if study_id in self._series_cache:
                return list(self._series_cache[study_id])
            raise self._unreachable(exc) from None
        found = [SeriesInfo(id=r[0], position=r[1], uid=r[2], name=r[3], number=r[4],
                            modality=r[5], sop_class_uid=r[6], folder=r[7],
                            acquisition_plane=r[8], plane_sizes=json.loads(r[9]),
                            n_images=r[10]) for r in rows]
        self._series_cache[study_id] = found
        return list(found)

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
    def _offline_ok(self, exc: BaseException) -> bool:
        """True when ``exc`` means the shared database is unreachable (queue the change)."""
        return self.queue is not None and db.is_disconnect(exc)

    def _unreachable(self, exc: BaseException) -> ProjectError:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        return ProjectError(f"{self.name}: the database {self.database} cannot be reached "
                            f"({first[0] if first else type(exc).__name__})")

    @staticmethod
    def _stamp(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give rows their event ids and time now, so a resend is recognised."""
        stamp = now()
        for row in rows:
            row.setdefault("event_uid", uuid.uuid4().hex)
            row.setdefault("time", stamp)
            for key in ("series_id", "label", "plane", "slices", "status", "reason", "stage"):
                row.setdefault(key, None)
        return rows

    def _record(self, main: list[dict[str, Any]], build: Callable[[Any], list[dict[str, Any]]],
                ) -> bool:
        """Append ``build(conn)`` (``main`` plus what the current state adds) in one write
        transaction; when the shared database is unreachable keep ``main`` in the offline
        queue instead. True when stored now, False when queued."""
        self._stamp(main)
        if self.queue is not None and self.queue.path.exists():
            try:
                self.send_queue()
            except Exception as exc:
                if not self._offline_ok(exc):
                    raise
        if self.queue is not None and self.queue.path.exists() and self.queue.pending():
            self.queue.put(main)  # earlier changes still wait: keep the order
            return False
        try:
            with self.store.write() as conn:
                self._append(conn, self._stamp(build(conn)))
            return True
        except Exception as exc:
            if not self._offline_ok(exc):
                raise
        self.queue.put(main)  # type: ignore[union-attr]
        return False

    def send_queue(self) -> int:
        """Send the changes kept while the database was away (in order, each once); returns
        how many were sent. Raises when the database is still unreachable."""
        if self.queue is None:
            return 0
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        def deliver(rows: list[dict[str, Any]]) -> None:
            with self.store.write() as conn:
                conn.execute(pg_insert(db.events).values(rows)
                             .on_conflict_do_nothing(index_elements=["event_uid"]))

        def refused(exc: BaseException) -> bool:
            return not db.is_disconnect(exc)

        return self.queue.send(deliver, refused)

    def pending(self) -> int:
        """Changes waiting in the offline queue for the database."""
        return 0 if self.queue is None else len(self.queue)

    def conflicts(self) -> list[list[dict[str, Any]]]:
        """Queued changes the database refused when they were sent (shown, never dropped)."""
        return [] if self.queue is None else self.queue.conflicts()

    def _offline_marks(self, study_id: int, reader: str) -> dict[Any, set[int]]:
        """The reader's marks of a study as last seen, with the queued changes applied."""
        marks = {k: set(v) for k, v in self._known_marks.get((study_id, reader), {}).items()}
        rows = [(r["study_id"], r["reader"], r["series_id"], r["action"], r["label"],
                 r["plane"], r["slices"])
                for change in (self.queue.pending() if self.queue else [])
                for r in change if r["action"] in ("mark", "unmark") and
                r["study_id"] == study_id and r["reader"] == reader and r.get("stage") is None]
        for key, numbers in self._replay(rows, marks).items():
            marks[key] = numbers
        return {k: v for k, v in marks.items() if v}

    def _append(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        stamp = now()
        for row in rows:
            row.setdefault("event_uid", uuid.uuid4().hex)
            row.setdefault("time", stamp)
            for key in ("series_id", "label", "plane", "slices", "status", "reason", "stage"):
                row.setdefault(key, None)
        from sqlalchemy.exc import ProgrammingError

        try:
            conn.execute(insert(db.events), rows)
        except ProgrammingError as exc:
            if "row-level security" not in str(exc):
                raise
            who = rows[0]["reader"]
            info = self._study_by_id(rows[0]["study_id"])
            raise ProjectError(
                f"the database refused {who!r}'s change on study {info.index} ({info.name}) "
                f"for {self.store.user}: a reader writes only in their own name, on studies "
                "assigned to them and not yet closed for adjudication") from None

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
        main = [{"reader": reader, "study_id": info.id, "series_id": ser.id,
                 "action": "unmark" if unmark else "mark", "label": key, "plane": plane,
                 "slices": format_slices(numbers)}]
        before: dict[Any, set[int]] = {}

        def build(conn: Any) -> list[dict[str, Any]]:
            status, _reason = self._status_in(conn, info.id, reader)
            before.clear()
            before.update(self._marks_in(conn, study_id=info.id, reader=reader))
            rows = list(main)
            if not unmark and status == "no finding":
                rows.append({"reader": reader, "study_id": info.id, "action": "status",
                             "status": "in progress"})
            return rows

        if self._record(main, build):  # the marks now: those before and this change
            row = main[0]
            seen = self._replay([(info.id, reader, ser.id, row["action"], key, plane,
                                  row["slices"])], before)
            self._known_marks[(info.id, reader)] = seen
        else:
            seen = self._offline_marks(info.id, reader)
        current = seen.get((info.id, reader, ser.id, key, plane), set())
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
        where = (info.id, reader, ser.id, key, plane)
        offline_on = numbers[0] in self._offline_marks(info.id, reader).get(where, set())
        main = [{"reader": reader, "study_id": info.id, "series_id": ser.id,
                 "action": "unmark" if offline_on else "mark", "label": key, "plane": plane,
                 "slices": str(numbers[0])}]
        state = {"on": offline_on}

        def build(conn: Any) -> list[dict[str, Any]]:
            marks = self._marks_in(conn, study_id=info.id, reader=reader)
            on = numbers[0] in marks.get(where, set())
            state["on"] = on
            status, _reason = self._status_in(conn, info.id, reader)
            rows = [dict(main[0], action="unmark" if on else "mark")]
            if not on and status == "no finding":
                rows.append({"reader": reader, "study_id": info.id, "action": "status",
                             "status": "in progress"})
            marks.setdefault(where, set())
            (marks[where].discard if on else marks[where].add)(numbers[0])
            self._known_marks[(info.id, reader)] = marks
            return rows

        self._record(main, build)
        return not state["on"]

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
        def refuse(marks: dict[Any, set[int]]) -> None:
            count = sum(len(v) for v in marks.values())
            if status == "no finding" and count:
                raise ProjectError(
                    f"study {info.index} ({info.name}) has {count} marked slices by "
                    f"{reader}; 'no finding' would contradict them: unmark them first, "
                    "or mark the study done")

        main = [{"reader": reader, "study_id": info.id, "action": "status",
                 "status": status, "reason": reason or None}]

        def build(conn: Any) -> list[dict[str, Any]]:
            refuse(self._marks_in(conn, study_id=info.id, reader=reader))
            return main

        if self.queue is not None:
            refuse(self._offline_marks(info.id, reader))
        self._record(main, build)

    # -- derived state -------------------------------------------------------------------
    @staticmethod
    def _replay(rows: Iterable[Any], start: dict[Any, set[int]] | None = None,
                ) -> dict[tuple[int, str, int, str, str], set[int]]:
        """Current marks from mark/unmark events in log order (after ``start``)."""
        marks: dict[tuple[int, str, int, str, str], set[int]] = defaultdict(set)
        for key, numbers in (start or {}).items():
            marks[key] = set(numbers)
        for study_id, reader, series_id, action, label, plane, slices in rows:
            key = (study_id, reader, series_id, label, plane)
            numbers = parse_slices(slices or "")
            if action == "mark":
                marks[key].update(numbers)
            else:
                marks[key].difference_update(numbers)
        return {k: v for k, v in marks.items() if v}

    def _marks_in(self, conn: Any, study_id: int | None = None, reader: str | None = None,
                  stage: str | None = None) -> dict[tuple[int, str, int, str, str], set[int]]:
        e = db.events.c
        q = (select(e.study_id, e.reader, e.series_id, e.action, e.label, e.plane, e.slices)
             .where(e.action.in_(("mark", "unmark")), _stage(stage)).order_by(e.id))
        if study_id is not None:
            q = q.where(e.study_id == study_id)
        if reader is not None:
            q = q.where(e.reader == reader)
        return self._replay(conn.execute(q))

    def marks(self, study: int | str | StudyInfo | None = None,
              reader: str | None = None) -> list[Mark]:
        """Current marks (of one study and/or reader), derived from the event log."""
        study_id = None if study is None else self.study(study).id
        try:
            with self.store.read() as conn:
                found = self._marks_in(conn, study_id=study_id, reader=reader)
        except Exception as exc:
            if not (self._offline_ok(exc) and study_id is not None and reader is not None):
                raise
            found = self._offline_marks(study_id, reader)  # as last seen, with the queue
        else:
            if study_id is not None and reader is not None:
                self._known_marks[(study_id, reader)] = found
        return [Mark(r, st, se, label, plane, tuple(sorted(v)))
                for (st, r, se, label, plane), v in sorted(found.items(),
                                                           key=lambda kv: kv[0])]

    def _status_in(self, conn: Any, study_id: int, reader: str,
                   stage: str | None = None) -> tuple[str, str]:
        e = db.events.c
        row = conn.execute(select(e.status, e.reason).where(
            e.study_id == study_id, e.reader == reader, e.action == "status", _stage(stage)
        ).order_by(e.id.desc()).limit(1)).first()
        if row is not None:
            return str(row[0]), str(row[1] or "")
        any_event = conn.execute(select(e.id).where(e.study_id == study_id,
                                                    e.reader == reader, _stage(stage)
                                                    ).limit(1)).first()
        return ("in progress" if any_event else "unread"), ""

    def status(self, study: int | str | StudyInfo, reader: str) -> tuple[str, str]:
        """(status, reason) of a study for a reader."""
        info = self.study(study)
        reader = check_reader(reader)
        try:
            with self.store.read() as conn:
                return self._status_in(conn, info.id, reader)
        except Exception as exc:
            if not (self._offline_ok(exc) and reader in self._last_rows):
                raise
            queued = [r for change in self.queue.pending() for r in change  # type: ignore
                      if r["action"] == "status" and r["study_id"] == info.id
                      and r["reader"] == reader and r.get("stage") is None]
            if queued:
                return queued[-1]["status"], queued[-1].get("reason") or ""
            row = next((r for r in self._last_rows[reader] if r["study_uid"] == info.uid),
                       None)
            return (row["status"], row["reason"]) if row else ("unread", "")

    def statuses(self, stage: str | None = None) -> dict[int, dict[str, tuple[str, str]]]:
        """study id -> reader -> (status, reason), for every reader with events (with
        ``stage="final"``: the adjudicators' verdicts instead of the readings)."""
        e = db.events.c
        last = (select(func.max(e.id)).where(e.action == "status", _stage(stage))
                .group_by(e.study_id, e.reader))
        with self.store.read() as conn:
            explicit = conn.execute(select(e.study_id, e.reader, e.status, e.reason)
                                    .where(e.id.in_(last))).all()
            active = conn.execute(select(e.study_id, e.reader).where(_stage(stage))
                                  .distinct()).all()
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
            return sorted(r[0] for r in conn.execute(
                select(db.events.c.reader).where(_stage(None)).distinct()))

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
        try:
            return self._worklist_rows(reader)
        except Exception as exc:
            if not (self._offline_ok(exc) and reader in self._last_rows):
                raise
            return self._last_rows[reader]  # the database is away: the rows last seen

    def _worklist_rows(self, reader: str) -> list[dict[str, Any]]:
        statuses = self.statuses()
        mine = self.assigned(reader)
        marked: dict[int, int] = defaultdict(int)
        with self.store.read() as conn:
            for (study_id, *_rest), slices in self._marks_in(conn, reader=reader).items():
                marked[study_id] += len(slices)
        rows = []
        for info in self.studies():
            if mine is not None and info.id not in mine:
                continue
            status, reason = statuses.get(info.id, {}).get(reader, ("unread", ""))
            rows.append({"index": info.index, "name": info.name, "study_uid": info.uid,
                         "status": status, "reason": reason, "marks": marked[info.id]})
        self._last_rows[reader] = rows
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
        try:
            statuses = self.statuses()
            mine = self.assigned(reader)
        except Exception as exc:
            if not (self._offline_ok(exc) and reader in self._last_rows):
                raise
            rows = self._last_rows[reader]  # the database is away: the rows last seen
            by_uid = {s.uid: s.id for s in studies}
            statuses = {by_uid[r["study_uid"]]: {reader: (r["status"], r["reason"])}
                        for r in rows}
            mine = set(statuses)
        n = len(studies)
        start = (-1 if not backwards else n) if after is None else after
        for step in range(1, n + 1):
            index = (start - step if backwards else start + step) % n
            info = studies[index]
            if (after is not None and index == after) or (mine is not None
                                                          and info.id not in mine):
                continue
            status = statuses.get(info.id, {}).get(reader, ("unread", ""))[0]
            if not unread_only or status in ("unread", "in progress"):
                return info
        return None

    def events(self, study: int | str | StudyInfo | None = None) -> list[dict[str, Any]]:
        """The event log, oldest first, with study and series UIDs."""
        e, s, se = db.events.c, db.studies.c, db.series.c
        q = (select(e.id, e.event_uid, e.time, e.reader, s.study_uid, se.series_uid, se.name,
                    e.action, e.label, e.plane, e.slices, e.status, e.reason, e.stage)
             .join(db.studies, db.studies.c.id == e.study_id)
             .outerjoin(db.series, db.series.c.id == e.series_id)
             .order_by(e.id))
        if study is not None:
            q = q.where(e.study_id == self.study(study).id)
        keys = ("id", "event_uid", "time", "reader", "study_uid", "series_uid", "series_name",
                "action", "label", "plane", "slices", "status", "reason", "stage")
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        return [{k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in rows]

    # -- agreement and adjudication ------------------------------------------------------
    def agreement(self) -> dict[str, Any]:
        """Kappa, percent agreement and counts per label at image and study level (see
        mprviewer.project.agreement)."""
        from mprviewer.project.agreement import agreement

        return agreement(self)

    def adjudication(self) -> list[dict[str, Any]]:
        """Studies finished by all their readers on which they disagree (see
        mprviewer.project.adjudication.worklist)."""
        from mprviewer.project.adjudication import worklist

        return worklist(self)

    def _check_adjudicator(self, name: str) -> str:
        name = check_reader(name)
        judges = self.adjudicators()
        if judges and name not in judges:
            raise ProjectError(f"{name!r} is not an adjudicator of {self.name} (adjudicators: "
                               f"{', '.join(judges)}; name one with 'project assign "
                               "--adjudicator')")
        return name

    def adjudicate(self, study: int | str | StudyInfo, adjudicator: str, *,
                   label: str | None = None, slices: str | Iterable[int] | None = None,
                   series: int | str | SeriesInfo | None = None, plane: str | None = None,
                   unmark: bool = False, accept: str | None = None,
                   done: bool = False) -> None:
        """Record final labels: marks (``label``/``slices``, or ``unmark``), the result of a
        rule over the readings (``accept``: majority, union or reader:NAME; then done), or
        the verdict itself (``done``). Readings are never changed."""
        from mprviewer.project.adjudication import FINAL, by_rule, final_state

        judge = self._check_adjudicator(adjudicator)
        info = self.study(study)
        rows: list[dict[str, Any]] = []
        if accept is not None:
            found = by_rule(self, info, accept)
            if found is None:
                raise ProjectError(f"study {info.index} ({info.name}): the rule {accept!r} "
                                   "has no answer (that reader did not read it)")
            _statuses, current = final_state(self)
            for (st, se, lab, pl), sl in current.items():
                if st == info.id and sl:
                    rows.append({"series_id": se, "action": "unmark", "label": lab,
                                 "plane": pl, "slices": format_slices(sorted(sl))})
            for (se, lab, pl), sl in sorted(found.items()):
                rows.append({"series_id": se, "action": "mark", "label": lab, "plane": pl,
                             "slices": format_slices(sorted(sl))})
            done = True
        elif label is not None:
            _info, ser, key, pl, numbers = self._resolve_mark(info, label, slices or "",
                                                              series, plane)
            rows.append({"series_id": ser.id, "action": "unmark" if unmark else "mark",
                         "label": key, "plane": pl, "slices": format_slices(numbers)})
        if done:
            rows.append({"action": "status", "status": "done"})
        if not rows:
            raise ProjectError("nothing to record: give --label and --slices, --accept RULE "
                               "or --done")
        for row in rows:
            row.update(reader=judge, study_id=info.id, stage=FINAL)
        with self.store.write() as conn:
            self._append(conn, rows)

    # -- exports -------------------------------------------------------------------------
    def export(self, fmt: str, out: str | os.PathLike[str], reader: str | None = None,
               overwrite: bool = False, final: str | None = None) -> Any:
        """Write ``csv``, ``original``, ``full`` or ``sr`` (see mprviewer.project.exports);
        with ``final`` (a rule: majority, union, reader:NAME) the final labels: adjudicated
        ones where they exist, else the rule's over the readings."""
        from mprviewer.project.exports import export

        if final is None:
            return export(self, fmt, out, reader=reader, overwrite=overwrite)
        from mprviewer.project.adjudication import FINAL, FinalView

        if reader not in (None, FINAL):
            raise ProjectError("the final labels are nobody's in particular: give --final "
                               "without --reader")
        view: Any = FinalView(self, final)
        return export(view, fmt, out, reader=FINAL, overwrite=overwrite)


def _stage(stage: str | None) -> Any:
    """The condition selecting readings (None) or adjudicators' final labels ("final")."""
    column = db.events.c.stage
    return column.is_(None) if stage is None else column == stage


def _check_empty_database(url: str, label: str) -> None:
    """Refuse a database that already holds tables (another project, or anything else)."""
    from sqlalchemy import inspect

    store = db.Store(url, label=label, upgrade=False)
    try:
        with store.engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    finally:
        store.dispose()
    if "alembic_version" in tables or "events" in tables:
        raise ProjectError(f"{db.public_url(url)}: holds a project already; readers join it "
                           "with 'mprviewer project join URL DIR'")
    if tables:
        raise ProjectError(f"{db.public_url(url)}: the database is not empty ({len(tables)} "
                           "tables); give a new database for the project")


def _find_study(found: list[StudyInfo], key: int | str) -> StudyInfo | None:
    """A study of ``found`` by index or UID, None when it is not there."""
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        index = int(key)
        return found[index] if 0 <= index < len(found) else None
    text = str(key).strip()
    return next((s for s in found if s.uid == text), None)
