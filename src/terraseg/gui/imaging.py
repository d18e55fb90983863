"""Image helpers for the desktop app (no Qt here, so they are testable and reusable).

* ``open_image(path)`` reads the size, band count and georeferencing, and a fast downscaled preview:
  JPEG through Pillow's ``draft`` (decodes at 1/2, 1/4 or 1/8 scale), TIFF/GeoTIFF through
  rasterio's decimated ``out_shape`` read (which uses the file's overviews when it has them).
* ``read_full(image)`` reads the full-resolution array for prediction through
  ``terraseg.data.raster.read_raster`` (the same reader as the CLI).
* ``display_rgb(array)`` turns any band count / dtype into 8-bit RGB for the screen.

rasterio is optional: the standalone app ships without it (it would double the bundle size) and
reads JPEG/PNG/plain TIFF through Pillow; GeoTIFF features (georeferenced outputs, hectares) need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from terraseg.errors import DataError

PREVIEW_MAX_SIDE = 2048
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")


def have_rasterio() -> bool:
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class ImageDoc:
    """An opened image: where it is, its size, georeferencing, and the preview shown on screen."""

    path: Path
    width: int
    height: int
    bands: int
    dtype: str
    preview: np.ndarray  # (h, w, bands) raw values, downscaled
    crs: Any = None
    transform: Any = None
    nodata: Any = None
    meta: dict = field(default_factory=dict)

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    @property
    def preview_scale(self) -> float:
        """Full-resolution pixels per preview pixel (>= 1)."""
        return self.width / self.preview.shape[1]

    def pixel_area_m2(self) -> float | None:
        """Ground area of one full-resolution pixel in square metres, or ``None`` if unknown."""
        if not self.georeferenced:
            return None
        t = self.transform
        area = abs(t.a * t.e - t.b * t.d)
        crs = self.crs
        try:
            if crs.is_projected:
                factor = crs.linear_units_factor[1] if hasattr(crs, "linear_units_factor") else 1.0
                return area * factor * factor
            if crs.is_geographic:
                # degrees: scale by the metres per degree at the image centre latitude
                lat = t.f + t.e * self.height / 2 + t.d * self.width / 2
                m_per_deg = 111_320.0
                return area * m_per_deg * m_per_deg * math.cos(math.radians(lat))
        except Exception:  # pragma: no cover - exotic CRS
            return None
        return None


def _pillow_open(path: Path):
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # big aerial images are the point of this app
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"not a readable image ({_short(exc)})", path) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:160]


def _pil_to_array(img) -> np.ndarray:
    if img.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "1"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def open_image(path: str | Path, max_side: int = PREVIEW_MAX_SIDE) -> ImageDoc:
    """Open ``path`` for viewing: size, bands, georeferencing and a preview no wider than ``max_side``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("image file not found", path)
    if path.suffix.lower() in TIFF_SUFFIXES and have_rasterio():
        return _open_rasterio(path, max_side)
    return _open_pillow(path, max_side)


def _open_pillow(path: Path, max_side: int) -> ImageDoc:
    from PIL import Image

    img = _pillow_open(path)
    try:
        width, height = img.size
        scale = max(1.0, max(width, height) / max_side)
        if img.format == "JPEG" and scale > 1:
            img.draft(img.mode, (int(width / scale), int(height / scale)))  # fast DCT-domain downscale
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"image data is corrupt or truncated ({_short(exc)})", path) from None
        if max(img.size) > max_side:
            target = (max(1, round(width / scale)), max(1, round(height / scale)))
            img = img.resize(target, Image.Resampling.BILINEAR if img.mode not in ("I;16", "I", "F") else Image.Resampling.NEAREST)
        preview = _pil_to_array(img)
    finally:
        img.close()
    return ImageDoc(path=path, width=width, height=height, bands=preview.shape[2], dtype=str(preview.dtype),
                    preview=preview)


def _open_rasterio(path: Path, max_side: int) -> ImageDoc:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            width, height, count = src.width, src.height, src.count
            scale = max(1.0, max(width, height) / max_side)
            out_shape = (count, max(1, round(height / scale)), max(1, round(width / scale)))
            # a decimated read: GDAL picks the best overview level when the file has overviews
            data = src.read(out_shape=out_shape, resampling=Resampling.nearest)
            crs, transform, nodata = src.crs, src.transform, src.nodata
            dtype = src.dtypes[0]
    except RasterioError as exc:
        raise DataError(f"not a readable raster ({_short(exc)})", path) from None
    if transform is not None and transform.is_identity:
        transform = None
    return ImageDoc(path=path, width=width, height=height, bands=count, dtype=str(dtype),
                    preview=np.moveaxis(data, 0, -1), crs=crs, transform=transform, nodata=nodata)


def read_full(doc: ImageDoc) -> np.ndarray:
    """The full-resolution ``(H, W, bands)`` array, read with the same reader as the CLI."""
    suffix = doc.path.suffix.lower()
    if suffix in TIFF_SUFFIXES and not have_rasterio():
        img = _pillow_open(doc.path)
        try:
            img.load()
            return _pil_to_array(img)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"image data is corrupt or truncated ({_short(exc)})", doc.path) from None
        finally:
            img.close()
    from terraseg.data.raster import read_raster

    arr = read_raster(doc.path)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def display_rgb(array: np.ndarray, nodata: Any = None) -> np.ndarray:
    """8-bit RGB for the screen: first three bands (grey for one band), 2-98 % stretch for non-8-bit data."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] >= 3:
        a = a[:, :, :3]
    else:
        a = np.repeat(a[:, :, :1], 3, axis=2)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    f = a.astype(np.float32)
    valid = np.isfinite(f).all(axis=2)
    if nodata is not None:
        valid &= ~(a == nodata).all(axis=2)
    out = np.zeros(f.shape, dtype=np.uint8)
    if valid.any():
        for b in range(3):
            band = f[:, :, b]
            lo, hi = np.percentile(band[valid], (2, 98))
            if hi <= lo:
                hi = lo + 1
            out[:, :, b] = np.clip((band - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    out[~valid] = 0
    return out


def downscale_nearest(index: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D class raster to ``shape`` (h, w), for display."""
    h, w = shape
    if index.shape[:2] == (h, w):
        return index
    rows = (np.arange(h) * index.shape[0] / h).astype(np.int64)
    cols = (np.arange(w) * index.shape[1] / w).astype(np.int64)
    return index[rows[:, None], cols[None, :]]
