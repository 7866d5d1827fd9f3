"""Offline safety against a real PostgreSQL server that is killed and restarted: changes made
while it is away are kept on disk and sent once it is back, none lost, none doubled; a change
the database refuses by then is kept as a conflict; 8 processes x 250 marks survive a crash
of the server mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from mprviewer.project import Project
from mprviewer.synthetic import writer as synthetic
from tests.postgres import SUPERUSER_PASSWORD

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("offline-src") / "src"
    for n in range(4):
        synthetic.write_series(root / f"case{n}", np.full((8, 6, 6), n, np.int16),
                               study_uid=synthetic.make_uid(9, "offline", n), seed=f"off{n}")
    return root


@pytest.fixture()
def server(postgres_server):
    """The session's server, running again after the test whatever happened."""
    yield postgres_server
    if postgres_server.process is None or postgres_server.process.poll() is not None:
        postgres_server.restart()


def _count(server, database: str, where: str = "TRUE") -> int:
    with psycopg.connect(server.url(database=database)) as conn:
        return conn.execute(f"SELECT count(*) FROM events WHERE {where}").fetchone()[0]


def test_marks_made_while_the_database_is_away_are_sent_once_it_is_back(source, tmp_path,
                                                                       pg_url, server,
                                                                       monkeypatch):
    owner_url = pg_url.replace("postgres@", f"postgres:{SUPERUSER_PASSWORD}@")
    owner = Project.create(tmp_path / "owner", [str(source)], database=owner_url)
    owner.assign(["ann"], 1)
    server.execute("ALTER ROLE ann PASSWORD 'ann-pw'")
    database = owner.store.engine.url.database
    reader_url = pg_url.replace("postgres@", "ann:ann-pw@")
    ann = Project.join(reader_url, tmp_path / "ann")
    ann.mark(0, "subdural", "0", "ann")
    server.kill()
    assert ann.mark(0, "subdural", "1-2", "ann").slices == (0, 1, 2)  # kept, and shown
    assert ann.toggle(0, "subdural", 0, "ann") is False  # from the state it last saw
    ann.set_status(1, "ann", "unreadable", "no contrast")
    ann.mark(2, "epidural", "3", "ann")
    assert ann.pending() == 4
    queued = [json.loads(line) for line in (ann.folder / "offline-queue.jsonl").open()]
    assert [rows[0]["action"] for rows in queued] == ["mark", "unmark", "status", "mark"]
    ann.close()  # the process ends before the database comes back: nothing is lost
    server.restart()
    monkeypatch.setenv("PGPASSWORD", "ann-pw")
    ann = Project.open(tmp_path / "ann")  # opening sends what waits
    assert ann.pending() == 0 and ann.send_queue() == 0
    assert not (ann.folder / "offline-queue.jsonl").exists()
    assert [(m.study_id, m.label, m.slices) for m in owner.marks(reader="ann")] == [
        (owner.study(0).id, "subdural", (1, 2)), (owner.study(2).id, "epidural", (3,))]
    assert owner.status(1, "ann") == ("unreadable", "no contrast")
    # sending the same changes again (a send cut off before the queue file was rewritten)
    # stores nothing twice
    ann.queue.put(queued[0])
    ann.queue.put(queued[3])
    assert ann.send_queue() == 2
    assert _count(server, database) == 5
    assert len({e["event_uid"] for e in owner.events()}) == 5
    ann.close()
    owner.close()


def test_a_change_the_database_refuses_by_then_is_kept_as_a_conflict(source, tmp_path, pg_url,
                                                                     server):
    owner = Project.create(tmp_path / "owner", [str(source)], database=pg_url)
    owner.assign(["ann"], 1)
    server.execute("ALTER ROLE ann PASSWORD 'ann-pw'")
    ann = Project.join(pg_url.replace("postgres@", "ann:ann-pw@"), tmp_path / "ann")
    server.kill()
    ann.mark(3, "subdural", "4", "ann")
    ann.mark(2, "subdural", "5", "ann")
    server.restart()
    with owner.store.engine.begin() as conn:  # study 3 is taken from ann meanwhile
        from sqlalchemy import text

        conn.execute(text("DELETE FROM assignments WHERE study_id = :s"),
                      {"s": owner.study(3).id})
    assert ann.send_queue() == 1
    assert ann.pending() == 0
    conflicts = ann.conflicts()
    assert [(c[0]["study_id"], c[0]["slices"]) for c in conflicts] == [(owner.study(3).id, "4")]
    assert [(m.study_id, m.slices) for m in owner.marks(reader="ann")] == [
        (owner.study(2).id, (5,))]
    ann.close()
    owner.close()


WORKER = r"""
import sys, time
from mprviewer.project import Project
folder, reader, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Project.open(folder)
queued = 0
for i in range(n):
    p.mark(i % 4, ("subdural", "epidural")[i % 2], str(i % 8), reader)
    queued += p.pending() > 0  # kept on disk while the server was away
deadline = time.monotonic() + 60
while p.pending():
    try:
        p.send_queue()
    except Exception:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
print(queued, p.pending())
"""


def test_eight_processes_marking_through_a_server_crash_lose_and_double_nothing(
        source, tmp_path, pg_url, server):
    processes, marks = 8, 250
    with Project.create(tmp_path / "owner", [str(source)], database=pg_url) as owner:
        database = owner.store.engine.url.database
    folders = []
    for n in range(processes):
        with Project.join(pg_url, tmp_path / f"r{n}") as p:
            folders.append(p.folder)
    env = dict(os.environ, PGPASSWORD=SUPERUSER_PASSWORD, PYTHONPATH=str(ROOT))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(folders[n]), f"r{n}",
                                 str(marks)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for n in range(processes)]
    try:
        deadline = time.monotonic() + 60
        while _count(server, database) < processes * marks // 4:
            assert time.monotonic() < deadline, "the workers never got going"
            assert all(w.poll() is None for w in workers), "a worker ended early"
            time.sleep(0.05)
        server.kill()
        time.sleep(0.5)  # the workers keep marking into their queues meanwhile
        server.restart()
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    failed = [r[1][-3000:] for w, r in zip(workers, results, strict=True) if w.returncode]
    assert not failed, failed[0]
    queued_somewhere = sum(1 for f in folders if (f / "offline-conflicts.jsonl").exists())
    assert queued_somewhere == 0
    counts = [tuple(map(int, out.split())) for out, _err in results]
    assert sum(q for q, _ in counts) > 0  # the crash did send marks to the offline queues
    assert all(left == 0 for _, left in counts)
    for n in range(processes):
        assert _count(server, database, f"reader = 'r{n}'") == marks
    with psycopg.connect(server.url(database=database)) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT event_uid) FROM events").fetchone()
    assert total == distinct == processes * marks


def test_the_worklist_keeps_working_while_the_database_is_away(source, tmp_path, pg_url,
                                                              server, capsys):
    from mprviewer.cli import main
    from mprviewer.project.worklist import ProjectWorklist

    owner_url = pg_url.replace("postgres@", f"postgres:{SUPERUSER_PASSWORD}@")
    with Project.create(tmp_path / "owner", [str(source)], database=owner_url) as owner:
        owner.assign(["ann", "bob"], 1, seed=4)
        mine = sorted(owner.study(s).index for s in range(4)
                      if owner.assignments()[owner.study(s).id] == ["ann"])
    project = Project.open(tmp_path / "owner")
    worklist = ProjectWorklist(project, "ann")
    assert [r["index"] for r in worklist.rows()] == mine
    first = worklist.next_index()
    worklist.go_to(first)
    series = project.find_series(first)
    server.kill()
    assert worklist.toggle(1, series.uid, series.name, "axial", 2) == ("epidural", True)
    assert worklist.marked(series.uid, series.name, "axial") == {2: ["epidural"]}
    worklist.set_status("done")
    assert project.status(first, "ann")[0] == "done"
    assert [r["index"] for r in worklist.rows()] == mine  # the rows last seen
    assert worklist.next_index() in (None, *mine)
    assert project.pending() == 2
    server.restart()
    assert main(["project", "status", str(tmp_path / "owner")]) == 0  # sends the queue
    assert "wait in" not in capsys.readouterr().err
    assert project.pending() == 0
    assert project.status(first, "ann")[0] == "done"
    assert [m.slices for m in project.marks(first, "ann")] == [(2,)]
    project.close()
