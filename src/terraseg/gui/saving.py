"""Saving the app's results with the same writers and file names as ``terraseg predict`` (no Qt here).

Kinds and names (``terraseg.predict.engine.output_paths``): ``classes`` (``<image>_classes.tif`` with
the input's CRS, transform and a colour table for TIFF inputs, ``.png`` for JPG/PNG inputs),
``color`` (``<image>_color.tif``/``.png``), ``overlay`` (``<image>_overlay.png``), ``areas``
(``<image>_areas.csv`` and ``<image>_areas.json``) and ``polygons`` (``<image>_polygons.gpkg``, with the
CLI's ``--min-area`` and ``--simplify``; needs rasterio, fiona and shapely). Every file is written
atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terraseg.errors import DataError

KINDS = ("classes", "color", "overlay", "polygons", "areas")
# output kind here -> key of terraseg.predict.engine.output_paths
_CLI_KEYS = {"classes": "classes", "color": "color", "overlay": "overlay", "polygons": "vector",
             "areas": "areas_csv"}


@dataclass
class SaveContext:
    image_doc: Any  # terraseg.gui.imaging.ImageDoc
    meta: Any  # BundleMeta
    classes: np.ndarray  # (H, W) uint8, full resolution
    image: np.ndarray  # (H, W, bands), full resolution
    opacity: float = 0.5
    min_area: float = 0.0  # polygons: as `terraseg predict --min-area` (CRS units², pixels if not georeferenced)
    simplify: float = 0.0  # polygons: as `terraseg predict --simplify` (CRS units, pixels if not georeferenced)


def can_save_polygons() -> bool:
    """Polygons need rasterio (shapes), shapely and fiona; the standalone app ships without them."""
    from importlib.util import find_spec

    from terraseg.gui.imaging import have_rasterio

    return have_rasterio() and all(find_spec(m) is not None for m in ("fiona", "shapely"))


def output_files(folder: str | Path, image_doc) -> dict[str, Path]:
    """Where each kind goes in ``folder``: the names ``terraseg predict --vector gpkg`` uses."""
    from terraseg.gui.imaging import have_rasterio
    from terraseg.predict.engine import PredictOptions, output_paths

    image = image_doc.path if image_doc is not None else Path("prediction.png")
    cli = output_paths(image, folder, PredictOptions(vector="gpkg"))
    out = {kind: cli[key] for kind, key in _CLI_KEYS.items()}
    if not have_rasterio():  # the standalone app writes PNG where the CLI would write GeoTIFF
        for kind in ("classes", "color"):
            out[kind] = out[kind].with_suffix(".png")
    return out


def default_name(kind: str, image_doc) -> str:
    return output_files(".", image_doc)[kind].name


def file_filter(kind: str, image_doc) -> str:
    return {
        "classes": "GeoTIFF (*.tif *.tiff);;PNG (*.png)",
        "color": "GeoTIFF (*.tif *.tiff);;PNG (*.png)",
        "overlay": "PNG (*.png);;JPEG (*.jpg)",
        "polygons": "GeoPackage (*.gpkg);;GeoJSON (*.geojson)",
        "areas": "CSV and JSON (*.csv *.json)",
    }[kind]


def _colors(meta) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in c[:3]) for c in meta.colors]


def save(kind: str, path: Path, ctx: SaveContext) -> Path:
    """Write one result ``kind`` to ``path``; returns the path written."""
    if kind not in KINDS:
        raise ValueError(kind)
    path = Path(path)
    suffix = path.suffix.lower()
    if kind == "classes":
        if suffix not in (".tif", ".tiff", ".png"):
            raise DataError("the class raster must be a .tif or .png file", path)
        return _write_raster(path, ctx.classes, ctx, colormap=True)
    if kind == "color":
        from terraseg.data.palette import colorize

        return _write_raster(path, colorize(ctx.classes, _colors(ctx.meta)), ctx)
    if kind == "overlay":
        return _write_overlay(path, ctx)
    if kind == "polygons":
        if not can_save_polygons():
            raise DataError("saving polygons needs rasterio, fiona and shapely, which this installation lacks", path)
        from terraseg.predict.vectorize import vectorize

        vectorize(ctx.classes, path, list(ctx.meta.classes), transform=ctx.image_doc.transform,
                  crs=ctx.image_doc.crs, ignore_index=int(ctx.meta.ignore_index), min_area=ctx.min_area,
                  simplify=ctx.simplify)
        return path
    from terraseg.predict.areas import write_area_report

    if suffix not in (".csv", ".json"):
        raise DataError("the area report must be a .csv or .json file", path)
    # like the CLI, the report comes as a CSV table and a JSON file side by side
    report = area_report_for(ctx.classes, ctx.meta, ctx.image_doc)
    write_area_report(report, csv_path=path.with_suffix(".csv"), json_path=path.with_suffix(".json"))
    return path


def area_report_for(classes: np.ndarray, meta, image_doc) -> dict:
    """The CLI's area report (pixels, %, m² and ha when georeferenced) for a prediction."""
    from terraseg.predict.areas import area_report

    georef = image_doc is not None and image_doc.georeferenced
    return area_report(classes, list(meta.classes), transform=image_doc.transform if georef else None,
                       crs=image_doc.crs if georef else None,
                       input=str(image_doc.path) if image_doc is not None else None)


def _write_overlay(path: Path, ctx: SaveContext) -> Path:
    from terraseg._io import atomic_path
    from terraseg.predict.outputs import display_image, make_overlay

    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise DataError("the overlay must be a .png or .jpg file", path)
    report = area_report_for(ctx.classes, ctx.meta, ctx.image_doc)
    shares = [row["percent"] for row in report["classes"]]
    valid = ctx.classes < len(ctx.meta.classes)
    img = make_overlay(display_image(ctx.image, valid), ctx.classes, _colors(ctx.meta), list(ctx.meta.classes),
                       shares, alpha=ctx.opacity, ignore_index=int(ctx.meta.ignore_index))
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    return path


def _write_raster(path: Path, array: np.ndarray, ctx: SaveContext, colormap: bool = False) -> Path:
    from terraseg.gui.imaging import have_rasterio

    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff") and not have_rasterio():
        raise DataError("writing GeoTIFF needs rasterio, which this installation lacks; save as .png", path)
    from terraseg.data.raster import write_raster

    doc = ctx.image_doc
    # as the CLI: a class raster carries the class colours as a colour table / PNG palette (values stay indices)
    cmap = {i: c for i, c in enumerate(_colors(ctx.meta))} if colormap else None
    if suffix in (".tif", ".tiff") and doc.georeferenced:
        return write_raster(path, array, crs=doc.crs, transform=doc.transform, colormap=cmap)
    return write_raster(path, array, colormap=cmap)
