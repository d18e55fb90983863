"""The terraseg main window.

Open an image and a model, press Predict (the work runs in a ``QThread`` through the same
``predict_array`` as the CLI), look at input / colour mask / overlay side by side or one at a time
with zoom and pan kept in sync, read the legend (share of area, hectares when georeferenced) and save
the results. Every user mistake ends in a one-sentence message box; the window keeps running.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (QApplication, QButtonGroup, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
                               QHBoxLayout,
                               QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton, QSizePolicy,
                               QSlider, QSplitter, QStyleFactory, QToolBar, QToolButton, QVBoxLayout,
                               QWidget)

from terraseg.errors import TerrasegError
from terraseg.gui.imaging import IMAGE_SUFFIXES, ImageDoc, display_rgb, downscale_nearest, open_image
from terraseg.gui.legend import LegendWidget, class_stats
from terraseg.gui.modelio import ModelDoc, open_model
from terraseg.gui.views import ImageView, SyncGroup
from terraseg.gui.worker import PredictRun, PredictWorker, RunResult

MASK_DISPLAY_MAX_SIDE = 4096
IMAGE_FILTER = "Images (*.tif *.tiff *.jpg *.jpeg *.png *.bmp);;All files (*)"
MODEL_FILTER = "Models (*.onnx bundle.json model.safetensors);;All files (*)"
LAYERS = ("input", "mask", "overlay")


def make_settings(path: str | os.PathLike | None = None) -> QSettings:
    """Settings in ``path`` (INI), ``$TERRASEG_GUI_SETTINGS``, or the user's native store."""
    path = path or os.environ.get("TERRASEG_GUI_SETTINGS")
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("terraseg", "terraseg")


def apply_theme(app: QApplication) -> None:
    """Fusion with a calm dark palette: imagery and class colours stand out, easy on the eyes all day."""
    if app.property("terrasegTheme"):
        return
    app.setProperty("terrasegTheme", True)
    app.setStyle(QStyleFactory.create("Fusion"))
    p = QPalette()
    base, window, text = QColor(30, 32, 36), QColor(43, 45, 50), QColor(222, 224, 228)
    accent = QColor(38, 166, 154)
    for role, color in [
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor(37, 39, 43)),
        (QPalette.ColorRole.ToolTipBase, QColor(55, 58, 64)), (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor(52, 55, 61)),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor(255, 90, 90)),
        (QPalette.ColorRole.Highlight, accent), (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, accent), (QPalette.ColorRole.PlaceholderText, QColor(140, 144, 150)),
        (QPalette.ColorRole.Mid, QColor(60, 63, 69)), (QPalette.ColorRole.Dark, QColor(25, 26, 29)),
    ]:
        p.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 123, 128))
    app.setPalette(p)
    app.setStyleSheet("""
        QToolBar { spacing: 4px; padding: 4px 6px; border: none; border-bottom: 1px solid #1e2023; }
        QToolButton, QPushButton { padding: 4px 10px; border-radius: 4px; }
        QToolButton:checked { background: #26a69a; color: white; }
        QPushButton#predict { background: #26a69a; color: white; font-weight: bold; padding: 5px 16px; }
        QPushButton#predict:disabled { background: #3a4a48; color: #8a9290; }
        QPushButton#cancel:enabled { background: #b5544a; color: white; }
        QLabel.heading, QLabel[heading="true"] { color: #9aa0a6; font-weight: bold;
            text-transform: uppercase; letter-spacing: 1px; padding-top: 6px; }
        QLabel[paneTitle="true"] { color: #c9ccd1; background: rgba(0,0,0,110); padding: 2px 8px;
            border-radius: 3px; }
        QTableWidget { border: none; background: #2b2d32; }
        QHeaderView::section { background: #2b2d32; color: #9aa0a6; border: none; padding: 3px 6px; }
        QStatusBar { border-top: 1px solid #1e2023; }
        QSplitter::handle { background: #1e2023; }
    """)


class _Pane(QWidget):
    """An ``ImageView`` with a small title in its corner."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.view = ImageView(title, self)
        lay.addWidget(self.view)
        self.title = QLabel(title, self.view)
        self.title.setProperty("paneTitle", True)
        self.title.move(8, 8)
        self.title.adjustSize()

    def set_title(self, text: str) -> None:
        self.title.setText(text)
        self.title.adjustSize()


class MainWindow(QMainWindow):
    """The desktop app. Public methods are what the menu, the tests and the smoke test use."""

    predictionFinished = Signal(object)  # RunResult
    predictionFailed = Signal(str)
    predictionCancelled = Signal()
    stateChanged = Signal()

    def __init__(self, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings if settings is not None else make_settings()
        self.image_doc: ImageDoc | None = None
        self.model_doc: ModelDoc | None = None
        self.full_image: np.ndarray | None = None
        self.result: RunResult | None = None
        self.run: PredictRun | None = None
        self.last_error: str | None = None
        self.quiet_errors = False  # smoke test: print errors instead of opening a dialog
        self._mask_rgb: np.ndarray | None = None  # displayed mask, RGBA at display resolution
        self._shown_classes: np.ndarray | None = None  # class raster at display resolution
        apply_theme(QApplication.instance())
        self.setWindowTitle("terraseg")
        self.setAcceptDrops(True)
        self._build_ui()
        self._restore_settings()
        self._update_state()

    # ------------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        # views
        self.left = _Pane("Input")
        self.right = _Pane("Overlay")
        self.input_view, self.result_view = self.left.view, self.right.view
        self.input_view.set_placeholder("Open an image (Ctrl+O) or drop it here")
        self.result_view.set_placeholder("Open a model (Ctrl+M), then Predict (Ctrl+R)")
        self.sync = SyncGroup([self.input_view, self.result_view])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.left)
        self.splitter.addWidget(self.right)
        self.splitter.setChildrenCollapsible(False)
        for v in (self.input_view, self.result_view):
            v.filesDropped.connect(self.open_paths)
            v.hovered.connect(self._on_hover)

        # side panel
        side = QWidget()
        side.setMinimumWidth(330)
        side.setMaximumWidth(460)
        sl = QVBoxLayout(side)
        sl.setContentsMargins(10, 6, 10, 10)
        sl.setSpacing(6)
        sl.addWidget(self._heading("Model"))
        self.model_label = QLabel("No model. Open a bundle or an .onnx file.")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sl.addWidget(self.model_label)
        sl.addWidget(self._heading("Image"))
        self.image_label = QLabel("No image.")
        self.image_label.setWordWrap(True)
        self.image_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sl.addWidget(self.image_label)
        sl.addWidget(self._heading("Legend"))
        self.legend = LegendWidget()
        self.legend.visibilityChanged.connect(self._recolour_mask)
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        sl.addWidget(self.legend, 1)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("color: #9aa0a6;")
        sl.addWidget(self.summary_label)
        sl.addWidget(self._heading("Polygons"))
        sl.addLayout(self._polygon_options())

        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.splitter)
        outer.addWidget(side)
        outer.setStretchFactor(0, 1)
        outer.setStretchFactor(1, 0)
        outer.setChildrenCollapsible(False)
        self.setCentralWidget(outer)

        self._build_actions()
        self._build_toolbar()
        self._build_menus()

        # status bar
        sb = self.statusBar()
        self.hover_label = QLabel("")
        self.hover_label.setMinimumWidth(260)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        sb.addPermanentWidget(self.hover_label)
        sb.addPermanentWidget(self.progress)
        self.resize(1360, 820)

    def _polygon_options(self) -> QFormLayout:
        """The CLI's --min-area and --simplify for saved polygons (0 keeps every pixel region as it is)."""
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.min_area = QDoubleSpinBox()
        self.simplify = QDoubleSpinBox()
        for box, tip in ((self.min_area, "Drop polygons smaller than this (terraseg predict --min-area); smaller "
                          "regions are merged into their largest neighbour"),
                         (self.simplify, "Simplification tolerance of the outlines (terraseg predict --simplify)")):
            box.setRange(0.0, 1e9)
            box.setDecimals(2)
            box.setToolTip(tip)
        form.addRow("Minimum area", self.min_area)
        form.addRow("Simplify", self.simplify)
        self._polygon_units()
        return form

    def _polygon_units(self) -> None:
        """Units as the CLI reads them: CRS units (metres for UTM) when georeferenced, pixels otherwise."""
        d = self.image_doc
        metres = d is not None and d.georeferenced and _crs_in_metres(d.crs)
        unit = "m" if metres else ("CRS units" if d is not None and d.georeferenced else "px")
        self.min_area.setSuffix(f" {unit}²")
        self.simplify.setSuffix(f" {unit}")

    def _heading(self, text: str) -> QLabel:
        lab = QLabel(text.upper())
        lab.setProperty("heading", True)
        return lab

    def _action(self, text, slot, shortcut=None, tip=None, checkable=False) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(slot)
        return a

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        self.act_open_image = self._action("Open image…", self.choose_image, S.Open, "Open an image or GeoTIFF")
        self.act_open_model = self._action("Open model…", self.choose_model, "Ctrl+M",
                                           "Open a model bundle or an ONNX file")
        self.act_predict = self._action("Predict", self.start_prediction, "Ctrl+R", "Segment the image")
        self.act_cancel = self._action("Cancel", self.cancel_prediction, "Esc", "Stop the running prediction")
        self.act_save_all = self._action("Save all results…", self.choose_save_all, S.Save,
                                         "Save class raster, colour mask, overlay, polygons and areas to a folder")
        self.act_save = {
            "classes": self._action("Save class raster…", lambda: self.choose_save_one("classes")),
            "color": self._action("Save colour mask…", lambda: self.choose_save_one("color")),
            "overlay": self._action("Save overlay…", lambda: self.choose_save_one("overlay")),
            "polygons": self._action("Save polygons…", lambda: self.choose_save_one("polygons")),
            "areas": self._action("Save area report (CSV + JSON)…", lambda: self.choose_save_one("areas")),
        }
        self.act_quit = self._action("Quit", self.close, S.Quit)
        self.act_fit = self._action("Fit", self.fit_views, "F", "Fit the image in the window")
        self.act_100 = self._action("100 %", self._actual_pixels, "1", "One image pixel per screen pixel")
        self.act_zoom_in = self._action("Zoom in", lambda: self._active_view().zoom_by(1.25), S.ZoomIn)
        self.act_zoom_out = self._action("Zoom out", lambda: self._active_view().zoom_by(0.8), S.ZoomOut)
        self.act_side = self._action("Side by side", self._layout_changed, "S",
                                     "Input and result side by side (or one view)", checkable=True)
        self.act_side.setChecked(True)
        self.act_toggle = self._action("Toggle result", self.toggle_result, "Space",
                                       "Flip between the input and the result")
        self.layer_group = QActionGroup(self)
        self.act_layer = {}
        for key, text, sc in (("input", "Input", "I"), ("mask", "Mask", "M"), ("overlay", "Overlay", "O")):
            a = self._action(text, lambda _c=False, k=key: self.set_layer(k), sc, f"Show the {text.lower()}",
                             checkable=True)
            self.layer_group.addAction(a)
            self.act_layer[key] = a
        self.act_layer["overlay"].setChecked(True)

    def _build_toolbar(self) -> None:
        tb = self.toolbar = QToolBar("Main")
        tb.setMovable(False)
        tb.setIconSize(QSize(16, 16))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(tb)
        tb.addAction(self.act_open_image)
        tb.addAction(self.act_open_model)
        tb.addSeparator()
        self.predict_button = QPushButton("Predict")
        self.predict_button.setObjectName("predict")
        self.predict_button.setToolTip("Segment the image (Ctrl+R)")
        self.predict_button.clicked.connect(self.start_prediction)
        self._fix_width(self.predict_button, ("Predict", "Running…"))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setToolTip("Stop the running prediction (Esc)")
        self.cancel_button.clicked.connect(self.cancel_prediction)
        tb.addWidget(self.predict_button)
        tb.addWidget(self.cancel_button)
        tb.addSeparator()
        self.layer_buttons = QButtonGroup(self)
        for key in LAYERS:
            b = QToolButton()
            b.setDefaultAction(self.act_layer[key])
            self.layer_buttons.addButton(b)
            tb.addWidget(b)
        side = QToolButton()
        side.setDefaultAction(self.act_side)
        tb.addWidget(side)
        tb.addSeparator()
        tb.addWidget(QLabel(" Opacity "))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setFixedWidth(130)
        self.opacity.setToolTip("Opacity of the class colours in the overlay")
        self.opacity.valueChanged.connect(lambda _v: self._apply_layers())
        tb.addWidget(self.opacity)
        self.opacity_label = QLabel("55 %")
        self.opacity_label.setMinimumWidth(40)
        tb.addWidget(self.opacity_label)
        tb.addSeparator()
        tb.addAction(self.act_fit)
        tb.addAction(self.act_100)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        self.save_button = QToolButton()
        self.save_button.setDefaultAction(self.act_save_all)
        self.save_button.setText("Save…")
        tb.addWidget(self.save_button)

    @staticmethod
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

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        for a in (self.act_open_image, self.act_open_model):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_save_all)
        for a in self.act_save.values():
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_quit)
        r = mb.addMenu("&Run")
        r.addAction(self.act_predict)
        r.addAction(self.act_cancel)
        v = mb.addMenu("&View")
        for a in self.act_layer.values():
            v.addAction(a)
        v.addAction(self.act_toggle)
        v.addAction(self.act_side)
        v.addSeparator()
        for a in (self.act_fit, self.act_100, self.act_zoom_in, self.act_zoom_out):
            v.addAction(a)
        h = mb.addMenu("&Help")
        h.addAction(self._action("About terraseg", self._about))

    # ------------------------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = self.settings
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        self.act_side.setChecked(_bool(s.value("view/side_by_side", True)))
        layer = str(s.value("view/layer", "overlay"))
        if layer in self.act_layer:
            self.act_layer[layer].setChecked(True)
        try:
            self.opacity.setValue(int(s.value("view/opacity", 55)))
            self.min_area.setValue(float(s.value("polygons/min_area", 0.0)))
            self.simplify.setValue(float(s.value("polygons/simplify", 0.0)))
        except (TypeError, ValueError):
            pass
        self._layout_changed()
        last_model = s.value("paths/model")
        if last_model and Path(str(last_model)).exists():
            try:
                self._set_model(open_model(str(last_model)))
            except TerrasegError:
                pass  # a remembered model that has gone bad is simply not reopened

    def _save_view_settings(self) -> None:
        s = self.settings
        s.setValue("view/side_by_side", self.act_side.isChecked())
        s.setValue("view/layer", self.layer())
        s.setValue("view/opacity", self.opacity.value())
        s.setValue("polygons/min_area", self.min_area.value())
        s.setValue("polygons/simplify", self.simplify.value())

    def _dir(self, key: str) -> str:
        d = self.settings.value(f"paths/{key}", "")
        return str(d) if d and Path(str(d)).is_dir() else str(Path.home())

    def _save_start_dir(self) -> str:
        """Save dialogs open beside the image (where `terraseg predict --out .` would write), else the last folder."""
        if self.image_doc is not None:
            folder = self.image_doc.path.resolve().parent
            if os.access(folder, os.W_OK):
                return str(folder)
        return self._dir("save_dir")

    def _remember_dir(self, key: str, path: str | Path) -> None:
        p = Path(path)
        self.settings.setValue(f"paths/{key}", str(p if p.is_dir() else p.parent))

    # ------------------------------------------------------------------------------------- errors
    def show_error(self, message: str, title: str = "terraseg") -> None:
        """One clear sentence in a message box; the app keeps running."""
        message = message.strip()
        if message and message[-1] not in ".!?":
            message += "."
        self.last_error = message
        self.statusBar().showMessage(message, 8000)
        if self.quiet_errors:
            print(f"error: {message}", file=sys.stderr)
            return
        QMessageBox.critical(self, title, message)

    # --------------------------------------------------------------------------------- open image
    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self._dir("image_dir"), IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str | Path) -> bool:
        if self.is_running():
            self.show_error("A prediction is running; cancel it before opening another image.")
            return False
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            doc = open_image(path)
        except TerrasegError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(str(exc), "Cannot open image")
            return False
        except MemoryError:
            QApplication.restoreOverrideCursor()
            self.show_error(f"{path}: the image is too large to preview on this computer.", "Cannot open image")
            return False
        QApplication.restoreOverrideCursor()
        self.image_doc, self.full_image, self.result, self._mask_rgb = doc, None, None, None
        self._shown_classes = None
        rgb = display_rgb(doc.preview, doc.nodata)
        for v in (self.input_view, self.result_view):
            v.set_base(rgb, (doc.width, doc.height))
            v.clear_mask()
        self._remember_dir("image_dir", doc.path)
        self.hover_label.setText("")  # the previous image's read-out no longer applies
        self.statusBar().clearMessage()
        self._show_image_info()
        self._polygon_units()
        if self.model_doc:
            self.legend.set_classes(self.model_doc.meta.classes, self.model_doc.meta.colors)
        self.summary_label.setText("")
        self._apply_layers()
        self.fit_views()
        QTimer.singleShot(0, self.fit_views)  # again once the layout has settled
        self.setWindowTitle(f"{doc.path.name} – terraseg")
        self.statusBar().showMessage(f"Opened {doc.path.name}", 4000)
        self._update_state()
        return True

    def _show_image_info(self) -> None:
        d = self.image_doc
        if d is None:
            self.image_label.setText("No image.")
            return
        lines = [f"<b>{_esc(d.path.name)}</b>", f"{d.width:,} × {d.height:,} px · {d.bands} band"
                 f"{'s' if d.bands != 1 else ''} · {d.dtype}"]
        if d.georeferenced:
            t = d.transform
            crs = d.crs.to_string() if hasattr(d.crs, "to_string") else str(d.crs)
            lines.append(f"{_esc(crs)} · pixel {abs(t.a):.3g} × {abs(t.e):.3g}")
            a = d.pixel_area_m2()
            if a:
                lines.append(f"{d.width * d.height * a / 10_000:,.1f} ha")
        else:
            lines.append("not georeferenced (areas in pixels)")
        if d.preview_scale > 1.01:
            lines.append(f"preview at 1:{d.preview_scale:.1f}")
        self.image_label.setText("<br>".join(lines))

    # --------------------------------------------------------------------------------- open model
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model (bundle.json, model.safetensors or .onnx)",
                                              self._dir("model_dir"), MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_model(self, path: str | Path) -> bool:
        if self.is_running():
            self.show_error("A prediction is running; cancel it before opening another model.")
            return False
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            doc = open_model(path)
        except TerrasegError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(str(exc), "Cannot open model")
            return False
        QApplication.restoreOverrideCursor()
        self._set_model(doc)
        self.settings.setValue("paths/model", str(doc.path))
        self._remember_dir("model_dir", doc.path)
        self.statusBar().showMessage(f"Model {doc.label} ready", 4000)
        return True

    def set_backend(self, backend, path: str | Path = "custom-model") -> None:
        """Use an already loaded backend object (anything with ``.meta`` and ``__call__``)."""
        self._set_model(ModelDoc(path=Path(path), kind="custom", meta=backend.meta, backend=backend))

    def _set_model(self, doc: ModelDoc) -> None:
        self.model_doc, self.result, self._mask_rgb, self._shown_classes = doc, None, None, None
        m = doc.meta
        self.result_view.clear_mask()
        self.legend.set_classes(m.classes, m.colors)
        self._show_model_info()
        self.hover_label.setText("")
        self.summary_label.setText("")
        self._apply_layers()
        self._update_state()

    def _show_model_info(self) -> None:
        doc = self.model_doc
        m = doc.meta
        info = [f"<b>{_esc(doc.label)}</b>",
                f"{m.num_classes} classes · {m.in_channels} band{'s' if m.in_channels != 1 else ''} · "
                f"tile {m.tile_size}", f"runs on {_esc(doc.runtime)}"]
        miou = (m.metrics or {}).get("miou") if isinstance(m.metrics, dict) else None
        if isinstance(miou, (int, float)):
            info.append(f"validation mIoU {miou:.3f}")
        self.model_label.setText("<br>".join(info))

    def open_paths(self, paths: list[str]) -> None:
        """Dropped files: models go to the model slot, anything else is opened as an image."""
        for p in paths:
            pp = Path(p)
            if pp.suffix.lower() in (".onnx",) or pp.name in ("bundle.json", "model.safetensors") or (
                    pp.is_dir() and (pp / "bundle.json").exists()):
                self.open_model(pp)
            else:
                self.open_image(pp)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        self.open_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])

    # ---------------------------------------------------------------------------------- predict
    def is_running(self) -> bool:
        return self.run is not None

    def start_prediction(self) -> bool:
        """Start a run in the worker thread; ignored (returns False) while one is running."""
        if self.run is not None:
            return False  # guarded: a second click never starts a second run
        if self.image_doc is None:
            self.show_error("Open an image first.")
            return False
        if self.model_doc is None:
            self.show_error("Open a model first (a bundle folder, bundle.json, model.safetensors or .onnx file).")
            return False
        m = self.model_doc.meta
        if self.image_doc.bands != m.in_channels:
            self.show_error(f"{self.image_doc.path}: the image has {self.image_doc.bands} band"
                            f"{'s' if self.image_doc.bands != 1 else ''} but the model expects {m.in_channels}",
                            "Wrong band count")
            return False
        options = {"nodata": self.image_doc.nodata} if self.image_doc.nodata is not None else {}
        worker = PredictWorker(self.image_doc, self.model_doc, self.full_image, options)
        worker.progress.connect(self._on_progress)
        worker.stage.connect(self._on_stage)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        self.run = PredictRun(worker)
        self.run.thread.finished.connect(self._on_thread_done)
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting…")
        self.progress.setVisible(True)
        self._update_state()
        self.run.start()
        return True

    def cancel_prediction(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.progress.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)
            self.act_cancel.setEnabled(False)

    def _on_stage(self, text: str) -> None:
        self.statusBar().showMessage(text)
        if self.progress.maximum() == 0:
            self.progress.setFormat(text)

    def _on_progress(self, done: int, total: int) -> None:
        if self.run is None or self.run.worker.is_cancelled():
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("tile %v / %m  (%p %)")

    def _on_finished(self, result: RunResult) -> None:
        self.full_image = result.image
        self.result = result
        self._show_model_info()  # a bundle's backend is loaded now: its own device and precision
        self._show_result()
        h, w = result.classes.shape
        self.statusBar().showMessage(f"Predicted {w:,} × {h:,} px in {result.seconds:.1f} s", 8000)
        self.predictionFinished.emit(result)

    def _on_failed(self, message: str) -> None:
        self.show_error(message, "Prediction failed")
        self.predictionFailed.emit(message)

    def _on_cancelled(self) -> None:
        self.statusBar().showMessage("Prediction cancelled", 5000)
        self.predictionCancelled.emit()

    def _on_thread_done(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            run.thread.wait()  # finished: the Python objects (owners of worker and thread) can go
        self.progress.setVisible(False)
        self._update_state()
        self.stateChanged.emit()

    def _recolour_mask(self, _visible=None) -> None:
        """Colour the displayed class raster; classes unticked in the legend are transparent."""
        if self.result is None or self._shown_classes is None:
            return
        m = self.model_doc.meta
        lut = np.zeros((256, 4), np.uint8)  # ignore/nodata and unknown values: transparent
        for i, (c, vis) in enumerate(zip(m.colors, self.legend.visible_classes())):
            lut[i, :3] = c[:3]
            lut[i, 3] = 255 if vis else 0
        self._mask_rgb = lut[self._shown_classes]
        self.result_view.set_mask(self._mask_rgb)
        self._apply_layers()

    def _show_result(self) -> None:
        r, m, d = self.result, self.model_doc.meta, self.image_doc
        h, w = r.classes.shape
        scale = max(1.0, max(h, w) / MASK_DISPLAY_MAX_SIDE)
        shown = downscale_nearest(r.classes, (max(1, round(h / scale)), max(1, round(w / scale))))
        self._shown_classes = shown
        self._recolour_mask()
        from terraseg.gui.saving import area_report_for

        report = area_report_for(r.classes, m, d)
        self.legend.set_stats(class_stats(report, m.colors))
        if report.get("total_m2") is not None:
            area = f"{report['total_m2'] / 10_000:,.2f} ha"
        else:
            area = f"{report['classified_pixels']:,} pixels"
        nodata = f" ({report['nodata_pixels']:,} nodata pixels)" if report.get("nodata_pixels") else ""
        self.summary_label.setText(f"{area} classified in {r.seconds:.1f} s{nodata}")
        if self.layer() == "input":
            self.set_layer("overlay")
        self._apply_layers()

    # ------------------------------------------------------------------------------------ views
    def layer(self) -> str:
        for k, a in self.act_layer.items():
            if a.isChecked():
                return k
        return "overlay"

    def set_layer(self, key: str) -> None:
        if self.act_side.isChecked() and key == "input":
            key = "overlay"  # the input is always on the left when side by side
        self.act_layer[key].setChecked(True)
        self._apply_layers()

    def toggle_result(self) -> None:
        """Space: flip the single view between the input and the result."""
        if self.act_side.isChecked():
            self.act_side.setChecked(False)
            self._layout_changed()
        self.set_layer("input" if self.layer() != "input" else "overlay")

    def _layout_changed(self) -> None:
        side = self.act_side.isChecked()
        self.left.setVisible(side)
        self.act_layer["input"].setEnabled(not side)
        if side and self.layer() == "input":
            self.act_layer["overlay"].setChecked(True)
        self._apply_layers()
        if self.image_doc is not None:
            QTimer.singleShot(0, lambda: self.sync.sync_from(self.result_view))

    def _apply_layers(self) -> None:
        layer = self.layer()
        op = self.opacity.value() / 100.0
        self.opacity_label.setText(f"{self.opacity.value()} %")
        has = self.result_view.has_mask()
        if layer == "input" or not has:
            self.result_view.set_layers(base=True, mask=False)
        elif layer == "mask":
            self.result_view.set_layers(base=False, mask=True, opacity=1.0)
        else:
            self.result_view.set_layers(base=True, mask=True, opacity=op)
        self.opacity.setEnabled(layer == "overlay")
        title = {"input": "Input", "mask": "Colour mask", "overlay": "Overlay"}[layer]
        if not has and layer != "input":
            title += " (no prediction yet)"
        self.right.set_title(title)
        self._save_view_settings()

    def fit_views(self) -> None:
        """Fit the whole image in the result pane (always visible); the input pane follows."""
        self.result_view.fit()

    def _active_view(self) -> ImageView:
        return self.result_view

    def _actual_pixels(self) -> None:
        self.result_view.actual_pixels()

    def _on_hover(self, x: float, y: float) -> None:
        if x < 0 or self.image_doc is None:
            self.hover_label.setText("")
            return
        xi, yi = int(x), int(y)
        text = f"x {xi:,}  y {yi:,}"
        d = self.image_doc
        if d.georeferenced:
            gx, gy = d.transform @ (xi + 0.5, yi + 0.5)
            text += f"  ({gx:,.2f}, {gy:,.2f})"
        if self.result is not None and self.model_doc is not None:
            c = int(self.result.classes[min(yi, self.result.classes.shape[0] - 1),
                                        min(xi, self.result.classes.shape[1] - 1)])
            names = self.model_doc.meta.classes
            text += f"  ·  {names[c] if c < len(names) else c}"
        self.hover_label.setText(text)

    # ------------------------------------------------------------------------------------- save
    def choose_save_all(self) -> None:
        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Save all results into folder", self._save_start_dir())
        if folder:
            self.save_all(folder)

    def choose_save_one(self, kind: str) -> None:
        from terraseg.gui.saving import default_name, file_filter

        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return
        start = str(Path(self._save_start_dir()) / default_name(kind, self.image_doc))
        path, _ = QFileDialog.getSaveFileName(self, self.act_save[kind].text().rstrip("…"), start,
                                              file_filter(kind, self.image_doc))
        if path:
            self.save_one(kind, path)

    def save_one(self, kind: str, path: str | Path) -> Path | None:
        from terraseg.gui import saving

        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            out = saving.save(kind, Path(path), self._save_context())
        except TerrasegError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(str(exc), "Cannot save")
            return None
        except OSError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(f"{path}: cannot write the file ({exc.strerror or exc})", "Cannot save")
            return None
        QApplication.restoreOverrideCursor()
        self._remember_dir("save_dir", out)
        self.statusBar().showMessage(f"Saved {out}", 6000)
        return out

    def save_all(self, folder: str | Path) -> dict[str, Path]:
        from terraseg.gui import saving

        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return {}
        folder = Path(folder)
        out: dict[str, Path] = {}
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            ctx = self._save_context()
            for kind, path in saving.output_files(folder, self.image_doc).items():
                if kind == "polygons" and not saving.can_save_polygons():
                    continue
                out[kind] = saving.save(kind, path, ctx)
        except TerrasegError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(str(exc), "Cannot save")
            return out
        except OSError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(f"{folder}: cannot write the results ({exc.strerror or exc})", "Cannot save")
            return out
        QApplication.restoreOverrideCursor()
        self.settings.setValue("paths/save_dir", str(folder))
        self.statusBar().showMessage(f"Saved {len(out)} files to {folder}", 6000)
        return out

    def _save_context(self):
        from terraseg.gui.saving import SaveContext

        return SaveContext(image_doc=self.image_doc, meta=self.model_doc.meta, classes=self.result.classes,
                           image=self.result.image, opacity=self.opacity.value() / 100.0,
                           min_area=self.min_area.value(), simplify=self.simplify.value())

    # ------------------------------------------------------------------------------------- state
    def _update_state(self) -> None:
        running = self.run is not None
        can = self.image_doc is not None and self.model_doc is not None and not running
        self.predict_button.setEnabled(can)
        self.act_predict.setEnabled(can)
        self.cancel_button.setEnabled(running)
        self.act_cancel.setEnabled(running)
        self.act_open_image.setEnabled(not running)
        self.act_open_model.setEnabled(not running)
        has = self.result is not None and not running
        self.act_save_all.setEnabled(has)
        self.save_button.setEnabled(has)
        for k, a in self.act_save.items():
            a.setEnabled(has)
        if has:
            from terraseg.gui.saving import can_save_polygons

            self.act_save["polygons"].setEnabled(can_save_polygons())
        self.predict_button.setText("Running…" if running else "Predict")

    def _about(self) -> None:
        from terraseg import __version__

        QMessageBox.about(self, "About terraseg",
                          f"<b>terraseg {__version__}</b><br>Semantic segmentation of satellite and aerial "
                          "imagery.<br><br>Mouse wheel: zoom · drag: pan · Space: flip input/result · "
                          "I / M / O: input, mask, overlay · S: side by side · F: fit")

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.run is not None:
            self.run.cancel()
            self.run.wait(10000)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self._save_view_settings()
        self.settings.sync()
        super().closeEvent(event)


def _crs_in_metres(crs) -> bool:
    try:
        return bool(crs.is_projected) and abs(float(crs.linear_units_factor[1]) - 1.0) < 1e-9
    except Exception:  # a CRS object without linear units
        return False


def _bool(v) -> bool:
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes")
    return bool(v)


def _esc(s: str) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def create_window(settings: QSettings | None = None) -> MainWindow:
    return MainWindow(settings=settings)


__all__ = ["MainWindow", "apply_theme", "make_settings", "IMAGE_SUFFIXES"]
