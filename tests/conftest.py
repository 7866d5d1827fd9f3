"""Shared fixtures: a private per-user data folder for every test, and small DICOM studies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Rendering off screen needs no X server; Qt tests run under xvfb-run (./scripts/test).
os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own MPRVIEWER_HOME, except the demo cache, which is shared."""
    home = tmp_path_factory.mktemp("mprviewer-home")
    monkeypatch.setenv("MPRVIEWER_HOME", str(home))
    shared_demo = _shared_demo_dir(tmp_path_factory)
    (home / "demo").symlink_to(shared_demo, target_is_directory=True)
    yield home


def _shared_demo_dir(factory: pytest.TempPathFactory) -> Path:
    root = factory.getbasetemp() / "shared-demo"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the whole session (tests/postgres.py), started only
    when a test asks for it, and stopped and removed at the end."""
    from tests.postgres import PostgreSQL

    server = PostgreSQL().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_url(postgres_server, request) -> str:
    """The address of a new, empty database on the session's server (superuser, no
    password in it: the password comes from PGPASSWORD, as libpq reads it)."""
    import re

    from tests.postgres import SUPERUSER_PASSWORD

    name = re.sub(r"[^a-z0-9_]", "_", f"t_{request.node.name}".lower())[:50]
    name = f"{name}_{next(_DATABASE_NUMBERS)}"
    postgres_server.new_database(name)
    mp = pytest.MonkeyPatch()
    mp.setenv("PGPASSWORD", SUPERUSER_PASSWORD)
    yield postgres_server.url(password=None, database=name)
    mp.undo()


_DATABASE_NUMBERS = __import__("itertools").count()
