"""Saving the app's results: the files ``terraseg predict`` writes, under its names (no Qt here).

A run writes the CLI's outputs (``terraseg.predict.predict_file``) into a session folder; saving
copies them where the user wants them. Kinds: ``classes`` (``<image>_classes.tif`` with the input's
CRS, transform and colour table; ``.png`` for JPG/PNG inputs), ``color`` (``<image>_color.tif/.png``),
``overlay`` (``<image>_overlay.png``), ``areas`` (``<image>_areas.csv`` and ``.json``) and
``polygons`` (``<image>_polygons.gpkg``, made on saving with the CLI's ``--min-area`` and
``--simplify`` by the same ``vectorize``; needs rasterio, fiona and shapely). Every file appears
atomically.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terraseg.errors import DataError

KINDS = ("classes", "color", "overlay", "polygons", "areas")
# output kind here -> key of terraseg.predict.output_paths
CLI_KEYS = {"classes": "classes", "color": "color", "overlay": "overlay", "polygons": "vector",
            "areas": "areas_csv"}


@dataclass
class SaveContext:
    image_doc: Any  # terraseg.gui.imaging.ImageDoc
    meta: Any  # BundleMeta
    result: Any  # terraseg.gui.worker.RunResult
    min_area: float = 0.0  # polygons: as `terraseg predict --min-area`
    simplify: float = 0.0  # polygons: as `terraseg predict --simplify`


def can_save_polygons() -> bool:
    """Polygons need rasterio (shapes), shapely and fiona; the standalone app ships without them."""
    from importlib.util import find_spec

    from terraseg.gui.imaging import have_rasterio

    return have_rasterio() and all(find_spec(m) is not None for m in ("fiona", "shapely"))


def output_files(folder: str | Path, image_doc) -> dict[str, Path]:
    """Where each kind goes in ``folder``: the names ``terraseg predict --vector gpkg`` uses."""
    from terraseg.predict.options import PredictOptions, output_paths

    image = image_doc.path if image_doc is not None else Path("prediction.png")
    cli = output_paths(image, folder, PredictOptions(vector="gpkg"))
    return {kind: cli[key] for kind, key in CLI_KEYS.items()}


def default_name(kind: str, image_doc) -> str:
    return output_files(".", image_doc)[kind].name


def file_filter(kind: str, image_doc) -> str:
    if kind in ("classes", "color"):
        return "GeoTIFF (*.tif *.tiff)" if output_files(".", image_doc)[kind].suffix == ".tif" else "PNG (*.png)"
    return {"overlay": "PNG (*.png)", "polygons": "GeoPackage (*.gpkg);;GeoJSON (*.geojson)",
            "areas": "CSV and JSON (*.csv *.json)"}[kind]


def save(kind: str, path: Path, ctx: SaveContext) -> Path:
    """Write one result ``kind`` to ``path`` (its suffix is the run's own); returns the path written."""
    if kind not in KINDS:
        raise ValueError(kind)
    path = Path(path)
    if kind == "polygons":
        return _save_polygons(path, ctx)
    source = ctx.result.paths[CLI_KEYS[kind]]
    if kind == "areas":  # like the CLI, the report comes as a CSV table and a JSON file side by side
        if path.suffix.lower() not in (".csv", ".json"):
            raise DataError("the area report is saved as .csv and .json", path)
        _copy(source, path.with_suffix(".csv"))
        _copy(ctx.result.paths["areas_json"], path.with_suffix(".json"))
        return path
    if path.suffix.lower() != source.suffix.lower():
        raise DataError(f"this result is a {source.suffix} file; save it with that suffix", path)
    return _copy(source, path)


def _copy(source: Path, path: Path) -> Path:
    from terraseg._io import atomic_path

    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return path


def _save_polygons(path: Path, ctx: SaveContext) -> Path:
    if not can_save_polygons():
        raise DataError("saving polygons needs rasterio, fiona and shapely, which this installation lacks", path)
    from terraseg.predict.vectorize import vectorize

    doc = ctx.image_doc
    vectorize(ctx.result.read_classes(), path, list(ctx.meta.classes), transform=doc.transform, crs=doc.crs,
              min_area=ctx.min_area, simplify=ctx.simplify)
    return path
