"""Raster I/O helpers: whole-raster reads and header info over the source contract, and writing.

Reading goes through :mod:`terraseg.data.source` (the one reader); this module adds the
convenience of reading a whole file (``read_raster``), its header (``raster_info``), writing
images and masks atomically (``write_raster``) and listing the rasters of a folder.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terraseg._io import atomic_path
from terraseg.data.source import PIL_SUFFIXES, RASTER_SUFFIXES, RASTERIO_SUFFIXES, open_source, uses_pillow
from terraseg.errors import DataError

__all__ = ["RasterInfo", "raster_info", "read_raster", "write_raster", "list_rasters", "is_raster_file", "uses_pillow",
           "PIL_SUFFIXES", "RASTERIO_SUFFIXES", "RASTER_SUFFIXES"]

@dataclass(frozen=True)
class RasterInfo:
    """Header information of a raster (no pixels read). ``count`` is the model band count (alpha
    excluded: an alpha band is the validity mask, see :mod:`terraseg.data.source`)."""

    path: str
    width: int
    height: int
    count: int
    dtype: str
    crs: Any = None  # rasterio CRS or None for plain images
    transform: Any = None  # affine.Affine or None for plain images
    nodata: float | None = None
    driver: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None


#: Tile size of the GeoTIFFs terraseg writes.
BLOCK = 256
# Pillow's format of each picture suffix, named when saving: asking Pillow for its suffix table loads
# every one of its ~50 image plugins (60 ms of a 4 s prediction)
PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".webp": "WEBP"}


def geotiff_profile(width: int, height: int, count: int, dtype: str, crs=None, transform=None,
                    nodata=None) -> dict:
    """The creation options of every GeoTIFF terraseg writes: tiled, fast deflate, BigTIFF when needed."""
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": dtype,
               "compress": "deflate", "zlevel": 1, "BIGTIFF": "IF_SAFER", "tiled": True, "blockxsize": BLOCK,
               "blockysize": BLOCK}
    if dtype == "float32":
        profile["predictor"] = 3
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    return profile


def raster_info(path: str | Path) -> RasterInfo:
    """Width, height, band count, dtype, CRS, transform and nodata of a raster, without reading pixels."""
    with open_source(path) as src:
        driver = getattr(getattr(src, "ds", None), "driver", "") or getattr(getattr(src, "_img", None), "format", "")
        return RasterInfo(str(path), src.width, src.height, src.count, src.dtype, src.crs, src.transform,
                          src.nodata, driver or "")


def read_raster(path: str | Path, window=None, *, bands=None, palette_indices: bool = False) -> np.ndarray:
    """Read a raster (or a ``rasterio.windows.Window`` of it) as ``(H, W, bands)`` through the source
    contract (:func:`terraseg.data.source.open_source`): alpha is left out, palettes are expanded
    into colours unless ``palette_indices=True`` (index masks), ``bands`` selects 1-based bands."""
    with open_source(path, bands=bands, palette_indices=palette_indices) as src:
        return np.ascontiguousarray(src.read(window))


def _as_hwc(array: np.ndarray, path: Path) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise DataError(f"cannot write an array of shape {array.shape}, expected (H, W) or (H, W, bands)",
                        path)
    return array


def write_raster(path: str | Path, array: np.ndarray, like: str | Path | RasterInfo | None = None, *,
                 window=None, crs=None, transform=None, nodata: float | None = None,
                 colormap: dict[int, tuple[int, int, int]] | None = None, compress: str = "deflate",
                 png_compress_level: int = 6) -> Path:
    """Write ``array`` (``(H, W)`` or ``(H, W, bands)``) atomically.

    ``.tif/.tiff`` are written as GeoTIFF with rasterio. The georeference comes from ``crs`` and
    ``transform`` when given, else from ``like`` (a raster path or :class:`RasterInfo`), shifted to
    ``window`` when one is given (the array then covers that window of ``like``). Other suffixes
    (PNG, JPG) go through Pillow; ``colormap`` (index -> RGB) makes a palette PNG / GeoTIFF colour
    table for single-band uint8 masks. ``png_compress_level`` (0-9) trades PNG size for speed.
    """
    path = Path(path)
    arr = _as_hwc(array, path)
    h, w, bands = arr.shape
    if not uses_pillow(path) and path.suffix.lower() not in (".tif", ".tiff"):
        raise DataError("unsupported output format, use .tif, .tiff, .png or .jpg", path)

    if uses_pillow(path):
        from PIL import Image

        if arr.dtype == np.uint8:
            img_mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(bands)
        elif arr.dtype == np.uint16 and bands == 1:
            img_mode = "I;16"
        else:
            img_mode = None
        if img_mode is None:
            raise DataError(f"{path.suffix} cannot hold {bands} band(s) of {arr.dtype}; write a .tif instead",
                            path)
        data = arr[:, :, 0] if bands == 1 else arr
        img = Image.fromarray(np.ascontiguousarray(data), mode=img_mode) if img_mode == "I;16" \
            else Image.fromarray(np.ascontiguousarray(data))
        if colormap is not None and img_mode == "L":
            img = img.convert("P")
            pal = np.zeros((256, 3), np.uint8)
            for k, c in colormap.items():
                pal[int(k)] = c[:3]
            img.putpalette(pal.reshape(-1).tolist())
        fmt = PIL_FORMATS[path.suffix.lower()]
        with atomic_path(path) as tmp:
            kwargs = {"quality": 95} if fmt == "JPEG" else \
                {"compress_level": int(png_compress_level)} if path.suffix.lower() == ".png" else {}
            img.save(tmp, format=fmt, **kwargs)
        return path

    import rasterio
    from rasterio.windows import transform as window_transform

    if (crs is None or transform is None) and like is not None:
        info = like if isinstance(like, RasterInfo) else raster_info(like)
        if crs is None:
            crs = info.crs
        if transform is None and info.transform is not None:
            transform = window_transform(window, info.transform) if window is not None else info.transform
        if nodata is None and info.nodata is not None and _fits(info.nodata, arr.dtype):
            nodata = info.nodata
    profile = geotiff_profile(w, h, bands, arr.dtype.name, crs, transform, nodata)
    profile["compress"] = compress
    if w < BLOCK or h < BLOCK:  # a small raster is one strip, not a padded tile
        profile.update(tiled=False)
        del profile["blockxsize"], profile["blockysize"]
    from rasterio.errors import NotGeoreferencedWarning

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.moveaxis(arr, -1, 0))
            if colormap is not None and bands == 1 and arr.dtype == np.uint8:
                dst.write_colormap(1, {int(k): tuple(int(v) for v in c[:3]) + (255,)
                                       for k, c in colormap.items()})
    return path


def _fits(value: float, dtype: np.dtype) -> bool:
    if np.dtype(dtype).kind == "f":
        return True
    if not float(value).is_integer():
        return False
    lim = np.iinfo(dtype)
    return lim.min <= value <= lim.max


def is_raster_file(path: str | Path) -> bool:
    """A visible file whose suffix terraseg reads as a raster."""
    p = Path(path)
    return p.is_file() and p.suffix.lower() in RASTER_SUFFIXES and not p.name.startswith(".")


def list_rasters(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Every raster file in ``folder`` (and below it when ``recursive``), sorted; hidden files and
    folders are skipped."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if is_raster_file(p)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
