"""Prediction on a Dask cluster (a LocalCluster of 2 processes) compared with the single-process run."""

from __future__ import annotations

import filecmp
import json
import os
import sys

import numpy as np
import pytest
import rasterio
from predict_helpers import CheapBackend, make_meta, write_geotiff

from terraseg.predict import predict_batch, predict_file
from terraseg.predict.dask.blocks import (BlockReader, block_kinds, plan_blocks, predict_block, prepare_blocks_folder,
                                          rows_per_block)
from terraseg.predict.dask.join import join_blocks
from terraseg._threads import inference_threads
from terraseg.predict.options import PredictOptions
from terraseg.predict.tiler import TileGrid

PIXEL_AREA = 0.25  # write_geotiff's default transform: 0.5 m pixels
WORKER_THREADS = max(1, inference_threads() // 2)  # each of the 2 workers' share of the cores


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    with cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def worker_threads(monkeypatch):
    """The single-process reference runs the model with the threads of one worker (cores // 2), so that
    even the float outputs compare bit for bit (torch sums differ in the last bit across thread counts)."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("TERRASEG_THREADS", str(WORKER_THREADS))  # read by backends made in this process
    yield
    torch.set_num_threads(before)


def _blocky(rng, h, w, cell=20):
    """A uint8 image of constant cells (values 1..255), so a model draws regions that cross block seams."""
    cells = rng.integers(1, 256, size=(-(-h // cell), -(-w // cell), 3)).astype(np.uint8)
    return np.kron(cells, np.ones((cell, cell, 1), np.uint8))[:h, :w]


def _scenes(folder, rng):
    """Two small scenes and a 260x150 one (6 tile rows of 64 px) with a nodata hole (0 in every band)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_geotiff(folder / "a.tif", _blocky(rng, 90, 100))
    write_geotiff(folder / "b.tif", _blocky(rng, 70, 130))
    big = _blocky(rng, 260, 150)
    big[100:140, 0:30] = 0
    return write_geotiff(folder / "big.tif", big, nodata=0)


def _dead_pid() -> int:
    """The id of a process that has ended (the killed run that left temporaries)."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _polygons(path):
    import fiona
    from shapely.geometry import shape

    with fiona.open(path) as src:
        return [(int(f["properties"]["class_id"]), shape(f["geometry"])) for f in src]


def _assert_same_outputs(first: dict, second: dict):
    assert first.keys() == second.keys()
    for kind in first:
        if kind == "vector":  # GeoJSON/GPKG files carry their (temporary) layer name: compare the polygons
            a = sorted((c, g.normalize().wkb) for c, g in _polygons(first[kind]))
            b = sorted((c, g.normalize().wkb) for c, g in _polygons(second[kind]))
            assert a == b
        else:
            assert filecmp.cmp(first[kind], second[kind], shallow=False), kind


def test_workers_equal_single_process_with_a_block_split_scene(tmp_path, tiny_bundle, client, worker_threads):
    from distributed import get_task_stream

    from terraseg.runtime import load_backend

    big = _scenes(tmp_path / "in", np.random.default_rng(3))
    backend = load_backend(tiny_bundle, backend="torch")
    opts = PredictOptions(vector="gpkg", confidence=True, probabilities=True)
    single = predict_batch(backend, [tmp_path / "in"], tmp_path / "one", opts)
    with get_task_stream(client) as stream:
        spread = predict_batch(backend, [tmp_path / "in"], tmp_path / "two", opts, scheduler=client, block_rows=2)
    assert single.ok and spread.ok and spread.done == single.done and len(spread.done) == 3
    keys = [str(t["key"]) for t in stream.data]
    assert sum(k.startswith("block-big-") for k in keys) == 3  # 6 tile rows in blocks of 2
    assert sum(k.startswith("predict-") for k in keys) == 2 and sum(k.startswith("join-big-") for k in keys) == 1
    for path in single.done:
        _assert_same_outputs(single.outputs[path], spread.outputs[path])
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())

    # the joined scene on its own terms: areas count every pixel once, polygons are whole across the seams
    out = spread.outputs[big]
    with rasterio.open(out["classes"]) as ds:
        classes = ds.read(1)
        assert ds.nodata == 255
    assert (classes[100:140, 0:30] == 255).all() and (classes[:100] < 5).all()
    counts = np.bincount(classes.ravel(), minlength=256)
    report = json.loads(out["areas_json"].read_text())
    assert [r["pixels"] for r in report["classes"]] == counts[:5].tolist()
    assert report["nodata_pixels"] == 40 * 30
    polygons = _polygons(out["vector"])
    for k in range(5):
        area = sum(g.area for c, g in polygons if c == k)
        assert area == pytest.approx(counts[k] * PIXEL_AREA)
    seams = [2800000 - 0.5 * row for row in (96, 192)]  # block edges: tile-row starts 96 and 192
    assert any(g.bounds[1] < y < g.bounds[3] for _, g in polygons for y in seams)  # something crosses a seam
    from shapely import STRtree

    geoms = [g for _, g in polygons]
    tree = STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="touches")):
        if i < j and polygons[i][0] == polygons[j][0]:  # same class, touching: must not share an edge
            assert geoms[i].intersection(geoms[j]).length == 0


def test_resume_and_stale_temporaries(tmp_path, tiny_bundle, client):
    from terraseg.runtime import load_backend

    _scenes(tmp_path / "in", np.random.default_rng(4))
    backend = load_backend(tiny_bundle, backend="torch")
    out = tmp_path / "out"
    first = predict_batch(backend, [tmp_path / "in"], out, scheduler=client, block_rows=2, color=False,
                          vector="geojson")
    assert first.ok and len(first.done) == 3
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # block folders and temporaries gone
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    (out / "b_overlay.png").unlink()
    stale = [out / ".b_classes.x1y2z3ab.part.tif", out / f".big_areas.{_dead_pid()}-abcdefgh.part.csv",
             out / ".big_polygons.x9y8z7w6.part.geojson"]
    for p in stale:
        p.write_bytes(b"left by an interrupted run")
    # a block folder of an interrupted run with another plan (e.g. other options) is not reused
    (out / ".big.blocks").mkdir()
    (out / ".big.blocks" / "plan.json").write_text('{"other": "plan"}')
    (out / ".big.blocks" / "00000_classes.tif").write_bytes(b"stale block")
    (out / "big_areas.csv").unlink()
    again = predict_batch(backend, [tmp_path / "in"], out, scheduler=client, block_rows=2, color=False,
                          vector="geojson")
    assert again.ok and [p.name for p in again.done] == ["b.tif", "big.tif"]
    assert [p.name for p in again.skipped] == ["a.tif"]
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[n] == t for n, t in before.items() if n.startswith("a_"))
    with rasterio.open(out / "big_classes.tif") as ds:
        assert (ds.read(1)[100:140, 0:30] == 255).all()


def test_blocks_already_written_are_kept(tmp_path, tiny_bundle):
    """Resuming a split scene: blocks of the same plan are reused, only the missing ones are predicted."""
    from terraseg.runtime import load_backend

    big = _scenes(tmp_path / "in", np.random.default_rng(5))
    backend = load_backend(tiny_bundle, backend="torch")
    opts = PredictOptions()
    blocks = plan_blocks(TileGrid(260, 150, 64, 16), 2)
    folder = tmp_path / "blocks"
    plan = {"input": str(big), "rows": 2}
    assert prepare_blocks_folder(folder, plan, blocks, block_kinds(opts), resume=True) == set()
    written = predict_block(backend, big, folder, blocks[1], opts, 64, 16)
    stamp = written["classes"].stat().st_mtime_ns
    assert prepare_blocks_folder(folder, plan, blocks, block_kinds(opts), resume=True) == {1}
    assert written["classes"].stat().st_mtime_ns == stamp
    assert prepare_blocks_folder(folder, {"input": str(big), "rows": 3}, blocks, block_kinds(opts), True) == set()
    assert not written["classes"].exists()


def test_failing_inputs_reported_like_single_process(tmp_path, tiny_bundle, client, capsys, monkeypatch,
                                                     worker_threads):
    from terraseg.cli import main

    rng = np.random.default_rng(6)
    (tmp_path / "in").mkdir()
    write_geotiff(tmp_path / "in" / "a.tif", _blocky(rng, 60, 70))
    write_geotiff(tmp_path / "in" / "b.tif", _blocky(rng, 50, 90))
    (tmp_path / "in" / "broken.tif").write_bytes(b"II*\x00not really a tiff")
    args = [str(tiny_bundle), str(tmp_path / "in"), str(tmp_path / "missing.tif"), "--no-overlay", "--backend", "torch"]

    def run(out, *more):
        with pytest.raises(SystemExit) as exc:
            main(["predict", *args, "--out", str(tmp_path / out), *more])
        text = capsys.readouterr()
        return exc.value.code, text.out + text.err

    code1, text1 = run("one")
    code2, text2 = run("two", "--workers", "2")  # a LocalCluster of its own
    monkeypatch.setenv("TERRASEG_SCHEDULER", client.scheduler.address)
    code3, text3 = run("three")  # the running cluster
    assert code1 == code2 == code3 == 1
    failed = [sorted(line for line in t.splitlines() if line.startswith("failed:")) for t in (text1, text2, text3)]
    assert len(failed[0]) == 2 and failed[0] == failed[1] == failed[2]
    assert "2 predicted, 0 skipped (already done), 2 failed" in text2
    assert "2 predicted, 0 skipped (already done), 2 failed" in text3
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert not [n for n in names if n.startswith(("broken", "missing", "."))]
    for out in ("two", "three"):
        assert sorted(p.name for p in (tmp_path / out).iterdir()) == names
        assert filecmp.cmp(tmp_path / "one" / "a_classes.tif", tmp_path / out / "a_classes.tif", shallow=False)


def test_without_dask_workers_says_how_to_install(tmp_path, tiny_bundle, capsys, monkeypatch):
    from terraseg.cli import main
    from terraseg.errors import ConfigError

    write_geotiff(tmp_path / "x.tif", np.full((40, 40, 3), 9, np.uint8))
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tiny_bundle), str(tmp_path / "x.tif"), "--out", str(tmp_path / "o"), "--workers", "2"])
    text = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert len(text.splitlines()) == 1 and "pip install 'terraseg[distributed]'" in text
    with pytest.raises(ConfigError, match="terraseg.distributed"):
        predict_batch(CheapBackend(make_meta()), [tmp_path / "x.tif"], tmp_path / "o", workers=2)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# the model on the workers


class CountingBackend:
    """A pointwise backend that logs the process id each time it is unpickled, i.e. loaded in a process."""

    def __init__(self, meta, log):
        self.meta, self.log = meta, str(log)

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")

    def __call__(self, batch):
        x = np.concatenate([batch, -batch], axis=1)[:, :self.meta.num_classes]
        e = np.exp(x - x.max(axis=1, keepdims=True))  # shifted: raw exp overflows on bright pixels
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def test_model_reaches_each_worker_once(tmp_path, client):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests
    log = tmp_path / "loads.txt"
    log.touch()
    rng = np.random.default_rng(7)
    (tmp_path / "in").mkdir()
    for i in range(6):
        write_geotiff(tmp_path / "in" / f"s{i}.tif", _blocky(rng, 50, 60))
    result = predict_batch(CountingBackend(make_meta(num_classes=4, tile_size=32), log), [tmp_path / "in"],
                           tmp_path / "out", scheduler=client, overlay=False)
    assert result.ok and len(result.done) == 6
    pids = [int(line) for line in log.read_text().split()]
    workers = {pid for pid in client.run(os.getpid).values()}
    assert {p for p in pids if p != os.getpid()} == workers  # loaded on both workers ...
    assert len([p for p in pids if p in workers]) == 2  # ... once each, not once per file


def _onnx_model(path, meta):
    """A 1x1-convolution + softmax ONNX model with terraseg metadata (no torch, no export)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(meta.num_classes, meta.in_channels, 1, 1)).astype(np.float32) / 50
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"]), helper.make_node("Softmax", ["logits"], ["probs"],
                                                                                axis=1)],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", meta.in_channels, "h", "w"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", meta.num_classes, "h", "w"])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"terraseg": json.dumps(meta.to_json())})
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("kind", ["torch", "onnx"])
def test_workers_run_the_backend_asked_for_with_their_share_of_cores(tmp_path, tiny_bundle, client, kind):
    from terraseg.predict.dask.cluster import workers_per_host
    from terraseg.predict.dask.model import ModelPayload, ModelPlugin
    from terraseg.runtime import load_backend

    if kind == "torch":
        backend = load_backend(tiny_bundle, backend="torch", precision="bf16")
    else:
        backend = load_backend(_onnx_model(tmp_path / "tiny.onnx", make_meta(tile_size=32)), backend="onnx")
    plugin = ModelPlugin(ModelPayload.from_backend(backend), workers_per_host(client))
    client.register_plugin(plugin, name=plugin.name)
    try:
        def inspect(dask_worker, name=plugin.name):
            loaded = dask_worker.plugins[name].backend
            if type(loaded).__name__ == "TorchBackend":
                import torch

                return "TorchBackend", loaded.precision, torch.get_num_threads()
            return type(loaded).__name__, loaded.precision, loaded.session.get_session_options().intra_op_num_threads

        seen = client.run(inspect)
    finally:
        client.unregister_worker_plugin(plugin.name)
    expected = ("TorchBackend", "bf16") if kind == "torch" else ("OnnxBackend", "fp32")
    assert sorted(seen.values()) == [expected + (WORKER_THREADS,)] * 2


def test_onnx_backend_on_workers_equals_single_process(tmp_path, client):
    from terraseg.predict.onnx_backend import OnnxBackend

    # the threads of one worker, so that the float outputs compare bit for bit
    backend = OnnxBackend(_onnx_model(tmp_path / "tiny.onnx", make_meta(tile_size=32)),
                          threads=WORKER_THREADS)
    _scenes(tmp_path / "in", np.random.default_rng(8))
    single = predict_batch(backend, [tmp_path / "in"], tmp_path / "one", confidence=True, tile_size=32)
    spread = predict_batch(backend, [tmp_path / "in"], tmp_path / "two", confidence=True, tile_size=32,
                           scheduler=client, block_rows=3)
    assert single.ok and spread.ok and len(spread.done) == 3
    for path in single.done:
        _assert_same_outputs(single.outputs[path], spread.outputs[path])


# ------------------------------------------------------------------------------------------------
# blocks without a cluster


class ContextBackend:
    """Probabilities that depend on the whole tile (pixel values plus the tile mean), so a block
    predicted without the right context rows, or blended in another order, would differ."""

    def __init__(self, meta):
        self.meta = meta
        self.w = np.random.default_rng(2).normal(size=(meta.num_classes, meta.in_channels)).astype(np.float32)

    def __call__(self, batch):
        x = batch + batch.mean(axis=(2, 3), keepdims=True)
        logits = np.sin(np.einsum("kc,nchw->nkhw", self.w, x) * 2.0) * 3.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("tile, overlap, rows", [(32, 8, 1), (32, 8, 2), (32, 20, 2), (32, 0, 3), (48, 30, 4)])
def test_blocks_join_to_the_whole_scene_prediction(tmp_path, tile, overlap, rows):
    meta = make_meta(tile_size=tile)
    backend = ContextBackend(meta)
    rng = np.random.default_rng(tile + overlap + rows)
    image = (rng.random((203, 77, 3)) * 3).astype(np.float32)
    image[50:60, 10:20] = np.nan
    scene = write_geotiff(tmp_path / "scene.tif", image)
    opts = PredictOptions(overlap=overlap, overlay=False, confidence=True, probabilities=True)
    whole = predict_file(backend, scene, tmp_path / "whole", opts)

    grid = TileGrid(203, 77, tile, overlap)
    blocks = plan_blocks(grid, rows)
    assert blocks[0].top == 0 and blocks[-1].bottom == 203
    assert all(a.bottom == b.top for a, b in zip(blocks, blocks[1:]))
    assert len(blocks) == -(-len(grid.row_starts) // rows)
    folder = tmp_path / "blocks"
    for block in reversed(blocks):  # any order: blocks are independent
        predict_block(backend, scene, folder, block, opts, tile, overlap)
    with BlockReader(folder, blocks, block_kinds(opts)) as reader:
        assert reader.rows(blocks[-1].top, blocks[-1].top + 1)["probabilities"].shape == (5, 1, 77)
    joined = join_blocks(meta, scene, tmp_path / "joined", opts, "scene", tile, overlap, folder, blocks)
    _assert_same_outputs(whole, joined)


def test_rows_per_block_rule():
    assert rows_per_block(40, 400, 400, 1, None) is None  # one worker: never worth it
    assert rows_per_block(40, 400, 400, 2, None) == 10  # a lone scene on 2 workers: 4 blocks
    assert rows_per_block(40, 400, 4000, 4, None) is None  # within its share of a large batch
    assert rows_per_block(12, 120, 120, 8, None) is None  # too few tile rows
    assert rows_per_block(100, 1000, 1000, 16, None) == 8  # blocks keep at least 8 tile rows
    assert rows_per_block(40, 400, 400, 2, 0) is None
    assert rows_per_block(40, 400, 400, 1, 5) == 5 and rows_per_block(5, 50, 50, 1, 5) is None
