"""The prediction entry points: an in-memory image (:func:`predict_array`) or a raster
(:func:`predict_file`), both one source → normaliser → tiles → backend → blend → sinks run.

``model`` is a backend, a :class:`~terraseg.bundle.Bundle` or a model path (bundle folder: torch;
``.onnx``: ONNX Runtime); ``terraseg.runtime.load_backend`` picks faster paths.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from terraseg.data.source import check_band_count, gdal_env, is_remote, open_source, uses_pillow
from terraseg.predict.engine import CancelFn, ProgressFn, predict_source
from terraseg.predict.options import (PredictOptions, ignore_value, output_paths, tile_settings, validate,
                                      with_overrides)


@dataclass
class Prediction:
    """Result of :func:`predict_array`.

    ``classes``: uint8 ``(H, W)`` class indices (the ignore value where the input was invalid);
    ``confidence``: float32 ``(H, W)`` probability of the chosen class; ``probabilities``: float32
    ``(H, W, K)`` blended class probabilities when requested, else ``None``.
    """

    classes: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None = None


def _backend(model, device="cpu", precision="fp32"):
    from terraseg.predict.backends import as_backend

    return as_backend(model, device=device, precision=precision)


def model_bands(meta, bands=None):
    """The input bands to feed the model: ``bands`` when given, else the ones the bundle was trained
    on (``None``: every band but alpha)."""
    return bands if bands is not None else getattr(meta, "band_indexes", None)


def predict_array(model, array: np.ndarray, tile_size: int | None = None, overlap: int | float | None = None,
                  batch_size: int = 4, blend: str = "cosine", tta=False, progress: ProgressFn | None = None,
                  cancel: CancelFn | None = None, return_probabilities: bool = False, nodata=None,
                  device: str = "cpu", precision: str = "fp32", layout: str = "hwc", bands=None,
                  valid: np.ndarray | None = None) -> Prediction:
    """Predict a whole in-memory image.

    ``array``: ``(H, W, bands)`` (``layout="hwc"``, numpy/Pillow order), ``(bands, H, W)``
    (``layout="chw"``, what ``rasterio.read()`` returns) or ``(H, W)``. ``tile_size`` defaults to
    the bundle's tile size, ``overlap`` to a quarter tile of at most 16 px (pixels, or a fraction < 1). ``tta``:
    ``False``, ``True`` (= ``"d4"``, 8 flips/rotations), ``"flips"`` (4) or ``"d4"``.
    ``progress(done_tiles, total_tiles)`` is called after every batch; when ``cancel()`` returns True
    the run stops with :class:`~terraseg.predict.engine.PredictionCancelled`. Pixels equal to
    ``nodata`` in every band, non-finite pixels and pixels where ``valid`` is False get the ignore
    value.
    """
    from terraseg.data.source import ArraySource
    from terraseg.predict.sinks import ArraySink

    backend = _backend(model, device=device, precision=precision)
    meta = backend.meta
    source = ArraySource(array, nodata, layout=layout, bands=bands, valid=valid)
    _check_bands(source, meta, layout)
    opts = PredictOptions(tile_size=tile_size, overlap=overlap, batch_size=batch_size, blend=blend, tta=tta)
    tile, ov = validate(opts, meta)
    sink = ArraySink(probabilities=return_probabilities)
    predict_source(backend, source, [sink], tile_size=tile, overlap=ov, batch_size=batch_size, blend=blend,
                   tta=tta, ignore=ignore_value(meta), progress=progress, cancel=cancel)
    return Prediction(sink.classes, sink.confidence, sink.probabilities)


def _check_bands(source, meta, layout: str) -> None:
    from terraseg.errors import DataError

    if source.count != meta.in_channels and not source.selected:
        other = "chw" if layout == "hwc" else "hwc"
        order = "(H, W, bands)" if layout == "hwc" else "(bands, H, W)"
        raise DataError(f"image has {source.count} band{'s' if source.count != 1 else ''} but the model expects "
                        f"{meta.in_channels} (the array was read as layout={layout!r}, {order}; if its bands "
                        f"come {'first' if layout == 'hwc' else 'last'}, pass layout={other!r})")
    check_band_count(source, meta.in_channels)


def predict_file(model, input_path, out_dir: str | Path, options: PredictOptions | None = None, *,
                 name: str | None = None, progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                 device: str = "cpu", precision: str = "fp32", extra_sinks=(), **overrides) -> dict[str, Path]:
    """Predict one raster and write all outputs into ``out_dir``; returns ``{kind: path}``.

    GDAL rasters (GeoTIFF, COG, VRT, URLs and ``/vsi…`` paths) stream: read by windows one tile row
    at a time, every output raster written strip by strip, so memory depends on the tile size, batch
    size and scene width, not on the scene height. Pictures (JPG/PNG) are decoded whole. Keyword
    ``overrides`` set :class:`PredictOptions` fields (``tile_size=256``, ``vector="gpkg"`` ...).
    Every file is written under a temporary name and renamed only when the whole input succeeded, so
    a failure or cancellation leaves no output behind. ``extra_sinks`` receive the strips too (the
    desktop app attaches its display sink there).
    """
    opts = with_overrides(options, overrides)
    backend = _backend(model, device=device, precision=precision)
    meta = backend.meta
    tile, ov = validate(opts, meta)
    from terraseg.predict.resolution import predict_resampled, resolution_ratio

    with file_outputs(meta, input_path, out_dir, opts, name=name, extra_sinks=extra_sinks) as (source, sinks, paths):
        run = dict(tile_size=tile, overlap=ov, batch_size=opts.batch_size, blend=opts.blend, tta=opts.tta,
                   progress=progress, cancel=cancel)
        ratio = resolution_ratio(source, meta) if opts.resample else None
        if ratio is not None and abs(ratio - 1.0) > 1e-6:
            predict_resampled(backend, source, sinks, ratio, scratch_dir=out_dir, ignore=ignore_value(meta), **run)
        else:
            predict_source(backend, source, sinks, ignore=ignore_value(meta), **run)
    return paths


@contextlib.contextmanager
def file_outputs(meta, input_path, out_dir: str | Path, opts: PredictOptions, *, name: str | None = None,
                 extra_sinks=()):
    """Open ``input_path`` and the sinks writing its outputs; yields ``(source, sinks, paths)``.

    The sinks write under temporary names, renamed onto ``paths`` only when the block exits without
    error. :func:`predict_file` feeds them from the engine; the block join of a split scene
    (``terraseg.predict.dask.join``) feeds them from the block files, so both write the same files.
    """
    from terraseg._io import atomic_path
    from terraseg.predict.resolution import check_resolution
    from terraseg.predict.sinks import file_sinks

    out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:
        if not uses_pillow(input_path):
            stack.enter_context(gdal_env())
        source = stack.enter_context(open_source(input_path if is_remote(input_path) else Path(input_path),
                                                 bands=model_bands(meta, opts.bands)))
        check_band_count(source, meta.in_channels)
        check_resolution(source, meta, resample=opts.resample)  # warns past 25 %; --resample needs both GSDs
        paths = output_paths(input_path, out_dir, opts, name=name)
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = {key: stack.enter_context(atomic_path(p)) for key, p in paths.items()}
        sinks = file_sinks(tmp, opts, png=uses_pillow(input_path), input=str(input_path)) + list(extra_sinks)
        yield source, sinks, paths


__all__ = ["Prediction", "predict_array", "predict_file", "model_bands", "tile_settings"]
