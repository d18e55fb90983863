"""Peak memory of ``terraseg change`` on a huge pair of class maps; prints one JSON object.

Two generated ``--size`` x ``--size`` uint8 class maps (default 20,000 x 20,000: 400 M pixels each,
UTM, 10 m pixels, 6 classes in blocks with about 10 % change, a nodata corner) are written strip by
strip, then compared by :func:`terraseg.change.compare_maps` in a child process (change raster as a
COG, transition matrix, reports; no polygons, which hold the whole raster by design), then a
2,000-point sample of the change raster is drawn by :func:`terraseg.assess.design_sample`, each in
its own child process. Each child's peak resident set size (``VmHWM``, target < 1 GB) and seconds,
and the load average before and after are reported, so a busy machine shows in the figures.

    .venv/bin/python benchmarks/change_memory.py                 # 20,000² (a few minutes)
    .venv/bin/python benchmarks/change_memory.py --size 4000     # a few seconds
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

NAMES = ["water", "vegetation", "building", "road", "sand", "unlabeled"]


def log(msg: str) -> None:
    print(f"[change_memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_pair(folder: Path, size: int) -> tuple[Path, Path]:
    """Two class maps written 512 rows at a time (the generator itself stays small)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from terraseg.data.raster import geotiff_profile
    from terraseg.predict.outputs import tag_classes

    profile = geotiff_profile(size, size, 1, "uint8", "EPSG:32640", from_origin(600_000, 2_900_000, 10, 10), 255)
    colors = [[(60 * i) % 256, (90 * i) % 256, (150 * i) % 256] for i in range(len(NAMES))]
    paths = folder / "a.tif", folder / "b.tif"
    rng = np.random.default_rng(0)
    block = 64
    with rasterio.open(paths[0], "w", **profile) as da, rasterio.open(paths[1], "w", **profile) as db:
        tag_classes(da, NAMES, colors)
        tag_classes(db, NAMES, colors)
        for top in range(0, size, 512):
            rows = min(512, size - top)
            # blocky land cover: one class per 64 px block, from a coarse random field
            coarse = rng.integers(0, len(NAMES), (rows // block + 1, size // block + 1)).astype(np.uint8)
            a = np.repeat(np.repeat(coarse, block, 0), block, 1)[:rows, :size]
            change = rng.random(coarse.shape) < 0.1
            coarse_b = np.where(change, rng.integers(0, len(NAMES), coarse.shape), coarse).astype(np.uint8)
            b = np.repeat(np.repeat(coarse_b, block, 0), block, 1)[:rows, :size]
            if top < size // 10:
                a[:, : size // 10] = 255
            da.write(a, 1, window=Window(0, top, size, rows))
            db.write(b, 1, window=Window(0, top, size, rows))
    return paths


def _peak_mb() -> float:
    return round(int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024, 1)


def child(a: str, b: str, out: str) -> None:
    from terraseg.change import compare_maps

    t = time.perf_counter()
    report = compare_maps(a, b, out)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": round(seconds, 1), "peak_rss_mb": _peak_mb(),
                      "changed_pixels": report["changed_pixels"], "compared_pixels": report["compared_pixels"]}))


def design_child(change_tif: str, points: str) -> None:
    """``terraseg assess design`` on the change raster (36 strata), in its own process for its own peak."""
    from terraseg.assess import design_sample

    t = time.perf_counter()
    design = design_sample(change_tif, points, n=2000, min_per_class=30, seed=0)
    print(json.dumps({"design_seconds": round(time.perf_counter() - t, 1), "design_peak_rss_mb": _peak_mb(),
                      "design_points": design["n"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=None, help="Folder for the generated maps (default: temp).")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--design-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.design_child:
        design_child(*args.design_child)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        log(f"writing two {args.size:,}² class maps")
        t = time.perf_counter()
        a, b = write_pair(folder, args.size)
        generate = time.perf_counter() - t
        load_before = os.getloadavg()
        log("comparing in a child process")
        proc = subprocess.run([sys.executable, __file__, "--child", str(a), str(b), str(folder / "out")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(proc.returncode)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        change_tif = folder / "out" / "change.tif"
        log("designing a sample of the change raster in a child process")
        proc = subprocess.run([sys.executable, __file__, "--design-child", str(change_tif),
                               str(folder / "points.gpkg")], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(proc.returncode)
        result.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        result.update({"size": args.size, "pixels_per_map": args.size ** 2, "target_peak_rss_mb": 1024,
                       "under_target": result["peak_rss_mb"] < 1024, "generate_seconds": round(generate, 1),
                       "change_tif_mb": round(change_tif.stat().st_size / 2**20, 1),
                       "load_average_before": [round(v, 2) for v in load_before],
                       "load_average_after": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
