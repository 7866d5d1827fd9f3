"""When each view of the window is painted: the view being worked in first, the others later.

Every view is a QOpenGLWidget, and Qt composes the whole window again whenever any of them
is painted, so the cost of a paint grows with the window, not with the view. While the
reader scrolls or drags in one view (the lead), the lines and planes that follow in the
other views are gathered and painted together once the input pauses, or at the latest
``MAX_LAG_MS`` after their first change, so they still move during a long scroll. A lone
step (one key press) reaches every view within ``QUIET_MS``.

Requests already coalesce: a view asked to render several times in one turn of the event
loop is painted once (``QWidget.update``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QObject, QTimer


class RepaintScheduler(QObject):
    """Paints the lead view at once and defers the others while the lead keeps changing."""

    QUIET_MS = 40  # the other views are painted once the lead has been still this long
    MAX_LAG_MS = 150  # ...or at the latest this long after their first pending change

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lead: Any = None
        self._pending: dict[Any, float] = {}  # view -> when its first unpainted change came
        self._chores: dict[Any, list[Callable[[], None]]] = {}  # view -> widget updates
        self._lead_at = 0.0  # when the lead was last asked to paint
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._paint_due)

    def set_lead(self, view: Any) -> None:
        """The view the reader works in now (mouse press, wheel, key, or the focused plane)."""
        if view is self.lead:
            return
        self._follow_frames(self.lead, False)
        self.lead = view
        self._follow_frames(view, True)
        if view in self._pending:  # it shows its pending change at once
            del self._pending[view]
            self._run_chores(view)
            view.update()

    def request(self, view: Any) -> None:
        """``view`` must show a new picture: now if it leads, soon otherwise."""
        now = time.perf_counter()
        if self._leads(view):
            self._lead_at = now
            view.update()
            if self._pending:
                self._arm(now)
            return
        self._pending.setdefault(view, now)
        self._arm(now)

    def with_paint(self, view: Any, chore: Callable[[], None]) -> None:
        """Run ``chore`` (a Qt widget update beside ``view``: its slider, its slice number)
        when ``view`` is painted: at once for the lead, with the deferred paint otherwise.
        A widget next to a view shares its window, and repainting it costs a composition
        of that window as much as the view itself."""
        if self._leads(view):
            chore()
            return
        chores = self._chores.setdefault(view, [])
        if chore not in chores:
            chores.append(chore)
        self.request(view)

    def paint_pending(self) -> None:
        """Paint every deferred view now (before a screenshot or a grab)."""
        self._timer.stop()
        pending, self._pending = self._pending, {}
        for view in pending:
            self._run_chores(view)
            view.update()

    def forget(self, view: Any) -> None:
        """``view`` is closing: nothing more is painted for it."""
        self._pending.pop(view, None)
        self._chores.pop(view, None)
        if view is self.lead:
            self._follow_frames(view, False)
            self.lead = None

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    # -- internals -----------------------------------------------------------------------
    def _run_chores(self, view: Any) -> None:
        for chore in self._chores.pop(view, []):
            chore()

    def _follow_frames(self, view: Any, on: bool) -> None:
        """The lead counts as still from the moment its picture is on screen, not from the
        request: a paint that takes longer than QUIET_MS is not a pause."""
        swapped = getattr(view, "frameSwapped", None)
        if swapped is None:
            return
        if on:
            swapped.connect(self._lead_painted)
        else:
            with contextlib.suppress(TypeError, RuntimeError):  # not connected, or gone
                swapped.disconnect(self._lead_painted)

    def _lead_painted(self) -> None:
        self._lead_at = time.perf_counter()
        if self._pending:
            self._arm(self._lead_at)

    def _leads(self, view: Any) -> bool:
        lead = self.lead
        # Without a visible lead (nothing touched yet, or the lead hidden by a maximised
        # view) there is nothing to put first: paint as asked.
        return lead is None or view is lead or not lead.isVisible()

    def _arm(self, now: float) -> None:
        """Fire when the lead has been quiet for QUIET_MS, but no later than MAX_LAG_MS after
        the oldest pending change."""
        oldest = min(self._pending.values())
        quiet_at = self._lead_at + self.QUIET_MS / 1000.0
        latest = oldest + self.MAX_LAG_MS / 1000.0
        due = max(now, min(max(quiet_at, now), latest))
        self._timer.start(max(0, round((due - now) * 1000.0)))

    def _paint_due(self) -> None:
        now = time.perf_counter()
        if not self._pending:
            return
        oldest = min(self._pending.values())
        lead_still = now - self._lead_at < self.QUIET_MS / 1000.0
        if lead_still and now - oldest < self.MAX_LAG_MS / 1000.0:
            self._arm(now)
            return
        self.paint_pending()
