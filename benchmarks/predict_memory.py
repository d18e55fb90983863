"""Peak memory of streaming prediction on a huge scene; prints one JSON object.

A generated ``--size`` x ``--size`` 3-band GeoTIFF (default 20,000 x 20,000, 1.2 GB of pixels) is
predicted by ``predict_file`` in a child process with a tiny random U-Net (512 px tiles, batch 4);
the child's peak resident set size (``VmHWM``, target < 2 GB) and time are reported. Speed is
``benchmarks/predict_speed.py``'s job.

    .venv/bin/python benchmarks/predict_memory.py --size 20000 --backend onnx
    .venv/bin/python benchmarks/predict_memory.py --size 4000          # about 20 s
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


def log(msg: str) -> None:
    print(f"[predict_memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=20000, help="side of the generated scene (px)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="onnx")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--_rss-child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._rss_child:
        rss_child(*args._rss_child)
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="terraseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result = {"load_avg_start": [round(x, 2) for x in os.getloadavg()],
              "peak_rss": bench_rss(work, args.size, args.backend),
              "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
