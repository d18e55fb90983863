"""terraseg.runtime: the auto backend (cached ONNX export of a bundle, torch fallback) and auto precision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from terraseg.bundle import BundleMeta  # noqa: E402


def _save(folder: Path, seed: int, architecture: str = "unet", options=None) -> Path:
    import torch

    from terraseg import models
    from terraseg.bundle import save_bundle

    options = {"base_channels": 4, "depth": 2} if options is None else options
    torch.manual_seed(seed)
    model = models.build(architecture, in_channels=3, num_classes=4, **options)
    meta = BundleMeta(architecture=architecture, options=options, in_channels=3, num_classes=4,
                      classes=["a", "b", "c", "d"], colors=[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
                      mean=[127.5] * 3, std=[64.0] * 3, tile_size=32)
    return save_bundle(folder, model, meta)


class NoExportNet:
    """A real architecture that neither ONNX exporter converts (``aten::mvlgamma`` has no ONNX op)."""

    def __new__(cls, in_channels: int = 3, num_classes: int = 4):
        import torch

        class _Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(in_channels, num_classes, 3, padding=1)

            def forward(self, x):
                return torch.special.multigammaln(self.conv(x).abs() + 2, 1)

        return _Net()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TERRASEG_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def micro_bundle(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("micro") / "micro", seed=0)


def _batch(seed=0, shape=(2, 3, 40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch_probs(bundle, x):
    import torch

    from terraseg.bundle import load_bundle
    from terraseg.models import probabilities

    with torch.no_grad():  # independent of TorchBackend: the plain model as saved
        return probabilities(load_bundle(bundle).model.eval()(torch.from_numpy(x))).numpy()


def test_auto_exports_once_then_hits_the_cache(micro_bundle, cache, monkeypatch):
    from terraseg.predict.onnx_backend import OnnxBackend
    from terraseg.runtime import load_backend

    warnings: list[str] = []
    first = load_backend(micro_bundle, warn=warnings.append)  # miss: exported into the cache
    assert isinstance(first, OnnxBackend) and first.path.parent == cache and warnings == []
    assert "cached ONNX export of micro" in first.describe()
    x = _batch()
    np.testing.assert_allclose(first(x), _torch_probs(micro_bundle, x), atol=1e-4)
    stamp = first.path.stat().st_mtime_ns

    import terraseg.export.onnx as export_module

    def no_export(*args, **kwargs):
        raise AssertionError("a cache hit must not export again")

    monkeypatch.setattr(export_module, "export_onnx", no_export)
    again = load_backend(micro_bundle, warn=warnings.append)  # hit
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp and warnings == []
    assert sorted(p.suffix for p in cache.iterdir()) == [".onnx"]


def test_changed_weights_give_a_new_export(tmp_path, cache):
    from terraseg.runtime import load_backend

    bundle = _save(tmp_path / "model", seed=0)
    old = load_backend(bundle)
    _save(tmp_path / "model", seed=1)  # same folder and name, retrained weights
    new = load_backend(bundle)
    assert new.path != old.path and old.path.is_file() and new.path.is_file()
    x = _batch(1)
    np.testing.assert_allclose(new(x), _torch_probs(bundle, x), atol=1e-4)
    assert np.abs(old(x) - new(x)).max() > 1e-3  # the stale export would have given other answers


def _read_only(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o555)
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")  # root ignores permission bits: make the folder immutable instead
        probe.unlink()
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("cannot make a read-only folder here (root without chattr)")
    except OSError:
        pass


def _writable_again(folder: Path):
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    os.chmod(folder, 0o755)


def test_read_only_cache_falls_back_to_torch_with_one_warning(micro_bundle, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from terraseg.cli import main
    from terraseg.predict.backends import TorchBackend
    from terraseg.runtime import load_backend

    image = tmp_path / "scene.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(image)
    folder = tmp_path / "ro-cache"
    _read_only(folder)
    monkeypatch.setenv("TERRASEG_CACHE_DIR", str(folder))
    warnings: list[str] = []
    try:
        runner = load_backend(micro_bundle, warn=warnings.append)
        with pytest.raises(SystemExit) as done:
            main(["predict", str(micro_bundle), str(image), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert isinstance(runner, TorchBackend) and list(folder.iterdir()) == []
    finally:
        _writable_again(folder)
    assert len(warnings) == 1 and "not writable" in warnings[0] and "running on torch" in warnings[0]
    assert "fallback" in runner.describe()
    x = _batch(2)
    np.testing.assert_allclose(runner(x), _torch_probs(micro_bundle, x), atol=1e-4)
    # the CLI: one warning line, then the prediction on torch succeeds
    assert done.value.code in (0, None), err
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "not writable" in lines[0], err
    assert "model: torch fp32" in err and (tmp_path / "out" / "scene_classes.png").is_file()


def test_architecture_that_does_not_export_runs_on_torch_and_is_remembered(tmp_path, cache, monkeypatch):
    from terraseg import models
    from terraseg.predict.backends import TorchBackend
    from terraseg.runtime import load_backend

    monkeypatch.setitem(models.REGISTRY, "noexport",
                        models.ArchInfo("noexport", "test_runtime:NoExportNet", "test model without ONNX ops"))
    bundle = _save(tmp_path / "odd", seed=0, architecture="noexport", options={})
    warnings: list[str] = []
    runner = load_backend(bundle, warn=warnings.append)
    assert isinstance(runner, TorchBackend)
    assert len(warnings) == 1 and "does not run on ONNX Runtime" in warnings[0] and "mvlgamma" in warnings[0]
    failed = list(cache.glob("*.failed.json"))
    assert len(failed) == 1 and not list(cache.glob("*.onnx"))
    assert "mvlgamma" in json.loads(failed[0].read_text())["reason"]

    import terraseg.export.onnx as export_module

    def no_export(*args, **kwargs):
        raise AssertionError("a remembered failure must not export again")

    monkeypatch.setattr(export_module, "export_onnx", no_export)
    warnings.clear()
    again = load_backend(bundle, warn=warnings.append)
    assert isinstance(again, TorchBackend) and len(warnings) == 1 and "remembered" in warnings[0]
    # --backend onnx asked for explicitly: an error, not a silent fallback
    from terraseg.errors import ModelError

    with pytest.raises(ModelError, match="remembered"):
        load_backend(bundle, backend="onnx")


def test_auto_is_the_default_everywhere():
    import inspect

    import terraseg
    from terraseg import evaluate as evaluate_module
    from terraseg import runtime
    from terraseg.cli.evaluate import evaluate_command
    from terraseg.cli.predict import predict_command

    for fn in (runtime.load_backend, terraseg.predict_file, terraseg.predict_array, evaluate_module.evaluate):
        assert inspect.signature(fn).parameters["backend"].default == "auto", fn
    for command in (predict_command, evaluate_command):
        option = inspect.signature(command).parameters["backend"].default
        assert option.default == "auto", command
        assert inspect.signature(command).parameters["precision"].default.default == "fp32"


def test_cli_predict_and_app_use_the_cached_export(micro_bundle, cache, tmp_path, capsys):
    from PIL import Image

    from terraseg.cli import main
    from terraseg.gui.modelio import open_model
    from terraseg.predict.onnx_backend import OnnxBackend

    image = tmp_path / "scene.png"
    Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)).save(image)
    with pytest.raises(SystemExit) as done:
        main(["predict", str(micro_bundle), str(image), "--out", str(tmp_path / "out")])
    assert done.value.code in (0, None)
    err = capsys.readouterr().err
    assert "model: onnx fp32" in err and "warning" not in err
    exported = list(cache.glob("*.onnx"))
    assert len(exported) == 1
    classes = np.asarray(Image.open(tmp_path / "out" / "scene_classes.png"))
    # the same classes as predicting the bundle on torch, pixel for pixel up to the documented 99.9 %
    from terraseg.predict import predict_array
    from terraseg.runtime import load_backend

    reference = predict_array(load_backend(micro_bundle, backend="torch"), np.asarray(Image.open(image))).classes
    assert classes.shape == reference.shape and (classes == reference).mean() >= 0.999
    doc = open_model(micro_bundle)
    assert isinstance(doc.get_backend(), OnnxBackend) and doc.get_backend().path == exported[0]


def test_cached_export_runs_without_torch(micro_bundle, tmp_path):
    from terraseg.runtime import load_backend

    folder = tmp_path / "cache"
    load_backend(micro_bundle, cache_dir=folder)  # first use exports (torch)
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from terraseg.runtime import load_backend\n"
        f"b = load_backend({str(micro_bundle)!r}, cache_dir={str(folder)!r})\n"
        "print(b.describe(), b(np.zeros((1, 3, 32, 32), np.float32)).shape)\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "onnx fp32" in done.stdout and "HEAVY []" in done.stdout


def test_precision_auto_follows_the_rule_and_is_decided_once(micro_bundle, cache, monkeypatch):
    import terraseg.autoprecision as auto
    from terraseg.runtime import load_backend

    rng = np.random.default_rng(3)
    images = [(rng.random((90, 90, 3)) * 255).astype(np.uint8) for _ in range(2)]
    runner = load_backend(micro_bundle, precision="auto", calibration=images)
    records = list(cache.glob("*.precision.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    chose_int8 = record["agreement"] >= auto.AGREEMENT and record["speedup"] >= auto.MIN_SPEEDUP
    assert record["choice"] == ("int8" if chose_int8 else "fp32") == runner.precision
    assert f"precision auto: {runner.precision}" in runner.describe()

    def no_measure(*args):
        raise AssertionError("a recorded decision must not be measured again")

    monkeypatch.setattr(auto, "compare", no_measure)
    again = load_backend(micro_bundle, precision="auto", calibration=images)
    assert again.precision == runner.precision and "decided earlier" in again.describe()
    # no imagery to check on: fp32 (for a model without a record)
    other = load_backend(micro_bundle, backend="torch", precision="auto")
    assert other.precision == "fp32" and "no imagery" in other.describe()


def test_compare_measures_class_agreement(micro_bundle):
    from terraseg.autoprecision import compare

    class Flip:  # the reference with classes 0 and 1 swapped wherever class 0 wins
        def __init__(self, inner):
            self.inner, self.meta = inner, inner.meta

        def __call__(self, x):
            return self.inner(x)[:, [1, 0, 2, 3]]

    from terraseg.runtime import load_backend

    ref = load_backend(micro_bundle, backend="torch")
    x = _batch(4, (3, 3, 32, 32))
    classes = ref(x).argmax(axis=1)
    expected = 1 - float(np.isin(classes, (0, 1)).mean())
    agreement, speedup = compare(ref, Flip(ref), x)
    assert agreement == pytest.approx(expected) and speedup > 0


def test_unwritable_cache_with_explicit_onnx_is_an_error(micro_bundle, tmp_path):
    from terraseg.errors import ModelError
    from terraseg.runtime import load_backend

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="cache folder"):
        load_backend(micro_bundle, backend="onnx", cache_dir=blocker / "cache")
