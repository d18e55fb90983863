"""Zoom and pan in the default side-by-side view (issue 16: wheel, "100 %", key 1 and Zoom in snapped back).

Every check lets Qt process its events first (layout, scroll bars, resizes): the old code changed the
zoom at once and lost it a moment later, which a test asserting straight after the call cannot see.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

SETTLE_MS = 250  # long enough for queued layout, scroll-bar and resize events


def _centre(view):
    return view.mapToScene(view.viewport().rect().center())


def _in_sync(win) -> bool:
    left, right = win.input_view, win.result_view
    a, b = _centre(left), _centre(right)
    return (left.transform() == right.transform() and abs(a.x() - b.x()) < 1.5 and abs(a.y() - b.y()) < 1.5)


def _settle(qtbot, condition, timeout=5000) -> None:
    """Wait until ``condition`` holds, let the event loop run a little more, then it must still hold."""
    qtbot.waitUntil(condition, timeout=timeout)
    qtbot.wait(SETTLE_MS)
    assert condition()


@pytest.fixture
def side_by_side(qtbot, window, big_image):
    assert window.act_side.isChecked()  # the default view
    assert window.open_image(big_image)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.left.isVisible() and window.result_view.fitted)
    qtbot.wait(SETTLE_MS)
    fit = window.result_view.zoom()
    assert fit < 1.0  # 768 px in a pane of ~470 px: the fitted view is zoomed out
    assert _in_sync(window)
    return window, fit


def _wheel(view, steps: int, at: QPointF | None = None) -> None:
    at = at or QPointF(view.viewport().rect().center())
    ev = QWheelEvent(at, QPointF(view.viewport().mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)


def test_wheel_zooms_both_panes_and_the_zoom_stays(qtbot, side_by_side):
    win, fit = side_by_side
    right, left = win.result_view, win.input_view
    _wheel(right, 2)  # 1.25 ** 2
    _settle(qtbot, lambda: right.zoom() == pytest.approx(fit * 1.5625) and _in_sync(win))
    assert not right.fitted and not left.fitted
    # the left pane drives just as well
    _wheel(left, 3)
    _settle(qtbot, lambda: left.zoom() == pytest.approx(fit * 1.5625 * 1.953125) and _in_sync(win))


def test_wheel_keeps_the_point_under_the_cursor(qtbot, side_by_side):
    win, _fit = side_by_side
    right = win.result_view
    _wheel(right, 4)  # zoom in first so the scene is larger than the pane
    _settle(qtbot, lambda: _in_sync(win) and right.zoom() > 1.0)
    at = QPointF(right.viewport().width() * 0.25, right.viewport().height() * 0.3)
    before = right.mapToScene(at.toPoint())
    _wheel(right, 1, at)
    _settle(qtbot, lambda: _in_sync(win))
    after = right.mapToScene(at.toPoint())
    assert abs(after.x() - before.x()) < 2 and abs(after.y() - before.y()) < 2


def test_keys_one_zoom_in_and_fit(qtbot, side_by_side):
    win, fit = side_by_side
    right = win.result_view
    qtbot.keyClick(right, Qt.Key.Key_1)
    _settle(qtbot, lambda: right.zoom() == pytest.approx(1.0) and _in_sync(win))
    for seq in win.act_zoom_in.shortcuts()[:1]:
        combo = seq[0]
        qtbot.keyClick(right, combo.key(), combo.keyboardModifiers())
    _settle(qtbot, lambda: right.zoom() == pytest.approx(1.25) and _in_sync(win))
    qtbot.keyClick(right, Qt.Key.Key_F)
    _settle(qtbot, lambda: right.fitted and right.zoom() == pytest.approx(fit, rel=0.02) and _in_sync(win))


def test_toolbar_buttons_100_percent_and_zoom_menu(qtbot, side_by_side):
    win, fit = side_by_side
    right = win.result_view
    button = win.toolbar.widgetForAction(win.act_100)
    assert button is not None and button.isVisible()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    _settle(qtbot, lambda: right.zoom() == pytest.approx(1.0) and _in_sync(win))
    win.act_zoom_out.trigger()  # the View menu entries
    _settle(qtbot, lambda: right.zoom() == pytest.approx(0.8) and _in_sync(win))
    qtbot.mouseClick(win.toolbar.widgetForAction(win.act_fit), Qt.MouseButton.LeftButton)
    _settle(qtbot, lambda: right.fitted and right.zoom() == pytest.approx(fit, rel=0.02) and _in_sync(win))


def test_pan_by_dragging_and_arrow_keys_moves_both_panes(qtbot, side_by_side):
    win, _fit = side_by_side
    right, left = win.result_view, win.input_view
    right.actual_pixels()
    _settle(qtbot, lambda: right.zoom() == pytest.approx(1.0) and _in_sync(win))
    start = _centre(left)
    vp = right.viewport()
    p0 = QPointF(vp.width() / 2, vp.height() / 2)
    p1 = p0 + QPointF(120, 40)

    def send(kind, pos, buttons):
        ev = QMouseEvent(kind, pos, QPointF(vp.mapToGlobal(pos.toPoint())), Qt.MouseButton.LeftButton
                         if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)

    send(QEvent.Type.MouseButtonPress, p0, Qt.MouseButton.LeftButton)
    for t in (0.25, 0.5, 0.75, 1.0):
        send(QEvent.Type.MouseMove, p0 + (p1 - p0) * t, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, p1, Qt.MouseButton.NoButton)
    # dragging the image right and down shows what lies left and up of it: 120, 40 image pixels at 100 %
    _settle(qtbot, lambda: _in_sync(win) and abs(_centre(left).x() - (start.x() - 120)) < 2
            and abs(_centre(left).y() - (start.y() - 40)) < 2)
    before = _centre(left)
    qtbot.keyClick(right, Qt.Key.Key_Right)
    _settle(qtbot, lambda: _in_sync(win) and _centre(left).x() > before.x())


def test_zoom_survives_a_prediction_and_switching_views(qtbot, side_by_side, slow_backend):
    win, fit = side_by_side
    right = win.result_view
    slow_backend.delay = 0.0
    win.set_backend(slow_backend)
    _wheel(right, 3)
    _settle(qtbot, lambda: right.zoom() == pytest.approx(fit * 1.25 ** 3) and _in_sync(win))
    zoom = right.zoom()
    with qtbot.waitSignal(win.predictionFinished, timeout=60000):
        win.start_prediction()
    qtbot.waitUntil(lambda: win.run is None, timeout=60000)
    _settle(qtbot, lambda: right.zoom() == pytest.approx(zoom) and _in_sync(win))
    qtbot.keyClick(right, Qt.Key.Key_S)  # one view
    _settle(qtbot, lambda: not win.left.isVisible() and right.zoom() == pytest.approx(zoom))
    qtbot.keyClick(right, Qt.Key.Key_S)  # side by side again
    _settle(qtbot, lambda: win.left.isVisible() and right.zoom() == pytest.approx(zoom) and _in_sync(win))
    assert QKeySequence(win.act_side.shortcut()).toString() == "S"
