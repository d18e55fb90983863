"""A terraseg ONNX file read the way the Deepness QGIS plugin reads it agrees with `terraseg predict`.

The plugin side is re-implemented here from its documentation alone, using no terraseg code: read
the flat metadata keys with onnxruntime, ``json.loads`` them, divide 8-bit pixels by 255,
standardise with ``standardization_mean`` / ``standardization_std``, cut tiles of ``tile_size`` with
``tiles_overlap`` percent overlap, run onnxruntime, keep each tile's centre, argmax.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")


def _scene(h=200, w=232, seed=3):
    """A smooth uint8 RGB scene (regions and texture, like imagery)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((h // 40 + 2, w // 40 + 2, 3))
    up = np.repeat(np.repeat(coarse, 40, axis=0), 40, axis=1)[:h, :w]
    return np.clip(up * 200 + rng.normal(0, 12, (h, w, 3)) + 20, 0, 255).astype(np.uint8)


def _starts(size: int, tile: int, step: int) -> list[int]:
    """Tile origins along one axis: every ``step`` pixels, the last tile ending at the image edge."""
    last = max(size - tile, 0)
    return sorted(set(list(range(0, last, step)) + [last]))


def deepness_like_prediction(onnx_path, image_hwc: np.ndarray) -> tuple[np.ndarray, dict]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    raw = session.get_modelmeta().custom_metadata_map
    keys = {k: json.loads(raw[k]) for k in ("model_type", "class_names", "tile_size", "tiles_overlap",
                                              "standardization_mean", "standardization_std")}
    mean = np.asarray(keys["standardization_mean"], np.float32)
    std = np.asarray(keys["standardization_std"], np.float32)
    tile, overlap = int(keys["tile_size"]), int(keys["tiles_overlap"])
    half = tile * overlap // 100 // 2  # each tile keeps its core; at the image edges, its edge too
    step = tile - 2 * half
    h, w, _ = image_hwc.shape
    name = session.get_inputs()[0].name
    out = np.zeros((h, w), np.uint8)
    for top in _starts(h, tile, step):
        for left in _starts(w, tile, step):
            x = image_hwc[top:top + tile, left:left + tile].astype(np.float32) * (1.0 / 255.0)
            x = (x - mean) / std
            probs = session.run(None, {name: x.transpose(2, 0, 1)[None]})[0][0]
            th, tw = probs.shape[1:]
            r0 = 0 if top == 0 else half
            c0 = 0 if left == 0 else half
            r1 = th if top + th >= h else th - half
            c1 = tw if left + tw >= w else tw - half
            out[top + r0:top + r1, left + c0:left + c1] = probs[:, r0:r1, c0:c1].argmax(axis=0)
    return out, keys


def _colour_labels(image: np.ndarray) -> np.ndarray:
    labels = image.argmax(axis=-1).astype(np.int64)  # dominant band
    labels[image.astype(int).sum(axis=-1) < 200] = 3  # dark
    return labels


@pytest.fixture(scope="module")
def colour_bundle(tmp_path_factory):
    """A tiny U-Net taught for a few steps to label pixels by colour (a random one predicts one class
    almost everywhere, whatever its input, and would not show a wrong normalisation)."""
    import torch

    from terraseg import models
    from terraseg.bundle import BundleMeta, save_bundle

    torch.manual_seed(0)
    options = {"base_channels": 8, "depth": 3}
    model = models.build("unet", in_channels=3, num_classes=4, **options)
    mean, std = np.array([90.0, 120.0, 150.0], np.float32), np.array([40.0, 50.0, 60.0], np.float32)
    train = _scene(96, 96, seed=11)
    x = torch.from_numpy(((train - mean) / std).transpose(2, 0, 1)[None].astype(np.float32))
    y = torch.from_numpy(_colour_labels(train)[None])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(40):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    meta = BundleMeta(architecture="unet", options=options, in_channels=3, num_classes=4,
                      classes=["red", "green", "blue", "dark"], colors=[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0]],
                      mean=mean.tolist(), std=std.tolist(), tile_size=128)
    return save_bundle(tmp_path_factory.mktemp("deepness") / "colour-unet", model.eval(), meta)


def test_deepness_keys_and_plugin_preprocessing_agree_with_terraseg(tmp_path, colour_bundle):
    import onnx
    import rasterio
    from predict_helpers import write_geotiff

    from terraseg.bundle import read_meta
    from terraseg.export import export_onnx
    from terraseg.predict import predict_file

    meta = read_meta(colour_bundle)
    onnx_path = export_onnx(colour_bundle, tmp_path / "model.onnx", exporter="torchscript")
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["model_type"]) == "Segmentor"
    assert json.loads(props["class_names"]) == {str(i): n for i, n in enumerate(meta.classes)}
    assert json.loads(props["tiles_size"]) == json.loads(props["tile_size"]) == meta.tile_size
    assert json.loads(props["tiles_overlap"]) == 25
    assert json.loads(props["standardization_mean"]) == pytest.approx([m / 255 for m in meta.mean])
    assert json.loads(props["standardization_std"]) == pytest.approx([s / 255 for s in meta.std])
    assert "resolution" not in props  # unknown for this bundle
    assert "terraseg" in props  # terraseg's own metadata is still there

    image = _scene()
    scene = write_geotiff(tmp_path / "scene.tif", image)
    out = predict_file(onnx_path, scene, tmp_path / "out", overlay=False, color=False, areas=False)
    with rasterio.open(out["classes"]) as ds:
        terraseg_map = ds.read(1)
    assert np.bincount(terraseg_map.ravel(), minlength=4).max() < 0.6 * terraseg_map.size  # a varied map
    plugin_map, _ = deepness_like_prediction(onnx_path, image)
    agreement = float((plugin_map == terraseg_map).mean())
    assert agreement >= 0.99, agreement
    # the plugin's defaults without the keys (pixels / 255, mean 0, std 1) give another map
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    default = session.run(None, {session.get_inputs()[0].name: x})[0][0].argmax(axis=0)
    assert float((default == terraseg_map).mean()) < 0.9


def test_deepness_resolution_in_centimetres_and_raw_pixel_models():
    from types import SimpleNamespace

    from terraseg.export import deepness_metadata

    meta = SimpleNamespace(in_channels=2, classes=["a", "b"], tile_size=256, mean=None, std=None, resolution=0.3)
    keys = {k: json.loads(v) for k, v in deepness_metadata(meta).items()}
    assert keys["resolution"] == pytest.approx(30.0)  # 0.3 m/px = 30 cm/px
    # a model fed raw pixels: the plugin's x / 255 must be undone, (x/255 - 0) / (1/255) == x
    assert keys["standardization_mean"] == [0.0, 0.0]
    assert keys["standardization_std"] == pytest.approx([1 / 255] * 2)
