"""terraseg against the tools a user would pick instead, on one machine, one ONNX model, one set of scenes.

Rows (each run ``--repeats`` times in a fresh subprocess, rows interleaved round by round so that load
from other work hits all alike; time = median, peak RSS = the largest ``ru_maxrss``):

* ``terraseg_default``: ``terraseg predict MODEL.onnx SCENE -o OUT`` in-process through the CLI's
  ``main()`` with no options (every output it writes by default: class raster, colour mask, overlay,
  area report; GeoTIFFs with .aux.xml / .qml);
* ``terraseg_classes``: the same with ``--no-color --no-overlay --no-areas`` (the class raster alone);
* ``deepness``: the Deepness QGIS plugin's own code (``MapProcessorSegmentation`` with its
  ``Segmentor``, tiling, ``TileParams`` stitching, median-filter step and result statistics) from
  ``--deepness-src`` (a checkout of github.com/PUTvision/qgis-plugin-deepness; never vendored). The
  qgis modules it imports are stubbed here at run time; QGIS's raster provider
  (``processing_utils.get_tile_image``) is replaced by slicing the scene read once into memory, and
  the QGIS vector layers it builds at the end are skipped: both favour Deepness. Its probability
  threshold and small-segment filter are off (so that its class map is comparable), its batch size is
  its UI default (1) unless ``--deepness-batch``;
* ``plain_onnxruntime``: the sliding window a user writes in 40 lines (:func:`plain_sliding_window`):
  same tile and overlap, each tile's arg-max pasted without its half-overlap border, no blending,
  written as the same kind of raster;
* ``resize_1000``: the seed's path: the scene resized so its long side is 1000, one model call,
  class map upsampled (nearest) to the scene and written.

Scenes: a 2448² RGB PNG (DeepGlobe's size) and a 4096² GeoTIFF (UTM, tiled, deflate), mosaicked from
the Dubai images when the data set is present, else generated. Agreement: the share of pixels where a
row's class map equals ``terraseg_default``'s. Goals (issue 25) are computed into ``goals``.

``--sweep`` scores tile size / overlap candidates on Dubai held-out images (Tiles 7-8 through
``terraseg.evaluate.evaluate``, ``--sweep-images`` of them) with their time, and, for each candidate,
the pixels it sends through the network for the two scene sizes.

Example (the figures of docs/benchmarks/peers.md)::

    .venv/bin/python benchmarks/peers.py --model src/terraseg/pretrained/dubai-landcover \\
        --deepness-src /tmp/deepness --sweep > benchmarks/results/peers.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "datasets" / "dubai-mbrsc"
DUBAI_SPEC = ROOT / "examples" / "dubai.yaml"
BUILTIN = ROOT / "src" / "terraseg" / "pretrained" / "dubai-landcover"
TEST_GROUPS = ("Tile 7", "Tile 8")
ROWS = ("terraseg_default", "terraseg_classes", "deepness", "deepness_own_defaults", "plain_onnxruntime",
        "resize_1000")
RESIZE_SIDE = 1000


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------------------- model / scenes

def onnx_model(model: Path, work: Path) -> Path:
    """The one ONNX file every row runs: ``model`` itself, the ``model.onnx`` in it, or an export."""
    model = Path(model)
    if model.suffix == ".onnx":
        return model
    if (model / "model.onnx").is_file():
        return model / "model.onnx"
    from terraseg.export.onnx import export_onnx

    out = work / "model.onnx"
    if not out.is_file():
        log(f"exporting {model} to {out}")
        export_onnx(model, out)
    return out


def _dubai_images() -> list[Path]:
    return sorted(DUBAI.glob("Tile */images/*.jpg"))


def mosaic(size: int, seed: int = 0) -> np.ndarray:
    """A size x size RGB scene: crops of random Dubai images pasted edge to edge, or smooth generated
    land-cover-like patterns when the data set is absent."""
    images = _dubai_images()
    if not images:
        rng = np.random.default_rng(seed)
        scene = np.zeros((size, size, 3), np.float32)
        for cell, weight in ((128, 60.0), (16, 25.0), (2, 10.0)):
            g = -(-size // cell)
            coarse = rng.standard_normal((g, g, 3)).astype(np.float32)
            scene += weight * np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:size, :size]
        return np.clip(scene + 120, 0, 255).astype(np.uint8)
    from PIL import Image

    cell_h, cell_w = 640, 796  # every Dubai image but Tile 2's is at least this big
    rng = np.random.default_rng(seed)
    scene = np.zeros((size, size, 3), np.uint8)
    for y in range(0, size, cell_h):
        for x in range(0, size, cell_w):
            while True:
                img = np.asarray(Image.open(images[rng.integers(len(images))]).convert("RGB"))
                if img.shape[0] >= cell_h and img.shape[1] >= cell_w:
                    break
            r, c = rng.integers(img.shape[0] - cell_h + 1), rng.integers(img.shape[1] - cell_w + 1)
            h, w = min(cell_h, size - y), min(cell_w, size - x)
            scene[y:y + h, x:x + w] = img[r:r + h, c:c + w]
    return scene


def write_scenes(work: Path, sizes: list[int]) -> list[Path]:
    """The first size as a PNG (a picture, as DeepGlobe ships its 2448² scenes), the others as tiled
    GeoTIFFs."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin

    paths = []
    for i, size in enumerate(sizes):
        png = i == 0
        path = work / f"scene_{size}.{'png' if png else 'tif'}"
        if not path.is_file():
            scene = mosaic(size, seed=size)
            if png:
                Image.fromarray(scene).save(path)
            else:
                profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32640",
                               transform=from_origin(300000.0, 2800000.0, 0.5, 0.5), tiled=True,
                               blockxsize=256, blockysize=256, compress="deflate", photometric="RGB")
                with rasterio.open(path, "w", **profile) as dst:
                    dst.write(scene.transpose(2, 0, 1))
        paths.append(path)
    return paths


def read_scene(path: Path) -> np.ndarray:
    """(H, W, 3) uint8, as a user's script reads it."""
    import rasterio

    with rasterio.open(path) as src:
        return src.read().transpose(1, 2, 0)


def write_classes(path: Path, classes: np.ndarray, like: Path) -> None:
    """The class map as a user's script writes it: PNG for a PNG scene, GeoTIFF with the scene's grid."""
    import rasterio

    if path.suffix == ".png":
        from PIL import Image

        Image.fromarray(classes).save(path)
        return
    with rasterio.open(like) as src:
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="uint8",
                       crs=src.crs, transform=src.transform, tiled=True, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes[None])


def read_classes(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1)


# --------------------------------------------------------------------------------------------- the rows

def _onnx_meta(onnx: Path):
    from terraseg.predict.onnx_backend import read_onnx_meta

    return read_onnx_meta(onnx)


def plain_sliding_window(onnx: Path, scene: Path, out: Path, tile: int, overlap: int, timing: dict) -> None:
    """What a user writes without terraseg: onnxruntime, fixed tiles, keep each tile's centre."""
    import onnxruntime as ort

    meta = _onnx_meta(onnx)  # mean/std from the file's metadata
    mean, std = np.asarray(meta.mean, np.float32), np.asarray(meta.std, np.float32)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    image = read_scene(scene)
    h, w, _ = image.shape
    stride, half = tile - overlap, overlap // 2

    def starts(n):
        return sorted(set(list(range(0, max(n - tile, 0), stride)) + [max(n - tile, 0)]))

    classes = np.zeros((h, w), np.uint8)
    for top in starts(h):
        for left in starts(w):
            x = (image[top:top + tile, left:left + tile].astype(np.float32) - mean) / std
            t = time.perf_counter()
            probs = session.run(None, {name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])})[0][0]
            timing["model_s"] += time.perf_counter() - t
            th, tw = probs.shape[1:]
            r0, c0 = (0 if top == 0 else half), (0 if left == 0 else half)
            r1 = th if top + th >= h else th - half
            c1 = tw if left + tw >= w else tw - half
            classes[top + r0:top + r1, left + c0:left + c1] = probs[:, r0:r1, c0:c1].argmax(axis=0)
    write_classes(out, classes, scene)


def resize_path(onnx: Path, scene: Path, out: Path, timing: dict, side: int = RESIZE_SIDE) -> None:
    """The seed's approach: the scene resized to a long side of ``side``, one model call, upsampled."""
    import onnxruntime as ort
    from PIL import Image

    meta = _onnx_meta(onnx)
    mean, std = np.asarray(meta.mean, np.float32), np.asarray(meta.std, np.float32)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    image = read_scene(scene)
    h, w, _ = image.shape
    scale = side / max(h, w)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(image).resize((sw, sh), Image.Resampling.BILINEAR), np.float32)
    x = np.ascontiguousarray(((small - mean) / std).transpose(2, 0, 1)[None])
    t = time.perf_counter()
    probs = session.run(None, {session.get_inputs()[0].name: x})[0][0]
    timing["model_s"] += time.perf_counter() - t
    timing["model_pixels"] = int(sw * sh)
    classes = probs.argmax(axis=0).astype(np.uint8)
    write_classes(out, np.asarray(Image.fromarray(classes).resize((w, h), Image.Resampling.NEAREST)), scene)


def _qgis_stubs() -> None:
    """Just enough of the qgis modules for the plugin's processing code to import and run headless."""
    import types

    class QgsRectangle:
        def __init__(self, *a):
            if len(a) == 1:
                a = (a[0].xMinimum(), a[0].yMinimum(), a[0].xMaximum(), a[0].yMaximum())
            self._v = list(a) if a else [0.0, 0.0, 0.0, 0.0]

        def xMinimum(self): return self._v[0]
        def yMinimum(self): return self._v[1]
        def xMaximum(self): return self._v[2]
        def yMaximum(self): return self._v[3]
        def setXMinimum(self, v): self._v[0] = v
        def setYMinimum(self, v): self._v[1] = v
        def setXMaximum(self, v): self._v[2] = v
        def setYMaximum(self, v): self._v[3] = v
        def width(self): return self._v[2] - self._v[0]
        def height(self): return self._v[3] - self._v[1]
        def area(self): return self.width() * self.height()
        def isEmpty(self): return self.width() <= 0 or self.height() <= 0

        def intersect(self, o):
            return QgsRectangle(max(self.xMinimum(), o.xMinimum()), max(self.yMinimum(), o.yMinimum()),
                                min(self.xMaximum(), o.xMaximum()), min(self.yMaximum(), o.yMaximum()))

    class QgsTask:
        def __init__(self, *a, **k): pass
        def setProgress(self, p): pass
        def isCanceled(self): return False

    class QgsUnitTypes:
        DistanceMeters = "m"

        class DistanceUnit:
            DistanceMeters = "m"

        @staticmethod
        def fromUnitToUnitFactor(a, b): return 1.0

    class _Anything:
        def __init__(self, *a, **k): pass
        def __getattr__(self, name): return _Anything()
        def __call__(self, *a, **k): return _Anything()

    core = types.ModuleType("qgis.core")
    core.QgsRectangle, core.QgsTask, core.QgsUnitTypes = QgsRectangle, QgsTask, QgsUnitTypes
    for name in ("Qgis", "QgsCoordinateTransform", "QgsFeature", "QgsGeometry", "QgsPointXY", "QgsRasterLayer",
                 "QgsVectorLayer", "QgsWkbTypes", "QgsProject", "QgsMapLayerProxyModel", "QgsApplication"):
        setattr(core, name, _Anything())
    gui = types.ModuleType("qgis.gui")
    gui.QgsMapCanvas = _Anything()
    qtcore = types.ModuleType("qgis.PyQt.QtCore")
    qtcore.pyqtSignal = lambda *a, **k: None
    pyqt = types.ModuleType("qgis.PyQt")
    pyqt.QtCore = qtcore
    qgis = types.ModuleType("qgis")
    qgis.core, qgis.gui, qgis.PyQt = core, gui, pyqt
    sys.modules.update({"qgis": qgis, "qgis.core": core, "qgis.gui": gui, "qgis.PyQt": pyqt,
                        "qgis.PyQt.QtCore": qtcore})


def deepness_run(src: Path, onnx: Path, scene: Path, out: Path, tile: int, overlap: int, batch: int,
                 timing: dict) -> dict:
    """The plugin's segmentation processor on ``scene`` (see the module doc for what is stubbed)."""
    src = Path(src)
    sys.path.insert(0, str(src / "src" if (src / "src" / "deepness").is_dir() else src))
    _qgis_stubs()
    from qgis.core import QgsRectangle

    from deepness.common.processing_overlap import ProcessingOverlap, ProcessingOverlapOptions
    from deepness.common.processing_parameters.map_processing_parameters import ProcessedAreaType
    from deepness.common.processing_parameters.segmentation_parameters import SegmentationParameters
    from deepness.processing import processing_utils
    from deepness.processing.map_processor.map_processor_segmentation import MapProcessorSegmentation
    from deepness.processing.models.segmentor import Segmentor

    image = read_scene(scene)  # QGIS would read each tile through its raster provider
    h, w, _ = image.shape
    gsd = 0.5  # metres per pixel; any value works, the plugin's extents are in these units

    class Layer:  # the raster layer as the plugin queries it
        def extent(self): return QgsRectangle(0.0, 0.0, w * gsd, h * gsd)
        def rasterUnitsPerPixelX(self): return gsd
        def rasterUnitsPerPixelY(self): return gsd
        def crs(self): return type("Crs", (), {"mapUnits": lambda s: "m"})()

    def get_tile_image(rlayer, extent, params):
        """The tile's pixels, zero outside the scene (QGIS returns no-data there)."""
        left = round(extent.xMinimum() / gsd)
        top = round((h * gsd - extent.yMaximum()) / gsd)
        n = params.tile_size_px
        tile_img = np.zeros((n, n, 3), np.uint8)
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + n, h), min(left + n, w)
        if r1 > r0 and c1 > c0:
            tile_img[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
        return tile_img

    processing_utils.get_tile_image = get_tile_image
    MapProcessorSegmentation._create_vlayer_from_mask_for_base_extent = lambda self, mask: (lambda: None)
    model = Segmentor(str(onnx))
    process = model.process

    def timed_process(batch_img):
        t = time.perf_counter()
        res = process(batch_img)
        timing["model_s"] += time.perf_counter() - t
        return res

    model.process = timed_process
    params = SegmentationParameters(
        resolution_cm_per_px=gsd * 100, processed_area_type=ProcessedAreaType.ENTIRE_LAYER, tile_size_px=tile,
        batch_size=batch, local_cache=False, input_layer_id="scene", mask_layer_id=None,
        processing_overlap=ProcessingOverlap(ProcessingOverlapOptions.OVERLAP_IN_PIXELS, overlap_px=overlap),
        input_channels_mapping=None, postprocessing_dilate_erode_size=0, model=model,
        pixel_classification__probability_threshold=0.0)
    processor = MapProcessorSegmentation(rlayer=Layer(), vlayer_mask=None, map_canvas=None, params=params)
    tiles = processor.x_bins_number * processor.y_bins_number
    result = processor._run()
    if not type(result).__name__.endswith("Success"):
        raise RuntimeError(f"Deepness processing failed: {getattr(result, 'message', result)}")
    classes = processor.get_result_img()[0].astype(np.int16) - 1  # the plugin stores class + 1
    write_classes(out, np.clip(classes, 0, 255).astype(np.uint8), scene)
    return {"tiles": int(tiles), "extended_size": [int(processor.img_size_y_pixels), int(processor.img_size_x_pixels)]}


def terraseg_cli(onnx: Path, scene: Path, out_dir: Path, extra: list[str], timing: dict) -> Path:
    from terraseg.cli import main
    from terraseg.predict import onnx_backend

    call = onnx_backend.OnnxBackend.__call__

    def timed(self, batch):
        t = time.perf_counter()
        res = call(self, batch)
        timing["model_s"] += time.perf_counter() - t
        return res

    onnx_backend.OnnxBackend.__call__ = timed
    try:
        main(["predict", str(onnx), str(scene), "-o", str(out_dir), *extra])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"terraseg predict exited with {exc.code}") from None
    files = sorted(out_dir.glob(f"{scene.stem}_classes.*"))
    return next(p for p in files if p.suffix in (".png", ".tif"))


def run_row(cfg: dict) -> dict:
    """One row, in this (fresh) process; prints nothing but the result."""
    import onnxruntime  # noqa: F401  imported before the clock starts, for every row alike
    import rasterio  # noqa: F401
    import PIL.Image  # noqa: F401

    row, onnx, scene = cfg["row"], Path(cfg["onnx"]), Path(cfg["scene"])
    out_dir = Path(cfg["out_dir"])
    if out_dir.exists():  # terraseg predict skips inputs whose outputs exist (resume)
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    out = out_dir / f"{scene.stem}_classes{'.png' if scene.suffix == '.png' else '.tif'}"
    timing = {"model_s": 0.0}
    info: dict = {}
    t0 = time.perf_counter()
    if row == "terraseg_default":
        out = terraseg_cli(onnx, scene, out_dir, cfg.get("terraseg_args", []), timing)
    elif row == "terraseg_classes":
        out = terraseg_cli(onnx, scene, out_dir, [*cfg.get("terraseg_args", []), "--no-color", "--no-overlay",
                                                  "--no-areas"], timing)
    elif row == "deepness":
        info = deepness_run(Path(cfg["deepness_src"]), onnx, scene, out, cfg["tile"], cfg["overlap"],
                            cfg["deepness_batch"], timing)
    elif row == "deepness_own_defaults":  # what the plugin's panel fills in from the model's metadata
        from terraseg.predict.onnx_backend import read_metadata_props

        props = read_metadata_props(onnx)
        tile = int(json.loads(props["tile_size"]))
        overlap = int(tile * int(json.loads(props["tiles_overlap"])) / 100 * 2) // 2  # the plugin's rule
        info = deepness_run(Path(cfg["deepness_src"]), onnx, scene, out, tile, overlap, cfg["deepness_batch"],
                            timing)
        info.update(tile=tile, overlap=overlap)
    elif row == "plain_onnxruntime":
        plain_sliding_window(onnx, scene, out, cfg["tile"], cfg["overlap"], timing)
    elif row == "resize_1000":
        resize_path(onnx, scene, out, timing)
    else:
        raise ValueError(row)
    seconds = time.perf_counter() - t0
    if cfg.get("keep_classes"):
        np.save(cfg["keep_classes"], read_classes(out))
    return {"seconds": seconds, "model_s": timing["model_s"], "model_pixels": timing.get("model_pixels"),
            "max_rss_mb": peak_rss_mb(), **info}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss it does not carry the parent's peak
    over fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spawn_row(cfg: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--row-config", json.dumps(cfg)], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:400]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ compare

def grid_cost(size: int, tile: int, overlap: int) -> dict:
    """Tiles and megapixels through the network for a size x size scene: terraseg's grid on this
    machine (its tile fitted to the scene and to the tiles its ONNX backend runs side by side, at the
    default batch of 4), the grid fitted for one tile at a time, and the grid of ``tile`` itself
    (what the plain loop and Deepness run)."""
    from terraseg._threads import inference_threads
    from terraseg.predict.options import PredictOptions
    from terraseg.predict.tiler import TileGrid

    at_once, batch = inference_threads(), PredictOptions().batch_size
    out = {}
    for name, grid in (("fitted", TileGrid.for_scene(size, size, tile, overlap, at_once=at_once, batch_size=batch)),
                       ("fitted_one_at_a_time", TileGrid.for_scene(size, size, tile, overlap)),
                       ("as_asked", TileGrid(size, size, tile, overlap))):
        n, ts = len(grid), grid.tile_size
        out[name] = {"tile": ts, "tiles": n, "tiles_per_row": len(grid.col_starts),
                     "mp_through_network": round(n * ts * ts / 1e6, 2), "vs_scene_pixels": round(n * ts * ts / size**2, 3)}
    out["fitted"]["tiles_at_once"] = at_once
    return out


def compare(args, onnx: Path, work: Path) -> dict:
    from terraseg.predict.options import tile_settings

    meta = _onnx_meta(onnx)
    tile, overlap = tile_settings(meta, args.tile, args.overlap)
    terraseg_args = ([] if args.tile is None else ["--tile-size", str(tile)]) + \
                    ([] if args.overlap is None else ["--overlap", str(overlap)])
    scenes = write_scenes(work, args.sizes)
    rows = [r for r in args.rows if not r.startswith("deepness") or args.deepness_src]
    result: dict = {"tile_size": tile, "overlap": overlap, "scenes": {}}
    if not args.deepness_src:
        result["deepness"] = "skipped: no --deepness-src given (a checkout of PUTvision/qgis-plugin-deepness)"
    elif not (Path(args.deepness_src) / "src" / "deepness").is_dir() and not (Path(args.deepness_src) / "deepness").is_dir():
        result["deepness"] = f"skipped: no deepness package under {args.deepness_src}"
        rows = [r for r in rows if not r.startswith("deepness")]
    for scene in scenes:
        size = int(scene.stem.split("_")[1])
        log(f"{scene.name}: rows {', '.join(rows)}, {args.repeats} rounds")
        runs: dict[str, list[dict]] = {r: [] for r in rows}
        for rep in range(args.repeats):
            for row in rows:
                cfg = {"row": row, "onnx": str(onnx), "scene": str(scene), "tile": tile, "overlap": overlap,
                       "out_dir": str(work / "out" / f"{scene.stem}-{row}-{rep}"), "terraseg_args": terraseg_args,
                       "deepness_src": str(args.deepness_src or ""), "deepness_batch": args.deepness_batch,
                       "keep_classes": str(work / f"{scene.stem}-{row}.npy") if rep == 0 else None}
                la = os.getloadavg()[0]
                res = spawn_row(cfg)
                res["load_1min_before"] = round(la, 2)
                runs[row].append(res)
                log(f"  {row} round {rep + 1}: {res.get('seconds', res.get('error'))}")
        reference = np.load(work / f"{scene.stem}-terraseg_default.npy") if "terraseg_default" in rows and \
            (work / f"{scene.stem}-terraseg_default.npy").is_file() else None
        entry = {"file": scene.name, "pixels": size * size, "terraseg_grid": grid_cost(size, tile, overlap),
                 "rows": {}}
        for row, rs in runs.items():
            ok = [r for r in rs if "seconds" in r]
            if not ok:
                entry["rows"][row] = {"error": rs[0].get("error")}
                continue
            e = {"seconds_median": round(statistics.median(r["seconds"] for r in ok), 2),
                 "seconds_all": [round(r["seconds"], 2) for r in ok],
                 "model_seconds_median": round(statistics.median(r["model_s"] for r in ok), 2),
                 "peak_rss_mb": round(max(r["max_rss_mb"] for r in ok), 1),
                 "load_1min_before_each": [r["load_1min_before"] for r in ok]}
            for key in ("tiles", "extended_size", "model_pixels", "tile", "overlap"):
                if ok[0].get(key) is not None:
                    e[key] = ok[0][key]
            path = work / f"{scene.stem}-{row}.npy"
            if reference is not None and path.is_file():
                e["agreement_with_terraseg_default"] = round(float((np.load(path) == reference).mean()), 5)
            entry["rows"][row] = e
        entry["goals"] = goals(entry, size)
        result["scenes"][scene.stem] = entry
    return result


def goals(entry: dict, size: int) -> dict:
    rows = entry["rows"]

    def s(row):
        return rows.get(row, {}).get("seconds_median")

    out: dict = {}
    if s("terraseg_default") and s("deepness"):
        speedup = s("deepness") / s("terraseg_default")
        agree = rows["deepness"].get("agreement_with_terraseg_default", 0.0)
        out["default_speedup_vs_deepness"] = {"value": round(speedup, 3), "goal": ">= 1.5 with >= 99 % agreement",
                                              "agreement": agree, "met": speedup >= 1.5 and agree >= 0.99}
    if s("terraseg_default") and s("deepness_own_defaults"):
        out["default_speedup_vs_deepness_at_its_own_defaults"] = {
            "value": round(s("deepness_own_defaults") / s("terraseg_default"), 3),
            "agreement": rows["deepness_own_defaults"].get("agreement_with_terraseg_default"),
            "note": "not the goal's comparison: the plugin's tile/overlap from the model's metadata"}
    if s("terraseg_classes") and s("plain_onnxruntime"):
        ratio = s("terraseg_classes") / s("plain_onnxruntime")
        out["classes_vs_plain_loop_time"] = {"value": round(ratio, 3), "goal": "<= 1.1", "met": ratio <= 1.1}
    if s("terraseg_default") and s("resize_1000") and rows["resize_1000"].get("model_pixels"):
        mp = rows["resize_1000"]["model_pixels"]
        per_pixel = (s("terraseg_default") / size**2) / (s("resize_1000") / mp)
        out["full_res_per_pixel_vs_resize"] = {
            "value": round(per_pixel, 3), "goal": "<= 1.5", "met": per_pixel <= 1.5,
            "classes_only": round((s("terraseg_classes") / size**2) / (s("resize_1000") / mp), 3)
            if s("terraseg_classes") else None,
            "whole_time_ratio_default_vs_resize": round(s("terraseg_default") / s("resize_1000"), 2),
            "pixel_ratio": round(size**2 / mp, 2)}
    return out


# -------------------------------------------------------------------------------------------------- sweep

def sweep(args, onnx: Path, work: Path) -> dict:
    """Held-out mIoU and time of tile size / overlap candidates (terraseg.evaluate.evaluate)."""
    from terraseg._io import write_json_atomic
    from terraseg.data.spec import load_spec
    from terraseg.evaluate import evaluate

    if not (DUBAI / "Tile 7").is_dir():
        return {"skipped": f"Dubai data set not found at {DUBAI}"}
    spec = load_spec(DUBAI_SPEC)
    test = [s for s in spec.labelled() if s.group in TEST_GROUPS]
    # an even spread over both test tiles: every k-th image
    step = max(1, len(test) // max(1, args.sweep_images))
    chosen = test[::step][:args.sweep_images]
    split = write_json_atomic(work / "sweep-split.json", {"test": [s.key for s in chosen]})
    rows = []
    for cand in args.sweep_candidates:
        tile, overlap = (int(v) for v in cand.split("/"))
        la = os.getloadavg()[0]
        t = time.perf_counter()
        m = evaluate(onnx, DUBAI_SPEC, split="test", split_file=split, tile_size=tile, overlap=overlap,
                     batch_size=4, progress=False, backend="onnx")
        seconds = time.perf_counter() - t
        row = {"tile": tile, "overlap": overlap, "miou": round(float(m["miou"]), 4),
               "pixel_accuracy": round(float(m["pixel_accuracy"]), 4), "seconds": round(seconds, 1),
               "load_1min_before": round(la, 2),
               **{f"scene_{size}": grid_cost(size, tile, overlap) for size in args.sizes}}
        rows.append(row)
        log(f"sweep {tile}/{overlap}: mIoU {row['miou']} in {row['seconds']} s")
    return {"images": [s.key for s in chosen], "rows": rows}


def tune(args, onnx: Path) -> dict:
    """Seconds per tile of the ONNX backend by batch size, tiles in parallel or one intra-op run; and,
    on fresh sessions as a predict run starts, 8 tiles as one tile per run or two per run."""
    import onnxruntime as ort
    from concurrent.futures import ThreadPoolExecutor

    from terraseg.predict.onnx_backend import OnnxBackend, _session_options
    from terraseg.predict.options import tile_settings

    tile = tile_settings(_onnx_meta(onnx), args.tile)[0]
    x = np.random.default_rng(0).standard_normal((8, 3, tile, tile)).astype(np.float32)
    backends = {"tiles_in_parallel": OnnxBackend(onnx), "intra_op": OnnxBackend(onnx, parallel_tiles=False)}
    threads = backends["intra_op"].threads
    for b in backends.values():
        b(x[:2])  # warm-up, and the parallel path's session
    seconds: dict = {f"{name}_batch_{bs}": [] for name in backends for bs in args.tune_batches}
    fresh: dict = {f"{per_run}_per_run": [] for per_run in (1, 2)}
    pool = ThreadPoolExecutor(threads)
    for _ in range(args.repeats):  # interleaved, so that load from other work hits all alike
        for name, b in backends.items():
            for bs in args.tune_batches:
                t = time.perf_counter()
                for i in range(0, 8, bs):
                    b(x[i:i + bs])
                seconds[f"{name}_batch_{bs}"].append((time.perf_counter() - t) / 8)
        for per_run in (1, 2):  # a new single-threaded session: the first run of a shape is slow
            session = ort.InferenceSession(str(onnx), _session_options(1), providers=["CPUExecutionProvider"])
            feed = session.get_inputs()[0].name
            t = time.perf_counter()
            list(pool.map(lambda i: session.run(None, {feed: x[i:i + per_run]}), range(0, 8, per_run)))
            fresh[f"{per_run}_per_run"].append((time.perf_counter() - t) / 8)
    pool.shutdown()
    return {"tile": tile, "threads": threads, "tiles_timed": 8,
            "s_per_tile_median": {k: round(statistics.median(v), 4) for k, v in seconds.items()},
            "fresh_session_s_per_tile_median": {k: round(statistics.median(v), 4) for k, v in fresh.items()},
            "load_avg": load_avg()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="terraseg bundle folder or .onnx file (default: the built-in "
                                                "dubai-landcover model when present)")
    p.add_argument("--deepness-src", type=Path, help="checkout of PUTvision/qgis-plugin-deepness (skipped if absent)")
    p.add_argument("--deepness-batch", type=int, default=1, help="Deepness batch size (its UI default: 1)")
    p.add_argument("--sizes", type=int, nargs="+", default=[2448, 4096])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    p.add_argument("--tile", type=int, help="tile size for every row (default: terraseg's default)")
    p.add_argument("--overlap", type=int, help="overlap for every row (default: terraseg's default)")
    p.add_argument("--no-compare", action="store_true", help="only the sweep")
    p.add_argument("--sweep", action="store_true", help="score tile/overlap candidates on Dubai held-out images")
    p.add_argument("--sweep-images", type=int, default=6)
    p.add_argument("--sweep-candidates", nargs="+",
                   default=["256/64", "256/16", "512/128", "512/64", "512/32", "512/16", "512/0", "1024/64"])
    p.add_argument("--tune", action="store_true", help="ONNX backend seconds per tile by batch size and threading")
    p.add_argument("--tune-batches", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--row-config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.row_config:
        print(json.dumps(run_row(json.loads(args.row_config))))
        return 0

    import onnxruntime as ort

    work = Path(args.work or tempfile.mkdtemp(prefix="terraseg-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model or BUILTIN
    if not model.exists():
        p.error(f"model {model} not found; pass --model BUNDLE_OR_ONNX")
    onnx = onnx_model(model, work)
    from terraseg._threads import inference_threads

    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M %Z"),
                    "machine": {"cpus": os.cpu_count(), "terraseg_threads": inference_threads(),
                                "onnxruntime": ort.__version__, "python": sys.version.split()[0]},
                    "model": str(model), "onnx": str(onnx), "load_avg_start": load_avg()}
    try:
        import platform

        result["machine"]["processor"] = platform.processor() or platform.machine()
        result["machine"]["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in
                                               Path("/proc/cpuinfo").read_text().splitlines()
                                               if ln.startswith("model name")), None)
    except OSError:
        pass
    if args.deepness_src:
        head = subprocess.run(["git", "-C", str(args.deepness_src), "rev-parse", "HEAD"], capture_output=True,
                              text=True)
        result["deepness_src"] = {"path": str(args.deepness_src),
                                  "commit": head.stdout.strip() if head.returncode == 0 else None}
    if args.tune:
        result["tune"] = tune(args, onnx)
    if args.sweep:
        result["sweep"] = sweep(args, onnx, work)
        result["load_avg_after_sweep"] = load_avg()
    if not args.no_compare:
        result["compare"] = compare(args, onnx, work)
    result["load_avg_end"] = load_avg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
