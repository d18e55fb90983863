"""ONNX export: dynamic batch/height/width, probabilities out, bundle metadata inside, checked vs torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from terraseg.bundle import BundleMeta, load_bundle, read_meta, save_bundle  # noqa: E402
from terraseg.errors import ModelError  # noqa: E402
from terraseg.export import export_info, export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_bundle, tmp_path_factory):
    """The tiny U-Net exported once with the default (torch.export based) exporter."""
    return export_onnx(tiny_bundle, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _torch_probs(bundle, x):
    import torch

    with torch.no_grad():
        return torch.softmax(bundle.model(torch.from_numpy(x)), dim=1).numpy()


def test_export_is_valid_with_dynamic_axes_and_metadata(exported, tiny_bundle):
    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    # The bundle metadata round-trips through the ONNX metadata.
    meta = BundleMeta.from_json(json.loads(props["terraseg"]))
    expected = read_meta(tiny_bundle)
    assert meta.classes == expected.classes and meta.colors == expected.colors
    assert meta.mean == expected.mean and meta.std == expected.std
    assert meta.tile_size == expected.tile_size == 64 and meta.architecture == "unet"
    # Batch, height and width are symbolic; channels and classes fixed.
    (inp,), (out,) = model.graph.input, model.graph.output
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims == ["batch", expected.in_channels, "height", "width"]
    assert out_dims == ["batch", expected.num_classes, "height", "width"]
    info = export_info(exported)
    assert info["exporter"] == "dynamo" and info["precision"] == "fp32"
    assert 0 <= info["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 50, 93), (3, 3, 17, 130)])
def test_exported_model_matches_torch_on_unseen_sizes(exported, tiny_bundle, shape):
    # 50x93 and 17x130 are not multiples of the U-Net's stride (8) and were never seen at export.
    bundle = load_bundle(tiny_bundle)
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    out = _session(exported).run(None, {"image": x})[0]
    ref = _torch_probs(bundle, x)
    assert out.shape == (shape[0], bundle.meta.num_classes, shape[2], shape[3])
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(out - ref).max() < 1e-4
    assert (out.argmax(1) == ref.argmax(1)).mean() > 0.999


def test_torchscript_exporter_agrees_too(tiny_bundle, tmp_path):
    path = export_onnx(tiny_bundle, tmp_path / "ts.onnx", opset=17, exporter="torchscript")
    assert export_info(path)["exporter"] == "torchscript" and export_info(path)["opset"] == 17
    x = np.random.default_rng(1).standard_normal((2, 3, 45, 70)).astype(np.float32)
    out = _session(path).run(None, {"image": x})[0]
    assert np.abs(out - _torch_probs(load_bundle(tiny_bundle), x)).max() < 1e-4


def test_multitask_model_exports_its_segmentation_probabilities(tmp_path):
    import torch

    from terraseg import models

    torch.manual_seed(0)
    options = {"base_channels": 4}
    model = models.build("resuneta_d6_multitask", in_channels=3, num_classes=4, **options).eval()
    meta = BundleMeta(architecture="resuneta_d6_multitask", options=options, in_channels=3, num_classes=4,
                      classes=["a", "b", "c", "d"], colors=[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
                      tile_size=64)
    bundle = save_bundle(tmp_path / "mt", model, meta)
    path = export_onnx(bundle, tmp_path / "mt.onnx", exporter="torchscript")
    x = np.random.default_rng(2).standard_normal((1, 3, 70, 45)).astype(np.float32)
    out = _session(path).run(None, {"image": x})[0]
    with torch.no_grad():
        seg = model(torch.from_numpy(x)).segmentation.numpy()
    assert out.shape == seg.shape == (1, 4, 70, 45)
    assert np.abs(out - seg).max() < 1e-4


def test_export_errors_name_the_file_and_leave_nothing(tiny_bundle, tmp_path):
    with pytest.raises(ModelError, match=r"must end in \.onnx"):
        export_onnx(tiny_bundle, tmp_path / "model.bin")
    with pytest.raises(ModelError, match="not found"):
        export_onnx(tmp_path / "missing-bundle", tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="unknown exporter"):
        export_onnx(tiny_bundle, tmp_path / "m.onnx", exporter="magic")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_writes_fp32_and_int8(tiny_bundle, tmp_path, sample_dataset, capsys):
    from terraseg.cli import main

    images = sorted((sample_dataset.parent / "images").iterdir())
    out, q = tmp_path / "m.onnx", tmp_path / "m-int8.onnx"
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tiny_bundle), "--onnx", str(out), "--int8", str(q), "--exporter", "torchscript",
              "--calibrate", str(images[0]), "--calibrate", str(images[1]), "--calibration-tiles", "4"])
    assert exc.value.code in (0, None)
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "max |onnx - torch|" in text and f"wrote {q}" in text
    assert "4 tiles from 2 image(s)" in text
    assert export_info(q)["precision"] == "int8" and export_info(q)["calibration"]["kind"] == "tiles"
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_cli_export_bad_bundle_exits_2_with_one_line(tmp_path, capsys):
    from terraseg.cli import main

    (tmp_path / "notabundle").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path / "notabundle"), "--onnx", str(tmp_path / "m.onnx")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "notabundle" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()
