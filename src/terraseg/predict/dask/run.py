"""Run a batch on a Dask cluster: resume, submission, a progress bar over all files, the batch result.

The client decides what to do (finished files skipped, scenes split into blocks, blocks already
written kept) and submits one task per file, or per block plus one join task per split scene; it
then follows the tasks with ``distributed.as_completed`` and fills the same
:class:`~terraseg.predict.batch.BatchResult` as the single-process loop, in input order.
"""

from __future__ import annotations

import json
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from terraseg.errors import ConfigError


@dataclass
class _Item:
    index: int
    path: object  # Path, or str for URLs
    name: str


def _scene_size(path) -> tuple[int, int] | None:
    """(height, width) of a GDAL raster, or ``None`` (pictures, unreadable files: predicted whole)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    from terraseg.data.source import uses_pillow

    if uses_pillow(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return ds.height, ds.width
    except (RasterioError, OSError):
        return None  # the worker reports the error, as the single-process run would


def _split_plans(items: list[_Item], opts, tile: int, overlap: int, workers: int, block_rows: int | None,
                 fit: bool, at_once: int = 1) -> dict:
    """``{item index: (TileGrid, tile rows per block)}`` for the scenes to split; each grid's tile size
    is fitted to its whole scene (``fit``, ``at_once`` tiles side by side), as a single-process run
    with the same backend would fit it."""
    from terraseg.predict.dask.blocks import rows_per_block
    from terraseg.predict.tiler import TileGrid

    if block_rows == 0 or getattr(opts, "resample", False):  # a resampled scene is predicted whole
        return {}
    grids = {}
    for item in items:
        size = _scene_size(item.path)
        if size is not None:
            grids[item.index] = TileGrid.for_scene(size[0], size[1], tile, overlap, fit=fit, at_once=at_once,
                                                   batch_size=opts.batch_size)
    total = sum(len(g) for g in grids.values())
    plans = {}
    for index, grid in grids.items():
        rows = rows_per_block(len(grid.row_starts), len(grid), total, workers, block_rows)
        if rows is not None:
            plans[index] = (grid, rows)
    return plans


def predict_on_cluster(backend, files, names, out_dir, opts, result, *, resume: bool, workers: int | None,
                       scheduler, block_rows: int | None, log, progress):
    """Predict ``files`` on a cluster into ``out_dir``; fills and returns ``result`` (a ``BatchResult``)."""
    from terraseg.predict.engine import fits_tiles, tiles_at_once
    from terraseg.predict.resume import failure_message, is_finished
    from terraseg.predict.dask.cluster import connect, require_distributed, worker_count, workers_per_host
    from terraseg.predict.options import output_paths, validate

    distributed = require_distributed()
    from terraseg.predict.dask import tasks
    from terraseg.predict.dask.blocks import (block_kinds, blocks_folder, plan_blocks, prepare_blocks_folder)
    from terraseg.predict.dask.model import ModelPayload, ModelPlugin

    if block_rows is not None and block_rows < 0:
        raise ConfigError(f"--block-rows must be 0 (never split) or more, got {block_rows}")
    tile, overlap = validate(opts, backend.meta)
    out_dir = Path(out_dir)
    todo: list[_Item] = []
    for i, (path, name) in enumerate(zip(files, names)):
        paths = output_paths(path, out_dir, opts, name=name)
        if resume and is_finished(paths):
            result.skipped.append(path)
            result.outputs[path] = paths
        else:
            todo.append(_Item(i, path, name))
    payload = ModelPayload.from_backend(backend)
    done, failed = [], []
    with connect(workers, scheduler) as client, progress:
        files_task = progress.add_task("files", total=len(files), completed=len(result.skipped))
        plugin = ModelPlugin(payload, workers_per_host(client))
        client.register_plugin(plugin, name=plugin.name)
        plans = _split_plans(todo, opts, tile, overlap, worker_count(client), block_rows, fits_tiles(backend),
                             tiles_at_once(backend))
        blocks_task = progress.add_task("blocks", total=0, visible=bool(plans))
        run_id = uuid.uuid4().hex[:8]
        futures = {}
        for item in todo:
            if item.index not in plans:
                future = client.submit(tasks.file_task, plugin.name, item.path, out_dir, opts, item.name,
                                       key=f"predict-{item.name}-{run_id}", pure=False)
                futures[future] = ("file", item)
                continue
            grid, rows = plans[item.index]
            blocks = plan_blocks(grid, rows)
            folder = blocks_folder(out_dir, item.name)
            plan = json.loads(json.dumps({"input": str(item.path), "height": grid.height, "width": grid.width,
                                          "tile": grid.tile_size, "overlap": overlap, "tile_rows_per_block": rows,
                                          "model": payload.digest, "options": asdict(opts)}))
            written = prepare_blocks_folder(folder, plan, blocks, block_kinds(opts), resume)
            block_futures = []
            for block in blocks:
                if block.index in written:
                    continue
                future = client.submit(tasks.block_task, plugin.name, item.path, folder, block, opts, grid.tile_size,
                                       overlap, key=f"block-{item.name}-{block.index}-{run_id}", pure=False)
                futures[future] = ("block", item)
                block_futures.append(future)
            progress.update(blocks_task, total=progress.tasks[blocks_task].total + len(blocks),
                            advance=len(blocks) - len(block_futures))
            join = client.submit(tasks.join_task, plugin.name, item.path, out_dir, opts, item.name, grid.tile_size,
                                 overlap, folder, blocks, *block_futures, key=f"join-{item.name}-{run_id}", pure=False)
            futures[join] = ("file", item)
        for future in distributed.as_completed(list(futures)):
            kind, item = futures[future]
            try:
                status, value = future.result()
            except Exception as exc:  # the task itself died (e.g. its worker was killed)
                status, value = "failed", failure_message(item.path, exc)
            if kind == "block":
                progress.advance(blocks_task)
                continue
            if status == "done":
                done.append(item)
                result.outputs[item.path] = value
            else:
                failed.append((item, value))
                log(value)
            progress.advance(files_task)
        client.unregister_worker_plugin(plugin.name)
    result.done.extend(item.path for item in sorted(done, key=lambda it: it.index))
    result.failed.extend((item.path, msg) for item, msg in sorted(failed, key=lambda f: f[0].index))
    return result
