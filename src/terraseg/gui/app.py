"""The terraseg main window.

Open an image and a model, press Predict (the work runs in a ``QThread`` through the same streaming
``predict_file`` as ``terraseg predict``), look at input / colour mask / overlay side by side or one
at a time with zoom and pan kept in sync, read the legend (share of area, hectares when
georeferenced) and save the CLI's outputs. Every user mistake ends in a one-sentence message box; the
window keeps running. The window is put together from focused parts: ``toolbar`` (actions, toolbar,
menus), ``side_panel``, and the behaviour in ``opening``, ``running``, ``viewing`` and ``save_actions``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QProgressBar, QSplitter

from terraseg.errors import TerrasegError
from terraseg.gui.imaging import IMAGE_SUFFIXES, ImageDoc
from terraseg.gui.modelio import ModelDoc, open_model
from terraseg.gui.opening import OpeningMixin
from terraseg.gui.running import RunningMixin
from terraseg.gui.save_actions import SavingMixin
from terraseg.gui.side_panel import SidePanel
from terraseg.gui.theme import apply_theme, make_settings
from terraseg.gui.toolbar import build_actions, build_menus, build_toolbar
from terraseg.gui.views import Pane, SyncGroup
from terraseg.gui.viewing import ViewingMixin
from terraseg.gui.worker import PredictRun, RunResult


class MainWindow(OpeningMixin, RunningMixin, ViewingMixin, SavingMixin, QMainWindow):
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
        self.result: RunResult | None = None
        self.run: PredictRun | None = None
        self.last_error: str | None = None
        self.quiet_errors = False  # smoke test: print errors instead of opening a dialog
        self.bands: list[int] | None = None  # input bands fed to the model (1-based); None: the model's choice
        self._mask_rgb: np.ndarray | None = None  # displayed mask, RGBA at display resolution
        apply_theme(QApplication.instance())
        self.setWindowTitle("terraseg")
        self.setAcceptDrops(True)
        self._build_ui()
        self._restore_settings()
        self._update_state()

    def _build_ui(self) -> None:
        self.left = Pane("Input")
        self.right = Pane("Overlay")
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

        self.panel = SidePanel()
        # the panel's parts the window works with (and the tests look at)
        self.model_label, self.image_label = self.panel.model_label, self.panel.image_label
        self.legend, self.summary_label = self.panel.legend, self.panel.summary_label
        self.min_area, self.simplify = self.panel.min_area, self.panel.simplify
        self.legend.visibilityChanged.connect(self._recolour_mask)

        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.splitter)
        outer.addWidget(self.panel)
        outer.setStretchFactor(0, 1)
        outer.setStretchFactor(1, 0)
        outer.setChildrenCollapsible(False)
        self.setCentralWidget(outer)

        build_actions(self)
        build_toolbar(self)
        build_menus(self)

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


def _bool(v) -> bool:
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes")
    return bool(v)


__all__ = ["MainWindow", "apply_theme", "make_settings", "IMAGE_SUFFIXES"]
