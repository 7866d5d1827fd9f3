"""``mprviewer info`` on a good study (JSON and text, whole study and one series), and the
help of every command, run as users run them: subprocesses with DISPLAY unset."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mprviewer.synthetic import writer as synthetic

STUDY_UID = synthetic.make_uid("cli-info", "study")
PATIENT = {"PatientID": "P-42", "PatientName": "Doe^Jane"}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["COLUMNS"] = "200"  # argparse wraps help at the terminal width
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd)


def run_all(commands: dict[str, list[str]], cwd: Path | None = None) -> dict:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_cli, *args, cwd=cwd) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two series of one study with distinct geometry, one with a missing slice, and a
    file that is not DICOM. Returns what info must report about them."""
    root = tmp_path_factory.mktemp("info-study")
    chest = synthetic.write_series(
        root / "chest", np.arange(4 * 8 * 6, dtype=np.int16).reshape(4, 8, 6),
        pixel_spacing=(0.8, 0.6), slice_spacing=2.5, series_number=3, description="Chest 2.5",
        seed=4, study_uid=STUDY_UID, patient=PATIENT, shuffle=1)
    sag = synthetic.write_series(
        root / "sag", np.zeros((5, 7, 9), np.int16), orientation="sagittal", modality="MR",
        pixel_spacing=(1.2, 1.1), slice_spacing=3.0, series_number=7, description="Sag T1",
        seed=5, study_uid=STUDY_UID, patient=PATIENT, skip=(2,))
    (root / "notes.txt").write_text("not an image")
    return {
        "root": root,
        "chest": {"uid": chest.series_uid, "name": "chest", "description": "Chest 2.5",
                  "modality": "CT", "number": 3, "size": [6, 8, 4], "spacing": [0.6, 0.8, 2.5],
                  "orientation": "axial"},
        "sag": {"uid": sag.series_uid, "name": "sag", "description": "Sag T1",
                "modality": "MR", "number": 7, "size": [9, 7, 5], "spacing": [1.1, 1.2, 3.0],
                "orientation": "sagittal"},
    }


@pytest.fixture(scope="module")
def runs(study: dict) -> dict:
    root = str(study["root"])
    return run_all({
        "json": ["info", root, "--json"],
        "table": ["info", root],
        "series 0": ["info", root, "--series", "0"],
        "series 0 json": ["info", root, "--series", "0", "--json"],
        "series uid": ["info", root, "--series", study["sag"]["uid"]],
        "series uid json": ["info", root, "--series", study["sag"]["uid"], "--json"],
    })


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # piped: no progress line, no warnings
    return result.stdout


def _data_table(text: str) -> dict[str, str]:
    """The KEY  VALUE lines of a series data table."""
    rows = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\S.*?) {2,}(\S.*)", line)
        assert match, f"not a KEY  VALUE line: {line!r}"
        rows[match.group(1)] = match.group(2)
    return rows


def test_json_lists_every_series_with_its_geometry_and_the_skipped_files(runs, study) -> None:
    doc = json.loads(_ok(runs["json"]))
    assert doc["source"] == str(study["root"]) and doc["study_uid"] == STUDY_UID
    records = doc["series"]
    assert [r["index"] for r in records] == list(range(len(records))) and len(records) == 2
    by_uid = {r["uid"]: r for r in records}
    for name in ("chest", "sag"):
        expected = study[name]
        record = by_uid[expected["uid"]]
        for key, value in expected.items():
            assert record[key] == value, (name, key, record[key])
    assert by_uid[study["chest"]["uid"]]["warnings"] == []
    # the missing slice (k=2 of the sagittal stack, 3 mm steps) is reported and filled
    sag_warnings = by_uid[study["sag"]["uid"]]["warnings"]
    assert any("missing slice" in w and "between k=1 and k=2" in w and "6.00 mm" in w
               for w in sag_warnings), sag_warnings
    assert doc["skipped"] == [{"file": str(study["root"] / "notes.txt"),
                               "reason": "not a DICOM file"}]


def test_text_table_matches_the_json(runs, study) -> None:
    records = json.loads(runs["json"].stdout)["series"]
    text = _ok(runs["table"])
    lines = text.splitlines()
    assert lines[0] == f"{study['root']}: 2 series"
    for record in records:
        row = next(line for line in lines if line.split()[:2] == [str(record["index"]),
                                                                  record["name"]])
        assert "x".join(map(str, record["size"])) in row.split()
        assert "x".join(f"{v:g}" for v in record["spacing"]) in row.split()
        assert f"uid {record['uid']}" in text
        for warning in record["warnings"]:
            assert f"warning: {warning}" in text
    assert "skipped 1 file(s):" in text and "notes.txt: not a DICOM file" in text


def test_series_by_index_prints_its_data_table(runs, study) -> None:
    records = json.loads(runs["json"].stdout)["series"]
    first = records[0]
    table = _data_table(_ok(runs["series 0"]))
    assert table["Series UID"] == first["uid"] and table["Name"] == first["name"]
    assert table["Patient ID"] == PATIENT["PatientID"]
    assert table["Patient name"] == PATIENT["PatientName"]
    assert table["Study UID"] == STUDY_UID
    assert table["Modality"] == first["modality"]
    assert table["Size (columns x rows x slices)"] == " x ".join(map(str, first["size"]))
    assert table["Spacing (mm)"] == " x ".join(f"{v:g}" for v in first["spacing"])
    assert table["Orientation"] == first["orientation"]
    doc = json.loads(_ok(runs["series 0 json"]))
    assert doc["series"] == first  # the same record as in the series table
    assert doc["metadata"] == table  # and the same data table


def test_series_by_uid_picks_that_series(runs, study) -> None:
    sag = study["sag"]
    records = json.loads(runs["json"].stdout)["series"]
    expected = next(r for r in records if r["uid"] == sag["uid"])
    assert expected["index"] != 0  # not the series a default would show
    doc = json.loads(_ok(runs["series uid json"]))
    assert doc["series"] == expected
    table = _data_table(_ok(runs["series uid"]))
    assert doc["metadata"] == table
    assert table["Series UID"] == sag["uid"] and table["Modality"] == "MR"
    assert table["Series number"] == str(sag["number"])
    assert table["Size (columns x rows x slices)"] == " x ".join(map(str, sag["size"]))
    assert table["Orientation"] == "sagittal"
    assert "missing slice" in table["Warnings"]


# -- help --------------------------------------------------------------------------------
def _subparser(name: str) -> argparse.ArgumentParser:
    from mprviewer.cli import build_parser

    parser = build_parser(only=name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [max(a.option_strings, key=len) for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS]


def _examples(text: str) -> list[list[str]]:
    """The command lines of an 'examples:' section (each up to the double-space comment)."""
    section = text.split("examples:", 1)[1]
    found = []
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("mprviewer"):
            found.append(shlex.split(re.split(r"\s{2,}", line)[0])[1:])
    return found


def _parses(argv: list[str]) -> argparse.Namespace:
    from mprviewer.cli import _choose_command, build_parser

    argv = _choose_command(argv)
    return build_parser(only=argv[0]).parse_args(argv)


def test_top_level_help_lists_every_command() -> None:
    from mprviewer.cli import COMMANDS, _available_commands

    assert _available_commands() == COMMANDS  # every command's module is installed
    result = run_cli("--help")
    text = _ok(result)
    # argparse puts a long name on its own line, its summary under it
    listed = re.findall(r"^ {4}(\w+)\s+(\S.*)$", text, re.MULTILINE)
    assert dict(listed) == COMMANDS
    assert "mprviewer COMMAND -h" in text


@pytest.mark.parametrize("command", ["info", "pacs", "project", "serve", "view"])
def test_command_help_lists_its_options_and_valid_examples(command: str) -> None:
    text = _ok(run_cli(command, "-h"))
    parser = _subparser(command)
    for option in _option_strings(parser):
        assert option in text, f"{command} -h does not mention {option}"
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    examples = _examples(text)
    assert len(examples) >= 3
    for argv in examples:
        args = _parses(argv)  # argparse exits (SystemExit) on an example that is wrong
        assert args.command == command, argv
    for action in sub:  # pacs: every ACTION is listed, and shown in an example
        for name in action.choices:
            assert re.search(rf"^ +{name} +\S", text, re.MULTILINE), name
            assert any(argv[1:2] == [name] for argv in examples), name
