"""``terraseg evaluate`` end to end on the generated sample: counts, metrics, outputs, splits, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from terraseg.bundle import read_meta
from terraseg.cli import main
from terraseg.data.spec import load_spec
from terraseg.evaluate import OUTPUT_NAMES, evaluate
from terraseg.metrics import compute_metrics, jsonable
from terraseg.predict import predict_array


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "terraseg", *map(str, args)], capture_output=True, text=True,
                          env={**__import__("os").environ, "TERRASEG_PROGRESS": "0"})


class ColourBackend:
    """A deterministic numpy backend with varied predictions (a random U-Net predicts one class).

    Probabilities are a softmax over class prototypes of each pixel's colour, shifted by half the
    tile's mean, so the output depends on the tiling (and so checks that tile settings reach the
    predictor).
    """

    def __init__(self, meta, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.meta = meta
        self.protos = rng.normal(0, 0.8, size=(meta.num_classes, meta.in_channels)).astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = batch - 0.5 * batch.mean(axis=(2, 3), keepdims=True)
        d = ((x[:, None] - self.protos[None, :, :, None, None]) ** 2).sum(axis=2)  # (N, K, h, w)
        logits = -4.0 * d
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def direct_matrix(model, spec, samples, **predict_kwargs) -> np.ndarray:
    """The set's confusion matrix built straight from predict_array outputs and masks (scikit-learn)."""
    k = spec.num_classes
    total = np.zeros((k, k), np.int64)
    for s in samples:
        image, mask = spec.read_pair(s)
        pred = predict_array(model, image, **predict_kwargs).classes
        keep = mask != spec.ignore_index
        total += sk_confusion_matrix(mask[keep], pred[keep], labels=list(range(k)))
    return total


def labelled_pixels(spec, samples) -> int:
    n = 0
    for s in samples:
        mask, _ = spec.read_mask(s)
        n += int((mask != spec.ignore_index).sum())
    return n


def assert_metrics_consistent(record: dict) -> None:
    """The metrics stored in a metrics.json equal compute_metrics of the stored matrix."""
    again = jsonable(compute_metrics(np.array(record["confusion_matrix"]), record["class_names"]))
    for key, value in again.items():
        assert record[key] == value, key


@pytest.fixture(scope="module")
def spec(sample_dataset):
    return load_spec(sample_dataset)


@pytest.fixture(scope="module")
def split_file(tmp_path_factory, spec) -> Path:
    keys = [s.key for s in spec.labelled()]
    path = tmp_path_factory.mktemp("split") / "split.json"
    path.write_text(json.dumps({"train": keys[:3], "val": keys[3:4], "test": keys[4:]}))
    return path


def test_cli_end_to_end_all_images(tiny_bundle, sample_dataset, spec, tmp_path, capsys):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tiny_bundle), "--data", str(sample_dataset), "--split", "all", "--out", str(out),
              "--tile-size", "64", "--overlap", "16", "--batch-size", "3"])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "bare land" in printed

    record = json.loads((out / "metrics.json").read_text())
    samples = spec.labelled()
    cm = np.array(record["confusion_matrix"])
    assert cm.shape == (spec.num_classes, spec.num_classes)
    # every non-ignore mask pixel of the evaluated images is counted exactly once
    assert cm.sum() == record["pixels"] == labelled_pixels(spec, samples)
    assert record["class_names"] == spec.class_names
    assert record["split"] == {"name": "all", "file": None, "images": len(samples)}
    assert record["settings"]["tile_size"] == 64 and record["settings"]["overlap"] == 16
    assert record["model"]["architecture"] == read_meta(tiny_bundle).architecture
    assert_metrics_consistent(record)
    # the same matrix as the tiled predictor's outputs compared with the masks directly
    np.testing.assert_array_equal(cm, direct_matrix(tiny_bundle, spec, samples, tile_size=64, overlap=16))
    # per-image records partition the set
    assert [im["key"] for im in record["images"]] == [s.key for s in samples]
    assert sum(im["pixels"] for im in record["images"]) == cm.sum()
    assert sum(im["correct"] for im in record["images"]) == np.trace(cm)
    for im in record["images"]:
        assert im["pixel_accuracy"] == pytest.approx(im["correct"] / im["pixels"])

    md = (out / "metrics.md").read_text()
    assert md.count("\n| ") >= 9 + spec.num_classes + len(samples)
    for name in spec.class_names:
        assert f"| {name} |" in md
    assert f"| mIoU (%) | {100 * record['miou']:.2f} |" in md
    with Image.open(out / "confusion_matrix.png") as png:
        png.verify()
    with Image.open(out / "confusion_matrix.png") as png:
        assert png.format == "PNG" and min(png.size) >= 300
        assert len(np.unique(np.asarray(png.convert("L")))) > 10  # a drawn figure, not a blank canvas
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES.values())  # no temporary leftovers


def test_api_matches_direct_prediction_with_varied_classes(tiny_bundle, sample_dataset, spec, split_file, tmp_path):
    backend = ColourBackend(read_meta(tiny_bundle))
    samples = spec.split_samples("train", split_file)
    result = evaluate(backend, sample_dataset, split="train", split_file=split_file, out_dir=tmp_path / "e",
                      tile_size=48, overlap=8, batch_size=2, progress=False)
    direct = direct_matrix(backend, spec, samples, tile_size=48, overlap=8)
    assert (direct.sum(axis=0) > 0).sum() >= 3, "the test backend should predict several classes"
    np.testing.assert_array_equal(result["confusion_matrix"], direct)
    # tile settings reach the predictor: this backend's output depends on the tiling
    other = direct_matrix(backend, spec, samples, tile_size=64, overlap=16)
    assert not np.array_equal(direct, other)
    # only the listed images are counted
    assert result["pixels"] == labelled_pixels(spec, samples) < labelled_pixels(spec, spec.labelled())
    assert [im["key"] for im in result["images"]] == [s.key for s in samples]
    assert result["split"]["file"] == str(split_file)
    record = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert_metrics_consistent(record)
    assert 0 < record["miou"] < 1 and not math.isnan(result["kappa"])
    calls = []
    evaluate(backend, sample_dataset, split="test", split_file=split_file, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]


def test_cli_split_file_counts_only_listed_images(tiny_bundle, sample_dataset, spec, split_file, tmp_path):
    out = tmp_path / "eval-test"
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tiny_bundle), "--data", str(sample_dataset), "--split-file", str(split_file),
              "--out", str(out)])
    assert info.value.code == 0
    record = json.loads((out / "metrics.json").read_text())
    test = spec.split_samples("test", split_file)
    assert record["split"]["name"] == "test" and record["split"]["images"] == len(test) == 2
    assert [im["key"] for im in record["images"]] == [s.key for s in test]
    assert record["pixels"] == labelled_pixels(spec, test)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_cli_errors_are_one_line_and_write_nothing(tiny_bundle, sample_dataset, spec, split_file, tmp_path):
    # a data set with one class fewer than the model (same images; the dropped colour becomes ignore)
    text = Path(sample_dataset).read_text()
    dropped = text.replace(f"- {{name: {spec.class_names[-1]}, color: '{'#%02X%02X%02X' % spec.colors[-1]}'}}\n", "")
    assert dropped != text
    four = tmp_path / "four.yaml"
    four.write_text(f"root: {Path(sample_dataset).parent}\n" + dropped)
    out = tmp_path / "out"
    line = _one_error_line(run_cli("evaluate", tiny_bundle, "--data", four, "--split", "all", "--out", out))
    assert str(tiny_bundle) in line and "5 classes" in line and "4" in line

    # a split name the split file lacks
    line = _one_error_line(run_cli("evaluate", tiny_bundle, "--data", sample_dataset, "--split", "tset",
                                   "--split-file", split_file, "--out", out))
    assert str(split_file) in line and "'tset'" in line

    # an empty split
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"train": [s.key for s in spec.labelled()], "test": []}))
    line = _one_error_line(run_cli("evaluate", tiny_bundle, "--data", sample_dataset, "--split-file", empty,
                                   "--out", out))
    assert str(empty) in line and "empty" in line

    # a model that does not exist
    line = _one_error_line(run_cli("evaluate", tmp_path / "missing", "--data", sample_dataset, "--out", out))
    assert "missing" in line and "not found" in line
    assert not out.exists()


def test_image_without_mask_is_an_error(tiny_bundle, sample_dataset, tmp_path):
    from terraseg.errors import DataError

    root = Path(sample_dataset).parent
    data = tmp_path / "partial"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for p in sorted((root / "images").iterdir())[:2]:
        (data / "images" / p.name).write_bytes(p.read_bytes())
    first = sorted((root / "images").iterdir())[0]
    (data / "masks" / first.name).write_bytes((root / "masks" / first.name).read_bytes())
    (data / "dataset.yaml").write_text(Path(sample_dataset).read_text())
    second = sorted((data / "images").iterdir())[1]
    (data / "split.json").write_text(json.dumps({"test": [f"images/{first.name}", f"images/{second.name}"]}))
    with pytest.raises(DataError, match="no mask") as info:
        evaluate(tiny_bundle, data / "dataset.yaml", split_file=data / "split.json", out_dir=tmp_path / "o",
                 progress=False)
    assert second.name in str(info.value)
    assert not (tmp_path / "o").exists()


def test_onnx_model_gives_the_torch_matrix(tiny_bundle, sample_dataset, spec, tmp_path):
    from terraseg.export import export_onnx

    onnx_path = export_onnx(tiny_bundle, tmp_path / "tiny.onnx", exporter="torchscript", sample_size=64)
    kwargs = dict(split=None, tile_size=64, overlap=16, progress=False)
    via_onnx = evaluate(onnx_path, sample_dataset, **kwargs)
    via_torch = evaluate(tiny_bundle, sample_dataset, backend="torch", **kwargs)
    via_auto = evaluate(tiny_bundle, sample_dataset, **kwargs)  # default: the bundle's cached ONNX export
    assert via_onnx["model"]["backend"] == "onnx" and via_torch["model"]["backend"] == "torch"
    assert via_auto["model"]["backend"] == "onnx"
    assert np.abs(via_auto["confusion_matrix"] - via_torch["confusion_matrix"]).sum() <= 0.001 * via_torch["pixels"]
    diff = np.abs(via_onnx["confusion_matrix"] - via_torch["confusion_matrix"]).sum()
    assert via_onnx["pixels"] == via_torch["pixels"]
    assert diff <= 0.001 * via_torch["pixels"]  # arg-max ties may flip a few pixels
    # ONNX evaluation runs without torch (as the standalone app and `predict --backend onnx` do)
    code = ("import sys\nfrom terraseg.evaluate import evaluate\n"
            f"r = evaluate({str(onnx_path)!r}, {str(sample_dataset)!r}, split=None, tile_size=64, overlap=16, "
            "progress=False)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint(r['pixels'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) == via_onnx["pixels"]


def test_band_selection_equals_a_data_set_stored_in_that_band_order(tiny_bundle, sample_dataset, tmp_path):
    # --bands 3,2,1 on the sample must score exactly like a copy whose images were saved as BGR.
    import shutil

    from terraseg.errors import ModelError

    copy = tmp_path / "bgr"
    shutil.copytree(sample_dataset.parent, copy)
    for image in (copy / "images").iterdir():
        rgb = np.asarray(Image.open(image).convert("RGB"))
        Image.fromarray(np.ascontiguousarray(rgb[:, :, ::-1])).save(image)
    selected = evaluate(tiny_bundle, sample_dataset, split=None, progress=False, tile_size=64, bands="3,2,1")
    stored = evaluate(tiny_bundle, copy / sample_dataset.name, split=None, progress=False, tile_size=64)
    plain = evaluate(tiny_bundle, sample_dataset, split=None, progress=False, tile_size=64)
    np.testing.assert_array_equal(selected["confusion_matrix"], stored["confusion_matrix"])
    assert not np.array_equal(selected["confusion_matrix"], plain["confusion_matrix"])
    assert selected["settings"]["bands"] == "3,2,1"
    with pytest.raises(ModelError, match=r"expects 3 band\(s\) but the data set .* gives 2 \(bands 1,2 selected\)"):
        evaluate(tiny_bundle, sample_dataset, split=None, progress=False, bands="1,2")
