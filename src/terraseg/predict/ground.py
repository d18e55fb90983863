"""Ground area of pixels and polygons in square metres, in any CRS: the project's one rule.

* No CRS (or a CRS without a linear unit): no ground area (callers count pixels).
* Projected CRS whose areal scale factor is 1 within 0.2 % all over the scene and varies by less
  than 0.1 % over it (UTM inside its zone, any equal-area projection): the planar pixel area in the
  CRS's units, converted to metres (``|det(transform)| * unit²``). This is what GIS software shows
  for such a CRS and stays exactly as before.
* Geographic CRSs (degrees) and projections whose scale varies across the scene (Web Mercator:
  planar m² at 52° N are 2.64 x the ground; Lambert over a country; UTM far off its meridian):
  geodesic area on the CRS's own ellipsoid (pyproj ``Geod``). Each pixel row is taken as one
  polygon (its top and bottom edges densified, so edges follow the rows rather than cutting across
  as geodesics), and its area is shared by the row's pixels. For north-up rasters in geographic or
  (Web) Mercator CRSs every pixel of a row has the same area, so this is the exact area per pixel.

Polygons (``polygon_areas``) follow the same choice: planar area x unit² or the geodesic area of
the polygon, densified in the CRS before it is taken to longitude/latitude.

pyproj is imported inside the functions.
"""

from __future__ import annotations

import math

import numpy as np

# Planar areas are used only when the areal scale factor is this close to 1 everywhere in the scene
# (UTM inside its zone: 0.9992..1.002) and changes by less than SCALE_TOLERANCE over it.
UNIT_SCALE_TOLERANCE = 2e-3
SCALE_TOLERANCE = 1e-3
# Row edges are split into segments of at most this many degrees (of longitude or latitude) so that
# the geodesic between two points follows the row: the relative area error of one segment of
# d radians is about d² / 12 (3e-6 at 0.35°); at most MAX_SEGMENTS per edge.
SEGMENT_DEGREES = 0.35
MAX_SEGMENTS = 64


def _apply(transform, cols, rows):
    """Pixel (col, row) -> CRS (x, y) for arrays (spelled out: affine's ``*`` on arrays is deprecated)."""
    cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
    t = transform
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def _pyproj_crs(crs):
    from pyproj import CRS

    return CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)


def _metres_per_unit(crs) -> float | None:
    try:
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else None
        return float(unit) if unit else None
    except Exception:  # exotic CRS without axis information
        return None


def _scale_varies(pcrs, transform, width: int, height: int) -> bool:
    """Are planar areas not ground areas here? True when the areal scale factor is away from 1
    (Web Mercator: 2.64 at 52° N, however small the scene) or changes over the scene."""
    from pyproj import Proj, Transformer

    cols = np.array([0.0, width / 2, width] * 3)
    rows = np.repeat([0.0, height / 2, height], 3)
    xs, ys = _apply(transform, cols, rows)
    try:
        to_lonlat = Transformer.from_crs(pcrs, pcrs.geodetic_crs, always_xy=True)
        lon, lat = to_lonlat.transform(xs, ys)
        scale = np.asarray(Proj(pcrs).get_factors(lon, lat, errcheck=True).areal_scale, float)
    except Exception:  # projection without scale factors: measure on the ellipsoid
        return True
    if not np.all(np.isfinite(scale)) or scale.min() <= 0:
        return True
    return bool(np.abs(scale - 1.0).max() > UNIT_SCALE_TOLERANCE or scale.max() / scale.min() - 1.0 > SCALE_TOLERANCE)


class GroundArea:
    """Ground area (m²) of the pixels and regions of one georeferenced scene.

    ``method`` is ``"planar"`` (constant ``pixel_m2``), ``"geodesic"`` or ``None`` (no ground
    area: no CRS, or a CRS without a linear unit).
    """

    def __init__(self, transform, crs, width: int, height: int):
        self.transform = transform
        self.width, self.height = int(width), int(height)
        self.method: str | None = None
        self.pixel_m2: float | None = None
        self.unit_m: float | None = None
        self._crs = None
        self._lonlat = None
        self._points: int | None = None
        if crs is None or transform is None:
            return
        pcrs = _pyproj_crs(crs)
        self._crs = pcrs
        planar = abs(transform.a * transform.e - transform.b * transform.d)
        if pcrs.is_geographic or (pcrs.is_projected and _scale_varies(pcrs, transform, self.width, self.height)):
            self.method = "geodesic"
            return
        unit = _metres_per_unit(pcrs)
        if unit is None:
            return
        self.method, self.unit_m, self.pixel_m2 = "planar", unit, planar * unit * unit

    @property
    def georeferenced(self) -> bool:
        return self.method is not None

    # ---------------------------------------------------------------------------------------- geodesic

    def _geod(self):
        from pyproj import Geod

        return self._crs.get_geod() or Geod(ellps="WGS84")

    def _to_lonlat(self, x, y):
        if self._lonlat is None:
            from pyproj import Transformer

            self._lonlat = Transformer.from_crs(self._crs, self._crs.geodetic_crs, always_xy=True)
        return self._lonlat.transform(x, y)

    def _edge_points(self) -> int:
        """Points per row edge: enough segments for the widest row (top, middle, bottom)."""
        if self._points is None:
            rows = np.array([0.0, self.height / 2, self.height] * 2)
            cols = np.repeat([0.0, float(self.width)], 3)
            lon, lat = self._to_lonlat(*_apply(self.transform, cols, rows))
            span = max(np.abs(np.subtract(lon[3:], lon[:3])).max(), np.abs(np.subtract(lat[3:], lat[:3])).max())
            segments = 1 if not np.isfinite(span) else int(np.clip(np.ceil(span / SEGMENT_DEGREES), 1, MAX_SEGMENTS))
            self._points = segments + 1
        return self._points

    def _geodesic_rows(self, top: int, rows: int) -> np.ndarray:
        geod = self._geod()
        points = self._edge_points()
        edge = np.linspace(0.0, self.width, points)
        r = np.arange(top, top + rows, dtype=np.float64)[:, None]
        # ring per row: top edge left -> right, bottom edge right -> left
        cols = np.concatenate([edge, edge[::-1]])[None, :].repeat(rows, 0)
        rr = np.concatenate([np.broadcast_to(r, (rows, points)), np.broadcast_to(r + 1, (rows, points))],
                            axis=1)
        xs, ys = _apply(self.transform, cols.ravel(), rr.ravel())
        lon, lat = self._to_lonlat(xs, ys)
        lon = np.asarray(lon).reshape(rows, -1)
        lat = np.clip(np.asarray(lat), -90.0, 90.0).reshape(rows, -1)
        out = np.empty(rows, np.float64)
        for i in range(rows):
            area, _ = geod.polygon_area_perimeter(lon[i], lat[i])
            out[i] = abs(area)
        return out / max(self.width, 1)

    # ---------------------------------------------------------------------------------------- public

    def row_areas(self, top: int, rows: int) -> np.ndarray | None:
        """m² of one pixel in each of ``rows`` rows starting at ``top`` (``None`` when not georeferenced)."""
        if self.method is None:
            return None
        if self.method == "planar":
            return np.full(rows, self.pixel_m2, np.float64)
        return self._geodesic_rows(top, rows)

    def largest_pixel_m2(self) -> float | None:
        """The largest pixel area in the scene (m²): a pixel count below ``area / this`` is surely smaller."""
        if self.method is None:
            return None
        if self.method == "planar":
            return self.pixel_m2
        # Pixel area is monotonic in latitude for the projections met in practice: check rows
        # spread over the scene and both ends.
        rows = np.unique(np.linspace(0, max(self.height - 1, 0), min(self.height, 33)).astype(int))
        return float(max(self._geodesic_rows(int(r), 1)[0] for r in rows))

    def mean_pixel_m2(self) -> float | None:
        """Ground area of the whole scene divided by its pixel count (m²)."""
        if self.method is None:
            return None
        if self.method == "planar":
            return self.pixel_m2
        return float(self._geodesic_rows(0, self.height).mean()) if self.height else 0.0

    def polygon_areas(self, geoms) -> np.ndarray:
        """Ground areas (m²) of shapely polygons in the scene's CRS; planar CRS units² when not georeferenced."""
        import shapely

        geoms = np.asarray(list(geoms), dtype=object)
        if geoms.size == 0:
            return np.zeros(0, np.float64)
        if self.method != "geodesic":
            planar = shapely.area(geoms).astype(np.float64)
            return planar * self.unit_m ** 2 if self.method == "planar" else planar
        t = self.transform
        step = max(abs(t.a), abs(t.e), abs(t.b), abs(t.d)) * 16  # densify: edges follow the pixel rows/columns
        dense = shapely.segmentize(geoms, step)

        def lonlat(xy):
            lon, lat = self._to_lonlat(xy[:, 0], xy[:, 1])
            return np.column_stack([lon, np.clip(lat, -90.0, 90.0)])

        geod = self._geod()
        out = np.empty(len(dense), np.float64)
        for i, poly in enumerate(shapely.transform(dense, lonlat)):
            area = abs(geod.polygon_area_perimeter(*poly.exterior.xy)[0])
            for hole in poly.interiors:
                area -= abs(geod.polygon_area_perimeter(*hole.xy)[0])
            out[i] = area
        return out


def ground_resolution(transform, crs, width: int, height: int) -> float | None:
    """Metres per pixel of a scene: the square root of its mean ground pixel area (``None`` without
    ground units). Used for the bundle's training resolution and the scene's, so they compare."""
    mean = GroundArea(transform, crs, width, height).mean_pixel_m2()
    return math.sqrt(mean) if mean else None


def pixel_areas(transform, crs, width: int, height: int, rows=None) -> np.ndarray | None:
    """m² of one pixel in each row of a ``width`` x ``height`` scene (all rows, or the row indices ``rows``).

    ``None`` when the scene has no ground area (no CRS). This is the one rule for ground area
    in terraseg: reports, polygons, ``--min-area``, the overlay legend and the desktop app use it.
    """
    ground = GroundArea(transform, crs, width, height)
    if ground.method is None:
        return None
    rows = np.arange(height) if rows is None else np.asarray(rows, int)
    if ground.method == "planar":
        return np.full(len(rows), ground.pixel_m2, np.float64)
    return np.array([ground.row_areas(int(r), 1)[0] for r in rows], np.float64)
