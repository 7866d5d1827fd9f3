"""``mprviewer project``: exit codes, messages that name the problem, and output shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mprviewer.cli import main
from mprviewer.project import Project
from mprviewer.synthetic import writer as synthetic


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-src") / "src"
    for n in range(3):
        synthetic.write_series(root / f"case{n}", np.zeros((4, 6, 6), np.int16),
                               study_uid=synthetic.make_uid(3, "cli", n), seed=f"cli{n}")
    return root


@pytest.fixture(params=["sqlite", "postgresql"])
def made(source, tmp_path, capsys, request) -> Path:
    """A project with its labels in the folder (SQLite) or in a real PostgreSQL server: every
    test using it must behave the same on both."""
    folder = tmp_path / "proj"
    db = ["--db", request.getfixturevalue("pg_url")] if request.param == "postgresql" else []
    assert main(["project", "create", str(folder), "--studies", str(source), *db]) == 0
    capsys.readouterr()
    return folder


def _events(folder: Path) -> list[dict]:
    with Project.open(folder) as p:
        return p.events()


def test_create_logs_progress_per_part_and_the_label_set(source, tmp_path, capsys):
    assert main(["project", "create", str(tmp_path / "p"), "--studies", str(source),
                 "--labels", "anomaly"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["[1/3] case0: 1 study, 4 images", "[2/3] case1: 1 study, 4 images",
                       "[3/3] case2: 1 study, 4 images"]
    assert "added 3 studies (3 in the project)" in out[3]
    assert out[4] == "label set anomaly: 1 Bleeding"


def test_status_json_has_exactly_the_documented_shape(made, capsys):
    assert main(["project", "mark", str(made), "--study", "1", "--label", "subdural",
                 "--slices", "0-1", "--reader", "ann"]) == 0
    assert main(["project", "mark", str(made), "--study", "2", "--no-finding",
                 "--reader", "bo"]) == 0
    capsys.readouterr()
    assert main(["project", "status", str(made), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"studies", "counts"}
    uids = [synthetic.make_uid(3, "cli", n) for n in range(3)]
    assert doc["studies"] == [
        {"index": 0, "study_uid": uids[0], "name": "case0",
         "statuses": {"ann": "unread", "bo": "unread"}},
        {"index": 1, "study_uid": uids[1], "name": "case1",
         "statuses": {"ann": "in progress", "bo": "unread"}},
        {"index": 2, "study_uid": uids[2], "name": "case2",
         "statuses": {"ann": "unread", "bo": "no finding"}},
    ]
    assert doc["counts"]["bo"] == {"unread": 2, "in progress": 0, "done": 0,
                                   "no finding": 1, "unreadable": 0}


@pytest.mark.parametrize("args, named", [
    (["--study", "0", "--label", "bleed", "--slices", "1"], "unknown label 'bleed'"),
    (["--study", "7", "--label", "subdural", "--slices", "1"], "no study number 7"),
    (["--study", "1.2.3.4", "--done"], "no study '1.2.3.4'"),
    (["--study", "0", "--label", "subdural", "--slices", "1-9"], "slice 4 is outside"),
    (["--study", "0", "--label", "subdural", "--slices", "x"], "'x'"),
    (["--study", "0", "--unreadable", " "], "needs a reason"),
])
def test_bad_input_exits_3_naming_it_and_changes_nothing(made, capsys, args, named):
    main(["project", "mark", str(made), "--study", "0", "--label", "epidural", "--slices",
          "2", "--reader", "ann"])
    before = _events(made)
    capsys.readouterr()
    assert main(["project", "mark", str(made), *args, "--reader", "ann"]) == 3
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _events(made) == before


@pytest.mark.parametrize("args", [
    ["--study", "0"],
    ["--study", "0", "--label", "subdural"],
    ["--study", "0", "--done", "--label", "subdural", "--slices", "1"],
    ["--study", "0", "--done", "--no-finding"],
])
def test_usage_errors_exit_2(made, capsys, args):
    assert main(["project", "mark", str(made), *args]) == 2
    assert _events(made) == []


def test_export_notes_other_planes_on_stderr_and_keeps_files(made, tmp_path, capsys):
    for args in (["--label", "subdural", "--slices", "1"],
                 ["--label", "subdural", "--slices", "2-3", "--plane", "coronal"],
                 ["--done"]):
        assert main(["project", "mark", str(made), "--study", "0", *args,
                     "--reader", "ann"]) == 0
    out = tmp_path / "x.csv"
    capsys.readouterr()
    assert main(["project", "export", str(made), "--to", "csv", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 marked slices in planes other than the acquisition plane" in captured.err
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + 4 * 6 and sum(r.endswith(",1") for r in rows) == 2  # subdural+any
    out.write_text("mine")
    assert main(["project", "export", str(made), "--to", "csv", str(out)]) == 3
    assert "exists already" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["project", "export", str(made), "--to", "csv", str(out), "--force"]) == 0
    assert out.read_text().startswith("ID,Label\n")


def test_status_names_a_moved_study_folder(source, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert main(["project", "create", str(tmp_path / "p"), "--studies", str(copy)]) == 0
    (copy / "case1").rename(copy / "moved")
    capsys.readouterr()
    assert main(["project", "status", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert f"study 1 (case1): its images were in {copy / 'case1'}, which no longer exists" \
        in err


def test_not_a_project_and_missing_sources_exit_3(source, tmp_path, capsys):
    assert main(["project", "status", str(tmp_path)]) == 3
    assert "not a labeling project" in capsys.readouterr().err
    assert main(["project", "create", str(tmp_path / "p"), "--studies",
                 str(tmp_path / "nope")]) == 3
    assert "nope: no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["project", "create", str(tmp_path / "p"), "--studies", str(source),
                 "--labels", "nosuch"]) == 3
    assert "neither a built-in label set" in capsys.readouterr().err
