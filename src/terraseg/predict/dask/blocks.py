"""A scene too large for one process, cut into blocks of whole tile rows predicted independently.

The engine (:func:`terraseg.predict.engine.run_tiles`) finalises the rows of output strip ``i``
(``TileGrid.output_strips``) after tile row ``i``; the value of a pixel is the blend of the tile rows
``j <= i`` that reach it, added in order. A block of tile rows ``a .. b-1`` therefore writes the rows
of strips ``a .. b-1`` and predicts, on a view of the scene starting at the first tile row that
reaches its first row (one tile row above with the default quarter-tile overlap), the same tiles in
the same batches and the same order as the whole-scene run: its rows are bit for bit the
single-process ones. The view's own ``TileGrid`` has exactly those tile rows (checked in
:func:`plan_blocks`), so the engine runs unchanged on it.

Each block writes its final rows to its own GeoTIFFs (class indices; confidence and probabilities
when asked for) in a hidden folder ``.<name>.blocks`` next to the outputs, with ``plan.json``
describing the split: an interrupted run resumes with the blocks already written.

When a scene is split (``block_rows``): ``0`` never; ``R`` scenes with more than R tile rows, in
blocks of R tile rows; ``None`` (automatic) scenes with more tiles than their share of the batch
(all tiles / workers) and at least ``2 x MIN_BLOCK_ROWS`` tile rows, in about ``2 x workers``
blocks of at least ``MIN_BLOCK_ROWS`` tile rows, so the recomputed context row costs at most ~1/8.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from terraseg.data.source import Source
from terraseg.errors import DataError
from terraseg.predict.sinks import RunInfo, Sink, Strip, finish_sinks
from terraseg.predict.tiler import TileGrid

MIN_BLOCK_ROWS = 8
PLAN_NAME = "plan.json"


@dataclass(frozen=True)
class Block:
    """Tile rows ``first .. last`` of a scene: writes rows ``top:bottom``, predicts rows ``read_top:read_bottom``."""

    index: int
    top: int
    bottom: int
    read_top: int
    read_bottom: int


def plan_blocks(grid: TileGrid, rows_per_block: int) -> list[Block]:
    """The blocks of ``rows_per_block`` tile rows of ``grid``, in order; their rows partition the scene."""
    starts, strips, th = grid.row_starts, grid.output_strips(), grid.tile_height
    blocks = []
    for a in range(0, len(starts), max(1, int(rows_per_block))):
        b = min(a + int(rows_per_block), len(starts))
        top, bottom = strips[a][0], strips[b - 1][1]
        first = next(j for j in range(a + 1) if starts[j] + th > top)  # tile rows reaching row `top`
        read_top, read_bottom = starts[first], starts[b - 1] + th
        view = TileGrid(read_bottom - read_top, grid.width, grid.tile_size, grid.overlap)
        if view.row_starts != [s - read_top for s in starts[first:b]]:  # the tiler changed its layout
            raise RuntimeError(f"block {len(blocks)} would not reproduce the scene's tile rows")
        blocks.append(Block(len(blocks), top, bottom, read_top, read_bottom))
    return blocks


def rows_per_block(tile_rows: int, tiles: int, total_tiles: int, workers: int, block_rows: int | None) -> int | None:
    """Tile rows per block for a scene of ``tile_rows`` rows and ``tiles`` tiles, or ``None``: predict it whole."""
    if block_rows == 0:
        return None
    if block_rows is not None:
        return int(block_rows) if tile_rows > block_rows else None
    if tiles * workers <= total_tiles or tile_rows < 2 * MIN_BLOCK_ROWS:
        return None  # no more than its share of the work: splitting would only add context rows
    return max(MIN_BLOCK_ROWS, math.ceil(tile_rows / (2 * workers)))


class RowsView(Source):
    """Rows ``top:bottom`` of another source, as a source of its own (georeference shifted)."""

    def __init__(self, base: Source, top: int, bottom: int):
        if not 0 <= top < bottom <= base.height:
            raise DataError(f"rows {top}-{bottom} lie outside the {base.height} rows of the image", base.path)
        self.base, self.top = base, top
        self.path, self.width, self.height = base.path, base.width, bottom - top
        self.count, self.file_bands, self.band_indexes = base.count, base.file_bands, base.band_indexes
        self.selected, self.dtype, self.crs, self.nodata = base.selected, base.dtype, base.crs, base.nodata
        self.transform = None if base.transform is None else base.transform * _row_shift(top)

    @property
    def has_nodata(self) -> bool:
        return self.base.has_nodata

    def _read(self, row, col, h, w):
        return self.base._read(row + self.top, col, h, w)

    def _valid(self, row, col, h, w, pixels):
        return self.base._valid(row + self.top, col, h, w, pixels)


def _row_shift(rows: int):
    from affine import Affine

    return Affine.translation(0, rows)


class CropSink(Sink):
    """Passes rows ``offset .. offset + run.height`` of the strips it gets to ``sinks``, as rows of ``run``."""

    def __init__(self, sinks: list[Sink], run: RunInfo, offset: int):
        self.sinks, self.out_run, self.offset = sinks, run, offset

    def start(self, run: RunInfo) -> None:
        super().start(run)
        for sink in self.sinks:
            sink.start(self.out_run)

    def write(self, strip: Strip) -> None:
        lo, hi = max(strip.top, self.offset), min(strip.bottom, self.offset + self.out_run.height)
        if hi <= lo:
            return
        a, b = lo - strip.top, hi - strip.top
        part = Strip(lo - self.offset, hi - self.offset, strip.probs[:, a:b], strip.classes[a:b],
                     strip.confidence[a:b], None if strip.valid is None else strip.valid[a:b])
        for sink in self.sinks:
            sink.write(part)

    def finish(self) -> None:
        finish_sinks(self.sinks)


# --------------------------------------------------------------------------------------------------
# block files


def block_kinds(opts) -> list[str]:
    """The rasters a block writes: class indices, plus the float outputs that cannot be derived from them."""
    return ["classes"] + [k for k in ("confidence", "probabilities") if getattr(opts, k)]


def block_paths(folder: Path, index: int, kinds: list[str]) -> dict[str, Path]:
    return {k: Path(folder) / f"{index:05d}_{k}.tif" for k in kinds}


def blocks_folder(out_dir, name: str) -> Path:
    return Path(out_dir) / f".{name}.blocks"


def prepare_blocks_folder(folder: Path, plan: dict, blocks: list[Block], kinds: list[str], resume: bool) -> set[int]:
    """Make ``folder`` hold the blocks of ``plan``; returns the indexes of blocks already written.

    A folder from another plan (other options, model or input size), or any folder when not
    resuming, is emptied; temporaries of an interrupted block are removed.
    """
    manifest = folder / PLAN_NAME
    if folder.exists():
        try:
            same = resume and json.loads(manifest.read_text(encoding="utf-8")) == plan
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not manifest.exists():
        from terraseg._io import write_json_atomic

        write_json_atomic(manifest, plan)
    for stale in folder.glob(f".*.part{glob.escape('.tif')}"):
        stale.unlink(missing_ok=True)
    return {b.index for b in blocks if all(p.exists() for p in block_paths(folder, b.index, kinds).values())}


def predict_block(backend, input_path, folder: Path, block: Block, opts, tile: int, overlap: int) -> dict[str, Path]:
    """Predict one block of ``input_path`` with ``backend`` into its GeoTIFFs in ``folder`` (atomically)."""
    from terraseg._io import atomic_path
    from terraseg.data.source import check_band_count, gdal_env, is_remote, open_source
    from terraseg.predict.api import model_bands
    from terraseg.predict.engine import predict_source
    from terraseg.predict.options import ignore_value
    from terraseg.predict.sinks import ClassRasterSink, ConfidenceSink, ProbabilitySink

    sink_types = {"classes": ClassRasterSink, "confidence": ConfidenceSink, "probabilities": ProbabilitySink}
    meta = backend.meta
    ignore = ignore_value(meta)
    paths = block_paths(folder, block.index, block_kinds(opts))
    with contextlib.ExitStack() as stack:
        stack.enter_context(gdal_env())
        source = stack.enter_context(open_source(input_path if is_remote(input_path) else Path(input_path),
                                                 bands=model_bands(meta, opts.bands)))
        check_band_count(source, meta.in_channels)
        sinks = [sink_types[k](stack.enter_context(atomic_path(p))) for k, p in paths.items()]
        crop = CropSink(sinks, RunInfo(meta, RowsView(source, block.top, block.bottom), ignore),
                        block.top - block.read_top)
        predict_source(backend, RowsView(source, block.read_top, block.read_bottom), [crop], tile_size=tile,
                       overlap=overlap, batch_size=opts.batch_size, blend=opts.blend, tta=opts.tta, ignore=ignore,
                       fit_tiles=False)  # ``tile`` is already fitted to the whole scene
    return paths


class BlockReader:
    """Reads rows of the joined scene from the block files, one block open at a time."""

    def __init__(self, folder: Path, blocks: list[Block], kinds: list[str]):
        self.folder, self.blocks, self.kinds = Path(folder), blocks, kinds
        self.current: Block | None = None
        self.datasets: dict = {}

    def _open(self, block: Block) -> None:
        import rasterio

        self.close()
        self.datasets = {k: rasterio.open(p) for k, p in block_paths(self.folder, block.index, self.kinds).items()}
        self.current = block

    def rows(self, top: int, bottom: int) -> dict[str, np.ndarray]:
        """``{kind: (bands, n, W) array}`` of rows ``top:bottom``, which must lie in one block."""
        from rasterio.windows import Window

        block = self.current
        if block is None or not block.top <= top < block.bottom:
            block = next(b for b in self.blocks if b.top <= top < b.bottom)
            self._open(block)
        block_width = next(iter(self.datasets.values())).width
        if bottom > block.bottom:
            raise RuntimeError(f"rows {top}-{bottom} cross the edge of block {block.index}")
        window = Window(0, top - block.top, block_width, bottom - top)
        return {k: ds.read(window=window) for k, ds in self.datasets.items()}

    def close(self) -> None:
        for ds in self.datasets.values():
            ds.close()
        self.datasets, self.current = {}, None

    def __enter__(self) -> "BlockReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

