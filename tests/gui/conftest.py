"""Fixtures for the desktop app tests (pytest-qt, offscreen; tests/conftest.py sets QT_QPA_PLATFORM)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6", reason="the desktop app needs PySide6 (pip install 'terraseg[gui]')")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")


class SlowBackend:
    """A stand-in model (the backend protocol) that takes ``delay`` seconds per batch.

    It predicts class ``k`` where band 0 falls in the k-th of K equal value ranges, so results
    are deterministic; it counts calls so tests can see that cancelling stops the work.
    """

    def __init__(self, meta, delay: float = 0.05):
        self.meta = meta
        self.delay = delay
        self.calls = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls += 1
            self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        k = self.meta.num_classes
        n, _, h, w = batch.shape
        v = np.clip((batch[:, 0] + 2.0) / 4.0, 0, 0.999)
        cls = (v * k).astype(np.int64)
        probs = np.full((n, k, h, w), 0.1 / max(k - 1, 1), np.float32)
        np.put_along_axis(probs, cls[:, None], 0.9, axis=1)
        return probs


@pytest.fixture
def settings(tmp_path):
    """A temporary settings file: tests never touch the user's settings."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "terraseg-gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    """Message boxes record their text instead of blocking the test."""
    from PySide6.QtWidgets import QMessageBox

    seen: list[str] = []

    def critical(parent, title, text, *a, **k):
        seen.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "critical", staticmethod(critical))
    return seen


@pytest.fixture
def window(qtbot, settings, errors):
    from terraseg.gui.app import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1280, 760)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.run is not None:
        win.cancel_prediction()
        qtbot.waitUntil(lambda: win.run is None, timeout=20000)


@pytest.fixture(scope="session")
def sample_images(sample_dataset) -> list[Path]:
    from terraseg.data.spec import load_spec

    return [s.image for s in load_spec(sample_dataset).items()]


@pytest.fixture
def sample_meta(tiny_bundle):
    from terraseg.bundle import read_meta

    return read_meta(tiny_bundle)


@pytest.fixture
def big_image(tmp_path) -> Path:
    """A 3-band image large enough that a run has many tiles (so cancelling is observable)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    arr = (rng.random((768, 768, 3)) * 255).astype(np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def slow_backend(sample_meta):
    return SlowBackend(sample_meta, delay=0.05)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_bundle, tmp_path_factory) -> Path:
    """The tiny bundle exported to ONNX (the export engineer's exporter)."""
    from terraseg.export import export_onnx

    return export_onnx(tiny_bundle, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
