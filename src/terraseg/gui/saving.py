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
    from terraseg.gui.imaging import have_rasterio

    return have_rasterio()


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
        from terraseg.predict.outputs import write_overlay

        write_overlay(path, ctx.image, ctx.classes, ctx.meta, alpha=ctx.opacity, nodata=ctx.image_doc.nodata)
        return path
    if kind == "polygons":
        if not can_save_polygons():
            raise DataError("saving polygons needs rasterio, which this installation lacks", path)
        from terraseg.predict.vectorize import write_polygons

        write_polygons(path, ctx.classes, ctx.meta, transform=ctx.image_doc.transform, crs=ctx.image_doc.crs)
        return path
    from terraseg.predict.areas import write_area_csv

    write_area_csv(path, ctx.classes, ctx.meta, pixel_area_m2=ctx.image_doc.pixel_area_m2())
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
