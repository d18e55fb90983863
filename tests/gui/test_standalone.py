"""The app's own entry point: the ONNX path runs without torch, and the smoke test flag works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _Block())
from terraseg.gui import main
sys.exit(main(sys.argv[1:]))
"""


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    env.pop("DISPLAY", None)
    return env


def test_smoke_test_with_onnx_model_needs_no_torch(tmp_path, tiny_onnx, sample_images):
    shot = tmp_path / "window.png"
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, "--smoke-test", str(sample_images[0]), str(tiny_onnx),
         "--screenshot", str(shot), "--settings", str(tmp_path / "s.ini")],
        capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "smoke test: predicted 160x160 px" in proc.stdout
    assert "torch imported: False" in proc.stdout
    for name in ("water", "road", "building", "vegetation", "bare land"):
        assert name in proc.stdout
    assert shot.stat().st_size > 5000


def test_smoke_test_fails_cleanly_on_a_bad_model(tmp_path, sample_images):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, "--smoke-test", str(sample_images[0]), str(bad),
         "--settings", str(tmp_path / "s.ini")],
        capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert proc.returncode == 1
    assert "bad.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_onnx_model_in_the_window_matches_the_torch_bundle(qtbot, window, errors, tiny_onnx, tiny_bundle,
                                                           sample_images):
    import numpy as np

    from terraseg.data.raster import read_raster
    from terraseg.predict import predict_array

    window.open_image(sample_images[3])
    assert window.open_model(tiny_onnx) and window.model_doc.kind == "onnx"
    with qtbot.waitSignal(window.predictionFinished, timeout=60000) as blocker:
        window.start_prediction()
    qtbot.waitUntil(lambda: window.run is None, timeout=10000)
    torch_classes = predict_array(tiny_bundle, read_raster(sample_images[3])).classes
    agree = (blocker.args[0].read_classes() == torch_classes).mean()
    assert agree > 0.999
    assert errors == []


def test_cli_gui_command_is_registered():
    from typer.testing import CliRunner

    from terraseg.cli import app

    result = CliRunner().invoke(app, ["gui", "--help"])
    assert result.exit_code == 0
    assert "--model" in result.output and "--smoke-test" in result.output


@pytest.mark.parametrize("argv", [["--smoke-test", "only-one"]])
def test_entry_point_rejects_bad_arguments(argv):
    from terraseg.gui import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
