"""The desktop window is a binding of its session: calls on the session show in the widgets,
and the widgets' own input lands in the session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from mprviewer.gui.annotation_controller import install_annotations
from tests import gui_fixtures

qapp = gui_fixtures.qapp
make_viewer = gui_fixtures.make_viewer

pytestmark = pytest.mark.gui


@pytest.fixture
def study_folder(tmp_path: Path) -> Path:
    from mprviewer.synthetic.writer import write_series

    array = np.zeros((20, 32, 40), dtype=np.int16)
    array[:, 8:24, 10:30] = 100
    write_series(tmp_path / "study" / "ct", array, slice_spacing=2.0, window=(40, 400), seed=3)
    return tmp_path / "study"


def test_session_calls_show_in_the_window_and_input_reaches_the_session(
        make_viewer, qtbot, study_folder) -> None:
    window = make_viewer()
    install_annotations(window)
    with qtbot.waitSignal(window.volume_changed, timeout=30000):
        window.open_source(str(study_folder))
    session = window.session
    axial = window.views.slice_views["axial"]
    assert window.volume is session.volume and window.state is session.state

    session.focus("axial")
    session.set_slice("axial", 5)
    assert axial.slider.value() == 5
    assert axial.info.text() == "5 / 20"
    session.set_window(10, 100)
    assert (window.controls.center.value(), window.controls.width_box.value()) == (10, 100)

    session.toggle_mark()
    assert axial.slider.marks == [5]
    assert axial.marked == {5: ["Anomaly"]}
    session.undo()
    assert axial.slider.marks == []

    # The other way: a key in the view and a control move the session.
    axial.interactor.setFocus(Qt.OtherFocusReason)
    qtbot.keyClick(axial.interactor, Qt.Key_Up)
    assert session.state.slices["axial"] == 6
    window.controls.threshold_box.setValue(55)
    assert session.state.threshold == 55
    window.act_overlay.trigger()
    assert session.state.threshold_overlay is True
