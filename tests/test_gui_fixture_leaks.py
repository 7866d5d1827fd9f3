"""The ``make_viewer`` fixture fails a test that leaves a window or a worker thread behind."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.gui

INNER_TESTS = '''
import threading

from PyQt5.QtWidgets import QDialog

from mprviewer.gui.worker import JobRunner
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer
KEEP = []  # the leaked objects stay referenced, as a forgotten attribute would keep them
RELEASE = threading.Event()


def test_clean(make_viewer):
    window = make_viewer()
    dialog = QDialog(window)  # a child of the window goes away with it
    dialog.setWindowTitle("child")
    dialog.show()


def test_leaks_a_window(make_viewer):
    make_viewer()
    stray = QDialog()  # no parent: outlives the viewer
    stray.setWindowTitle("stray dialog")
    stray.show()
    KEEP.append(stray)


def test_leaks_a_thread(make_viewer):
    make_viewer()
    runner = JobRunner(show_dialog=False)  # not the window's: closing it does not stop this
    KEEP.append(runner)
    runner.start(lambda progress, cancel: RELEASE.wait(3))  # outlives a slow teardown
'''


def test_make_viewer_fails_tests_that_leak(pytester, qapp):
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    # Each test body passes; the fixture's teardown turns the two leaks into errors.
    result.assert_outcomes(passed=3, errors=2)
    text = result.stdout.str()
    assert "ERROR at teardown of test_leaks_a_window" in text
    assert "ERROR at teardown of test_leaks_a_thread" in text
    assert "ERROR at teardown of test_clean" not in text
    assert "top-level widgets outlived the window: QDialog('stray dialog')" in text
    assert "1 worker thread(s) still running" in text
    from mprviewer.gui.worker import running_workers

    assert running_workers() == []  # the fixture waited for the leaked thread
