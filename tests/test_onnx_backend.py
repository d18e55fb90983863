"""ONNX Runtime backend: torch-free, same answers as the torch backend, int8 quantisation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from terraseg.bundle import read_meta  # noqa: E402
from terraseg.errors import DataError, ModelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def onnx_model(tiny_bundle, tmp_path_factory) -> Path:
    from terraseg.export import export_onnx

    # The tracer is quick; the dynamo exporter is covered in test_export.py.
    return export_onnx(tiny_bundle, tmp_path_factory.mktemp("onnx") / "tiny.onnx", exporter="torchscript")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TERRASEG_CACHE_DIR", str(tmp_path / "cache"))


def _images(sample_dataset) -> list[Path]:
    return sorted((sample_dataset.parent / "images").iterdir())


def test_backend_reads_metadata_and_matches_torch(onnx_model, tiny_bundle):
    from terraseg.predict.backends import TorchBackend
    from terraseg.predict.onnx_backend import OnnxBackend

    backend = OnnxBackend(onnx_model)
    assert backend.meta == read_meta(tiny_bundle)
    x = np.random.default_rng(0).standard_normal((3, 3, 37, 90)).astype(np.float32)
    out = backend(x)
    assert out.dtype == np.float32 and out.shape == (3, 5, 37, 90)
    ref = TorchBackend(tiny_bundle)(x)
    assert np.abs(out - ref).max() < 1e-4
    with pytest.raises(DataError, match=r"expects a batch \(N, 3, h, w\)"):
        backend(x[:, :2])


def test_onnx_class_map_equals_torch_on_sample_images(onnx_model, tiny_bundle, sample_dataset):
    from terraseg.data.raster import read_raster
    from terraseg.predict import predict_array
    from terraseg.runtime import load_backend

    onnx_backend = load_backend(onnx_model, backend="onnx")
    torch_backend = load_backend(tiny_bundle, backend="torch")
    same = total = 0
    for path in _images(sample_dataset):
        image = read_raster(path)
        a = predict_array(onnx_backend, image, tile_size=64, overlap=16).classes
        b = predict_array(torch_backend, image, tile_size=64, overlap=16).classes
        assert a.shape == b.shape == image.shape[:2]
        same += int((a == b).sum())
        total += a.size
    assert same / total >= 0.999


def test_predict_with_onnx_backend_never_imports_torch(onnx_model, sample_dataset, tmp_path):
    images = _images(sample_dataset)[:2]
    script = (
        "import sys\n"
        "from terraseg.cli import main\n"
        "for precision in ('fp32', 'int8'):\n"
        "    try:\n"
        f"        main(['predict', {str(onnx_model)!r}, *{[str(p) for p in images]!r}, '--out',\n"
        f"              {str(tmp_path)!r} + '/' + precision, '--backend', 'onnx', '--precision', precision])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'lightning'))\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "TERRASEG_CACHE_DIR": str(tmp_path / "cache"), "TERRASEG_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout
    for precision in ("fp32", "int8"):
        written = sorted(p.name for p in (tmp_path / precision).iterdir())
        assert any(n.startswith(images[0].stem) and "classes" in n for n in written), written
    # int8 made exactly one cached quantised model.
    assert len(list((tmp_path / "cache").glob("*.int8.onnx"))) == 1


def test_int8_is_quantised_cached_and_close_to_fp32(onnx_model, tmp_path, sample_dataset):
    from terraseg.export.quantize import calibration_tiles
    from terraseg.predict.onnx_backend import OnnxBackend, read_onnx_meta
    from terraseg.runtime import load_backend

    fp32 = OnnxBackend(onnx_model)
    with pytest.raises(ModelError, match="export --int8"):  # the backend itself never quantises
        OnnxBackend(onnx_model, precision="int8")
    q = load_backend(onnx_model, "onnx", precision="int8", cache_dir=tmp_path / "c")
    assert q.precision == "int8" and q.path.parent == tmp_path / "c" and q.path != onnx_model
    model = onnx.load(str(q.path))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert q.meta == fp32.meta == read_onnx_meta(q.path)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["terraseg_export"])["calibration"]["kind"] == "random"
    # Cached: a second backend reuses the same file without rewriting it.
    stamp = q.path.stat().st_mtime_ns
    again = load_backend(onnx_model, "onnx", precision="int8", cache_dir=tmp_path / "c")
    assert again.path == q.path and q.path.stat().st_mtime_ns == stamp
    # Calibrated on real tiles of the sample: probabilities stay close to fp32.
    tiles = calibration_tiles(_images(sample_dataset), fp32.meta, n=6, size=64)
    assert tiles.shape == (6, 3, 64, 64) and abs(float(tiles.mean())) < 2
    calibrated = load_backend(onnx_model, "onnx", precision="int8", calibration=tiles, cache_dir=tmp_path / "c")
    assert calibrated.path != q.path
    x = calibration_tiles(_images(sample_dataset), fp32.meta, n=4, size=96, seed=5)
    a, b = fp32(x), calibrated(x)
    assert b.shape == a.shape
    assert np.abs(a - b).mean() < 0.005
    # An int8 file given directly runs as it is (no second quantisation).
    direct = OnnxBackend(q.path, precision="fp32")
    assert direct.precision == "int8" and direct.path == q.path


def test_bad_onnx_files_raise_model_error(tmp_path, onnx_model):
    from terraseg.predict.onnx_backend import OnnxBackend

    with pytest.raises(ModelError, match="not found"):
        OnnxBackend(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="unreadable ONNX model"):
        OnnxBackend(junk)
    bare = onnx.load(str(onnx_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match="no terraseg metadata"):
        OnnxBackend(tmp_path / "bare.onnx")
    with pytest.raises(ModelError, match="unknown precision"):
        OnnxBackend(onnx_model, precision="bf16")


def test_bundle_folder_is_exported_once_into_the_cache(tiny_bundle, tmp_path):
    from terraseg.predict.onnx_backend import OnnxBackend
    from terraseg.runtime import load_backend

    with pytest.raises(ModelError, match="terraseg export"):  # torch-free: no export in the backend
        OnnxBackend(tiny_bundle)
    backend = load_backend(tiny_bundle, "onnx")
    assert backend.path.suffix == ".onnx" and backend.path.parent == tmp_path / "cache"
    assert backend.meta.classes == read_meta(tiny_bundle).classes


def test_threads_follow_physical_cores(onnx_model, monkeypatch):
    import psutil

    from terraseg.predict.onnx_backend import OnnxBackend

    cores = min(psutil.cpu_count(logical=False), len(os.sched_getaffinity(0)))
    backend = OnnxBackend(onnx_model)
    assert backend.threads == cores and f"{cores} threads" in backend.describe()
    assert backend.session.get_session_options().intra_op_num_threads == cores
    monkeypatch.setenv("TERRASEG_THREADS", "1")
    assert OnnxBackend(onnx_model).threads == 1


def test_backend_works_with_onnxruntime_alone(onnx_model):
    # The standalone desktop app ships onnxruntime but neither torch nor the onnx package.
    script = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
        "import numpy as np\n"
        "from terraseg.predict.onnx_backend import OnnxBackend, read_onnx_meta\n"
        f"backend = OnnxBackend({str(onnx_model)!r})\n"
        "out = backend(np.zeros((2, 3, 30, 47), np.float32))\n"
        f"print('OK', out.shape, read_onnx_meta({str(onnx_model)!r}).classes == backend.meta.classes)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OK (2, 5, 30, 47) True" in done.stdout
