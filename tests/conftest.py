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
