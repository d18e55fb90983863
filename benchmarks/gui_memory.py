"""Peak memory of the desktop app on a huge GeoTIFF: open, preview, predict, save (prints JSON).

    python benchmarks/gui_memory.py                       # 20000 x 20000 px, a cheap stand-in model
    python benchmarks/gui_memory.py --size 8000 --model runs/x/bundle

The scene (3-band uint8 GeoTIFF, tiled, deflate, smooth fields; made once into --work) goes through
the real window (offscreen): ``open_image`` (preview through the source contract), Predict (the
worker streams the file through ``predict_file`` and the CLI's sinks) and saving the class raster,
colour mask, overlay and area report. The app runs in a child process so its peak RSS
(``getrusage``) covers exactly that. Without ``--model`` the model is a numpy stand-in with 512 px
tiles (one class per brightness range), so the figure is the app's own memory, not a network's; a
real model adds its own weights and activations. Target (issue 9): peak RSS under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class StandInModel:
    """Backend protocol: class k where the first band falls in the k-th brightness range."""

    def __init__(self):
        from terraseg.bundle import BundleMeta

        self.meta = BundleMeta(architecture="stand-in", in_channels=3, num_classes=4,
                               classes=["water", "road", "building", "vegetation"],
                               colors=[[41, 98, 255], [120, 120, 120], [220, 60, 60], [60, 180, 75]],
                               mean=[127.5] * 3, std=[64.0] * 3, tile_size=512)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        k = self.meta.num_classes
        cls = np.clip(((batch[:, 0] + 2.0) / 4.0 * k).astype(np.int64), 0, k - 1)
        probs = np.full((batch.shape[0], k, batch.shape[2], batch.shape[3]), 0.05, np.float32)
        np.put_along_axis(probs, cls[:, None], 0.85, axis=1)
        return probs


def make_scene(path: Path, size: int, compress: str | None) -> None:
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (3, size // 256 + 2, size // 256 + 2)).astype(np.float32)
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32640",
                   transform=from_origin(500000.0, 2800000.0, 0.5, 0.5), tiled=True, blockxsize=512,
                   blockysize=512, BIGTIFF="IF_SAFER")
    if compress:
        profile["compress"] = compress
    cols = np.arange(size) / 256.0
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, 1024):
            rows = np.arange(top, min(size, top + 1024)) / 256.0
            r0, c0 = rows.astype(int), cols.astype(int)
            fy, fx = (rows - r0)[:, None], (cols - c0)[None, :]
            strip = np.empty((3, len(rows), size), np.uint8)
            for b in range(3):  # bilinear fields: smooth like land cover, cheap to make
                g = coarse[b]
                v = (g[r0][:, c0] * (1 - fy) * (1 - fx) + g[r0][:, c0 + 1] * (1 - fy) * fx
                     + g[r0 + 1][:, c0] * fy * (1 - fx) + g[r0 + 1][:, c0 + 1] * fy * fx)
                strip[b] = v.astype(np.uint8)
            dst.write(strip, window=((top, top + len(rows)), (0, size)))


def child(scene: Path, model: str | None, out: Path) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from terraseg.gui.app import MainWindow
    from terraseg.gui.saving import output_files
    from terraseg.gui.theme import make_settings

    app = QApplication.instance() or QApplication([])
    win = MainWindow(settings=make_settings(out / "settings.ini"))
    win.quiet_errors = True
    t0 = time.perf_counter()
    assert win.open_image(scene), win.last_error
    t_open = time.perf_counter() - t0
    if model:
        assert win.open_model(model), win.last_error
    else:
        win.set_backend(StandInModel())
    loop = QEventLoop()
    win.stateChanged.connect(loop.quit)
    t1 = time.perf_counter()
    assert win.start_prediction(), win.last_error
    loop.exec()
    t_predict = time.perf_counter() - t1
    assert win.result is not None, win.last_error
    t2 = time.perf_counter()
    saved = {kind: win.save_one(kind, path) for kind, path in output_files(out, win.image_doc).items()
             if kind != "polygons"}  # polygons of a 400-megapixel scene are a job of their own
    t_save = time.perf_counter() - t2
    QTimer.singleShot(0, app.quit)
    return {"open_s": round(t_open, 2), "predict_s": round(t_predict, 2), "save_s": round(t_save, 2),
            "files": {k: p.stat().st_size for k, p in saved.items() if p is not None},
            "classified_pixels": win.result.report["classified_pixels"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=20000, help="scene side in pixels")
    p.add_argument("--model", help="a bundle or .onnx file (default: the numpy stand-in)")
    p.add_argument("--compress", default=None, help="GeoTIFF compression of the scene (default: none)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "terraseg-gui-memory")
    p.add_argument("--child", nargs=2, metavar=("SCENE", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        info = child(Path(args.child[0]), args.model, Path(args.child[1]))
        info["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(info))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    scene = args.work / f"scene-{args.size}{'-' + args.compress if args.compress else ''}.tif"
    if not scene.exists():
        t = time.perf_counter()
        make_scene(scene, args.size, args.compress)
        print(f"made {scene} ({scene.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
    out = Path(tempfile.mkdtemp(dir=args.work, prefix="out-"))
    cmd = [sys.executable, __file__, "--child", str(scene), str(out)] + (["--model", args.model] if args.model else [])
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the app failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info.update(width=args.size, height=args.size, compress=args.compress, pixels=args.size * args.size, model=args.model or "stand-in",
                wall_s=round(time.perf_counter() - t, 1), target_peak_rss_mb=2048,
                under_target=info["peak_rss_mb"] < 2048)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
