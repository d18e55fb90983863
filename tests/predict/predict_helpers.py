"""Stand-in backends and helpers for the prediction tests (no torch needed for most of them)."""

from __future__ import annotations

import numpy as np

from terraseg.bundle import BundleMeta

CLASSES = ["water", "road", "building", "vegetation", "bare land"]
COLORS = [[0, 0, 255], [128, 128, 128], [200, 30, 30], [0, 160, 0], [210, 180, 140]]


def make_meta(bands: int = 3, num_classes: int = 5, tile_size: int = 32, mean=None, std=None) -> BundleMeta:
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
