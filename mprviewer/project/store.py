"""The project's tables (SQLAlchemy Core) and the connection to them.

One schema for the embedded SQLite file and for a shared PostgreSQL server. Every change a
reader makes is a row of ``events`` (append-only: rows are inserted, never updated or
deleted); current marks and statuses are derived from them. ``studies``, ``series`` and
``images`` are the index written when studies are added (from headers only), so status and
exports never need the image files. The schema version is Alembic's (``migrations/``):
opening a project made by an older version upgrades it; one made by a newer version is
refused with a message instead of being damaged.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``, so two processes marking at once wait for each other instead of
failing or losing a mark.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine

from mprviewer.errors import ProjectError

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0002"
"""The newest schema revision this version writes (the last file of migrations/versions)."""
KNOWN_REVISIONS = ("0001", "0002")
BUSY_TIMEOUT_MS = 60_000

metadata = MetaData()

settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

sources = Table(
    "sources", metadata,
    Column("id", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("root", Text, nullable=False),
    Column("added", String(32), nullable=False),
)

studies = Table(
    "studies", metadata,
    Column("id", Integer, primary_key=True),
    Column("position", Integer, nullable=False, unique=True),
    Column("study_uid", String(64), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("locations", Text, nullable=False),  # JSON list of paths or URLs
    Column("attributes", Text, nullable=False),  # JSON: patient and study header values
    Column("added", String(32), nullable=False),
)

series = Table(
    "series", metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("series_uid", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("number", Integer),
    Column("modality", String(16), nullable=False),
    Column("sop_class_uid", String(64), nullable=False),
    Column("folder", Text, nullable=False),  # relative to the source's root
    Column("acquisition_plane", String(16), nullable=False),
    Column("plane_sizes", Text, nullable=False),  # JSON {"axial": n, ...}
    Column("n_images", Integer, nullable=False),
)

images = Table(
    "images", metadata,
    Column("id", Integer, primary_key=True),
    Column("series_id", Integer, ForeignKey("series.id"), nullable=False, index=True),
    Column("slice", Integer, nullable=False),  # acquisition-plane slice number
    Column("sop_uid", String(64), nullable=False),
    Column("frame", Integer),  # 1-based frame of a multi-frame image, NULL for single-frame
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("event_uid", String(32), nullable=False, unique=True),
    Column("time", String(32), nullable=False),
    Column("reader", String(128), nullable=False),
    Column("study_id", Integer, ForeignKey("studies.id"), nullable=False),
    Column("series_id", Integer, ForeignKey("series.id")),
    Column("action", String(16), nullable=False),  # mark, unmark, status
    Column("label", String(200)),
    Column("plane", String(16)),
    Column("slices", Text),  # range text "0-3; 9"
    Column("status", String(16)),
    Column("reason", Text),
    Column("stage", String(16)),  # NULL: a reader's reading; "final": an adjudicator's
)
Index("ix_events_study_reader", events.c.study_id, events.c.reader)

assignments = Table(
    "assignments", metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("studies.id"), nullable=False),
    Column("reader", String(128), nullable=False),
    Column("assigned", String(32), nullable=False),
    UniqueConstraint("study_id", "reader", name="uq_assignments_study_reader"),
)

members = Table(
    "members", metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),  # "adjudicator"
)


WRITE_LOCK = 0x6D707276  # the advisory lock every PostgreSQL write transaction takes
CONNECT_TIMEOUT_S = 5


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def is_postgres(url: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``, ``postgresql+driver://``) address."""
    return str(url).split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def parse_url(url: str) -> Any:
    """The SQLAlchemy URL of a database address, with a clear error for a malformed one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(str(url))
    except (ArgumentError, ValueError) as exc:
        raise ProjectError(f"database address {public_url(url)!r} cannot be read ({exc}); "
                           "write it like postgresql://USER@HOST:PORT/DATABASE") from None
    if is_postgres(url):
        if not parsed.database:
            raise ProjectError(f"database address {public_url(url)!r} names no database; "
                               "write it like postgresql://USER@HOST:PORT/DATABASE")
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def public_url(url: str) -> str:
    """The address without its password: what may be written to the project folder."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(str(url))
    except Exception:  # unreadable: hide everything between '//' and '@'
        text_url = str(url)
        head, sep, tail = text_url.partition("://")
        return f"{head}{sep}{tail.rsplit('@', 1)[-1]}" if "@" in tail else text_url
    return parsed._replace(password=None).render_as_string(hide_password=False)


def is_disconnect(exc: BaseException) -> bool:
    """True when ``exc`` means the database server cannot be reached (not a refused write)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        try:
            import psycopg

            if isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
                return False
        except ImportError:
            pass
        return True
    return False


def make_engine(url: Any) -> Engine:
    """An engine for ``url``; for SQLite: WAL, busy timeout, foreign keys, and
    ``BEGIN IMMEDIATE`` for transactions opened with ``write_connection``."""
    if not isinstance(url, str):  # a parsed PostgreSQL URL (with a password typed in)
        return create_engine(url, future=True, pool_pre_ping=True,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    if is_postgres(url):
        return create_engine(parse_url(url), future=True, pool_pre_ping=True,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    if not str(url).startswith("sqlite"):
        return create_engine(url, future=True, pool_pre_ping=True)
    engine = create_engine(url, future=True,
                           connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                         "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Store:
    """The connection to one project's database, upgraded to ``HEAD`` on open."""

    def __init__(self, url: str, label: str, upgrade: bool = True) -> None:
        self.url = url
        self.label = label
        self.postgres = is_postgres(url)
        self.engine = make_engine(url)
        self._lock = threading.Lock()
        if self.postgres:
            self._connect_check()
        if upgrade:
            self._upgrade()

    @property
    def user(self) -> str | None:
        """The database role of a PostgreSQL project (None for SQLite)."""
        return self.engine.url.username if self.postgres else None

    def _connect_check(self) -> None:
        """Connect once: a missing password is asked for on a terminal (libpq's own
        PGPASSWORD / PGPASSFILE / ~/.pgpass come first); other failures are one clear line."""
        from sqlalchemy.exc import DBAPIError

        for attempt in range(2):
            try:
                with self.engine.connect() as conn:
                    conn.rollback()
                return
            except DBAPIError as exc:
                message = str(getattr(exc, "orig", exc)).strip().splitlines()
                first = message[0] if message else type(exc).__name__
                wants_password = ("password" in first.lower()
                                  and self.engine.url.password is None)
                if attempt == 0 and wants_password and _interactive():
                    import getpass

                    secret = getpass.getpass(f"password for {public_url(self.url)}: ")
                    self.engine.dispose()
                    self.engine = make_engine(parse_url(self.url).set(password=secret))
                    continue
                hint = (" (give it with PGPASSWORD, a ~/.pgpass or PGPASSFILE file, or in "
                        "the address for one command)" if wants_password else "")
                raise ProjectError(f"{self.label}: cannot connect to the project's database "
                                   f"{public_url(self.url)}: {first}{hint}") from None

    def read(self) -> Any:
        """A connection inside a read transaction: ``with store.read() as conn:``."""
        return self.engine.begin()

    def write(self) -> Any:
        """A write transaction that holds the database's write lock from its start."""
        conn = self.engine.connect().execution_options(immediate=True)
        return _WriteTransaction(conn)

    def revision(self, conn: Connection) -> str | None:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except Exception:
            return None
        return None if row is None else str(row[0])

    def _upgrade(self) -> None:
        with self.engine.connect() as conn:
            current = self.revision(conn)
            conn.rollback()
        if current == HEAD:
            return
        if current is not None and current not in KNOWN_REVISIONS:
            raise ProjectError(
                f"{self.label}: the project's database has schema revision {current}, which "
                "this version of mprviewer does not know; it was made by a newer mprviewer. "
                "Update mprviewer to open it (nothing was changed)")
        from alembic import command
        from alembic.config import Config
        from sqlalchemy.exc import ProgrammingError

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.write() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, HEAD)
        except ProgrammingError as exc:
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise ProjectError(
                f"{self.label}: the project's database needs its schema upgraded from "
                f"revision {current} to {HEAD}, which {self.user or 'this user'} may not do "
                f"({first}); ask the project's owner to open it once") from None

    def dispose(self) -> None:
        self.engine.dispose()


def database_problem(exc: BaseException) -> str | None:
    """One line for a database error a user can meet (no rights, server away), else None."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    lines = str(getattr(exc, "orig", exc)).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    if is_disconnect(exc):
        return f"the project's database cannot be reached ({first})"
    try:
        import psycopg

        if isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
            return (f"the project's database refused this ({first}); it needs the rights "
                    "of the project's owner")
    except ImportError:
        pass
    return None


def _interactive() -> bool:
    import sys

    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


class _WriteTransaction:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._tx: Any = None

    def __enter__(self) -> Connection:
        self._tx = self.conn.begin()
        if self.conn.dialect.name == "postgresql":  # writers take turns, as on SQLite
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self.conn.close()
