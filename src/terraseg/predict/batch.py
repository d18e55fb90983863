"""Predict many files with resume.

* Inputs are files, folders (their rasters; ``recursive=True`` descends) or glob patterns.
* A file is *finished* when all its outputs exist; finished files are skipped (resume). Outputs
  appear only when a file succeeded completely (temporary names, renamed at the end), so an
  interrupted run never leaves something that looks finished.
* A failing file is reported in one line and the batch goes on; ``BatchResult.ok`` tells whether
  every file succeeded.
* ``workers=N`` or ``scheduler=ADDRESS`` run the same per-file work on a Dask cluster
  (:mod:`terraseg.predict.dask`), with the same outputs, resume and report.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from terraseg.errors import DataError
from terraseg.predict.resume import failure_message, is_finished, remove_stale_temporaries

OUTPUT_MARKERS = ("_classes", "_color", "_overlay", "_confidence", "_probabilities")


@dataclass
class BatchResult:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    outputs: dict[Path, dict[str, Path]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _looks_like_output(p: Path) -> bool:
    return any(p.stem.endswith(m) for m in OUTPUT_MARKERS)


def expand_inputs(inputs: Iterable[str | Path], recursive: bool = False, exclude_dir: str | Path | None = None
                  ) -> list[Path]:
    """Files, folders and globs -> a sorted-per-item, de-duplicated list of image paths.

    Names that match nothing are kept (they fail later as "file not found", without stopping the
    batch). Outputs of an earlier run found in ``exclude_dir`` are left out.
    """
    from terraseg.data.raster import is_raster_file, list_rasters
    from terraseg.data.source import is_remote

    files: list = []
    for item in inputs:
        if is_remote(item):  # URLs and /vsi… paths go to GDAL as they are
            files.append(str(item))
            continue
        p = Path(item)
        if p.is_dir():
            found = list_rasters(p, recursive=recursive)
        elif p.exists():
            found = [p]
        elif glob.has_magic(str(item)):
            found = sorted(Path(f) for f in glob.glob(str(item), recursive=True) if is_raster_file(f))
        else:
            found = [p]
        files.extend(found)
    if exclude_dir is not None:
        ex = Path(exclude_dir).resolve()
        files = [f for f in files if isinstance(f, str) or not (f.parent.resolve() == ex and _looks_like_output(f))]
    seen, unique = set(), []
    for f in files:
        key = f if isinstance(f, str) else f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    if not unique:
        raise DataError("no images found (expected JPG/PNG/TIFF files, folders or globs)",
                        ", ".join(str(i) for i in inputs))
    return unique


def output_names(files: list[Path]) -> list[str]:
    """Base names for outputs: the file stem, prefixed by parent folders when stems collide."""
    from terraseg.predict.options import input_stem

    names = [input_stem(f) for f in files]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    out = []
    for f, n in zip(files, names):
        if counts[n] > 1 and not isinstance(f, str):
            parent = f.resolve().parent.name or "root"
            n = f"{parent}_{n}"
        out.append(n)
    seen: dict[str, int] = {}
    final = []
    for n in out:
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        else:
            seen[n] = 0
        final.append(n)
    return final


def predict_batch(model, inputs: Iterable[str | Path], out_dir: str | Path, options=None, *, resume: bool = True,
                  recursive: bool = False, device: str = "cpu", precision: str = "fp32",
                  log: Callable[[str], None] | None = None, cancel: Callable[[], bool] | None = None,
                  show_progress: bool | None = None, workers: int | None = None, scheduler=None,
                  block_rows: int | None = None, **overrides) -> BatchResult:
    """Predict every input into ``out_dir``; returns what was done, skipped and what failed.

    ``model`` is a backend, Bundle or model path (opened once). ``log`` receives one line per
    failing file (``"<path>: <problem>"``). Progress bars (files and tiles) show on a terminal
    (``show_progress`` forces them on or off).

    ``workers`` (a local Dask cluster of that many processes) or ``scheduler`` (the address of a
    running Dask scheduler, or a ``distributed.Client``) spread the files over a cluster; scenes
    with many tiles are then split into blocks of ``block_rows`` tile rows (``None``: automatic,
    ``0``: never), see :mod:`terraseg.predict.dask`.
    """
    from terraseg import _progress
    from terraseg.predict.backends import as_backend
    from terraseg.predict.api import predict_file
    from terraseg.predict.engine import PredictionCancelled
    from terraseg.predict.options import output_paths, validate, with_overrides

    from terraseg._io import check_apart_from_inputs

    opts = with_overrides(options, overrides)
    out_dir = Path(out_dir)
    inputs = list(inputs)
    check_apart_from_inputs(out_dir, inputs, recursive=recursive)
    files = expand_inputs(inputs, recursive=recursive, exclude_dir=out_dir)
    names = output_names(files)
    backend = as_backend(model, device=device, precision=precision)
    validate(opts, backend.meta)  # a bad option is a usage error, not a failure of every file
    result = BatchResult()

    progress = _progress.make_progress()
    if show_progress is not None:
        progress.disable = not show_progress
    say = log or (lambda line: None)
    if workers is not None or scheduler is not None:
        from terraseg.predict.dask.run import predict_on_cluster

        return predict_on_cluster(backend, files, names, out_dir, opts, result, resume=resume, workers=workers,
                                  scheduler=scheduler, block_rows=block_rows, log=say, progress=progress)
    with progress:
        files_task = progress.add_task("files", total=len(files))
        tiles_task = progress.add_task("tiles", total=None)
        for path, name in zip(files, names):
            paths = output_paths(path, out_dir, opts, name=name)
            if resume and is_finished(paths):
                result.skipped.append(path)
                result.outputs[path] = paths
                progress.advance(files_task)
                continue
            remove_stale_temporaries(paths)
            progress.update(tiles_task, description=f"tiles {Path(str(path)).name}", completed=0, total=None)

            def on_tiles(done: int, total: int) -> None:
                progress.update(tiles_task, completed=done, total=total)

            try:
                result.outputs[path] = predict_file(backend, path, out_dir, opts, name=name, progress=on_tiles,
                                                    cancel=cancel)
                result.done.append(path)
            except (PredictionCancelled, KeyboardInterrupt):
                raise
            except Exception as exc:  # a failure on one file (expected or not) must not stop the batch
                msg = failure_message(path, exc)
                result.failed.append((path, msg))
                say(msg)
            progress.advance(files_task)
    return result
