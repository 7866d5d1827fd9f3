"""The adjudication view in the real viewer: the studies readers disagree on, every reader's
marks side by side in their own colour and on the slice views, and final labels by rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtGui import QColor

from mprviewer.gui.adjudication_panel import install_adjudication, reader_colour
from mprviewer.project import Project
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui


@pytest.fixture
def project_folder(tmp_path: Path) -> Path:
    """Three studies read by ann, bob and cy; they disagree on study 0 and 1, not on 2."""
    from mprviewer.synthetic.writer import make_uid, write_series

    for n in range(3):
        array = np.full((12, 24, 28), 40, dtype=np.int16)
        write_series(tmp_path / "src" / f"case{n}", array, slice_spacing=2.0,
                     study_uid=make_uid(23, "adjgui", n), seed=f"ag{n}", window=(40, 400))
    with Project.create(tmp_path / "proj", [str(tmp_path / "src")], "ich") as p:
        p.assign(["ann", "bob", "cy"], 3, adjudicators=["dee"])
        p.mark(0, "subdural", "3-5", "ann")
        p.mark(0, "subdural", "4-6", "bob")
        p.mark(0, "epidural", "4", "cy")
        p.mark(1, "subdural", "2", "ann")
        for study in range(3):
            for reader in ("ann", "bob", "cy"):
                p.set_status(study, reader, "done" if p.marks(study, reader) else "no finding")
    return tmp_path / "proj"


def test_every_readers_marks_side_by_side_and_a_rule_taken_as_final(make_viewer, qtbot,
                                                                    project_folder):
    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        controller = install_adjudication(window, str(project_folder), "dee")
    project, panel = controller.project, controller.panel
    assert [(r["index"], r["labels"]) for r in panel.rows()] == [
        (0, ["epidural", "subdural"]), (1, ["subdural"])]
    assert window.study.uid == project.study(0).uid
    table = panel.readings
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert header == ["series", "plane", "slice", "ann", "bob", "cy", "final"]
    cells = {int(table.item(r, 2).text()): [table.item(r, c).text() for c in range(3, 7)]
             for r in range(table.rowCount())}
    assert cells == {3: ["subdural", "", "", ""], 4: ["subdural", "subdural", "epidural", ""],
                     5: ["subdural", "subdural", "", ""], 6: ["", "subdural", "", ""]}
    ann_cell = table.item(0, 3)
    assert ann_cell.background().color() != table.item(1, 4).background().color()
    assert reader_colour(["ann", "bob", "cy"], "ann") != reader_colour(["ann", "bob", "cy"],
                                                                      "bob")
    axial = window.views.slice_views["axial"].marked
    assert axial == {3: ["ann: subdural"], 4: ["ann: subdural", "bob: subdural", "cy: epidural"],
                     5: ["ann: subdural", "bob: subdural"], 6: ["bob: subdural"]}
    # On the slider and in 3D each reader's marks take the reader's colour from the table.
    readers = ["ann", "bob", "cy"]
    ticks = window.views.slice_views["axial"].slider.mark_colors
    assert ticks[3].name() == reader_colour(readers, "ann")  # ann's mark first
    assert ticks[6].name() == reader_colour(readers, "bob")
    slab_colors = window.views.volume_view.label_colors
    assert QColor.fromRgbF(*slab_colors["cy: epidural"]).name() == reader_colour(readers, "cy")
    panel.rule_buttons["majority"].click()
    final = [(m.label, m.slices) for m in project.marks()
             if m.study_id == project.study(0).id and m.reader in ("ann", "bob", "cy")]
    assert len(final) == 3  # the readings are untouched
    cells = {int(table.item(r, 2).text()): table.item(r, 6).text()
             for r in range(table.rowCount())}
    assert cells == {3: "", 4: "subdural", 5: "subdural", 6: ""}
    assert window.views.slice_views["axial"].marked[4][-1] == "final: subdural"
    assert [(r["index"], r["adjudicated"]) for r in panel.rows()] == [(0, True), (1, False)]
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        controller.next_open()
    assert panel.current == 1 and window.study.uid == project.study(1).uid


def test_a_readers_worklist_panel_lists_only_their_studies(make_viewer, qtbot, project_folder,
                                                           tmp_path):
    from mprviewer.gui.worklist_panel import install_worklist

    folder = tmp_path / "assigned"
    with Project.create(folder, [str(project_folder.parent / "src")]) as p:
        p.assign(["ann", "bob"], 1, seed=5)
        mine = sorted(s.index for s in p.studies() if p.assignments()[s.id] == ["bob"])
    window = make_viewer()
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        controller = install_worklist(window, str(folder), "bob")
    table = controller.panel.table
    assert [int(table.item(r, 0).text()) for r in range(table.rowCount())] == mine
    assert controller.worklist.current == mine[0]
    selected = table.selectionModel().selectedRows()
    assert [int(table.item(i.row(), 0).text()) for i in selected] == [mine[0]]
