"""Prediction speed, efficiency and memory benchmark; prints one JSON object.

What it measures (all on this machine, in one run):

* ``matmul_peak_gflops``: float32 ``torch.matmul`` of large matrices, the machine's practical peak.
* ``full_predict``: a generated GeoTIFF scene predicted with ``predict_file`` (read, normalise,
  tile, blend, write classes + colour + overlay + areas). Megapixels/s, the time spent inside the
  model during that run, the pure model time for the same tiles (same batch shapes, nothing else
  running), the overhead of the whole predict over pure model time (target <= 10 %), the overlap
  factor (tile area / scene area), executed GFLOP/s (FLOPs per tile from
  ``torch.utils.flop_counter`` x tiles / pure model time) and its share of the matmul peak.
* ``precisions``: pure model speed on the same tiles for torch fp32, torch bf16 (autocast), ONNX
  Runtime fp32 and ONNX Runtime int8 (static QDQ), with speed-ups over torch fp32.
* ``naive``: the reference approach of resizing the whole scene to the network input size, one
  forward pass, and upsampling the class map: time per scene.
* ``dubai`` (with ``--bundle`` and the data set present): mIoU on the test tiles (Tiles 7-8) for every
  precision and for the naive approach, with the time each took.
* ``peak_rss``: a generated ``--size`` x ``--size`` GeoTIFF (default 20,000 x 20,000) predicted in a
  child process with a tiny model; its maximum resident set size (target < 2 GB) and time.

Examples::

    .venv/bin/python benchmarks/predict_speed.py                       # random models, no mIoU
    .venv/bin/python benchmarks/predict_speed.py --bundle runs/x/best  # + mIoU on Dubai Tiles 7-8
    .venv/bin/python benchmarks/predict_speed.py --size 4000 --scene 1024   # a quick run

Without ``--bundle`` the speed model is a randomly initialised classic U-Net (base 16, depth 4,
tile 512). The cores may be shared with other work: the load average before and after is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "datasets" / "dubai-mbrsc"
DUBAI_SPEC = ROOT / "examples" / "dubai.yaml"
TEST_GROUPS = ("Tile 7", "Tile 8")
PARTS = ("peak", "full", "precisions", "naive", "dubai", "rss")


# ------------------------------------------------------------------------------------------ helpers


def log(msg: str) -> None:
    print(f"[predict_speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Timed:
    """A backend wrapper that records the time and batch shapes of every model call."""

    def __init__(self, backend):
        self.backend = backend
        self.meta = backend.meta
        self.seconds = 0.0
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch):
        t = time.perf_counter()
        out = self.backend(batch)
        self.seconds += time.perf_counter() - t
        self.shapes.append(tuple(batch.shape))
        return out


def pure_model_seconds(backend, shapes, seed: int = 0) -> float:
    """Time the backend alone on random normalised batches of exactly ``shapes``."""
    rng = np.random.default_rng(seed)
    cache: dict[tuple, np.ndarray] = {}
    backend(rng.standard_normal(shapes[0], dtype=np.float32))  # warm-up
    total = 0.0
    for shape in shapes:
        if shape not in cache:
            cache[shape] = rng.standard_normal(shape, dtype=np.float32)
        t = time.perf_counter()
        backend(cache[shape])
        total += time.perf_counter() - t
    return total


def matmul_peak_gflops(n: int = 2048, repeats: int = 6) -> float:
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_tile(bundle, tile: int) -> int:
    from terraseg.models.complexity import count_flops

    _, flops = count_flops(bundle.model, size=tile, in_channels=bundle.meta.in_channels,
                            num_classes=bundle.meta.num_classes)
    return int(flops)


def make_scene(path: Path, size: int, seed: int = 0, rows_per_write: int = 1024) -> Path:
    """A georeferenced 3-band uint8 GeoTIFF of smooth random land-cover-like patterns, written by strips."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    period = 1024
    # A periodic texture: coarse blobs + fine noise, tiled across the scene with a per-strip shift.
    base = np.zeros((period, period, 3), np.float32)
    for cell, weight in ((128, 60.0), (16, 25.0), (2, 10.0)):
        g = period // cell
        coarse = rng.standard_normal((g, g, 3)).astype(np.float32)
        base += weight * np.repeat(np.repeat(coarse, cell, 0), cell, 1)
    base = np.clip(base + 120, 0, 255).astype(np.uint8)
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", zlevel=1, crs="EPSG:32640",
                   transform=from_origin(300000.0, 2800000.0, 0.5, 0.5), BIGTIFF="IF_SAFER")
    reps = -(-size // period) + 1
    with rasterio.open(path, "w", **profile) as ds:
        for top in range(0, size, rows_per_write):
            h = min(rows_per_write, size - top)
            shift = (top // rows_per_write * 337) % period
            rows = np.arange(top, top + h) % period
            strip = np.tile(base[rows], (1, reps, 1))[:, shift:shift + size]
            ds.write(strip.transpose(2, 0, 1), window=rasterio.windows.Window(0, top, size, h))
    return path


def random_bundle(path: Path, base_channels: int, depth: int, tile: int, num_classes: int = 6) -> Path:
    import torch

    from terraseg import models
    from terraseg.bundle import BundleMeta, save_bundle

    torch.manual_seed(0)
    options = {"base_channels": base_channels, "depth": depth}
    model = models.build("unet", in_channels=3, num_classes=num_classes, **options)
    meta = BundleMeta(architecture="unet", options=options, in_channels=3, num_classes=num_classes,
                      classes=[f"class {i}" for i in range(num_classes)],
                      colors=[[(60 * i) % 256, (90 * i) % 256, (150 * i) % 256] for i in range(num_classes)],
                      mean=[120.0] * 3, std=[60.0] * 3, tile_size=tile)
    return save_bundle(path, model, meta)


def backends(bundle_path: Path, onnx_path: Path, calibration=None, only=None):
    """(name, factory) for every precision; factories so only one model is in memory at a time."""
    from terraseg.predict.backends import TorchBackend
    from terraseg.predict.onnx_backend import OnnxBackend

    cache = onnx_path.parent / "cache"
    items = [
        ("torch_fp32", lambda: TorchBackend(bundle_path, precision="fp32")),
        ("torch_bf16", lambda: TorchBackend(bundle_path, precision="bf16")),
        ("onnx_fp32", lambda: OnnxBackend(onnx_path)),
        ("onnx_int8", lambda: OnnxBackend(onnx_path, precision="int8", cache_dir=cache)),
    ]
    if calibration is not None:
        items.append(("onnx_int8_calibrated",
                      lambda: OnnxBackend(onnx_path, precision="int8", calibration=calibration, cache_dir=cache)))
    return [(n, f) for n, f in items if not only or n in only]


# ------------------------------------------------------------------------------------------ parts


def bench_full_predict(bundle_path: Path, scene: Path, work: Path, batch_size: int, tile: int | None,
                       repeats: int = 2) -> dict:
    from terraseg.bundle import load_bundle
    from terraseg.predict.backends import TorchBackend
    from terraseg.predict.engine import predict_file

    bundle = load_bundle(bundle_path)
    backend = TorchBackend(bundle)
    tile = int(tile or bundle.meta.tile_size)
    timed = Timed(backend)
    timed(np.zeros((batch_size, bundle.meta.in_channels, tile, tile), np.float32))  # warm-up
    # Whole predict and pure model replay alternate, best of ``repeats`` each, so that load from
    # other work on shared cores does not land on one side only.
    totals, insides, pures = [], [], []
    for r in range(repeats):
        timed.seconds, timed.shapes = 0.0, []
        t = time.perf_counter()
        predict_file(timed, scene, work / f"full-{r}", batch_size=batch_size, tile_size=tile)
        totals.append(time.perf_counter() - t)
        insides.append(timed.seconds)
        pures.append(pure_model_seconds(backend, timed.shapes))
    total, pure = min(totals), min(pures)
    timed.seconds = insides[totals.index(total)]
    from terraseg.data.raster import raster_info

    info = raster_info(scene)
    pixels = info.width * info.height
    n_tiles = sum(s[0] for s in timed.shapes)
    flops = flops_per_tile(bundle, tile)
    return {
        "scene": f"{info.width}x{info.height} GeoTIFF",
        "tile_size": tile, "overlap": tile // 4, "batch_size": batch_size, "tiles": n_tiles,
        "overlap_factor": round(n_tiles * tile * tile / pixels, 3),
        "repeats": repeats, "total_s": round(total, 2),
        "model_s_inside_predict": round(timed.seconds, 2),
        "model_s_pure": round(pure, 2),
        "overhead_pct_vs_pure_model": round(100 * (total - pure) / pure, 1),
        "overhead_pct_vs_model_inside": round(100 * (total - timed.seconds) / timed.seconds, 1),
        "megapixels_per_s": round(pixels / 1e6 / total, 3),
        "gflops_per_tile": round(flops / 1e9, 3),
        "executed_gflops_per_s": round(flops * n_tiles / pure / 1e9, 1),
    }, timed.shapes


def bench_precisions(bundle_path: Path, onnx_path: Path, shapes, tile: int, gflops_per_tile: float) -> dict:
    """Pure model time per precision on the same batches, interleaved batch by batch so that load
    from other work on shared cores hits every precision alike."""
    out: dict = {}
    loaded = []
    for name, factory in backends(bundle_path, onnx_path):
        try:
            backend = factory()
            backend(np.zeros(shapes[0], np.float32))  # warm-up (and int8 quantisation)
            loaded.append((name, backend))
        except Exception as exc:  # report, keep going
            out[name] = {"error": f"{exc.__class__.__name__}: {exc}"[:300]}
    rng = np.random.default_rng(0)
    seconds = {name: 0.0 for name, _ in loaded}
    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        for name, backend in loaded:
            t = time.perf_counter()
            backend(x)
            seconds[name] += time.perf_counter() - t
    n = sum(s[0] for s in shapes)
    base = seconds.get("torch_fp32")
    for name, _ in loaded:
        sec = seconds[name]
        out[name] = {"model_s": round(sec, 2), "tiles_per_s": round(n / sec, 2),
                     "tile_megapixels_per_s": round(n * tile * tile / 1e6 / sec, 3),
                     "effective_gflops_per_s": round(gflops_per_tile * n / sec, 1)}
        if base:
            out[name]["speedup_vs_torch_fp32"] = round(base / sec, 2)
    return out


def naive_predict(backend, image: np.ndarray, size: int) -> np.ndarray:
    """The reference approach: whole scene resized to size x size, one pass, class map resized back."""
    from PIL import Image

    from terraseg.predict.engine import classes_and_confidence, normalization

    h, w = image.shape[:2]
    small = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    mean, inv_std = normalization(backend.meta, image.shape[2])
    x = ((small.astype(np.float32) - mean) * inv_std).transpose(2, 0, 1)[None]
    probs = backend(np.ascontiguousarray(x, dtype=np.float32))[0]
    cls, _ = classes_and_confidence(probs)
    return np.asarray(Image.fromarray(cls).resize((w, h), Image.Resampling.NEAREST))


def bench_naive_time(bundle_path: Path, scene_array: np.ndarray, size: int, repeats: int = 3) -> dict:
    from terraseg.predict.backends import TorchBackend

    backend = TorchBackend(bundle_path)
    naive_predict(backend, scene_array[:size, :size], size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        naive_predict(backend, scene_array, size)
        best = min(best, time.perf_counter() - t)
    h, w = scene_array.shape[:2]
    return {"input_size": size, "scene": f"{w}x{h}", "seconds": round(best, 3),
            "megapixels_per_s": round(w * h / 1e6 / best, 2)}


def bench_dubai(bundle_path: Path, onnx_path: Path, limit: int | None, naive_sizes, tile: int, only=None) -> dict:
    from terraseg.data.spec import load_spec
    from terraseg.metrics import ConfusionMatrix, compute_metrics
    from terraseg.predict.engine import predict_array
    from terraseg.predict.onnx_backend import read_onnx_meta
    from terraseg.export.quantize import calibration_tiles

    spec = load_spec(DUBAI_SPEC)
    items = [s for s in spec.labelled() if s.group in TEST_GROUPS]
    if limit and limit < len(items):  # evenly spread over both tiles
        items = [items[round(i * (len(items) - 1) / max(limit - 1, 1))] for i in range(limit)]
    log(f"dubai: reading {len(items)} test images")
    pairs = [spec.read_pair(s) for s in items]
    train_images = [s.image for s in spec.labelled() if s.group not in TEST_GROUPS]
    meta = read_onnx_meta(onnx_path)
    calibration = calibration_tiles(train_images, meta, n=16, size=min(int(meta.tile_size), 256))
    pixels = sum(img.shape[0] * img.shape[1] for img, _ in pairs)
    result = {"images": [s.key for s in items], "megapixels": round(pixels / 1e6, 2), "tile_size": tile,
              "overlap": tile // 4,
              "int8_calibration": "16 tiles cut from Dubai Tiles 1-6 (training images)"}
    naive = [(f"naive_resize_{n}", n) for n in naive_sizes]
    variants = []
    for name, factory in backends(bundle_path, onnx_path, calibration, only):
        log(f"dubai: loading {name}")
        variants.append((name, factory(), None))
    if naive:
        from terraseg.predict.backends import TorchBackend

        torch_backend = TorchBackend(bundle_path)
        variants += [(name, torch_backend, size) for name, size in naive]
    # Image by image, every variant in turn: load from other work hits all variants alike.
    cms = {name: ConfusionMatrix(spec.num_classes, spec.ignore_index) for name, _, _ in variants}
    seconds = {name: 0.0 for name, _, _ in variants}
    for i, (img, mask) in enumerate(pairs):
        log(f"dubai: image {i + 1}/{len(pairs)}")
        for name, backend, size in variants:
            t = time.perf_counter()
            if size is None:
                classes = predict_array(backend, img, tile_size=tile, batch_size=4).classes
            else:
                classes = naive_predict(backend, img, size)
            seconds[name] += time.perf_counter() - t
            cms[name].update(classes, mask)
    ref = None
    for name, _, size in variants:
        m = compute_metrics(cms[name].matrix, spec.class_names)
        entry = {"miou": round(m["miou"], 4), "pixel_accuracy": round(m["pixel_accuracy"], 4),
                 "seconds": round(seconds[name], 1), "megapixels_per_s": round(pixels / 1e6 / seconds[name], 3)}
        if size is not None:
            entry["input_size"] = size
        if name == "torch_fp32":
            ref = entry
        elif ref is not None:
            entry["miou_change_vs_torch_fp32"] = round(entry["miou"] - ref["miou"], 4)
            entry["speedup_vs_torch_fp32"] = round(ref["seconds"] / seconds[name], 2)
        result[name] = entry
    return result


def rss_child(scene: str, bundle: str, out: str, backend: str) -> None:
    """Child process: predict the big scene and print time + own peak RSS as JSON."""
    from terraseg.predict import predict_file
    from terraseg.runtime import load_backend

    t = time.perf_counter()
    model = load_backend(bundle, backend=backend)
    timed = Timed(model)
    paths = predict_file(timed, scene, out, batch_size=4)
    seconds = time.perf_counter() - t
    # VmHWM: the peak RSS of this process image since exec (ru_maxrss would also count the memory
    # of the large parent between fork and exec).
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
    print(json.dumps({"seconds": seconds, "model_seconds": timed.seconds, "peak_rss_bytes": peak,
                      "outputs": sorted(paths)}))


def bench_rss(work: Path, size: int, backend: str) -> dict:
    tile = 512
    bundle = random_bundle(work / "rss-bundle", base_channels=4, depth=3, tile=tile)
    model = bundle
    if backend == "onnx":
        from terraseg.export import export_onnx

        model = export_onnx(bundle, work / "rss.onnx")
    log(f"rss: writing a {size}x{size} GeoTIFF")
    t = time.perf_counter()
    scene = make_scene(work / f"scene-{size}.tif", size)
    write_s = time.perf_counter() - t
    log(f"rss: predicting it in a child process ({backend})")
    cmd = [sys.executable, __file__, "--_rss-child", str(scene), str(model), str(work / "rss-out"), backend]
    env = {**os.environ, "TERRASEG_PROGRESS": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr[-1500:]}
    child = json.loads(done.stdout.strip().splitlines()[-1])
    out_bytes = sum(p.stat().st_size for p in (work / "rss-out").iterdir())
    scene.unlink()
    return {"scene": f"{size}x{size}x3 uint8 GeoTIFF ({size * size * 3 / 1e9:.2f} GB raw)",
            "model": f"unet base_channels=4 depth=3, tile {tile}, batch 4, {backend} backend",
            "write_scene_s": round(write_s, 1), "predict_s": round(child["seconds"], 1),
            "megapixels_per_s": round(size * size / 1e6 / child["seconds"], 2),
            "model_s": round(child["model_seconds"], 1),
            "peak_rss_mb": round(child["peak_rss_bytes"] / 2**20, 1),
            "target_mb": 2048, "outputs": child["outputs"], "outputs_mb": round(out_bytes / 2**20, 1)}


# ------------------------------------------------------------------------------------------ main


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, help="trained bundle (enables mIoU on Dubai Tiles 7-8)")
    p.add_argument("--scene", type=int, default=2048, help="side of the generated speed scene (px)")
    p.add_argument("--size", type=int, default=20000, help="side of the generated RSS scene (px); 0 skips")
    p.add_argument("--rss-backend", choices=("torch", "onnx"), default="onnx")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--tile", type=int, help="prediction tile size (default: the bundle's)")
    p.add_argument("--naive-size", type=int, nargs="+",
                   help="input sizes of the naive resize approach (default: the bundle's tile size)")
    p.add_argument("--dubai-limit", type=int, default=0, help="use N test images spread over both tiles (0: all 18)")
    p.add_argument("--dubai-only", nargs="*", default=None,
                   help="precisions to run on Dubai (torch_fp32 torch_bf16 onnx_fp32 onnx_int8 onnx_int8_calibrated)")
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS,
                   help="what to run (default: all)")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--_rss-child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._rss_child:
        rss_child(*args._rss_child)
        return

    import torch

    from terraseg.bundle import read_meta
    from terraseg.export import export_info, export_onnx

    work = Path(args.work or tempfile.mkdtemp(prefix="terraseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "load_avg_start": [round(x, 2) for x in os.getloadavg()],
                    "note": "cores shared with other work; figures are lower bounds"},
    }
    parts = set(args.parts)
    if parts & {"full", "precisions"}:
        parts |= {"peak", "full"}  # GFLOP/s needs the peak; precisions replay the full run's tiles
    if "peak" in parts:
        log("matmul peak")
        result["matmul_peak_gflops"] = round(matmul_peak_gflops(), 1)

    if parts & {"full", "precisions", "naive", "dubai"}:
        if args.bundle:
            bundle_path = args.bundle
        else:
            bundle_path = random_bundle(work / "speed-bundle", base_channels=16, depth=4, tile=512)
        meta = read_meta(bundle_path)
        result["model"] = {"bundle": str(args.bundle) if args.bundle else "random unet (base 16, depth 4)",
                           "architecture": meta.architecture, "options": meta.options,
                           "tile_size": meta.tile_size}
        log("export to ONNX")
        onnx_path = export_onnx(bundle_path, work / "model.onnx")
        result["model"]["onnx_exporter"] = export_info(onnx_path)["exporter"]

    scene = None
    if "full" in parts:
        log(f"full predict of a {args.scene}x{args.scene} scene")
        scene = make_scene(work / "speed-scene.tif", args.scene, seed=1)
        full, shapes = bench_full_predict(bundle_path, scene, work, args.batch_size, args.tile)
        full["executed_pct_of_matmul_peak"] = round(
            100 * full["executed_gflops_per_s"] / result["matmul_peak_gflops"], 1)
        result["full_predict"] = full

    if "precisions" in parts:
        log("precisions")
        result["precisions"] = bench_precisions(bundle_path, onnx_path, shapes, full["tile_size"],
                                                full["gflops_per_tile"])

    if "naive" in parts:
        log("naive resize")
        from terraseg.data.raster import read_raster

        scene = scene or make_scene(work / "speed-scene.tif", args.scene, seed=1)
        image = read_raster(scene)
        result["naive_resize"] = [bench_naive_time(bundle_path, image, n)
                                  for n in (args.naive_size or [int(meta.tile_size)])]
        for entry in result["naive_resize"]:
            if "full_predict" in result:
                entry["full_resolution_tiled_s"] = result["full_predict"]["total_s"]

    if "dubai" in parts:
        if not args.bundle:
            result["dubai_test_tiles_7_8"] = {"skipped": "needs a trained bundle (--bundle)"}
        elif not (DUBAI / "Tile 7").is_dir():
            result["dubai_test_tiles_7_8"] = {"skipped": f"data set not found at {DUBAI}"}
        else:
            result["dubai_test_tiles_7_8"] = bench_dubai(
                bundle_path, onnx_path, args.dubai_limit, args.naive_size or [int(meta.tile_size)],
                int(args.tile or meta.tile_size), args.dubai_only)

    if "rss" in parts and args.size:
        result["peak_rss"] = bench_rss(work, args.size, args.rss_backend)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
