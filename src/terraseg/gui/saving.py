"""Saving the app's results with the same writers as ``terraseg predict`` (no Qt here).

Kinds: ``classes`` (class-index raster: GeoTIFF with the input's CRS and transform when the input is
georeferenced, PNG otherwise), ``mask`` (colour mask PNG), ``overlay`` (PNG), ``polygons``
(GeoPackage/GeoJSON, needs rasterio) and ``areas`` (CSV). Every file is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terraseg.errors import DataError

KINDS = ("classes", "mask", "overlay", "polygons", "areas")


@dataclass
class SaveContext:
    image_doc: Any  # terraseg.gui.imaging.ImageDoc
    meta: Any  # BundleMeta
    classes: np.ndarray  # (H, W) uint8, full resolution
    image: np.ndarray  # (H, W, bands), full resolution
    opacity: float = 0.5


def can_save_polygons() -> bool:
    """Polygons need rasterio (shapes), shapely and fiona; the standalone app ships without them."""
    from importlib.util import find_spec

    from terraseg.gui.imaging import have_rasterio

    return have_rasterio() and all(find_spec(m) is not None for m in ("fiona", "shapely"))


def default_name(kind: str, image_doc) -> str:
    stem = image_doc.path.stem if image_doc is not None else "prediction"
    georef = image_doc is not None and image_doc.georeferenced
    return {
        "classes": f"{stem}_classes.{'tif' if georef else 'png'}",
        "mask": f"{stem}_mask.png",
        "overlay": f"{stem}_overlay.png",
        "polygons": f"{stem}_polygons.gpkg" if georef else f"{stem}_polygons.geojson",
        "areas": f"{stem}_areas.csv",
    }[kind]


def file_filter(kind: str, image_doc) -> str:
    return {
        "classes": "GeoTIFF (*.tif *.tiff);;PNG (*.png)",
        "mask": "PNG (*.png);;GeoTIFF (*.tif)",
        "overlay": "PNG (*.png);;JPEG (*.jpg)",
        "polygons": "GeoPackage (*.gpkg);;GeoJSON (*.geojson)",
        "areas": "CSV (*.csv)",
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
    if kind == "mask":
        from terraseg.data.palette import colorize

        return _write_raster(path, colorize(ctx.classes, _colors(ctx.meta)), ctx)
    if kind == "overlay":
        return _write_overlay(path, ctx)
    if kind == "polygons":
        if not can_save_polygons():
            raise DataError("saving polygons needs rasterio, fiona and shapely, which this installation lacks", path)
        from terraseg.predict.vectorize import vectorize

        vectorize(ctx.classes, path, list(ctx.meta.classes), transform=ctx.image_doc.transform,
                  crs=ctx.image_doc.crs, ignore_index=int(ctx.meta.ignore_index))
        return path
    from terraseg.predict.areas import write_area_report

    if suffix != ".csv":
        raise DataError("the area table must be a .csv file", path)
    write_area_report(area_report_for(ctx.classes, ctx.meta, ctx.image_doc), csv_path=path)
    return path


def area_report_for(classes: np.ndarray, meta, image_doc) -> dict:
    """The CLI's area report (pixels, %, m² and ha when georeferenced) for a prediction."""
    from terraseg.predict.areas import area_report

    georef = image_doc is not None and image_doc.georeferenced
    return area_report(classes, list(meta.classes), transform=image_doc.transform if georef else None,
                       crs=image_doc.crs if georef else None,
                       source=str(image_doc.path) if image_doc is not None else None)


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
    if suffix in (".tif", ".tiff"):
        # a GeoTIFF class raster carries the class colours as a colour table (values stay indices)
        cmap = {i: c for i, c in enumerate(_colors(ctx.meta))} if colormap else None
        if doc.georeferenced:
            return write_raster(path, array, crs=doc.crs, transform=doc.transform, colormap=cmap)
        return write_raster(path, array, colormap=cmap)
    return write_raster(path, array)  # PNG: plain 8-bit indices, readable as classes by any tool
