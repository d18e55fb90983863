"""Scaling-out benchmark: prediction on 1 and N local Dask workers against one process; prints JSON.

What it measures, side by side on this machine:

* ``files``: ``--scenes`` generated GeoTIFFs predicted by ``predict_batch`` in one process (torch
  with all cores), then on a ``LocalCluster`` of 1 worker and of ``--workers`` workers (one process
  each, ``cores // workers`` torch threads each, the model sent once per worker);
* ``large``: one ``--large`` x ``--size`` scene predicted in one process, then on ``--workers`` workers
  split into blocks of whole tile rows (the automatic rule of ``terraseg.predict.dask.blocks``).

Per run: wall time (prediction only; the cluster start is reported apart), speed-up over the
single-process run, megapixels/s, peak RSS of each worker process, whether every output file is
byte-identical to the single-process one, and the load average before and after (the cores may be
shared with other work: compare ratios measured in the same run, not absolute times).

Example::

    .venv/bin/python benchmarks/scale.py                      # 4 scenes 1024², a 3072 x 1024 scene, 2 workers
    .venv/bin/python benchmarks/scale.py --scenes 2 --size 512 --large 2048 --workers 2   # quicker
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def make_bundle(folder: Path, tile: int) -> Path:
    import torch

    from terraseg import models
    from terraseg.bundle import BundleMeta, save_bundle

    torch.manual_seed(0)
    options = {"base_channels": 8, "depth": 3}
    net = models.build("unet", in_channels=3, num_classes=5, **options)
    meta = BundleMeta(architecture="unet", options=options, in_channels=3, num_classes=5, classes=list("abcde"),
                      colors=[[i * 50, 100, 200 - i * 40] for i in range(5)], mean=[127.5] * 3, std=[64.0] * 3,
                      tile_size=tile)
    return save_bundle(folder / "unet8", net, meta)


def make_scene(path: Path, height: int, width: int, seed: int) -> Path:
    """A georeferenced uint8 scene of smooth random fields (regions of all sizes)."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 64 + 2, width // 64 + 2, 3)).astype(np.float32)
    rows = np.linspace(0, coarse.shape[0] - 1.001, height)
    cols = np.linspace(0, coarse.shape[1] - 1.001, width)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    image = ((top * (1 - fr) + bottom * fr) * 200 + rng.integers(0, 40, (height, width, 3))).astype(np.uint8)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32640", "transform": Affine(0.5, 0, 300000, 0, -0.5, 2800000), "tiled": True,
               "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image.transpose(2, 0, 1))
    return path


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, which (unlike ru_maxrss) starts afresh in a spawned worker."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def same_outputs(first, second) -> bool:
    return all(filecmp.cmp(first.outputs[p][k], second.outputs[p][k], shallow=False)
               for p in first.done for k in first.outputs[p])


def run(backend, inputs, out: Path, pixels: int, workers: int | None, reference=None) -> tuple[dict, object]:
    """One measured run; ``workers=None``: one process."""
    from terraseg.predict import predict_batch

    entry: dict = {"workers": workers or "single process", "load_before": load()}
    if workers is None:
        start = time.perf_counter()
        result = predict_batch(backend, inputs, out, resume=False)
        entry["seconds"] = round(time.perf_counter() - start, 2)
        entry["peak_rss_mb"] = [round(peak_rss_mb())]
    else:
        from distributed import Client, LocalCluster, get_task_stream

        start = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster, Client(cluster) as client:
            entry["cluster_start_s"] = round(time.perf_counter() - start, 2)
            start = time.perf_counter()
            with get_task_stream(client) as stream:
                result = predict_batch(backend, inputs, out, resume=False, scheduler=client)
            entry["seconds"] = round(time.perf_counter() - start, 2)
            entry["blocks"] = sum(str(t["key"]).startswith("block-") for t in stream.data)
            entry["peak_rss_mb"] = sorted(round(v) for v in client.run(peak_rss_mb).values())
    entry["load_after"] = load()
    entry["megapixels_per_s"] = round(pixels / 1e6 / entry["seconds"], 3)
    if not result.ok:
        entry["failed"] = result.failed
    if reference is not None:
        entry["speed_up"] = round(reference["seconds"] / entry["seconds"], 2)
    return entry, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4, help="number of generated scenes")
    parser.add_argument("--size", type=int, default=1024, help="side of each scene (and width of the large one)")
    parser.add_argument("--large", type=int, default=3072, help="height of the large scene")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="torch", help="torch (the README's figures), onnx or auto")
    args = parser.parse_args()

    from terraseg._threads import inference_threads
    from terraseg.runtime import load_backend

    os.environ.setdefault("TERRASEG_PROGRESS", "0")
    report: dict = {"cores": inference_threads(), "backend": args.backend,
                    "model": "classic U-Net base 8 depth 3, random weights",
                    "tile": args.tile, "scenes": f"{args.scenes} x {args.size}²",
                    "large": f"{args.large} x {args.size}"}
    with tempfile.TemporaryDirectory(prefix="terraseg-scale-") as tmp:
        tmp = Path(tmp)
        backend = load_backend(make_bundle(tmp, args.tile), backend=args.backend)
        backend(np.zeros((2, 3, args.tile, args.tile), np.float32))  # warm up before the first timed run
        (tmp / "in").mkdir()
        scenes = [make_scene(tmp / "in" / f"s{i}.tif", args.size, args.size, i) for i in range(args.scenes)]
        large = make_scene(tmp / "large.tif", args.large, args.size, 99)
        pixels = args.scenes * args.size * args.size

        log("files: single process")
        single, single_result = run(backend, scenes, tmp / "single", pixels, None)
        report["files"] = [single]
        for n in sorted({1, args.workers}):
            log(f"files: {n} worker(s)")
            entry, result = run(backend, scenes, tmp / f"w{n}", pixels, n, single)
            entry["outputs_equal"] = same_outputs(single_result, result)
            report["files"].append(entry)

        log("large scene: single process")
        large_pixels = args.large * args.size
        single, single_result = run(backend, [large], tmp / "large1", large_pixels, None)
        log(f"large scene: {args.workers} workers, split into blocks")
        entry, result = run(backend, [large], tmp / "largeN", large_pixels, args.workers, single)
        entry["outputs_equal"] = same_outputs(single_result, result)
        report["large"] = [single, entry]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":  # LocalCluster starts worker processes that import this file
    main()
