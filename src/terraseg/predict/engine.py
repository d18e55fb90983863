"""The prediction engine: sliding windows, batching, blending, TTA and streaming.

``predict_array`` predicts an in-memory image; ``predict_file`` streams a raster from disk to all
outputs. Both run the same core (:func:`run_tiles`):

1. the scene is cut into a :class:`~terraseg.predict.tiler.TileGrid` of equal-size tiles;
2. tiles are processed one tile row at a time, in batches, optionally with test-time augmentation;
3. each tile's probabilities are multiplied by a smooth blending window and added to a rolling band
   of ``tile_size`` rows (per-class weighted sums + summed weights);
4. once a tile row is done, the rows above the next tile row are final: they are normalised and
   handed to an ``emit`` callback, and the band moves down.

Memory is therefore bounded by ``K x tile_size x scene width`` floats plus one batch of tiles, never
by the scene height, and every output pixel is emitted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from terraseg.errors import DataError
from terraseg.predict.blend import window_2d
from terraseg.predict.tiler import TileGrid, resolve_overlap

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
EmitFn = Callable[[int, int, np.ndarray, "np.ndarray | None"], None]

TTA_MODES = ("none", "flips", "d4")


class PredictionCancelled(Exception):
    """Raised when the ``cancel()`` callback returned True; no output of the run is kept."""


@dataclass
class Prediction:
    """Result of :func:`predict_array`.

    ``classes``: uint8 ``(H, W)`` class indices (the bundle's ``ignore_index`` where the input was
    nodata); ``confidence``: float32 ``(H, W)`` probability of the chosen class; ``probabilities``:
    float32 ``(H, W, K)`` blended class probabilities when requested, else ``None``.
    """

    classes: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None = None


# --------------------------------------------------------------------------------------------------
# helpers


def normalization(meta, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and 1/std (float32, shape ``(bands,)``) from the bundle metadata.

    Bundles without statistics get the identity (raw pixel values go to the model).
    """
    mean = np.zeros(bands, np.float32) if meta.mean is None else np.asarray(meta.mean, np.float32)
    std = np.ones(bands, np.float32) if meta.std is None else np.asarray(meta.std, np.float32)
    if mean.shape != (bands,) or std.shape != (bands,):
        raise DataError(f"bundle normalisation has {mean.size} means / {std.size} stds for {bands} bands")
    std = np.where(std == 0, 1.0, std).astype(np.float32)
    return mean, (1.0 / std).astype(np.float32)


def resolve_tta(tta) -> str:
    if tta is True:
        return "d4"
    if tta in (False, None):
        return "none"
    if tta not in TTA_MODES:
        from terraseg.errors import ConfigError

        raise ConfigError(f"unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    return tta


def _tta_transforms(mode: str) -> list[tuple[int, bool]]:
    """(quarter turns, flip left-right) pairs; the identity comes first."""
    if mode == "none":
        return [(0, False)]
    if mode == "flips":  # identity, left-right, up-down (= rot180 of left-right), both (= rot180)
        return [(0, False), (0, True), (2, True), (2, False)]
    return [(k, f) for k in range(4) for f in (False, True)]  # the 8 symmetries of the square


def infer(backend, batch: np.ndarray, tta: str = "none") -> np.ndarray:
    """Run ``backend`` on a normalised ``(N, C, h, w)`` batch, averaging over TTA transforms.

    TTA is done in numpy around the backend call, so it works with every backend.
    """
    transforms = _tta_transforms(tta)
    total = None
    for k, flip in transforms:
        x = batch
        if flip:
            x = x[..., ::-1]
        if k:
            x = np.rot90(x, k, axes=(-2, -1))
        y = np.asarray(backend(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)
        if k:
            y = np.rot90(y, -k, axes=(-2, -1))
        if flip:
            y = y[..., ::-1]
        total = y.copy() if total is None else total + y
    if len(transforms) > 1:
        total /= len(transforms)
    return total


# --------------------------------------------------------------------------------------------------
# the core


class ArraySource:
    """Rows of an in-memory ``(H, W, bands)`` array."""

    def __init__(self, array: np.ndarray, nodata=None):
        self.array = array
        self.height, self.width, self.bands = array.shape
        self.nodata = nodata

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        return self.array[top:bottom]


def run_tiles(backend, source, *, tile_size: int, overlap: int, batch_size: int, blend: str,
              tta: str, emit: EmitFn, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None) -> None:
    """Predict ``source`` tile by tile and call ``emit(top, bottom, probs, valid)`` for final rows.

    ``source`` has ``height``, ``width``, ``bands``, ``nodata`` and ``read_rows(top, bottom) ->
    (rows, W, bands)``. ``probs`` is float32 ``(K, bottom - top, W)``; ``valid`` a bool
    ``(bottom - top, W)`` mask of pixels that are not nodata (``None`` when the source has no nodata).
    Strips are emitted in order and partition the rows exactly.
    """
    meta = backend.meta
    k = int(meta.num_classes)
    grid = TileGrid(source.height, source.width, int(tile_size), int(overlap))
    th, tw, ts = grid.tile_height, grid.tile_width, grid.tile_size
    pad_b, pad_r = grid.pad_amounts()
    mean, inv_std = normalization(meta, source.bands)
    weight = window_2d(th, tw, blend)
    width = source.width
    acc = np.zeros((k, th, width), np.float32)
    wsum = np.zeros((th, width), np.float32)
    total = len(grid)
    done = 0
    if progress is not None:
        progress(0, total)
    row_starts = grid.row_starts
    col_starts = grid.col_starts
    strips = grid.output_strips()
    batch_size = max(1, int(batch_size))
    for i, top in enumerate(row_starts):
        raw = np.asarray(source.read_rows(top, top + th))
        if raw.shape != (th, width, source.bands):
            raise DataError(f"read {raw.shape} where ({th}, {width}, {source.bands}) was expected")
        valid = None
        if source.nodata is not None:
            valid = ~np.all(raw == source.nodata, axis=2)
        strip = (raw.astype(np.float32) - mean) * inv_std  # (th, W, C)
        strip = np.ascontiguousarray(strip.transpose(2, 0, 1))  # (C, th, W)
        del raw
        for b0 in range(0, len(col_starts), batch_size):
            if cancel is not None and cancel():
                raise PredictionCancelled("prediction cancelled")
            cols = col_starts[b0:b0 + batch_size]
            batch = np.stack([strip[:, :, c:c + tw] for c in cols])
            if pad_b or pad_r:
                batch = np.pad(batch, ((0, 0), (0, 0), (0, pad_b), (0, pad_r)), mode="symmetric")
            probs = infer(backend, batch, tta)
            if probs.shape != (len(cols), k, ts, ts):
                raise DataError(f"model returned {probs.shape}; expected {(len(cols), k, ts, ts)}")
            for j, c in enumerate(cols):
                acc[:, :, c:c + tw] += probs[j, :, :th, :tw] * weight
                wsum[:, c:c + tw] += weight
            done += len(cols)
            if progress is not None:
                progress(done, total)
        s_top, s_bottom = strips[i]
        n = s_bottom - s_top
        out = acc[:, :n] / wsum[:n]
        emit(s_top, s_bottom, out, None if valid is None else valid[:n])
        # move the band down by n rows
        if n < th:
            acc[:, :th - n] = acc[:, n:]
            wsum[:th - n] = wsum[n:]
        acc[:, th - n:] = 0
        wsum[th - n:] = 0


def _resolve_model(model, device="cpu", precision="fp32"):
    from terraseg.predict.backends import as_backend

    return as_backend(model, device=device, precision=precision)


def _tile_settings(meta, tile_size, overlap) -> tuple[int, int]:
    from terraseg.errors import ConfigError

    tile = int(tile_size or meta.tile_size or 512)
    if tile < 8:
        raise ConfigError(f"tile size must be at least 8 pixels, got {tile}")
    return tile, resolve_overlap(tile, overlap)


def check_bands(array_bands: int, meta, path=None) -> None:
    if array_bands != meta.in_channels:
        raise DataError(f"image has {array_bands} band{'s' if array_bands != 1 else ''} but the model "
                        f"expects {meta.in_channels}", path)


def predict_array(model, array: np.ndarray, tile_size: int | None = None, overlap: int | float | None = None,
                  batch_size: int = 4, blend: str = "cosine", tta=False, progress: ProgressFn | None = None,
                  cancel: CancelFn | None = None, return_probabilities: bool = False, nodata=None,
                  device: str = "cpu", precision: str = "fp32") -> Prediction:
    """Predict a whole in-memory image ``(H, W, bands)`` (or ``(H, W)`` for one band).

    ``model`` is a backend, a :class:`~terraseg.bundle.Bundle` or a bundle/ONNX path. ``tile_size``
    defaults to the bundle's tile size, ``overlap`` to a quarter tile (pixels, or a fraction < 1).
    ``tta``: ``False``, ``True`` (= ``"d4"``, 8 flips/rotations), ``"flips"`` (4) or ``"d4"``.
    ``progress(done_tiles, total_tiles)`` is called after every batch; when ``cancel()`` returns
    True the run stops with :class:`PredictionCancelled`. Pixels equal to ``nodata`` in every band
    get the bundle's ignore index.
    """
    backend = _resolve_model(model, device=device, precision=precision)
    meta = backend.meta
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise DataError(f"expected an image array (H, W, bands), got shape {array.shape}")
    check_bands(array.shape[2], meta)
    tile, ov = _tile_settings(meta, tile_size, overlap)
    h, w = array.shape[:2]
    classes = np.empty((h, w), np.uint8)
    confidence = np.empty((h, w), np.float32)
    probabilities = np.empty((h, w, meta.num_classes), np.float32) if return_probabilities else None
    ignore = int(meta.ignore_index) if 0 <= int(meta.ignore_index) <= 255 else 255

    def emit(top, bottom, probs, valid):
        cls = probs.argmax(axis=0).astype(np.uint8)
        conf = probs.max(axis=0)
        if valid is not None:
            cls[~valid] = ignore
            conf[~valid] = 0
        classes[top:bottom] = cls
        confidence[top:bottom] = conf
        if probabilities is not None:
            probabilities[top:bottom] = probs.transpose(1, 2, 0)

    run_tiles(backend, ArraySource(array, nodata), tile_size=tile, overlap=ov, batch_size=batch_size,
              blend=blend, tta=resolve_tta(tta), emit=emit, progress=progress, cancel=cancel)
    return Prediction(classes, confidence, probabilities)
