"""The built-in model ``dubai-landcover``: packaged files, names wherever a model is taken, its card,
its map of the shipped real scene, and the wheel that carries it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from terraseg import pretrained
from terraseg.errors import ModelError

NAME = "dubai-landcover"
ROOT = Path(__file__).resolve().parents[2]
# The Dubai data set README's mask colours (not read from the model: an independent decoding)
DUBAI_COLOURS = {"Building": (60, 16, 152), "Land": (132, 41, 246), "Road": (110, 193, 228),
                 "Vegetation": (254, 221, 58), "Water": (226, 169, 41)}


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "terraseg", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def decode_mask(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int32)
    index = np.full(rgb.shape[:2], 255, np.uint8)
    for i, colour in enumerate(DUBAI_COLOURS.values()):
        index[(rgb == colour).all(axis=-1)] = i
    return index


def test_packaged_files_fit_the_size_limits_and_load_without_network():
    folder = pretrained.folder(NAME)
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert {"bundle.json", "model.safetensors", "model.int8.onnx", "card.md"} <= set(files)
    assert max(files.values()) <= 5_000_000, files
    package_data = [p for p in pretrained.PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                    and p.suffix != ".py"]
    assert sum(p.stat().st_size for p in package_data) < 12_000_000
    image, mask = pretrained.sample_scene()
    assert image.stat().st_size + mask.stat().st_size < 600_000
    assert "CC0" in (image.parent / "ATTRIBUTION.md").read_text()

    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "np") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes <= {np.dtype("float16"), np.dtype("int64")}  # fp16 storage
    meta = json.loads((folder / "bundle.json").read_text())
    assert meta["classes"] == list(DUBAI_COLOURS)
    assert [tuple(c) for c in meta["colors"]] == list(DUBAI_COLOURS.values())


def test_int8_onnx_runs_on_onnxruntime_alone_with_the_deepness_keys():
    import onnx
    import onnxruntime as ort

    path = pretrained.int8_onnx(NAME)
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["model_type"]) == "Segmentor"  # Deepness json.loads every value
    assert json.loads(props["class_names"]) == {str(i): n for i, n in enumerate(DUBAI_COLOURS)}
    assert any(n.op_type in ("QLinearConv", "QuantizeLinear", "ConvInteger") for n in model.graph.node)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, 3, 128, 128)).astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert out.shape == (1, 5, 128, 128) and np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-3)  # probabilities


def test_resolve_model_path_first_then_name_else_one_line_listing_names(tmp_path, tiny_bundle, monkeypatch):
    assert pretrained.resolve_model(NAME) == pretrained.PACKAGE_DIR / NAME
    assert pretrained.resolve_model(tiny_bundle) == tiny_bundle
    local = tmp_path / NAME  # a folder of that name in the current directory is a path, not the built-in
    local.mkdir()
    monkeypatch.chdir(tmp_path)
    assert pretrained.resolve_model(NAME) == Path(NAME)
    with pytest.raises(ModelError, match=f"model not found.*{NAME}"):
        pretrained.resolve_model("dubai-landcvoer")


def test_unknown_name_is_one_error_line_in_every_command(tmp_path):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    for args in (["predict", "no-such-model", image, "--out", tmp_path / "o"],
                 ["export", "no-such-model", "--onnx", tmp_path / "m.onnx"],
                 ["models", "pretrained", "no-such-model"]):
        p = cli(*args)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and NAME in lines[0], p.stderr


def test_models_pretrained_lists_the_card():
    p = cli("models", "pretrained")
    assert p.returncode == 0, p.stderr
    for text in (NAME, "CC0", "Tile", "int8", "Road", "Reproduce", "build_builtin_model.py",
                 str(pretrained.int8_onnx(NAME))):
        assert text in p.stdout, text


def test_builtin_model_maps_the_shipped_held_out_scene(tmp_path):
    """The CLI by name on the real scene; scored here with scikit-learn against the mask decoded from
    the data set README's colours."""
    from sklearn.metrics import accuracy_score, jaccard_score

    p = cli("models", "sample-scene", "--out", tmp_path / "scene")
    assert p.returncode == 0, p.stderr
    image = tmp_path / "scene" / "dubai-scene.jpg"
    p = cli("predict", NAME, image, "--out", tmp_path / "maps")
    assert p.returncode == 0, p.stderr
    # a JPEG in gives PNGs out (no georeference to keep): the class map is a palette PNG of indices
    pred = np.asarray(Image.open(tmp_path / "maps" / "dubai-scene_classes.png"))
    truth = decode_mask(tmp_path / "scene" / "dubai-scene-mask.png")
    keep = truth != 255
    assert pred.shape == truth.shape and keep.mean() > 0.9
    miou = jaccard_score(truth[keep], pred[keep], labels=range(5), average="macro")
    accuracy = accuracy_score(truth[keep], pred[keep])
    assert accuracy > 0.7 and miou > 0.45, (accuracy, miou)


def test_load_model_and_predict_array_agree_with_int8_on_most_pixels():
    import terraseg

    image = np.asarray(Image.open(pretrained.sample_scene()[0]).convert("RGB"))[:384, :384]
    fp32 = terraseg.predict_array(terraseg.load_model(NAME), image).classes
    int8 = terraseg.predict_array(terraseg.load_model(NAME, precision="int8"), image).classes
    assert fp32.shape == (384, 384)
    assert (fp32 == int8).mean() > 0.95


def test_export_by_name_writes_a_checked_onnx(tmp_path):
    p = cli("export", NAME, "--onnx", tmp_path / "m.onnx")
    assert p.returncode == 0, p.stderr
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape[1] == 5


def test_app_opens_the_builtin_model_by_name():
    from terraseg.gui.modelio import open_model

    doc = open_model(NAME)
    assert doc.kind == "bundle" and doc.meta.classes == list(DUBAI_COLOURS)
    assert doc.label.startswith(NAME)


@pytest.mark.slow
def test_wheel_carries_the_model_files(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    wheel = next(tmp_path.glob("terraseg-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("bundle.json", "model.safetensors", "model.int8.onnx", "card.md"):
        assert f"terraseg/pretrained/{NAME}/{f}" in names, f
    assert {"terraseg/pretrained/samples/dubai-scene.jpg", "terraseg/pretrained/samples/dubai-scene-mask.png"} <= names


def test_gui_smoke_test_by_name(tmp_path):
    import os

    image, _ = pretrained.sample_scene()
    small = tmp_path / "scene.png"
    Image.open(image).convert("RGB").crop((0, 0, 256, 256)).save(small)
    p = subprocess.run([sys.executable, "-m", "terraseg", "gui", str(small), "--model", NAME, "--smoke-test"],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert "smoke test: predicted 256x256" in p.stdout and NAME in p.stdout, p.stdout
