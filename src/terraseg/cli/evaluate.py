"""``terraseg evaluate``: full-resolution evaluation of a model on a labelled split of a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from terraseg.cli import app


def metrics_tables(result: dict):
    """Two rich tables (overall, per class) of an evaluation result (or any compute_metrics dict)."""
    from rich.table import Table

    from terraseg.metrics import CLASS_HEADER, class_rows, summary_rows

    overall = Table(title="Overall", title_justify="left")
    overall.add_column("Metric")
    overall.add_column("Value", justify="right")
    for label, value in summary_rows(result):
        overall.add_row(label, value)
    per_class = Table(title="Per class", title_justify="left")
    for i, head in enumerate(CLASS_HEADER):
        per_class.add_column(head, justify="left" if i == 0 else "right")
    for row in class_rows(result):
        per_class.add_row(*row)
    return overall, per_class


@app.command("evaluate")
def evaluate_command(
    model: Path = typer.Argument(..., help="Model bundle folder (torch), exported .onnx file, or a built-in model name "
                                                  "(`terraseg models pretrained`, e.g. dubai-landcover)."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset description YAML."),
    split: str = typer.Option("test", "--split", help="List of the split file to evaluate (train, val, test, "
                                                       "holdout), or 'all' for every labelled image."),
    split_file: Optional[Path] = typer.Option(None, "--split-file",
                                              help="Split JSON (default: the data set's 'split' key)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Output folder (default: eval-<data set>-<split> beside the model)."),
    tile_size: Optional[int] = typer.Option(None, "--tile-size", help="Largest tile size in pixels (default: the bundle's); fitted to the scene."),
    overlap: Optional[int] = typer.Option(None, "--overlap", help="Tile overlap in pixels (default: tile size / 4)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Tiles per model call."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation (average over flips and rotations)."),
    backend: str = typer.Option("auto", "--backend",
                                help="auto (ONNX Runtime through a cached export, torch if that fails), torch or onnx."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32, bf16 (torch), int8 (onnx) or auto (int8/bf16 where checked to agree)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    bands: Optional[str] = typer.Option(None, "--bands",
                                        help="Image bands fed to the model, 1-based as in GDAL, e.g. 4,3,2 "
                                             "(default: the data set's selection, else the model's)."),
) -> None:
    """Evaluate MODEL on the labelled images of one split of a data set, whole images at full resolution.

    Accumulates one confusion matrix over the set and reports pixel accuracy, mean class accuracy, mIoU, frequency-weighted IoU, Cohen's kappa and per-class IoU, precision, recall, F1 and support. Writes metrics.json, metrics.md and confusion_matrix.png into --out.
    """  # noqa: E501
    from rich.console import Console

    from terraseg._io import check_output, removed_on_failure
    from terraseg.evaluate import _peek_meta, default_out_dir, evaluate
    from terraseg.runtime import check_choices

    check_choices(backend, precision)
    chosen_split = None if split == "all" else split
    if out is None:
        from terraseg.data.spec import load_spec

        _, model_path, _ = _peek_meta(model, backend)
        out = default_out_dir(model_path, load_spec(data), chosen_split)
    check_output(out, "folder")  # before the evaluation runs, not after

    with removed_on_failure(out):
        result = evaluate(model, data, split=chosen_split, split_file=split_file, out_dir=out, tile_size=tile_size,
                          overlap=overlap, batch_size=batch_size, tta=tta, progress=True, backend=backend,
                          device=device, precision=precision, bands=bands)
    console = Console()
    for w in result["warnings"]:
        Console(stderr=True).print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    s = result["split"]
    console.print(f"[bold]{result['model']['name']}[/] on [bold]{result['data']['name']}[/] ({s['name']}): "
                  f"{s['images']} image(s), {result['pixels']:,} labelled pixels, {result['seconds']:.1f} s",
                  highlight=False, soft_wrap=True)
    for table in metrics_tables(result):
        console.print(table)
    console.print(f"metrics.json, metrics.md and confusion_matrix.png written to {out}", highlight=False,
                  soft_wrap=True)
