"""Ground resolution: warn when a scene's pixels are not the size the model was trained on, and
predict at the model's resolution on request (``--resample``).

A scene's ground sampling distance (GSD) is the square root of its mean ground pixel area
(:mod:`terraseg.predict.ground`, so degrees and Web Mercator are measured on the ellipsoid). The
bundle records the training GSD (``BundleMeta.resolution``, metres per pixel).

``--resample`` runs two passes, both streamed: the scene is read through a rasterio ``WarpedVRT`` on a
grid of the model's pixel size (same CRS and origin) and its class probabilities are written to a
temporary GeoTIFF; that file is then read back through a ``WarpedVRT`` on the input's own grid
(bilinear), strip by strip, into the usual sinks. Every output is therefore on the input's grid.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from terraseg.errors import ConfigError

#: Relative difference of GSD above which ``predict`` warns.
TOLERANCE = 0.25
STRIP_ROWS = 256


def ground_resolution(source) -> float | None:
    """Metres per pixel of a georeferenced source (``None`` when it has no ground units)."""
    from terraseg.predict import ground

    if not source.georeferenced:
        return None
    return ground.ground_resolution(source.transform, source.crs, source.width, source.height)


def resolution_ratio(source, meta) -> float | None:
    """The scene's GSD over the model's (``None`` when either is unknown)."""
    model = getattr(meta, "resolution", None)
    scene = ground_resolution(source) if model else None
    return scene / float(model) if model and scene else None


def check_resolution(source, meta, resample: bool = False) -> float | None:
    """The scene's GSD over the model's (``None`` when either is unknown); warns past ``TOLERANCE``.

    With ``resample`` the warning is not given (the scene will be resampled), but a model or scene
    without a known resolution is a :class:`ConfigError`.
    """
    model = getattr(meta, "resolution", None)
    scene = ground_resolution(source)
    if resample and model is None:
        raise ConfigError("--resample needs the model's training resolution, which this bundle does not record")
    if resample and scene is None:
        raise ConfigError("--resample needs a georeferenced input (a CRS in metres or degrees)", source.path)
    if model is None or scene is None:
        return None
    ratio = scene / float(model)
    if not resample and abs(ratio - 1.0) > TOLERANCE:
        warnings.warn(f"{source.path}: pixels are {scene:.3g} m on the ground but the model was trained on "
                      f"{float(model):.3g} m pixels ({ratio:.2f} x); results may suffer. --resample predicts at "
                      "the model's resolution", UserWarning, stacklevel=2)
    return ratio


def _model_grid(source, ratio: float):
    from affine import Affine

    width = max(1, round(source.width * ratio))  # ratio = scene GSD / model GSD
    height = max(1, round(source.height * ratio))
    t, sx, sy = source.transform, source.width / width, source.height / height
    transform = Affine(t.a * sx, t.b * sy, t.c, t.d * sx, t.e * sy, t.f)
    return transform, width, height


def predict_resampled(backend, source, sinks, ratio: float, *, scratch_dir, ignore: int, **run) -> None:
    """Predict ``source`` (a rasterio source) on a grid of the model's pixel size; outputs on its own grid.

    ``ratio``: the scene's GSD over the model's (:func:`check_resolution`).

    ``run``: the keyword arguments of :func:`terraseg.predict.engine.predict_source` (tile size, ...).
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from terraseg.data.source import RasterioSource
    from terraseg.predict.engine import deliver, predict_source
    from terraseg.predict.sinks import ProbabilitySink, RunInfo, finish_sinks

    if not hasattr(source, "ds"):
        raise ConfigError("--resample works on GDAL rasters (GeoTIFF, VRT, ...), not on pictures", source.path)
    transform, width, height = _model_grid(source, ratio)
    folder = Path(tempfile.mkdtemp(prefix=".resample-", dir=scratch_dir))
    try:
        probs_path = folder / "probabilities.tif"
        # coarser model pixels: average the input; finer: interpolate it
        down = Resampling.average if ratio < 1 else Resampling.bilinear
        with WarpedVRT(source.ds, crs=source.crs, transform=transform, width=width, height=height,
                       resampling=down) as vrt:
            coarse = RasterioSource(source.path, source.band_indexes if source.selected else None, dataset=vrt)
            predict_source(backend, coarse, [ProbabilitySink(probs_path)], ignore=ignore, **run)
        meta = backend.meta
        info = RunInfo(meta=meta, source=source, ignore=int(ignore))
        for sink in sinks:
            sink.start(info)
        with rasterio.open(probs_path) as probs_ds, \
                WarpedVRT(probs_ds, crs=source.crs, transform=source.transform, width=source.width,
                          height=source.height, resampling=Resampling.bilinear) as back:
            from rasterio.windows import Window

            for top in range(0, source.height, STRIP_ROWS):
                bottom = min(source.height, top + STRIP_ROWS)
                probs = back.read(window=Window(0, top, source.width, bottom - top)).astype(np.float32)
                deliver(sinks, info, top, bottom, probs, source.valid_rows(top, bottom))
        finish_sinks(sinks)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
