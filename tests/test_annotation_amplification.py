"""Small annotation files that expand to huge slice lists are refused before expanding."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from mprviewer import AnnotationError
from mprviewer.model import slice_ranges
from mprviewer.model.annotation_files import read_annotation_file
from mprviewer.model.sidecar import load_sidecar

MIB = 1024 * 1024


def bomb(n_series: int = 1000) -> dict:
    """The original format, every series marking slices 0-99999 (about 47 KB of JSON)."""
    return {f"series {i}": {"Anomaly": "x", "Slices": "0-99999"} for i in range(n_series)}


def test_the_bomb_is_refused_with_bounded_memory_naming_file_and_path(tmp_path):
    path = tmp_path / "bomb.json"
    path.write_text(json.dumps(bomb()))
    assert path.stat().st_size < 60_000
    tracemalloc.start()
    try:
        with pytest.raises(AnnotationError) as info:
            read_annotation_file(path)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 10^8 slices would take gigabytes; the cap stops after about a million
    assert peak < 150 * MIB, peak
    message = str(info.value)
    assert str(path) in message
    # the default cap (1,000,000) is passed inside the eleventh series of 100,000 slices
    assert '$["series 10"].Slices' in message
    assert "MPRVIEWER_MAX_ANNOTATION_SLICES" in message


def test_many_small_ranges_count_like_one_big_one(tmp_path, monkeypatch):
    """The total is counted over the whole document, from the range text."""
    monkeypatch.setenv("MPRVIEWER_MAX_ANNOTATION_SLICES", "1000")
    path = tmp_path / "marks.json"
    doc = {f"s{i}": {"Anomaly": "x", "Slices": "0-99; 200"} for i in range(10)}  # 101 each
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r'\$\["s9"\]\.Slices'):
        read_annotation_file(path)
    doc.pop("s9")  # 909 slices: within the cap, every one kept
    path.write_text(json.dumps(doc))
    aset = read_annotation_file(path)
    assert sum(len(e.slices) for _sa, e in aset.entries()) == 909
    assert aset.get_series("", "s3").entries[0].slices == (*range(100), 200)


def test_overlapping_ranges_count_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MPRVIEWER_MAX_ANNOTATION_SLICES", "100")
    path = tmp_path / "marks.json"
    path.write_text(json.dumps({"s": {"Anomaly": "x", "Slices": "0-99; 0-99; 50-60"}}))
    assert read_annotation_file(path).get_series("", "s").entries[0].slices == tuple(range(100))


def test_the_cap_can_be_turned_off_and_a_bad_value_is_named(tmp_path, monkeypatch):
    path = tmp_path / "marks.json"
    path.write_text(json.dumps(bomb(12)))  # 1.2 million slices
    with pytest.raises(AnnotationError):
        read_annotation_file(path)
    monkeypatch.setenv("MPRVIEWER_MAX_ANNOTATION_SLICES", "none")
    assert len(read_annotation_file(path).entries()) == 12
    monkeypatch.setenv("MPRVIEWER_MAX_ANNOTATION_SLICES", "lots")
    with pytest.raises(AnnotationError, match="MPRVIEWER_MAX_ANNOTATION_SLICES='lots'"):
        read_annotation_file(path)


def test_full_format_lists_and_range_texts_share_the_budget(tmp_path, monkeypatch):
    """Range text beside a slice list is compared as runs: a huge 'ranges' is never expanded."""
    monkeypatch.setenv("MPRVIEWER_MAX_ANNOTATION_SLICES", "250")
    calls = []
    real = slice_ranges.SliceBudget.take

    def counting(self, count):
        calls.append(count)
        return real(self, count)

    monkeypatch.setattr(slice_ranges.SliceBudget, "take", counting)

    def entry(n, label, ranges=None):
        e = {"label": label, "plane": "axial", "slices": list(range(n))}
        if ranges is not None:
            e["ranges"] = ranges
        return e

    def doc(entries):
        return {"format": "mprviewer-annotations", "version": 1, "study_uid": "1.2",
                "series": [{"uid": "1.2.1", "name": "CT", "entries": entries, "points": []}]}

    path = tmp_path / "full.json"
    path.write_text(json.dumps(doc([entry(1, "a", "0-99999")])))
    with pytest.raises(AnnotationError, match=r"\$\.series\[0\]\.entries\[0\]"):
        read_annotation_file(path)
    assert calls == [1]  # only the one-item list was counted; the range stayed a range
    path.write_text(json.dumps(doc([entry(200, "a", "0-199"), entry(100, "b")])))
    with pytest.raises(AnnotationError, match=r"entries\[1\]\.slices.*250"):
        read_annotation_file(path)


def test_show_refuses_the_bomb_in_one_line_and_changes_nothing(tmp_path):
    path = tmp_path / "bomb.json"
    text = json.dumps(bomb())
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "from mprviewer.cli import main\n"
         "code = main(['annotations', 'show', sys.argv[1]])\n"
         # VmHWM is this program's own peak; ru_maxrss would include the forking parent's
         "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
         "print(f'PEAK {peak[0]}')\n"
         "sys.exit(code)\n",
         str(path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "bomb.json" in lines[0] and '$["series 10"].Slices' in lines[0]
    peak_kib = int(result.stdout.split("PEAK")[1])
    assert peak_kib < 400 * 1024, peak_kib  # the unbounded parse took 3.9 GB
    assert path.read_text() == text


def test_a_hostile_sidecar_is_kept_aside_not_expanded(tmp_path):
    path = tmp_path / "annotations-1.2.json"
    text = json.dumps(bomb())
    path.write_text(text)
    loaded = load_sidecar(path)
    assert loaded.aset is None
    assert "MPRVIEWER_MAX_ANNOTATION_SLICES" in str(loaded)
    assert [p.read_text() for p in loaded.moved_aside] == [text]  # kept, byte for byte


def test_a_real_sized_study_is_well_inside_the_default(tmp_path):
    """40 series with every one of 2000 slices marked in three planes: 240,000 slices."""
    planes = ("axial", "coronal", "sagittal")
    series = [{"uid": f"1.2.{i}", "name": f"S{i}", "points": [],
               "entries": [{"label": "x", "plane": p, "slices": list(range(2000)),
                            "ranges": "0-1999"} for p in planes]}
              for i in range(40)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"format": "mprviewer-annotations", "version": 1,
                                "study_uid": "1.2", "series": series}))
    aset = read_annotation_file(path)
    assert sum(len(e.slices) for _sa, e in aset.entries()) == 240_000
    assert slice_ranges.DEFAULT_MAX_DOCUMENT_SLICES >= 4 * 240_000
