"""The repaint order of the window: the view the reader works in is painted at once, the
views that follow it when the input pauses, and never later than the longest lag."""

from __future__ import annotations

import time

import pytest

from mprviewer.gui.repaint import RepaintScheduler
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer
pytestmark = pytest.mark.gui


class FakeView:
    """Counts the paints it was asked for, like QWidget.update would schedule them."""

    def __init__(self, visible: bool = True) -> None:
        self.paints: list[float] = []
        self.visible = visible

    def update(self) -> None:
        self.paints.append(time.perf_counter())

    def isVisible(self) -> bool:
        return self.visible


def test_without_a_lead_every_view_is_painted_when_asked(qapp):
    scheduler = RepaintScheduler()
    views = [FakeView() for _ in range(3)]
    for view in views:
        scheduler.request(view)
    assert [len(v.paints) for v in views] == [1, 1, 1]
    assert not scheduler.has_pending


def test_the_lead_is_painted_at_once_and_the_others_once_the_lead_is_still(qapp, qtbot):
    scheduler = RepaintScheduler()
    lead, other = FakeView(), FakeView()
    scheduler.set_lead(lead)
    asked = time.perf_counter()
    scheduler.request(lead)
    scheduler.request(other)
    scheduler.request(other)  # a second change before the paint: still one paint
    assert len(lead.paints) == 1
    assert other.paints == []
    qtbot.waitUntil(lambda: len(other.paints) == 1, timeout=2000)
    assert other.paints[0] - asked >= RepaintScheduler.QUIET_MS / 1000.0 * 0.9
    qtbot.wait(RepaintScheduler.MAX_LAG_MS + 50)
    assert len(other.paints) == 1, "a change is painted once"


def test_while_the_lead_keeps_changing_the_others_follow_within_the_longest_lag(qapp, qtbot):
    scheduler = RepaintScheduler()
    lead, other = FakeView(), FakeView()
    scheduler.set_lead(lead)
    started = time.perf_counter()
    duration = 4 * RepaintScheduler.MAX_LAG_MS / 1000.0
    while time.perf_counter() - started < duration:  # a scroll: a step every 10 ms
        scheduler.request(lead)
        scheduler.request(other)
        qtbot.wait(10)
    steps = len(lead.paints)
    assert steps >= 10
    # Each step of the lead was painted; the follower was painted a few times, not per step.
    assert 2 <= len(other.paints) < steps / 2
    gaps = [b - a for a, b in zip([started, *other.paints], other.paints, strict=False)]
    slack = 0.08  # a busy machine delays timers; the point is that the follower moves
    assert max(gaps) <= RepaintScheduler.MAX_LAG_MS / 1000.0 + slack


def test_a_new_lead_shows_its_pending_change_at_once(qapp):
    scheduler = RepaintScheduler()
    first, second = FakeView(), FakeView()
    scheduler.set_lead(first)
    scheduler.request(second)
    assert second.paints == []
    scheduler.set_lead(second)
    assert len(second.paints) == 1
    assert not scheduler.has_pending


def test_a_hidden_lead_puts_nothing_first(qapp):
    scheduler = RepaintScheduler()
    hidden, shown = FakeView(visible=False), FakeView()
    scheduler.set_lead(hidden)  # e.g. another view is maximised
    scheduler.request(shown)
    assert len(shown.paints) == 1


def test_paint_pending_and_forget(qapp, qtbot):
    scheduler = RepaintScheduler()
    lead, a, b = FakeView(), FakeView(), FakeView()
    scheduler.set_lead(lead)
    scheduler.request(a)
    scheduler.request(b)
    scheduler.forget(b)  # b closed: never painted again
    scheduler.paint_pending()
    assert len(a.paints) == 1 and b.paints == []
    qtbot.wait(RepaintScheduler.MAX_LAG_MS + 50)
    assert len(a.paints) == 1 and b.paints == []


def test_in_the_window_a_wheel_step_paints_its_view_first_and_the_others_after(make_viewer,
                                                                              qtbot):
    from PyQt5.QtCore import QPoint, QPointF, Qt
    from PyQt5.QtGui import QWheelEvent
    from PyQt5.QtWidgets import QApplication

    from tests.gui_fixtures import blob_volume

    window = make_viewer()
    window.set_volume(blob_volume())
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    qtbot.wait(RepaintScheduler.MAX_LAG_MS + 50)
    views = window.views.views
    painted = {name: [] for name in views}
    for name, view in views.items():
        real = view.interactor.update
        view.interactor.update = (lambda real=real, name=name:
                                  (painted[name].append(time.perf_counter()), real()))
    axial = views["axial"].interactor
    start = window.state.slices["axial"]
    pos = QPointF(axial.width() / 2, axial.height() / 2)
    QApplication.sendEvent(axial, QWheelEvent(
        pos, QPointF(axial.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120),
        Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False))
    assert window.state.slices["axial"] == start + 1
    assert window.views.repaints.lead is axial
    assert len(painted["axial"]) == 1
    # The crosshair lines of the coronal and sagittal views and the 3D plane follow later.
    assert painted["coronal"] == painted["sagittal"] == painted["3d"] == []
    qtbot.waitUntil(lambda: all(painted[n] for n in ("coronal", "sagittal", "3d")),
                    timeout=2000)
    assert not window.views.repaints.has_pending


def test_a_chore_beside_a_follower_waits_for_its_paint(qapp, qtbot):
    scheduler = RepaintScheduler()
    lead, other = FakeView(), FakeView()
    done: list[str] = []
    scheduler.set_lead(lead)
    scheduler.with_paint(lead, lambda: done.append("lead"))
    assert done == ["lead"]  # at once: the lead's own paint is asked for by its scene
    chore = lambda: done.append("other")  # noqa: E731
    scheduler.with_paint(other, chore)
    scheduler.with_paint(other, chore)  # the same update asked twice runs once
    assert done == ["lead"] and other.paints == []
    qtbot.waitUntil(lambda: len(other.paints) == 1, timeout=2000)
    assert done == ["lead", "other"]


def test_moving_the_crosshair_paints_the_views_it_moves_at_once(make_viewer, qtbot):
    from PyQt5.QtCore import QPoint, Qt

    from tests.gui_fixtures import blob_volume

    window = make_viewer()
    window.set_volume(blob_volume())
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    views = window.views.views
    axial = views["axial"].interactor
    window.views.repaints.set_lead(axial)  # e.g. after scrolling the axial view
    painted = {name: 0 for name in views}
    for name, view in views.items():
        real = view.interactor.update

        def counting(real=real, name=name):
            painted[name] += 1
            real()

        view.interactor.update = counting
    before = dict(window.state.slices)
    qtbot.mouseClick(axial, Qt.LeftButton, pos=QPoint(axial.width() // 3, axial.height() // 3))
    moved = [p for p in ("coronal", "sagittal") if window.state.slices[p] != before[p]]
    assert moved, "a click off the crosshair moves it"
    assert all(painted[p] >= 1 for p in moved), "the views the crosshair moved are painted"


def test_cine_paints_the_playing_view_at_every_step(make_viewer, qtbot):
    """Cine after a drag in 3D: the view that plays leads, so each of its steps is painted
    in its own turn, not at the followers' pace."""
    from mprviewer.gui.measure_tools import install_measure_tools
    from tests.gui_fixtures import blob_volume

    window = make_viewer()
    tools = install_measure_tools(window)
    window.set_volume(blob_volume())
    qtbot.waitUntil(lambda: window.is_3d_ready, timeout=10000)
    window.session.focus("axial")
    window.views.repaints.set_lead(window.views.views["3d"].interactor)  # last touched: 3D
    axial = window.views.views["axial"].interactor
    painted: list[float] = []
    real = axial.update
    axial.update = lambda: (painted.append(time.perf_counter()), real())
    start = window.state.slices["axial"]
    tools._cine_step()
    assert window.state.slices["axial"] == start + 1
    assert len(painted) == 1, "the cine step was not painted at once"
    assert window.views.repaints.lead is axial
