"""The app survives many signals and big scenes (issue 16: ``Fatal Python error: bool_dealloc``).

PySide6 6.12.0 on Python 3.11 drops a reference to ``True`` on every ``Signal.emit()``; after a few
hundred emits the interpreter frees ``True`` and aborts (exit 134), at the latest when it exits.
Both checks run in a subprocess, so such an abort is seen as an exit status instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

EMITS = 5000

EMIT_SCRIPT = r"""
import json, sys
from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QApplication

from terraseg.gui.app import MainWindow
from terraseg.gui.legend import LegendWidget
from terraseg.gui.views import ImageView
from terraseg.gui.worker import PredictWorker

n = int(sys.argv[1])
app = QApplication([])
worker = PredictWorker(None, None)
win = MainWindow(settings=None)
view = ImageView()
legend = LegendWidget()
received = []
sink = lambda *args: received.append(len(args))
for sig in (worker.progress, worker.stage, worker.finished, worker.failed, worker.cancelled,
            win.predictionFailed, win.stateChanged, view.viewChanged, view.hovered, legend.visibilityChanged):
    sig.connect(sink)
before = (sys.getrefcount(True), sys.getrefcount(False))
for i in range(n):
    worker.progress.emit(i, n)          # the signal that fires ~190 times per scene
    worker.stage.emit("Predicting…")
    view.hovered.emit(float(i), 1.5)
    view.viewChanged.emit()
    legend.visibilityChanged.emit([True, False, True])
    win.predictionFailed.emit("x")
    win.stateChanged.emit()
    app.processEvents()
after = (sys.getrefcount(True), sys.getrefcount(False))
print(json.dumps({"before": before, "after": after, "received": len(received)}))
"""

BIG_SCENE_SCRIPT = r"""
import sys
from terraseg.gui import main
sys.exit(main(sys.argv[1:]))
"""


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1",
               TERRASEG_GUI_SETTINGS=str(tmp_path / "settings.ini"))
    env.pop("DISPLAY", None)
    return env


def test_emitting_the_apps_signals_thousands_of_times_keeps_true_and_false_alive(tmp_path):
    proc = subprocess.run([sys.executable, "-c", EMIT_SCRIPT, str(EMITS)], capture_output=True, text=True,
                          timeout=300, env=_env(tmp_path))
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["received"] == 7 * EMITS
    (true_before, false_before), (true_after, false_after) = out["before"], out["after"]
    # a leak of one reference per emit would move these by thousands; a few may come and go
    assert abs(true_after - true_before) < 50, out
    assert abs(false_after - false_before) < 50, out


def test_worker_predicts_a_2048_px_scene_and_the_app_exits_cleanly(tmp_path, tiny_onnx):
    """The whole app (window, worker thread, ~500 progress signals) on a big scene, then a normal exit."""
    from PIL import Image

    rng = np.random.default_rng(7)
    side = 2048
    # smooth fields (not noise) so the tiny model sees something scene-like; cheap to make
    coarse = rng.integers(0, 256, (side // 64, side // 64, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BILINEAR))
    scene = tmp_path / "scene.png"
    Image.fromarray(image).save(scene)
    proc = subprocess.run([sys.executable, "-c", BIG_SCENE_SCRIPT, "--smoke-test", str(scene), str(tiny_onnx),
                           "--settings", str(tmp_path / "s.ini")],
                          capture_output=True, text=True, timeout=600, env=_env(tmp_path))
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    assert f"smoke test: predicted {side}x{side} px" in proc.stdout
    assert "Fatal Python error" not in proc.stderr
