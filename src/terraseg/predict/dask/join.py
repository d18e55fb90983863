"""Join the blocks of a split scene into the scene's outputs, exactly as a single-process run writes them.

The block files are read back in the engine's own output strips (``TileGrid.output_strips``: every
strip lies inside one block, since blocks are whole tile rows) and fed to the sinks
:func:`terraseg.predict.api.file_outputs` opens for a whole-scene run. Every sink therefore sees the
strips it would have seen from the engine: the class raster, colour mask, overlay, confidence and
probability rasters are the same bytes; the area report counts each row once (no seam counted
twice); polygons come from the joined class raster, so regions crossing block edges are one
polygon. Validity is the class raster's ignore value (which is never a class) on inputs that can
have invalid pixels, as in the engine; ``Strip.probs`` is ``None`` unless probabilities were asked
for (only the probability sink reads it).
"""

from __future__ import annotations

from pathlib import Path

from terraseg.predict.dask.blocks import Block, BlockReader, block_kinds


def join_blocks(meta, input_path, out_dir, opts, name: str, tile: int, overlap: int, folder: Path,
                blocks: list[Block]) -> dict[str, Path]:
    """Write the outputs of ``input_path`` into ``out_dir`` from its block files in ``folder``."""
    from terraseg.predict.api import file_outputs
    from terraseg.predict.options import ignore_value
    from terraseg.predict.sinks import RunInfo, Strip, finish_sinks
    from terraseg.predict.tiler import TileGrid

    ignore = ignore_value(meta)
    with file_outputs(meta, input_path, out_dir, opts, name=name) as (source, sinks, paths):
        run = RunInfo(meta=meta, source=source, ignore=ignore)
        for sink in sinks:
            sink.start(run)
        grid = TileGrid(source.height, source.width, tile, overlap)
        with BlockReader(folder, blocks, block_kinds(opts)) as reader:
            for top, bottom in grid.output_strips():
                rows = reader.rows(top, bottom)
                classes = rows["classes"][0]
                confidence = rows["confidence"][0] if "confidence" in rows else None
                valid = classes != ignore if source.has_nodata else None
                strip = Strip(top, bottom, rows.get("probabilities"), classes, confidence, valid)
                for sink in sinks:
                    sink.write(strip)
        finish_sinks(sinks)
    return paths
