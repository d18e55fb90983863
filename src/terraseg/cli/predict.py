"""``terraseg predict``: full-resolution prediction of image files, folders or globs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from terraseg.cli import app


@app.command("predict")
def predict_command(
    model: Path = typer.Argument(..., help="Model bundle folder (torch), exported .onnx file, or a built-in model name "
                                                  "(`terraseg models pretrained`, e.g. dubai-landcover)."),
    inputs: List[str] = typer.Argument(..., help="Image files (JPG/PNG/TIFF/GeoTIFF), folders or globs."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    tile_size: Optional[int] = typer.Option(None, "--tile-size", help="Largest tile size in pixels (default: the bundle's); fitted to the scene."),
    overlap: Optional[int] = typer.Option(None, "--overlap",
                                          help="Tile overlap in pixels (default: tile size / 4, at most 16)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Tiles per model call."),
    blend: str = typer.Option("cosine", "--blend", help="Tile blending window: cosine, gaussian or none."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation (average over flips and rotations)."),
    tta_mode: str = typer.Option("d4", "--tta-mode", help="d4 (8 flips/90° rotations) or flips (4)."),
    backend: str = typer.Option("auto", "--backend",
                                help="auto (ONNX Runtime through a cached export, torch if that fails), torch or onnx."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32, bf16 (torch), int8 (onnx) or auto (int8/bf16 where checked to agree)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    confidence: bool = typer.Option(False, "--confidence", help="Also write the max-probability raster."),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write per-class probabilities."),
    color: bool = typer.Option(True, "--color/--no-color", help="Write the colour mask."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Write the overlay PNG with legend."),
    overlay_size: int = typer.Option(2048, "--overlay-size", min=64,
                                     help="Largest side of the overlay preview in pixels."),
    areas: bool = typer.Option(True, "--areas/--no-areas", help="Write the class-area report (CSV + JSON)."),
    vector: Optional[str] = typer.Option(None, "--vector", help="Also write polygons: gpkg or geojson."),
    min_area: float = typer.Option(0.0, "--min-area", min=0.0,
                                   help="Merge/drop polygons smaller than this, in m² of ground in any CRS "
                                        "(pixels if not georeferenced)."),
    simplify: float = typer.Option(0.0, "--simplify", min=0.0,
                                   help="Simplification tolerance (CRS units, pixels if not georeferenced)."),
    bands: Optional[str] = typer.Option(None, "--bands",
                                        help="Input bands fed to the model, 1-based as in GDAL, e.g. 4,3,2 "
                                             "(default: the bands the model was trained on)."),
    resample: bool = typer.Option(False, "--resample",
                                  help="Predict at the model's training resolution; outputs stay on the input's grid."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders of input folders."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Predict again even when all outputs exist."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Predict on a local Dask cluster of this many processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", envvar="TERRASEG_SCHEDULER",
                                            help="Submit to a running Dask scheduler (tcp://host:8786)."),
    block_rows: Optional[int] = typer.Option(None, "--block-rows", min=0,
                                             help="With --workers/--scheduler: split scenes into blocks of this "
                                                  "many tile rows (0: never; default: automatic)."),
) -> None:
    """Predict MODEL on every INPUT at full resolution and write the outputs into --out.

    Per input: class-index raster (GeoTIFF with the input's CRS and transform, PNG for JPG/PNG inputs), colour mask, overlay with legend, class-area report, and optionally confidence, probabilities and polygons.

    Finished inputs are skipped (resume); a failing input is reported and the others go on. Exit status 0 when every input succeeded, 1 otherwise.
    """  # noqa: E501
    from rich.console import Console

    from terraseg._io import check_output
    from terraseg.data.source import parse_bands
    from terraseg.predict.batch import predict_batch
    from terraseg.predict.options import PredictOptions, check
    from terraseg.runtime import check_choices, load_backend

    console = Console(stderr=True)
    check_choices(backend, precision)
    check_output(out, "folder")  # before the model loads: `--out FILE` is one usage error, not one per input
    options = PredictOptions(tile_size=tile_size, overlap=overlap, batch_size=batch_size, blend=blend,
                             tta=tta_mode if tta else False, color=color, overlay=overlay, areas=areas,
                             confidence=confidence, probabilities=probabilities, vector=vector,
                             min_area=min_area, simplify=simplify, overlay_max_size=overlay_size,
                             bands=parse_bands(bands), resample=resample)
    check(options)  # the options the model does not decide, before it loads
    if workers is not None or scheduler:
        from terraseg.predict.dask.cluster import require_distributed

        require_distributed()  # before the model is loaded: without Dask, say how to install it
    calibration = None
    if precision in ("int8", "auto"):  # calibrate / check reduced precision on the imagery to predict
        from terraseg.predict.batch import expand_inputs

        calibration = expand_inputs(inputs, recursive=recursive, exclude_dir=out)[:8] or None
    runner = load_backend(model, backend=backend, device=device, precision=precision, calibration=calibration)
    console.print(f"model: {runner.describe()}" if hasattr(runner, "describe") else f"model: {runner!r}",
                  highlight=False, soft_wrap=True)

    def log(line: str) -> None:
        console.print(f"[bold red]failed:[/] {line}", highlight=False, soft_wrap=True)

    result = predict_batch(runner, inputs, out, options, resume=not overwrite, recursive=recursive, log=log,
                           workers=workers, scheduler=scheduler or None, block_rows=block_rows)
    summary = f"{len(result.done)} predicted, {len(result.skipped)} skipped (already done), {len(result.failed)} failed"
    console.print(f"{summary}; outputs in {out}", highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)
