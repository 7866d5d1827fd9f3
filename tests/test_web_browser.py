"""The page in a real browser (Debian's chromium via playwright), as a reader uses it.

One server per module: an empty one for upload, keys, the range box and downloads, and one
serving the demo for the anatomy and for two readers at once.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.web_server import chromium, running_server, server_home

pytestmark = [pytest.mark.slow]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
expect.set_options(timeout=60_000)  # the first demo is generated on first use (seconds)


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory):
    with running_server(server_home(tmp_path_factory)) as server:
        yield server


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    with running_server(server_home(tmp_path_factory), "demo") as server:
        yield server


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page.get_by_test_id("view-axial").locator("img")).to_have_count(1)
    return context, page


def _sessions(server) -> list[dict]:
    answer = requests.get(server.base + "/status", params={"token": server.token}, timeout=10)
    return answer.json()["sessions"]


def _press(page, key: str, times: int, plane: str, expected: int) -> None:
    for _ in range(times):
        page.keyboard.press(key)
    expect(page.get_by_test_id(f"slice-{plane}")).to_have_text(str(expected))


def _go_to(page, plane: str, target: int) -> None:
    """Step the focused view to slice ``target`` with the keys a reader uses."""
    current = int(page.get_by_test_id(f"slice-{plane}").inner_text())
    delta = target - current
    tens, ones = divmod(abs(delta), 10)
    up = delta > 0
    if tens:
        current += (10 if up else -10) * tens
        _press(page, "PageUp" if up else "PageDown", tens, plane, current)
    if ones:
        _press(page, "ArrowUp" if up else "ArrowDown", ones, plane, target)


def _frame(page, plane: str) -> np.ndarray:
    """The view's picture as an RGB array, once a frame newer than the last call is shown."""
    from PIL import Image

    img = page.get_by_test_id(f"view-{plane}").locator("img")
    previous = page.evaluate("p => window['_shown_' + p] || ''", plane)
    page.wait_for_function(
        "([p, old]) => { const i = document.querySelector(`[data-testid=view-${p}] img`);"
        " return i && i.complete && i.naturalWidth > 0 && i.src !== old; }",
        arg=[plane, previous],
    )
    page.evaluate("p => { window['_shown_' + p] ="
                  " document.querySelector(`[data-testid=view-${p}] img`).src; }", plane)
    return np.asarray(Image.open(io.BytesIO(img.screenshot())).convert("RGB"))


def _series_zip(path: Path) -> tuple[Path, str, int]:
    """A zip of one small CT series from the synthetic writer; (zip, series name, slices)."""
    import mprviewer
    from mprviewer.synthetic import writer as synthetic

    array = (np.arange(12 * 32 * 40, dtype=np.int16).reshape(12, 32, 40) % 700) - 200
    folder = path / "export"
    synthetic.write_series(folder / "CT_SMALL", array, seed="web", description="Small CT")
    target = path / "small.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted((folder / "CT_SMALL").iterdir()):
            zf.write(file, f"CT_SMALL/{file.name}")
    with mprviewer.open_study(str(target)) as study:
        name = study.series[0].name
    return target, name, array.shape[0]


def _download(page, testid: str) -> dict:
    with page.expect_download() as info:
        page.get_by_test_id(testid).click()
    return json.loads(Path(info.value.path()).read_text())


# -- the labeling flow --------------------------------------------------------------------
def test_upload_mark_with_keys_and_range_box_then_download(browser, empty_server, tmp_path):
    from mprviewer.model.annotation_files import document_to_set

    archive, name, n = _series_zip(tmp_path)
    context, page = _open(browser, empty_server.url)
    try:
        page.get_by_test_id("upload").set_input_files(str(archive))
        expect(page.get_by_test_id("series").locator("tr[data-index]")).to_have_count(1)
        centre = n // 2
        expect(page.get_by_test_id("slice-axial")).to_have_text(str(centre))
        page.get_by_test_id("view-axial").click()
        _press(page, "ArrowUp", 2, "axial", centre + 2)
        page.keyboard.press("m")
        expect(page.get_by_test_id("marks")).to_contain_text(str(centre + 2))
        _press(page, "ArrowUp", 2, "axial", centre + 4)
        page.keyboard.press("Shift+M")
        want = f"{centre + 2}-{centre + 4}"
        expect(page.get_by_test_id("marks")).to_contain_text(want)
        expect(page.get_by_test_id("slices").locator("input")).to_have_value(want)

        full = _download(page, "download-full")
        aset, _ = document_to_set(full, source="download")
        (sa,) = aset.series
        assert sa.name == name
        assert aset.slices_for(sa.uid, sa.name, "axial", "Anomaly") == list(
            range(centre + 2, centre + 5))

        # The range box replaces the label's marks in the focused plane.
        page.get_by_test_id("slices").locator("input").fill("0-3; 7")
        page.get_by_test_id("apply").click()
        expect(page.get_by_test_id("marks")).to_contain_text("0-3; 7")
        original = _download(page, "download-original")
        assert original == {name: {"Anomaly": "Anomaly", "Slices": "0-3; 7"}}
        # A range beyond the series is refused with a message; the marks stay.
        page.get_by_test_id("slices").locator("input").fill("0-3; 70")
        page.get_by_test_id("apply").click()
        expect(page.get_by_test_id("status")).to_contain_text("outside series")
        assert _download(page, "download-original") == original
    finally:
        context.close()


def test_link_box_opens_a_url_and_number_keys_pick_labels(browser, empty_server, tmp_path):
    from http.server import BaseHTTPRequestHandler

    from mprviewer.model.annotation_files import document_to_set
    from tests.local_http import serving

    archive, name, n = _series_zip(tmp_path)
    body = archive.read_bytes()

    class Zip(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    context, page = _open(browser, empty_server.url)
    try:
        with serving(Zip) as base:
            page.get_by_test_id("url").locator("input").fill(f"{base}/study.zip")
            page.get_by_test_id("url").locator("input").press("Enter")
            try:
                expect(page.get_by_test_id("series").locator("tr[data-index]")).to_have_count(1)
            except AssertionError:
                raise AssertionError(page.get_by_test_id("status").inner_text()) from None
        label_box = page.get_by_test_id("label").locator("input")
        label_box.fill("Nodule")
        label_box.press("Enter")
        page.get_by_test_id("view-axial").click()  # leaves the box: keys go to the views
        centre = n // 2
        page.keyboard.press("1")  # Anomaly, the first label
        expect(label_box).to_have_value("Anomaly")
        page.keyboard.press("m")
        page.keyboard.press("2")  # Nodule, the label typed second
        expect(label_box).to_have_value("Nodule")
        _press(page, "ArrowUp", 1, "axial", centre + 1)
        page.keyboard.press("m")
        expect(page.get_by_test_id("marks")).to_contain_text("Nodule")
        page.keyboard.press("Control+z")  # undo, then redo, the Nodule mark
        expect(page.get_by_test_id("marks")).not_to_contain_text("Nodule")
        page.keyboard.press("Control+y")
        expect(page.get_by_test_id("marks")).to_contain_text("Nodule")
        aset, _ = document_to_set(_download(page, "download-full"), source="download")
        (sa,) = aset.series
        assert sa.name == name
        assert aset.slices_for(sa.uid, sa.name, "axial", "Anomaly") == [centre]
        assert aset.slices_for(sa.uid, sa.name, "axial", "Nodule") == [centre + 1]
    finally:
        context.close()


def test_a_wrong_token_gets_no_page_and_starts_no_session(browser, empty_server):
    before = len(_sessions(empty_server))
    context = browser.new_context()
    try:
        page = context.new_page()
        answer = page.goto(empty_server.base + "/?token=" + "0" * 48)
        assert answer.status == 403
        assert "not this server's" in page.content()
        answer = page.goto(empty_server.base + "/")
        assert answer.status == 401
        assert page.locator("[data-testid=view-axial]").count() == 0
    finally:
        context.close()
    assert len(_sessions(empty_server)) == before


# -- the demo ----------------------------------------------------------------------------
def _bright(image: np.ndarray) -> np.ndarray:
    """White grey pixels (the lesion at 250 HU in the default 40/400 window), not text
    colours or coloured crosshair lines."""
    rgb = image.astype(np.int16)
    return (rgb.min(axis=2) >= 215) & (rgb.max(axis=2) - rgb.min(axis=2) < 25)


def _solid(mask: np.ndarray, times: int = 2) -> np.ndarray:
    for _ in range(times):
        inner = mask.copy()
        inner[1:, :] &= mask[:-1, :]
        inner[:-1, :] &= mask[1:, :]
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        mask = inner
    return mask


def test_demo_lesion_shows_on_the_side_its_lps_position_says(browser, demo_server):
    from mprviewer.model.orientation import DisplayGrid
    from mprviewer.synthetic.demo import (
        DEMO_AFFINE,
        DEMO_LESION_LPS,
        DEMO_LESION_RADIUS_MM,
        DEMO_SHAPE,
    )

    grid = DisplayGrid.from_affine(DEMO_AFFINE, DEMO_SHAPE)
    lesion = np.round(grid.lps_to_display(DEMO_LESION_LPS)).astype(int)  # (x, y, z)
    centre = grid.display_to_lps(np.array(grid.shape) / 2.0 - 0.5)
    offset = np.asarray(DEMO_LESION_LPS) - centre
    # x > 0 is the patient's left: the screen's right in axial and coronal views; y < 0
    # (anterior) is the top of the axial view, z > 0 (superior) the top of the coronal view.
    expected = {"axial": (np.sign(offset[0]), np.sign(offset[1])),
                "coronal": (np.sign(offset[0]), -np.sign(offset[2]))}
    assert all(v != 0 for pair in expected.values() for v in pair)
    context, page = _open(browser, demo_server.url)
    try:
        expect(page.get_by_test_id("slice-axial")).to_have_text(str(grid.shape[2] // 2))
        index = {"axial": int(lesion[2]), "coronal": int(lesion[1])}
        away = {"axial": round((DEMO_LESION_RADIUS_MM + 8) / grid.spacing[2]),
                "coronal": round((DEMO_LESION_RADIUS_MM + 8) / grid.spacing[1])}
        for plane in ("axial", "coronal"):
            page.get_by_test_id(f"view-{plane}").click()
            _go_to(page, plane, index[plane])
        for plane, (side_x, side_y) in expected.items():
            page.get_by_test_id(f"view-{plane}").click()
            here = _frame(page, plane)
            _go_to(page, plane, index[plane] + away[plane])
            there = _frame(page, plane)
            _go_to(page, plane, index[plane])
            h, w = here.shape[:2]
            box = (slice(int(h * 0.14), int(h * 0.86)), slice(int(w * 0.08), int(w * 0.92)))
            mask = _solid(_bright(here[box]) & ~_bright(there[box]))
            rows, cols = np.nonzero(mask)
            assert rows.size > 30, f"{plane}: the lesion is not on screen"
            mh, mw = mask.shape
            right, left = (cols >= mw // 2).sum(), (cols < mw // 2).sum()
            screen_side = 1 if right and not left else -1 if left and not right else 0
            assert screen_side == side_x, f"{plane}: lesion right {right} px, left {left} px"
            assert np.sign(rows.mean() / mh - 0.5) == side_y, plane
    finally:
        context.close()


def test_two_readers_have_their_own_slices_and_marks(browser, demo_server):
    before = {s["pid"] for s in _sessions(demo_server)}
    first, page_a = _open(browser, demo_server.url)
    second, page_b = _open(browser, demo_server.url)
    try:
        for page in (page_a, page_b):
            expect(page.get_by_test_id("slice-axial")).to_have_text("64")
        mine = {s["pid"] for s in _sessions(demo_server)} - before
        assert len(mine) == 2, "each tab has a process of its own"
        # The demo series was decoded once: both processes map the same file, read-only.
        maps = [[line.split() for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                 if line.endswith(".npy")] for pid in mine]
        files = [{fields[-1] for fields in m} for m in maps]
        assert len(files[0]) == 1 and files[0] == files[1]
        assert all(fields[1][1] == "-" for m in maps for fields in m)  # not writable
        page_a.get_by_test_id("view-axial").click()
        _press(page_a, "ArrowUp", 3, "axial", 67)
        page_a.keyboard.press("m")
        expect(page_a.get_by_test_id("marks")).to_contain_text("67")
        page_b.get_by_test_id("view-axial").click()
        _press(page_b, "ArrowDown", 1, "axial", 63)
        # Each page still shows its own slice, and B has no marks.
        expect(page_a.get_by_test_id("slice-axial")).to_have_text("67")
        assert page_b.get_by_test_id("marks").locator("tr").count() == 0
        assert _download(page_b, "download-original") == {}
        assert list(_download(page_a, "download-original").values()) == [
            {"Anomaly": "Anomaly", "Slices": "67"}]
        # Closing a tab ends its process (its memory goes back to the system).
        first.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(
            {s["pid"] for s in _sessions(demo_server)} & mine
        ) > 1:
            time.sleep(0.3)
        left = {s["pid"] for s in _sessions(demo_server)} & mine
        assert len(left) == 1
        (gone,) = mine - left
        assert not Path(f"/proc/{gone}").exists() or "Z" in Path(
            f"/proc/{gone}/stat").read_text().rsplit(")", 1)[1].split()[0]
        expect(page_b.get_by_test_id("slice-axial")).to_have_text("63")
    finally:
        for context in (first, second):
            context.close()
