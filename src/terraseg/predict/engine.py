"""The numeric core of prediction: tiles -> backend -> blend, streamed as strips to sinks.

:func:`run_tiles` is the only place a scene is predicted:

1. the scene is cut into a :class:`~terraseg.predict.tiler.TileGrid` of equal-size tiles, the tile
   size fitted to the scene (:meth:`~terraseg.predict.tiler.TileGrid.for_scene`) unless the model
   takes only one input size;
2. tiles are processed one tile row at a time, in batches, optionally with test-time augmentation;
3. each tile's probabilities are multiplied by a smooth blending window and added to a rolling band
   of ``tile_size`` rows (per-class weighted sums + summed weights);
4. once a tile row is done, the rows above the next tile row are final: they are normalised and
   handed to an ``emit`` callback, and the band moves down.

Memory is therefore bounded by ``K x tile_size x scene width`` floats plus one batch of tiles, never
by the scene height, and every output pixel is emitted exactly once. :func:`predict_source` connects
a :mod:`source <terraseg.data.source>` and a :class:`~terraseg.normalisation.Normaliser` to the core
and the core to :mod:`sinks <terraseg.predict.sinks>`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from terraseg.errors import DataError, ModelError
from terraseg.predict.blend import window_2d
from terraseg.predict.options import resolve_tta
from terraseg.predict.tiler import TileGrid

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
EmitFn = Callable[[int, int, np.ndarray, "np.ndarray | None"], None]


class PredictionCancelled(Exception):
    """Raised when the ``cancel()`` callback returned True; no output of the run is kept."""


def _tta_transforms(mode: str) -> list[tuple[int, bool]]:
    """(quarter turns, flip left-right) pairs; the identity comes first."""
    if mode == "none":
        return [(0, False)]
    if mode == "flips":  # identity, left-right, up-down (= rot180 of left-right), both (= rot180)
        return [(0, False), (0, True), (2, True), (2, False)]
    return [(k, f) for k in range(4) for f in (False, True)]  # the 8 symmetries of the square


def _finite(probs: np.ndarray, backend) -> np.ndarray:
    """Every backend's probabilities pass here: NaN or ±inf (a diverged or broken model; the inputs are
    finite by now) would make an arbitrary class map, so the model is refused instead."""
    if not np.isfinite(probs).all():
        bundle = getattr(backend, "bundle", None)
        where = getattr(backend, "source_path", None) or getattr(bundle, "path", None)
        bad = probs.size - int(np.isfinite(probs).sum())
        raise ModelError(f"the model produced non-finite class probabilities (NaN or inf, {bad:,} of "
                         f"{probs.size:,} values in a batch); no map was written", where)
    return probs


def infer(backend, batch: np.ndarray, tta: str = "none") -> np.ndarray:
    """Run ``backend`` on a normalised ``(N, C, h, w)`` batch, averaging over TTA transforms.

    TTA is done in numpy around the backend call, so it works with every backend.
    """
    transforms = _tta_transforms(tta)
    if len(transforms) == 1:
        return _finite(np.asarray(backend(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float32), backend)
    total = None
    for k, flip in transforms:
        x = batch
        if flip:
            x = x[..., ::-1]
        if k:
            x = np.rot90(x, k, axes=(-2, -1))
        y = _finite(np.asarray(backend(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32), backend)
        if k:
            y = np.rot90(y, -k, axes=(-2, -1))
        if flip:
            y = y[..., ::-1]
        total = y.copy() if total is None else total + y
    total /= len(transforms)
    return total


def classes_and_confidence(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arg-max class (uint8) and its probability (float32) of ``(K, h, w)`` probabilities.

    A pass over the K planes (K is small) is several times faster than ``argmax`` + ``max`` along
    a leading axis and allocates only the two results. Ties go to the lower class index.
    """
    best = probs[0].astype(np.float32, copy=True)
    classes = np.zeros(best.shape, np.uint8)
    for k in range(1, probs.shape[0]):
        better = probs[k] > best
        classes[better] = k
        np.maximum(best, probs[k], out=best)
    return classes, best


def fits_tiles(backend) -> bool:
    """Whether the tile size may be fitted to the scene: the model takes any input size (an ONNX file
    with a fixed input shape says ``fixed_input_size``)."""
    return getattr(backend, "fixed_input_size", None) is None


def tiles_at_once(backend) -> int:
    """How many tiles the backend runs side by side (the ONNX backend on several cores); the tile grid
    is fitted so that batches fill them."""
    return max(1, int(getattr(backend, "tiles_at_once", 1)))


def run_tiles(backend, source, normaliser, *, tile_size: int, overlap: int, batch_size: int, blend: str,
              tta: str, emit: EmitFn, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None, fit_tiles: bool = True) -> None:
    """Predict ``source`` tile by tile and call ``emit(top, bottom, probs, valid)`` for final rows.

    ``source`` is a :class:`~terraseg.data.source.Source` (``height``, ``width``, ``count``,
    ``read_rows(top, bottom)``, ``valid_rows(top, bottom, pixels)``); ``normaliser`` a
    :class:`~terraseg.normalisation.Normaliser` for its bands. ``probs`` is float32
    ``(K, bottom - top, W)`` (a view into the rolling band, valid only during the call); ``valid`` a
    bool ``(bottom - top, W)`` mask of pixels that are not nodata (``None``: no nodata). Strips are
    emitted in order and partition the rows exactly. ``fit_tiles=False`` keeps ``tile_size`` as given
    (a block of a scene split over workers, whose tile size was fitted to the whole scene).
    """
    meta = backend.meta
    k = int(meta.num_classes)
    grid = TileGrid.for_scene(source.height, source.width, int(tile_size), int(overlap),
                              fit=fit_tiles and fits_tiles(backend), at_once=tiles_at_once(backend),
                              batch_size=batch_size)
    th, tw, ts = grid.tile_height, grid.tile_width, grid.tile_size
    pad_b, pad_r = grid.pad_amounts()
    weight = window_2d(th, tw, blend)
    width = source.width
    acc = np.zeros((k, th, width), np.float32)
    wsum = np.zeros((th, width), np.float32)
    scratch = np.empty((k, th, tw), np.float32)
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
        if raw.shape != (th, width, source.count):
            raise DataError(f"read {raw.shape} where ({th}, {width}, {source.count}) was expected")
        valid = source.valid_rows(top, top + th, raw)
        for b0 in range(0, len(col_starts), batch_size):
            if cancel is not None and cancel():
                raise PredictionCancelled("prediction cancelled")
            cols = col_starts[b0:b0 + batch_size]
            batch = np.empty((len(cols), source.count, th, tw), np.float32)
            for j, c in enumerate(cols):
                normaliser.into(raw[:, c:c + tw, :], batch[j])
            # nodata and non-finite pixels go to the model as the band mean (0 after normalisation)
            if valid is not None:
                for j, c in enumerate(cols):
                    batch[j][:, ~valid[:, c:c + tw]] = 0.0
            if raw.dtype.kind == "f":
                with np.errstate(invalid="ignore"):
                    np.nan_to_num(batch, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            if pad_b or pad_r:
                batch = np.pad(batch, ((0, 0), (0, 0), (0, pad_b), (0, pad_r)), mode="symmetric")
            probs = infer(backend, batch, tta)
            if probs.shape != (len(cols), k, ts, ts):
                raise DataError(f"model returned {probs.shape}; expected {(len(cols), k, ts, ts)}")
            for j, c in enumerate(cols):
                np.multiply(probs[j, :, :th, :tw], weight, out=scratch)
                acc[:, :, c:c + tw] += scratch
                wsum[:, c:c + tw] += weight
            done += len(cols)
            if progress is not None:
                progress(done, total)
        s_top, s_bottom = strips[i]
        n = s_bottom - s_top
        out = acc[:, :n]
        out /= wsum[:n]  # in place: these rows leave the band now
        emit(s_top, s_bottom, out, None if valid is None else valid[:n])
        # move the band down by n rows
        if n < th:
            acc[:, :th - n] = acc[:, n:]
            wsum[:th - n] = wsum[n:]
        acc[:, th - n:] = 0
        wsum[th - n:] = 0


def predict_source(backend, source, sinks, normaliser=None, *, tile_size: int, overlap: int, batch_size: int = 4,
                   blend: str = "cosine", tta="none", ignore: int = 255, progress: ProgressFn | None = None,
                   cancel: CancelFn | None = None, fit_tiles: bool = True) -> None:
    """Predict ``source`` with ``backend`` and stream the result to ``sinks`` (start, strips, finish).

    ``normaliser`` defaults to the one the backend's metadata describes; ``ignore`` is the class value
    written where the input is invalid (nodata, masked, alpha 0, NaN/inf).
    """
    from terraseg.normalisation import Normaliser
    from terraseg.predict.sinks import RunInfo, finish_sinks

    if normaliser is None:
        normaliser = Normaliser.from_meta(backend.meta, source.count)
    run = RunInfo(meta=backend.meta, source=source, ignore=int(ignore))
    for sink in sinks:
        sink.start(run)

    def emit(top, bottom, probs, valid):
        deliver(sinks, run, top, bottom, probs, valid)

    run_tiles(backend, source, normaliser, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
              blend=blend, tta=resolve_tta(tta), emit=emit, progress=progress, cancel=cancel, fit_tiles=fit_tiles)
    finish_sinks(sinks)


def deliver(sinks, run, top: int, bottom: int, probs: np.ndarray, valid: np.ndarray | None) -> None:
    """Final probabilities of rows ``top:bottom`` -> a :class:`~terraseg.predict.sinks.Strip` (classes,
    confidence, the ignore value where the input is invalid) handed to every sink."""
    from terraseg.predict.sinks import Strip

    classes, confidence = classes_and_confidence(probs)
    if valid is not None:
        classes[~valid] = run.ignore
        confidence[~valid] = 0
    strip = Strip(top, bottom, probs, classes, confidence, valid)
    for sink in sinks:
        sink.write(strip)
