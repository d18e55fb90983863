"""``terraseg data ...``: data preparation commands (thin layer over ``terraseg.data``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from terraseg.cli import app

data_app = typer.Typer(help="Prepare data sets: inspect, convert masks, statistics, splits, chips, samples.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()


def _swatch(color) -> Text:
    if len(color) == 3:
        return Text("      ", style=f"on rgb({color[0]},{color[1]},{color[2]})")
    return Text("")


def _warn(lines) -> None:
    for w in lines:
        console.print(Text("warning: ", style="bold yellow") + Text(w), soft_wrap=True)


@data_app.command("inspect")
def inspect_cmd(
    directory: Path = typer.Argument(..., help="Folder holding the images and masks."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Draft dataset YAML to write [default: ./<folder name>.yaml]."),
    no_yaml: bool = typer.Option(False, "--no-yaml", help="Do not write a draft YAML."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing YAML."),
    images: Optional[str] = typer.Option(None, help="Image folder or glob (relative to DIRECTORY)."),
    masks: Optional[str] = typer.Option(None, help="Mask folder or glob (relative to DIRECTORY)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full report as JSON."),
) -> None:
    """Discover the mask palette, find unpaired/mismatched/unreadable files, draft a dataset YAML."""
    from terraseg._io import write_json_atomic
    from terraseg.data.inspect import inspect_dataset

    yaml_path = None if no_yaml else (out or Path(f"{directory.resolve().name}.yaml"))
    report = inspect_dataset(directory, yaml_path, images=images, masks=masks, overwrite=force)
    console.print(f"[bold]{report.root}[/]: {report.n_images} images, {report.n_masks} masks, "
                  f"{report.n_pairs} pairs, {report.bands} band(s), {report.mask_type} masks")
    console.print(f"images: {report.images_pattern}   masks: {report.masks_pattern}"
                  + (f"   group: {report.group}" if report.group else ""), highlight=False)
    table = Table(title=f"palette: {len(report.palette)} distinct {'colours' if report.mask_type == 'rgb' else 'values'}")
    for col, kw in (("", {}), ("colour" if report.mask_type == "rgb" else "value", {}),
                    ("RGB", {}), ("pixels", {"justify": "right"}), ("share", {"justify": "right"}),
                    ("draft class", {})):
        table.add_column(col, **kw)
    for e in report.palette:
        name = e.name if e.name is not None else "(ignored)"
        if e.source and e.source not in ("generated", "ignored"):
            name += f"  [dim](from {e.source})[/]"
        table.add_row(_swatch(e.color), e.label, str(e.color) if len(e.color) == 3 else "", f"{e.pixels:,}",
                      f"{100 * e.share:.2f} %", name)
    console.print(table)
    _warn(report.warnings)
    if json_out is not None:
        write_json_atomic(json_out, report.to_dict())
    if report.yaml_path:
        console.print(f"draft dataset YAML written to [bold]{report.yaml_path}[/] (check the class names)")
