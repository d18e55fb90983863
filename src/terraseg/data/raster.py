"""Raster I/O: one place that reads and writes images and masks.

JPG/PNG (and other plain image formats) go through Pillow; TIFF/GeoTIFF (and anything else GDAL
reads) go through rasterio with windowed reads. Arrays are ``(H, W, bands)``. Every failure caused
by the file (missing, truncated, not an image) raises :class:`~terraseg.errors.DataError` naming it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terraseg._io import atomic_path
from terraseg.errors import DataError

#: Suffixes read with Pillow (no georeference).
PIL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
#: Suffixes read with rasterio.
RASTERIO_SUFFIXES = frozenset({".tif", ".tiff", ".vrt", ".img", ".jp2"})
#: Every suffix terraseg treats as a raster when listing a folder.
RASTER_SUFFIXES = PIL_SUFFIXES | RASTERIO_SUFFIXES


@dataclass(frozen=True)
class RasterInfo:
    """Header information of a raster (no pixels read)."""

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


def uses_pillow(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PIL_SUFFIXES


_PIL_MODE_INFO = {
    "1": (1, "uint8"), "L": (1, "uint8"), "P": (3, "uint8"), "LA": (2, "uint8"), "RGB": (3, "uint8"),
    "RGBA": (4, "uint8"), "CMYK": (4, "uint8"), "YCbCr": (3, "uint8"), "I;16": (1, "uint16"),
    "I;16B": (1, "uint16"), "I;16L": (1, "uint16"), "I": (1, "int32"), "F": (1, "float32"),
}


def _open_pil(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise DataError("file not found", path)
    Image.MAX_IMAGE_PIXELS = None  # satellite scenes are legitimately huge
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise DataError("not a readable image (unknown or corrupt format)", path) from None
    except OSError as exc:
        raise DataError(f"cannot open image ({exc})", path) from None


def _open_rasterio(path: Path):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    if not path.exists():
        raise DataError("file not found", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as exc:
        raise DataError(f"not a readable raster ({_short(exc)})", path) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def raster_info(path: str | Path) -> RasterInfo:
    """Width, height, band count, dtype, CRS, transform and nodata of a raster, without reading pixels."""
    path = Path(path)
    if uses_pillow(path):
        with _open_pil(path) as img:
            count, dtype = _PIL_MODE_INFO.get(img.mode, (len(img.getbands()), "uint8"))
            if img.mode == "P":  # read_raster expands palettes into colours
                count = 4 if "transparency" in img.info else 3
            return RasterInfo(str(path), img.width, img.height, count, dtype, driver=img.format or "")
    with _open_rasterio(path) as ds:
        transform = ds.transform if (ds.crs is not None or not ds.transform.is_identity) else None
        return RasterInfo(str(path), ds.width, ds.height, ds.count, ds.dtypes[0], ds.crs, transform,
                          ds.nodata, ds.driver)


def _window_bounds(window, width: int, height: int, path: Path) -> tuple[int, int, int, int]:
    col, row = int(round(window.col_off)), int(round(window.row_off))
    w, h = int(round(window.width)), int(round(window.height))
    if col < 0 or row < 0 or col + w > width or row + h > height or w <= 0 or h <= 0:
        raise DataError(f"window {col},{row} {w}x{h} lies outside the {width}x{height} image", path)
    return col, row, w, h


def read_raster(path: str | Path, window=None, *, mode: str | None = None,
                palette_indices: bool = False) -> np.ndarray:
    """Read a raster (or a ``rasterio.windows.Window`` of it) as ``(H, W, bands)``.

    Palette ("P") PNGs are expanded into their colours (RGB, or RGBA when the palette has
    transparency) because their index order differs from file to file; ``palette_indices=True``
    returns the raw palette indices instead (one band). ``mode`` (Pillow formats only) converts
    to a Pillow mode first, e.g. ``"RGB"``.
    """
    path = Path(path)
    if uses_pillow(path):
        img = _open_pil(path)
        try:
            with img:
                if img.mode == "P" and not palette_indices:
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                if mode is not None and img.mode != mode and not (palette_indices and img.mode == "P"):
                    img = img.convert(mode)
                elif img.mode in ("1", "CMYK", "YCbCr", "LA"):
                    img = img.convert("L" if img.mode in ("1", "LA") else "RGB")
                if window is not None:
                    col, row, w, h = _window_bounds(window, img.width, img.height, path)
                    img = img.crop((col, row, col + w, row + h))
                arr = np.asarray(img)
        except DataError:
            raise
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image, the file is corrupt or truncated ({_short(exc)})",
                            path) from None
        if arr.dtype == np.int32 and img.mode.startswith("I;16"):
            arr = arr.astype(np.uint16)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return np.ascontiguousarray(arr)

    from rasterio.errors import RasterioError

    with _open_rasterio(path) as ds:
        if window is not None:
            _window_bounds(window, ds.width, ds.height, path)
        try:
            arr = ds.read(window=window)
        except RasterioError as exc:
            raise DataError(f"cannot read raster, the file is corrupt or truncated ({_short(exc)})",
                            path) from None
    return np.ascontiguousarray(np.moveaxis(arr, 0, -1))


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
        fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None
        with atomic_path(path) as tmp:
            kwargs = {"quality": 95} if fmt == "JPEG" else \
                {"compress_level": int(png_compress_level)} if path.suffix.lower() == ".png" else {}
            img.save(tmp, format=fmt or Image.registered_extensions().get(path.suffix.lower()), **kwargs)
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
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": w, "height": h, "count": bands, "dtype": arr.dtype.name,
        "compress": compress,
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    if w >= 256 and h >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
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


def list_rasters(folder: str | Path) -> list[Path]:
    """Every raster file under ``folder`` (recursively), sorted; hidden files are skipped."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
