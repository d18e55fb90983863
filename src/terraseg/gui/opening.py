"""Opening images and models in the window (file dialogs, drag and drop); part of ``MainWindow``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

from terraseg.bundle import is_onnx_model
from terraseg.errors import TerrasegError
from terraseg.gui.imaging import IMAGE_SUFFIXES, open_image
from terraseg.gui.modelio import ModelDoc, open_model

IMAGE_FILTER = f"Images ({' '.join('*' + s for s in IMAGE_SUFFIXES)});;All files (*)"
MODEL_FILTER = "Models (*.onnx bundle.json model.safetensors);;All files (*)"


class OpeningMixin:
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
            self.show_error(str(exc), "Cannot open image")
            return False
        except MemoryError:
            self.show_error(f"{path}: the image is too large to preview on this computer.", "Cannot open image")
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self.image_doc = doc
        self.clear_result()
        for v in (self.input_view, self.result_view):
            v.set_base(doc.preview, (doc.width, doc.height))
        self._remember_dir("image_dir", doc.path)
        self.hover_label.setText("")  # the previous image's read-out no longer applies
        self.statusBar().clearMessage()
        self.panel.show_image(doc)
        self._apply_layers()
        self.fit_views()
        QTimer.singleShot(0, self.fit_views)  # again once the layout has settled
        self.setWindowTitle(f"{doc.path.name} – terraseg")
        self.statusBar().showMessage(f"Opened {doc.path.name}", 4000)
        self._update_state()
        return True

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
            self.show_error(str(exc), "Cannot open model")
            return False
        finally:
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
        self.model_doc = doc
        self.clear_result()
        self.panel.show_model(doc)
        self.hover_label.setText("")
        self._apply_layers()
        self._update_state()

    def open_paths(self, paths: list[str]) -> None:
        """Dropped files: models go to the model slot, anything else is opened as an image."""
        for p in paths:
            pp = Path(p)
            if is_onnx_model(pp) or pp.name in ("bundle.json", "model.safetensors") or (
                    pp.is_dir() and (pp / "bundle.json").exists()):
                self.open_model(pp)
            else:
                self.open_image(pp)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        self.open_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
