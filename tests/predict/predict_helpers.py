"""Stand-in backends and helpers for the prediction tests (no torch needed for most of them)."""

from __future__ import annotations

import numpy as np

from terraseg.bundle import BundleMeta

CLASSES = ["water", "road", "building", "vegetation", "bare land"]
COLORS = [[0, 0, 255], [128, 128, 128], [200, 30, 30], [0, 160, 0], [210, 180, 140]]


def make_meta(bands: int = 3, num_classes: int = 5, tile_size: int = 32, mean=None, std=None) -> BundleMeta:
    # identity normalisation unless asked: the stand-in backends read raw pixel values
    mean = [0.0] * bands if mean is None else mean
    std = [1.0] * bands if std is None else std
    return BundleMeta(architecture="standin", in_channels=bands, num_classes=num_classes,
                      classes=CLASSES[:num_classes], colors=COLORS[:num_classes], mean=mean, std=std,
                      tile_size=tile_size)


class PixelBackend:
    """A backend whose output at a pixel depends only on that pixel's input values.

    Fed an image that encodes each pixel's position, its logits depend only on pixel position, so
    the tiled, blended result must equal the untiled one.
    """

    def __init__(self, meta: BundleMeta, seed: int = 0):
        self.meta = meta
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(meta.num_classes, meta.in_channels)).astype(np.float32)
        self.b = rng.normal(size=(meta.num_classes,)).astype(np.float32)
        self.calls = 0
        self.shapes = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.float32 and batch.ndim == 4
        self.calls += 1
        self.shapes.append(batch.shape)
        logits = np.einsum("kc,nchw->nkhw", self.w, batch) + self.b[None, :, None, None]
        logits = np.sin(logits * 3.0) * 4.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def position_image(h: int, w: int) -> np.ndarray:
    """A 3-band float image whose values identify each pixel's position."""
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([rows / 37.0, cols / 41.0, ((rows * 7 + cols * 3) % 101) / 50.0], axis=-1)


class BandClassBackend:
    """Predicts class ``round(band 0)`` at every pixel (pointwise): lets tests draw known class maps."""

    def __init__(self, meta: BundleMeta):
        self.meta = meta

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        k = np.arange(self.meta.num_classes, dtype=np.float32)[None, :, None, None]
        logits = -4.0 * (batch[:, :1] - k) ** 2
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def write_geotiff(path, array_hwc: np.ndarray, crs="EPSG:32640", transform=None, nodata=None, tiled=True):
    """Write an ``(H, W, bands)`` array as a GeoTIFF (optionally without georeference)."""
    import warnings

    import rasterio
    from affine import Affine
    from rasterio.errors import NotGeoreferencedWarning

    h, w, b = array_hwc.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": b, "dtype": array_hwc.dtype.name}
    if crs is not None:
        profile["crs"] = crs
        profile["transform"] = transform if transform is not None else Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 2800000.0)
    if nodata is not None:
        profile["nodata"] = nodata
    if tiled and h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(array_hwc.transpose(2, 0, 1))
    return path


def class_map_image(h: int, w: int, bands: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A known class map with separate blobs and the image that makes BandClassBackend draw it."""
    cls = np.full((h, w), 4, np.uint8)  # bare land background
    cls[5:25, 5:40] = 0  # water
    cls[40:44, :] = 1  # a road across the scene
    cls[50:70, 60:90] = 2  # building
    cls[80:83, 10:13] = 2  # a tiny building (9 px)
    cls[10:30, 70:95] = 3  # vegetation
    image = np.zeros((h, w, bands), np.uint8)
    image[:, :, 0] = cls
    image[:, :, 1:] = 7
    return cls, image


class CheapBackend:
    """A fast pointwise stand-in: probabilities proportional to |linear mix of bands| + 0.1."""

    def __init__(self, meta: BundleMeta):
        self.meta = meta
        rng = np.random.default_rng(1)
        self.w = rng.normal(size=(meta.num_classes, meta.in_channels)).astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        p = np.abs(np.einsum("kc,nchw->nkhw", self.w, batch))
        p += 0.1
        p /= p.sum(axis=1, keepdims=True)
        return p


def write_pattern_geotiff(path, size: int, bands: int = 3, rows_per_write: int = 512):
    """A ``size`` x ``size`` georeferenced uint8 GeoTIFF written in windows (little memory)."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "width": size, "height": size, "count": bands, "dtype": "uint8",
               "crs": "EPSG:32640", "transform": Affine(0.5, 0.0, 300000.0, 0.0, -0.5, 2800000.0),
               "tiled": True, "blockxsize": 256, "blockysize": 256}
    cols = (np.arange(size) % 251).astype(np.uint8)
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, rows_per_write):
            h = min(rows_per_write, size - top)
            rows = ((np.arange(top, top + h) * 7) % 253).astype(np.uint8)
            block = np.stack([np.add.outer(rows * (b + 1), cols * (2 * b + 1)) for b in range(bands)])
            dst.write(block, window=Window(0, top, size, h))
    return path
