"""Prediction off the GUI thread: a ``QObject`` worker moved to a ``QThread``.

The worker runs ``terraseg.predict.predict_file``, the same streaming run as ``terraseg predict``:
the image is read window by window through the source contract, and the CLI's sinks write the class
raster, colour mask, overlay and area report into a session folder under the CLI's names. The app
attaches one more sink, :class:`ClassPreviewSink`, which keeps the classes at screen resolution, so
memory stays bounded by the tile rows and the preview, not by the scene. ``progress(done, total)`` is
forwarded as a Qt signal; ``cancel()`` stops the run at the next batch and nothing is kept.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from terraseg.errors import TerrasegError, first_line
from terraseg.predict.sinks import OverlaySink

MASK_DISPLAY_MAX_SIDE = 4096


class ClassPreviewSink(OverlaySink):
    """The class raster sampled to at most ``max_size`` pixels a side (``.classes``), for the screen.

    It samples strips exactly as the overlay output does (nearest pixel centre) and writes no file.
    """

    def __init__(self, max_size: int = MASK_DISPLAY_MAX_SIDE):
        super().__init__(None, max_size)

    def finish(self) -> None:
        pass


@dataclass
class RunResult:
    """One finished run: the CLI's output files in ``folder`` and what the window shows."""

    paths: dict[str, Path]  # output kind (terraseg.predict.output_paths keys) -> file in ``folder``
    classes_preview: np.ndarray  # (h, w) uint8 classes at display resolution
    report: dict  # the area report, as written to <image>_areas.json
    width: int
    height: int
    seconds: float
    folder: Path = field(repr=False, default=None)

    def read_classes(self) -> np.ndarray:
        """The full-resolution class raster, read back from the class file (small images, tests)."""
        from terraseg.data.source import open_source

        with open_source(self.paths["classes"], palette_indices=True) as src:
            return np.ascontiguousarray(src.read()[:, :, 0])

    def discard(self) -> None:
        """Delete the session folder (a new image, model or run replaces this result)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class PredictWorker(QObject):
    progress = Signal(int, int)  # done, total
    stage = Signal(str)
    finished = Signal(object)  # RunResult
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, image_doc, model_doc, options=None):
        super().__init__()
        self.image_doc = image_doc
        self.model_doc = model_doc
        self.options = options
        self._cancel = threading.Event()

    def request_cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        from terraseg.predict.engine import PredictionCancelled

        t0 = time.perf_counter()
        folder = Path(tempfile.mkdtemp(prefix="terraseg-app-"))
        try:
            from terraseg.predict import PredictOptions, predict_file

            self.stage.emit("Loading model…" if self.model_doc.backend is None else "Predicting…")
            backend = self.model_doc.get_backend()
            if self._cancel.is_set():
                raise PredictionCancelled()
            self.stage.emit("Predicting…")
            preview = ClassPreviewSink()
            paths = predict_file(backend, self.image_doc.path, folder, self.options or PredictOptions(),
                                 progress=self._progress, cancel=self.is_cancelled, extra_sinks=[preview])
            report = json.loads(paths["areas_json"].read_text(encoding="utf-8"))
            result = RunResult(paths=paths, classes_preview=preview.classes, report=report,
                               width=preview.run.width, height=preview.run.height,
                               seconds=time.perf_counter() - t0, folder=folder)
        except PredictionCancelled:
            shutil.rmtree(folder, ignore_errors=True)
            self.cancelled.emit()
        except TerrasegError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self.failed.emit(str(exc))
        except MemoryError:
            shutil.rmtree(folder, ignore_errors=True)
            self.failed.emit(f"{self.image_doc.path}: not enough memory to predict this image.")
        except Exception as exc:  # a bug, not a user mistake: still never kill the app
            shutil.rmtree(folder, ignore_errors=True)
            traceback.print_exc()
            self.failed.emit(f"Prediction failed: {exc.__class__.__name__}: {first_line(exc)}")
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


__all__ = ["ClassPreviewSink", "PredictWorker", "PredictRun", "RunResult"]
