"""Prediction off the GUI thread: a ``QObject`` worker moved to a ``QThread``.

The worker calls the same ``terraseg.predict.predict_array`` as the CLI, forwards its
``progress(done, total)`` callback as a Qt signal, and stops at the next tile when ``cancel()`` is
requested (``predict_array`` raises ``PredictionCancelled``). Signals cross threads as queued
connections, so the window never blocks.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from terraseg.errors import TerrasegError


@dataclass
class RunResult:
    classes: np.ndarray  # (H, W) uint8 class indices, full resolution
    confidence: np.ndarray | None
    image: np.ndarray  # the full-resolution input that was predicted
    seconds: float


class PredictWorker(QObject):
    progress = Signal(int, int)  # done, total
    stage = Signal(str)
    finished = Signal(object)  # RunResult
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, image_doc, model_doc, full_image: np.ndarray | None = None, options: dict | None = None):
        super().__init__()
        self.image_doc = image_doc
        self.model_doc = model_doc
        self.full_image = full_image
        self.options = dict(options or {})
        self._cancel = threading.Event()

    def request_cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        from terraseg.predict import PredictionCancelled, predict_array

        from terraseg.gui.imaging import read_full

        t0 = time.perf_counter()
        try:
            if self.full_image is None:
                self.stage.emit("Reading image…")
                self.full_image = read_full(self.image_doc)
            if self._cancel.is_set():
                raise PredictionCancelled()
            meta = self.model_doc.meta
            bands = self.full_image.shape[2]
            if bands != meta.in_channels:
                raise TerrasegError(
                    f"the image has {bands} band{'s' if bands != 1 else ''} but the model expects "
                    f"{meta.in_channels}", self.image_doc.path)
            self.stage.emit("Loading model…" if self.model_doc.backend is None else "Predicting…")
            backend = self.model_doc.get_backend()
            if self._cancel.is_set():
                raise PredictionCancelled()
            self.stage.emit("Predicting…")
            pred = predict_array(backend, self.full_image, progress=self._progress, cancel=self.is_cancelled,
                                 **self.options)
            result = RunResult(classes=np.asarray(pred.classes), confidence=getattr(pred, "confidence", None),
                               image=self.full_image, seconds=time.perf_counter() - t0)
        except PredictionCancelled:
            self.cancelled.emit()
        except TerrasegError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit(f"{self.image_doc.path}: not enough memory to predict this image at full resolution.")
        except Exception as exc:  # a bug, not a user mistake: still never kill the app
            traceback.print_exc()
            self.failed.emit(f"Prediction failed: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        else:
            self.finished.emit(result)

    def _progress(self, done: int, total: int) -> None:
        self.progress.emit(int(done), int(total))


class PredictRun:
    """Owns one worker and its thread; keeps Python references alive until the thread ends."""

    def __init__(self, worker: PredictWorker):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("terraseg-predict")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        for sig in (worker.finished, worker.failed, worker.cancelled):
            # direct: quit() is thread-safe, and a queued call would wait for the GUI thread, which
            # may itself be blocked in wait() (closing the window during a run)
            sig.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.worker.request_cancel()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 30000) -> bool:
        return self.thread.wait(ms)


__all__ = ["PredictWorker", "PredictRun", "RunResult"]
