"""`mprviewer serve PROJECT` in a real browser: a reader's worklist, label keys, statuses
and the CSV export, all through the project's store; and marks made outside a project kept
after their tab's session ends.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.web_server import chromium, running_server, server_home

pytestmark = [pytest.mark.slow]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

READER = "Ada Reader"
SLICES = 8


def _study(folder: Path, n: int) -> str:
    """A small CT study of its own UID; returns the UID."""
    from mprviewer.synthetic import writer as synthetic

    uid = synthetic.make_uid(9, "web-project", n)
    array = (np.arange(SLICES * 24 * 24, dtype=np.int16).reshape(SLICES, 24, 24) % 300) + n
    synthetic.write_series(folder, array, study_uid=uid, seed=f"wp{n}", shuffle=n + 1,
                           description=f"head {n}",
                           patient={"PatientName": f"DOE^{n}", "PatientID": f"P{n}"})
    return uid


def _sops_by_z(folder: Path) -> list[str]:
    """SOP Instance UIDs from inferior to superior: axial slice 0 first."""
    found = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")]
    found.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return [str(ds.SOPInstanceUID) for ds in found]


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    expect(page.get_by_test_id("view-axial").locator("img")).to_have_count(1, timeout=30_000)
    return context, page


def _row(page, index: int):
    return page.get_by_test_id("worklist").locator(f"tr[data-index='{index}']")


def test_a_reader_works_through_a_project_in_the_page(tmp_path_factory, tmp_path):
    from mprviewer.project import Project

    src = tmp_path / "src"
    uids = [_study(src / f"case_{n}", n) for n in range(3)]
    folder = tmp_path / "proj"
    Project.create(folder, [str(src)], "ich").close()
    with Project.open(folder) as project:
        index_of = {info.uid: info.index for info in project.studies()}
    first, second, third = (index_of[u] for u in uids)
    assert (first, second, third) == (0, 1, 2)  # the worklist's order: one study after another

    home = server_home(tmp_path_factory)
    with running_server(home, str(folder)) as server, chromium() as browser:
        context, page = _open(browser, server.url)
        try:
            # Nothing of the project before the reader says who they are.
            expect(page.get_by_test_id("worklist")).to_have_count(0)
            page.get_by_test_id("reader").locator("input").fill(READER)
            page.get_by_test_id("reader").locator("input").press("Enter")
            expect(page.get_by_test_id("worklist").locator("tr[data-index]")).to_have_count(3)
            expect(_row(page, 0)).to_have_attribute("data-status", "in progress")
            expect(page.get_by_test_id("progress")).to_have_text("0 / 3 done")
            expect(page.get_by_test_id("reader").locator("input")).to_be_disabled()
            # The first study opens with each view on its centre slice.
            centre = SLICES // 2
            expect(page.get_by_test_id("slice-axial")).to_have_text(str(centre))
            expect(page.get_by_test_id("slice-coronal")).to_have_text("12")
            expect(page.get_by_test_id("slice-sagittal")).to_have_text("12")

            # Key 1 (epidural) on the axial view's slice, then D: done.
            page.get_by_test_id("view-axial").click()
            page.keyboard.press("ArrowUp")
            expect(page.get_by_test_id("slice-axial")).to_have_text(str(centre + 1))
            page.keyboard.press("1")
            expect(_row(page, 0).locator("td").nth(3)).to_have_text("1")
            page.keyboard.press("d")
            expect(_row(page, 0)).to_have_attribute("data-status", "done")
            expect(page.get_by_test_id("progress")).to_have_text("1 / 3 done")

            # N: the next unread study; Shift+0: no finding, and on to the one after.
            page.keyboard.press("n")
            expect(_row(page, 1)).to_have_attribute("data-status", "in progress")
            page.keyboard.press("Shift+0")
            expect(_row(page, 1)).to_have_attribute("data-status", "no finding")
            expect(_row(page, 2)).to_have_attribute("data-status", "in progress")
            expect(page.get_by_test_id("progress")).to_have_text("2 / 3 done")
            expect(_row(page, 2)).to_have_class("selected")
            # Ctrl+Left: back to the study just finished; the Next button: on to the unread one.
            page.keyboard.press("Control+ArrowLeft")
            expect(_row(page, 1)).to_have_class("selected")
            expect(_row(page, 1)).to_have_attribute("data-status", "no finding")
            page.get_by_test_id("next").click()
            expect(_row(page, 2)).to_have_class("selected")

            with page.expect_download() as info:
                page.get_by_test_id("download-csv").click()
            assert info.value.suggested_filename.endswith(".csv")
            text = Path(info.value.path()).read_text()

            # Another reader on the same project, in another tab: their own worklist, through
            # the store (nothing of the first reader's marks or statuses).
            other, page_b = _open(browser, server.url)
            try:
                page_b.get_by_test_id("reader").locator("input").fill("Bo")
                page_b.get_by_test_id("start").click()
                expect(_row(page_b, 0)).to_have_attribute("data-status", "in progress")
                expect(_row(page_b, 1)).to_have_attribute("data-status", "unread")
                expect(_row(page_b, 0).locator("td").nth(3)).to_have_text("0")
                expect(page_b.get_by_test_id("progress")).to_have_text("0 / 3 done")
            finally:
                other.close()
        finally:
            context.close()

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["ID", "Label"]
    values = {r[0]: int(r[1]) for r in rows[1:]}
    keys = ["epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural",
            "any"]
    marked = _sops_by_z(src / "case_0")
    clear = _sops_by_z(src / "case_1")
    # Every image of the two finished studies, every label; nothing of the unfinished one.
    assert set(values) == {f"ID_{sop}_{k}" for sop in marked + clear for k in keys}
    positive = {f"ID_{marked[centre + 1]}_epidural", f"ID_{marked[centre + 1]}_any"}
    assert {k for k, v in values.items() if v == 1} == positive
    assert all(values[f"ID_{sop}_{k}"] == 0 for sop in clear for k in keys)

    # The store holds the reader's statuses (the page wrote nothing anywhere else).
    out = subprocess.run([sys.executable, "-m", "mprviewer", "project", "status", str(folder),
                          "--json"], capture_output=True, text=True, check=True)
    statuses = {s["study_uid"]: s["statuses"] for s in json.loads(out.stdout)["studies"]}
    assert statuses[uids[0]] == {READER: "done", "Bo": "in progress"}
    assert statuses[uids[1]] == {READER: "no finding", "Bo": "unread"}
    assert statuses[uids[2]] == {READER: "in progress", "Bo": "unread"}


def test_marks_of_a_closed_tab_are_kept_in_the_data_folder(tmp_path_factory, tmp_path):
    from mprviewer.model.annotation_files import document_to_set, loads
    from tests.test_web_browser import _series_zip

    archive, name, n = _series_zip(tmp_path)
    home = server_home(tmp_path_factory)
    with running_server(home, close_grace=1.0) as server, chromium() as browser:
        context, page = _open(browser, server.url)
        page.get_by_test_id("upload").set_input_files(str(archive))
        expect(page.get_by_test_id("series").locator("tr[data-index]")).to_have_count(1)
        centre = n // 2
        expect(page.get_by_test_id("slice-axial")).to_have_text(str(centre))
        page.get_by_test_id("view-axial").click()
        page.keyboard.press("m")
        expect(page.get_by_test_id("marks")).to_contain_text(str(centre))
        # Closing the tab with marks not downloaded asks first.
        with page.expect_event("dialog") as asked:
            page.close(run_before_unload=True)
        assert asked.value.type == "beforeunload"
        with page.expect_event("close"):
            asked.value.accept()
        context.close()  # the tab is gone without a download: its session ends
        kept = home / "served-marks"
        deadline = time.monotonic() + 30
        while not list(kept.glob("*/*.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        files = list(kept.glob("*/*.json"))
        assert len(files) == 1, f"kept: {files}"
        # the session's own folder is gone; only the kept copy remains
        assert server.process.poll() is None
    document = loads(files[0].read_text())
    aset, _ = document_to_set(document, source=str(files[0]))
    (sa,) = aset.series
    assert sa.name == name
    assert aset.slices_for(sa.uid, sa.name, "axial", "Anomaly") == [centre]


def test_a_damaged_project_is_named_and_nothing_is_served(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "project.json").write_text("{")
    out = subprocess.run([sys.executable, "-m", "mprviewer", "serve", str(folder), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert "project.json" in out.stderr and "cannot be read" in out.stderr
    assert "serving" not in out.stdout


def test_keep_marks_copies_a_sessions_sidecars_or_says_it_could_not(tmp_path, monkeypatch):
    from mprviewer.web.launcher import KEPT_MARKS, keep_marks

    session = tmp_path / "session"
    (session / "home" / "annotations").mkdir(parents=True)
    assert keep_marks(session, "a" * 32) is None  # no marks: nothing is made
    sidecar = session / "home" / "annotations" / "1.2.3.json"
    sidecar.write_text('{"marks": 1}')
    home = tmp_path / "home"
    monkeypatch.setenv("MPRVIEWER_HOME", str(home))
    kept = keep_marks(session, "b" * 32)
    assert kept is not None and kept.parent == home / KEPT_MARKS
    assert (kept / "1.2.3.json").read_text() == '{"marks": 1}'
    # A data folder that cannot be written: an OSError, and the sidecar stays where it was.
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("MPRVIEWER_HOME", str(blocked / "home"))
    with pytest.raises(OSError, match="cannot be written"):
        keep_marks(session, "c" * 32)
    assert sidecar.read_text() == '{"marks": 1}'
