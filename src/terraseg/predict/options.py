"""Prediction options: what a run computes and writes, checked once, and the output file names.

:class:`PredictOptions` is shared by ``terraseg predict``, ``terraseg evaluate``, the Python API and
the desktop app; :func:`validate` is the only place options are checked (the CLI does not repeat
it) and :func:`output_paths` the only place output files are named.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath

from terraseg.errors import ConfigError

TTA_MODES = ("none", "flips", "d4")
VECTOR_FORMATS = ("gpkg", "geojson")


@dataclass
class PredictOptions:
    """What a prediction computes and writes (every field has a laptop-friendly default)."""

    tile_size: int | None = None  # default: the bundle's tile size
    overlap: int | float | None = None  # default: a quarter tile, at most 16 px (tiler.DEFAULT_OVERLAP_MAX)
    batch_size: int = 4
    blend: str = "cosine"
    tta: bool | str = False
    color: bool = True  # colour mask
    overlay: bool = True  # overlay PNG with legend
    areas: bool = True  # class-area report (CSV + JSON)
    confidence: bool = False  # max-probability raster (float32 GeoTIFF)
    probabilities: bool = False  # per-class probability raster (K-band float32 GeoTIFF)
    vector: str | None = None  # "gpkg" | "geojson"
    min_area: float = 0.0  # polygons smaller than this are merged into their neighbours (m², pixels if unknown)
    simplify: float = 0.0  # tolerance in CRS units (pixels when not georeferenced)
    overlay_max_size: int = 2048  # the overlay preview is downscaled to this many pixels on a side
    bands: list[int] | None = None  # 1-based input bands fed to the model (default: the bundle's choice)
    resample: bool = False  # predict at the model's training resolution, outputs on the input's grid


def with_overrides(options: PredictOptions | None, overrides: dict) -> PredictOptions:
    """``options`` (or the defaults) with keyword overrides applied; unknown names are refused."""
    opts = options or PredictOptions()
    known = {f.name for f in fields(PredictOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown prediction option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(opts, **overrides)


def resolve_tta(tta) -> str:
    if tta is True:
        return "d4"
    if tta in (False, None):
        return "none"
    if tta not in TTA_MODES:
        raise ConfigError(f"unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    return tta


def tile_settings(meta, tile_size=None, overlap=None) -> tuple[int, int]:
    """``(tile, overlap)`` in pixels: the bundle's tile size and a quarter-tile overlap of at most 16 px
    by default."""
    from terraseg.predict.tiler import resolve_overlap

    try:
        tile = int(tile_size or meta.tile_size or 512)
    except (TypeError, ValueError):
        raise ConfigError(f"tile size must be a whole number of pixels, got {tile_size!r}") from None
    if tile < 8:
        raise ConfigError(f"tile size must be at least 8 pixels, got {tile}")
    _check_tile_pixels(tile, "--tile-size" if tile_size else "the model's tile_size")
    return tile, resolve_overlap(tile, overlap)


def _check_tile_pixels(tile: int, what: str) -> None:
    """A tile is one array in memory: the pixel guard of whole-image reads applies to it."""
    from terraseg.data.source import MAX_PIXELS_ENV, max_pixels

    limit = max_pixels()
    if tile * tile > limit:
        raise ConfigError(f"{what} {tile}: {tile}×{tile} px tiles are over the limit of {limit:,} px; use a "
                          f"smaller tile (or raise {MAX_PIXELS_ENV}=<pixels>)")


def check_tile_memory(tile: int, batch_size: int, meta) -> None:
    """Refuse tiles whose batch alone would not fit in the free RAM, before any work: the normalised
    input batch and the probabilities it gives, float32 (the least a run holds at once)."""
    from terraseg.models.size_guard import refuse_allocation

    floats = int(batch_size) * (int(meta.in_channels) + int(meta.num_classes)) * tile * tile
    refuse_allocation(4 * floats, f"--tile-size {tile} with --batch-size {batch_size} (one batch of tiles and its "
                                  f"{meta.num_classes} class probabilities)", ConfigError)


def check(opts: PredictOptions) -> None:
    """Check what can be checked without the model (the CLI calls this before a model loads)."""
    from terraseg.predict.blend import window_2d

    window_2d(2, 2, opts.blend)  # unknown blend -> ConfigError
    resolve_tta(opts.tta)
    if not isinstance(opts.batch_size, int) or opts.batch_size < 1:
        raise ConfigError(f"batch size must be a whole number >= 1, got {opts.batch_size!r}")
    if opts.vector is not None and opts.vector not in VECTOR_FORMATS:
        raise ConfigError(f"unknown vector format {opts.vector!r}; choose gpkg or geojson")
    if opts.min_area < 0 or opts.simplify < 0:
        raise ConfigError("--min-area and --simplify must be >= 0")
    if opts.overlay_max_size < 16:
        raise ConfigError(f"overlay size must be at least 16 pixels, got {opts.overlay_max_size}")
    if isinstance(opts.tile_size, int) and opts.tile_size >= 8:
        _check_tile_pixels(opts.tile_size, "--tile-size")


def validate(opts: PredictOptions, meta) -> tuple[int, int]:
    """Check the options against the model once, before any file is touched; -> (tile, overlap)."""
    check(opts)
    tile, overlap = tile_settings(meta, opts.tile_size, opts.overlap)
    check_tile_memory(tile, opts.batch_size, meta)
    return tile, overlap


def ignore_value(meta) -> int:
    """The class-raster value for nodata: the bundle's ignore index when it fits in uint8 and is not a
    class, else 255."""
    ignore = int(meta.ignore_index)
    return ignore if meta.num_classes <= ignore <= 255 else 255


def input_stem(input_path) -> str:
    """The base name of an input (a file path, or the last part of a URL / GDAL virtual path)."""
    text = str(input_path).split("?", 1)[0]
    return PurePosixPath(text).stem if "://" in text or text.startswith("/vsi") else Path(text).stem


def output_paths(input_path, out_dir, options: PredictOptions | None = None,
                 name: str | None = None) -> dict[str, Path]:
    """The files a prediction of ``input_path`` writes into ``out_dir`` (keys: output kinds).

    Rasters are GeoTIFF for GDAL inputs and PNG for JPG/PNG inputs; confidence and probability
    rasters are always (Geo)TIFF because they hold floats. A GeoTIFF class raster comes with
    ``<name>.tif.aux.xml`` (class names for GDAL) and ``<name>.qml`` (QGIS style). The CLI, the API
    and the app all use these names.
    """
    from terraseg.data.source import uses_pillow

    opts = options or PredictOptions()
    out_dir = Path(out_dir)
    base = name or input_stem(input_path)
    ext = ".png" if uses_pillow(input_path) else ".tif"
    paths = {"classes": out_dir / f"{base}_classes{ext}"}
    if ext == ".tif":  # GDAL category names (GeoTIFF has no place for them) and the QGIS style
        paths["classes_aux"] = out_dir / f"{base}_classes.tif.aux.xml"
        paths["classes_qml"] = out_dir / f"{base}_classes.qml"
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
