"""Files of the original tool as it wrote them: series recorded as read and clean
("Slices": ""), files naming series of the study not displayed yet, sagittal series, and the
exports a team shares."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mprviewer
from mprviewer.annotations import AnnotationSet, read_annotation_file, write_annotation_file
from mprviewer.model.annotation_files import import_into
from mprviewer.model.annotations import study_refs
from mprviewer.synthetic.writer import write_series

TWO_SERIES = {"CT_LUNG": {"Anomaly": "Nodule", "Slices": "1-2"},
              "T1_SAG": {"Anomaly": "", "Slices": ""}}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mprviewer", "annotations", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CT_LUNG (axial, 5 slices), T1_SAG (sagittal, 4 slices) and SCOUT, never marked."""
    root = tmp_path_factory.mktemp("study") / "case"
    ct = write_series(root / "CT_LUNG", np.zeros((5, 6, 6), np.int16), seed="ct",
                      series_number=2)
    write_series(root / "T1_SAG", np.zeros((4, 6, 6), np.int16), orientation="sagittal",
                 modality="MR", seed="t1", series_number=3, study_uid=ct.study_uid)
    write_series(root / "SCOUT", np.zeros((3, 6, 6), np.int16), seed="sc", series_number=10,
                 study_uid=ct.study_uid, origin=(0, 0, 90))
    return root


def test_empty_slices_survive_read_convert_and_both_formats(tmp_path: Path) -> None:
    source = tmp_path / "marks.json"
    source.write_text(json.dumps(TWO_SERIES))
    aset = read_annotation_file(source)
    clean = aset.get_series(series_name="T1_SAG")
    assert clean is not None and clean.clean and not clean.entries
    write_annotation_file(aset, tmp_path / "back.json", fmt="original")
    assert json.loads((tmp_path / "back.json").read_text()) == {
        "CT_LUNG": {"Anomaly": "Nodule", "Slices": "1-2"},
        "T1_SAG": {"Anomaly": "", "Slices": ""}}
    assert run("convert", str(source), "full.json", "--to", "full", cwd=tmp_path).returncode == 0
    assert run("convert", "full.json", "again.json", "--to", "original",
               cwd=tmp_path).returncode == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["T1_SAG"] == {"Anomaly": "", "Slices": ""}
    assert again["CT_LUNG"]["Slices"] == "1-2"


def test_show_lists_clean_series_and_does_not_call_a_sagittal_series_axial(
        tmp_path: Path, study_dir: Path) -> None:
    source = tmp_path / "marks.json"
    source.write_text(json.dumps({"T1_SAG": {"Anomaly": "Lesion", "Slices": "1"},
                                  "CT_LUNG": {"Anomaly": "", "Slices": ""}}))
    plain = run("show", str(source), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    t1_row = next(line for line in plain.stdout.splitlines() if line.startswith("T1_SAG"))
    assert "axial" not in t1_row and "acquired" in t1_row
    ct_row = next(line for line in plain.stdout.splitlines() if line.startswith("CT_LUNG"))
    assert "(no anomaly)" in ct_row
    known = run("show", str(source), "--study", str(study_dir), cwd=tmp_path)
    assert known.returncode == 0, known.stderr
    t1_row = next(line for line in known.stdout.splitlines() if line.startswith("T1_SAG"))
    assert "sagittal" in t1_row.split() and "axial" not in t1_row


def test_import_names_a_series_that_was_never_displayed(tmp_path: Path, study_dir: Path) -> None:
    source = tmp_path / "marks.json"
    source.write_text(json.dumps(TWO_SERIES))
    with mprviewer.open_study(study_dir) as study:
        refs = study_refs(study.series)
        aset = AnnotationSet(study_uid=study.uid)
        import_into(aset, source, refs=refs)  # nothing loaded: header references only
        ct = study.find_series("CT_LUNG")
        ct_sa = aset.get_series(ct.uid, ct.name)
        assert ct_sa is not None and ct_sa.entries[0].slices == (1, 2)
        assert ct_sa.entries[0].plane == "axial"
        # the UIDs stored are those of the images shown at slices 1 and 2 once loaded
        volume = ct.load()
        from mprviewer.model.annotations import SeriesRef
        loaded = SeriesRef.from_series(ct, volume)
        assert ct_sa.entries[0].sop_instance_uids == loaded.sop_instance_uids[1:3]
        t1 = study.find_series("T1_SAG")
        assert aset.get_series(t1.uid, t1.name).clean


def test_export_offers_every_series_of_the_study_and_a_choice(
        tmp_path: Path, study_dir: Path) -> None:
    source = tmp_path / "marks.json"
    source.write_text(json.dumps({"CT_LUNG": {"Anomaly": "Nodule", "Slices": "1-2"}}))
    every = run("convert", str(source), "all.json", "--to", "original", "--study",
                str(study_dir), cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    doc = json.loads((tmp_path / "all.json").read_text())
    assert doc == {"CT_LUNG": {"Anomaly": "Nodule", "Slices": "1-2"},
                   "T1_SAG": {"Anomaly": "", "Slices": ""},
                   "SCOUT": {"Anomaly": "", "Slices": ""}}
    assert list(doc) == ["CT_LUNG", "SCOUT", "T1_SAG"]
    chosen = run("convert", str(source), "two.json", "--to", "original", "--study",
                 str(study_dir), "--series", "CT_LUNG", "--series", "T1_SAG", cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert set(json.loads((tmp_path / "two.json").read_text())) == {"CT_LUNG", "T1_SAG"}
    marked = run("convert", str(source), "marked.json", "--to", "original", "--study",
                 str(study_dir), "--marked-only", cwd=tmp_path)
    assert marked.returncode == 0, marked.stderr
    assert set(json.loads((tmp_path / "marked.json").read_text())) == {"CT_LUNG"}
    wrong = run("convert", str(source), "x.json", "--study", str(study_dir), "--series",
                "NOPE", cwd=tmp_path)
    assert wrong.returncode == 3 and "'NOPE'" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_exported_files_get_the_mode_the_umask_allows(tmp_path: Path, mask: int) -> None:
    aset = read_annotation_file_from(tmp_path)
    old = os.umask(mask)
    try:
        write_annotation_file(aset, tmp_path / "out.json", fmt="original")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o666 & ~mask


def read_annotation_file_from(folder: Path) -> AnnotationSet:
    path = folder / "in.json"
    path.write_text(json.dumps(TWO_SERIES))
    return read_annotation_file(path)
