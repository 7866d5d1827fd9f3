"""Run slow work (scanning a study, reading a series) off the GUI thread.

A job is a plain callable ``job(progress, cancel) -> result`` that knows nothing about Qt:
``progress(done, total)`` may be called from the worker thread, ``cancel`` is a
``threading.Event`` the job checks between files. The Qt side turns progress into a progress
dialog and the outcome into signals delivered on the GUI thread, so the window never freezes and
never touches VTK from another thread.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QObject, Qt, QThread, QTimer, pyqtSignal
from PyQt5.QtWidgets import QProgressDialog, QWidget

from mprviewer.errors import LoadCancelled

Job = Callable[[Callable[[int, int], None], threading.Event], Any]

_LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def running_workers() -> list[QThread]:
    """Worker threads still running: a window that closed cleanly leaves none."""
    alive = []
    for thread in list(_LIVE_THREADS):
        try:
            if thread.isRunning():
                alive.append(thread)
        except RuntimeError:  # the C++ object is gone, so is the thread
            continue
    return alive


class _JobThread(QThread):
    """Runs one job; reports through queued signals (received on the GUI thread)."""

    progressed = pyqtSignal(int, int)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object)

    def __init__(self, job: Job, cancel: threading.Event) -> None:
        super().__init__()
        self._job = job
        self._cancel = cancel
        self._last_emit = 0.0

    def _progress(self, done: int, total: int) -> None:
        # Throttle: a folder of 2000 files must not flood the GUI thread with events.
        now = time.monotonic()
        if done >= total or now - self._last_emit > 0.05:
            self._last_emit = now
            self.progressed.emit(int(done), int(total))
        if self._cancel.is_set():
            raise LoadCancelled("loading was cancelled")

    def run(self) -> None:
        try:
            result = self._job(self._progress, self._cancel)
            if self._cancel.is_set():
                raise LoadCancelled("loading was cancelled")
        except BaseException as exc:
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)


class JobRunner(QObject):
    """Runs one job at a time with a progress dialog (files read / total) and a Cancel button.

    Signals (always on the GUI thread): ``finished(result)``, ``failed(exception)``,
    ``cancelled()``. Starting a job while another runs cancels the older one first.
    """

    finished = pyqtSignal(object)
    failed = pyqtSignal(object)
    cancelled = pyqtSignal()

    def __init__(self, parent: QWidget | None = None, show_dialog: bool = True) -> None:
        super().__init__(parent)
        self._parent_widget = parent
        self._show_dialog = show_dialog
        self._thread: _JobThread | None = None
        self._cancel: threading.Event | None = None
        self._dialog: QProgressDialog | None = None
        self._label = ""
        self._old: list[_JobThread] = []

    # -- public ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._thread is not None

    @property
    def dialog(self) -> QProgressDialog | None:
        """The progress dialog of the running job (tests press its Cancel button)."""
        return self._dialog

    def start(self, job: Job, label: str = "Loading…") -> None:
        """Run ``job`` in a new thread; the previous job, if any, is cancelled."""
        if self._thread is not None:
            self.cancel()
            self._detach()
        cancel = threading.Event()
        thread = _JobThread(job, cancel)
        thread.progressed.connect(self._on_progress, Qt.QueuedConnection)
        thread.succeeded.connect(self._on_succeeded, Qt.QueuedConnection)
        thread.failed.connect(self._on_failed, Qt.QueuedConnection)
        self._thread, self._cancel, self._label = thread, cancel, label
        _LIVE_THREADS.add(thread)
        if self._show_dialog:
            self._open_dialog(label)
        thread.start()

    def cancel(self) -> None:
        """Ask the running job to stop; ``cancelled`` follows when it has."""
        if self._cancel is not None:
            self._cancel.set()
        if self._dialog is not None:
            self._dialog.setLabelText("Cancelling…")

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel and wait for every thread this runner started (window close)."""
        self.cancel()
        threads = [t for t in [self._thread, *self._old] if t is not None]
        for thread in threads:
            thread.wait(timeout_ms)
        self._thread = None
        self._old.clear()
        self._close_dialog()

    # -- internals ---------------------------------------------------------------------
    def _open_dialog(self, label: str) -> None:
        self._close_dialog()
        dialog = QProgressDialog(label, "Cancel", 0, 0, self._parent_widget)
        dialog.setWindowTitle("mprviewer")
        dialog.setWindowModality(Qt.WindowModal)
        dialog.setMinimumDuration(400)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.cancel)
        self._dialog = dialog
        # QProgressDialog shows itself after minimumDuration only when setValue is called.
        QTimer.singleShot(450, self._show_if_running)

    def _show_if_running(self) -> None:
        if self._dialog is not None and self._thread is not None:
            self._dialog.show()

    def _close_dialog(self) -> None:
        dialog, self._dialog = self._dialog, None
        if dialog is not None:
            dialog.canceled.disconnect(self.cancel)
            dialog.hide()
            dialog.deleteLater()

    def _detach(self) -> None:
        """Forget the current thread but keep it referenced until it has finished."""
        if self._thread is not None:
            thread = self._thread
            for signal in (thread.progressed, thread.succeeded, thread.failed):
                signal.disconnect()
            thread.finished.connect(lambda t=thread: self._forget(t))
            self._old.append(thread)
        self._thread = None
        self._cancel = None

    def _forget(self, thread: _JobThread) -> None:
        if thread in self._old:
            self._old.remove(thread)
        thread.deleteLater()

    def _finish_thread(self) -> None:
        thread, self._thread, self._cancel = self._thread, None, None
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        self._close_dialog()

    def _on_progress(self, done: int, total: int) -> None:
        dialog = self._dialog
        if dialog is None or self.sender() is not self._thread:
            return
        if total > 0:
            dialog.setMaximum(total)
            dialog.setValue(min(done, total))
            dialog.setLabelText(f"{self._label}\n{done} of {total} files read")

    def _on_succeeded(self, result: object) -> None:
        if self.sender() is not self._thread:
            return
        self._finish_thread()
        self.finished.emit(result)

    def _on_failed(self, exc: object) -> None:
        if self.sender() is not self._thread:
            return
        self._finish_thread()
        if isinstance(exc, LoadCancelled):
            self.cancelled.emit()
        else:
            self.failed.emit(exc)
