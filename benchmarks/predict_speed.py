"""Prediction speed of every path, against the default and the machine's matmul peak; prints JSON.

In one run, on this machine:

* ``matmul_peak_gflops``: float32 ``torch.matmul`` (2048²), same thread count, the best of the
  measurements taken at the start and in every round between the paths (shared cores: a single
  measurement may catch a busy moment and understate the peak).
* ``models``: for a small U-Net (base 16, depth 4), ``resunet34`` and ``deeplabv3plus`` (ResNet-50),
  randomly initialised, 512 px tiles: every prediction path on the same fixed work (``--rounds``
  batches of ``--batch`` held-out tiles, every path in turn within a round so that load from other
  work hits all alike): seconds per tile, speed-up over the default path (median of the per-round
  ratios), executed GFLOP/s (FLOPs per tile from ``torch.utils.flop_counter`` / best seconds per
  tile) as a share of the fp32 matmul peak (int8 runs on VNNI at several times the fp32 rate),
  and the class map agreement with torch fp32 on those tiles.
  Paths: ``default`` (what ``terraseg predict`` runs: ``terraseg.runtime.load_backend(bundle)``),
  ``torch_fp32_eager`` (the default before: plain eager model), ``torch_fp32`` (folded batch norms,
  channels_last, inference mode), ``torch_fp32_compile`` (``torch.compile``, ``--compile`` models),
  ``torch_bf16``, ``onnx_fp32`` (= the default when the export works), ``onnx_int8`` (calibrated).
  Tiles are cut from the Dubai test images (Tiles 7-8; int8 calibrated on Tiles 1-6) when the data
  set is present, else smooth random tiles.
* ``scene``: a 2448 x 2448 scene predicted at full resolution (512 px tiles, default overlap) and by
  the resize-to-1000 approach (whole scene resized to 1000², one pass, class map resized back), on
  the default path and, for the resize approach, also on torch fp32 eager (as the reference system
  runs it). Time ratio full / resize (target <= 3 for 6x the pixels).
* ``dubai`` (``--bundle`` of a trained model and the data set): mIoU of full resolution vs resize on
  the 18 test images.

The machine's cores may be shared: the load average at start and end is reported, work is
fixed (not time-boxed) and compared side by side. Example::

    nice .venv/bin/python benchmarks/predict_speed.py > runs/predict-speed.json
    .venv/bin/python benchmarks/predict_speed.py --models unet_small --rounds 2   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "datasets" / "dubai-mbrsc"
DUBAI_SPEC = ROOT / "examples" / "dubai.yaml"
TEST_GROUPS = ("Tile 7", "Tile 8")
MODELS = {"unet_small": ("unet", {"base_channels": 16, "depth": 4}), "resunet34": ("resunet34", {}),
          "deeplabv3plus": ("deeplabv3plus", {})}
TILE = 512


def log(msg: str) -> None:
    print(f"[predict_speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


MATMUL_GFLOPS: list[float] = []  # every matmul measurement of the run; the peak is the best


def matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    """float32 matmul throughput now (best of ``repeats``); also kept in ``MATMUL_GFLOPS``. Measured
    at the start and again in every round between the paths, so that the peak is not taken from a
    moment when other work had the cores."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    MATMUL_GFLOPS.append(2 * n**3 / best / 1e9)
    return MATMUL_GFLOPS[-1]


def random_bundle(path: Path, architecture: str, options: dict, num_classes: int = 6) -> Path:
    import torch

    from terraseg import models
    from terraseg.bundle import BundleMeta, save_bundle

    torch.manual_seed(0)
    model = models.build(architecture, in_channels=3, num_classes=num_classes, **options)
    # Batch-norm statistics from real-looking tiles (a cumulative average over two passes): a fresh
    # network's unit statistics make its activations shrink or explode layer by layer and it paints
    # one class everywhere, and then every path "agrees" trivially.
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for seed in (0, 1):
            model(torch.from_numpy(tiles_for_stats(seed)))
    model.eval()
    meta = BundleMeta(architecture=architecture, options=options, in_channels=3, num_classes=num_classes,
                      classes=[f"class {i}" for i in range(num_classes)],
                      colors=[[(60 * i) % 256, (90 * i) % 256, (150 * i) % 256] for i in range(num_classes)],
                      mean=[120.0] * 3, std=[60.0] * 3, tile_size=TILE)
    return save_bundle(path, model, meta)


def tiles_for_stats(seed: int) -> np.ndarray:
    from terraseg.export.quantize import random_calibration

    return random_calibration(3, 4, 256, seed=100 + seed)


def dubai_images(test: bool) -> list[Path]:
    from terraseg.data.spec import load_spec

    spec = load_spec(DUBAI_SPEC)
    return [s.image for s in spec.labelled() if (s.group in TEST_GROUPS) == test]


def tiles_for(meta, n: int, seed: int, held_out: bool) -> tuple[np.ndarray, str]:
    """Normalised tiles: Dubai test (held_out) or training images when present, else random."""
    from terraseg.export.quantize import calibration_tiles, random_calibration

    if (DUBAI / "Tile 7").is_dir():
        where = "Dubai Tiles 7-8 (test)" if held_out else "Dubai Tiles 1-6 (training)"
        return calibration_tiles(dubai_images(held_out), meta, n=n, size=TILE, seed=seed), where
    return random_calibration(meta.in_channels, n, TILE, seed=seed), "smooth random tiles"


def build_paths(bundle: Path, work: Path, compile_: bool, calibration: np.ndarray):
    """(name, backend or error text) for every path; the default through terraseg.runtime."""
    from terraseg.predict.backends import TorchBackend
    from terraseg.runtime import load_backend

    cache = work / "cache"
    paths: list[tuple[str, object]] = []

    def add(name, make):
        t = time.perf_counter()
        try:
            backend = make()
        except Exception as exc:  # report and go on
            paths.append((name, f"{exc.__class__.__name__}: {exc}"[:300]))
            return None
        backend.load_s = round(time.perf_counter() - t, 1)
        paths.append((name, backend))
        return backend

    default = add("default", lambda: load_backend(bundle, cache_dir=cache, warn=lambda m: log(f"warning: {m}")))
    add("torch_fp32_eager", lambda: TorchBackend(bundle, optimise=False))
    add("torch_fp32", lambda: TorchBackend(bundle))
    if compile_:
        add("torch_fp32_compile", lambda: TorchBackend(bundle, compile=True))
    add("torch_bf16", lambda: TorchBackend(bundle, precision="bf16"))
    default_is_onnx = getattr(default, "name", "") == "onnx" and default.precision == "fp32"
    if not default_is_onnx:
        add("onnx_fp32", lambda: load_backend(bundle, "onnx", cache_dir=cache))
    add("onnx_int8", lambda: load_backend(bundle, "onnx", precision="int8", calibration=calibration,
                                          cache_dir=cache))
    return paths, ("onnx_fp32" if default_is_onnx else None)


def bench_model(key: str, work: Path, rounds: int, batch: int, compile_: bool) -> dict:
    from terraseg.bundle import read_meta
    from terraseg.models.complexity import count_flops

    architecture, options = MODELS[key]
    bundle = random_bundle(work / key, architecture, options)
    meta = read_meta(bundle)
    _, flops = count_flops(architecture, size=TILE, in_channels=3, num_classes=meta.num_classes, **options)
    tiles, tiles_from = tiles_for(meta, rounds * batch, seed=1, held_out=True)
    calibration, calibration_from = tiles_for(meta, 8, seed=0, held_out=False)
    log(f"{key}: loading the paths (first use exports and quantises)")
    paths, alias = build_paths(bundle, work, compile_ and key in compile_, calibration)
    loaded = [(n, b) for n, b in paths if not isinstance(b, str)]
    for name, backend in loaded:  # warm-up (torch.compile compiles here)
        t = time.perf_counter()
        backend(tiles[:batch])
        backend.warmup_s = round(time.perf_counter() - t, 1)
    seconds = {n: [] for n, _ in loaded}
    classes = {n: [] for n, _ in loaded}
    for r in range(rounds):
        x = tiles[r * batch:(r + 1) * batch]
        log(f"{key}: round {r + 1}/{rounds}")
        matmul_gflops(repeats=2)
        for name, backend in loaded:
            t = time.perf_counter()
            out = backend(x)
            seconds[name].append(time.perf_counter() - t)
            classes[name].append(out.argmax(axis=1))
    reference = np.concatenate(classes["torch_fp32_eager"]) if "torch_fp32_eager" in classes else None
    result = {"architecture": architecture, "options": options, "gflop_per_tile": round(flops / 1e9, 2),
              "classes_in_torch_fp32_map": None if reference is None else int(len(np.unique(reference))),
              "tiles": f"{rounds} rounds x {batch} tiles of {TILE}² from {tiles_from}",
              "int8_calibration": f"8 tiles from {calibration_from}",
              "default_runs": dict(loaded).get("default").describe() if "default" in seconds else None,
              "paths": {}}
    for name, backend in paths:
        if isinstance(backend, str):
            result["paths"][name] = {"error": backend}
            continue
        per_tile = min(seconds[name]) / batch
        ratios = [d / s for d, s in zip(seconds["default"], seconds[name])] if "default" in seconds else []
        gflops = flops / 1e9 / per_tile
        entry = {"s_per_tile_best": round(per_tile, 3),
                 "s_per_tile_median": round(statistics.median(seconds[name]) / batch, 3),
                 "speedup_vs_default": round(statistics.median(ratios), 2) if ratios else None,
                 "executed_gflops_per_s": round(gflops, 1),
                 "load_s": backend.load_s, "first_call_s": backend.warmup_s, "runs": backend.describe()}
        if reference is not None:
            entry["class_agreement_vs_torch_fp32"] = round(float((np.concatenate(classes[name]) == reference).mean()), 5)
        result["paths"][name] = entry
    if alias:
        result["paths"][alias] = {"same_as": "default"}
    fp32 = [e["s_per_tile_median"] for n, e in result["paths"].items()
            if n.startswith(("torch_fp32", "onnx_fp32", "default")) and "s_per_tile_median" in e]
    if fp32 and "default" in seconds:
        result["default_vs_fastest_fp32"] = round(result["paths"]["default"]["s_per_tile_median"] / min(fp32), 3)
    result["_backends"] = dict(loaded)
    return result


def naive_predict(backend, image: np.ndarray, size: int) -> np.ndarray:
    """The reference approach: whole scene resized to size x size, one pass, class map resized back."""
    from PIL import Image

    from terraseg.normalisation import Normaliser

    h, w = image.shape[:2]
    small = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    x = Normaliser.from_meta(backend.meta, image.shape[2])(small).transpose(2, 0, 1)[None]
    classes = backend(np.ascontiguousarray(x, dtype=np.float32))[0].argmax(axis=0).astype(np.uint8)
    return np.asarray(Image.fromarray(classes).resize((w, h), Image.Resampling.NEAREST))


def scene_array(size: int, seed: int = 1) -> np.ndarray:
    """A 3-band uint8 scene of smooth random land-cover-like patterns (coarse blobs + fine noise)."""
    rng = np.random.default_rng(seed)
    scene = np.zeros((size, size, 3), np.float32)
    for cell, weight in ((128, 60.0), (16, 25.0), (2, 10.0)):
        g = -(-size // cell)
        coarse = rng.standard_normal((g, g, 3)).astype(np.float32)
        scene += weight * np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:size, :size]
    return np.clip(scene + 120, 0, 255).astype(np.uint8)


def bench_scene(key: str, backends: dict, image: np.ndarray, resize: int) -> dict:
    from terraseg.predict import predict_array

    default = backends["default"]
    eager = backends.get("torch_fp32_eager")
    naive_predict(default, image, resize)  # warm-up at that size
    t = time.perf_counter()
    full = predict_array(default, image, tile_size=TILE).classes
    full_s = time.perf_counter() - t
    t = time.perf_counter()
    small = naive_predict(default, image, resize)
    resize_s = time.perf_counter() - t
    out = {"scene": f"{image.shape[1]}x{image.shape[0]}", "full_resolution_s": round(full_s, 2),
           f"resize_{resize}_s": round(resize_s, 2), "time_ratio_full_vs_resize": round(full_s / resize_s, 2),
           "pixel_ratio": round(image.shape[0] * image.shape[1] / resize**2, 2),
           "class_agreement_full_vs_resize": round(float((full == small).mean()), 4)}
    if eager is not None:
        naive_predict(eager, image, resize)
        t = time.perf_counter()
        naive_predict(eager, image, resize)
        eager_s = time.perf_counter() - t
        out[f"resize_{resize}_torch_fp32_eager_s"] = round(eager_s, 2)
        out["time_ratio_full_vs_resize_on_torch_eager"] = round(full_s / eager_s, 2)
    return out


def bench_dubai(bundle: Path, resize: int, work: Path) -> dict:
    from terraseg.data.spec import load_spec
    from terraseg.metrics import ConfusionMatrix, compute_metrics
    from terraseg.predict import predict_array
    from terraseg.runtime import load_backend

    spec = load_spec(DUBAI_SPEC)
    backend = load_backend(bundle, cache_dir=work / "cache")
    items = [s for s in spec.labelled() if s.group in TEST_GROUPS]
    cms = {k: ConfusionMatrix(spec.num_classes, spec.ignore_index) for k in ("full", "resize")}
    seconds = {"full": 0.0, "resize": 0.0}
    for sample in items:
        image, mask = spec.read_pair(sample)
        for k in ("full", "resize"):
            t = time.perf_counter()
            classes = predict_array(backend, image).classes if k == "full" else naive_predict(backend, image, resize)
            seconds[k] += time.perf_counter() - t
            cms[k].update(classes, mask)
    return {"images": len(items), "runs": backend.describe(),
            **{k: {"miou": round(compute_metrics(cms[k].matrix, spec.class_names)["miou"], 4),
                   "seconds": round(seconds[k], 1)} for k in cms}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--rounds", type=int, default=3, help="fixed work: rounds of --batch tiles per path")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--compile", nargs="*", default=["unet_small"], choices=list(MODELS),
                   help="models to also measure with torch.compile (slow to compile)")
    p.add_argument("--scene", type=int, default=2448, help="side of the full-resolution scene; 0 skips")
    p.add_argument("--resize", type=int, default=1000, help="input size of the resize approach")
    p.add_argument("--bundle", type=Path, help="trained bundle: mIoU full resolution vs resize on Dubai")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = p.parse_args(argv)

    import torch

    from terraseg._threads import inference_threads

    work = Path(args.work or tempfile.mkdtemp(prefix="terraseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    threads = inference_threads()
    torch.set_num_threads(threads)
    result: dict = {"machine": {"cpus": os.cpu_count(), "threads": threads, "torch": torch.__version__,
                                "load_avg_start": [round(x, 2) for x in os.getloadavg()]}}
    log("matmul peak")
    matmul_gflops(repeats=8)
    image = scene_array(args.scene) if args.scene else None
    result["models"], result["scene"] = {}, {}
    for key in args.models:
        entry = bench_model(key, work, args.rounds, args.batch, args.compile)
        backends = entry.pop("_backends")
        result["models"][key] = entry
        if image is not None and "default" in backends:
            log(f"{key}: {args.scene}² scene, full resolution vs resize to {args.resize}")
            result["scene"][key] = bench_scene(key, backends, image, args.resize)
        del backends
    if args.bundle:
        result["dubai"] = (bench_dubai(args.bundle, args.resize, work) if (DUBAI / "Tile 7").is_dir()
                           else {"skipped": f"data set not found at {DUBAI}"})
    else:
        result["dubai"] = {"skipped": "mIoU needs a trained bundle (--bundle); the models above are random"}
    peak = max(MATMUL_GFLOPS)
    result["matmul_peak_gflops"] = round(peak, 1)
    result["matmul_gflops_measured"] = [round(x, 1) for x in MATMUL_GFLOPS]
    for entry in result["models"].values():  # int8 paths run on VNNI, several times the fp32 rate
        for path in entry["paths"].values():
            if "executed_gflops_per_s" in path:
                path["pct_of_fp32_matmul_peak"] = round(100 * path["executed_gflops_per_s"] / peak, 1)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
