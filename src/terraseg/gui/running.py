"""Running a prediction from the window: start, progress, cancel, and showing the result."""

from __future__ import annotations

import numpy as np

from terraseg.errors import TerrasegError
from terraseg.gui.legend import class_stats
from terraseg.gui.worker import PredictRun, PredictWorker, RunResult


class RunningMixin:
    def is_running(self) -> bool:
        return self.run is not None

    def set_bands(self, bands) -> bool:
        """Input bands for the next runs (``"4,3,2"``, a list, or empty/None for the model's choice)."""
        from terraseg.data.source import parse_bands

        try:
            self.bands = parse_bands(bands)
        except TerrasegError as exc:
            self.show_error(str(exc), "Input bands")
            return False
        self.statusBar().showMessage("input bands: " + (",".join(map(str, self.bands)) if self.bands
                                                         else "the model's"), 5000)
        return True

    def choose_bands(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        current = ",".join(map(str, self.bands)) if self.bands else ""
        text, ok = QInputDialog.getText(self, "Input bands", "Bands fed to the model, 1-based (e.g. 4,3,2); "
                                        "empty: the bands the model was trained on", text=current)
        if ok:
            self.set_bands(text)

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
        from terraseg.predict.api import model_bands

        m, d = self.model_doc.meta, self.image_doc
        chosen = model_bands(m, self.bands)  # the CLI's rule: the chosen bands, else the bundle's
        count = len(chosen) if chosen else d.bands
        if count != m.in_channels or (chosen and max(chosen) > d.bands):
            picked = f" (bands {','.join(map(str, chosen))} chosen)" if chosen else ""
            self.show_error(f"{d.path}: the image has {d.bands} band{'s' if d.bands != 1 else ''}{picked} but the "
                            f"model expects {m.in_channels}; choose them with Run → Input bands…", "Wrong band count")
            return False
        self.clear_result()
        from terraseg.predict.options import PredictOptions

        worker = PredictWorker(d, self.model_doc, PredictOptions(bands=self.bands))
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
        self.result = result
        self.panel.show_model(self.model_doc)  # a bundle's backend is loaded now: its own device and precision
        self._show_result()
        self.statusBar().showMessage(f"Predicted {result.width:,} × {result.height:,} px in {result.seconds:.1f} s",
                                     8000)
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

    def clear_result(self) -> None:
        """Forget the shown result (new image, new model or a new run) and delete its session files."""
        if self.result is not None:
            self.result.discard()
        self.result, self._mask_rgb = None, None
        self.result_view.clear_mask()
        if self.model_doc is not None:
            self.legend.set_classes(self.model_doc.meta.classes, self.model_doc.meta.colors)
        self.summary_label.setText("")

    def _recolour_mask(self, _visible=None) -> None:
        """Colour the displayed class raster; classes unticked in the legend are transparent."""
        if self.result is None:
            return
        lut = np.zeros((256, 4), np.uint8)  # ignore/nodata and unknown values: transparent
        for i, (c, vis) in enumerate(zip(self.model_doc.meta.colors, self.legend.visible_classes())):
            lut[i, :3] = c[:3]
            lut[i, 3] = 255 if vis else 0
        self._mask_rgb = lut[self.result.classes_preview]
        self.result_view.set_mask(self._mask_rgb)
        self._apply_layers()

    def _show_result(self) -> None:
        r = self.result
        self._recolour_mask()
        self.legend.set_stats(class_stats(r.report, self.model_doc.meta.colors))
        if r.report.get("total_m2") is not None:
            area = f"{r.report['total_m2'] / 10_000:,.2f} ha"
        else:
            area = f"{r.report['classified_pixels']:,} pixels"
        nodata = f" ({r.report['nodata_pixels']:,} nodata pixels)" if r.report.get("nodata_pixels") else ""
        self.summary_label.setText(f"{area} classified in {r.seconds:.1f} s{nodata}")
        if self.layer() == "input":
            self.set_layer("overlay")
        self._apply_layers()
