"""The window's actions, toolbar and menus (built once by ``MainWindow``; the slots live on the window)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QButtonGroup, QLabel, QPushButton, QSizePolicy, QSlider, QToolBar, QToolButton,
                               QWidget)

LAYERS = ("input", "mask", "overlay")


def _action(win, text, slot, shortcut=None, tip=None, checkable=False) -> QAction:
    a = QAction(text, win)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
    a.setCheckable(checkable)
    if slot is not None:
        a.triggered.connect(slot)
    return a


def build_actions(win) -> None:
    S = QKeySequence.StandardKey
    win.act_open_image = _action(win, "Open image…", win.choose_image, S.Open, "Open an image or GeoTIFF")
    win.act_open_model = _action(win, "Open model…", win.choose_model, "Ctrl+M",
                                       "Open a model bundle or an ONNX file")
    win.act_predict = _action(win, "Predict", win.start_prediction, "Ctrl+R", "Segment the image")
    win.act_bands = _action(win, "Input bands…", win.choose_bands, None,
                            "Image bands fed to the model, 1-based as in GDAL (e.g. 4,3,2), like --bands")
    win.act_cancel = _action(win, "Cancel", win.cancel_prediction, "Esc", "Stop the running prediction")
    win.act_save_all = _action(win, "Save all results…", win.choose_save_all, S.Save,
                                     "Save class raster, colour mask, overlay, polygons and areas to a folder")
    win.act_save = {
        "classes": _action(win, "Save class raster…", lambda: win.choose_save_one("classes")),
        "color": _action(win, "Save colour mask…", lambda: win.choose_save_one("color")),
        "overlay": _action(win, "Save overlay…", lambda: win.choose_save_one("overlay")),
        "polygons": _action(win, "Save polygons…", lambda: win.choose_save_one("polygons")),
        "areas": _action(win, "Save area report (CSV + JSON)…", lambda: win.choose_save_one("areas")),
    }
    win.act_quit = _action(win, "Quit", win.close, S.Quit)
    win.act_fit = _action(win, "Fit", win.fit_views, "F", "Fit the image in the window")
    win.act_100 = _action(win, "100 %", win._actual_pixels, "1", "One image pixel per screen pixel")
    win.act_zoom_in = _action(win, "Zoom in", lambda: win._active_view().zoom_by(1.25), S.ZoomIn)
    win.act_zoom_out = _action(win, "Zoom out", lambda: win._active_view().zoom_by(0.8), S.ZoomOut)
    win.act_side = _action(win, "Side by side", win._layout_changed, "S",
                                 "Input and result side by side (or one view)", checkable=True)
    win.act_side.setChecked(True)
    win.act_toggle = _action(win, "Toggle result", win.toggle_result, "Space",
                                   "Flip between the input and the result")
    win.layer_group = QActionGroup(win)
    win.act_layer = {}
    for key, text, sc in (("input", "Input", "I"), ("mask", "Mask", "M"), ("overlay", "Overlay", "O")):
        a = _action(win, text, lambda _c=False, k=key: win.set_layer(k), sc, f"Show the {text.lower()}",
                         checkable=True)
        win.layer_group.addAction(a)
        win.act_layer[key] = a
    win.act_layer["overlay"].setChecked(True)


def build_toolbar(win) -> None:
    tb = win.toolbar = QToolBar("Main")
    tb.setMovable(False)
    tb.setIconSize(QSize(16, 16))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    win.addToolBar(tb)
    tb.addAction(win.act_open_image)
    tb.addAction(win.act_open_model)
    tb.addSeparator()
    win.predict_button = QPushButton("Predict")
    win.predict_button.setObjectName("predict")
    win.predict_button.setToolTip("Segment the image (Ctrl+R)")
    win.predict_button.clicked.connect(win.start_prediction)
    _fix_width(win.predict_button, ("Predict", "Running…"))
    win.cancel_button = QPushButton("Cancel")
    win.cancel_button.setObjectName("cancel")
    win.cancel_button.setToolTip("Stop the running prediction (Esc)")
    win.cancel_button.clicked.connect(win.cancel_prediction)
    tb.addWidget(win.predict_button)
    tb.addWidget(win.cancel_button)
    tb.addSeparator()
    win.layer_buttons = QButtonGroup(win)
    for key in LAYERS:
        b = QToolButton()
        b.setDefaultAction(win.act_layer[key])
        win.layer_buttons.addButton(b)
        tb.addWidget(b)
    side = QToolButton()
    side.setDefaultAction(win.act_side)
    tb.addWidget(side)
    tb.addSeparator()
    tb.addWidget(QLabel(" Opacity "))
    win.opacity = QSlider(Qt.Orientation.Horizontal)
    win.opacity.setRange(0, 100)
    win.opacity.setValue(55)
    win.opacity.setFixedWidth(130)
    win.opacity.setToolTip("Opacity of the class colours in the overlay")
    win.opacity.valueChanged.connect(lambda _v: win._apply_layers())
    tb.addWidget(win.opacity)
    win.opacity_label = QLabel("55 %")
    win.opacity_label.setMinimumWidth(40)
    tb.addWidget(win.opacity_label)
    tb.addSeparator()
    tb.addAction(win.act_fit)
    tb.addAction(win.act_100)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    tb.addWidget(spacer)
    win.save_button = QToolButton()
    win.save_button.setDefaultAction(win.act_save_all)
    win.save_button.setText("Save…")
    tb.addWidget(win.save_button)


def _fix_width(button: QPushButton, texts) -> None:
    """As wide as the widest of ``texts``, so the toolbar does not move when the text changes."""
    button.ensurePolished()
    current = button.text()
    widths = []
    for t in texts:
        button.setText(t)
        widths.append(button.sizeHint().width())
    button.setText(current)
    button.setFixedWidth(max(widths))


def build_menus(win) -> None:
    mb = win.menuBar()
    f = mb.addMenu("&File")
    for a in (win.act_open_image, win.act_open_model):
        f.addAction(a)
    f.addSeparator()
    f.addAction(win.act_save_all)
    for a in win.act_save.values():
        f.addAction(a)
    f.addSeparator()
    f.addAction(win.act_quit)
    r = mb.addMenu("&Run")
    r.addAction(win.act_predict)
    r.addAction(win.act_bands)
    r.addAction(win.act_cancel)
    v = mb.addMenu("&View")
    for a in win.act_layer.values():
        v.addAction(a)
    v.addAction(win.act_toggle)
    v.addAction(win.act_side)
    v.addSeparator()
    for a in (win.act_fit, win.act_100, win.act_zoom_in, win.act_zoom_out):
        v.addAction(a)
    h = mb.addMenu("&Help")
    h.addAction(_action(win, "About terraseg", win._about))
