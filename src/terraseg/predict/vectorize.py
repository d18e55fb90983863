"""Polygons from a class raster: one feature per connected region, with its class.

Regions come from :func:`rasterio.features.shapes` (4-connected), in the raster's CRS (pixel
coordinates, y down, when the raster has no georeference). ``min_area`` removes small regions the
GIS way: the class raster is first sieved (:func:`rasterio.features.sieve`: regions smaller than
``min_area`` are merged into their largest neighbour, so no holes appear), then any polygon still
smaller (e.g. one surrounded by nodata) is dropped. ``simplify`` simplifies outlines (shapely,
topology preserving per polygon). Both are in CRS units (pixels when not georeferenced). Files are
written with fiona as GeoPackage or GeoJSON.

The class raster is read whole for vectorising (1 byte per pixel), so polygons are never cut at
block borders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from terraseg.errors import ConfigError

DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}
SUFFIXES = {"gpkg": ".gpkg", "geojson": ".geojson"}
SCHEMA = {"geometry": "Polygon",
          "properties": {"class_id": "int", "class_name": "str", "area": "float", "pixels": "int"}}


def polygons(classes: np.ndarray, class_names, transform=None, min_area: float = 0.0,
             simplify: float = 0.0, ignore_index: int = 255):
    """Yield ``(shapely Polygon, class_id, class_name, area, pixels)`` for every connected region."""
    import math

    from affine import Affine
    from rasterio.features import shapes, sieve
    from shapely.geometry import shape

    classes = np.ascontiguousarray(classes, dtype=np.uint8)
    transform = transform if transform is not None else Affine.identity()
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    mask = classes < len(class_names)
    if min_area > 0 and pixel_area > 0:
        size = math.ceil(min_area / pixel_area - 1e-9)
        if size > 1:
            classes = sieve(classes, size=size, mask=mask, connectivity=4)
            classes[~mask] = ignore_index
    for geom, value in shapes(classes, mask=mask, connectivity=4, transform=transform):
        cid = int(value)
        if cid == ignore_index or cid >= len(class_names):
            continue
        poly = shape(geom)
        area = float(poly.area)
        if area < min_area:
            continue
        if simplify > 0:
            poly = poly.simplify(simplify, preserve_topology=True)
            if poly.is_empty:
                continue
        yield poly, cid, class_names[cid], area, int(round(area / pixel_area)) if pixel_area else 0


def vectorize(classes: np.ndarray, out_path: str | Path, class_names, transform=None, crs=None,
              fmt: str | None = None, min_area: float = 0.0, simplify: float = 0.0,
              ignore_index: int = 255) -> int:
    """Write the regions of ``classes`` to ``out_path`` (GPKG or GeoJSON); returns the feature count.

    The file appears atomically (written under a temporary name, then renamed).
    """
    import fiona
    from shapely.geometry import mapping

    from terraseg._io import atomic_path

    out_path = Path(out_path)
    fmt = fmt or {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson"}.get(out_path.suffix.lower())
    if fmt not in DRIVERS:
        raise ConfigError(f"unknown vector format {fmt!r}; choose gpkg or geojson")
    if min_area < 0 or simplify < 0:
        raise ConfigError("--min-area and --simplify must not be negative")
    n = 0
    with atomic_path(out_path) as tmp:
        tmp.unlink()  # the drivers want to create the file themselves
        kwargs = {"crs_wkt": crs.to_wkt()} if crs is not None else {}
        if fmt == "gpkg":
            kwargs["layer"] = "classes"
        with fiona.open(tmp, "w", driver=DRIVERS[fmt], schema=SCHEMA, **kwargs) as dst:
            batch = []
            for poly, cid, name, area, px in polygons(classes, class_names, transform, min_area, simplify,
                                                      ignore_index):
                batch.append({"geometry": mapping(poly),
                              "properties": {"class_id": cid, "class_name": name, "area": area, "pixels": px}})
                if len(batch) >= 1000:
                    dst.writerecords(batch)
                    n += len(batch)
                    batch = []
            if batch:
                dst.writerecords(batch)
                n += len(batch)
    return n
