"""The prediction engine: sliding windows, batching, blending, TTA and streaming.

``predict_array`` predicts an in-memory image; ``predict_file`` streams a raster from disk to all
outputs. Both run the same core (:func:`run_tiles`):

1. the scene is cut into a :class:`~terraseg.predict.tiler.TileGrid` of equal-size tiles;
2. tiles are processed one tile row at a time, in batches, optionally with test-time augmentation;
3. each tile's probabilities are multiplied by a smooth blending window and added to a rolling band
   of ``tile_size`` rows (per-class weighted sums + summed weights);
4. once a tile row is done, the rows above the next tile row are final: they are normalised and
   handed to an ``emit`` callback, and the band moves down.

Memory is therefore bounded by ``K x tile_size x scene width`` floats plus one batch of tiles, never
by the scene height, and every output pixel is emitted exactly once.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from terraseg.errors import DataError
from terraseg.predict.blend import window_2d
from terraseg.predict.tiler import TileGrid, resolve_overlap

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
EmitFn = Callable[[int, int, np.ndarray, "np.ndarray | None"], None]

TTA_MODES = ("none", "flips", "d4")


class PredictionCancelled(Exception):
    """Raised when the ``cancel()`` callback returned True; no output of the run is kept."""


@dataclass
class Prediction:
    """Result of :func:`predict_array`.

    ``classes``: uint8 ``(H, W)`` class indices (the bundle's ``ignore_index`` where the input was
    nodata); ``confidence``: float32 ``(H, W)`` probability of the chosen class; ``probabilities``:
    float32 ``(H, W, K)`` blended class probabilities when requested, else ``None``.
    """

    classes: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None = None


# --------------------------------------------------------------------------------------------------
# helpers


def normalization(meta, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and 1/std (float32, shape ``(bands,)``) from the bundle metadata.

    Bundles without statistics get the identity (raw pixel values go to the model).
    """
    mean = np.zeros(bands, np.float32) if meta.mean is None else np.asarray(meta.mean, np.float32)
    std = np.ones(bands, np.float32) if meta.std is None else np.asarray(meta.std, np.float32)
    if mean.shape != (bands,) or std.shape != (bands,):
        raise DataError(f"bundle normalisation has {mean.size} means / {std.size} stds for {bands} bands")
    std = np.where(std == 0, 1.0, std).astype(np.float32)
    return mean, (1.0 / std).astype(np.float32)


def resolve_tta(tta) -> str:
    if tta is True:
        return "d4"
    if tta in (False, None):
        return "none"
    if tta not in TTA_MODES:
        from terraseg.errors import ConfigError

        raise ConfigError(f"unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    return tta


def _tta_transforms(mode: str) -> list[tuple[int, bool]]:
    """(quarter turns, flip left-right) pairs; the identity comes first."""
    if mode == "none":
        return [(0, False)]
    if mode == "flips":  # identity, left-right, up-down (= rot180 of left-right), both (= rot180)
        return [(0, False), (0, True), (2, True), (2, False)]
    return [(k, f) for k in range(4) for f in (False, True)]  # the 8 symmetries of the square


def infer(backend, batch: np.ndarray, tta: str = "none") -> np.ndarray:
    """Run ``backend`` on a normalised ``(N, C, h, w)`` batch, averaging over TTA transforms.

    TTA is done in numpy around the backend call, so it works with every backend.
    """
    transforms = _tta_transforms(tta)
    if len(transforms) == 1:
        return np.asarray(backend(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float32)
    total = None
    for k, flip in transforms:
        x = batch
        if flip:
            x = x[..., ::-1]
        if k:
            x = np.rot90(x, k, axes=(-2, -1))
        y = np.asarray(backend(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)
        if k:
            y = np.rot90(y, -k, axes=(-2, -1))
        if flip:
            y = y[..., ::-1]
        total = y.copy() if total is None else total + y
    total /= len(transforms)
    return total


def classes_and_confidence(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arg-max class (uint8) and its probability (float32) of ``(K, h, w)`` probabilities.

    A pass over the K planes (K is small) is several times faster than ``argmax`` + ``max`` along
    a leading axis and allocates only the two results. Ties go to the lower class index.
    """
    best = probs[0].astype(np.float32, copy=True)
    classes = np.zeros(best.shape, np.uint8)
    for k in range(1, probs.shape[0]):
        better = probs[k] > best
        classes[better] = k
        np.maximum(best, probs[k], out=best)
    return classes, best


# --------------------------------------------------------------------------------------------------
# the core


class ArraySource:
    """Rows of an in-memory ``(H, W, bands)`` array."""

    def __init__(self, array: np.ndarray, nodata=None):
        self.array = array
        self.height, self.width, self.bands = array.shape
        self.nodata = nodata

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        return self.array[top:bottom]

    def valid_rows(self, top: int, bottom: int, raw: np.ndarray) -> np.ndarray | None:
        """Pixels that are not nodata in every band (``None``: all valid)."""
        if self.nodata is None:
            return None
        nodata_px = np.isnan(raw) if np.isnan(self.nodata) else raw == self.nodata
        return ~np.all(nodata_px, axis=2)


def run_tiles(backend, source, *, tile_size: int, overlap: int, batch_size: int, blend: str,
              tta: str, emit: EmitFn, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None) -> None:
    """Predict ``source`` tile by tile and call ``emit(top, bottom, probs, valid)`` for final rows.

    ``source`` has ``height``, ``width``, ``bands``, ``read_rows(top, bottom) -> (rows, W, bands)``
    and ``valid_rows(top, bottom, raw) -> bool (rows, W) or None``. ``probs`` is float32
    ``(K, bottom - top, W)`` (a view into the rolling band, valid only during the call); ``valid`` a
    bool ``(bottom - top, W)`` mask of pixels that are not nodata (``None``: no nodata). Strips are
    emitted in order and partition the rows exactly.
    """
    meta = backend.meta
    k = int(meta.num_classes)
    grid = TileGrid(source.height, source.width, int(tile_size), int(overlap))
    th, tw, ts = grid.tile_height, grid.tile_width, grid.tile_size
    pad_b, pad_r = grid.pad_amounts()
    mean, inv_std = normalization(meta, source.bands)
    weight = window_2d(th, tw, blend)
    width = source.width
    acc = np.zeros((k, th, width), np.float32)
    wsum = np.zeros((th, width), np.float32)
    scratch = np.empty((k, th, tw), np.float32)
    total = len(grid)
    done = 0
    if progress is not None:
        progress(0, total)
    row_starts = grid.row_starts
    col_starts = grid.col_starts
    strips = grid.output_strips()
    batch_size = max(1, int(batch_size))
    for i, top in enumerate(row_starts):
        raw = np.asarray(source.read_rows(top, top + th))
        if raw.shape != (th, width, source.bands):
            raise DataError(f"read {raw.shape} where ({th}, {width}, {source.bands}) was expected")
        valid = source.valid_rows(top, top + th, raw)
        for b0 in range(0, len(col_starts), batch_size):
            if cancel is not None and cancel():
                raise PredictionCancelled("prediction cancelled")
            cols = col_starts[b0:b0 + batch_size]
            batch = np.empty((len(cols), source.bands, th, tw), np.float32)
            for j, c in enumerate(cols):
                tile_px = raw[:, c:c + tw, :].transpose(2, 0, 1)  # (C, th, tw)
                np.subtract(tile_px, mean[:, None, None], out=batch[j], casting="unsafe")
            batch *= inv_std[None, :, None, None]
            # nodata and non-finite pixels go to the model as the band mean (0 after normalisation)
            if valid is not None:
                for j, c in enumerate(cols):
                    batch[j][:, ~valid[:, c:c + tw]] = 0.0
            if raw.dtype.kind == "f":
                np.nan_to_num(batch, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            if pad_b or pad_r:
                batch = np.pad(batch, ((0, 0), (0, 0), (0, pad_b), (0, pad_r)), mode="symmetric")
            probs = infer(backend, batch, tta)
            if probs.shape != (len(cols), k, ts, ts):
                raise DataError(f"model returned {probs.shape}; expected {(len(cols), k, ts, ts)}")
            for j, c in enumerate(cols):
                np.multiply(probs[j, :, :th, :tw], weight, out=scratch)
                acc[:, :, c:c + tw] += scratch
                wsum[:, c:c + tw] += weight
            done += len(cols)
            if progress is not None:
                progress(done, total)
        s_top, s_bottom = strips[i]
        n = s_bottom - s_top
        out = acc[:, :n]
        out /= wsum[:n]  # in place: these rows leave the band now
        emit(s_top, s_bottom, out, None if valid is None else valid[:n])
        # move the band down by n rows
        if n < th:
            acc[:, :th - n] = acc[:, n:]
            wsum[:th - n] = wsum[n:]
        acc[:, th - n:] = 0
        wsum[th - n:] = 0


def _resolve_model(model, device="cpu", precision="fp32"):
    from terraseg.predict.backends import as_backend

    return as_backend(model, device=device, precision=precision)


def _tile_settings(meta, tile_size, overlap) -> tuple[int, int]:
    from terraseg.errors import ConfigError

    tile = int(tile_size or meta.tile_size or 512)
    if tile < 8:
        raise ConfigError(f"tile size must be at least 8 pixels, got {tile}")
    return tile, resolve_overlap(tile, overlap)


def check_bands(array_bands: int, meta, path=None) -> None:
    if array_bands != meta.in_channels:
        raise DataError(f"image has {array_bands} band{'s' if array_bands != 1 else ''} but the model "
                        f"expects {meta.in_channels}", path)


def predict_array(model, array: np.ndarray, tile_size: int | None = None, overlap: int | float | None = None,
                  batch_size: int = 4, blend: str = "cosine", tta=False, progress: ProgressFn | None = None,
                  cancel: CancelFn | None = None, return_probabilities: bool = False, nodata=None,
                  device: str = "cpu", precision: str = "fp32") -> Prediction:
    """Predict a whole in-memory image ``(H, W, bands)`` (or ``(H, W)`` for one band).

    ``model`` is a backend, a :class:`~terraseg.bundle.Bundle` or a bundle/ONNX path. ``tile_size``
    defaults to the bundle's tile size, ``overlap`` to a quarter tile (pixels, or a fraction < 1).
    ``tta``: ``False``, ``True`` (= ``"d4"``, 8 flips/rotations), ``"flips"`` (4) or ``"d4"``.
    ``progress(done_tiles, total_tiles)`` is called after every batch; when ``cancel()`` returns
    True the run stops with :class:`PredictionCancelled`. Pixels equal to ``nodata`` in every band
    get the bundle's ignore index.
    """
    backend = _resolve_model(model, device=device, precision=precision)
    meta = backend.meta
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise DataError(f"expected an image array (H, W, bands), got shape {array.shape}")
    check_bands(array.shape[2], meta)
    tile, ov = _tile_settings(meta, tile_size, overlap)
    h, w = array.shape[:2]
    classes = np.empty((h, w), np.uint8)
    confidence = np.empty((h, w), np.float32)
    probabilities = np.empty((h, w, meta.num_classes), np.float32) if return_probabilities else None
    ignore = int(meta.ignore_index) if 0 <= int(meta.ignore_index) <= 255 else 255

    def emit(top, bottom, probs, valid):
        cls, conf = classes_and_confidence(probs)
        if valid is not None:
            cls[~valid] = ignore
            conf[~valid] = 0
        classes[top:bottom] = cls
        confidence[top:bottom] = conf
        if probabilities is not None:
            probabilities[top:bottom] = probs.transpose(1, 2, 0)

    run_tiles(backend, ArraySource(array, nodata), tile_size=tile, overlap=ov, batch_size=batch_size,
              blend=blend, tta=resolve_tta(tta), emit=emit, progress=progress, cancel=cancel)
    return Prediction(classes, confidence, probabilities)


# --------------------------------------------------------------------------------------------------
# files


@dataclass
class PredictOptions:
    """What :func:`predict_file` computes and writes (every field has a laptop-friendly default)."""

    tile_size: int | None = None  # default: the bundle's tile size
    overlap: int | float | None = None  # default: a quarter tile
    batch_size: int = 4
    blend: str = "cosine"
    tta: bool | str = False
    color: bool = True  # colour mask
    overlay: bool = True  # overlay PNG with legend
    areas: bool = True  # class-area report (CSV + JSON)
    confidence: bool = False  # max-probability raster (float32 GeoTIFF)
    probabilities: bool = False  # per-class probability raster (K-band float32 GeoTIFF)
    vector: str | None = None  # "gpkg" | "geojson"
    min_area: float = 0.0  # in CRS units² (pixels when not georeferenced)
    simplify: float = 0.0  # tolerance in CRS units (pixels when not georeferenced)
    overlay_max_size: int = 2048  # the overlay preview is downscaled to this many pixels on a side


def _options(options: PredictOptions | None, overrides: dict) -> PredictOptions:
    opts = options or PredictOptions()
    known = {f.name for f in fields(PredictOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown prediction option(s): {', '.join(unknown)}")
    opts = replace(opts, **overrides)
    if opts.vector is not None and opts.vector not in ("gpkg", "geojson"):
        from terraseg.errors import ConfigError

        raise ConfigError(f"unknown vector format {opts.vector!r}; choose gpkg or geojson")
    return opts


def validate_options(opts: PredictOptions, meta) -> tuple[int, int]:
    """Check the options against the model once, before any file is touched; -> (tile, overlap)."""
    tile, ov = _tile_settings(meta, opts.tile_size, opts.overlap)
    window_2d(2, 2, opts.blend)  # unknown blend -> ConfigError
    resolve_tta(opts.tta)
    if opts.batch_size < 1:
        from terraseg.errors import ConfigError

        raise ConfigError(f"batch size must be at least 1, got {opts.batch_size}")
    return tile, ov


def _uses_pillow(path: Path) -> bool:
    from terraseg.data.raster import uses_pillow

    return uses_pillow(path)


def output_paths(input_path: str | Path, out_dir: str | Path, options: PredictOptions | None = None,
                 name: str | None = None) -> dict[str, Path]:
    """The files :func:`predict_file` writes for ``input_path`` (keys: output kinds).

    Rasters are GeoTIFF for TIFF inputs and PNG for JPG/PNG inputs; confidence and probability
    rasters are always (Geo)TIFF because they hold floats.
    """
    opts = options or PredictOptions()
    input_path, out_dir = Path(input_path), Path(out_dir)
    base = name or input_path.stem
    ext = ".png" if _uses_pillow(input_path) else ".tif"
    paths = {"classes": out_dir / f"{base}_classes{ext}"}
    if opts.color:
        paths["color"] = out_dir / f"{base}_color{ext}"
    if opts.overlay:
        paths["overlay"] = out_dir / f"{base}_overlay.png"
    if opts.confidence:
        paths["confidence"] = out_dir / f"{base}_confidence.tif"
    if opts.probabilities:
        paths["probabilities"] = out_dir / f"{base}_probabilities.tif"
    if opts.areas:
        paths["areas_csv"] = out_dir / f"{base}_areas.csv"
        paths["areas_json"] = out_dir / f"{base}_areas.json"
    if opts.vector:
        paths["vector"] = out_dir / f"{base}_polygons.{opts.vector}"
    return paths


class RasterioSource:
    """Rows of an open rasterio dataset, read through windows.

    ``indexes`` picks the bands fed to the model (an alpha band is left out by the caller). Pixels
    masked by GDAL's dataset mask (nodata in every band, alpha = 0, or an internal mask) are
    reported invalid.
    """

    def __init__(self, dataset, path, indexes=None):
        from rasterio.enums import MaskFlags

        self.ds = dataset
        self.path = path
        self.indexes = list(indexes) if indexes is not None else list(range(1, dataset.count + 1))
        self.height, self.width, self.bands = dataset.height, dataset.width, len(self.indexes)
        self.has_mask = any(flags != [MaskFlags.all_valid] for flags in dataset.mask_flag_enums)

    def _window(self, top: int, bottom: int):
        from rasterio.windows import Window

        return Window(0, top, self.width, bottom - top)

    def _fail(self, exc, top, bottom):
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return DataError(f"cannot read rows {top}-{bottom}, the file is corrupt or truncated ({msg})", self.path)

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        from rasterio.errors import RasterioError

        try:
            arr = self.ds.read(self.indexes, window=self._window(top, bottom))
        except RasterioError as exc:
            raise self._fail(exc, top, bottom) from None
        return arr.transpose(1, 2, 0)

    def valid_rows(self, top: int, bottom: int, raw=None) -> np.ndarray | None:
        from rasterio.errors import RasterioError

        if not self.has_mask:
            return None
        try:
            return self.ds.dataset_mask(window=self._window(top, bottom)) > 0
        except RasterioError as exc:
            raise self._fail(exc, top, bottom) from None


def model_bands(dataset, meta) -> list[int]:
    """Band indexes to feed the model: all bands, or all but a trailing alpha band when the model
    expects one band fewer (RGBA files for an RGB model)."""
    from rasterio.enums import ColorInterp

    indexes = list(range(1, dataset.count + 1))
    if dataset.count == meta.in_channels + 1 and dataset.colorinterp[-1] == ColorInterp.alpha:
        indexes = indexes[:-1]
    return indexes


def _ignore_value(meta) -> int:
    ignore = int(meta.ignore_index)
    return ignore if meta.num_classes <= ignore <= 255 else 255


def predict_file(model, input_path: str | Path, out_dir: str | Path, options: PredictOptions | None = None, *,
                 name: str | None = None, progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                 device: str = "cpu", precision: str = "fp32", **overrides) -> dict[str, Path]:
    """Predict one image file and write all outputs into ``out_dir``; returns ``{kind: path}``.

    TIFF/GeoTIFF inputs stream: the scene is read one tile row at a time through rasterio windows
    and every output raster is written strip by strip, so memory depends on the tile size, batch
    size and scene width, not on the scene height. JPG/PNG inputs (not windowable, small by nature)
    are read whole. Keyword ``overrides`` set :class:`PredictOptions` fields (``tile_size=256``,
    ``vector="gpkg"`` ...). Every file is written under a temporary name and renamed only when the
    whole input succeeded, so a failure or :class:`PredictionCancelled` leaves no output behind.
    """
    from terraseg._io import atomic_path

    input_path, out_dir = Path(input_path), Path(out_dir)
    if not input_path.is_file():
        raise DataError("file not found", input_path)
    opts = _options(options, overrides)
    backend = _resolve_model(model, device=device, precision=precision)
    meta = backend.meta
    tile, ov = validate_options(opts, meta)
    paths = output_paths(input_path, out_dir, opts, name=name)
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tmp = {key: stack.enter_context(atomic_path(p)) for key, p in paths.items()}
        run = dict(backend=backend, input_path=input_path, tmp=tmp, opts=opts, tile=tile, overlap=ov,
                   progress=progress, cancel=cancel)
        if _uses_pillow(input_path):
            _predict_whole(**run)
        else:
            _predict_streaming(**run)
    return paths


def _write_reports(acc, meta, input_path, width, height, tmp, opts):
    from terraseg.predict.areas import write_area_report

    report = acc.report(meta.classes, input=str(input_path), width=width, height=height)
    if opts.areas:
        write_area_report(report, tmp["areas_csv"], tmp["areas_json"])
    return report


def _save_overlay(path, image_preview, classes_preview, meta, report, valid=None):
    from terraseg.predict.outputs import display_image, make_overlay

    shares = [row["percent"] for row in report["classes"]]
    rgb = display_image(image_preview, valid)
    canvas = make_overlay(rgb, classes_preview, meta.colors, meta.classes, shares)
    canvas.save(path, format="PNG")


def _predict_whole(backend, input_path, tmp, opts, tile, overlap, progress, cancel):
    """JPG/PNG: read whole, predict, write PNG outputs (+ TIFF confidence/probabilities)."""
    from PIL import Image

    from terraseg.data.palette import colorize
    from terraseg.data.raster import read_raster, write_raster
    from terraseg.predict.areas import AreaAccumulator
    from terraseg.predict.outputs import preview_shape
    from terraseg.predict.vectorize import vectorize

    meta = backend.meta
    image = read_raster(input_path)
    if image.shape[2] == 4 and meta.in_channels == 3:  # RGBA picture for an RGB model: alpha = mask
        alpha = image[:, :, 3]
        image = np.ascontiguousarray(image[:, :, :3])
    else:
        alpha = None
    check_bands(image.shape[2], meta, input_path)
    pred = predict_array(backend, image, tile_size=tile, overlap=overlap, batch_size=opts.batch_size,
                         blend=opts.blend, tta=opts.tta, progress=progress, cancel=cancel,
                         return_probabilities=opts.probabilities)
    h, w = pred.classes.shape
    if alpha is not None and (alpha == 0).any():
        pred.classes[alpha == 0] = _ignore_value(meta)
        pred.confidence[alpha == 0] = 0
    colormap = {i: tuple(c) for i, c in enumerate(meta.colors)}
    write_raster(tmp["classes"], pred.classes, colormap=colormap)
    if "color" in tmp:
        write_raster(tmp["color"], colorize(pred.classes, meta.colors))
    if "confidence" in tmp:
        write_raster(tmp["confidence"], pred.confidence)
    if "probabilities" in tmp:
        write_raster(tmp["probabilities"], pred.probabilities)
    acc = AreaAccumulator(meta.num_classes)
    acc.add(0, pred.classes)
    report = _write_reports(acc, meta, input_path, w, h, tmp, opts)
    if "overlay" in tmp:
        ph, pw = preview_shape(h, w, opts.overlay_max_size)
        img, cls = image, pred.classes
        if (ph, pw) != (h, w):
            from terraseg.predict.outputs import display_image

            img = np.asarray(Image.fromarray(display_image(image)).resize((pw, ph), Image.Resampling.BOX))
            cls = np.asarray(Image.fromarray(pred.classes).resize((pw, ph), Image.Resampling.NEAREST))
        _save_overlay(tmp["overlay"], img, cls, meta, report)
    if "vector" in tmp:
        vectorize(pred.classes, tmp["vector"], meta.classes, fmt=opts.vector, min_area=opts.min_area,
                  simplify=opts.simplify)


def _predict_streaming(backend, input_path, tmp, opts, tile, overlap, progress, cancel):
    """TIFF/GeoTIFF: windows in, windows out."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    from terraseg.predict.areas import AreaAccumulator
    from terraseg.predict.outputs import (BandColorizer, RowWriter, class_colormap, geotiff_profile, preview_shape,
                                          tag_classes)

    meta = backend.meta
    k = meta.num_classes
    ignore = _ignore_value(meta)
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=32))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = stack.enter_context(rasterio.open(input_path))
        except RasterioError as exc:
            raise DataError(f"not a readable raster ({str(exc).strip()[:200]})", input_path) from None
        indexes = model_bands(src, meta)
        check_bands(len(indexes), meta, input_path)
        source = RasterioSource(src, input_path, indexes)
        crs = src.crs
        transform = src.transform if (crs is not None or not src.transform.is_identity) else None
        h, w = src.height, src.width
        has_nodata = source.has_mask

        def open_out(key, count, dtype, nodata=None, **extra):
            profile = geotiff_profile(w, h, count, dtype, crs, transform, nodata)
            profile.update(extra)
            return stack.enter_context(rasterio.open(tmp[key], "w", **profile))

        writers = {}
        cls_ds = open_out("classes", 1, "uint8", nodata=ignore if has_nodata else None)
        cls_ds.write_colormap(1, class_colormap(meta.colors))
        tag_classes(cls_ds, meta.classes, meta.colors)
        writers["classes"] = RowWriter(cls_ds)
        if "color" in tmp:
            writers["color"] = RowWriter(open_out("color", 3, "uint8", photometric="RGB"))
        if "confidence" in tmp:
            writers["confidence"] = RowWriter(open_out("confidence", 1, "float32"))
        if "probabilities" in tmp:
            prob_ds = open_out("probabilities", k, "float32")
            for i, name in enumerate(meta.classes):
                prob_ds.set_band_description(i + 1, name)
            writers["probabilities"] = RowWriter(prob_ds)
        acc = AreaAccumulator(k, transform=transform, crs=crs)
        to_color = BandColorizer(meta.colors)

        def emit(top, bottom, probs, valid):
            cls, conf = classes_and_confidence(probs)
            if valid is not None:
                cls[~valid] = ignore
            writers["classes"].add(cls)
            acc.add(top, cls)
            if "color" in writers:
                writers["color"].add(to_color(cls))
            if "confidence" in writers:
                if valid is not None:
                    conf[~valid] = 0
                writers["confidence"].add(conf)
            if "probabilities" in writers:
                writers["probabilities"].add(probs)

        run_tiles(backend, source, tile_size=tile, overlap=overlap,
                  batch_size=opts.batch_size, blend=opts.blend, tta=resolve_tta(opts.tta), emit=emit,
                  progress=progress, cancel=cancel)
        for writer in writers.values():
            writer.flush()
            writer.dst.close()
        report = _write_reports(acc, meta, input_path, w, h, tmp, opts)

        if "overlay" in tmp:
            ph, pw = preview_shape(h, w, opts.overlay_max_size)
            scaled = (ph, pw) != (h, w)
            bands = indexes[:3] if len(indexes) >= 3 else indexes[:1]
            img = src.read(bands, out_shape=(len(bands), ph, pw),
                           resampling=Resampling.average if scaled else Resampling.nearest)
            with rasterio.open(tmp["classes"]) as c:
                cls = c.read(1, out_shape=(ph, pw), resampling=Resampling.nearest)
            _save_overlay(tmp["overlay"], img.transpose(1, 2, 0), cls, meta, report, valid=cls < k)
            del img
        if "vector" in tmp:
            from terraseg.predict.vectorize import vectorize

            with rasterio.open(tmp["classes"]) as c:
                classes = c.read(1)
            vectorize(classes, tmp["vector"], meta.classes, transform=transform, crs=crs, fmt=opts.vector,
                      min_area=opts.min_area, simplify=opts.simplify)
