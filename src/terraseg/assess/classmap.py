"""Class maps on disk: header, class names and colours, strips of class indices, ground area per class.

A class map is a one-band integer raster of class indices. Its class names and colours are read
back the way terraseg writes them (:mod:`terraseg.predict.outputs`): the ``CLASSES`` / ``COLORS``
tags of the GeoTIFF first, then the GDAL category names of the ``<raster>.aux.xml`` sidecar. A map
without either gets the names ``"0"``, ``"1"``, ... of the values it holds.

Everything is streamed in full-width strips of :data:`STRIP_ROWS` rows (raster order), so a map of
any size is read with a few megabytes. Nodata pixels and values without a class become
:data:`OTHER` (255) in the strips. Ground areas come from the project's one rule
(:class:`terraseg.predict.ground.GroundArea`, through :class:`terraseg.predict.areas.AreaAccumulator`).

rasterio is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from terraseg.errors import DataError

#: Rows per strip: a 20,000 px wide map is read 5 MB at a time.
STRIP_ROWS = 256
#: The strip value of nodata and of pixels without a class (as in terraseg's class rasters).
OTHER = 255
#: At most this many classes (index 255 is nodata).
MAX_CLASSES = 255


@dataclass
class ClassMap:
    """Header of a class map: grid, CRS, nodata, and class names / colours (``None`` when the file has none)."""

    path: str
    width: int
    height: int
    crs: Any
    transform: Any
    nodata: float | None
    names: list[str] | None = None
    colors: list[tuple[int, int, int]] | None = None
    names_from: str = "values"  # "tags", "aux.xml" or "values"
    notes: list[str] = field(default_factory=list)

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    def grid(self) -> tuple:
        """What decides whether two maps share pixels: size, transform and CRS."""
        return (self.width, self.height, tuple(self.transform) if self.transform is not None else None,
                self.crs.to_wkt() if self.crs is not None else None)


def _names_from_tags(tags: dict) -> tuple[list[str] | None, list | None]:
    try:
        names = json.loads(tags["CLASSES"]) if "CLASSES" in tags else None
        colors = json.loads(tags["COLORS"]) if "COLORS" in tags else None
    except (ValueError, TypeError):
        return None, None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return None, None
    if not (isinstance(colors, list) and len(colors) == len(names)
            and all(isinstance(c, list) and len(c) >= 3 for c in colors)):
        colors = None
    return names, [tuple(int(v) for v in c[:3]) for c in colors] if colors else None


def _names_from_aux(path: Path) -> list[str] | None:
    """GDAL category names of band 1 in ``<raster>.aux.xml`` (written by terraseg or by GDAL itself)."""
    import xml.etree.ElementTree as ET

    aux = path.with_name(path.name + ".aux.xml")
    if not aux.is_file():
        return None
    try:
        root = ET.parse(aux).getroot()
    except (ET.ParseError, OSError):
        return None
    for band in root.iter("PAMRasterBand"):
        if band.get("band", "1") != "1":
            continue
        cats = band.find("CategoryNames")
        if cats is not None:
            names = [(c.text or "").strip() for c in cats.findall("Category")]
            while names and not names[-1]:
                names.pop()
            return names or None
    return None


def _colors_from_table(ds, n: int) -> list[tuple[int, int, int]] | None:
    try:
        table = ds.colormap(1)
    except ValueError:  # no colour table
        return None
    return [tuple(int(v) for v in table.get(i, (0, 0, 0))[:3]) for i in range(n)]


def open_class_map(path: str | Path) -> ClassMap:
    """Read the header and class names of the class map ``path`` (no pixels are read)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path)
    try:
        with rasterio.open(path) as ds:
            if ds.count < 1:
                raise DataError("has no bands", path)
            dtype = np.dtype(ds.dtypes[0])
            if dtype.kind not in "iub":
                raise DataError(f"is not a class map: its pixels are {dtype.name}, not class indices (integers)", path)
            names, colors = _names_from_tags(ds.tags())
            source = "tags" if names else "values"
            if names is None:
                names = _names_from_aux(path)
                source = "aux.xml" if names else "values"
            if names is not None and len(names) > MAX_CLASSES:
                raise DataError(f"has {len(names)} classes; at most {MAX_CLASSES} are supported", path)
            if names is not None and colors is None:
                colors = _colors_from_table(ds, len(names))
            crs = ds.crs if ds.crs else None
            transform = ds.transform if crs is not None or not ds.transform.is_identity else None
            return ClassMap(str(path), ds.width, ds.height, crs, transform, ds.nodata, names, colors, source)
    except RasterioIOError as exc:
        from terraseg.errors import first_line

        raise DataError(f"cannot be read as a raster ({first_line(exc)})", path) from None


def strips(height: int, rows: int = STRIP_ROWS) -> Iterator[tuple[int, int]]:
    """``(top, rows)`` of consecutive full-width strips covering ``height`` rows."""
    for top in range(0, height, rows):
        yield top, min(rows, height - top)


def to_classes(values: np.ndarray, nodata: float | None, num_classes: int) -> tuple[np.ndarray, int]:
    """Pixel values -> uint8 class indices (:data:`OTHER` on nodata and on values without a class).

    Returns the indices and the number of pixels that are not nodata but hold no class.
    """
    values = np.asarray(values)
    bad = (values < 0) | (values >= num_classes)
    nod = values == nodata if nodata is not None else np.zeros(values.shape, bool)
    unnamed = int(np.count_nonzero(bad & ~nod))
    out = np.where(bad | nod, OTHER, values).astype(np.uint8)
    return out, unnamed


@contextlib.contextmanager
def opened(path: str | Path, like: ClassMap | None = None) -> Iterator[tuple[Any, bool]]:
    """``(dataset, resampled)``: the raster ``path``, on the grid of ``like`` when given and different.

    A raster on another grid is read through a ``WarpedVRT`` (nearest neighbour, which keeps class
    indices) so that its pixels line up with ``like``'s; ``resampled`` says so.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError
    from rasterio.vrt import WarpedVRT

    from terraseg.data.source import gdal_env

    with gdal_env():
        try:
            ds = rasterio.open(path)
        except RasterioIOError as exc:
            from terraseg.errors import first_line

            raise DataError(f"cannot be read as a raster ({first_line(exc)})", path) from None
        with ds:
            same = like is None or (ds.width, ds.height, tuple(ds.transform), ds.crs.to_wkt() if ds.crs else None) \
                == like.grid()
            if same:
                yield ds, False
                return
            if like.crs is None or not ds.crs:
                raise DataError(f"is on another grid than {like.path} ({ds.width}x{ds.height} px) and one of them "
                                "has no CRS, so it cannot be resampled onto it", path)
            nodata = ds.nodata if ds.nodata is not None else OTHER
            with WarpedVRT(ds, crs=like.crs, transform=like.transform, width=like.width, height=like.height,
                           resampling=Resampling.nearest, nodata=nodata) as vrt:
                yield vrt, True


def read_strip(ds, top: int, rows: int, nodata: float | None, num_classes: int) -> tuple[np.ndarray, int]:
    """Class indices of rows ``top:top+rows`` (uint8, :data:`OTHER` where there is no class) and the
    count of pixels that hold a value without a class."""
    from rasterio.windows import Window

    values = ds.read(1, window=Window(0, top, ds.width, rows))
    return to_classes(values, nodata, num_classes)


@dataclass
class ClassAreas:
    """Pixels and ground area (m², ``None`` without a CRS) of every class of a map."""

    names: list[str]
    colors: list[tuple[int, int, int]]
    pixels: np.ndarray  # int64 (K,)
    m2: np.ndarray | None  # float64 (K,)
    area_method: str | None  # "planar", "geodesic" or None
    nodata_pixels: int
    unnamed_pixels: int


def class_areas(cmap: ClassMap, progress: bool = False, description: str = "measuring") -> ClassAreas:
    """Stream the map once: pixels and ground m² per class (planar or geodesic, the project's one rule).

    A map without class names gets the names of the values it holds (``"0"`` .. the largest).
    """
    from terraseg._progress import track
    from terraseg.data.palette import default_colors
    from terraseg.predict.areas import AreaAccumulator

    k = len(cmap.names) if cmap.names is not None else MAX_CLASSES
    acc = AreaAccumulator(k, transform=cmap.transform, crs=cmap.crs, width=cmap.width, height=cmap.height)
    unnamed = 0
    parts = list(strips(cmap.height))
    with opened(cmap.path) as (ds, _):
        for top, rows in (track(parts, description=description) if progress else parts):
            classes, bad = read_strip(ds, top, rows, cmap.nodata, k)
            unnamed += bad
            acc.add(top, classes)
    pixels, m2 = acc.pixels.copy(), (acc.m2.copy() if acc.m2 is not None else None)
    names, colors = cmap.names, cmap.colors
    if names is None:
        present = np.flatnonzero(pixels)
        k = int(present[-1]) + 1 if present.size else 0
        pixels, m2 = pixels[:k], (m2[:k] if m2 is not None else None)
        names = [str(i) for i in range(k)]
    if colors is None or len(colors) != len(names):
        colors = default_colors(len(names))
    method = acc.ground.method if acc.ground is not None and m2 is not None else None
    return ClassAreas(list(names), [tuple(c) for c in colors], pixels, m2, method, int(acc.other) - unnamed, unnamed)
