"""The ONNX metadata reader that skips the graph agrees with the onnx package on files it writes;
the ONNX backend's tiles-in-parallel runs give the probabilities of one plain onnxruntime run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from terraseg.errors import ModelError  # noqa: E402
from terraseg.predict.onnx_backend import read_metadata_props  # noqa: E402
from terraseg.predict.onnx_metadata import read_props  # noqa: E402


def _model_file(path, props, weight_elems=300_000):
    """A small valid model (Add of an input and a large initializer) written by the onnx package."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(weight_elems, dtype=np.float32), name="w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [weight_elems])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [weight_elems])],
                              initializer=[weight])
    model = helper.make_model(graph, producer_name="test", opset_imports=[helper.make_opsetid("", 17)])
    model.doc_string = "doc " * 50
    for key, value in props:
        model.metadata_props.add(key=key, value=value)
    onnx.save_model(model, str(path))
    return path


def _onnx_props(path):
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@pytest.mark.parametrize("props", [
    [],
    [("terraseg", '{"a": 1}'), ("class_names", '{"0": "Wasser", "1": "Gebäude ✓"}')],
    [("k", "first"), ("k", "second"), ("", "empty key"), ("long", "x" * 70_000)],
])
def test_metadata_matches_the_onnx_package(tmp_path, props):
    path = _model_file(tmp_path / "m.onnx", props)
    assert read_props(path) == _onnx_props(path)
    assert read_metadata_props(path) == _onnx_props(path)


def test_metadata_after_the_graph_of_an_exported_model(tmp_path, tiny_bundle):
    from terraseg.export import export_onnx

    path = export_onnx(tiny_bundle, tmp_path / "model.onnx", exporter="torchscript")
    props = read_props(path)
    assert props == _onnx_props(path)
    assert {"terraseg", "terraseg_export", "tile_size", "standardization_mean"} <= set(props)


def test_truncated_file_is_one_model_error(tmp_path):
    path = _model_file(tmp_path / "m.onnx", [("terraseg", "{}")])
    data = path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])  # ends inside the initializer
    with pytest.raises(ValueError):
        read_props(cut)
    with pytest.raises(ModelError, match="unreadable ONNX model"):
        read_metadata_props(cut)


def test_reading_metadata_does_not_import_onnx(tmp_path):
    path = _model_file(tmp_path / "m.onnx", [("terraseg", "{}")])
    code = ("import sys; from terraseg.predict.onnx_backend import read_metadata_props; "
            f"assert read_metadata_props({str(path)!r}) == {{'terraseg': '{{}}'}}; "
            "assert 'onnx' not in sys.modules, 'onnx imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("threads,n", [(2, 1), (2, 2), (2, 5), (3, 2), (4, 7)])
def test_tiles_in_parallel_give_the_probabilities_of_one_plain_run(tmp_path_factory, tiny_bundle, threads, n):
    """Concurrent single-threaded runs over shares of a batch = one onnxruntime run of the whole batch."""
    import onnxruntime as ort

    from terraseg.export import export_onnx
    from terraseg.predict.onnx_backend import OnnxBackend

    path = tmp_path_factory.getbasetemp() / "parallel-tiles.onnx"
    if not path.exists():
        export_onnx(tiny_bundle, path, exporter="torchscript")
    x = np.random.default_rng(n).standard_normal((n, 3, 48, 40)).astype(np.float32)
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = plain.run(None, {plain.get_inputs()[0].name: x})[0]
    backend = OnnxBackend(path, threads=threads)
    assert backend.parallel_tiles and "tiles in parallel" in backend.describe()
    got = backend(x)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert not OnnxBackend(path, threads=threads, parallel_tiles=False).parallel_tiles
    assert not OnnxBackend(path, threads=1).parallel_tiles


class _RecordingSession:
    def __init__(self, session):
        self.session, self.batches = session, []

    def run(self, names, feed):
        self.batches.append(next(iter(feed.values())).shape[0])
        return self.session.run(names, feed)


def test_tiles_in_parallel_run_one_tile_per_run_and_the_leftover_on_all_threads(tmp_path_factory, tiny_bundle):
    """A fresh session's first run of each batch shape is slow: every parallel run takes one tile, and
    the tiles that do not fill the threads go to the intra-op session; the grid is fitted to fill them."""
    from terraseg.export import export_onnx
    from terraseg.predict.onnx_backend import OnnxBackend

    path = tmp_path_factory.getbasetemp() / "parallel-tiles.onnx"
    if not path.exists():
        export_onnx(tiny_bundle, path, exporter="torchscript")
    backend = OnnxBackend(path, threads=2)
    assert backend.tiles_at_once == 2 and OnnxBackend(path, threads=1).tiles_at_once == 1
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    backend(x[:2])  # makes the single-threaded session
    tiles, whole = _RecordingSession(backend._tile_session), _RecordingSession(backend.session)
    backend._tile_session, backend.session = tiles, whole
    backend(x)
    assert tiles.batches == [1, 1, 1, 1] and whole.batches == [1]
