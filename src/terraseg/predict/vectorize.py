"""Polygons from a class raster: one feature per connected region, with its class.

Regions come from :func:`rasterio.features.shapes` (4-connected), in the raster's CRS (pixel
coordinates, y down, when the raster has no georeference). ``min_area`` removes small regions the
GIS way: the class raster is first sieved (:func:`rasterio.features.sieve`: regions smaller than
``min_area`` are merged into their largest neighbour, so no holes appear), then any polygon still
smaller (e.g. one surrounded by nodata) is dropped. ``min_area`` and the ``area`` column are ground
areas in m² in every CRS (:mod:`terraseg.predict.ground`: planar for projected CRSs of constant scale,
geodesic for degrees and Web Mercator-like projections), pixels when the raster has no CRS. The
sieve threshold in pixels is ``min_area`` over the scene's largest pixel area, so it only merges
regions that are surely smaller; the exact ground area then decides. ``simplify`` simplifies
outlines (shapely, topology preserving per polygon), in CRS units. Files are written with fiona as
GeoPackage or GeoJSON.

The class raster is read whole for vectorising (1 byte per pixel), so polygons are never cut at
block borders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from terraseg.errors import ConfigError

DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}
SUFFIXES = {"gpkg": ".gpkg", "geojson": ".geojson"}
#: ``last_change`` written into GeoPackages (GDAL's OGR_CURRENT_DATE): fixed, for reproducible files.
GPKG_DATE = "2000-01-01T00:00:00.000Z"
SCHEMA = {"geometry": "Polygon",
          "properties": {"class_id": "int", "class_name": "str", "area": "float", "pixels": "int"}}


def polygons(classes: np.ndarray, class_names, transform=None, min_area: float = 0.0,
             simplify: float = 0.0, ignore_index: int = 255, crs=None):
    """Yield ``(shapely Polygon, class_id, class_name, area, pixels)`` for every connected region.

    ``area`` is in m² when ``crs`` is given (pixels or CRS units² otherwise), as is ``min_area``.
    """
    import math

    from affine import Affine
    from rasterio.features import shapes, sieve
    from shapely.geometry import shape

    from terraseg.predict.ground import GroundArea

    classes = np.ascontiguousarray(classes, dtype=np.uint8)
    transform = transform if transform is not None else Affine.identity()
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)  # CRS units², counts pixels
    ground = GroundArea(transform, crs, classes.shape[1], classes.shape[0])
    largest = ground.largest_pixel_m2() if ground.georeferenced else pixel_area
    mask = classes < len(class_names)
    if min_area > 0 and largest:
        size = math.ceil(min_area / largest - 1e-9)
        if size > 1:
            classes = sieve(classes, size=size, mask=mask, connectivity=4)
            classes[~mask] = ignore_index
    batch = []

    def measured():
        areas = ground.polygon_areas([poly for poly, _ in batch])
        for (poly, cid), area in zip(batch, areas):
            if area < min_area:
                continue
            pixels = int(round(poly.area / pixel_area)) if pixel_area else 0
            if simplify > 0:
                poly = poly.simplify(simplify, preserve_topology=True)
                if poly.is_empty:
                    continue
            yield poly, cid, class_names[cid], float(area), pixels

    for geom, value in shapes(classes, mask=mask, connectivity=4, transform=transform):
        cid = int(value)
        if cid == ignore_index or cid >= len(class_names):
            continue
        batch.append((shape(geom), cid))
        if len(batch) >= 1000:
            yield from measured()
            batch = []
    yield from measured()


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
        # the layer name QGIS shows: GeoJSON takes it from the file name, which is the temporary's
        kwargs["layer"] = "classes" if fmt == "gpkg" else out_path.stem
        # GPKG stamps gpkg_contents.last_change with the wall clock; a fixed stamp makes the same regions
        # give the same bytes (a resumed or repeated run writes an identical file)
        with fiona.Env(OGR_CURRENT_DATE=GPKG_DATE), \
                fiona.open(tmp, "w", driver=DRIVERS[fmt], schema=SCHEMA, **kwargs) as dst:
            batch = []
            for poly, cid, name, area, px in polygons(classes, class_names, transform, min_area, simplify,
                                                      ignore_index, crs=crs):
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
