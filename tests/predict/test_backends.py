from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from predict_helpers import make_meta

from terraseg.errors import ConfigError, TerrasegError


def _conv_bundle(tmp_path):
    import torch

    from terraseg.bundle import Bundle

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 5, 1))
    return Bundle(model=model.eval(), meta=make_meta(mean=[127.5] * 3, std=[64.0] * 3), path=tmp_path)


def test_torch_backend_contract(tmp_path):
    from terraseg.predict import TorchBackend

    backend = TorchBackend(_conv_bundle(tmp_path))
    x = np.random.default_rng(0).normal(size=(2, 3, 20, 24)).astype(np.float32)
    y = backend(x)
    assert y.shape == (2, 5, 20, 24) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert backend.meta.num_classes == 5


def test_bf16_close_to_fp32(tmp_path):
    from terraseg.predict import TorchBackend, predict_array

    bundle = _conv_bundle(tmp_path)
    image = (np.random.default_rng(0).random((70, 90, 3)) * 255).astype(np.uint8)
    fp32 = predict_array(TorchBackend(bundle), image, tile_size=32, return_probabilities=True)
    bf16 = predict_array(TorchBackend(bundle, precision="bf16"), image, tile_size=32, return_probabilities=True)
    assert np.abs(fp32.probabilities - bf16.probabilities).max() < 0.05
    assert (fp32.classes == bf16.classes).mean() > 0.9


def test_predict_array_accepts_bundle(tmp_path):
    from terraseg.predict import TorchBackend, predict_array

    bundle = _conv_bundle(tmp_path)
    image = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    a = predict_array(bundle, image, tile_size=32)
    b = predict_array(TorchBackend(bundle), image, tile_size=32)
    np.testing.assert_array_equal(a.classes, b.classes)


def test_bad_precision_and_device(tmp_path):
    from terraseg.predict import TorchBackend
    from terraseg.runtime import load_backend

    bundle = _conv_bundle(tmp_path)
    with pytest.raises(ConfigError, match="int8"):
        TorchBackend(bundle, precision="int8")
    with pytest.raises(ConfigError):
        TorchBackend(bundle, device="tpu")
    with pytest.raises(ConfigError):
        load_backend(tmp_path, backend="tensorflow")
    with pytest.raises(TerrasegError):
        load_backend(tmp_path / "missing-bundle")


def test_load_backend_from_bundle_path(tiny_bundle):
    from terraseg.predict import predict_array
    from terraseg.runtime import load_backend

    backend = load_backend(tiny_bundle)
    image = (np.random.default_rng(0).random((100, 90, backend.meta.in_channels)) * 255).astype(np.uint8)
    pred = predict_array(backend, image)
    assert pred.classes.shape == (100, 90)
    assert pred.classes.max() < backend.meta.num_classes
    assert ((pred.confidence > 0) & (pred.confidence <= 1.0 + 1e-6)).all()
    # a path works too, and gives the same answer
    np.testing.assert_array_equal(predict_array(tiny_bundle, image).classes, pred.classes)


def test_import_is_light():
    code = ("import sys, terraseg.predict as p; p.TileGrid; p.as_backend; "
            "import terraseg.predict.engine, terraseg.predict.backends; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _bn_bundle(tmp_path, odd: bool = False):
    """Conv + BatchNorm pairs with trained-looking statistics; ``odd``: the batch norm is registered
    after the convolution but applied before it, so folding it into the convolution would be wrong."""
    import torch

    from terraseg.bundle import Bundle

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(3)
            self.head = torch.nn.Conv2d(3, 5, 1)

        def forward(self, x):
            return self.head(self.conv(self.bn(x)))

    torch.manual_seed(0)
    if odd:
        model = Odd()
    else:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                    torch.nn.Conv2d(8, 5, 1))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return Bundle(model=model.eval(), meta=make_meta(), path=tmp_path)


@pytest.mark.parametrize("odd", [False, True])
def test_optimised_torch_path_matches_the_plain_model(tmp_path, odd):
    import torch

    from terraseg.models import probabilities
    from terraseg.predict import TorchBackend

    bundle = _bn_bundle(tmp_path, odd)
    x = np.random.default_rng(0).normal(size=(2, 3, 33, 47)).astype(np.float32)
    with torch.no_grad():
        expected = probabilities(bundle.model(torch.from_numpy(x))).numpy()
    fast = TorchBackend(bundle)
    np.testing.assert_allclose(fast(x), expected, atol=1e-5)
    assert fast.fused == (0 if odd else 1)  # the wrong fold is detected and not used
    assert fast.memory_format == torch.channels_last and fast.threads == torch.get_num_threads()
    assert "torch fp32" in fast.describe()
