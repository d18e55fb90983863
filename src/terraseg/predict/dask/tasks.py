"""What runs on a worker: one whole file, one block of a split scene, or the join of a scene's blocks.

Each task returns ``("done", value)`` or ``("failed", one-line message)`` with the message the
single-process run reports (``terraseg.predict.resume.failure_message``), so a failing input never
brings an exception (which may not unpickle on the client) across the cluster.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from terraseg.predict.dask.model import worker_backend


def file_task(plugin: str, input_path, out_dir, opts, name: str):
    """Predict one whole file, as ``predict_batch`` does in one process."""
    from terraseg.predict.api import predict_file
    from terraseg.predict.resume import failure_message, remove_stale_temporaries
    from terraseg.predict.options import output_paths

    try:
        remove_stale_temporaries(output_paths(input_path, out_dir, opts, name=name))
        return "done", predict_file(worker_backend(plugin), input_path, out_dir, opts, name=name)
    except Exception as exc:  # reported per file, as in the single-process run
        return "failed", failure_message(input_path, exc)


def block_task(plugin: str, input_path, folder: Path, block, opts, tile: int, overlap: int):
    """Predict one block of a split scene into its block files."""
    from terraseg.predict.resume import failure_message
    from terraseg.predict.dask.blocks import predict_block

    try:
        return "done", predict_block(worker_backend(plugin), input_path, folder, block, opts, tile, overlap)
    except Exception as exc:
        return "failed", failure_message(input_path, exc)


def join_task(plugin: str, input_path, out_dir, opts, name: str, tile: int, overlap: int, folder: Path, blocks,
              *block_results):
    """Join the blocks (``block_results``: the statuses of the block tasks run now) into the outputs."""
    from terraseg.predict.resume import failure_message, remove_stale_temporaries
    from terraseg.predict.dask.join import join_blocks
    from terraseg.predict.options import output_paths

    failed = [r for r in block_results if r[0] != "done"]
    if failed:
        return failed[0]
    try:
        remove_stale_temporaries(output_paths(input_path, out_dir, opts, name=name))
        paths = join_blocks(worker_backend(plugin).meta, input_path, out_dir, opts, name, tile, overlap, folder,
                            blocks)
    except Exception as exc:
        return "failed", failure_message(input_path, exc)
    shutil.rmtree(folder, ignore_errors=True)
    return "done", paths
