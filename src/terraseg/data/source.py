"""The source contract: one way to open any input and read windows of pixels with a validity mask.

Every reader in terraseg goes through :func:`open_source`: the training data set, ``data
inspect/stats/chip``, prediction, evaluation, the desktop app's preview and int8 calibration. A
:class:`Source` gives, for any window:

* pixels ``(h, w, bands)`` in the file's data type, the model bands only (``bands=[4, 3, 2]`` selects
  1-based file bands as GDAL numbers them; an alpha band is never a model band, it is the mask);
* ``valid`` ``(h, w)`` bool, one rule everywhere: a pixel is invalid when GDAL's dataset mask says so
  (declared nodata in every band, an internal mask, alpha = 0), when its alpha is 0 (plain images),
  when it equals the declared nodata in every band, or when any band is NaN or ±inf.

Plain pictures (JPG, PNG, ...) are decoded whole by Pillow once (they cannot be read by windows);
everything else goes to rasterio/GDAL and is read by windows, including URLs and GDAL virtual paths
(``https://``, ``/vsicurl/``, ``/vsis3/`` ...), which are passed to GDAL untouched. In-memory arrays
are sources too (:class:`ArraySource`).

Size guard: a picture whose header claims more than ``max_pixels`` pixels (default
:data:`DEFAULT_MAX_PIXELS`, or ``$TERRASEG_MAX_PIXELS``) is refused before anything is allocated, and
so is a whole-image read of a larger GDAL raster; windowed reads of huge GeoTIFFs still stream.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from terraseg.errors import DataError, first_line

#: Suffixes decoded by Pillow (no georeference, no windows).
PIL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
#: Suffixes read with rasterio.
RASTERIO_SUFFIXES = frozenset({".tif", ".tiff", ".vrt", ".img", ".jp2"})
#: Every suffix terraseg treats as a raster when listing a folder.
RASTER_SUFFIXES = PIL_SUFFIXES | RASTERIO_SUFFIXES
#: Default limit of pixels an image may claim before it is decoded whole (about 31,600² px).
DEFAULT_MAX_PIXELS = 1_000_000_000
MAX_PIXELS_ENV = "TERRASEG_MAX_PIXELS"
_REMOTE_PREFIXES = ("http://", "https://", "ftp://", "s3://", "gs://", "/vsi")


#: GDAL's block cache while terraseg streams a raster. rasterio passes GDAL_CACHEMAX to GDAL as bytes,
#: and a cache smaller than one row of blocks makes every decimated or windowed read decode blocks again.
GDAL_CACHE_BYTES = 64 * 2**20


def gdal_env(**options):
    """A ``rasterio.Env`` with terraseg's GDAL settings (bounded block cache) plus ``options``."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, **options)


def max_pixels(limit: int | None = None) -> int:
    """The pixel limit in force: ``limit``, else ``$TERRASEG_MAX_PIXELS``, else the default."""
    if limit is not None:
        return int(limit)
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw:
        try:
            return int(float(raw))
        except ValueError:
            raise DataError(f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels") from None
    return DEFAULT_MAX_PIXELS


def is_remote(path: str | os.PathLike) -> bool:
    """URLs and GDAL virtual file system paths: handed to GDAL as they are, never to ``Path``."""
    return str(path).startswith(_REMOTE_PREFIXES)


def uses_pillow(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a plain picture decoded whole by Pillow."""
    return not is_remote(path) and Path(path).suffix.lower() in PIL_SUFFIXES


def check_size(width: int, height: int, path, limit: int | None = None) -> None:
    """Refuse an image claiming more pixels than the limit, before any pixel is allocated."""
    limit = max_pixels(limit)
    if int(width) * int(height) > limit:
        raise DataError(f"image claims {width}×{height} px, over the limit of {limit:,} px; raise it with "
                        f"{MAX_PIXELS_ENV}=<pixels> if the file is genuine", path)


def complex_problem(band: int, dtype: str) -> str:
    """Complex pixels (SAR SLC) have no one real value to feed a model: casting would drop the imaginary
    part silently, so they are refused."""
    return (f"band {band} is complex-valued ({dtype}); terraseg reads real-valued pixels: make a real raster "
            "first (the amplitude, or the real part with gdal_translate -ot Float32)")


def parse_bands(bands) -> list[int] | None:
    """``"4,3,2"``, ``[4, 3, 2]`` or ``None`` -> 1-based band numbers (``None``: all model bands)."""
    if bands is None or bands == "" or bands == []:
        return None
    if isinstance(bands, str):
        try:
            bands = [int(b) for b in bands.replace(" ", "").split(",") if b]
        except ValueError:
            raise DataError(f"band selection {bands!r} is not a list of band numbers like 4,3,2") from None
    out = [int(b) for b in bands]
    if any(b < 1 for b in out):
        raise DataError(f"band numbers start at 1 (as in GDAL), got {out}")
    return out


def check_band_count(source: "Source", expected: int, what: str = "the model") -> None:
    """One band-count check for the whole project, naming the file's bands and the selection."""
    if source.count == expected:
        return
    chosen = f" (selected bands {','.join(map(str, source.band_indexes))})" if source.selected else ""
    hint = "" if source.selected or source.file_bands < expected else \
        f"; choose {expected} of them with --bands (e.g. --bands {','.join(map(str, range(1, expected + 1)))})"
    raise DataError(f"image has {source.file_bands} band{'s' if source.file_bands != 1 else ''}{chosen} but "
                    f"{what} expects {expected}{hint}", source.path)


class Source:
    """Windows of pixels plus validity of one raster (see the module docstring).

    Attributes: ``path`` (for messages), ``width``, ``height``, ``count`` (bands delivered),
    ``file_bands`` (bands in the file, alpha excluded), ``band_indexes`` (1-based file bands
    delivered), ``selected`` (a selection was asked for), ``dtype``, ``crs``, ``transform`` (``None``
    when not georeferenced), ``nodata``.
    """

    path: Any = None
    width: int
    height: int
    count: int
    file_bands: int
    band_indexes: list[int]
    selected: bool = False
    dtype: str
    crs: Any = None
    transform: Any = None
    nodata: float | None = None

    # ---- to implement
    def _read(self, row: int, col: int, h: int, w: int) -> np.ndarray:  # (h, w, count)
        raise NotImplementedError

    def _mask(self, row: int, col: int, h: int, w: int) -> np.ndarray | None:  # external validity
        return None

    def preview(self, max_side: int) -> tuple[np.ndarray, np.ndarray | None]:
        """A downsampled ``(pixels, valid)`` no larger than ``max_side`` on a side (for display)."""
        pixels, valid = self.read_masked()
        return _decimate(pixels, valid, max_side)

    def close(self) -> None:
        pass

    # ---- the contract
    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def has_nodata(self) -> bool:
        """Whether any pixel can be invalid (a mask, alpha, declared nodata or floating-point data)."""
        return True

    def _bounds(self, window) -> tuple[int, int, int, int]:
        if window is None:
            return 0, 0, self.height, self.width
        col, row = int(round(window.col_off)), int(round(window.row_off))
        w, h = int(round(window.width)), int(round(window.height))
        if col < 0 or row < 0 or col + w > self.width or row + h > self.height or w <= 0 or h <= 0:
            raise DataError(f"window {col},{row} {w}x{h} lies outside the {self.width}x{self.height} image",
                            self.path)
        return row, col, h, w

    def read(self, window=None) -> np.ndarray:
        """Pixels ``(h, w, count)`` of ``window`` (a ``rasterio.windows.Window``; ``None``: all)."""
        row, col, h, w = self._bounds(window)
        return self._read(row, col, h, w)

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        return self._read(top, 0, bottom - top, self.width)

    def valid(self, window=None, pixels: np.ndarray | None = None) -> np.ndarray | None:
        """Validity ``(h, w)`` bool of ``window`` (``None`` when every pixel is valid)."""
        row, col, h, w = self._bounds(window)
        return self._valid(row, col, h, w, pixels)

    def valid_rows(self, top: int, bottom: int, pixels: np.ndarray | None = None) -> np.ndarray | None:
        return self._valid(top, 0, bottom - top, self.width, pixels)

    def read_masked(self, window=None) -> tuple[np.ndarray, np.ndarray | None]:
        row, col, h, w = self._bounds(window)
        pixels = self._read(row, col, h, w)
        return pixels, self._valid(row, col, h, w, pixels)

    def _valid(self, row, col, h, w, pixels) -> np.ndarray | None:
        valid = self._mask(row, col, h, w)
        if pixels is None and (self.nodata is not None or np.dtype(self.dtype).kind == "f"):
            pixels = self._read(row, col, h, w)
        if pixels is not None:
            bad = invalid_pixels(pixels, self.nodata)
            if bad is not None:
                valid = ~bad if valid is None else valid & ~bad
        return valid

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.width}x{self.height}, bands "
                f"{self.band_indexes}, {self.dtype})")


def invalid_pixels(pixels: np.ndarray, nodata: float | None = None) -> np.ndarray | None:
    """Pixels that are nodata in every band, or non-finite in any band (``None``: none can be)."""
    bad = None
    if pixels.dtype.kind == "f":
        bad = ~np.isfinite(pixels).all(axis=2)
    if nodata is not None:
        if isinstance(nodata, float) and math.isnan(nodata):
            equal = np.isnan(pixels).all(axis=2) if pixels.dtype.kind == "f" else None
        else:
            equal = (pixels == nodata).all(axis=2)
        if equal is not None:
            bad = equal if bad is None else bad | equal
    return bad


def _select(available: Sequence[int], bands: list[int] | None, file_bands: int, path) -> tuple[list[int], bool]:
    if bands is None:
        return list(available), False
    if max(bands) > file_bands:
        raise DataError(f"band selection {','.join(map(str, bands))} asks for band {max(bands)} but the image "
                        f"has {file_bands} band{'s' if file_bands != 1 else ''}", path)
    return [available[b - 1] for b in bands], True


def _decimate(pixels: np.ndarray, valid: np.ndarray | None, max_side: int):
    h, w = pixels.shape[:2]
    step = max(1, math.ceil(max(h, w) / max_side))
    if step == 1:
        return pixels, valid
    return pixels[::step, ::step], None if valid is None else valid[::step, ::step]


# --------------------------------------------------------------------------------------------------
# in-memory arrays


class ArraySource(Source):
    """An in-memory image. ``layout``: ``"hwc"`` (numpy/Pillow) or ``"chw"`` (``rasterio.read()``)."""

    def __init__(self, array: np.ndarray, nodata=None, *, layout: str = "hwc", bands=None, path=None,
                 crs=None, transform=None, valid: np.ndarray | None = None):
        array = np.asarray(array)
        if layout not in ("hwc", "chw"):
            raise DataError(f"unknown array layout {layout!r}; choose hwc or chw")
        if array.ndim == 2:
            array = array[:, :, None]
        elif array.ndim == 3 and layout == "chw":
            array = np.moveaxis(array, 0, -1)
        if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
            raise DataError(f"expected an image array ({'bands, H, W' if layout == 'chw' else 'H, W, bands'}), "
                            f"got shape {array.shape}", path)
        self.layout = layout
        self.path = path if path is not None else "<array>"
        self.file_bands = array.shape[2]
        self.band_indexes, self.selected = _select(range(1, self.file_bands + 1), parse_bands(bands),
                                                   self.file_bands, self.path)
        if array.dtype.kind == "c":
            raise DataError(complex_problem(self.band_indexes[0], array.dtype.name), self.path)
        self.array = array if not self.selected else array[:, :, [b - 1 for b in self.band_indexes]]
        self.height, self.width, self.count = self.array.shape
        self.dtype = self.array.dtype.name
        self.nodata = nodata
        self.crs, self.transform = crs, transform
        self._external = valid

    @property
    def has_nodata(self) -> bool:
        return self.nodata is not None or self.array.dtype.kind == "f" or self._external is not None

    def _read(self, row, col, h, w):
        return self.array[row:row + h, col:col + w]

    def _mask(self, row, col, h, w):
        return None if self._external is None else self._external[row:row + h, col:col + w]


# --------------------------------------------------------------------------------------------------
# plain pictures (Pillow)

_PIL_GUARD_LOCK = threading.Lock()


class PillowSource(Source):
    """A JPG/PNG/... picture, decoded whole on first read (after the size guard)."""

    def __init__(self, path: Path, bands=None, *, limit: int | None = None, palette_indices: bool = False):
        from PIL import Image, UnidentifiedImageError

        self.path = path
        if not path.is_file():
            raise DataError("file not found", path)
        try:
            with _PIL_GUARD_LOCK, warnings.catch_warnings():
                # our own guard (check_size below, before any decoding) replaces Pillow's bomb check,
                # whose fixed 179 Mpx limit would refuse legitimate scenes
                warnings.simplefilter("ignore")
                saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    img = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
        except UnidentifiedImageError:
            raise DataError("not a readable image (unknown or corrupt format)", path) from None
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot open image ({first_line(exc)})", path) from None
        self.width, self.height = img.size
        self._limit = limit
        check_size(self.width, self.height, path, limit)
        self._img = img
        self._palette_indices = palette_indices and img.mode == "P"
        mode = img.mode
        has_alpha = (mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info)) \
            and not self._palette_indices
        colour = {"1": 1, "L": 1, "LA": 1, "I": 1, "F": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "RGB": 3,
                  "RGBA": 3, "CMYK": 3, "YCbCr": 3, "P": 1 if self._palette_indices else 3, "PA": 3}
        self._has_alpha = has_alpha
        self.file_bands = colour.get(mode, len(img.getbands()))
        self.dtype = {"I": "int32", "F": "float32"}.get(mode, "uint16" if mode.startswith("I;16") else "uint8")
        self.band_indexes, self.selected = _select(range(1, self.file_bands + 1), parse_bands(bands),
                                                   self.file_bands, path)
        self.count = len(self.band_indexes)
        self._pixels: np.ndarray | None = None
        self._alpha: np.ndarray | None = None

    @property
    def has_nodata(self) -> bool:
        return self._has_alpha or np.dtype(self.dtype).kind == "f"

    def _decode(self) -> np.ndarray:
        if self._pixels is not None:
            return self._pixels
        img = self._img
        try:
            mode = img.mode
            if self._palette_indices:
                arr = np.asarray(img)
            else:
                if mode in ("P", "PA"):
                    img = img.convert("RGBA" if self._has_alpha else "RGB")
                elif mode in ("CMYK", "YCbCr"):
                    img = img.convert("RGB")
                elif mode == "1":
                    img = img.convert("L")
                arr = np.asarray(img)
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image, the file is corrupt or truncated ({first_line(exc)})",
                            self.path) from None
        if arr.dtype == np.int32 and mode.startswith("I;16"):
            arr = arr.astype(np.uint16)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if self._has_alpha:
            self._alpha = arr[:, :, -1] > 0
            arr = arr[:, :, :-1]
        if self.selected or arr.shape[2] != self.count:
            arr = arr[:, :, [b - 1 for b in self.band_indexes]]
        self._pixels = np.ascontiguousarray(arr)
        return self._pixels

    def _read(self, row, col, h, w):
        return self._decode()[row:row + h, col:col + w]

    def _mask(self, row, col, h, w):
        self._decode()
        return None if self._alpha is None else self._alpha[row:row + h, col:col + w]

    def preview(self, max_side: int):
        from PIL import Image

        scale = max(self.width, self.height) / max_side
        if self._pixels is not None or self._img.format != "JPEG" or scale <= 1 or self.selected:
            return super().preview(max_side)
        # JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT domain: a fast preview of a huge picture
        target = (max(1, round(self.width / scale)), max(1, round(self.height / scale)))
        try:
            with Image.open(self.path) as img:
                img.draft("RGB" if img.mode != "L" else "L", target)
                arr = np.asarray(img.convert("RGB" if img.mode not in ("L",) else "L")
                                 .resize(target, Image.Resampling.BOX))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image, the file is corrupt or truncated ({first_line(exc)})",
                            self.path) from None
        return (arr[:, :, None] if arr.ndim == 2 else arr), None

    def close(self) -> None:
        self._img.close()


# --------------------------------------------------------------------------------------------------
# GDAL rasters (rasterio)


class RasterioSource(Source):
    """A raster read by windows through rasterio (local file, URL or GDAL virtual path)."""

    def __init__(self, path, bands=None, *, limit: int | None = None, dataset=None):
        import rasterio
        from rasterio.enums import ColorInterp, MaskFlags
        from rasterio.errors import NotGeoreferencedWarning, RasterioError

        self.path = path
        if dataset is None:
            if not is_remote(path) and not Path(path).exists():
                raise DataError("file not found", path)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    dataset = rasterio.open(path)
            except RasterioError as exc:
                raise DataError(f"not a readable raster ({first_line(exc)})", path) from None
        self.ds = dataset
        self._limit = limit
        self.width, self.height = dataset.width, dataset.height
        interp = list(dataset.colorinterp)
        alpha = [i + 1 for i, c in enumerate(interp) if c == ColorInterp.alpha]
        available = [i for i in range(1, dataset.count + 1) if i not in alpha]
        self.file_bands = len(available)
        self.band_indexes, self.selected = _select(available, parse_bands(bands), self.file_bands, path)
        self.count = len(self.band_indexes)
        self.dtype = dataset.dtypes[self.band_indexes[0] - 1] if self.band_indexes else dataset.dtypes[0]
        complex_bands = [b for b in self.band_indexes if np.dtype(dataset.dtypes[b - 1]).kind == "c"]
        if complex_bands:
            dataset.close()
            raise DataError(complex_problem(complex_bands[0], dataset.dtypes[complex_bands[0] - 1]), path)
        self.crs = dataset.crs
        self.transform = dataset.transform if (dataset.crs is not None or not dataset.transform.is_identity) \
            else None
        self.nodata = dataset.nodata
        flags = dataset.mask_flag_enums
        self._gdal_mask = any(f != [MaskFlags.all_valid] for f in flags)

    @property
    def has_nodata(self) -> bool:
        return self._gdal_mask or self.nodata is not None or np.dtype(self.dtype).kind == "f"

    def _window(self, row, col, h, w):
        from rasterio.windows import Window

        return Window(col, row, w, h)

    def _fail(self, exc, row, h):
        return DataError(f"cannot read rows {row}-{row + h}, the file is corrupt or truncated "
                         f"({first_line(exc)})", self.path)

    def _read(self, row, col, h, w):
        from rasterio.errors import RasterioError

        if (h, w) == (self.height, self.width):
            check_size(w, h, self.path, self._limit)
        try:
            arr = self.ds.read(self.band_indexes, window=self._window(row, col, h, w))
        except RasterioError as exc:
            raise self._fail(exc, row, h) from None
        return arr.transpose(1, 2, 0)

    def _mask(self, row, col, h, w):
        from rasterio.errors import RasterioError

        if not self._gdal_mask:
            return None
        try:
            return self.ds.dataset_mask(window=self._window(row, col, h, w)) > 0
        except RasterioError as exc:
            raise self._fail(exc, row, h) from None

    def preview(self, max_side: int):
        from rasterio.enums import Resampling
        from rasterio.errors import RasterioError

        scale = max(1.0, max(self.width, self.height) / max_side)
        shape = (max(1, round(self.height / scale)), max(1, round(self.width / scale)))
        try:  # a decimated read: GDAL uses the file's overviews when it has them
            pixels = self.ds.read(self.band_indexes, out_shape=(self.count,) + shape,
                                  resampling=Resampling.nearest).transpose(1, 2, 0)
            mask = (self.ds.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0) \
                if self._gdal_mask else None
        except RasterioError as exc:
            raise DataError(f"cannot read the image ({first_line(exc)})", self.path) from None
        bad = invalid_pixels(pixels, self.nodata)
        if bad is not None:
            mask = ~bad if mask is None else mask & ~bad
        return pixels, mask

    def close(self) -> None:
        self.ds.close()


# --------------------------------------------------------------------------------------------------


def open_source(obj, *, bands=None, nodata=None, layout: str = "hwc", max_pixels: int | None = None,
                palette_indices: bool = False) -> Source:
    """Open ``obj`` as a :class:`Source`.

    ``obj``: a path, a URL / GDAL virtual path, a numpy array (``layout`` ``"hwc"`` or ``"chw"``,
    ``nodata`` the value marking missing pixels) or an open rasterio dataset. ``bands``: 1-based file
    bands to deliver (``"4,3,2"`` or a list); default: every band but alpha. ``palette_indices``:
    palette PNGs give their raw indices (index masks) instead of colours.
    """
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, np.ndarray):
        return ArraySource(obj, nodata, layout=layout, bands=bands)
    if hasattr(obj, "dataset_mask") and hasattr(obj, "read"):  # an open rasterio dataset
        return RasterioSource(getattr(obj, "name", "<dataset>"), bands, limit=max_pixels, dataset=obj)
    if is_remote(obj):
        return RasterioSource(str(obj), bands, limit=max_pixels)
    path = Path(obj)
    if uses_pillow(path):
        return PillowSource(path, bands, limit=max_pixels, palette_indices=palette_indices)
    return RasterioSource(path, bands, limit=max_pixels)
