"""A study of 10,000 one-slice series fills the series table (it used to take minutes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import gui_fixtures

qapp = gui_fixtures.qapp

pytestmark = pytest.mark.gui

N = 10_000


def one_slice_study(n: int = N) -> SimpleNamespace:
    """What the table reads of a Study: n series of one 64 x 64 slice, every 7th warned."""
    series = [
        SimpleNamespace(number=i + 1, description=f"Scout {i:05d}", name=f"s{i}",
                        modality="CT", shape=(1, 64, 64), spacing=(1.0, 0.5, 0.5),
                        num_slices=1, warnings=["one slice only"] if i % 7 == 0 else [])
        for i in range(n)
    ]
    return SimpleNamespace(series=series, skipped=[])


def bold_rows(table) -> list[int]:
    return [r for r in range(table.rowCount()) if table.item(r, 1).font().bold()]


def test_ten_thousand_series_fill_the_table(qapp, qtbot):
    from mprviewer.gui.panels import SeriesTable

    widget = SeriesTable()
    qtbot.addWidget(widget)
    widget.resize(420, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_study(one_slice_study(), current=0)
    table = widget.table
    assert table.rowCount() == N
    assert [table.item(0, c).text() for c in range(3)] == ["1", "Scout 00000", "CT"]
    assert [table.item(N - 1, c).text() for c in range(4)] == [
        "10000", "Scout 09999", "CT", "64 × 64 × 1"]
    assert table.item(7, 4).text() == "⚠ 1" and table.item(8, 4).text() == ""
    assert bold_rows(table) == [0]
    widget.set_current(N - 1)  # only the old and the new row change
    assert bold_rows(table) == [N - 1]
    assert table.selectedItems()[0].row() == N - 1
    table.scrollToBottom()
    qapp.processEvents()
    last = table.visualItemRect(table.item(N - 1, 1))
    assert table.viewport().rect().intersects(last)  # painted where the user scrolls to
    # the title column is wide enough to read the names in
    assert table.columnWidth(1) >= table.fontMetrics().horizontalAdvance("Scout 0999")
    # a smaller study replaces it completely
    widget.set_study(one_slice_study(3), current=2)
    assert table.rowCount() == 3 and bold_rows(table) == [2]
    assert table.item(2, 1).text() == "Scout 00002"
