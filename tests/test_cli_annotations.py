"""``mprviewer annotations show|convert`` as a user runs them: outputs and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mprviewer.annotations import AnnotationSet, read_annotation_file, write_annotation_file
from tests.test_annotations_model import make_ref

ORIGINAL = {"CT Head": {"Anomaly": "Bleed", "Slices": "0-11; 57-59; 112"}}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mprviewer", "annotations", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60,
    )


def assert_input_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture
def full_file(tmp_path: Path) -> Path:
    aset = AnnotationSet(study_uid="1.2.3", reader="Reader A")
    ref = make_ref(n=120)
    aset.mark(ref, "axial", [*range(12), 57, 58, 59, 112], "Bleed")
    aset.mark(ref, "coronal", [40, 41], "Fracture")
    aset.add_point(ref, (10, 20, 5), (-1.5, 2.25, 12.5), 61.0, "Bleed", "rim")
    aset.set_note("compare with prior", ref)
    path = tmp_path / "full.json"
    write_annotation_file(aset, path)
    return path


def test_show_original_file(tmp_path):
    path = tmp_path / "marks.json"
    path.write_text(json.dumps(ORIGINAL))
    result = run("show", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split("  ") for line in result.stdout.splitlines()]
    header = next(i for i, r in enumerate(rows) if r[0] == "SERIES")
    row = [cell.strip() for cell in rows[header + 1] if cell.strip()]
    assert row == ["CT Head", "Bleed", "acquired", "0-11; 57-59; 112", "16"]
    assert "original format" in result.stdout


def test_show_full_file_lists_entries_points_and_notes(tmp_path, full_file):
    result = run("show", str(full_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Study:    1.2.3" in out and "Reader:   Reader A" in out
    entry_lines = [line for line in out.splitlines() if line.startswith("CT Head")]
    assert any("Bleed" in line and "axial" in line and "0-11; 57-59; 112" in line
               and line.rstrip().endswith("16") for line in entry_lines)
    assert any("Fracture" in line and "coronal" in line and "40-41" in line
               for line in entry_lines)
    assert any("(10, 20, 5)" in line and "(-1.5, 2.2, 12.5)" in line and "61" in line
               and "rim" in line for line in entry_lines)
    assert any("compare with prior" in line for line in entry_lines)


def test_convert_original_to_full_and_back(tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(ORIGINAL))
    full = tmp_path / "full.json"
    result = run("convert", str(src), str(full), "--to", "full", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Wrote 1 series in the full format" in result.stdout
    doc = json.loads(full.read_text())
    assert doc["format"] == "mprviewer-annotations"
    assert doc["series"][0]["entries"][0]["slices"] == [*range(12), 57, 58, 59, 112]
    back = tmp_path / "back.json"
    result = run("convert", str(full), str(back), "--to", "original", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(back.read_text()) == ORIGINAL
    assert result.stderr == ""


def test_convert_to_original_reports_what_it_leaves_out(tmp_path, full_file):
    out = tmp_path / "orig.json"
    result = run("convert", str(full_file), str(out), "--to", "original", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(out.read_text()) == ORIGINAL
    assert "Not written" in result.stdout
    assert "Fracture, coronal 40-41" in result.stdout
    assert "point Bleed at voxel (10, 20, 5)" in result.stdout
    assert "warning: 3 items could not be written" in result.stderr


def test_convert_never_overwrites_without_force(tmp_path, full_file):
    out = tmp_path / "taken.json"
    out.write_text("precious")
    result = run("convert", str(full_file), str(out), cwd=tmp_path)
    assert_input_error(result, "already exists", "--force")
    assert out.read_text() == "precious"
    result = run("convert", str(full_file), str(out), "--force", cwd=tmp_path)
    assert result.returncode == 0
    assert read_annotation_file(out).slices_for("1.2.3.1", "", "coronal") == [40, 41]


def test_bad_inputs_exit_3_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"CT": {"Anomaly": "x", "Slices": "1-3; four"}}')
    assert_input_error(run("show", str(bad), cwd=tmp_path), str(bad), "'four'", '$["CT"].Slices')
    assert_input_error(run("convert", str(bad), str(tmp_path / "o.json"), cwd=tmp_path), "'four'")
    assert not (tmp_path / "o.json").exists()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    assert_input_error(run("show", str(deep), cwd=tmp_path), "deep.json")
    huge = tmp_path / "huge.json"
    with huge.open("wb") as fh:
        fh.truncate(1024**3)
    assert_input_error(run("show", str(huge), cwd=tmp_path), "huge.json", "MB")
    assert_input_error(run("show", str(tmp_path / "missing.json"), cwd=tmp_path), "cannot be read")
    shapeless = tmp_path / "shapeless.json"
    shapeless.write_text('{"CT": {"Anomaly": 1}}')
    for action in (("show", str(shapeless)), ("convert", str(shapeless), str(tmp_path / "o.json"))):
        assert_input_error(run(*action, cwd=tmp_path), str(shapeless), "neither")
    other = tmp_path / "list.json"
    other.write_text("[1, 2]")
    assert_input_error(run("show", str(other), cwd=tmp_path), str(other), "JSON list")


@pytest.mark.parametrize(
    "args",
    [(), ("convert", "only-one.json"), ("convert", "a", "b", "--to", "xml"), ("frobnicate",)],
)
def test_usage_errors_exit_2(tmp_path, args):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_is_complete_with_examples(tmp_path):
    top = run("-h", cwd=tmp_path)
    assert top.returncode == 0
    for text in ("show", "convert", "examples:", "mprviewer annotations show marks.json",
                 '"Slices": "0-11; 57-59; 112"', "exit codes"):
        assert text in top.stdout
    conv = run("convert", "-h", cwd=tmp_path)
    assert conv.returncode == 0
    for text in ("--to {original,full}", "--force", "IN", "OUT", "example"):
        assert text in conv.stdout
    show = run("show", "-h", cwd=tmp_path)
    assert show.returncode == 0 and "FILE" in show.stdout and "example" in show.stdout
