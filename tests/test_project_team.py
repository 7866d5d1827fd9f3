"""Team projects on a real PostgreSQL server: the shared store, joining, assignments, blinding
enforced by the database (row-level security), append-only events, and the same commands as
on a SQLite project.

Blinding is checked the hard way: connecting straight to the server as reader A's role (not
through mprviewer) and trying to read, insert, update and delete reader B's rows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mprviewer.cli import main
from mprviewer.errors import ProjectError
from mprviewer.project import Project
from mprviewer.synthetic import writer as synthetic
from tests.postgres import SUPERUSER_PASSWORD

N_STUDIES = 6


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("team-src") / "src"
    for n in range(N_STUDIES):
        synthetic.write_series(root / f"case{n}", np.full((4, 6, 6), n, np.int16),
                               study_uid=synthetic.make_uid(5, "team", n), seed=f"team{n}")
    return root


def _with_password(url: str, user: str, password: str) -> str:
    head, rest = url.split("://", 1)
    return f"{head}://{user}:{password}@{rest.split('@', 1)[1]}"


def _set_password(server, role: str, password: str) -> None:
    server.execute(f"ALTER ROLE \"{role}\" PASSWORD '{password}'")


@pytest.fixture()
def team(source, tmp_path, pg_url, postgres_server):
    """A shared project of 6 studies, 2 of the readers ann, bob, cy on each, dee adjudicating;
    every role has the password '<name>-pw'."""
    owner = Project.create(tmp_path / "owner", [str(source)], "ich", database=pg_url)
    owner.assign(["ann", "bob", "cy"], 2, seed=7, adjudicators=["dee"])
    for role in ("ann", "bob", "cy", "dee"):
        _set_password(postgres_server, role, f"{role}-pw")
    yield owner
    owner.close()


def _reader(team: Project, name: str, folder: Path) -> Project:
    return Project.join(_with_password(team.store.url, name, f"{name}-pw"), folder / name)


def _shared_study(team: Project, a: str, b: str):
    both = [sid for sid, names in team.assignments().items() if {a, b} <= set(names)]
    assert both, f"no study read by both {a} and {b}"
    return next(s for s in team.studies() if s.id == both[0])


# -- the shared store ---------------------------------------------------------------------------
def test_create_keeps_the_address_without_its_password(source, tmp_path, pg_url, monkeypatch,
                                                       capsys):
    secret_url = _with_password(pg_url, "postgres", SUPERUSER_PASSWORD)
    monkeypatch.delenv("PGPASSWORD")
    folder = tmp_path / "p"
    assert main(["project", "create", str(folder), "--studies", str(source), "--db",
                 secret_url]) == 0
    assert SUPERUSER_PASSWORD not in capsys.readouterr().out
    for path in folder.rglob("*"):
        assert SUPERUSER_PASSWORD not in path.read_text(errors="replace"), path
    assert not (folder / "labels.sqlite").exists()  # the labels are in the server
    assert json.loads((folder / "project.json").read_text())["database"] == pg_url
    # the next command has no password: libpq's PGPASSWORD is the way to give it
    assert main(["project", "status", str(folder)]) == 3
    err = capsys.readouterr().err
    assert "cannot connect" in err and "PGPASSWORD" in err and SUPERUSER_PASSWORD not in err
    passfile = tmp_path / "pgpass"
    host, port = pg_url.split("@", 1)[1].split("/", 1)[0].split(":")
    passfile.write_text(f"{host}:{port}:*:postgres:{SUPERUSER_PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    assert main(["project", "status", str(folder), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["studies"]) == N_STUDIES


def test_create_refuses_a_database_that_holds_a_project(source, tmp_path, pg_url, capsys):
    Project.create(tmp_path / "a", [str(source)], database=pg_url).close()
    assert main(["project", "create", str(tmp_path / "b"), "--studies", str(source), "--db",
                 pg_url]) == 3
    assert "holds a project already" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_join_gives_a_folder_of_settings_that_reaches_the_same_labels(team, tmp_path):
    study = _shared_study(team, "ann", "bob")
    ann = _reader(team, "ann", tmp_path)
    assert [p.name for p in ann.folder.iterdir()] == ["project.json"]
    assert "ann-pw" not in (ann.folder / "project.json").read_text()
    assert ann.default_reader() == "ann"
    ann.mark(study, "subdural", "1-2", "ann")
    ann.close()
    assert [(m.reader, m.label, m.slices) for m in team.marks(study)] == [
        ("ann", "subdural", (1, 2))]


# -- assignments --------------------------------------------------------------------------------
def test_assign_is_balanced_and_repeatable(source, tmp_path):
    made = []
    for n in range(2):
        with Project.create(tmp_path / f"p{n}", [str(source)]) as p:
            load = p.assign(["ann", "bob", "cy", "dee"], 3, seed=3)
            made.append(p.assignments())
            per_study = made[-1]
            assert len(per_study) == N_STUDIES
            assert all(len(set(names)) == 3 for names in per_study.values())
            counts = Counter(n for names in per_study.values() for n in names)
            assert counts == Counter(load)
            assert sum(counts.values()) == 3 * N_STUDIES
            assert max(counts.values()) - min(counts.values()) <= 1
    assert made[0] == made[1]


def test_assign_refuses_more_readers_per_study_than_readers(source, tmp_path, capsys):
    with Project.create(tmp_path / "p", [str(source)]) as p:
        folder = p.folder
    assert main(["project", "assign", str(folder), "--readers", "ann,bob",
                 "--per-study", "3"]) == 3
    assert "--per-study 3" in capsys.readouterr().err
    with Project.open(folder) as p:
        assert p.assignments() == {}


def test_a_readers_worklist_holds_only_the_studies_assigned_to_them(team, tmp_path):
    mine = {s.index for s in team.studies() if "ann" in team.assignments().get(s.id, [])}
    ann = _reader(team, "ann", tmp_path)
    assert {row["index"] for row in ann.worklist("ann")} == mine
    seen, info = set(), ann.next_study("ann")
    while info is not None and info.index not in seen:
        seen.add(info.index)
        info = ann.next_study("ann", after=info.index)
    assert seen == mine
    ann.close()


# -- blinding and the append-only log, enforced by the server -----------------------------------
def _connect(team: Project, role: str):
    import psycopg

    url = team.store.engine.url
    return psycopg.connect(host=url.host, port=url.port, dbname=url.database, user=role,
                           password=f"{role}-pw", autocommit=True)


def test_reader_a_can_neither_read_nor_change_reader_bs_rows(team, tmp_path):
    import psycopg

    study = _shared_study(team, "ann", "bob")
    series = team.find_series(study)
    bob = _reader(team, "bob", tmp_path)
    bob.mark(study, "epidural", "0-3", "bob")
    bob.close()
    ann = _reader(team, "ann", tmp_path)
    ann.mark(study, "subdural", "2", "ann")
    assert {m.reader for m in ann.marks(study)} == {"ann"}  # through mprviewer ...
    with pytest.raises(ProjectError, match="refused 'bob'"):
        ann.mark(study, "subdural", "1", "bob")
    ann.close()
    with _connect(team, "ann") as conn:  # ... and straight to the server
        assert conn.execute("SELECT count(*) FROM events WHERE reader = 'bob'"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT DISTINCT reader FROM events").fetchall() == [("ann",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("INSERT INTO events (event_uid, time, reader, study_id, series_id, "
                         "action, label, plane, slices) VALUES ('forged', 'now', 'bob', %s, "
                         "%s, 'unmark', 'epidural', 'axial', '0-3')", (study.id, series.id))
        for sql in ("UPDATE events SET slices = '0' WHERE reader = 'bob'",
                    "UPDATE events SET slices = '0' WHERE reader = 'ann'",
                    "DELETE FROM events WHERE reader = 'bob'",
                    "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO assignments (study_id, reader, assigned) "
                         "VALUES (%s, 'ann', 'now')", (study.id,))
    marks = {(m.reader, m.label, m.slices) for m in team.marks(study)}
    assert marks == {("bob", "epidural", (0, 1, 2, 3)), ("ann", "subdural", (2,))}


def test_a_reader_cannot_mark_a_study_not_assigned_to_them(team, tmp_path):
    other = next(s for s in team.studies() if "ann" not in team.assignments()[s.id])
    with _reader(team, "ann", tmp_path) as ann, pytest.raises(ProjectError, match="assigned"):
        ann.mark(other, "subdural", "0", "ann")
    assert team.marks(other) == []


def test_readings_are_unblinded_once_every_assigned_reader_finished(team, tmp_path):
    study = _shared_study(team, "ann", "bob")
    ann, bob = _reader(team, "ann", tmp_path), _reader(team, "bob", tmp_path)
    bob.mark(study, "epidural", "0", "bob")
    bob.set_status(study, "bob", "done")
    assert {m.reader for m in ann.marks(study)} == set()
    with _connect(team, "dee") as conn:  # the adjudicator sees every reading at any time
        assert conn.execute("SELECT DISTINCT reader FROM events WHERE study_id = %s",
                            (study.id,)).fetchall() == [("bob",)]
    ann.set_status(study, "ann", "no finding")
    assert {m.reader for m in ann.marks(study)} == {"bob"}
    with pytest.raises(ProjectError, match="closed for adjudication"):  # readings are closed
        bob.mark(study, "subdural", "1", "bob")
    ann.close()
    bob.close()


def test_even_the_owner_cannot_rewrite_history(team):
    import psycopg
    from sqlalchemy import text

    study = team.studies()[0]
    team.mark(study, "subdural", "0", team.assignments()[study.id][0])
    for sql in ("UPDATE events SET reader = 'x'", "DELETE FROM events"):
        with pytest.raises(Exception) as caught, team.store.write() as conn:
            conn.execute(text(sql))
        assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege)
        assert "append-only" in str(caught.value)
    assert len(team.events()) == 1


def test_sqlite_events_are_append_only_too(source, tmp_path):
    import sqlite3

    with Project.create(tmp_path / "p", [str(source)]) as p:
        p.mark(0, "subdural", "0", "ann")
        path = p.folder / "labels.sqlite"
    conn = sqlite3.connect(path)
    for sql in ("UPDATE events SET reader = 'x'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()
    with Project.open(tmp_path / "p") as p:
        assert [e["reader"] for e in p.events()] == ["ann"]


# -- audit ----------------------------------------------------------------------------------------
def test_log_lists_every_event_and_a_reader_sees_only_their_own(team, tmp_path, capsys,
                                                               monkeypatch):
    study = _shared_study(team, "ann", "bob")
    other = next(s for s in team.studies() if "ann" in team.assignments()[s.id]
                 and s.id != study.id)
    with _reader(team, "bob", tmp_path) as bob:
        bob.mark(study, "epidural", "0-1", "bob")
    with _reader(team, "ann", tmp_path) as ann:
        ann.mark(study, "subdural", "2; 3", "ann")
        ann.mark(study, "subdural", "3", "ann", unmark=True)
        ann.set_status(other, "ann", "unreadable", "motion")
    assert main(["project", "log", str(team.folder), "--json"]) == 0
    log = json.loads(capsys.readouterr().out)
    got = [(e["reader"], e["study_uid"], e["action"], e["label"], e["slices"], e["status"])
           for e in log]
    assert got == [("bob", study.uid, "mark", "epidural", "0-1", None),
                   ("ann", study.uid, "mark", "subdural", "2-3", None),
                   ("ann", study.uid, "unmark", "subdural", "3", None),
                   ("ann", other.uid, "status", None, None, "unreadable")]
    times = [e["time"] for e in log]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    assert all(e["series_uid"] == team.find_series(study).uid for e in log[:3])
    assert main(["project", "log", str(team.folder), "--study", str(other.index),
                 "--json"]) == 0
    assert [e["reason"] for e in json.loads(capsys.readouterr().out)] == ["motion"]
    # ann's folder reaches the same database as ann: bob's events stay hidden from her
    monkeypatch.setenv("PGPASSWORD", "ann-pw")
    assert main(["project", "log", str(tmp_path / "ann"), "--json"]) == 0
    assert {e["reader"] for e in json.loads(capsys.readouterr().out)} == {"ann"}
    assert main(["project", "log", str(tmp_path / "ann")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "ann" in lines[0] and "subdural axial 2-3" in lines[0]


def test_only_an_adjudicator_records_final_labels_in_the_shared_store(team, tmp_path):
    study = _shared_study(team, "ann", "bob")
    with _reader(team, "ann", tmp_path) as ann:
        ann.mark(study, "subdural", "1", "ann")
        ann.set_status(study, "ann", "done")
        with pytest.raises(ProjectError, match="refused"):
            # past the client's check (no members list of its own): the server refuses
            ann.adjudicators = lambda: []  # type: ignore[method-assign]
            ann.adjudicate(study, "ann", label="subdural", slices="1", done=True)
    with _reader(team, "bob", tmp_path) as bob:
        bob.set_status(study, "bob", "no finding")
    with _reader(team, "dee", tmp_path) as dee:
        assert [r["index"] for r in dee.adjudication()] == [study.index]
        dee.adjudicate(study, "dee", accept="union")
        assert dee.adjudication()[0]["adjudicated"] is True
    final = [e for e in team.events(study) if e.get("stage") == "final"]
    assert [(e["reader"], e["action"], e.get("slices")) for e in final] == [
        ("dee", "mark", "1"), ("dee", "status", None)]


def test_the_shared_schema_is_the_declared_one_and_a_bad_address_is_one_line(team, tmp_path,
                                                                            capsys):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mprviewer.project import store

    with team.store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), store.metadata) == []
        assert team.store.revision(conn) == store.HEAD
    url = team.store.url.rsplit("/", 1)[0]
    for address, says in ((f"{url}/no_such_db", "cannot connect"),
                          (f"{url}/postgres", "holds no mprviewer project"),
                          ("sqlite:///x.sqlite", "join a shared project by its postgresql")):
        assert main(["project", "join", address, str(tmp_path / "j")]) == 3
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "j").exists()


def test_a_reader_trying_the_owners_commands_gets_one_line(team, tmp_path, capsys,
                                                            monkeypatch):
    with _reader(team, "ann", tmp_path):
        pass
    monkeypatch.setenv("PGPASSWORD", "ann-pw")
    assert main(["project", "assign", str(tmp_path / "ann"), "--readers", "ann,bob",
                 "--per-study", "1"]) == 3
    err = capsys.readouterr().err
    assert "only the project's owner (postgres) can assign" in err and "Traceback" not in err
    assert sum(len(v) for v in team.assignments().values()) == 2 * N_STUDIES


def test_without_a_stored_password_a_terminal_is_asked_once(team, tmp_path):
    """No PGPASSWORD and no ~/.pgpass: on a terminal the password is asked for (not echoed,
    not stored); a wrong one is refused in one line."""
    import fcntl
    import os
    import pty
    import select
    import subprocess
    import sys
    import termios

    with _reader(team, "ann", tmp_path):
        pass
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSFILE"] = str(tmp_path / "none")
    for password, code in (("ann-pw", 0), ("wrong", 3)):
        leader, follower = pty.openpty()

        def controlling_terminal(fd: int = follower) -> None:
            fcntl.ioctl(fd, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen([sys.executable, "-m", "mprviewer", "project", "status",
                                 str(tmp_path / "ann"), "--json"], stdin=follower,
                                stdout=follower, stderr=follower, env=env,
                                start_new_session=True, preexec_fn=controlling_terminal)
        os.close(follower)
        seen, sent = b"", False
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, f"no answer: {seen[-500:]!r}"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the process ended and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not sent and b"password for" in seen:
                os.write(leader, password.encode() + b"\n")
                sent = True
        os.close(leader)
        assert proc.wait(timeout=60) == code, seen[-2000:]
        assert sent and b"ann@" in seen and password.encode() not in seen  # not echoed
        text = seen.decode(errors="replace").replace("\r\n", "\n")
        if code == 0:
            doc = json.loads(text[text.index("{"):])
            assert len(doc["studies"]) == N_STUDIES
        else:
            assert "password authentication failed" in text and "Traceback" not in text
    assert "ann-pw" not in (tmp_path / "ann" / "project.json").read_text()


def test_a_shared_project_of_the_first_schema_is_upgraded_when_its_owner_opens_it(
        source, tmp_path, pg_url):
    """Schema 0001 on the server (no assignments, no append-only guard): opening the folder
    upgrades it to the newest revision, and the guard is then in force."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from mprviewer.project import store

    with Project.create(tmp_path / "new", [str(source)], database=pg_url) as made:
        study_id = made.study(0).id
        series_id = made.find_series(0).id
        made.mark(0, "subdural", "1", "ann")
        with made.store.engine.begin() as conn:  # back to the first schema, labels kept
            cfg = Config()
            cfg.set_main_option("script_location", str(store.MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
            conn.execute(text("UPDATE events SET slices = '1-2'"))  # 0001 had no guard
    with Project.open(tmp_path / "new") as p:
        with p.store.read() as conn:
            assert p.store.revision(conn) == store.HEAD
        assert [(m.study_id, m.series_id, m.slices) for m in p.marks()] == [
            (study_id, series_id, (1, 2))]
        with pytest.raises(Exception, match="append-only"), p.store.write() as conn:
            conn.execute(text("DELETE FROM events"))
        p.assign(["ann", "bob"], 1, seed=1)
        assert len(p.assignments()) == N_STUDIES


def test_agreement_on_the_shared_store_counts_only_what_the_role_may_see(team, tmp_path,
                                                                        capsys, monkeypatch):
    study = _shared_study(team, "ann", "bob")
    with _reader(team, "ann", tmp_path) as ann:
        ann.mark(study, "subdural", "0-1", "ann")
        ann.set_status(study, "ann", "done")
        assert ann.agreement()["readers"] == []  # bob's reading is still hidden from her
    with _reader(team, "bob", tmp_path) as bob:
        bob.mark(study, "subdural", "1-2", "bob")
        bob.set_status(study, "bob", "done")
    monkeypatch.setenv("PGPASSWORD", "ann-pw")
    assert main(["project", "agreement", str(tmp_path / "ann"), "--json"]) == 0
    as_ann = json.loads(capsys.readouterr().out)
    assert as_ann == team.agreement()  # unblinded now: she sees what the owner sees
    subdural = as_ann["labels"]["subdural"]
    assert as_ann["readers"] == ["ann", "bob"]
    assert subdural["image"]["n"] == 4 and subdural["image"]["agreement"] == 0.5
    assert subdural["study"] == {"kappa": None, "agreement": 1.0, "n": 1}
